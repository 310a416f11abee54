"""How good is a denoised image, without the clean image? Estimates from independent halves.

With two independent noisy halves ``a = s + n_a`` and ``b = s + n_b`` of one exposure (even and
odd frame sums) and a denoiser ``f`` applied to ``a``, ``b``'s noise is independent of ``f(a)``,
so ``E[(f(a) - b)**2] = E[(f(a) - s)**2] + sigma_b**2``. With ``sigma**2 = mean((a - b)**2) / 2``
(the noise variance of one half, both halves equally noisy), each pixel's

    e = (f(a) - b)**2 - (a - b)**2 / 2

has the mean squared error of ``f(a)`` against the unseen clean image as its expectation
(:func:`check_pair`). The noise may be spatially correlated and need not be Gaussian; ``f`` must
not have seen ``b`` (a Noise2Noise model trained on these very pairs has learnt part of ``b``'s
noise, and its estimate is optimistic).

Uncertainty. Neighbouring pixels' ``e`` correlate (correlated noise, and a denoiser's errors
spread over its footprint), so the standard error is the spread of the means of ``block_px``
square blocks divided by the square root of their number; blocks far wider than the
correlation length are nearly independent. It also holds the variation of the true error from
block to block (particles against background), so it errs on the large side.

SNR is ``var(s) / mean((x - s)**2)`` for an image ``x`` of the clean ``s``: ``var(s)`` is
estimated by ``cov(a, b)``, so the raw half has ``SNR = cov(a, b) / sigma**2`` and the denoised
one ``cov(a, b) / mse``; the gain in dB is ``10 log10(sigma**2 / mse)``, with an uncertainty
from the block means of both terms (delta method).

Other checks: FRC(f(a), b) against FRC(a, b) (b's noise is independent of both, so a denoiser
that keeps the signal raises the curve; one that blurs it lowers it at high frequencies), with
their 0.143 crossings; and the residual ``r = a - f(a)``, which is pure noise for a perfect
denoiser: ``mean(r**2) / sigma**2`` near 1, ``cov(r, b) / cov(a, b)`` (the share of the signal's
variance the denoiser removed) near 0, and its adjacent-pixel correlation near the noise's.

Single images (no halves): Stein's unbiased risk estimate, generalised to correlated Gaussian
noise of covariance ``C``, ``E|f(y) - s|**2 = E|f(y) - y|**2 - tr(C) + 2 tr(C J_f)``, with the
trace of the Jacobian term estimated by one Monte-Carlo probe ``delta ~ N(0, C)``:
``delta . (f(y + eps delta) - f(y)) / eps`` (:func:`check_single`). The noise variance and
covariance come from the image's high-frequency band
(:func:`cryoden.metrics.noise_stats.fit_separable_noise`). Limits: the noise is taken as
Gaussian and stationary; any error in the band's noise variance enters the MSE one for one (so
signal power at high frequencies, which inflates that variance, makes the MSE too low); ``f`` is
called twice and must be deterministic and smooth at the ``eps`` scale.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cryoden.errors import ParameterError
from cryoden.metrics.fourier import frc, resolution_crossing
from cryoden.metrics.noise_stats import SeparableNoise, fit_separable_noise, noise_autocorrelation

logger = logging.getLogger(__name__)

#: Default side of the blocks whose means give the standard errors, in pixels.
DEFAULT_BLOCK_PX = 32
#: The FRC threshold reported.
FRC_THRESHOLD = 0.143
#: Default Monte-Carlo step of the single-image estimate, in units of the noise.
DEFAULT_EPSILON = 0.05

Denoise = Callable[[np.ndarray], np.ndarray]


def _check_block(block_px: int) -> int:
    if int(block_px) != block_px or block_px < 2:
        raise ParameterError(f"block_px must be an integer >= 2, got {block_px!r}")
    return int(block_px)


def _block_means(values: np.ndarray, block_px: int) -> np.ndarray:
    """Means of the full ``block_px`` square blocks of a 2D array (``(n_blocks,)``; the whole
    array as one block when it is smaller than a block)."""
    h, w = values.shape
    by, bx = min(block_px, h), min(block_px, w)
    ny, nx = h // by, w // bx
    cropped = values[: ny * by, : nx * bx]
    return cropped.reshape(ny, by, nx, bx).mean(axis=(1, 3)).ravel()


@dataclass
class ErrorTerms:
    """Per-pixel terms of an estimate, pooled over images: the sums of the MSE term ``e`` and of
    the noise-variance term ``q`` (``E[q] = sigma**2``), the signal covariance, the pixel count,
    and the block means of ``e`` and ``q`` for the standard errors."""

    sum_error: float = 0.0
    sum_noise: float = 0.0
    sum_signal: float = 0.0
    n_pixels: int = 0
    block_error: list[np.ndarray] = field(default_factory=list)
    block_noise: list[np.ndarray] = field(default_factory=list)

    def add(self, error: np.ndarray, noise: np.ndarray, signal: float, block_px: int) -> None:
        """Add one image's per-pixel terms and its signal variance (times its pixel count)."""
        self.sum_error += float(error.sum())
        self.sum_noise += float(noise.sum())
        self.sum_signal += signal * error.size
        self.n_pixels += error.size
        self.block_error.append(_block_means(error, block_px))
        self.block_noise.append(_block_means(noise, block_px))

    def extend(self, other: ErrorTerms) -> None:
        """Pool another image's (or set's) terms into these."""
        self.sum_error += other.sum_error
        self.sum_noise += other.sum_noise
        self.sum_signal += other.sum_signal
        self.n_pixels += other.n_pixels
        self.block_error.extend(other.block_error)
        self.block_noise.extend(other.block_noise)

    def summary(self) -> dict[str, float]:
        """``noise_variance``, ``estimated_mse`` and its ``estimated_mse_uncertainty``,
        ``signal_variance``, ``raw_snr``, ``denoised_snr``, ``gain_db`` and
        ``gain_db_uncertainty`` (NaN where undefined: one block only, or a non-positive MSE)."""
        n = max(self.n_pixels, 1)
        mse = self.sum_error / n
        sigma2 = self.sum_noise / n
        signal = self.sum_signal / n
        blocks_e = np.concatenate(self.block_error) if self.block_error else np.zeros(0)
        blocks_q = np.concatenate(self.block_noise) if self.block_noise else np.zeros(0)
        k = blocks_e.size
        if k >= 2:
            cov = np.cov(np.stack([blocks_e, blocks_q])) / k
            se_mse = math.sqrt(max(float(cov[0, 0]), 0.0))
            # var(log(sigma2 / mse)) by the delta method, from the block covariance.
            var_log = (
                cov[1, 1] / sigma2**2 + cov[0, 0] / mse**2 - 2 * cov[0, 1] / (sigma2 * mse)
                if mse > 0 and sigma2 > 0
                else math.nan
            )
            se_gain = 10 / math.log(10) * math.sqrt(max(float(var_log), 0.0))
        else:
            se_mse = se_gain = math.nan
        gain = 10 * math.log10(sigma2 / mse) if mse > 0 and sigma2 > 0 else math.nan
        return {
            "noise_variance": sigma2,
            "estimated_mse": mse,
            "estimated_mse_uncertainty": se_mse,
            "signal_variance": signal,
            "raw_snr": signal / sigma2 if sigma2 > 0 else math.nan,
            "denoised_snr": signal / mse if mse > 0 else math.nan,
            "gain_db": gain,
            "gain_db_uncertainty": se_gain,
            "n_pixels": float(self.n_pixels),
            "n_blocks": float(k),
        }


