"""The noise of a dataset: variance, spatial autocorrelation, power spectrum and SNR.

Two sources of a noise measurement:

* **Pairs.** ``a`` and ``b``, independent noisy halves of one exposure (even/odd frame sums),
  share the signal, so ``(a - b) / sqrt(2)`` (:func:`pair_noise`) is pure noise with the
  variance and the correlation of one half's noise. :func:`noise_autocorrelation`,
  :func:`noise_variance` and :func:`noise_power_spectrum` measure it directly; the SNR of one half
  is ``cov(a, b) / var(noise)`` (:func:`pair_snr`), since the shared signal is all that ``a`` and
  ``b`` have in common.
* **Single images.** With no second copy the noise is read from the high-frequency band, where
  the signal of a low-SNR image has little power (:mod:`cryoden.metrics.noise_band`, whose
  :func:`fit_separable_noise` and :class:`SeparableNoise` this module re-exports):
  :func:`noise_autocorrelation_single`, :func:`noise_variance_single`, :func:`single_image_snr`
  and :func:`single_image_noise`. They are biased where the signal has power in that band.

Conventions: images ``(H, W)`` or stacks ``(N, H, W)``, any size; the mean of each image is
removed before anything is measured; lags in pixels, ``"x"`` along the last axis and ``"y"``
along the one before; frequencies in Nyquist units (1 = 0.5 cycles/pixel); power spectra in
variance per frequency sample (``|FFT|**2 / (H W)``, white noise of variance ``v`` is flat at
``v``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.fft

from cryoden.errors import ParameterError
from cryoden.metrics.noise_band import (
    DEFAULT_LOW_NYQUIST,
    DEFAULT_TILE_PX,
    ImagesLike,
    SeparableNoise,
    as_image_list,
    check_max_lag,
    fit_separable_noise,
    frequency_grids,
    periodogram,
    radial_bins,
)

logger = logging.getLogger(__name__)

#: Adjacent-pixel noise correlation below which the noise counts as white.
WHITE_CORRELATION = 0.05
#: Adjacent-pixel noise correlation from which plain blind-spot training copies noise.
STRONG_CORRELATION = 0.15

__all__ = [
    "DEFAULT_LOW_NYQUIST",
    "DEFAULT_TILE_PX",
    "STRONG_CORRELATION",
    "WHITE_CORRELATION",
    "SeparableNoise",
    "correlation_verdict",
    "fit_separable_noise",
    "noise_autocorrelation",
    "noise_autocorrelation_single",
    "noise_power_spectrum",
    "noise_variance",
    "noise_variance_single",
    "pair_noise",
    "pair_snr",
    "single_image_noise",
    "single_image_snr",
]


def pair_noise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(a - b) / sqrt(2)``: the noise of one half, when ``a`` and ``b`` are independent noisy
    halves of the same signal (even and odd frame sums). Same shape as the inputs, float32.

    Raises
    ------
    ParameterError
        If the shapes differ or the values are not finite.
    """
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise ParameterError(
            f"pair_noise needs halves of the same shape, got {x.shape} and {y.shape}"
        )
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ParameterError("pair_noise: the halves contain NaN or infinite values")
    return ((x - y) / np.sqrt(2.0)).astype(np.float32)


def noise_variance(noise: ImagesLike) -> float:
    """Variance of a noise image or stack (each image's mean removed, pixels pooled)."""
    items = as_image_list(noise, "noise_variance", min_side=1)
    total = sum(float(np.sum(x * x)) for x in items)
    return total / sum(x.size for x in items)


def _lag_products(x: np.ndarray, lag: int, axis: int) -> tuple[float, int]:
    """Sum of ``x[i] * x[i + lag]`` along ``axis`` and the number of pairs summed."""
    n = x.shape[axis]
    if lag >= n:
        return 0.0, 0
    head = np.take(x, np.arange(0, n - lag), axis=axis)
    tail = np.take(x, np.arange(lag, n), axis=axis)
    return float(np.sum(head * tail)), head.size


