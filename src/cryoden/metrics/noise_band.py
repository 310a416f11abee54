"""The noise of single noisy images, read from their high-frequency band.

The signal of a cryo-EM image has little power at high frequencies (the CTF envelope and the
B-factor damp it) while detector noise keeps its level there. The noise spectrum is taken to be
separable, one spectrum per axis multiplied, ``P(fy, fx) = v s_y(fy) s_x(fx)`` (as per-axis
interpolation, binning and detector response make it). The periodogram rows at ``|fy| >=
low_nyquist`` then give ``s_x`` over *every* ``fx``, the columns at ``|fx| >= low_nyquist`` give
``s_y``, and the corner where both hold fixes ``v`` (:func:`fit_separable_noise`). Nothing is
extrapolated into the low frequencies, where the signal is; the correlation along each axis is
the inverse Fourier transform of its spectrum.

Limits: signal power in those bands counts as noise (the variance is overestimated and the
correlation pulled towards the signal's: biased on high-SNR or finely sampled images); noise
correlated along the diagonals beyond the product of the axes' correlations is not seen.

Also the shared helpers of :mod:`cryoden.metrics.noise_stats`: image lists, frequency grids
(Nyquist units, ``rfft2`` layout), periodograms (variance per frequency sample, ``|FFT|**2 /
(H W)``) and radial bins.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.fft

from cryoden.errors import ParameterError

logger = logging.getLogger(__name__)

#: Default lower edge of the band a single image's noise is read from, in Nyquist units.
DEFAULT_LOW_NYQUIST = 0.5
#: Default tile side for averaging periodograms of large images, in pixels.
DEFAULT_TILE_PX = 128

ImagesLike = np.ndarray | Sequence[np.ndarray]


def as_image_list(images: ImagesLike, what: str, *, min_side: int = 2) -> list[np.ndarray]:
    """Images ``(H, W)``, a stack ``(N, H, W)`` or a sequence of images as float64 arrays with
    their mean removed, or a ParameterError naming ``what``."""
    if isinstance(images, np.ndarray):
        if images.ndim == 2:
            items = [images]
        elif images.ndim == 3:
            items = list(images)
        else:
            raise ParameterError(
                f"{what} needs an image (H, W) or a stack (N, H, W), got shape {images.shape}"
            )
    else:
        items = [np.asarray(item) for item in images]
    if not items:
        raise ParameterError(f"{what} needs at least one image")
    out = []
    for item in items:
        if item.ndim != 2:
            raise ParameterError(f"{what} needs 2D images, got shape {item.shape}")
        if min(item.shape) < min_side:
            raise ParameterError(
                f"{what} needs at least {min_side} pixels per side, got shape {item.shape}"
            )
        if np.iscomplexobj(item):
            raise ParameterError(f"{what} needs real-valued images")
        x = item.astype(np.float64)
        if not np.isfinite(x).all():
            raise ParameterError(f"{what}: the images contain NaN or infinite values")
        out.append(x - x.mean())
    return out


def check_max_lag(max_lag: int) -> int:
    if int(max_lag) != max_lag or max_lag < 1:
        raise ParameterError(f"max_lag must be an integer >= 1, got {max_lag!r}")
    return int(max_lag)


def frequency_grids(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``fy``, ``fx`` (Nyquist units, broadcastable, rfft2 layout) and the full-FFT weight of
    each rfft2 coefficient (2 where its Hermitian partner is not stored, else 1)."""
    h, w = shape
    fy = (2.0 * np.fft.fftfreq(h))[:, None]
    fx = (2.0 * np.fft.rfftfreq(w))[None, :]
    column = np.full(w // 2 + 1, 2.0)
    column[0] = 1.0
    if w % 2 == 0:
        column[-1] = 1.0
    weights = np.broadcast_to(column, (h, w // 2 + 1))
    return fy, fx, weights


def periodogram(x: np.ndarray) -> np.ndarray:
    """``|rfft2(x)|**2 / (H W)`` of a mean-free image: variance per frequency sample."""
    spectrum = scipy.fft.rfft2(x)
    return (spectrum.real**2 + spectrum.imag**2) / x.size


@dataclass(frozen=True)
class SeparableNoise:
    """A stationary noise whose power spectrum is one spectrum per axis multiplied,
    ``P(fy, fx) = variance * s_y(fy) * s_x(fx)``, as :func:`fit_separable_noise` measures it.

    Attributes
    ----------
    variance
        Noise variance, in the image's units squared.
    correlation_x, correlation_y
        Correlation coefficients at lags ``0, 1, ...`` pixels along x and y (``[0]`` is 1), up to
        half the tile side.
    spectrum_x, spectrum_y
        The relative spectra ``s_x`` (at ``fx = 2 * rfftfreq(w)``) and ``s_y`` (at ``fy = 2 *
        fftfreq(h)``), each with mean 1 over the full frequency axis.
    """

    variance: float
    correlation_x: np.ndarray
    correlation_y: np.ndarray
    spectrum_x: np.ndarray
    spectrum_y: np.ndarray

    def autocorrelation(self, max_lag: int = 3) -> dict[str, list[float]]:
        """Correlation coefficients at lags ``1 .. max_lag`` along x and y, as
        :func:`noise_autocorrelation` gives them (0 beyond the measured lags)."""
        lags = check_max_lag(max_lag)

        def pick(values: np.ndarray) -> list[float]:
            return [float(values[d]) if d < values.size else 0.0 for d in range(1, lags + 1)]

        return {"x": pick(self.correlation_x), "y": pick(self.correlation_y)}

    def power_spectrum(self, *, n_bins: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The noise power spectrum ``variance * s_y * s_x``, radially averaged in the bins of
        :func:`noise_power_spectrum` (default: one Fourier pixel of the tile per bin)."""
        h, w = self.spectrum_y.size, 2 * (self.spectrum_x.size - 1)
        bins = min(h, w) // 2 if n_bins is None else int(n_bins)
        if bins < 2:
            raise ParameterError(f"n_bins must be >= 2, got {n_bins!r}")
        fy, fx, weights = frequency_grids((h, w))
        model = self.variance * self.spectrum_y[:, None] * self.spectrum_x[None, :]
        return radial_bins(np.sqrt(fy**2 + fx**2), model, weights, bins)


def radial_bins(
    radius: np.ndarray, power: np.ndarray, weights: np.ndarray, bins: int
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean of ``power`` in ``bins`` radial bins of ``1 / bins`` Nyquist units (bin
    centres, means; NaN for an empty bin)."""
    radius, power, weights = np.broadcast_arrays(radius, power, weights)
    index = np.floor(radius * bins).astype(np.int64)
    keep = index < bins
    sums = np.bincount(index[keep], weights=(power * weights)[keep], minlength=bins)
    counts = np.bincount(index[keep], weights=weights[keep], minlength=bins)
    mean = np.divide(sums, counts, out=np.full(bins, np.nan), where=counts > 0)
    return (np.arange(bins) + 0.5) / bins, mean


def _tiles(x: np.ndarray, tile: tuple[int, int]) -> list[np.ndarray]:
    """Non-overlapping tiles of ``x`` (a remainder at the far edges is left out), each with its
    own mean removed."""
    th, tw = tile
    out = []
    for y0 in range(0, x.shape[0] - th + 1, th):
        for x0 in range(0, x.shape[1] - tw + 1, tw):
            t = x[y0 : y0 + th, x0 : x0 + tw]
            out.append(t - t.mean())
    return out


def _check_low_nyquist(low_nyquist: float) -> float:
    value = float(low_nyquist)
    if not 0.0 < value <= 0.9:
        raise ParameterError(f"low_nyquist must be in (0, 0.9], got {low_nyquist!r}")
    return value


def fit_separable_noise(
    images: ImagesLike,
    *,
    low_nyquist: float = DEFAULT_LOW_NYQUIST,
    tile_px: int = DEFAULT_TILE_PX,
) -> SeparableNoise:
    """The noise of single noisy images, read from their high-frequency band.

    Assumes the signal has no power where ``|fy| >= low_nyquist`` or ``|fx| >= low_nyquist``
    and the noise spectrum is separable, ``P = v s_y(fy) s_x(fx)``. Then the periodogram
    averaged over the rows with ``|fy| >= low_nyquist`` is ``s_x`` over **every** ``fx``, up to
    a constant; the columns with ``|fx| >= low_nyquist`` give ``s_y``; and the corner where both
    hold fixes ``v`` (the three means are ``v Y``, ``v X`` and ``v X Y``, with ``X, Y`` the
    spectra's means over their bands). The correlation along each axis is the inverse Fourier
    transform of its spectrum, divided by the periodogram's taper ``1 - d / side``. Nothing is
    extrapolated into the low frequencies the signal occupies.

    Periodograms are averaged over ``tile_px``-sided tiles of every image (the whole image when
    smaller; one tile shape for all: the smaller of ``tile_px`` and the smallest side).
    Limits: signal power in the bands counts as noise (higher variance, correlation pulled
    towards the signal's); a non-separable noise (correlated along the diagonals more than
    the product of the axes) is measured on its high-frequency rows and columns only.

    Parameters
    ----------
    images
        Image ``(H, W)``, stack ``(N, H, W)`` or sequence of images, at least 16 pixels a side.
    low_nyquist
        Lower edge of the bands, in Nyquist units, in (0, 0.9].
    tile_px
        Tile side for averaging periodograms, >= 16.

    Raises
    ------
    ParameterError
        For parameters out of range or images smaller than 16 pixels.
    """
    low = _check_low_nyquist(low_nyquist)
    if int(tile_px) != tile_px or tile_px < 16:
        raise ParameterError(f"tile_px must be an integer >= 16, got {tile_px!r}")
    items = as_image_list(images, "fit_separable_noise", min_side=16)
    th = min(int(tile_px), min(x.shape[0] for x in items))
    tw = min(int(tile_px), min(x.shape[1] for x in items))
    average = np.zeros((th, tw // 2 + 1))
    n_tiles = 0
    for x in items:
        for t in _tiles(x, (th, tw)):
            average += periodogram(t)
            n_tiles += 1
    average /= n_tiles
    fy, fx, weights = frequency_grids((th, tw))
    rows = np.abs(fy[:, 0]) >= low
    cols = fx[0] >= low
    column_weights = weights[0]
    strip_x = average[rows].mean(axis=0)  # v Y s_x(fx), every fx
    strip_y = np.average(average[:, cols], axis=1, weights=column_weights[cols])  # v X s_y(fy)
    corner = np.average(average[rows][:, cols], axis=1, weights=column_weights[cols]).mean()
    mean_x = float(np.sum(strip_x * column_weights) / tw)  # v Y
    mean_y = float(strip_y.mean())  # v X
    if corner <= 0 or mean_x <= 0 or mean_y <= 0:
        raise ParameterError("fit_separable_noise: the images have no power in the noise band")
    spectrum_x = strip_x / mean_x
    spectrum_y = strip_y / mean_y
    lags_x = np.arange(tw // 2 + 1)
    lags_y = np.arange(th // 2 + 1)
    correlation_x = scipy.fft.irfft(spectrum_x, n=tw)[: lags_x.size] / (1.0 - lags_x / tw)
    correlation_y = np.real(scipy.fft.ifft(spectrum_y))[: lags_y.size] / (1.0 - lags_y / th)
    variance = mean_x * mean_y / float(corner)
    logger.debug(
        "noise read from %d tiles of %dx%d above %.2f Nyquist: variance %.4g",
        n_tiles,
        th,
        tw,
        low,
        variance,
    )
    return SeparableNoise(
        variance=variance,
        correlation_x=correlation_x,
        correlation_y=correlation_y,
        spectrum_x=spectrum_x,
        spectrum_y=spectrum_y,
    )
