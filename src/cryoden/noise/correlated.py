"""Correlated Gaussian noise with a chosen adjacent-pixel correlation along each axis.

Real detector noise is not white: interpolation in motion correction, the detector's
modulation transfer and binning make adjacent pixels' noise correlate (more along one axis
than the other on some cameras). Denoisers that assume pixel-independent noise (Noise2Void,
Neighbor2Neighbor) must be tested on such noise, so this module makes it.

White Gaussian noise is filtered by a separable kernel, the same three-tap kernel
``[a, 1, a]`` (normalised) along each axis with its own ``a``. Along an axis that kernel gives
the autocorrelation ``2 a / (1 + 2 a**2)`` at lag 1, ``a**2 / (1 + 2 a**2)`` at lag 2 and 0
beyond (a moving average of order 1 on each side), so ``a`` is solved in closed form for a
target lag-1 correlation ``rho``::

    a = (1 - sqrt(1 - 2 rho**2)) / (2 rho)

which exists for ``|rho| <= 1 / sqrt(2)`` (:data:`MAX_CORRELATION`). The filter of a separable
kernel leaves the other axes' correlations unchanged, so each axis gets its own target; the
correlation between diagonal neighbours is the product of the two axes'. The noise is drawn
larger than the image and filtered without any border handling ("valid" part only), so it is
stationary up to the image edge. Its variance is scaled to the requested ``sigma`` exactly
(in expectation).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from cryoden.errors import ParameterError
from cryoden.noise.models import noise_sigma_for_snr

#: The largest adjacent-pixel correlation the three-tap kernel can give, ``1 / sqrt(2)``.
MAX_CORRELATION = 1.0 / math.sqrt(2.0)


def kernel_for_correlation(correlation: float) -> np.ndarray:
    """The unit-energy three-tap kernel ``[a, 1, a] / sqrt(1 + 2 a**2)`` whose filtered white
    noise has the lag-1 autocorrelation ``correlation`` (float64, taps sum of squares 1).

    Raises
    ------
    ParameterError
        If ``|correlation| > 1 / sqrt(2)`` (:data:`MAX_CORRELATION`) or it is not finite.

    Examples
    --------
    >>> taps = kernel_for_correlation(0.4)
    >>> round(float(taps[0] * taps[1] + taps[1] * taps[2]), 6)  # lag 1 of unit-energy taps
    0.4
    """
    rho = float(correlation)
    if not math.isfinite(rho) or abs(rho) > MAX_CORRELATION + 1e-12:
        raise ParameterError(
            f"correlation must be in [-{MAX_CORRELATION:.4f}, {MAX_CORRELATION:.4f}] "
            f"(a three-tap kernel's limit), got {correlation!r}"
        )
    if rho == 0.0:
        a = 0.0
    else:
        a = (1.0 - math.sqrt(max(0.0, 1.0 - 2.0 * rho * rho))) / (2.0 * rho)
    taps = np.array([a, 1.0, a], dtype=np.float64)
    return taps / math.sqrt(float(np.sum(taps * taps)))


def kernel_autocorrelation(taps: np.ndarray, max_lag: int = 3) -> np.ndarray:
    """The autocorrelation of white noise filtered by ``taps`` at lags ``1..max_lag``
    (what :func:`correlated_gaussian_noise` gives along that axis, in expectation)."""
    taps = np.asarray(taps, dtype=np.float64)
    energy = float(np.sum(taps * taps))
    return np.array(
        [float(np.sum(taps[lag:] * taps[: taps.size - lag])) / energy if lag < taps.size else 0.0
         for lag in range(1, max_lag + 1)]
    )  # fmt: skip


def axis_correlations(correlation: float | Sequence[float], ndim: int) -> tuple[float, ...]:
    """One lag-1 correlation per array axis: a number for all axes, or one per axis (in the
    array's order: ``(y, x)`` for an image, ``(z, y, x)`` for a volume)."""
    if isinstance(correlation, (int, float, np.floating, np.integer)):
        return (float(correlation),) * ndim
    values = tuple(float(c) for c in correlation)
    if len(values) != ndim:
        raise ParameterError(
            f"correlation needs one value per axis ({ndim}), got {len(values)}: {values}"
        )
    return values


def correlated_gaussian_noise(
    shape: tuple[int, ...],
    correlation: float | Sequence[float],
    *,
    rng: np.random.Generator,
    sigma: float = 1.0,
) -> np.ndarray:
    """Zero-mean Gaussian noise of standard deviation ``sigma`` whose adjacent pixels along
    each axis correlate as ``correlation`` says.

    Parameters
    ----------
    shape
        The array's shape (any number of axes; ``(H, W)`` for an image).
    correlation
        The lag-1 correlation, one number for every axis or one per axis in the array's order
        (``(y, x)``), each in ``[-1/sqrt(2), 1/sqrt(2)]``. 0 gives white noise (the same
        draws as ``rng.standard_normal(shape) * sigma``).
    rng
        The source of randomness.
    sigma
        Standard deviation of every pixel's noise (>= 0).

    Returns
    -------
    numpy.ndarray
        float64 of ``shape``.
    """
    if not math.isfinite(sigma) or sigma < 0:
        raise ParameterError(f"sigma must be a finite number >= 0, got {sigma!r}")
    shape = tuple(int(n) for n in shape)
    rhos = axis_correlations(correlation, len(shape))
    kernels = [kernel_for_correlation(rho) for rho in rhos]
    if all(rho == 0.0 for rho in rhos):
        return rng.standard_normal(shape) * sigma
    padded = tuple(n + 2 for n in shape)
    noise = rng.standard_normal(padded)
    for axis, taps in enumerate(kernels):
        noise = ndimage.correlate1d(noise, taps, axis=axis, mode="constant")
    inner = tuple(slice(1, n + 1) for n in shape)
    return noise[inner] * sigma


def add_correlated_gaussian_noise(
    clean: np.ndarray,
    snr: float,
    correlation: float | Sequence[float],
    *,
    rng: np.random.Generator,
) -> np.ndarray:
    """Add correlated Gaussian noise at a target SNR (``var(clean) / var(noise)``).

    Like :func:`cryoden.noise.models.add_gaussian_noise`, with the adjacent-pixel correlation
    of :func:`correlated_gaussian_noise` (``correlation``: one number, or one per axis in the
    array's order). Returns float32.
    """
    sigma = noise_sigma_for_snr(clean, snr)
    array = np.asarray(clean, dtype=np.float64)
    noise = correlated_gaussian_noise(array.shape, correlation, rng=rng, sigma=sigma)
    return (array + noise).astype(np.float32)


__all__ = [
    "MAX_CORRELATION",
    "add_correlated_gaussian_noise",
    "axis_correlations",
    "correlated_gaussian_noise",
    "kernel_autocorrelation",
    "kernel_for_correlation",
]
