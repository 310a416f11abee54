"""An automatic sample mask: where an image shows the sample, and where it does not.

A micrograph holds more than the vitreous ice and the particles in it: the carbon support film,
the edge of the hole, ice contamination, gold fiducials. Training a denoiser on patches of
those teaches it textures it will never need, and they can dominate a patch's normalisation. The
sample differs from them in its *local statistics*: over a window of many pixels, the mean
(the thickness and density of what the beam went through) and the variance (the shot noise that
follows the dose, plus the contrast of what is there) stay within a narrow range across the ice,
while carbon, contamination and hole edges shift one or both far outside it.

:func:`sample_mask` therefore computes the local mean and the local log-variance over a box
window, and scores every position by how far each lies from its median over the image, in units
of a robust spread (the median absolute deviation, scaled to a standard deviation, and never
less than the spread that the noise alone gives a mean over the window). Positions beyond
``threshold`` of either score are outliers; the outlying area is grown by half a window (the
window smears an edge over that much, and the pixels right next to a hole edge or a gold bead
are no sample either) and the rest is the sample. The spreads have floors
(:data:`MIN_MEAN_SPREAD`, :data:`MIN_LOG_VARIANCE_SPREAD`) so that an image of clean ice and
particles, whose local statistics hardly vary, keeps its particles: only a shift of the local
mean by about a pixel's noise standard deviation or more, or a change of the local variance by a
factor of about two or more, counts as not sample.

The majority of the image is assumed to be sample: the medians are taken over the whole image,
so an image mostly covered by carbon gets the carbon as its "sample". Works on any number of
axes (images, stacks handled image by image by the caller, volumes).
"""

from __future__ import annotations

import logging
import math

import numpy as np
from scipy import ndimage

from cryoden.errors import ParameterError

logger = logging.getLogger(__name__)

#: Robust z-score (in standard deviations) beyond which a local mean or variance is an outlier.
DEFAULT_THRESHOLD = 5.0
#: Default window side: this fraction of the smallest side, ...
WINDOW_FRACTION = 1.0 / 8.0
#: ... but at least this many pixels.
MIN_WINDOW_PX = 9
#: Below this fraction of sample pixels the mask is logged as suspicious.
LOW_SAMPLE_FRACTION = 0.1
#: Least spread of the local mean, in typical pixel standard deviations: with the default
#: threshold, a shift of the local mean by less than one pixel standard deviation is never an
#: outlier (particles and their density stay well below that; carbon, contamination and gold
#: do not).
MIN_MEAN_SPREAD = 0.2
#: Least spread of the local log-variance: with the default threshold, a change of the local
#: variance by less than a factor of about 2 is never an outlier.
MIN_LOG_VARIANCE_SPREAD = 0.15
#: The median absolute deviation of a normal distribution, in standard deviations.
_MAD_TO_SIGMA = 1.4826


def default_window_px(shape: tuple[int, ...]) -> int:
    """The default window side in pixels for an array of ``shape``: an eighth of the smallest
    side, at least :data:`MIN_WINDOW_PX`, odd."""
    side = max(MIN_WINDOW_PX, round(min(shape) * WINDOW_FRACTION))
    return int(side) | 1


def _robust_z(values: np.ndarray, floor: float) -> np.ndarray:
    """``(values - median) / spread``, the spread being the scaled median absolute deviation
    or ``floor``, whichever is larger."""
    centre = float(np.median(values))
    spread = _MAD_TO_SIGMA * float(np.median(np.abs(values - centre)))
    spread = max(spread, floor, np.finfo(np.float64).tiny)
    return (values - centre) / spread


def local_statistics(image: np.ndarray, window_px: int) -> tuple[np.ndarray, np.ndarray]:
    """The mean and variance of ``image`` over a box of ``window_px`` pixels along every axis
    around each position (edges mirrored), float64."""
    x = np.asarray(image, dtype=np.float64)
    mean = ndimage.uniform_filter(x, size=window_px, mode="reflect")
    square = ndimage.uniform_filter(x * x, size=window_px, mode="reflect")
    return mean, np.maximum(square - mean * mean, 0.0)


def sample_mask(
    image: np.ndarray,
    *,
    window_px: int | None = None,
    threshold: float = DEFAULT_THRESHOLD,
) -> np.ndarray:
    """Where ``image`` shows the sample: True there, False on outliers of local intensity
    (carbon, contamination, hole edges, gold), as the module docstring explains.

    Parameters
    ----------
    image
        An image ``(H, W)`` or a volume; any number of axes, each at least 2 pixels.
    window_px
        Side, in pixels along every axis, of the box the local mean and variance are taken
        over (odd, >= 3); default :func:`default_window_px`. Larger windows see only larger
        features; a window should be several times the particle size.
    threshold
        Robust z-score (standard deviations) beyond which a local mean or log-variance is an
        outlier, > 0.

    Returns
    -------
    numpy.ndarray
        Boolean array of ``image``'s shape, True on the sample.

    Raises
    ------
    ParameterError
        For a bad ``window_px`` or ``threshold``, or an image with non-finite values.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> image = rng.normal(size=(128, 128))
    >>> image[:, :32] += 3.0  # a thick strip of "carbon"
    >>> mask = sample_mask(image)
    >>> bool(mask[:, 48:].all()), bool(mask[:, :24].any())
    (True, False)
    """
    x = np.asarray(image, dtype=np.float64)
    if x.ndim < 1 or min(x.shape) < 2:
        raise ParameterError(f"sample_mask needs at least 2 pixels per axis, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ParameterError("sample_mask: the image contains NaN or infinite values")
    if not (isinstance(threshold, (int, float)) and math.isfinite(threshold) and threshold > 0):
        raise ParameterError(f"threshold must be a positive number, got {threshold!r}")
    if window_px is None:
        window_px = default_window_px(x.shape)
    if isinstance(window_px, bool) or not isinstance(window_px, (int, np.integer)):
        raise ParameterError(f"window_px must be an odd integer >= 3, got {window_px!r}")
    if window_px < 3 or window_px % 2 == 0:
        raise ParameterError(f"window_px must be an odd integer >= 3, got {window_px}")
    window = int(min(window_px, 2 * max(x.shape) + 1))
    mean, variance = local_statistics(x, window)
    typical_variance = float(np.median(variance))
    mean_floor = MIN_MEAN_SPREAD * math.sqrt(typical_variance)
    log_floor = MIN_LOG_VARIANCE_SPREAD
    log_variance = np.log(variance + 1e-12 * typical_variance + 1e-300)
    outlier = (np.abs(_robust_z(mean, mean_floor)) > threshold) | (
        np.abs(_robust_z(log_variance, log_floor)) > threshold
    )
    if outlier.any():  # grow by half a window along every axis (a box, separable)
        outlier = ndimage.maximum_filter(outlier.astype(np.uint8), size=window) > 0
    mask = ~outlier
    fraction = float(mask.mean())
    if fraction < LOW_SAMPLE_FRACTION:
        logger.warning(
            "sample mask: only %.1f%% of the image counts as sample (window %d px, threshold "
            "%.3g); is most of it carbon or contamination?",
            100.0 * fraction, window, threshold,
        )  # fmt: skip
    else:
        logger.debug("sample mask: %.1f%% sample (window %d px)", 100.0 * fraction, window)
    return mask


__all__ = [
    "DEFAULT_THRESHOLD",
    "default_window_px",
    "local_statistics",
    "sample_mask",
]
