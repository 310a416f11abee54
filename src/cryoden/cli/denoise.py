"""Denoise micrographs with a trained model.

Example::

    cryoden denoise --model model/ micrographs/*.mrc -o denoised/
    cryoden denoise --model n2v.safetensors stack.mrcs -o out/ --device cuda --tile 1024

Each output is ``OUTDIR/<input basename>.mrc`` (``.mrcs`` for stacks) with the input's voxel size
and origin, in the input's intensity scale. The model is loaded once; images are denoised tile by
tile with overlapping, smoothly blended tiles (no seams), so any size fits in memory. Inputs are
never overwritten; all inputs are checked before anything is written.
"""

from __future__ import annotations

import inspect
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import typer

from cryoden import __version__
from cryoden.cli.common import flag_names, output_paths, progress_bar, write_provenance
from cryoden.errors import InputFileError
from cryoden.inference.denoise import Denoiser
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
    device: str = typer.Option(None, "--device", help="cpu, cuda, mps (default: best available)."),
    tile: int = typer.Option(None, "--tile", help="Tile side in pixels (default: from memory)."),
    batch: int = typer.Option(None, "--batch", help="Tiles per forward pass."),
    threads: int = typer.Option(None, "--threads", help="CPU threads for torch."),
    precision: str = typer.Option(
        None,
        "--precision",
        help="auto (bf16 where the device has it natively), fp32, bf16 "
        f"(default: {_DEFAULTS['precision']}).",
    ),
    memory_mb: float = typer.Option(
        None, "--memory-mb", help="Activation memory budget per batch of tiles (MiB)."
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
    ),
) -> None:
    """Denoise MRC images with a trained model; writes OUTDIR/<basename>.mrc."""
    loaded = load_model(model)
    outputs = output_paths(inputs, out_dir)
    for path in inputs:  # fail on a bad input before writing anything
        probe_mrc(path)
    given = {
        "device": device, "tile": tile, "batch": batch, "threads": threads,
        "precision": precision, "memory_mb": memory_mb, "backend": backend,
    }  # fmt: skip
    with flag_names(FLAGS):
        denoiser = Denoiser(
            loaded, polyphase=polyphase, **{k: v for k, v in given.items() if v is not None}
        )
    out_dir.mkdir(parents=True, exist_ok=True)
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
            if mrc.data.ndim not in (2, 3):
                raise InputFileError(path, f"expected a 2D image or a stack, got {mrc.data.shape}")
            result = denoiser(mrc.data)
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
         "device": str(denoiser.device), "precision": denoiser.precision,
         "backend": denoiser.backend, "seconds": timings},
    )  # fmt: skip
    typer.echo(f"denoised {len(inputs)} file(s) into {out_dir}")
