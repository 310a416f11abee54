"""Real-space filters: mean, median, Gaussian and the adaptive local Wiener filter.

All take a 2D image of any size (odd included), work in float64 internally where accuracy needs
it, and return float32 of the same shape. Borders use mirror reflection (``mode="reflect"``:
``d c b a | a b c d | d c b a``), so a filter does not darken or brighten the image edge.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage

from cryoden.filters._checks import (
    as_image,
    check_kernel,
    check_nonnegative,
    check_odd_size,
    gaussian_kernel_side,
)

logger = logging.getLogger(__name__)

BORDER_MODE = "reflect"


def mean_filter(image: np.ndarray, *, size: int = 3) -> np.ndarray:
    """Moving average over a ``size`` x ``size`` window.

    Parameters
    ----------
    image
        2D image ``(H, W)``.
    size
        Window side in pixels; an odd positive integer (1 returns the image unchanged), at
        most the image's pixel count (or ``2 * max(H, W) + 1`` where that is more).

    Returns
    -------
    numpy.ndarray
        float32 ``(H, W)``.

    Examples
    --------
    >>> import numpy as np
    >>> out = mean_filter(np.ones((5, 4), dtype=np.float32), size=3)
    >>> out.dtype, bool(np.allclose(out, 1.0))
    (dtype('float32'), True)
    """
    img = as_image(image)
    size = check_odd_size("size", size)
    check_kernel("size", size, size, img.shape)
    out = ndimage.uniform_filter(img.astype(np.float64), size=size, mode=BORDER_MODE)
    return out.astype(np.float32)


def median_filter(image: np.ndarray, *, size: int = 3) -> np.ndarray:
    """Median over a ``size`` x ``size`` window.

    Parameters
    ----------
    image
        2D image ``(H, W)``.
    size
        Window side in pixels; an odd positive integer.

    Returns
    -------
    numpy.ndarray
        float32 ``(H, W)``.
    """
    img = as_image(image)
    size = check_odd_size("size", size)
    check_kernel("size", size, size, img.shape)
    return ndimage.median_filter(img, size=size, mode=BORDER_MODE).astype(np.float32, copy=False)


def gaussian_filter(image: np.ndarray, *, sigma_px: float = 1.0) -> np.ndarray:
    """Gaussian blur with standard deviation ``sigma_px`` pixels (kernel truncated at 4 sigma).

    Parameters
    ----------
    image
        2D image ``(H, W)``.
    sigma_px
        Standard deviation in pixels, >= 0 (0 returns a copy); the kernel (``2 * round(4 *
        sigma_px) + 1`` taps) must not exceed the image's pixel count (or ``2 * max(H, W) + 1``). Its Fourier transfer function is
        ``exp(-2 (pi sigma_px q)**2)`` at ``q`` cycles/pixel, i.e. 1/e at
        ``f = 1 / (sqrt(2) pi sigma_px)`` Nyquist units.

    Returns
    -------
    numpy.ndarray
        float32 ``(H, W)``.
    """
    img = as_image(image)
    sigma = check_nonnegative("sigma_px", sigma_px)
    check_kernel("sigma_px", sigma_px, gaussian_kernel_side(sigma), img.shape)
    if sigma == 0.0:
        return img.copy()
    out = ndimage.gaussian_filter(img.astype(np.float64), sigma=sigma, mode=BORDER_MODE)
    return out.astype(np.float32)


def wiener_local(
    image: np.ndarray, *, size: int = 5, noise_variance: float | None = None
) -> np.ndarray:
    """Adaptive local Wiener filter (Lee 1980; the algorithm of :func:`scipy.signal.wiener`).

    With the local mean ``m`` and variance ``v`` over a ``size`` x ``size`` window and the noise
    variance ``n``, each pixel becomes ``m + max(v - n, 0) / max(v, n) * (x - m)``: flat regions
    (``v <= n``) are replaced by their local mean, detailed ones (``v >> n``) are kept.

    Parameters
    ----------
    image
        2D image ``(H, W)``.
    size
        Window side in pixels; an odd positive integer.
    noise_variance
        Noise variance in the image's units squared. None estimates it as the mean of the local
        variances over the image (as :func:`scipy.signal.wiener` does), which overestimates it
        when the image has much structure.

    Returns
    -------
    numpy.ndarray
        float32 ``(H, W)``.

    Notes
    -----
    Unlike :func:`scipy.signal.wiener` the borders are mirrored rather than zero-padded, so the
    image edge is not pulled towards zero, and the result is float32.

    References
    ----------
    J.-S. Lee, "Digital image enhancement and noise filtering by use of local statistics",
    IEEE Trans. PAMI 2 (1980) 165-168.
    """
    img = as_image(image)
    size = check_odd_size("size", size)
    check_kernel("size", size, size, img.shape)
    x = img.astype(np.float64)
    offset = float(x.mean())
    x -= offset  # centring keeps E[x^2] - E[x]^2 accurate
    local_mean = ndimage.uniform_filter(x, size=size, mode=BORDER_MODE)
    local_sq = ndimage.uniform_filter(x * x, size=size, mode=BORDER_MODE)
    local_var = np.clip(local_sq - local_mean**2, 0.0, None)
    if noise_variance is None:
        noise = float(local_var.mean())
        logger.debug("wiener_local: estimated noise variance %.4g", noise)
    else:
        noise = check_nonnegative("noise_variance", noise_variance)
    denominator = np.maximum(local_var, noise)
    gain = np.divide(
        np.clip(local_var - noise, 0.0, None),
        denominator,
        out=np.zeros_like(local_var),
        where=denominator > 0,
    )
    out = local_mean + gain * (x - local_mean) + offset
    return out.astype(np.float32)
