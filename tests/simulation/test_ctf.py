"""CTF: wavelength, sign convention and zeros at the analytic frequencies."""

from __future__ import annotations

import numpy as np
import pytest

from cryoden.errors import ParameterError
from cryoden.simulation.ctf import (
    CtfParams,
    apply_ctf,
    ctf_1d,
    ctf_2d,
    ctf_zero_frequencies,
    electron_wavelength_angstrom,
    interaction_constant,
)


@pytest.mark.parametrize(("kv", "wavelength"), [(100, 0.037014), (200, 0.025079), (300, 0.019687)])
def test_relativistic_wavelength(kv, wavelength):
    assert electron_wavelength_angstrom(kv) == pytest.approx(wavelength, abs=2e-6)


def test_interaction_constant():
    assert interaction_constant(300) == pytest.approx(6.526e-4, rel=1e-3)
    assert interaction_constant(200) == pytest.approx(7.288e-4, rel=1e-3)


def test_sign_convention():
    # CTF(0) = amplitude contrast; positive first lobe for underfocus (defocus > 0)
    assert ctf_1d(0.0, defocus_angstrom=20000, amplitude_contrast=0.07) == pytest.approx(0.07)
    first_zero = ctf_zero_frequencies(defocus_angstrom=20000, max_frequency_per_angstrom=0.2)[0]
    k = np.linspace(1e-4, 0.99 * first_zero, 50)
    assert np.all(ctf_1d(k, defocus_angstrom=20000) > 0)
    assert np.all(ctf_1d(k[5:], defocus_angstrom=-20000, amplitude_contrast=0.0) < 0)


@pytest.mark.parametrize(
    ("defocus", "cs", "amp", "phase"),
    [(20000.0, 2.7, 0.1, 0.0), (8000.0, 0.01, 0.07, 0.0), (5000.0, 2.7, 0.1, 90.0)],
)
def test_zeros_of_radial_average_match_analytic(defocus, cs, amp, phase):
    n, p = 512, 1.0
    ctf = ctf_2d(
        (n, n),
        pixel_size_angstrom=p,
        defocus_angstrom=defocus,
        cs_mm=cs,
        amplitude_contrast=amp,
        phase_shift_deg=phase,
        rfft=False,
    )
    ky = np.fft.fftfreq(n)[:, None] * n
    kx = np.fft.fftfreq(n)[None, :] * n
    ring = np.rint(np.hypot(kx, ky)).astype(int).ravel()
    profile = np.bincount(ring, np.abs(ctf).ravel()) / np.bincount(ring)
    profile = profile[: n // 2]
    minima = np.array(
        [
            r
            for r in range(1, n // 2 - 1)
            if profile[r] < profile[r - 1] and profile[r] < profile[r + 1]
        ]
    )
    zeros_px = ctf_zero_frequencies(
        defocus_angstrom=defocus,
        max_frequency_per_angstrom=0.5 / p,
        cs_mm=cs,
        amplitude_contrast=amp,
        phase_shift_deg=phase,
    ) * (n * p)
    gaps = np.diff(np.concatenate([[0.0], zeros_px, [np.inf]]))
    resolved = zeros_px[(gaps[:-1] > 4) & (gaps[1:] > 4) & (zeros_px < n // 2 - 2)]
    assert len(resolved) >= 5
    for zero in resolved:
        assert np.abs(minima - zero).min() <= 1.0, zero
    # and every minimum in that range is a predicted zero
    for minimum in minima[minima < resolved.max()]:
        assert np.abs(zeros_px - minimum).min() <= 1.0, minimum
    np.testing.assert_allclose(
        ctf_1d(
            zeros_px / (n * p),
            defocus_angstrom=defocus,
            cs_mm=cs,
            amplitude_contrast=amp,
            phase_shift_deg=phase,
        ),
        0,
        atol=1e-9,
    )


def test_layouts_agree():
    kwargs = dict(pixel_size_angstrom=1.5, defocus_angstrom=15000)
    half = ctf_2d((33, 40), **kwargs)
    full = ctf_2d((33, 40), rfft=False, **kwargs)
    assert half.shape == (33, 21)
    np.testing.assert_allclose(full[:, :21], half)
    centred = ctf_2d((33, 40), rfft=False, fftshift=True, **kwargs)
    assert centred[16, 20] == pytest.approx(0.1)


def test_apply_ctf_filters_in_fourier_space(blob_image):
    params = CtfParams(defocus_angstrom=12000, b_factor=50.0)
    out = apply_ctf(blob_image, pixel_size_angstrom=2.0, **params.to_dict())
    assert out.shape == blob_image.shape and out.dtype == np.float32
    expected = np.fft.irfft2(
        np.fft.rfft2(blob_image)
        * ctf_2d(blob_image.shape, pixel_size_angstrom=2.0, **params.to_dict()),
        s=blob_image.shape,
    )
    np.testing.assert_allclose(out, expected, atol=1e-5 * np.abs(expected).max())
    padded = apply_ctf(blob_image, pixel_size_angstrom=2.0, pad_factor=2.0, **params.to_dict())
    assert padded.shape == blob_image.shape


def test_invalid_ctf_parameters():
    with pytest.raises(ParameterError, match="amplitude_contrast"):
        CtfParams(defocus_angstrom=10000, amplitude_contrast=1.0)
    with pytest.raises(ParameterError, match="pixel_size_angstrom"):
        ctf_2d((16, 16), pixel_size_angstrom=-1.0, defocus_angstrom=10000)
    with pytest.raises(ParameterError, match="voltage_kv"):
        electron_wavelength_angstrom(0)
