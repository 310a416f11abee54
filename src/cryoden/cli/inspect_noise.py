"""Measure a dataset's noise: variance, correlation between neighbouring pixels, power spectrum
and SNR, from even/odd pairs or from single images.

Example::

    cryoden inspect noise --a even/ --b odd/
    cryoden inspect noise micrographs/*.mrc --json > noise.json
    cryoden inspect noise particles.mrcs --plot noise.png

With ``--a`` and ``--b`` (each a file or a folder, repeatable; the n-th file of ``--a`` pairs
with the n-th of ``--b``, folders sorted by name), ``(a - b) / sqrt(2)`` is pure noise with the
statistics of one half's noise: measured directly, without assumptions. From single images
(``IMAGES...``) the noise is read from the high-frequency band (above ``--low-nyquist``, 0.5 by
default), where a low-SNR image holds little signal, taking the noise spectrum to be separable
along x and y; signal power in that band biases it (more noise, correlation pulled towards the
signal's), so prefer pairs when there are any.

Reported per image (a stack's sections are images ``path:index``) and for the set (pixels
pooled): the noise variance (input units squared), its correlation coefficient at lags 1-3
pixels along x (the last axis) and y, the radial noise power spectrum (32 bins, frequencies in
Nyquist units, power in variance per frequency sample) and the SNR, ``var(signal) /
var(noise)`` (of one half, for pairs). Then a sentence on what follows: the noise counts as
white below an adjacent-pixel correlation of 0.05; from 0.15 plain blind-spot training
(n2v) copies noise (between the two, some), and Noise2Noise, or n2v with ``--blind-spot auto``,
is advised.

``--json`` prints one JSON object: ``{"source": "pairs"|"single", "noise_variance",
"signal_variance", "snr", "autocorrelation": {"x": [lag1, lag2, lag3], "y": [...]},
"power_spectrum": {"frequency", "power"}, "verdict": "white"|"mild"|"strong", "advice",
"images": [{"image", "noise_variance", "signal_variance", "snr", "autocorrelation"}]}``.
``--plot FILE`` writes a PNG of the power spectrum and the correlations.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.table import Table

from cryoden.cli.common import echo, print_table
from cryoden.cli.evaluate import json_number
from cryoden.cli.options import number_option
from cryoden.errors import InputFileError, ParameterError
from cryoden.io import probe_mrc, read_mrc
from cryoden.io.atomic import atomic_output, check_output_path
from cryoden.io.folders import list_mrc_files
from cryoden.io.stacks import as_images
from cryoden.metrics.noise_stats import (
    DEFAULT_LOW_NYQUIST,
    NoiseMeasurement,
    correlation_verdict,
    measure_pair,
    measure_single,
    noise_advice,
    pool_measurements,
)

#: Lags reported, in pixels.
MAX_LAG = 3
#: Bins of the reported power spectrum.
N_BINS = 32

A_OPTION = typer.Option(
    None, "--a", metavar="EVEN", help="First halves (file or folder; repeat for more)."
)
B_OPTION = typer.Option(None, "--b", metavar="ODD", help="Second halves, paired in order with --a.")
LOW_NYQUIST_OPTION = number_option(
    "--low-nyquist",
    f"Single images: lower edge of the band the noise is read from, in Nyquist units, in "
    f"(0, 0.9] (default: {DEFAULT_LOW_NYQUIST}).",
    above=0,
    maximum=0.9,
)


def expand(locations: Sequence[Path]) -> list[Path]:
    """Files and folders as MRC files (a folder's sorted by name), every header checked."""
    files = [path for location in locations for path in list_mrc_files(location)]
    for path in files:
        probe_mrc(path)
    return files


def pair_files(a: Sequence[Path], b: Sequence[Path]) -> list[tuple[Path, Path]]:
    """The n-th ``--a`` file with the n-th ``--b`` file; counts and shapes checked first."""
    a_files, b_files = expand(a), expand(b)
    if len(a_files) != len(b_files):
        raise ParameterError(
            f"--a names {len(a_files)} files but --b names {len(b_files)}; they pair in order"
        )
    for x, y in zip(a_files, b_files):
        if probe_mrc(x) != probe_mrc(y):
            raise InputFileError(
                y, f"shape {probe_mrc(y)} differs from its partner {x} {probe_mrc(x)}"
            )
    return list(zip(a_files, b_files))


def _names(path: Path, count: int) -> list[str]:
    return [str(path)] if count == 1 else [f"{path}:{i}" for i in range(count)]


def iter_pairs(
    pairs: Sequence[tuple[Path, Path]],
) -> Iterator[tuple[str, np.ndarray, np.ndarray, float | None]]:
    """``(name, a, b, pixel_size_angstrom)`` for each image of each pair, one file pair in
    memory at a time."""
    for a_path, b_path in pairs:
        a_mrc, b_mrc = read_mrc(a_path), read_mrc(b_path)
        a_stack, b_stack = as_images(a_mrc), as_images(b_mrc)
        for name, x, y in zip(_names(a_path, len(a_stack)), a_stack, b_stack):
            yield name, x, y, a_mrc.pixel_size_angstrom


def iter_images(files: Sequence[Path]) -> Iterator[tuple[str, np.ndarray, float | None]]:
    """``(name, image, pixel_size_angstrom)`` for each image of each file."""
    for path in files:
        mrc = read_mrc(path)
        stack = as_images(mrc)
        for name, x in zip(_names(path, len(stack)), stack):
            yield name, x, mrc.pixel_size_angstrom


def check_sources(
    images: Sequence[Path] | None, a: Sequence[Path] | None, b: Sequence[Path] | None
) -> bool:
    """True for pairs, False for single images; one line when the inputs are mixed or missing."""
    if images and (a or b):
        raise ParameterError("give either IMAGES or --a/--b pairs, not both")
    if bool(a) != bool(b):
        raise ParameterError("--a and --b go together (independent halves of each exposure)")
    if not images and not a:
        raise ParameterError("give IMAGES, or pairs with --a EVEN --b ODD")
    return bool(a)


def _about(path: str, exc: ParameterError) -> InputFileError:
    return InputFileError(path, str(exc))


def measure(
    images: Sequence[Path] | None,
    a: Sequence[Path] | None,
    b: Sequence[Path] | None,
    low_nyquist: float,
) -> tuple[bool, list[tuple[str, NoiseMeasurement]]]:
    """Every image's noise measurement, with whether they came from pairs."""
    pairs = check_sources(images, a, b)
    rows: list[tuple[str, NoiseMeasurement]] = []
    if pairs:
        for name, x, y, _ in iter_pairs(pair_files(a or [], b or [])):
            try:
                rows.append((name, measure_pair(x, y, max_lag=MAX_LAG, n_bins=N_BINS)))
            except ParameterError as exc:
                raise _about(name, exc) from None
    else:
        for name, x, _ in iter_images(expand(images or [])):
            try:
                found = measure_single(x, max_lag=MAX_LAG, n_bins=N_BINS, low_nyquist=low_nyquist)
            except ParameterError as exc:
                raise _about(name, exc) from None
            rows.append((name, found))
    return pairs, rows


def report(pairs: bool, rows: list[tuple[str, NoiseMeasurement]]) -> dict[str, Any]:
    """The JSON object described in the module docstring."""
    total = pool_measurements([m for _, m in rows])
    result: dict[str, Any] = {"source": "pairs" if pairs else "single", **total.to_dict()}
    result["verdict"] = correlation_verdict(total.autocorrelation)
    result["advice"] = noise_advice(total.autocorrelation)
    result["images"] = [
        {"image": name, **{k: v for k, v in m.to_dict().items() if k != "power_spectrum"}}
        for name, m in rows
    ]
    return result


def write_plot(path: Path, result: dict[str, Any]) -> None:
    """The power spectrum (log scale) beside the correlations at lags 1-3, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    spectrum = result["power_spectrum"]
    left.semilogy(spectrum["frequency"], spectrum["power"], color="k")
    left.set_xlabel("frequency (Nyquist)")
    left.set_ylabel("noise power (variance per sample)")
    left.set_title(f"noise power spectrum ({result['source']})")
    lags = np.arange(1, MAX_LAG + 1)
    right.bar(lags - 0.18, result["autocorrelation"]["x"], width=0.36, label="x")
    right.bar(lags + 0.18, result["autocorrelation"]["y"], width=0.36, label="y")
    right.axhline(0.05, color="grey", lw=0.8, ls="--")
    right.axhline(0.0, color="k", lw=0.8)
    right.set_xticks(lags)
    right.set_xlabel("lag (pixels)")
    right.set_ylabel("noise correlation")
    right.legend()
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def command(
    images: list[Path] = typer.Argument(None, metavar="IMAGES...", help="Single noisy images."),
    a: list[Path] = A_OPTION,
    b: list[Path] = B_OPTION,
    low_nyquist: float = LOW_NYQUIST_OPTION,
    plot: Path = typer.Option(None, "--plot", metavar="FILE.png", help="Write a figure (PNG)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Measure a dataset's noise (variance, pixel correlation, spectrum, SNR)."""
    if plot is not None:
        check_output_path(plot)
    low = DEFAULT_LOW_NYQUIST if low_nyquist is None else low_nyquist
    pairs, rows = measure(images, a, b, low)
    result = report(pairs, rows)
    if plot is not None:
        write_plot(plot, result)
    if as_json:
        echo(json.dumps(json_number(result), allow_nan=False))
        return
    table = Table(title=f"noise ({'pairs' if pairs else 'single images, high-frequency band'})")
    for col in ("image", "noise variance", "corr x (1,2,3)", "corr y (1,2,3)", "SNR"):
        table.add_column(col, justify="left" if col == "image" else "right")
    for row in [*result["images"], {"image": "set", **result}]:
        ac = row["autocorrelation"]
        table.add_row(
            row["image"],
            f"{row['noise_variance']:.4g}",
            " ".join(f"{v:.3f}" for v in ac["x"]),
            " ".join(f"{v:.3f}" for v in ac["y"]),
            f"{row['snr']:.3g}",
        )
    print_table(table)
    echo(result["advice"])