def _check_images(*images: np.ndarray, what: str) -> list[np.ndarray]:
    arrays = [np.asarray(x, dtype=np.float64) for x in images]
    shape = arrays[0].shape
    if len(shape) != 2:
        raise ParameterError(f"{what} needs 2D images (H, W), got shape {shape}")
    for x in arrays[1:]:
        if x.shape != shape:
            raise ParameterError(f"{what} needs images of one shape, got {shape} and {x.shape}")
    for x in arrays:
        if not np.isfinite(x).all():
            raise ParameterError(f"{what}: the images contain NaN or infinite values")
    return arrays


def pair_terms(
    a: np.ndarray, b: np.ndarray, denoised: np.ndarray, *, block_px: int = DEFAULT_BLOCK_PX
) -> ErrorTerms:
    """The per-pixel terms of :func:`check_pair` for one image, to pool over a set."""
    x, y, d = _check_images(a, b, denoised, what="check_pair")
    terms = ErrorTerms()
    noise = 0.5 * (x - y) ** 2
    error = (d - y) ** 2 - noise
    signal = float(np.mean((x - x.mean()) * (y - y.mean())))
    terms.add(error, noise, signal, _check_block(block_px))
    return terms


def check_pair(
    a: np.ndarray,
    b: np.ndarray,
    denoised: np.ndarray,
    *,
    block_px: int = DEFAULT_BLOCK_PX,
    pixel_size_angstrom: float | None = None,
) -> dict[str, Any]:
    """Quality of ``denoised = f(a)`` against the unseen clean image, from independent halves.

    Parameters
    ----------
    a, b
        Independent noisy halves of one exposure, 2D, same shape, same noise level.
    denoised
        ``f(a)``, from a denoiser that never saw ``b``.
    block_px
        Side of the blocks whose means give the standard errors, in pixels (wider than the
        noise's and the denoiser's correlation length).
    pixel_size_angstrom
        Pixel size for the FRC curves, None if unknown.

    Returns
    -------
    dict
        The keys of :meth:`ErrorTerms.summary` (``noise_variance``, ``estimated_mse``,
        ``estimated_mse_uncertainty``, ``signal_variance``, ``raw_snr``, ``denoised_snr``,
        ``gain_db``, ``gain_db_uncertainty``, ``n_pixels``, ``n_blocks``), then ``frc`` (curves
        ``frequency``, ``raw`` = FRC(a, b), ``denoised`` = FRC(f(a), b)), ``frc_0143`` (``raw``,
        ``denoised``: crossings in Nyquist units), and ``residual`` (``variance_ratio``,
        ``signal_fraction``, ``autocorrelation`` of ``a - f(a)`` at lag 1, ``noise_autocorrelation``
        of the noise at lag 1); MSE and variances in the input's units squared.
    """
    summary = pair_terms(a, b, denoised, block_px=block_px).summary()
    return {**summary, **pair_details(a, b, denoised, pixel_size_angstrom=pixel_size_angstrom)}


