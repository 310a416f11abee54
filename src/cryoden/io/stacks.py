"""Turning MRC inputs (images, stacks, volumes) into stacks of 2D images and back."""

from __future__ import annotations

import numpy as np

from cryoden.errors import InputFileError
from cryoden.io.mrc import MrcData


def as_images(mrc: MrcData) -> np.ndarray:
    """An input's data as a stack ``(N, H, W)``; a volume or stack gives its sections."""
    data = mrc.data
    if data.ndim == 2:
        return data[None]
    if data.ndim == 3:
        return data
    raise InputFileError(mrc.path, f"expected a 2D image or a stack, got shape {data.shape}")


def from_images(stack: np.ndarray, like: MrcData) -> np.ndarray:
    """Undo :func:`as_images` for an output that mirrors input ``like``."""
    return stack[0] if like.data.ndim == 2 else stack
