"""Measure how close a denoiser's output is to the unseen clean image, from the noisy data alone.

Example::

    cryoden check --model model/ --a even/ --b odd/
    cryoden check --filter gaussian --sigma 2 --a even/ --b odd/ --json > check.json
    cryoden check --model model/ micrographs/*.mrc

Pairs (``--a``, ``--b``: independent halves of each exposure, such as even and odd frame sums;
each a file or folder, repeatable, the n-th ``--a`` file paired with the n-th ``--b`` file):
the denoiser is applied to each ``a``; since ``b``'s noise is independent of ``f(a)``,
``mean((f(a) - b)**2) - sigma**2`` estimates the mean squared error of ``f(a)`` against the
clean image, with ``sigma**2 = mean((a - b)**2) / 2`` the noise variance of one half. Its
standard error is the spread of the means of ``--block`` pixel squares (32 by default), so
the noise's spatial correlation is accounted for. The model must not have been trained on these
``b`` images (a Noise2Noise model trained on the same pairs gives an optimistic estimate). Also
reported: the SNR of the raw half (``cov(a, b) / sigma**2``) and of the denoised one
(``cov(a, b) / mse``), the gain in dB, ``10 log10(sigma**2 / mse)``, with its standard error,
FRC(f(a), b) against FRC(a, b) with their 0.143 crossings (Nyquist units), and the residual
``a - f(a)``: its variance over ``sigma**2`` (near 1 when the denoiser removes just the
noise), the share of the signal's variance it holds (near 0) and its adjacent-pixel
correlation beside the noise's.

Single images (``IMAGES...``, no halves): Stein's unbiased risk estimate for correlated Gaussian
noise, the noise variance and correlation read from each image's high-frequency band
(above 0.5 Nyquist) and the denoiser's sensitivity probed once with a random perturbation shaped
like the noise (``--seed``), so the denoiser runs twice per image. Limits: the noise is taken as
Gaussian and stationary; signal power at high frequencies inflates the noise variance, and any
error in it enters the MSE one for one (estimates come out too low); the stated uncertainty does
not include that error. Prefer pairs when there are any.

``--model`` runs a trained model (float32, so the probe is not lost to rounding); ``--filter``
checks a classical filter instead (``--sigma``, ``--size``, ``--cutoff`` as in ``cryoden
filter``), useful for validating the estimate. ``--json`` prints one JSON object: ``{"mode":
"pairs"|"single", "set": {"noise_variance", "estimated_mse", "estimated_mse_uncertainty",
"signal_variance", "raw_snr", "denoised_snr", "gain_db", "gain_db_uncertainty", "n_pixels",
"n_blocks"}, "images": [{"image", ...the same keys...}]}``; for pairs each image also has
``frc`` (``frequency``, ``raw``, ``denoised``), ``frc_0143`` (``raw``, ``denoised``) and
``residual`` (``variance_ratio``, ``signal_fraction``, ``autocorrelation``,
``noise_autocorrelation``), and the set ``residual_variance_ratio`` and
``residual_signal_fraction`` (pixel-weighted means). MSE and variances are in the input's units
squared; a value that cannot be computed is the string ``"nan"``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.table import Table

from cryoden.cli.common import MAX_SIDE_PX, echo, flag_names, print_table
from cryoden.cli.evaluate import json_number
from cryoden.cli.filter_cmd import filter_parameters, get_filter_name
from cryoden.cli.inspect_noise import (
    A_OPTION,
    B_OPTION,
    check_sources,
    expand,
    iter_images,
    iter_pairs,
    pair_files,
)
from cryoden.cli.options import DEVICE, THREADS, number_option, side_option
from cryoden.errors import InputFileError, ParameterError
from cryoden.filters import apply_filter, check_filter_parameters
from cryoden.metrics.halfset import (
    DEFAULT_BLOCK_PX,
    ErrorTerms,
    pair_details,
    pair_terms,
    single_terms,
)
from cryoden.noise import image_rng

Denoise = Callable[[np.ndarray], np.ndarray]

logger = logging.getLogger(__name__)

#: Library parameters and the flags that set them.
FLAGS = {"block_px": "--block", "sigma_px": "--sigma", "size": "--size", "tile": "--tile"}


def _denoiser(
    model: Path | None,
    filter_name: str | None,
    params: dict[str, Any],
    *,
    device: str | None,
    threads: int | None,
    tile: int | None,
) -> Denoise:
    """The function checked: a model through the tiled Denoiser, or a classical filter."""
    if model is not None:
        from cryoden.inference.denoise import Denoiser
        from cryoden.models import load_model

        options: dict[str, Any] = {"device": device, "threads": threads, "tile": tile}
        with flag_names(FLAGS):
            denoiser = Denoiser(
                load_model(model),
                precision="fp32",
                **{k: v for k, v in options.items() if v is not None},
            )
        return lambda image: np.asarray(denoiser(image), dtype=np.float32)
    assert filter_name is not None
    return lambda image: apply_filter(filter_name, image.astype(np.float32), **params)


def _weighted(rows: list[dict[str, Any]], key: str) -> float:
    weights = np.array([r["n_pixels"] for r in rows], dtype=np.float64)
    values = np.array([r["residual"][key] for r in rows], dtype=np.float64)
    keep = np.isfinite(values)
    if not keep.any():
        return float("nan")
    return float(np.dot(weights[keep], values[keep]) / weights[keep].sum())


def check_pairs(
    pairs: list[tuple[Path, Path]], f: Denoise, block_px: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The set's and each image's estimates from pairs."""
    total = ErrorTerms()
    rows: list[dict[str, Any]] = []
    for name, a, b, pixel_size in iter_pairs(pairs):
        try:
            denoised = f(a)
            with flag_names(FLAGS):
                terms = pair_terms(a, b, denoised, block_px=block_px)
            details = pair_details(a, b, denoised, pixel_size_angstrom=pixel_size)
        except ParameterError as exc:
            raise InputFileError(name, str(exc)) from None
        total.extend(terms)
        rows.append({"image": name, **terms.summary(), **details})
    summary: dict[str, Any] = total.summary()
    summary["residual_variance_ratio"] = _weighted(rows, "variance_ratio")
    summary["residual_signal_fraction"] = _weighted(rows, "signal_fraction")
    return summary, rows


