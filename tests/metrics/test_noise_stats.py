"""Noise statistics: variance, autocorrelation, power spectrum and SNR, from pairs and from
single images, recovered where the noise is known."""

from __future__ import annotations

import numpy as np
import pytest

from cryoden.errors import ParameterError
from cryoden.metrics import noise_stats as ns

from .noise_helpers import correlated_noise, kernel_correlation, simulated_field

A_X, A_Y = 0.2, 0.1  # lag-1 correlations about 0.37 along x and 0.20 along y


def _assert_close(measured: dict[str, list[float]], a_x: float, a_y: float, tol: float) -> None:
    expected = {"x": kernel_correlation(a_x), "y": kernel_correlation(a_y)}
    for axis in ("x", "y"):
        assert np.allclose(measured[axis], expected[axis], atol=tol), (axis, measured, expected)


def test_autocorrelation_of_white_and_correlated_noise(rng):
    white = rng.normal(size=(2, 128, 128))
    measured = ns.noise_autocorrelation(white, max_lag=3)
    assert max(abs(v) for v in measured["x"] + measured["y"]) < 4 / 128 / np.sqrt(2)
    noise = correlated_noise((4, 128, 128), a_x=A_X, a_y=A_Y, sigma=2.0, rng=rng)
    _assert_close(ns.noise_autocorrelation(noise, max_lag=3), A_X, A_Y, 0.02)
    assert ns.noise_variance(noise) == pytest.approx(4.0, rel=0.03)
    # A list of images of different sizes pools the same way.
    parts = [noise[0], noise[1, :100, :80]]
    _assert_close(ns.noise_autocorrelation(parts, max_lag=3), A_X, A_Y, 0.03)


def test_pair_noise_recovers_the_noise_of_one_half(rng):
    signal = 3.0 * simulated_field(128)
    n1, n2 = correlated_noise((2, 128, 128), a_x=A_X, a_y=A_Y, sigma=1.5, rng=rng)
    a, b = signal + n1, signal + n2
    noise = ns.pair_noise(a, b)
    assert noise.dtype == np.float32
    assert np.allclose(noise, (n1 - n2) / np.sqrt(2), atol=1e-5)
    _assert_close(ns.noise_autocorrelation(noise), A_X, A_Y, 0.05)
    assert ns.noise_variance(noise) == pytest.approx(1.5**2, rel=0.05)
    assert ns.pair_snr(a, b) == pytest.approx(9.0 / 1.5**2, rel=0.1)
    with pytest.raises(ParameterError, match="same shape"):
        ns.pair_noise(a, b[:-1])


@pytest.mark.parametrize(("a_x", "a_y"), [(0.0, 0.0), (A_X, A_Y), (0.1, 0.3)])
def test_single_image_recovers_known_correlation_at_low_snr(rng, a_x, a_y):
    clean = simulated_field(128)
    snr = 0.1
    noise = correlated_noise((128, 128), a_x=a_x, a_y=a_y, sigma=1.0, rng=rng)
    noisy = np.sqrt(snr) * clean + noise
    measured = ns.noise_autocorrelation_single(noisy, max_lag=3)
    _assert_close(measured, a_x, a_y, 0.05)
    # The raw image's own correlation holds the signal's too; the fit removes it.
    assert ns.noise_variance_single(noisy) == pytest.approx(float(noise.var()), rel=0.1)


def test_single_image_snr_and_stack_pooling(rng):
    clean = np.stack([simulated_field(128, seed=s) for s in (1, 2)])
    noise = correlated_noise((2, 128, 128), a_x=A_X, a_y=A_Y, sigma=1.0, rng=rng)
    snr = 0.1
    noisy = np.sqrt(snr) * clean + noise
    _assert_close(ns.noise_autocorrelation_single(noisy), A_X, A_Y, 0.04)
    assert ns.single_image_snr(noisy[0]) == pytest.approx(snr, abs=0.04)


def test_power_spectra_of_white_and_correlated_noise(rng):
    white = rng.normal(scale=2.0, size=(4, 64, 96))
    frequency, power = ns.noise_power_spectrum(white, n_bins=16)
    assert frequency[0] == pytest.approx(1 / 32) and frequency[-1] == pytest.approx(31 / 32)
    assert np.allclose(power[1:], 4.0, rtol=0.2)  # flat at the variance
    noise = correlated_noise((4, 128, 128), a_x=A_X, a_y=A_Y, sigma=1.0, rng=rng)
    _, measured = ns.noise_power_spectrum(noise, n_bins=16)
    assert measured[0] > 2 * measured[-1]  # correlated noise is low-pass
    _, model = ns.fit_separable_noise(noise).power_spectrum(n_bins=16)
    assert np.allclose(model[1:], measured[1:], rtol=0.2)


def test_single_image_noise_is_the_high_band(rng, blob_image):
    white = rng.normal(size=blob_image.shape)
    band = ns.single_image_noise(white)
    assert band.shape == white.shape and band.dtype == np.float32
    assert float(band.var()) == pytest.approx(1 - np.pi / 16, rel=0.1)  # share of the band
    smooth_signal = 5.0 * blob_image / blob_image.std()
    from_noisy = ns.single_image_noise(smooth_signal + white)
    leak = from_noisy - band  # the smooth signal stays out, but for its edges' leakage
    assert float(np.sqrt(np.mean(leak**2))) < 0.1 * float(band.std())


def test_verdict_thresholds():
    assert ns.correlation_verdict({"x": [0.01], "y": [-0.02]}) == "white"
    assert ns.correlation_verdict({"x": [0.01], "y": [0.1]}) == "mild"
    assert ns.correlation_verdict({"x": [0.35], "y": [0.1]}) == "strong"


def test_bad_inputs_name_the_parameter(rng):
    with pytest.raises(ParameterError, match="max_lag"):
        ns.noise_autocorrelation(rng.normal(size=(8, 8)), max_lag=0)
    with pytest.raises(ParameterError, match=r"\(N, H, W\)"):
        ns.noise_autocorrelation(np.zeros((2, 2, 2, 2)))
    with pytest.raises(ParameterError, match="constant"):
        ns.noise_autocorrelation(np.ones((8, 8)))
    with pytest.raises(ParameterError, match="low_nyquist"):
        ns.fit_separable_noise(rng.normal(size=(32, 32)), low_nyquist=1.5)
    with pytest.raises(ParameterError, match="16 pixels"):
        ns.noise_autocorrelation_single(rng.normal(size=(8, 8)))
    with pytest.raises(ParameterError, match="NaN"):
        ns.noise_variance(np.full((4, 4), np.nan))
