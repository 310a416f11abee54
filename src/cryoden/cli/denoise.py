"""Denoise micrographs with a trained model.

Example::

    cryoden denoise --model model/ micrographs/*.mrc -o denoised/
    cryoden denoise --model n2v.safetensors stack.mrcs -o out/ --device cuda --tile 1024

Each output is ``OUTDIR/<input basename>.mrc`` (``.mrcs`` for stacks) with the input's voxel size
and origin, in the input's intensity scale. The model is loaded once; images are denoised tile by
tile with overlapping, smoothly blended tiles (no seams), so any size fits in memory. Inputs are
never overwritten. The options, the model and every input (header, then its data read and checked
for NaN and infinite values) are checked before any output is written. The folder's
``cryoden_provenance.json`` keeps earlier runs' records under ``earlier_runs``.
"""

from __future__ import annotations

import inspect
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import typer

from cryoden import __version__
from cryoden.cli.common import (
    MAX_COUNT,
    MAX_SIDE_PX,
    check_output_folder,
    choice,
    device_option,
    echo,
    flag_names,
    number,
    output_folder,
    output_paths,
    progress_bar,
    write_provenance,
)
from cryoden.errors import InputFileError, ParameterError
from cryoden.inference.denoise import BACKENDS, PRECISIONS, Denoiser
from cryoden.io import MrcData, read_mrc, write_mrc
from cryoden.io.mrc import probe_mrc
from cryoden.io.stacks import from_images
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
    inputs: list[Path] = typer.Argument(..., metavar="IN...", help="MRC images or stacks."),
    model: Path = typer.Option(..., "--model", "-m", metavar="MODEL", help="Model folder or file."),
    out_dir: Path = typer.Option(..., "--output", "-o", metavar="OUTDIR", help="Output folder."),
    device: str = typer.Option(
        None,
        "--device",
        help="cpu, cuda, cuda:1, mps; one this machine has (default: best available).",
        callback=device_option("--device"),
    ),
    tile: int = typer.Option(
        None,
        "--tile",
        help="Tile side in pixels (default: from memory).",
        callback=number("--tile", minimum=1, maximum=MAX_SIDE_PX),
    ),
    batch: int = typer.Option(
        None,
        "--batch",
        help="Tiles per forward pass.",
        callback=number("--batch", minimum=1, maximum=MAX_COUNT),
    ),
    threads: int = typer.Option(
        None,
        "--threads",
        help="CPU threads for torch.",
        callback=number("--threads", minimum=1, maximum=1024),
    ),
    precision: str = typer.Option(
        None,
        "--precision",
        help="auto (bf16 where the device has it natively), fp32, bf16 "
        f"(default: {_DEFAULTS['precision']}).",
        callback=choice("--precision", PRECISIONS),
    ),
    memory_mb: float = typer.Option(
        None,
        "--memory-mb",
        help="Activation memory budget per batch of tiles (MiB), > 0.",
        callback=number("--memory-mb", above=0, maximum=2.0**40),
    ),
    polyphase: bool = typer.Option(
        None,
        "--polyphase/--no-polyphase",
        help="Denoise the 2x2 sub-images at half size and merge them (default: for "
        "Neighbor2Neighbor models only, which learned at half size).",
        show_default=False,
    ),
    backend: str = typer.Option(
        None,
        "--backend",
        help="auto (ONNX Runtime for fp32 on the CPU when installed, else PyTorch), torch, "
        "onnxruntime (fp32 CPU only; pip install 'cryoden\\[onnx]') "
        f"(default: {_DEFAULTS['backend']}).",
        callback=choice("--backend", BACKENDS),
    ),
) -> None:
    """Denoise MRC images with a trained model; writes OUTDIR/<basename>.mrc."""
    loaded = load_model(model)
    outputs = output_paths(inputs, out_dir)
    check_output_folder(out_dir)
    for path in inputs:  # fail on a bad header before reading any data
        probe_mrc(path)
    for path in inputs:  # every input's data, checked before any output is written
        _check_shape(path, read_mrc(path))
    given: dict[str, Any] = {
        "device": device, "tile": tile, "batch": batch, "threads": threads,
        "precision": precision, "memory_mb": memory_mb, "backend": backend,
    }  # fmt: skip
    with flag_names(FLAGS):
        denoiser = Denoiser(
            loaded, polyphase=polyphase, **{k: v for k, v in given.items() if v is not None}
        )
    output_folder(out_dir)
    timings: dict[str, float] = {}
    label = f"cryoden {__version__} denoise {Path(model).name} {time.strftime('%Y-%m-%d')}"
    protected = [*inputs, model]
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
                write_mrc,
                out,
                from_images(result if result.ndim == 3 else result[None], mrc),
                voxel_size_angstrom=mrc.voxel_size_angstrom,
                origin_angstrom=mrc.origin_angstrom,
                protected=protected,
                labels=(*mrc.labels, label),
            )
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
         "backend": denoiser.backend, "seconds": timings},
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
