"""Argument checks shared by the filters (messages name the option and show the value)."""

from __future__ import annotations

import numpy as np

from cryoden.errors import ParameterError


def as_image(image: np.ndarray) -> np.ndarray:
    """``image`` as a 2D float32 array; ParameterError (showing the shape) otherwise."""
    array = np.asarray(image)
    if array.ndim != 2:
        raise ParameterError(f"filters need a 2D image (H, W), got shape {array.shape}")
    if array.size == 0:
        raise ParameterError(f"filters need a non-empty image, got shape {array.shape}")
    if np.iscomplexobj(array) or not np.issubdtype(array.dtype, np.number):
        raise ParameterError(f"filters need a real-valued image, got dtype {array.dtype}")
    return array.astype(np.float32, copy=False)


def check_odd_size(name: str, size: int) -> int:
    """A window size: an odd positive integer (an even window would shift the image by 0.5 px)."""
    if (
        isinstance(size, bool)
        or not isinstance(size, (int, np.integer))
        or size < 1
        or size % 2 == 0
    ):
        raise ParameterError(f"{name} must be an odd positive integer (pixels), got {size!r}")
    return int(size)


def check_nonnegative(name: str, value: float) -> float:
    """A finite number >= 0."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a number >= 0, got {value!r}") from None
    if not np.isfinite(number) or number < 0:
        raise ParameterError(f"{name} must be a finite number >= 0, got {value!r}")
    return number
