"""Real-space filters: dtype, shape, borders and known answers."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

from cryoden.errors import ParameterError
from cryoden.filters import gaussian_filter, mean_filter, median_filter, wiener_local

FILTERS = [
    (mean_filter, {"size": 3}),
    (median_filter, {"size": 5}),
    (gaussian_filter, {"sigma_px": 1.5}),
    (wiener_local, {"size": 5}),
]


@pytest.mark.parametrize(("function", "params"), FILTERS)
@pytest.mark.parametrize("shape", [(32, 32), (31, 17), (5, 3)])
def test_float32_same_shape_and_constant_stays_constant(function, params, shape, rng):
    image = rng.normal(size=shape).astype(np.float32)
    out = function(image, **params)
    assert out.dtype == np.float32 and out.shape == shape
    flat = np.full(shape, 2.5, dtype=np.float32)
    np.testing.assert_allclose(function(flat, **params), flat, rtol=1e-6)  # mirrored borders


@pytest.mark.parametrize(("function", "params"), FILTERS)
def test_input_is_not_modified_and_float64_is_accepted(function, params, rng):
    image = rng.normal(size=(12, 13))
    copy = image.copy()
    assert function(image, **params).dtype == np.float32
    np.testing.assert_array_equal(image, copy)


@pytest.mark.parametrize(("function", "params"), FILTERS)
def test_non_2d_is_rejected(function, params):
    with pytest.raises(ParameterError, match=r"\(2, 8, 8\)"):
        function(np.zeros((2, 8, 8), np.float32), **params)


def test_mean_filter_of_an_impulse_is_a_box():
    image = np.zeros((9, 9), np.float32)
    image[4, 4] = 9.0
    out = mean_filter(image, size=3)
    assert out.sum() == pytest.approx(9.0)
    np.testing.assert_allclose(out[3:6, 3:6], 1.0)


def test_median_removes_isolated_hot_pixels(rng):
    image = np.zeros((20, 20), np.float32)
    image[5, 7] = image[12, 3] = 100.0
    assert median_filter(image, size=3).max() == 0.0


def test_gaussian_zero_sigma_is_identity_and_sigma_smooths(rng):
    image = rng.normal(size=(40, 40)).astype(np.float32)
    np.testing.assert_array_equal(gaussian_filter(image, sigma_px=0), image)
    assert gaussian_filter(image, sigma_px=2.0).std() < 0.5 * image.std()
    with pytest.raises(ParameterError, match="sigma_px"):
        gaussian_filter(image, sigma_px=-1)


@pytest.mark.parametrize("size", [0, 2, 4, -3, 2.5, True])
def test_window_size_must_be_odd_positive(size):
    image = np.zeros((8, 8), np.float32)
    with pytest.raises(ParameterError, match="size must be an odd positive integer"):
        mean_filter(image, size=size)
    with pytest.raises(ParameterError, match="size"):
        wiener_local(image, size=size)


def test_wiener_local_matches_scipy_away_from_borders(rng):
    image = rng.normal(size=(40, 36)) + np.linspace(0, 4, 36)
    ours = wiener_local(image, size=5, noise_variance=0.8)
    theirs = scipy.signal.wiener(image, mysize=5, noise=0.8)
    np.testing.assert_allclose(ours[2:-2, 2:-2], theirs[2:-2, 2:-2], rtol=1e-5, atol=1e-5)


def test_wiener_local_zero_noise_is_identity_and_denoises(blob_image):
    np.testing.assert_allclose(wiener_local(blob_image, noise_variance=0.0), blob_image, atol=1e-6)
    gen = np.random.default_rng(3)
    noisy = (blob_image + gen.normal(scale=0.2, size=blob_image.shape)).astype(np.float32)
    for noise_variance in (None, 0.04):
        out = wiener_local(noisy, size=5, noise_variance=noise_variance)
        assert np.mean((out - blob_image) ** 2) < 0.5 * np.mean((noisy - blob_image) ** 2)
    with pytest.raises(ParameterError, match="noise_variance"):
        wiener_local(noisy, noise_variance=-1.0)