def noise_autocorrelation(noise: ImagesLike, max_lag: int = 3) -> dict[str, list[float]]:
    """Correlation coefficients of noise at pixel lags ``1 .. max_lag`` along x and y.

    The noise is pure noise (from :func:`pair_noise`, or a simulation); a stack is pooled: the
    products of every image are summed before dividing, ``r(d) = mean(n[i] n[i + d]) /
    mean(n**2)`` over all pixel pairs ``d`` apart (no wrap-around).

    Parameters
    ----------
    noise
        Image ``(H, W)``, stack ``(N, H, W)`` or sequence of images.
    max_lag
        Largest lag in pixels, >= 1; lags beyond an image's side give 0.

    Returns
    -------
    dict
        ``{"x": [r(1), ..., r(max_lag)], "y": [...]}`` along the last and second-last axis.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> r = noise_autocorrelation(rng.normal(size=(256, 256)), max_lag=2)
    >>> all(abs(v) < 0.02 for v in r["x"] + r["y"])
    True
    """
    lags = check_max_lag(max_lag)
    items = as_image_list(noise, "noise_autocorrelation", min_side=1)
    variance = sum(float(np.sum(x * x)) for x in items) / sum(x.size for x in items)
    if variance <= 0:
        raise ParameterError("noise_autocorrelation: the noise is constant (zero variance)")
    result: dict[str, list[float]] = {}
    for name, axis in (("x", -1), ("y", -2)):
        values = []
        for lag in range(1, lags + 1):
            sums = [_lag_products(x, lag, axis) for x in items]
            count = sum(c for _, c in sums)
            mean = sum(s for s, _ in sums) / count if count else 0.0
            values.append(mean / variance)
        result[name] = values
    return result


