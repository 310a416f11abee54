"""Denoise MRC images with a trained model; writes OUTDIR/<basename>.mrc.

Example::

    cryoden denoise --model model/ micrographs/*.mrc -o denoised/
    cryoden denoise -m n2v.safetensors stack.mrcs -o out/ --device cuda --tile 1024
    cryoden denoise --model model/ int16/*.mrc -o denoised/ --dtype float16

Each output is ``OUTDIR/<input basename>.mrc`` (``.mrcs`` for stacks), in the input's intensity
scale. Outputs are float32 (MRC mode 2), or float16 (mode 12, half the disk) with ``--dtype
float16``; an integer input (int8, int16, uint16) comes back as floating point too, since denoised
values are not integers. Each output keeps its input's voxel size and origin; an unknown voxel
size (0 or NaN in the header) stays unknown, written as 0, with a warning. ``OUTDIR/preview.png``
shows the first input raw beside denoised, on the same grey scale (``--no-preview``: none).

The model is loaded once; images are denoised tile by tile with overlapping, smoothly blended
tiles (no seams), so any size fits in memory. Inputs are never overwritten. The options, the
model and every input (header, then its data read and checked for NaN and infinite values) are
checked before any output is written. The folder's ``cryoden_provenance.json`` keeps earlier
runs' records under ``earlier_runs``.
"""

from __future__ import annotations

import inspect
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import typer

from cryoden import __version__
from cryoden.cli.batch import DTYPE, check_inputs, plan_outputs, write_output
from cryoden.cli.common import (
    echo,
    flag_names,
    output_folder,
    progress_bar,
    write_provenance,
)
from cryoden.cli.options import (
    DEVICE,
    INPUTS,
    OUTPUT_DIR,
    THREADS,
    choice_option,
    count_option,
    no_preview_option,
    number_option,
    side_option,
)
from cryoden.cli.previews import write_preview
from cryoden.errors import InputFileError, ParameterError
from cryoden.inference.denoise import BACKENDS, PRECISIONS, Denoiser
from cryoden.io import MrcData, read_mrc
from cryoden.models import load_model

#: The Denoiser's parameters and the flags that set them.
FLAGS = {
    "device": "--device",
    "tile": "--tile",
    "batch": "--batch",
    "threads": "--threads",
    "precision": "--precision",
    "memory_mb": "--memory-mb",
    "backend": "--backend",
}
#: The Denoiser's own defaults, shown in --help (the option itself defaults to None).
_DEFAULTS = {name: param.default for name, param in inspect.signature(Denoiser).parameters.items()}


def command(
    inputs: list[Path] = INPUTS,
    model: Path = typer.Option(..., "--model", "-m", metavar="MODEL", help="Model folder or file."),
    out_dir: Path = OUTPUT_DIR,
    device: str = DEVICE,
    tile: int = side_option("--tile", "Tile side in pixels (default: from memory)."),
    batch: int = count_option("--batch", "Tiles per forward pass."),
    threads: int = THREADS,
    precision: str = choice_option(
        "--precision",
        "auto (bf16 where the device has it natively), fp32, bf16 "
        f"(default: {_DEFAULTS['precision']}).",
        PRECISIONS,
    ),
    memory_mb: float = number_option(
        "--memory-mb",
        "Activation memory budget per batch of tiles (MiB), > 0.",
        above=0,
        maximum=2.0**40,
    ),
    polyphase: bool = typer.Option(
        None,
        "--polyphase/--no-polyphase",
        help="Denoise the 2x2 sub-images at half size and merge them (default: for "
        "Neighbor2Neighbor models only, which learned at half size).",
        show_default=False,
    ),
    backend: str = choice_option(
        "--backend",
        "auto (ONNX Runtime for fp32 on the CPU when installed, else PyTorch), torch, "
        "onnxruntime (fp32 CPU only; pip install 'cryoden\\[onnx]') "
        f"(default: {_DEFAULTS['backend']}).",
        BACKENDS,
    ),
    dtype: str = DTYPE,
    no_preview: bool = no_preview_option("the first input beside its denoised version"),
) -> None:
    """Denoise MRC images with a trained model; writes OUTDIR/<basename>.mrc."""
    loaded = load_model(model)
    outputs, headers = plan_outputs(inputs, out_dir)  # every header, before reading any data
    notes = check_inputs(inputs, headers, dtype, _check_shape)
    given: dict[str, Any] = {
        "device": device, "tile": tile, "batch": batch, "threads": threads,
        "precision": precision, "memory_mb": memory_mb, "backend": backend,
    }  # fmt: skip
    with flag_names(FLAGS):
        denoiser = Denoiser(
            loaded, polyphase=polyphase, **{k: v for k, v in given.items() if v is not None}
        )
    notes.log()
    output_folder(out_dir)
    timings: dict[str, float] = {}
    label = f"cryoden {__version__} denoise {Path(model).name} {time.strftime('%Y-%m-%d')}"
    protected = [*inputs, model]
    preview = None
    # Reading the next file and writing the previous result run in threads while the network
    # computes (torch releases the GIL), so I/O overlaps with compute.
    with (
        ThreadPoolExecutor(max_workers=2) as pool,
        progress_bar("denoise", total=len(inputs)) as progress,
    ):
        next_read: Future[MrcData] = pool.submit(read_mrc, inputs[0])
        pending: Future[None] | None = None
        for i, (path, out) in enumerate(zip(inputs, outputs)):
            start = time.perf_counter()
            mrc = next_read.result()
            if i + 1 < len(inputs):
                next_read = pool.submit(read_mrc, inputs[i + 1])
            _check_shape(path, mrc)
            try:
                result = denoiser(mrc.data)
            except ParameterError as exc:  # about this image, not an option
                raise InputFileError(path, str(exc)) from None
            if pending is not None:
                pending.result()
            pending = pool.submit(
                write_output, out, result, mrc,
                protected=protected, dtype=dtype, labels=(*mrc.labels, label),
            )  # fmt: skip
            if i == 0 and not no_preview:
                preview = write_preview(out_dir, mrc.data, result)
            del mrc, result
            timings[str(path)] = round(time.perf_counter() - start, 3)
            progress(i + 1, len(inputs))
        if pending is not None:
            pending.result()
    write_provenance(
        out_dir,
        "denoise",
        {"model": model, "model_config": loaded.config.to_dict(), "inputs": inputs,
         "outputs": outputs, "device": str(denoiser.device), "precision": denoiser.precision,
         "backend": denoiser.backend, "dtype": dtype or "float32", "preview": preview,
         "seconds": timings},
    )  # fmt: skip
    echo(f"denoised {len(inputs)} file(s) into {out_dir}")


#: Smallest image side the tiled denoiser handles, in pixels.
MIN_SIDE_PX = 3


def _check_shape(path: Path, mrc: MrcData) -> None:
    """Refuse an input that is not a 2D image or a stack of them, or is too small to tile."""
    if mrc.data.ndim not in (2, 3):
        raise InputFileError(path, f"expected a 2D image or a stack, got {mrc.data.shape}")
    height, width = mrc.data.shape[-2:]
    if min(height, width) < MIN_SIDE_PX:
        raise InputFileError(
            path, f"is {width}x{height} pixels; denoising needs at least {MIN_SIDE_PX} per side"
        )
