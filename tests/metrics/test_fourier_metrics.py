"""FRC/FSC, the half-bit threshold and resolution crossings."""

from __future__ import annotations

import numpy as np
import pytest

from cryoden.errors import ParameterError
from cryoden.filters import lowpass
from cryoden.metrics import (
    FourierCorrelation,
    frc,
    fsc,
    half_bit_threshold,
    resolution_angstrom,
    resolution_crossing,
)


def _reference_frc(a: np.ndarray, b: np.ndarray):
    """Brute force over the full ``fftn``: the definition, without the rfft weighting."""
    fa, fb = np.fft.fftn(a), np.fft.fftn(b)
    grids = np.meshgrid(*[2 * np.fft.fftfreq(n) for n in a.shape], indexing="ij")
    radius = np.sqrt(sum(g**2 for g in grids))
    shell = np.rint(radius / (2 / min(a.shape))).astype(int)
    n_shells = min(a.shape) // 2 + 1
    corr, count = np.zeros(n_shells), np.zeros(n_shells, dtype=int)
    for k in range(n_shells):
        sel = shell == k
        num = np.sum(fa[sel] * np.conj(fb[sel])).real
        den = np.sqrt(np.sum(np.abs(fa[sel]) ** 2) * np.sum(np.abs(fb[sel]) ** 2))
        corr[k] = num / den if den > 0 else 0.0
        count[k] = sel.sum()
    return corr, count


@pytest.mark.parametrize("shape", [(32, 32), (31, 40), (40, 27), (17, 17)])
def test_frc_matches_the_full_fft_definition(shape, rng):
    a = rng.normal(size=shape)
    b = a + rng.normal(size=shape)
    curve = frc(a, b)
    corr, count = _reference_frc(a, b)
    np.testing.assert_allclose(curve.correlation, corr, atol=1e-12)
    np.testing.assert_array_equal(curve.n_per_shell, count)
    np.testing.assert_allclose(curve.frequency_nyquist, np.arange(len(count)) * 2 / min(shape))


def test_fsc_matches_the_full_fft_definition(rng):
    a = rng.normal(size=(12, 15, 14))
    b = a + 2 * rng.normal(size=a.shape)
    curve = fsc(a, b)
    corr, count = _reference_frc(a, b)
    np.testing.assert_allclose(curve.correlation, corr, atol=1e-12)
    np.testing.assert_array_equal(curve.n_per_shell, count)


@pytest.mark.parametrize("shape", [(64, 64), (63, 80), (9, 12)])
def test_frc_of_an_image_with_itself_is_one_on_every_ring(shape, rng):
    x = rng.normal(size=shape).astype(np.float32)
    curve = frc(x, x)
    assert np.all(np.abs(curve.correlation - 1.0) < 1e-6)
    assert curve.frequency_nyquist[0] == 0 and curve.frequency_nyquist[-1] <= 1.0
    assert len(curve.correlation) == min(shape) // 2 + 1


def test_fsc_of_a_volume_with_itself_is_one(rng):
    v = rng.normal(size=(16, 20, 18))
    assert np.all(np.abs(fsc(v, v).correlation - 1.0) < 1e-6)


def test_shells_without_power_give_zero_not_nan():
    flat = np.full((16, 16), 3.0)
    curve = frc(flat, flat)
    assert np.all(np.isfinite(curve.correlation))
    assert curve.correlation[0] == pytest.approx(1.0)
    assert np.all(curve.correlation[1:] == 0.0)
    assert np.all(frc(np.zeros((8, 8)), np.zeros((8, 8))).correlation == 0.0)


def _noise_pair(seed: int, size: int = 256):
    gen = np.random.default_rng(seed)
    return gen.normal(size=(size, size)), gen.normal(size=(size, size))


@pytest.mark.parametrize("seed", range(4))
def test_frc_of_independent_noise_stays_within_three_over_sqrt_n(seed):
    a, b = _noise_pair(seed)
    curve = frc(a, b)
    assert np.all(np.abs(curve.correlation) <= 3.0 / np.sqrt(curve.n_per_shell))


def test_three_over_sqrt_n_is_an_honest_three_sigma_bound():
    """n_per_shell counts Hermitian partners, so sqrt(n) FRC of independent noise is N(0, 1).

    Were n halved (half-plane count), ``3 / sqrt(n)`` would be a loose 4.2-sigma bound and no
    ring would leave it; were it doubled, about 3 % of rings would. At 3 sigma, 0.27 % of the
    5160 rings of 40 pairs should, i.e. about 14.
    """
    z_values, outside = [], 0
    for seed in range(40):
        curve = frc(*_noise_pair(seed))
        n = curve.n_per_shell
        z_values.append((curve.correlation * np.sqrt(n))[n >= 100])
        outside += int(np.sum(np.abs(curve.correlation) > 3.0 / np.sqrt(n)))
    z = np.concatenate(z_values)
    assert abs(z.mean()) < 0.05
    assert 0.95 < z.std() < 1.05
    assert 3 <= outside <= 30


