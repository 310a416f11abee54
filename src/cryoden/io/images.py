"""8-bit PNG/TIFF previews of images with percentile contrast.

Previews are for looking at, not for analysis: the values are clipped at two percentiles and
stretched linearly to 0-255. Use :func:`cryoden.io.write_mrc` to keep the data.
:func:`export_comparison` writes two images side by side (raw | denoised) with one contrast
window, taken from the first, so that both are shown on the same grey scale.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from cryoden.errors import ParameterError
from cryoden.io.atomic import atomic_output

logger = logging.getLogger(__name__)

PNG_SUFFIXES: tuple[str, ...] = (".png",)
TIFF_SUFFIXES: tuple[str, ...] = (".tif", ".tiff")


def to_uint8(
    image: np.ndarray, *, low_percentile: float = 0.5, high_percentile: float = 99.5
) -> np.ndarray:
    """Map an image to uint8 with a linear stretch between two percentiles.

    Parameters
    ----------
    image
        2D real array (any dtype).
    low_percentile, high_percentile
        Percentiles (0-100) of the finite values mapped to 0 and 255; values outside are clipped.

    Returns
    -------
    numpy.ndarray
        ``uint8`` array of the same shape. A constant image maps to 0; NaN and infinite pixels
        map to 0.

    Raises
    ------
    ParameterError
        If the image is not 2D or empty, or the percentiles are not ``0 <= low < high <= 100``.
    """
    array = np.asarray(image)
    if array.ndim != 2 or array.size == 0:
        raise ParameterError(
            f"a preview needs a non-empty 2D image (H, W), got shape {array.shape}"
        )
    if np.iscomplexobj(array):
        raise ParameterError("a preview needs a real image, got complex values")
    if not 0.0 <= low_percentile < high_percentile <= 100.0:
        raise ParameterError(
            "percentiles must satisfy 0 <= low < high <= 100, "
            f"got low={low_percentile}, high={high_percentile}"
        )
    return window_to_uint8(array, percentile_window(array, low_percentile, high_percentile))


def percentile_window(
    image: np.ndarray, low_percentile: float = 0.5, high_percentile: float = 99.5
) -> tuple[float, float]:
    """The values at two percentiles (0-100) of the finite pixels of ``image``; ``(0, 0)`` when
    it has none."""
    values = np.asarray(image, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return (0.0, 0.0)
    low, high = np.percentile(finite, [low_percentile, high_percentile])
    return (float(low), float(high))


def window_to_uint8(image: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    """``image`` mapped linearly from ``window = (low, high)`` (image units) to 0-255, clipped;
    NaN and infinite pixels, and every pixel of an empty window (``high <= low``), map to 0."""
    low, high = window
    values = np.asarray(image, dtype=np.float64)
    finite = np.isfinite(values)
    if not high > low:
        return np.zeros(values.shape, dtype=np.uint8)
    scaled = (np.where(finite, values, low) - low) * (255.0 / (high - low))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def downsample_to_width(image: np.ndarray, max_width_px: int) -> np.ndarray:
    """``image`` reduced by the smallest integer factor that makes it at most ``max_width_px``
    wide, each output pixel the mean of a factor x factor block (edge rows and columns that do
    not fill a block are dropped); unchanged when it is narrow enough."""
    array = np.asarray(image, dtype=np.float32)
    factor = -(-array.shape[1] // max(int(max_width_px), 1))
    if factor <= 1:
        return array
    height, width = (array.shape[0] // factor) * factor, (array.shape[1] // factor) * factor
    if height == 0 or width == 0:
        return array[::factor, ::factor]
    blocks = array[:height, :width].reshape(height // factor, factor, width // factor, factor)
    return np.asarray(blocks.mean(axis=(1, 3)), dtype=np.float32)


def side_by_side(
    left: np.ndarray,
    right: np.ndarray,
    *,
    gap_px: int = 4,
    low_percentile: float = 0.5,
    high_percentile: float = 99.5,
) -> np.ndarray:
    """Two 2D images of the same shape as one uint8 image ``[left | gap | right]``, both mapped
    with the contrast window of ``left`` (its two percentiles), the gap white.

    Raises
    ------
    ParameterError
        If the images are not 2D, or their shapes differ.
    """
    a, b = np.asarray(left), np.asarray(right)
    if a.ndim != 2 or a.shape != b.shape or a.size == 0:
        raise ParameterError(
            f"a side-by-side preview needs two 2D images of one shape, got {a.shape} and {b.shape}"
        )
    window = percentile_window(a, low_percentile, high_percentile)
    gap = np.full((a.shape[0], max(int(gap_px), 0)), 255, dtype=np.uint8)
    return np.concatenate([window_to_uint8(a, window), gap, window_to_uint8(b, window)], axis=1)


def export_comparison(
    path: str | os.PathLike[str],
    raw: np.ndarray,
    processed: np.ndarray,
    *,
    max_width_px: int = 1024,
) -> None:
    """Write a PNG (or TIFF) of ``raw`` beside ``processed`` (same shape), on the contrast
    window of ``raw`` (:func:`side_by_side`), each reduced (:func:`downsample_to_width`) so
    that the pair is at most about ``max_width_px`` wide; atomically, as
    :func:`export_preview`."""
    half = max(int(max_width_px) // 2, 1)
    pixels = side_by_side(downsample_to_width(raw, half), downsample_to_width(processed, half))
    _write_uint8(path, pixels)


def export_preview(
    path: str | os.PathLike[str],
    image: np.ndarray,
    *,
    low_percentile: float = 0.5,
    high_percentile: float = 99.5,
) -> None:
    """Write an 8-bit greyscale PNG or TIFF preview of a 2D image, atomically.

    Parameters
    ----------
    path
        Output file; the format follows the suffix: ``.png`` (Pillow) or ``.tif``/``.tiff``
        (tifffile).
    image
        2D real array ``(H, W)``.
    low_percentile, high_percentile
        Contrast limits as percentiles (0-100) of the image values, mapped to 0 and 255.

    Raises
    ------
    ParameterError
        For an unknown suffix, a non-2D image or invalid percentiles.
    OutputFileError
        If the output folder does not exist or is a file, or the file system refuses the write
        (full, read-only, permission denied); no file is left at ``path`` then.
    """
    _check_suffix(path)
    pixels = to_uint8(image, low_percentile=low_percentile, high_percentile=high_percentile)
    _write_uint8(path, pixels)


def _check_suffix(path: str | os.PathLike[str]) -> str:
    """The lower-case suffix of ``path`` if it names a preview format."""
    suffix = Path(path).suffix.lower()
    if suffix not in PNG_SUFFIXES + TIFF_SUFFIXES:
        known = ", ".join(PNG_SUFFIXES + TIFF_SUFFIXES)
        raise ParameterError(f"preview format {suffix or '(none)'!r} is not supported; use {known}")
    return suffix


def _write_uint8(path: str | os.PathLike[str], pixels: np.ndarray) -> None:
    """Write uint8 greyscale ``pixels`` as PNG or TIFF (by suffix), atomically."""
    target = Path(path)
    suffix = _check_suffix(target)
    with atomic_output(target) as tmp:
        if suffix in PNG_SUFFIXES:
            Image.fromarray(pixels).save(tmp, format="PNG")
        else:
            tifffile.imwrite(tmp, pixels, photometric="minisblack")
    logger.debug("wrote preview %s (%s)", target, pixels.shape)
