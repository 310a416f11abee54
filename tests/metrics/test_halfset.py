"""Quality without ground truth: the half-set and single-image estimates match the true error
where the clean image is known (averaged over seeds), with standard errors that fit."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from cryoden.errors import ParameterError
from cryoden.metrics import halfset as hs

from .noise_helpers import correlated_noise, simulated_field

SEEDS = range(24)


def _blur(image: np.ndarray) -> np.ndarray:
    return ndimage.gaussian_filter(image, 1.5)


@pytest.fixture(scope="module")
def clean() -> np.ndarray:
    return 0.5 * simulated_field(64)  # SNR 0.25 against unit noise


@pytest.mark.parametrize("a_xy", [0.0, 0.3])  # white, then adjacent correlation about 0.46
def test_pair_estimate_is_unbiased_and_its_error_bar_fits(clean, a_xy):
    errors, stated, gain_errors = [], [], []
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        na, nb = correlated_noise((2, 64, 64), a_x=a_xy, a_y=a_xy, sigma=1.0, rng=rng)
        a, b = clean + na, clean + nb
        denoised = _blur(a)
        result = hs.check_pair(a, b, denoised, block_px=16)
        true_mse = float(np.mean((denoised - clean) ** 2))
        errors.append(result["estimated_mse"] - true_mse)
        stated.append(result["estimated_mse_uncertainty"])
        true_gain = 10 * np.log10(np.mean(na**2) / true_mse)
        gain_errors.append(result["gain_db"] - true_gain)
    errors_arr = np.array(errors)
    spread = errors_arr.std(ddof=1)
    assert abs(errors_arr.mean()) < 3 * spread / np.sqrt(len(errors_arr))  # unbiased
    assert 0.6 < np.mean(stated) / spread < 1.7  # the standard error is the error's spread
    gains = np.array(gain_errors)
    assert abs(gains.mean()) < 3 * gains.std(ddof=1) / np.sqrt(len(gains))


def test_pair_checks_of_identity_and_a_perfect_denoiser(clean, rng):
    na, nb = correlated_noise((2, 64, 64), a_x=0.2, a_y=0.2, sigma=1.0, rng=rng)
    a, b = clean + na, clean + nb
    identity = hs.check_pair(a, b, a, block_px=16)
    assert identity["estimated_mse"] == pytest.approx(identity["noise_variance"], abs=1e-9)
    assert identity["gain_db"] == pytest.approx(0.0, abs=1e-6)
    assert identity["residual"]["variance_ratio"] == 0.0
    perfect = hs.check_pair(a, b, clean, block_px=16)
    assert abs(perfect["estimated_mse"]) < 3 * perfect["estimated_mse_uncertainty"]
    assert perfect["residual"]["variance_ratio"] == pytest.approx(1.0, abs=0.1)
    assert abs(perfect["residual"]["signal_fraction"]) < 0.2
    lag1 = perfect["residual"]["autocorrelation"]["x"]
    assert lag1 == pytest.approx(perfect["residual"]["noise_autocorrelation"]["x"], abs=0.1)
    # The clean image correlates with b better than a does, ring by ring.
    raw, den = np.array(perfect["frc"]["raw"][1:]), np.array(perfect["frc"]["denoised"][1:])
    assert np.mean(den > raw) > 0.8
    # A blur removes part of the signal: its residual holds some.
    blurred = hs.check_pair(a, b, ndimage.gaussian_filter(a, 3.0), block_px=16)
    assert blurred["residual"]["signal_fraction"] > perfect["residual"]["signal_fraction"]


def test_pooled_set_equals_the_whole(clean, rng):
    na, nb = rng.normal(size=(2, 64, 64))
    a, b = clean + na, clean + nb
    halves = [hs.pair_terms(a[:, :32], b[:, :32], _blur(a)[:, :32], block_px=16),
              hs.pair_terms(a[:, 32:], b[:, 32:], _blur(a)[:, 32:], block_px=16)]  # fmt: skip
    whole = hs.pair_terms(a, b, _blur(a), block_px=16).summary()
    pooled = hs.pooled(halves)
    assert pooled["estimated_mse"] == pytest.approx(whole["estimated_mse"])
    assert pooled["noise_variance"] == pytest.approx(whole["noise_variance"])
    assert pooled["n_blocks"] == whole["n_blocks"] == 16


@pytest.mark.parametrize("a_xy", [0.0, 0.3])
def test_single_image_estimate_is_unbiased_where_the_noise_is_known(clean, a_xy):
    errors = []
    for seed in range(16):
        rng = np.random.default_rng(seed)
        noise = correlated_noise((64, 64), a_x=a_xy, a_y=a_xy, sigma=1.0, rng=rng)
        noisy = 0.3 * clean + noise  # low SNR: little signal in the band the noise is read from
        result = hs.check_single(noisy, _blur, rng=rng, block_px=16)
        errors.append(result["estimated_mse"] - float(np.mean((_blur(noisy) - 0.3 * clean) ** 2)))
    errors_arr = np.array(errors)
    assert abs(errors_arr.mean()) < 3 * errors_arr.std(ddof=1) / np.sqrt(len(errors_arr)) + 0.01


def test_probe_noise_has_the_noise_statistics(rng):
    from cryoden.metrics.noise_stats import fit_separable_noise, noise_autocorrelation

    noise = correlated_noise((128, 128), a_x=0.3, a_y=0.0, sigma=2.0, rng=rng)
    probe = hs.probe_noise((96, 80), fit_separable_noise(noise), rng=rng)
    assert probe.shape == (96, 80)
    assert float(probe.var()) == pytest.approx(4.0, rel=0.15)
    measured = noise_autocorrelation(probe, max_lag=1)
    assert measured["x"][0] == pytest.approx(0.6 / 1.18, abs=0.06)
    assert abs(measured["y"][0]) < 0.06


def test_bad_inputs(rng):
    a, b = rng.normal(size=(2, 32, 32))
    with pytest.raises(ParameterError, match="one shape"):
        hs.check_pair(a, b[:, :-1], a)
    with pytest.raises(ParameterError, match="block_px"):
        hs.check_pair(a, b, a, block_px=1)
    with pytest.raises(ParameterError, match="epsilon"):
        hs.check_single(a, _blur, rng=rng, epsilon=0.0)
    with pytest.raises(ParameterError, match="NaN"):
        hs.check_pair(a, np.full_like(b, np.nan), a)
