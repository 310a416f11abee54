"""Apply a classical filter to MRC images; outputs mirror the inputs under OUTDIR.

Example::

    cryoden filter lowpass noisy/*.mrc -o filtered/ --cutoff 0.05
    cryoden filter gaussian noisy.mrc -o filtered/ --sigma 2
    cryoden filter bandpass noisy.mrc -o filtered/ --low-cutoff 0.02 --cutoff 0.4 --edge soft
    cryoden filter lowpass micrographs.star -o lowpassed/ --cutoff 0.1

Cutoffs are in Nyquist units (1 = Nyquist = 0.5 cycles/pixel). Inputs are MRC files, folders of
them, quoted glob patterns, one RELION STAR file or cryoSPARC .cs files; each output is
OUTDIR/<the input's path below the inputs' common folder> with .mrc (.mrcs for stacks), and a
STAR input also gives OUTDIR/micrographs_filtered.star (every block and column kept,
rlnMicrographName pointing at the filtered files, the raw paths in rlnMicrographNameRaw). Inputs
are never overwritten. Outputs are float32 (MRC mode 2), or float16 (mode 12, half the disk) with
``--dtype float16``; an integer input (int8, int16, uint16) comes back as floating point too,
since filtered values are not integers. Each output keeps its input's voxel size and origin; an
unknown voxel size (0 or NaN in the header) stays unknown, written as 0, with a warning.

The filter's parameters are checked before any work. An input that cannot be filtered
(unreadable, truncated, NaN values, smaller than the filter's kernel) is reported in one line
naming it; the others are filtered, and the command ends with status 1 and a summary of how many
succeeded, were skipped and failed. A rerun of the same command skips the outputs already
complete (same input, filter and parameters, recorded in each output's header; --overwrite
redoes them)."""

from __future__ import annotations

import functools
import inspect
import time
from pathlib import Path
from typing import Any

import numpy as np
import typer

from cryoden import __version__
from cryoden.cli.batch import (
    DTYPE,
    INPUTS,
    OVERWRITE,
    InputNotes,
    batch_console,
    log_skipped,
    plan_batch,
    summarize,
    write_outputs_star,
)
from cryoden.cli.common import MAX_SIDE_PX, flag_names, write_provenance
from cryoden.cli.options import OUTPUT_DIR, number_option, side_option
from cryoden.errors import ParameterError
from cryoden.filters import FILTERS, apply_filter, check_filter_parameters
from cryoden.pipeline.batch import ItemResult, partition_complete, run_batch
from cryoden.pipeline.mrc_job import MrcFileJob

#: The STAR file of the outputs, in OUTDIR, when the input is a STAR file.
STAR_NAME = "micrographs_filtered.star"

#: The filters' parameters and the flags that set them.
FLAGS = {
    "cutoff_nyquist": "--cutoff",
    "high_nyquist": "--cutoff",
    "low_nyquist": "--low-cutoff",
    "sigma_px": "--sigma",
    "size": "--size",
    "edge": "--edge",
    "dtype": "--dtype",
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
    overwrite: bool = OVERWRITE,
) -> None:
    """Filter MRC images with a classical filter; outputs mirror the inputs under OUTDIR."""
    name = get_filter_name(name)
    params = filter_parameters(
        name, cutoff=cutoff, low_cutoff=low_cutoff, sigma=sigma, size=size, edge=edge
    )
    with flag_names(FLAGS):  # the parameters themselves; their fit to each image comes later
        check_filter_parameters(name, (MAX_SIDE_PX, MAX_SIDE_PX), **params)
    dtype = dtype or "float32"
    recipe = {"command": "filter", "filter": name, "parameters": params, "dtype": dtype}
    plan = plan_batch(inputs, out_dir, protected=[]).with_keys(recipe)
    todo, complete = partition_complete(plan.items, overwrite=overwrite)
    log_skipped(len(complete))
    label = f"cryoden {__version__} filter {name} {time.strftime('%Y-%m-%d')}"
    job = MrcFileJob(
        functools.partial(filter_images, name, params), dtype=dtype, history_label=label
    )
    with batch_console(f"filter {name}", len(todo), FLAGS) as on_result:
        report = run_batch(job, todo, on_result=on_result)
    report.results[:0] = [ItemResult(item, "skipped") for item in complete]
    if any(r.status in ("done", "skipped") for r in report.results):
        star = write_outputs_star(plan, report, out_dir, STAR_NAME)
        InputNotes.from_results(report.results, dtype).log()
        write_provenance(
            out_dir,
            "filter",
            {"filter": name, "inputs": [i.source for i in plan.items],
             "outputs": [i.output for i in plan.items], "star": star,
             "dtype": dtype, **params,
             "failed": {str(r.item.source): r.problem for r in report.failed}},
        )  # fmt: skip
    code = summarize(f"filter {name}", report, len(plan.items), out_dir)
    if code:
        raise typer.Exit(code)


def filter_images(name: str, params: dict[str, Any], source: Path, data: np.ndarray) -> np.ndarray:
    """Filter each image of ``data`` (an image or a stack) with filter ``name``: the per-file
    work of ``cryoden filter``. Parameters that do not fit the image (a kernel larger than it)
    fail this file alone."""
    stack = data if data.ndim == 3 else data[None]
    check_filter_parameters(name, stack.shape, **params)
    result = np.stack([apply_filter(name, image, **params) for image in stack])
    return result if data.ndim == 3 else result[0]