def noise_power_spectrum(
    noise: ImagesLike, *, n_bins: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged power spectrum of noise, from DC to Nyquist.

    Bins are ``1 / n_bins`` Nyquist units wide (the corners beyond Nyquist are left out), so
    images of different sizes share one set of bins; a stack's periodograms are averaged.

    Parameters
    ----------
    noise
        Noise image, stack or sequence of images.
    n_bins
        Number of bins, >= 2; default half the smallest side (one Fourier pixel per bin).

    Returns
    -------
    (frequency_nyquist, power)
        Bin centres in Nyquist units and the mean power in each bin, in variance per frequency
        sample (white noise of variance ``v`` gives ``v`` everywhere); NaN for an empty bin.
    """
    items = as_image_list(noise, "noise_power_spectrum")
    bins = min(min(x.shape) for x in items) // 2 if n_bins is None else int(n_bins)
    if bins < 2:
        raise ParameterError(f"n_bins must be >= 2, got {n_bins!r}")
    radius_sums = np.zeros(bins)
    counts = np.zeros(bins)
    for x in items:
        fy, fx, weights = frequency_grids(x.shape)
        _, mean = radial_bins(np.sqrt(fy**2 + fx**2), periodogram(x), weights, bins)
        _, count = radial_bins(np.sqrt(fy**2 + fx**2), weights, np.ones_like(weights), bins)
        filled = np.isfinite(mean)
        radius_sums[filled] += mean[filled] * count[filled]
        counts[filled] += count[filled]
    frequency = (np.arange(bins) + 0.5) / bins
    power = np.divide(radius_sums, counts, out=np.full(bins, np.nan), where=counts > 0)
    return frequency, power


def pair_snr(a: np.ndarray, b: np.ndarray) -> float:
    """SNR of one half, ``var(signal) / var(noise)``, from two independent noisy halves.

    ``cov(a, b)`` estimates the shared signal's variance and ``var(a - b) / 2`` one half's noise
    variance. Near SNR 0 the estimate can come out slightly negative (it is unbiased, not
    clipped). The sum ``a + b`` has twice this SNR.
    """
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    noise = pair_noise(x, y).astype(np.float64)
    variance = float(np.mean((noise - noise.mean()) ** 2))
    if variance <= 0:
        raise ParameterError("pair_snr: the halves are identical, so their noise is unmeasurable")
    signal = float(np.mean((x - x.mean()) * (y - y.mean())))
    return signal / variance


# --- single images: the noise from the high-frequency band --------------------------------


def noise_autocorrelation_single(
    image_or_stack: ImagesLike, max_lag: int = 3, *, low_nyquist: float = DEFAULT_LOW_NYQUIST
) -> dict[str, list[float]]:
    """Noise correlation coefficients of single noisy images (no second copy needed).

    The noise is read from the high-frequency band (:func:`fit_separable_noise`), which the
    signal of a low-SNR image barely reaches, so the correlation of the noise is separated from
    that of the signal. Biased where the signal has power above ``low_nyquist``.

    Parameters
    ----------
    image_or_stack
        Noisy image ``(H, W)``, stack ``(N, H, W)`` or sequence of images, pooled.
    max_lag
        Largest lag in pixels, >= 1.
    low_nyquist
        Lower edge of the band the noise is read from, in Nyquist units.

    Returns
    -------
    dict
        ``{"x": [r(1), ..., r(max_lag)], "y": [...]}``, as :func:`noise_autocorrelation`.
    """
    lags = check_max_lag(max_lag)
    return fit_separable_noise(image_or_stack, low_nyquist=low_nyquist).autocorrelation(lags)


def noise_variance_single(
    image_or_stack: ImagesLike, *, low_nyquist: float = DEFAULT_LOW_NYQUIST
) -> float:
    """Noise variance of single noisy images, read from the high-frequency band
    (:func:`fit_separable_noise`); overestimated where the signal has power there."""
    return fit_separable_noise(image_or_stack, low_nyquist=low_nyquist).variance


def single_image_snr(image: np.ndarray, *, low_nyquist: float = DEFAULT_LOW_NYQUIST) -> float:
    """SNR of one image, ``(var(image) - v) / v`` with the noise variance ``v`` read from its
    high-frequency band (:func:`noise_variance_single`); can be negative near SNR 0."""
    (x,) = as_image_list(np.asarray(image), "single_image_snr", min_side=16)
    variance = noise_variance_single(x, low_nyquist=low_nyquist)
    return (float(np.mean(x * x)) - variance) / variance


def single_image_noise(
    image: np.ndarray, *, low_nyquist: float = DEFAULT_LOW_NYQUIST
) -> np.ndarray:
    """The part of one image above ``low_nyquist``: its noise in that band, as an image.

    A hard Fourier high-pass of the mean-free image. Where the signal has no power above
    ``low_nyquist`` this is exactly the noise restricted to the band; it is not the whole
    noise: its variance is the noise variance times the band's share of the noise power (about
    0.8 for white noise at the default 0.5), and its autocorrelation is that of a high-passed
    noise (negative at lag 1 for white noise). Use :func:`fit_noise_covariance` or
    :func:`noise_autocorrelation_single` for the noise's own variance and correlation. Biased
    when the signal has power in the band (fine detail at high SNR).

    Returns
    -------
    np.ndarray
        float32, the image's shape.
    """
    if not 0.0 <= float(low_nyquist) <= 1.0:
        raise ParameterError(f"low_nyquist must be in [0, 1], got {low_nyquist!r}")
    (x,) = as_image_list(np.asarray(image), "single_image_noise")
    if np.asarray(image).ndim != 2:
        raise ParameterError(f"single_image_noise needs one 2D image, got shape {np.shape(image)}")
    fy, fx, _ = frequency_grids(x.shape)
    keep = np.sqrt(fy**2 + fx**2) >= float(low_nyquist)
    spectrum = scipy.fft.rfft2(x) * keep
    return scipy.fft.irfft2(spectrum, s=x.shape).astype(np.float32)


def correlation_verdict(autocorrelation: dict[str, list[float]]) -> str:
    """``"white"``, ``"mild"`` or ``"strong"``: the largest adjacent-pixel (lag-1) noise
    correlation along x or y against :data:`WHITE_CORRELATION` and :data:`STRONG_CORRELATION`.

    Blind-spot training (Noise2Void) predicts a pixel from its neighbours and assumes their
    noise tells nothing about its own; at ``"strong"`` correlation it learns to copy the noise.
    """
    adjacent = max(abs(autocorrelation["x"][0]), abs(autocorrelation["y"][0]))
    if adjacent < WHITE_CORRELATION:
        return "white"
    if adjacent < STRONG_CORRELATION:
        return "mild"
    return "strong"


def noise_advice(autocorrelation: dict[str, list[float]]) -> str:
    """One sentence on what the measured noise correlation means for training (thresholds
    :data:`WHITE_CORRELATION` and :data:`STRONG_CORRELATION` on the adjacent-pixel value)."""
    axis = "x" if abs(autocorrelation["x"][0]) >= abs(autocorrelation["y"][0]) else "y"
    value = autocorrelation[axis][0]
    verdict = correlation_verdict(autocorrelation)
    if verdict == "white":
        return (
            f"the noise is close to white (adjacent pixels correlate {value:.2f} along {axis}, "
            f"below {WHITE_CORRELATION}): blind-spot training (n2v) and Noise2Noise both fit it"
        )
    strength = "will copy noise" if verdict == "strong" else "may copy some noise"
    return (
        f"adjacent pixels' noise correlates {value:.2f} along {axis}: plain blind-spot training "
        f"{strength}; use Noise2Noise, or n2v with --blind-spot auto"
    )


@dataclass(frozen=True)
class NoiseMeasurement:
    """The noise of one image (or a pooled set): what ``cryoden inspect noise`` reports.

    Attributes
    ----------
    noise_variance
        Noise variance, in the image's units squared.
    signal_variance
        Signal variance (``cov(a, b)`` for pairs, ``var(image) - noise_variance`` for single
        images), same units.
    autocorrelation
        ``{"x": [...], "y": [...]}`` at lags ``1 .. max_lag``.
    frequency_nyquist, power
        The radial noise power spectrum (bin centres in Nyquist units; variance per frequency
        sample).
    n_pixels
        Pixels measured (the weight in pooling).
    """

    noise_variance: float
    signal_variance: float
    autocorrelation: dict[str, list[float]]
    frequency_nyquist: np.ndarray
    power: np.ndarray
    n_pixels: int

    @property
    def snr(self) -> float:
        """``signal_variance / noise_variance`` (NaN for zero noise; can be slightly negative
        near SNR 0)."""
        return self.signal_variance / self.noise_variance if self.noise_variance > 0 else np.nan

    def to_dict(self) -> dict[str, Any]:
        """Plain numbers and lists: ``noise_variance``, ``signal_variance``, ``snr``,
        ``autocorrelation``, ``power_spectrum`` (``frequency``, ``power``)."""
        return {
            "noise_variance": float(self.noise_variance),
            "signal_variance": float(self.signal_variance),
            "snr": float(self.snr),
            "autocorrelation": {
                k: [float(v) for v in vs] for k, vs in self.autocorrelation.items()
            },
            "power_spectrum": {
                "frequency": [float(f) for f in self.frequency_nyquist],
                "power": [float(p) for p in self.power],
            },
        }


def measure_pair(
    a: np.ndarray, b: np.ndarray, *, max_lag: int = 3, n_bins: int = 32
) -> NoiseMeasurement:
    """The noise of one half of a pair, from ``(a - b) / sqrt(2)`` (:func:`pair_noise`)."""
    noise = pair_noise(a, b)
    x = np.asarray(a, np.float64)
    y = np.asarray(b, np.float64)
    frequency, power = noise_power_spectrum(noise, n_bins=n_bins)
    return NoiseMeasurement(
        noise_variance=noise_variance(noise),
        signal_variance=float(np.mean((x - x.mean()) * (y - y.mean()))),
        autocorrelation=noise_autocorrelation(noise, max_lag),
        frequency_nyquist=frequency,
        power=power,
        n_pixels=int(noise.size),
    )


def measure_single(
    image: np.ndarray,
    *,
    max_lag: int = 3,
    n_bins: int = 32,
    low_nyquist: float = DEFAULT_LOW_NYQUIST,
) -> NoiseMeasurement:
    """The noise of one image, read from its high-frequency band (:func:`fit_separable_noise`;
    the power spectrum is the fitted model's)."""
    (x,) = as_image_list(np.asarray(image), "measure_single", min_side=16)
    fit = fit_separable_noise(x, low_nyquist=low_nyquist)
    frequency, power = fit.power_spectrum(n_bins=n_bins)
    return NoiseMeasurement(
        noise_variance=fit.variance,
        signal_variance=float(np.mean(x * x)) - fit.variance,
        autocorrelation=fit.autocorrelation(max_lag),
        frequency_nyquist=frequency,
        power=power,
        n_pixels=int(x.size),
    )


def pool_measurements(items: Sequence[NoiseMeasurement]) -> NoiseMeasurement:
    """A set's noise from its images' (same ``max_lag`` and bins): variances and power
    weighted by pixel count, correlations as pooled covariances over the pooled variance."""
    if not items:
        raise ParameterError("pool_measurements needs at least one measurement")
    weights = np.array([m.n_pixels for m in items], dtype=np.float64)
    total = float(weights.sum())
    variance = float(np.dot(weights, [m.noise_variance for m in items])) / total
    signal = float(np.dot(weights, [m.signal_variance for m in items])) / total
    pooled: dict[str, list[float]] = {}
    for axis in ("x", "y"):
        covariances = np.array(
            [np.array(m.autocorrelation[axis]) * m.noise_variance for m in items]
        )
        pooled[axis] = (weights @ covariances / total / variance).tolist() if variance > 0 else []
    power = np.array([m.power for m in items])
    filled = np.isfinite(power)
    sums = (np.where(filled, power, 0.0) * weights[:, None]).sum(axis=0)
    counts = (filled * weights[:, None]).sum(axis=0)
    return NoiseMeasurement(
        noise_variance=variance,
        signal_variance=signal,
        autocorrelation=pooled,
        frequency_nyquist=items[0].frequency_nyquist,
        power=np.divide(sums, counts, out=np.full(counts.shape, np.nan), where=counts > 0),
        n_pixels=int(total),
    )
