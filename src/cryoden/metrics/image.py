"""Image similarity metrics: Pearson cross-correlation, PSNR and SSIM.

All compare arrays of the same shape in float64 and return a Python float. The reference comes
first where the metric is not symmetric; PSNR and SSIM take their data range from the reference
by default (``max - min``), so scores of several denoisers of one image are comparable.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage

from cryoden.errors import ParameterError

logger = logging.getLogger(__name__)

#: SSIM constants of Wang et al. (2004).
SSIM_SIGMA_PX = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
#: Gaussian window truncated at 3.5 sigma: an 11 x 11 window for sigma 1.5, as in the paper.
SSIM_TRUNCATE = 3.5


def check_image_pair(a: np.ndarray, b: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Two same-shape, non-empty, real, finite arrays as float64, or a ParameterError naming
    ``what``."""
    x = np.asarray(a)
    y = np.asarray(b)
    if x.shape != y.shape:
        raise ParameterError(f"{what} needs images of the same shape, got {x.shape} and {y.shape}")
    if x.size == 0:
        raise ParameterError(f"{what} needs non-empty images, got shape {x.shape}")
    if np.iscomplexobj(x) or np.iscomplexobj(y):
        raise ParameterError(f"{what} needs real-valued images")
    x = x.astype(np.float64)
    y = y.astype(np.float64)
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ParameterError(f"{what}: the images contain NaN or infinite values")
    return x, y


def _data_range(reference: np.ndarray, data_range: float | None, what: str) -> float:
    if data_range is None:
        value = float(reference.max() - reference.min())
        if value <= 0:
            raise ParameterError(
                f"{what}: the reference is constant, so its data range is 0; pass data_range"
            )
        return value
    value = float(data_range)
    if not np.isfinite(value) or value <= 0:
        raise ParameterError(f"data_range must be > 0, got {data_range!r}")
    return value


def cross_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation coefficient of two images of the same shape.

    Parameters
    ----------
    a, b
        Arrays of the same shape (any dimensionality).

    Returns
    -------
    float
        In [-1, 1]. 0.0 if either image is constant (no linear relation can be measured; a
        low-pass that keeps only the mean gives such an image).

    Raises
    ------
    ParameterError
        If the shapes differ (the message gives both) or the images are not finite.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(12.0).reshape(3, 4)
    >>> cross_correlation(x, 2 * x + 1), cross_correlation(x, -x)
    (1.0, -1.0)
    """
    x, y = check_image_pair(a, b, "cross_correlation")
    x = x - x.mean()
    y = y - y.mean()
    denominator = float(np.sqrt(np.sum(x * x) * np.sum(y * y)))
    if denominator == 0.0:
        logger.debug("cross_correlation: constant image, returning 0")
        return 0.0
    return float(np.clip(np.sum(x * y) / denominator, -1.0, 1.0))


def psnr(reference: np.ndarray, image: np.ndarray, *, data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio in dB: ``10 log10(data_range**2 / MSE)``.

    Parameters
    ----------
    reference
        The clean (ground-truth) image.
    image
        The image to score, same shape.
    data_range
        Peak-to-peak signal range in the images' units; default ``max - min`` of ``reference``.

    Returns
    -------
    float
        PSNR in dB; ``inf`` when the images are identical.

    Raises
    ------
    ParameterError
        If the shapes differ, the images are not finite, or the data range is not positive
        (a constant reference needs an explicit ``data_range``).
    """
    ref, img = check_image_pair(reference, image, "psnr")
    mse = float(np.mean((ref - img) ** 2))
    peak = _data_range(ref, data_range, "psnr")
    if mse == 0.0:
        return float("inf")
    return float(10.0 * np.log10(peak**2 / mse))


def ssim(reference: np.ndarray, image: np.ndarray, *, data_range: float | None = None) -> float:
    """Mean structural similarity index (Wang et al. 2004) with a Gaussian window.

    Local means, variances and covariance use a Gaussian window of sigma 1.5 pixels (truncated
    at 3.5 sigma, 11 x 11), with ``C1 = (0.01 L)**2`` and ``C2 = (0.03 L)**2`` for the data range
    ``L``. Borders are mirrored and the mean is taken away from a 5-pixel border (the window
    radius), as in scikit-image, when the image is large enough.

    Parameters
    ----------
    reference
        The clean (ground-truth) image, 2D (3D volumes work too, with a 3D window).
    image
        The image to score, same shape.
    data_range
        Peak-to-peak signal range; default ``max - min`` of ``reference``.

    Returns
    -------
    float
        Mean SSIM, at most 1 (1 for identical images).

    Raises
    ------
    ParameterError
        If the shapes differ, the images are not finite or the data range is not positive.

    References
    ----------
    Z. Wang, A. C. Bovik, H. R. Sheikh and E. P. Simoncelli, "Image quality assessment: from
    error visibility to structural similarity", IEEE Trans. Image Process. 13 (2004) 600-612.
    """
    ref, img = check_image_pair(reference, image, "ssim")
    peak = _data_range(ref, data_range, "ssim")
    c1 = (SSIM_K1 * peak) ** 2
    c2 = (SSIM_K2 * peak) ** 2

    def smooth(values: np.ndarray) -> np.ndarray:
        return ndimage.gaussian_filter(
            values, sigma=SSIM_SIGMA_PX, mode="reflect", truncate=SSIM_TRUNCATE
        )

    # Centre on the reference mean for accuracy of E[x y] - E[x] E[y]; SSIM's means are shifted
    # equally, so add the mean back into the luminance term.
    offset = float(ref.mean())
    x = ref - offset
    y = img - offset
    mu_x = smooth(x)
    mu_y = smooth(y)
    var_x = smooth(x * x) - mu_x * mu_x
    var_y = smooth(y * y) - mu_y * mu_y
    cov = smooth(x * y) - mu_x * mu_y
    mu_x += offset
    mu_y += offset
    numerator = (2.0 * mu_x * mu_y + c1) * (2.0 * cov + c2)
    denominator = (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    ssim_map = numerator / denominator
    radius = int(SSIM_TRUNCATE * SSIM_SIGMA_PX + 0.5)
    if all(n > 2 * radius for n in ssim_map.shape):
        ssim_map = ssim_map[tuple(slice(radius, n - radius) for n in ssim_map.shape)]
    return float(ssim_map.mean())
