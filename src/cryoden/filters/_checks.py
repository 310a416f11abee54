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


#: Gaussian kernels are truncated at this many standard deviations (scipy's default).
GAUSSIAN_TRUNCATE = 4.0


def gaussian_kernel_side(sigma_px: float) -> int:
    """Taps along each axis of the Gaussian kernel of ``sigma_px`` pixels (truncated at
    :data:`GAUSSIAN_TRUNCATE` sigma, as :func:`scipy.ndimage.gaussian_filter` builds it)."""
    return 2 * int(GAUSSIAN_TRUNCATE * sigma_px + 0.5) + 1


def max_kernel_side(image_shape: tuple[int, ...]) -> int:
    """The most taps along an axis a kernel may have on an image of ``image_shape``
    ``(..., H, W)``: its pixel count, or twice its longer side plus one (a window that reaches
    across the whole mirrored image from any pixel) where that is more."""
    height, width = (int(n) for n in image_shape[-2:])
    return max(height * width, 2 * max(height, width) + 1)


def check_kernel(name: str, value: float, side_px: int, image_shape: tuple[int, ...]) -> None:
    """Refuse a kernel of ``side_px`` taps along an axis larger than the image of
    ``image_shape`` allows (:func:`max_kernel_side`): such a kernel only repeats the mirrored
    image, and a huge one (``sigma_px=1e9``) would not fit in memory."""
    limit = max_kernel_side(image_shape)
    if side_px > limit:
        height, width = image_shape[-2:]
        raise ParameterError(
            f"{name}={value!r} gives a kernel of {side_px} pixels, larger than a "
            f"{width}x{height} image allows ({limit})"
        )
