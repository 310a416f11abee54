"""Polyphase split and merge: exact interleaving, and a merge with no 2-pixel grid."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cryoden.nets.polyphase import (
    halfband_taps,
    merge_polyphase,
    polyphase_radius,
    split_polyphase,
)


@pytest.mark.parametrize("radius", [1, 3, 7, 11])
def test_halfband_taps_pass_dc_and_stop_nyquist(radius):
    taps = halfband_taps(radius)
    n = np.arange(-radius, radius + 1)
    assert taps.shape == (2 * radius + 1,)
    np.testing.assert_allclose(taps, taps[::-1])
    assert taps.sum() == pytest.approx(1.0) and taps[radius] == pytest.approx(0.5)
    assert np.sum(taps * (-1.0) ** n) == pytest.approx(0.0, abs=1e-12)
    even = (n % 2 == 0) & (n != 0)
    np.testing.assert_allclose(taps[even], 0.0, atol=1e-15)


def test_halfband_response_keeps_low_and_removes_high_frequencies():
    taps = halfband_taps()
    n = np.arange(taps.size) - taps.size // 2
    gain = [abs(np.sum(taps * np.exp(-1j * np.pi * f * n))) for f in (0.0, 0.2, 0.35, 0.65, 0.8)]
    assert gain[0] == pytest.approx(1.0)
    assert gain[1] > 0.99 and gain[2] > 0.9
    assert gain[3] < 0.1 and gain[4] < 0.01


@pytest.mark.parametrize("shape", [(16, 24), (17, 23)])
def test_split_then_interleave_is_exact(shape):
    x = torch.randn(3, 1, *shape)
    quarters = split_polyphase(x)
    assert quarters.shape == (12, 1, (shape[0] + 1) // 2, (shape[1] + 1) // 2)
    sub = x[1:2, :, 1::2, 0::2]  # image 1, dy = 1, dx = 0
    torch.testing.assert_close(quarters[6:7, :, : sub.shape[-2], : sub.shape[-1]], sub)
    torch.testing.assert_close(merge_polyphase(quarters, shape, smooth=False), x)


def test_merge_removes_the_grid_of_differing_sub_images():
    """Four sub-images of one smooth image, each with its own offset (what independently
    denoised sub-images look like): interleaving shows a 2-pixel grid, the merge none."""
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    image = torch.sin(2 * torch.pi * yy / 32) * torch.cos(2 * torch.pi * xx / 21)
    quarters = split_polyphase(image[None, None])
    offsets = torch.tensor([0.3, -0.2, 0.1, -0.2]).reshape(4, 1, 1, 1)
    grid = merge_polyphase(quarters + offsets, (64, 64), smooth=False)[0, 0]
    merged = merge_polyphase(quarters + offsets, (64, 64))[0, 0]

    def nyquist_power(a: torch.Tensor) -> float:
        spectrum = torch.fft.fft2(a).abs() ** 2
        return float(spectrum[32, 0] + spectrum[0, 32] + spectrum[32, 32])

    assert nyquist_power(grid) > 1e3
    assert nyquist_power(merged) < 1e-4 * nyquist_power(grid)  # what is left comes from the edges
    inner = (slice(8, -8), slice(8, -8))  # away from the reflected edges
    expected = image + offsets.mean()
    torch.testing.assert_close(merged[inner], expected[inner], atol=0.02, rtol=0)


def test_polyphase_radius_doubles_the_network_radius():
    assert polyphase_radius(10, radius=7) == 28
