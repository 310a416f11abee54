"""Fourier filters, checked in Fourier space."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft

from cryoden.errors import ParameterError
from cryoden.filters import (
    bandpass,
    bandpass_gain,
    estimate_white_noise_power,
    highpass,
    highpass_gain,
    lowpass,
    lowpass_gain,
    radial_frequency_nyquist,
    wiener_fourier,
)

SHAPES = [(64, 64), (63, 80), (33, 31), (7, 5)]


def _spectra(image: np.ndarray, filtered: np.ndarray):
    spec_in = scipy.fft.rfft2(image.astype(np.float64))
    spec_out = scipy.fft.rfft2(filtered.astype(np.float64))
    scale = float(np.sqrt(np.mean(np.abs(spec_in) ** 2)))
    return spec_in, spec_out, scale


def test_radial_frequency_is_per_axis_nyquist():
    f = radial_frequency_nyquist((8, 6))
    assert f.shape == (8, 4)
    assert f[0, 0] == 0.0
    assert f[4, 0] == pytest.approx(1.0)  # y Nyquist
    assert f[0, 3] == pytest.approx(1.0)  # x Nyquist
    assert f[1, 0] == pytest.approx(2 / 8) and f[0, 1] == pytest.approx(2 / 6)
    assert f[4, 3] == pytest.approx(np.sqrt(2))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("cutoff", [0.05, 0.3, 0.77, 1.0])
def test_hard_lowpass_keeps_up_to_cutoff_and_removes_above(rng, shape, cutoff):
    image = rng.normal(size=shape).astype(np.float32)
    out = lowpass(image, cutoff_nyquist=cutoff)
    assert out.dtype == np.float32 and out.shape == shape
    spec_in, spec_out, scale = _spectra(image, out)
    keep = radial_frequency_nyquist(shape) <= cutoff
    np.testing.assert_allclose(spec_out[keep], spec_in[keep], atol=1e-5 * scale)
    assert np.all(np.abs(spec_out[~keep]) < 1e-5 * scale)


@pytest.mark.parametrize("shape", SHAPES)
def test_hard_highpass_and_bandpass(rng, shape):
    image = rng.normal(size=shape).astype(np.float32)
    f = radial_frequency_nyquist(shape)
    for out, keep in [
        (highpass(image, cutoff_nyquist=0.4), f >= 0.4),
        (bandpass(image, low_nyquist=0.2, high_nyquist=0.6), (f >= 0.2) & (f <= 0.6)),
        (bandpass(image, low_nyquist=0.0, high_nyquist=0.6), f <= 0.6),
    ]:
        assert out.dtype == np.float32 and out.shape == shape
        spec_in, spec_out, scale = _spectra(image, out)
        np.testing.assert_allclose(spec_out[keep], spec_in[keep], atol=1e-5 * scale)
        assert np.all(np.abs(spec_out[~keep]) < 1e-5 * scale)


def test_highpass_removes_the_mean(rng):
    image = (rng.normal(size=(40, 30)) + 5).astype(np.float32)
    assert abs(float(highpass(image, cutoff_nyquist=0.1).mean())) < 1e-5
    assert abs(float(highpass(image, cutoff_nyquist=0.1, edge="soft").mean())) < 1e-5


@pytest.mark.parametrize("cutoff", [0.001, 0.01])
def test_tiny_lowpass_cutoff_keeps_only_the_mean(rng, cutoff):
    image = (rng.normal(size=(64, 48)) + 3).astype(np.float32)
    out = lowpass(image, cutoff_nyquist=cutoff)
    np.testing.assert_allclose(out, np.full_like(image, image.mean()), atol=1e-5)


def test_soft_edges_are_monotone_and_keep_the_pass_band():
    f = np.linspace(0, 1.5, 3001)
    low = lowpass_gain(f, 0.3, edge="soft", width_nyquist=0.1)
    high = highpass_gain(f, 0.3, edge="soft", width_nyquist=0.1)
    band = bandpass_gain(f, 0.2, 0.6, edge="soft", width_nyquist=0.1)
    assert np.all(np.diff(low) <= 0) and np.all(np.diff(high) >= 0)
    assert np.all(low[f <= 0.3] == 1) and np.all(low[f >= 0.4] == 0)
    assert np.all(high[f >= 0.3] == 1) and np.all(high[f <= 0.2] == 0)
    assert np.all((low > 0) & (low < 1) == ((f > 0.3) & (f < 0.4)))
    assert np.max(np.abs(np.diff(low))) < 0.01  # continuous: no step
    assert np.all(band[(f >= 0.2) & (f <= 0.6)] == 1) and np.all(band[(f <= 0.1) | (f >= 0.7)] == 0)
    peak = np.argmax(band)
    assert np.all(np.diff(band[: peak + 1]) >= 0) and np.all(np.diff(band[peak:]) <= 0)
    # a soft high-pass never lets the DC term through, even with a wide edge
    assert highpass_gain(np.array([0.0]), 0.02, edge="soft", width_nyquist=0.1)[0] == 0


@pytest.mark.parametrize("shape", [(64, 64), (45, 38)])
def test_soft_lowpass_applies_its_gain(rng, shape):
    image = rng.normal(size=shape).astype(np.float32)
    out = lowpass(image, cutoff_nyquist=0.4, edge="soft", width_nyquist=0.2)
    spec_in, spec_out, scale = _spectra(image, out)
    gain = lowpass_gain(radial_frequency_nyquist(shape), 0.4, edge="soft", width_nyquist=0.2)
    np.testing.assert_allclose(spec_out, spec_in * gain, atol=1e-5 * scale)


@pytest.mark.parametrize("bad", [1.5, 0.0, -0.1, float("nan"), "x"])
def test_cutoff_outside_range_is_a_parameter_error(rng, bad):
    image = rng.normal(size=(16, 16)).astype(np.float32)
    with pytest.raises(
        ParameterError, match=r"cutoff_nyquist must be in \(0, 1\] \(Nyquist units\)"
    ):
        lowpass(image, cutoff_nyquist=bad)
    with pytest.raises(ParameterError, match="cutoff_nyquist"):
        highpass(image, cutoff_nyquist=bad)


def test_cutoff_message_shows_the_value(rng):
    with pytest.raises(ParameterError, match=r"got 1\.5$"):
        lowpass(np.zeros((8, 8), np.float32), cutoff_nyquist=1.5)


def test_bad_band_edge_and_width(rng):
    image = rng.normal(size=(16, 16)).astype(np.float32)
    with pytest.raises(ParameterError, match="low_nyquist"):
        bandpass(image, low_nyquist=0.6, high_nyquist=0.4)
    with pytest.raises(ParameterError, match="high_nyquist"):
        bandpass(image, low_nyquist=0.1, high_nyquist=1.2)
    with pytest.raises(ParameterError, match="edge"):
        lowpass(image, cutoff_nyquist=0.5, edge="smooth")
    with pytest.raises(ParameterError, match="width_nyquist"):
        lowpass(image, cutoff_nyquist=0.5, edge="soft", width_nyquist=0)


@pytest.mark.parametrize("shape", [(4, 8, 8), (16,), ()])
def test_non_2d_input_is_rejected_with_its_shape(shape):
    with pytest.raises(ParameterError, match=str(shape).replace("(", r"\(").replace(")", r"\)")):
        lowpass(np.zeros(shape, np.float32), cutoff_nyquist=0.5)


def test_white_noise_power_estimate(rng):
    noise = rng.normal(scale=2.0, size=(128, 96)).astype(np.float32)
    assert estimate_white_noise_power(noise) == pytest.approx(4.0, rel=0.05)


def test_fourier_wiener_reduces_error_on_a_smooth_image(blob_image):
    gen = np.random.default_rng(7)
    noisy = (blob_image + gen.normal(scale=0.2, size=blob_image.shape)).astype(np.float32)
    for radial in (True, False):
        for noise_psd in (None, 0.04):
            out = wiener_fourier(noisy, noise_psd=noise_psd, radial=radial)
            assert out.dtype == np.float32 and out.shape == noisy.shape
            error = np.mean((out - blob_image) ** 2)
            assert error < 0.5 * np.mean((noisy - blob_image) ** 2)


def test_fourier_wiener_with_zero_noise_is_identity(rng):
    image = rng.normal(size=(21, 30)).astype(np.float32)
    np.testing.assert_allclose(wiener_fourier(image, noise_psd=0.0), image, atol=1e-5)


def test_fourier_wiener_rejects_bad_noise_psd(rng):
    image = rng.normal(size=(16, 16)).astype(np.float32)
    with pytest.raises(ParameterError, match="noise_psd"):
        wiener_fourier(image, noise_psd=-1.0)
    with pytest.raises(ParameterError, match="noise_psd shape"):
        wiener_fourier(image, noise_psd=np.ones((3, 3)))
