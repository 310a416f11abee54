"""The preview PNGs of ``train`` and ``denoise``: a raw image beside what the model made of it,
both on the raw image's contrast window (one percentile window), so that they can be compared by
eye.

A preview is a PNG beside the outputs (``OUTDIR/preview.png``; ``preview.png`` in a model folder,
``<model>.preview.png`` beside a single-file model), never an MRC file, so nothing that looks
for outputs or checkpoints takes it for one. It is written atomically; a preview that cannot be
made is logged and never fails a command whose outputs are written.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from cryoden.errors import CryodenError
from cryoden.io.images import export_comparison
from cryoden.models import load_model

logger = logging.getLogger("cryoden.cli.previews")

#: The preview of a batch command, in OUTDIR.
PREVIEW_NAME = "preview.png"
#: Largest width of a preview (raw and processed side by side), in pixels.
PREVIEW_WIDTH_PX = 1024
#: Largest side of the image the training preview denoises, in pixels (a centre crop).
PREVIEW_SIDE_PX = 512


def write_preview(out_dir: Path, raw: np.ndarray, processed: np.ndarray) -> Path | None:
    """``OUTDIR/preview.png``: the first image of ``raw`` beside the same of ``processed``, on
    the raw image's contrast window, at most :data:`PREVIEW_WIDTH_PX` wide. A preview that
    cannot be written is logged, never fatal (the outputs are written)."""
    first_raw = raw if raw.ndim == 2 else raw.reshape(-1, *raw.shape[-2:])[0]
    first_out = processed if processed.ndim == 2 else processed.reshape(-1, *raw.shape[-2:])[0]
    path = Path(out_dir) / PREVIEW_NAME
    try:
        export_comparison(path, first_raw, first_out, max_width_px=PREVIEW_WIDTH_PX)
    except CryodenError as exc:
        logger.warning("no preview: %s", exc)
        return None
    return path


def preview_path(out: Path) -> Path:
    """Where the training preview goes: ``preview.png`` in a model folder, ``<out>.preview.png``
    beside a single-file model (next to its training log)."""
    return out / "preview.png" if out.is_dir() else Path(f"{out}.preview.png")


def _centre_crop(image: Any, side_px: int) -> Any:
    """The centre ``side_px`` x ``side_px`` of a 2D image (all of a side that is shorter)."""
    height, width = image.shape
    top, left = max((height - side_px) // 2, 0), max((width - side_px) // 2, 0)
    return image[top : top + side_px, left : left + side_px]


def write_training_preview(out: Path, image: Any, device: str | None) -> Path | None:
    """Denoise a centre crop of ``image`` with the model just written at ``out`` and write it
    beside the raw crop (:func:`preview_path`); a preview that cannot be made is logged, never
    fatal (the model is already saved)."""
    from cryoden.inference.denoise import Denoiser

    raw = _centre_crop(image, PREVIEW_SIDE_PX)
    path = preview_path(out)
    try:
        denoised = Denoiser(load_model(out), device=device)(raw)
        export_comparison(path, raw, denoised)
    except CryodenError as exc:
        logger.warning("no preview: %s", exc)
        return None
    logger.info("preview (raw | denoised, same contrast): %s", path)
    return path
