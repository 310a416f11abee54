"""8-bit PNG/TIFF previews of images with percentile contrast.

Previews are for looking at, not for analysis: the values are clipped at two percentiles and
stretched linearly to 0-255. Use :func:`cryoden.io.write_mrc` to keep the data.
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
    values = array.astype(np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        return np.zeros(array.shape, dtype=np.uint8)
    low, high = np.percentile(values[finite], [low_percentile, high_percentile])
    if not high > low:
        return np.zeros(array.shape, dtype=np.uint8)
    scaled = (np.where(finite, values, low) - low) * (255.0 / (high - low))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


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
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in PNG_SUFFIXES + TIFF_SUFFIXES:
        known = ", ".join(PNG_SUFFIXES + TIFF_SUFFIXES)
        raise ParameterError(f"preview format {suffix or '(none)'!r} is not supported; use {known}")
    pixels = to_uint8(image, low_percentile=low_percentile, high_percentile=high_percentile)
    with atomic_output(target) as tmp:
        if suffix in PNG_SUFFIXES:
            Image.fromarray(pixels).save(tmp, format="PNG")
        else:
            tifffile.imwrite(tmp, pixels, photometric="minisblack")
    logger.debug("wrote preview %s (%s)", target, pixels.shape)