def test_frc_against_low_passed_copy_falls_at_the_cutoff(rng):
    size, cutoff = 128, 0.4
    x = rng.normal(size=(size, size)).astype(np.float32)
    curve = frc(x, lowpass(x, cutoff_nyquist=cutoff))
    half_ring = 1.0 / size  # rings are 2 / size wide
    before = curve.frequency_nyquist < cutoff - half_ring
    after = curve.frequency_nyquist > cutoff + half_ring
    assert np.all(curve.correlation[before] > 0.999)
    # above the cutoff only float32 rounding is left, uncorrelated with x: ~0 (5 sigma)
    assert np.all(np.abs(curve.correlation[after]) < 5.0 / np.sqrt(curve.n_per_shell[after]))
    assert resolution_crossing(curve, 0.5) == pytest.approx(cutoff, abs=2.0 / size)


def test_frequency_in_inverse_angstrom():
    x = np.random.default_rng(0).normal(size=(16, 16))
    curve = frc(x, x, pixel_size_angstrom=2.0)
    assert curve.frequency_per_angstrom[-1] == pytest.approx(1 / 4.0)
    assert frc(x, x).frequency_per_angstrom is None


def test_shape_mismatch_and_wrong_dimensionality():
    with pytest.raises(ParameterError, match=r"\(8, 8\) and \(8, 9\)"):
        frc(np.zeros((8, 8)), np.zeros((8, 9)))
    with pytest.raises(ParameterError, match="2D"):
        frc(np.zeros((4, 8, 8)), np.zeros((4, 8, 8)))
    with pytest.raises(ParameterError, match="3D"):
        fsc(np.zeros((8, 8)), np.zeros((8, 8)))
    with pytest.raises(ParameterError, match="pixel_size_angstrom"):
        frc(np.zeros((8, 8)), np.zeros((8, 8)), pixel_size_angstrom=0)


def test_half_bit_threshold_values():
    n = np.array([0, 1, 4, 100, 10_000, 10**12])
    t = half_bit_threshold(n)
    assert t[0] == 1.0 and t[1] == pytest.approx(1.0, abs=1e-4)
    assert t[2] == pytest.approx((0.2071 + 1.9102 / 2) / (1.2071 + 0.9102 / 2))
    assert t[4] == pytest.approx(0.18599, abs=1e-5)
    assert t[5] == pytest.approx(0.2071 / 1.2071, abs=1e-5)
    assert np.all(np.diff(t[1:]) < 0)
    assert np.all((t > 0.17) & (t <= 1.0))


def _curve(frequency, correlation, n=1000):
    frequency = np.asarray(frequency, dtype=float)
    return FourierCorrelation(
        frequency, np.asarray(correlation, dtype=float), np.full(len(frequency), n)
    )


def test_resolution_crossing_interpolates_linearly():
    curve = _curve([0.0, 0.1, 0.2, 0.3, 0.4], [1.0, 0.8, 0.4, 0.1, 0.3])
    assert resolution_crossing(curve, 0.5) == pytest.approx(0.175)
    assert resolution_crossing(curve, 0.143) == pytest.approx(0.2 + 0.1 * (0.4 - 0.143) / 0.3)
    assert resolution_crossing(curve, 0.05) == 1.0  # never crossed
    line = _curve(np.linspace(0, 1, 11), 1 - np.linspace(0, 1, 11))
    assert resolution_crossing(line, 0.5) == pytest.approx(0.5)
    assert resolution_crossing(line, 0.143) == pytest.approx(0.857)


def test_resolution_crossing_takes_the_first_crossing_and_skips_dc():
    curve = _curve([0.0, 0.1, 0.2, 0.3, 0.4], [0.0, 0.9, 0.3, 0.9, 0.2])
    assert resolution_crossing(curve, 0.5) == pytest.approx(0.1 + 0.1 * 0.4 / 0.6)
    below_at_once = _curve([0.0, 0.1, 0.2], [0.0, 0.2, 0.1])
    assert resolution_crossing(below_at_once, 0.5) == pytest.approx(0.1)


def test_half_bit_crossing():
    n = np.array([1, 8, 16, 24, 32, 40])
    f = np.linspace(0, 0.5, 6)
    correlation = np.array([1.0, 0.9, 0.7, 0.2, 0.1, 0.0])
    curve = FourierCorrelation(f, correlation, n)
    t = half_bit_threshold(n)
    i = 3  # first shell below the half-bit curve
    assert correlation[2] > t[2] and correlation[3] < t[3]
    d0, d1 = correlation[i - 1] - t[i - 1], correlation[i] - t[i]
    expected = f[i - 1] + (f[i] - f[i - 1]) * d0 / (d0 - d1)
    assert resolution_crossing(curve, "half-bit") == pytest.approx(expected)
    with pytest.raises(ParameterError, match="half-bit"):
        resolution_crossing(curve, "one-bit")
    with pytest.raises(ParameterError, match="threshold"):
        resolution_crossing(curve, 1.5)


def test_resolution_angstrom():
    assert resolution_angstrom(1.0, 1.4) == pytest.approx(2.8)
    assert resolution_angstrom(0.5, 1.5) == pytest.approx(6.0)
    assert resolution_angstrom(0.0, 1.5) == float("inf")
    with pytest.raises(ParameterError):
        resolution_angstrom(0.5, 0.0)
