"""Noise models: SNR accuracy, Poisson statistics, argument checks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from cryoden.errors import ParameterError
from cryoden.noise import (
    STUDY_SNR_LEVELS,
    add_gaussian_noise,
    add_noise,
    add_poisson_gaussian_noise,
    add_poisson_noise,
    add_poisson_noise_at_snr,
    estimate_snr,
    expected_counts_per_pixel,
    image_rng,
    noise_sigma_for_snr,
    snr_to_db,
)


@pytest.fixture(scope="module")
def clean_512() -> np.ndarray:
    """A smooth 512 x 512 test image (not constant, mostly low frequencies)."""
    gen = np.random.default_rng(2024)
    return ndimage.gaussian_filter(gen.normal(size=(512, 512)), 3.0).astype(np.float32)


def test_study_levels():
    assert STUDY_SNR_LEVELS == pytest.approx(tuple(np.linspace(0.01, 0.5, 10)))


@pytest.mark.parametrize("snr", [0.01, 0.1, 0.5, 2.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gaussian_noise_measures_the_requested_snr(clean_512, snr, seed):
    noisy = add_gaussian_noise(clean_512, snr, rng=image_rng(seed, 0))
    assert noisy.dtype == np.float32 and noisy.shape == clean_512.shape
    assert estimate_snr(clean_512, noisy) == pytest.approx(snr, rel=0.03)
    assert abs(float(np.mean(noisy - clean_512))) < 4 * noise_sigma_for_snr(clean_512, snr) / 512


@pytest.mark.parametrize("snr", [0.01, 0.1, 0.5])
@pytest.mark.parametrize("seed", [0, 1])
def test_poisson_noise_at_snr_measures_the_requested_snr(clean_512, snr, seed):
    noisy = add_poisson_noise_at_snr(clean_512, snr, rng=image_rng(seed, 0))
    assert noisy.dtype == np.float32
    assert estimate_snr(clean_512, noisy) == pytest.approx(snr, rel=0.03)


@pytest.mark.parametrize(("dose", "pixel"), [(1.0, 1.0), (40.0, 1.2), (0.2, 2.0)])
def test_poisson_mean_equals_variance(dose, pixel):
    lam = expected_counts_per_pixel(dose, pixel)
    assert lam == pytest.approx(dose * pixel**2)
    counts = add_poisson_noise(np.zeros((512, 512), np.float32), dose, pixel, rng=image_rng(9, 0))
    assert counts.dtype == np.float32
    assert np.all(counts == np.round(counts)) and counts.min() >= 0
    n = counts.size
    assert counts.mean() == pytest.approx(lam, abs=5 * np.sqrt(lam / n))
    assert counts.var() == pytest.approx(lam, rel=0.03)


def test_poisson_mean_follows_the_contrast():
    clean = np.zeros((256, 256), np.float32)
    clean[:, 128:] = 0.5  # right half 50 % brighter
    counts = add_poisson_noise(clean, 20.0, 1.0, rng=image_rng(3, 0))
    assert counts[:, :128].mean() == pytest.approx(20.0, rel=0.02)
    assert counts[:, 128:].mean() == pytest.approx(30.0, rel=0.02)
    assert counts[:, 128:].var() == pytest.approx(30.0, rel=0.05)


def test_poisson_gaussian_variance_adds_read_noise():
    counts = add_poisson_gaussian_noise(
        np.zeros((512, 512), np.float32), 10.0, 1.0, 3.0, rng=image_rng(4, 0)
    )
    assert counts.mean() == pytest.approx(10.0, abs=0.05)
    assert counts.var() == pytest.approx(10.0 + 9.0, rel=0.03)


def test_inputs_are_not_modified(clean_512):
    copy = clean_512.copy()
    add_gaussian_noise(clean_512, 0.1, rng=image_rng(0, 0))
    add_poisson_noise_at_snr(clean_512, 0.1, rng=image_rng(0, 0))
    np.testing.assert_array_equal(clean_512, copy)


def test_add_noise_dispatches(clean_512):
    small = clean_512[:64, :64]
    np.testing.assert_array_equal(
        add_noise(small, model="gaussian", snr=0.2, rng=image_rng(1, 2)),
        add_gaussian_noise(small, 0.2, rng=image_rng(1, 2)),
    )
    np.testing.assert_array_equal(
        add_noise(small, model="poisson", snr=0.2, rng=image_rng(1, 2)),
        add_poisson_noise_at_snr(small, 0.2, rng=image_rng(1, 2)),
    )
    np.testing.assert_array_equal(
        add_noise(
            small, model="poisson", dose_e_per_a2=5, pixel_size_angstrom=1, rng=image_rng(1, 2)
        ),
        add_poisson_noise(small, 5, 1, rng=image_rng(1, 2)),
    )


def test_bad_arguments_are_parameter_errors(clean_512):
    gen = image_rng(0, 0)
    with pytest.raises(ParameterError, match="snr"):
        add_gaussian_noise(clean_512, 0.0, rng=gen)
    with pytest.raises(ParameterError, match="constant"):
        add_gaussian_noise(np.ones((8, 8)), 0.1, rng=gen)
    with pytest.raises(ParameterError, match="dose_e_per_a2"):
        add_poisson_noise(clean_512, -1.0, 1.0, rng=gen)
    with pytest.raises(ParameterError, match="needs snr"):
        add_noise(clean_512, model="gaussian", rng=gen)
    with pytest.raises(ParameterError, match="unknown noise model"):
        add_noise(clean_512, model="speckle", snr=0.1, rng=gen)


def test_snr_helpers():
    assert snr_to_db(0.1) == pytest.approx(-10.0)
    clean = np.array([0.0, 2.0, 0.0, 2.0])
    assert estimate_snr(clean, clean) == float("inf")
    assert estimate_snr(clean, clean + np.array([1.0, -1.0, -1.0, 1.0])) == pytest.approx(1.0)