def check_images(
    files: list[Path], f: Denoise, block_px: int, seed: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The set's and each image's estimates from single images (Stein's estimate)."""
    total = ErrorTerms()
    rows: list[dict[str, Any]] = []
    for index, (name, image, _) in enumerate(iter_images(files)):
        try:
            with flag_names(FLAGS):
                terms = single_terms(image, f, rng=image_rng(seed, index), block_px=block_px)
        except ParameterError as exc:
            raise InputFileError(name, str(exc)) from None
        total.extend(terms)
        rows.append({"image": name, **terms.summary()})
    return total.summary(), rows


def _print(mode: str, summary: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    table = Table(title=f"check ({mode})")
    columns = ["image", "noise var", "est. MSE ± SE", "SNR raw", "SNR denoised", "gain dB ± SE"]
    if mode == "pairs":
        columns += ["FRC 0.143 raw→den.", "resid. var/σ²", "resid. signal"]
    for col in columns:
        table.add_column(col, justify="left" if col == "image" else "right")
    for row in [*rows, {"image": "set", **summary}]:
        cells = [
            row["image"],
            f"{row['noise_variance']:.4g}",
            f"{row['estimated_mse']:.4g} ± {row['estimated_mse_uncertainty']:.2g}",
            f"{row['raw_snr']:.3g}",
            f"{row['denoised_snr']:.3g}",
            f"{row['gain_db']:.2f} ± {row['gain_db_uncertainty']:.2f}",
        ]
        if mode == "pairs":
            if "frc_0143" in row:
                crossing = row["frc_0143"]
                resid = row["residual"]
                cells += [
                    f"{crossing['raw']:.3f}→{crossing['denoised']:.3f}",
                    f"{resid['variance_ratio']:.3f}",
                    f"{resid['signal_fraction']:.3f}",
                ]
            else:
                cells += [
                    "",
                    f"{row['residual_variance_ratio']:.3f}",
                    f"{row['residual_signal_fraction']:.3f}",
                ]
        table.add_row(*cells)
    print_table(table)


def command(
    images: list[Path] = typer.Argument(None, metavar="IMAGES...", help="Single noisy images."),
    a: list[Path] = A_OPTION,
    b: list[Path] = B_OPTION,
    model: Path = typer.Option(None, "--model", "-m", metavar="MODEL", help="Model checked."),
    filter_name: str = typer.Option(
        None, "--filter", metavar="FILTER", help="A classical filter checked instead of a model."
    ),
    sigma: float = number_option("--sigma", "Gaussian filter sigma in pixels, >= 0.", minimum=0),
    size: int = side_option("--size", "Window filters' side in pixels, odd.", odd=True),
    cutoff: float = number_option(
        "--cutoff", "Low-pass cutoff in Nyquist units, in (0, 1].", above=0, maximum=1
    ),
    block: int = side_option(
        "--block", f"Block side for the standard errors, pixels (default: {DEFAULT_BLOCK_PX})."
    ),
    seed: int = number_option(
        "--seed", "Seed of the single-image probe, >= 0.", default=0, minimum=0
    ),
    device: str = DEVICE,
    threads: int = THREADS,
    tile: int = side_option("--tile", "Tile side in pixels (default: from memory)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Estimate a denoiser's error against the unseen clean image, from noisy data alone."""
    if (model is None) == (filter_name is None):
        raise ParameterError("give exactly one of --model and --filter")
    pairs_mode = check_sources(images, a, b)
    params: dict[str, Any] = {}
    if filter_name is not None:
        filter_name = get_filter_name(filter_name)
        params = filter_parameters(
            filter_name, cutoff=cutoff, low_cutoff=None, sigma=sigma, size=size, edge=None
        )
        with flag_names(FLAGS):
            check_filter_parameters(filter_name, (MAX_SIDE_PX, MAX_SIDE_PX), **params)
    block_px = DEFAULT_BLOCK_PX if block is None else block
    pairs = pair_files(a, b) if pairs_mode else []
    files = [] if pairs_mode else expand(images)
    f = _denoiser(model, filter_name, params, device=device, threads=threads, tile=tile)
    if pairs_mode:
        summary, rows = check_pairs(pairs, f, block_px)
    else:
        logger.warning(
            "single images: the noise variance comes from the band above 0.5 Nyquist; signal "
            "power there makes the estimated MSE too low, beyond its stated uncertainty"
        )
        summary, rows = check_images(files, f, block_px, seed)
    mode = "pairs" if pairs_mode else "single"
    if as_json:
        echo(
            json.dumps(json_number({"mode": mode, "set": summary, "images": rows}), allow_nan=False)
        )
        return
    _print(mode, summary, rows)
