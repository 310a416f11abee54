"""Add noise to an image at a target SNR (SNR = var(signal) / var(noise)).

Example::

    cryoden noise clean.mrc -o noisy.mrc --snr 0.1 --seed 7
    cryoden noise clean.mrcs -o noisy.mrcs --snr 0.05 --model poisson
    cryoden noise clean.mrcs -o noisy.mrcs --snr 0.1 --correlation 0.3
    cryoden noise clean.mrc -o noisy.mrc --snr 0.1 --correlation-x 0.1 --correlation-y 0.2

Each section of a stack gets its own generator derived from (seed, index), so the result does not
depend on how a stack is split. The output keeps the input's voxel size and origin.

Gaussian noise can be correlated between adjacent pixels, as real detector noise is:
``--correlation`` sets the correlation of horizontally and vertically adjacent pixels' noise,
``--correlation-x`` / ``--correlation-y`` one axis each (the other axis takes ``--correlation``,
or 0). Each is at most 1/sqrt(2) in size; sections of a volume are correlated within each section
only.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import numpy as np
import typer

from cryoden.cli.common import echo, flag_names, provenance, write_json_atomic
from cryoden.cli.options import choice_option, number_option
from cryoden.errors import ParameterError
from cryoden.io import read_mrc, write_mrc
from cryoden.io.stacks import as_images, from_images
from cryoden.noise import NOISE_MODELS, add_noise, estimate_snr, image_rng
from cryoden.noise.correlated import MAX_CORRELATION, add_correlated_gaussian_noise

#: add_noise's defaults, used where an option is not given (the options default to None).
_DEFAULTS = {
    p.name: p.default
    for p in inspect.signature(add_noise).parameters.values()
    if p.default is not inspect.Parameter.empty
}
#: add_noise's parameters and the flags that set them.
FLAGS = {
    "snr": "--snr",
    "dose_e_per_a2": "--dose",
    "pixel_size_angstrom": "--pixel-size",
    "read_noise_sigma": "--read-noise",
}


def _correlation_option(flag: str, what: str) -> Any:
    """A correlation option in ``[-1/sqrt(2), 1/sqrt(2)]``, ``None`` when not given."""
    return number_option(
        flag,
        f"Gaussian noise only: correlation of {what} adjacent pixels' noise, in "
        f"[-{MAX_CORRELATION:.3f}, {MAX_CORRELATION:.3f}] (default: 0, white noise).",
        minimum=-MAX_CORRELATION,
        maximum=MAX_CORRELATION,
    )


def axis_correlations(
    correlation: float | None, correlation_x: float | None, correlation_y: float | None
) -> tuple[float, float] | None:
    """``(y, x)`` adjacent-pixel correlations from the three options, or ``None`` when none was
    given (white noise)."""
    if correlation is None and correlation_x is None and correlation_y is None:
        return None
    both = 0.0 if correlation is None else float(correlation)
    return (
        both if correlation_y is None else float(correlation_y),
        both if correlation_x is None else float(correlation_x),
    )


def command(
    input_path: Path = typer.Argument(..., metavar="IN.mrc", help="Clean image, stack or volume."),
    output: Path = typer.Option(..., "--output", "-o", metavar="OUT.mrc", help="Noisy output."),
    snr: float = number_option("--snr", "Target SNR, var(signal)/var(noise), > 0.", above=0),
    seed: int = number_option(
        "--seed", "Random seed, >= 0 (per-section seeds derive from it).", default=0, minimum=0
    ),
    model: str = choice_option(
        "--model", f"Noise model: {', '.join(NOISE_MODELS)} (default: {_DEFAULTS['model']}).",
        tuple(NOISE_MODELS),
    ),
    dose: float = number_option(
        "--dose", "Dose in e/Å² for a Poisson model (instead of --snr), > 0.", above=0
    ),
    pixel_size: float = number_option(
        "--pixel-size", "Pixel size in Å (default: from the header) for --dose.", above=0
    ),
    read_noise: float = number_option(
        "--read-noise",
        f"Gaussian read noise (counts, >= 0; default: {_DEFAULTS['read_noise_sigma']}).",
        minimum=0,
    ),
    correlation: float = _correlation_option("--correlation", "horizontally and vertically"),
    correlation_x: float = _correlation_option("--correlation-x", "horizontally"),
    correlation_y: float = _correlation_option("--correlation-y", "vertically"),
) -> None:  # fmt: skip
    """Add Gaussian or Poisson noise at a target SNR (or a dose) to an MRC image."""
    if snr is None and dose is None:
        raise ParameterError("give --snr (or --dose for a Poisson model)")
    model = _DEFAULTS["model"] if model is None else model
    correlations = axis_correlations(correlation, correlation_x, correlation_y)
    if correlations is not None and (model != "gaussian" or snr is None):
        raise ParameterError(
            "--correlation, --correlation-x and --correlation-y need --model gaussian and --snr"
        )
    read_noise = _DEFAULTS["read_noise_sigma"] if read_noise is None else read_noise
    mrc = read_mrc(input_path)
    px = pixel_size if pixel_size is not None else mrc.pixel_size_angstrom
    stack = as_images(mrc)
    noisy = np.empty_like(stack)
    measured: list[float] = []
    for i, image in enumerate(stack):
        if correlations is not None:
            with flag_names(FLAGS):
                noisy[i] = add_correlated_gaussian_noise(
                    image, snr, correlations, rng=image_rng(seed, i)
                )
            measured.append(estimate_snr(image, noisy[i]))
            continue
        with flag_names(FLAGS):
            noisy[i] = add_noise(
                image,
                model=model,
                rng=image_rng(seed, i),
                snr=snr if dose is None else None,
                dose_e_per_a2=dose,
                pixel_size_angstrom=px,
                read_noise_sigma=read_noise,
            )
        if dose is None:
            measured.append(estimate_snr(image, noisy[i]))
    write_mrc(
        output,
        from_images(noisy, mrc),
        voxel_size_angstrom=mrc.voxel_size_angstrom,
        origin_angstrom=mrc.origin_angstrom,
        protected=[input_path],
    )
    params = {
        "input": input_path,
        "output": output,
        "snr": snr,
        "seed": seed,
        "model": model,
        "dose_e_per_a2": dose,
        "pixel_size_angstrom": px,
        "read_noise": read_noise,
        "correlation_x": None if correlations is None else correlations[1],
        "correlation_y": None if correlations is None else correlations[0],
        "measured_snr": measured,
    }
    write_json_atomic(Path(f"{output}.json"), provenance("noise", params))
    if measured:
        echo(f"{output}: measured SNR {np.mean(measured):.4f} (target {snr})")
    else:
        echo(f"{output}: Poisson noise at {dose} e/Å²")