def pair_details(
    a: np.ndarray, b: np.ndarray, denoised: np.ndarray, *, pixel_size_angstrom: float | None = None
) -> dict[str, Any]:
    """The FRC and residual checks of :func:`check_pair` (``frc``, ``frc_0143``, ``residual``)."""
    x, y, d = _check_images(a, b, denoised, what="check_pair")
    raw_curve = frc(x, y, pixel_size_angstrom=pixel_size_angstrom)
    den_curve = frc(d, y, pixel_size_angstrom=pixel_size_angstrom)
    residual = x - d
    removed = float(np.mean((residual - residual.mean()) * (y - y.mean())))
    signal = float(np.mean((x - x.mean()) * (y - y.mean())))
    sigma2 = float(np.mean((x - y) ** 2)) / 2
    result: dict[str, Any] = {}
    result["frc"] = {
        "frequency": raw_curve.frequency_nyquist.tolist(),
        "raw": raw_curve.correlation.tolist(),
        "denoised": den_curve.correlation.tolist(),
    }
    result["frc_0143"] = {
        "raw": resolution_crossing(raw_curve, FRC_THRESHOLD),
        "denoised": resolution_crossing(den_curve, FRC_THRESHOLD),
    }
    lag1 = _lag1(residual)
    result["residual"] = {
        "variance_ratio": float(np.mean(residual**2)) / sigma2 if sigma2 > 0 else math.nan,
        "signal_fraction": removed / signal if signal > 0 else math.nan,
        "autocorrelation": lag1,
        "noise_autocorrelation": _lag1((x - y) / math.sqrt(2.0)),
    }
    return result


def _lag1(image: np.ndarray) -> dict[str, float]:
    """Adjacent-pixel correlation along x and y (0 for a constant image)."""
    if float(np.ptp(image)) == 0.0:
        return {"x": 0.0, "y": 0.0}
    values = noise_autocorrelation(image, max_lag=1)
    return {"x": values["x"][0], "y": values["y"][0]}


