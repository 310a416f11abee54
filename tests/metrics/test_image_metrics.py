"""Cross-correlation, PSNR and SSIM."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from cryoden.errors import ParameterError
from cryoden.metrics import cross_correlation, psnr, ssim


@pytest.fixture
def smooth(rng) -> np.ndarray:
    return ndimage.gaussian_filter(rng.normal(size=(48, 40)), 2.0).astype(np.float32)


def test_cross_correlation_known_values(smooth, rng):
    assert cross_correlation(smooth, smooth) == pytest.approx(1.0, abs=1e-12)
    assert cross_correlation(smooth, -smooth) == pytest.approx(-1.0, abs=1e-12)
    assert cross_correlation(smooth, 3 * smooth + 2) == pytest.approx(1.0, abs=1e-12)
    a, b = rng.normal(size=(2, 256, 256))
    assert abs(cross_correlation(a, b)) < 4 / 256  # 4 sigma for independent noise
    assert cross_correlation(smooth, np.full_like(smooth, 2.0)) == 0.0


def test_psnr_known_values(rng):
    reference = rng.uniform(size=(32, 32))
    reference[0, 0], reference[0, 1] = 0.0, 2.0  # data range 2
    assert psnr(reference, reference) == float("inf")
    shifted = reference + 0.1  # MSE 0.01
    assert psnr(reference, shifted) == pytest.approx(10 * np.log10(4 / 0.01))
    assert psnr(reference, shifted, data_range=1.0) == pytest.approx(20.0)
    with pytest.raises(ParameterError, match="data range"):
        psnr(np.ones((4, 4)), np.zeros((4, 4)))
    with pytest.raises(ParameterError, match="data_range"):
        psnr(reference, shifted, data_range=-1)


def test_ssim_of_identical_images_is_one(smooth):
    assert ssim(smooth, smooth) == pytest.approx(1.0, abs=1e-12)


def test_ssim_decreases_with_noise(smooth):
    gen = np.random.default_rng(5)
    noise = gen.normal(size=smooth.shape)
    scores = [ssim(smooth, smooth + s * smooth.std() * noise) for s in (0.0, 0.1, 0.3, 1.0, 3.0)]
    assert scores[0] == pytest.approx(1.0)
    assert all(a > b for a, b in zip(scores, scores[1:]))
    assert scores[-1] < 0.2


def test_ssim_of_a_constant_offset_is_the_luminance_term(rng):
    reference = rng.uniform(size=(40, 40))
    offset = 0.2
    c1 = (0.01 * float(reference.max() - reference.min())) ** 2
    mu = ndimage.gaussian_filter(reference, 1.5, mode="reflect", truncate=3.5)
    luminance = (2 * mu * (mu + offset) + c1) / (mu**2 + (mu + offset) ** 2 + c1)
    expected = luminance[5:-5, 5:-5].mean()
    assert ssim(reference, reference + offset) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("metric", [cross_correlation, psnr, ssim])
def test_shape_mismatch_states_both_shapes(metric):
    with pytest.raises(ParameterError, match=r"\(8, 8\) and \(8, 9\)"):
        metric(np.zeros((8, 8)), np.zeros((8, 9)))


@pytest.mark.parametrize("metric", [cross_correlation, psnr, ssim])
def test_non_finite_images_are_rejected(metric, smooth):
    bad = smooth.copy()
    bad[2, 2] = np.nan
    with pytest.raises(ParameterError, match="NaN"):
        metric(smooth, bad)
