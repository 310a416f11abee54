"""Correlated Gaussian noise: the adjacent-pixel correlation per axis, variance, SNR, checks."""

from __future__ import annotations

import numpy as np
import pytest

from cryoden.errors import ParameterError
from cryoden.metrics.noise_stats import noise_autocorrelation
from cryoden.noise import estimate_snr, image_rng
from cryoden.noise.correlated import (
    MAX_CORRELATION,
    add_correlated_gaussian_noise,
    correlated_gaussian_noise,
    kernel_autocorrelation,
    kernel_for_correlation,
)


@pytest.mark.parametrize(
    ("rho_y", "rho_x"), [(0.0, 0.0), (0.2, 0.2), (0.4, 0.4), (0.5, 0.5), (0.17, 0.09), (0.0, 0.3)]
)
def test_generator_hits_the_target_lag1_correlation_per_axis(rho_y, rho_x):
    noise = correlated_gaussian_noise((384, 384), (rho_y, rho_x), rng=image_rng(3, 0))
    measured = noise_autocorrelation(noise, max_lag=1)
    assert measured["y"][0] == pytest.approx(rho_y, abs=0.02)
    assert measured["x"][0] == pytest.approx(rho_x, abs=0.02)
    assert float(noise.std()) == pytest.approx(1.0, abs=0.02)


def test_lags_beyond_the_first_follow_the_kernel():
    taps = kernel_for_correlation(0.5)
    expected = kernel_autocorrelation(taps, max_lag=3)
    assert expected[0] == pytest.approx(0.5) and expected[2] == 0.0
    noise = correlated_gaussian_noise((384, 384), 0.5, rng=image_rng(4, 0), sigma=3.0)
    measured = noise_autocorrelation(noise, max_lag=3)
    np.testing.assert_allclose(measured["x"], expected, atol=0.02)
    np.testing.assert_allclose(measured["y"], expected, atol=0.02)
    assert float(noise.std()) == pytest.approx(3.0, rel=0.02)


def test_volumes_get_one_correlation_per_axis():
    noise = correlated_gaussian_noise((48, 64, 64), (0.0, 0.3, 0.1), rng=image_rng(5, 0))
    centred = noise - noise.mean()

    def lag1(axis: int) -> float:
        a = np.moveaxis(centred, axis, 0)
        return float((a[1:] * a[:-1]).mean() / (a * a).mean())

    assert [lag1(0), lag1(1), lag1(2)] == pytest.approx([0.0, 0.3, 0.1], abs=0.02)


def test_zero_correlation_is_white_noise_with_the_same_draws():
    white = image_rng(6, 0).standard_normal((16, 16)) * 2.0
    same = correlated_gaussian_noise((16, 16), 0.0, rng=image_rng(6, 0), sigma=2.0)
    np.testing.assert_array_equal(same, white)


def test_noise_added_at_a_target_snr(blob_image):
    noisy = add_correlated_gaussian_noise(blob_image, 0.5, (0.3, 0.2), rng=image_rng(7, 0))
    assert noisy.dtype == np.float32 and noisy.shape == blob_image.shape
    assert estimate_snr(blob_image, noisy) == pytest.approx(0.5, rel=0.15)


@pytest.mark.parametrize("bad", [0.71, -0.8, float("nan")])
def test_impossible_correlations_are_refused(bad):
    with pytest.raises(ParameterError, match="correlation"):
        kernel_for_correlation(bad)


def test_the_limit_is_reachable_and_one_value_per_axis_is_checked():
    assert kernel_autocorrelation(kernel_for_correlation(MAX_CORRELATION), 1)[0] == pytest.approx(
        MAX_CORRELATION
    )
    with pytest.raises(ParameterError, match="one value per axis"):
        correlated_gaussian_noise((8, 8), (0.1, 0.2, 0.3), rng=image_rng(0, 0))
