"""Apply a classical filter to MRC images.

Example::

    cryoden filter lowpass noisy/*.mrc -o filtered/ --cutoff 0.05
    cryoden filter gaussian noisy.mrc -o filtered/ --sigma 2
    cryoden filter bandpass noisy.mrc -o filtered/ --low-cutoff 0.02 --cutoff 0.4 --edge soft

Cutoffs are in Nyquist units (1 = Nyquist = 0.5 cycles/pixel). Each output is
``OUTDIR/<input basename>.mrc``; inputs are never overwritten. Outputs are float32 (MRC mode 2),
or float16 (mode 12, half the disk) with ``--dtype float16``; an integer input (int8, int16,
uint16) comes back as floating point too, since filtered values are not integers. Each output
keeps its input's voxel size and origin; an unknown voxel size (0 or NaN in the header) stays
unknown, written as 0, with a warning. Every input is read and checked (header, finite data) and
the filter's parameters are checked against every image's size before any output is written.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import numpy as np
import typer

from cryoden.cli.batch import DTYPE, check_inputs, plan_outputs, write_output
from cryoden.cli.common import (
    echo,
    flag_names,
    output_folder,
    progress_bar,
    write_provenance,
)
from cryoden.cli.options import INPUTS, OUTPUT_DIR, number_option, side_option
from cryoden.errors import ParameterError
from cryoden.filters import FILTERS, apply_filter, check_filter_parameters
from cryoden.io import read_mrc
from cryoden.io.stacks import as_images

#: The filters' parameters and the flags that set them.
FLAGS = {
    "cutoff_nyquist": "--cutoff",
    "high_nyquist": "--cutoff",
    "low_nyquist": "--low-cutoff",
    "sigma_px": "--sigma",
    "size": "--size",
    "edge": "--edge",
}


def filter_defaults(name: str) -> dict[str, Any]:
    """The keyword arguments of filter ``name`` that have a default, with their defaults."""
    parameters = inspect.signature(FILTERS[name]).parameters.values()
    return {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}


#: The window filters' default sizes, for --help.
_SIZE_DEFAULTS = ", ".join(
    f"{name} {filter_defaults(name)['size']}" for name in ("mean", "median", "wiener")
)


def get_filter_name(name: str) -> str:
    """The registry's spelling of a filter name (case and ``_``/``-`` insensitive)."""
    key = name.lower().replace("_", "-")
    if key not in FILTERS:
        raise ParameterError(f"unknown filter {name!r}; known: {', '.join(FILTERS)}")
    return key


def filter_parameters(
    name: str,
    *,
    cutoff: float | None,
    low_cutoff: float | None,
    sigma: float | None,
    size: int | None,
    edge: str | None,
) -> dict[str, Any]:
    """Map the CLI's options onto the named filter's keyword arguments: those given, and the
    filter's defaults of those its options set (``sigma_px``, ``size``, ``edge``), so that the
    provenance records the values used."""
    name = get_filter_name(name)
    params: dict[str, Any] = {}
    if name in ("lowpass", "highpass"):
        if cutoff is None:
            raise ParameterError(f"the {name} filter needs --cutoff (Nyquist units, in (0, 1])")
        params = {"cutoff_nyquist": cutoff, "edge": edge}
    elif name == "bandpass":
        if cutoff is None or low_cutoff is None:
            raise ParameterError("the bandpass filter needs --low-cutoff and --cutoff")
        params = {"low_nyquist": low_cutoff, "high_nyquist": cutoff, "edge": edge}
    elif name == "gaussian":
        params = {"sigma_px": sigma}
    elif name in ("mean", "median", "wiener"):  # wiener-fourier takes no window
        params = {"size": size}
    defaults = filter_defaults(name)
    return {k: defaults[k] if v is None else v for k, v in params.items()}


def command(
    name: str = typer.Argument(
        ...,
        metavar="FILTER",
        help="mean, median, gaussian, lowpass, highpass, bandpass, wiener, wiener-fourier.",
    ),
    inputs: list[Path] = INPUTS,
    out_dir: Path = OUTPUT_DIR,
    cutoff: float = number_option(
        "--cutoff",
        "Low-/high-pass cutoff, or band-pass upper edge, in Nyquist units, in (0, 1].",
        above=0,
        maximum=1,
    ),
    low_cutoff: float = number_option(
        "--low-cutoff", "Band-pass lower edge (Nyquist), in [0, 1).", minimum=0, maximum=1
    ),
    sigma: float = number_option(
        "--sigma",
        "Gaussian sigma in pixels, >= 0; its kernel (8 sigma wide) must not exceed the image "
        f"(default: {filter_defaults('gaussian')['sigma_px']:g}).",
        minimum=0,
    ),
    size: int = side_option(
        "--size",
        f"Window size in pixels, odd (mean, median, wiener; default: {_SIZE_DEFAULTS}).",
        odd=True,
    ),
    edge: str = typer.Option(
        None,
        "--edge",
        help=f"Fourier filter edge: hard or soft (default: {filter_defaults('lowpass')['edge']}).",
    ),
    dtype: str = DTYPE,
) -> None:
    """Filter MRC images with a classical filter; writes OUTDIR/<basename>.mrc."""
    name = get_filter_name(name)
    params = filter_parameters(
        name, cutoff=cutoff, low_cutoff=low_cutoff, sigma=sigma, size=size, edge=edge
    )
    # Fail on a bad input or parameter before writing anything: every header, the filter's
    # parameters against every image's size, then every input's data (read_mrc refuses NaN).
    outputs, headers = plan_outputs(inputs, out_dir)
    with flag_names(FLAGS):
        for shape in {header.shape for header in headers}:
            check_filter_parameters(name, shape, **params)
    notes = check_inputs(inputs, headers, dtype, lambda path, mrc: as_images(mrc))
    notes.log()
    output_folder(out_dir)
    with progress_bar(f"filter {name}", total=len(inputs)) as progress:
        for i, (path, out) in enumerate(zip(inputs, outputs)):
            mrc = read_mrc(path)
            stack = as_images(mrc)
            with flag_names(FLAGS):
                result = np.stack([apply_filter(name, image, **params) for image in stack])
            write_output(out, result, mrc, protected=inputs, dtype=dtype)
            progress(i + 1, len(inputs))
    write_provenance(
        out_dir, "filter", {"filter": name, "inputs": inputs, "dtype": dtype or "float32", **params}
    )
    echo(f"wrote {len(outputs)} file(s) to {out_dir}")