def probe_noise(
    shape: tuple[int, int], noise: SeparableNoise, *, rng: np.random.Generator
) -> np.ndarray:
    """A Gaussian field with the covariance of ``noise`` (its separable spectrum, interpolated
    onto the image's frequencies; periodic at the edges), float64 of ``shape``."""
    h, w = shape
    tile_h, tile_w = noise.spectrum_y.size, 2 * (noise.spectrum_x.size - 1)
    fy_tile = np.abs(2.0 * np.fft.fftfreq(tile_h))
    order = np.argsort(fy_tile, kind="stable")
    s_y = np.interp(np.abs(2.0 * np.fft.fftfreq(h)), fy_tile[order], noise.spectrum_y[order])
    s_x = np.interp(2.0 * np.fft.rfftfreq(w), 2.0 * np.fft.rfftfreq(tile_w), noise.spectrum_x)
    spectrum = noise.variance * np.clip(s_y[:, None] * s_x[None, :], 0.0, None)
    white = np.fft.rfft2(rng.standard_normal((h, w)))
    return np.fft.irfft2(white * np.sqrt(spectrum), s=(h, w))


def single_terms(
    noisy: np.ndarray,
    denoise: Denoise,
    *,
    noise: SeparableNoise | None = None,
    epsilon: float = DEFAULT_EPSILON,
    rng: np.random.Generator,
    block_px: int = DEFAULT_BLOCK_PX,
    denoised: np.ndarray | None = None,
) -> ErrorTerms:
    """The per-pixel terms of :func:`check_single` for one image, to pool over a set.

    ``e = (f(y) - y)**2 - v + 2 delta (f(y + eps delta) - f(y)) / eps`` with ``delta`` drawn with
    the noise's covariance (:func:`probe_noise`); ``q = v``. ``denoised`` is ``f(y)`` when
    already computed.
    """
    (y,) = _check_images(noisy, what="check_single")
    if not (math.isfinite(epsilon) and 0 < epsilon <= 1):
        raise ParameterError(f"epsilon must be in (0, 1], got {epsilon!r}")
    fit = fit_separable_noise(y) if noise is None else noise
    variance = fit.variance
    delta = probe_noise(y.shape, fit, rng=rng)
    d = (np.asarray(denoise(y.astype(np.float32)), np.float64) if denoised is None
         else _check_images(denoised, y, what="check_single")[0])  # fmt: skip
    step = epsilon * delta
    moved = np.asarray(denoise((y + step).astype(np.float32)), np.float64)
    divergence = delta * (moved - d) / epsilon
    error = (d - y) ** 2 - variance + 2.0 * divergence
    terms = ErrorTerms()
    signal = float(np.mean((y - y.mean()) ** 2)) - variance
    terms.add(error, np.full_like(error, variance), signal, _check_block(block_px))
    return terms


def check_single(
    noisy: np.ndarray,
    denoise: Denoise,
    *,
    noise: SeparableNoise | None = None,
    epsilon: float = DEFAULT_EPSILON,
    rng: np.random.Generator,
    block_px: int = DEFAULT_BLOCK_PX,
) -> dict[str, Any]:
    """Quality of ``f(noisy)`` against the unseen clean image from one noisy image (see the
    module docstring: Stein's unbiased risk estimate with a Monte-Carlo probe).

    Parameters
    ----------
    noisy
        One noisy 2D image.
    denoise
        ``f``: float32 image in, image of the same shape out; called twice.
    noise
        The noise's covariance; default: read from the image's high-frequency band.
    epsilon
        Probe step in units of the noise, in (0, 1].
    rng
        Draws the probe.
    block_px
        Block side for the standard error, in pixels.

    Returns
    -------
    dict
        The keys of :meth:`ErrorTerms.summary`; the noise variance is the band's estimate and
        ``signal_variance`` is ``var(noisy)`` minus it. The uncertainty covers the noise and the
        probe, not the error of the noise variance itself.
    """
    terms = single_terms(noisy, denoise, noise=noise, epsilon=epsilon, rng=rng, block_px=block_px)
    return terms.summary()


def pooled(terms: Sequence[ErrorTerms]) -> dict[str, float]:
    """The set's summary (:meth:`ErrorTerms.summary`) from each image's terms, pixels pooled."""
    total = ErrorTerms()
    for item in terms:
        total.extend(item)
    return total.summary()
