"""Tiled prediction: seamless, exact for identity, equal to whole-image prediction."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cryoden.errors import ParameterError
from cryoden.inference.tiling import (
    EDGE_WEIGHT,
    _layout,
    _profile,
    available_memory_bytes,
    predict_tiled,
)
from cryoden.nets import NetworkConfig, build_network


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x.clone()


@pytest.mark.parametrize(
    ("shape", "tile", "overlap", "batch"),
    [
        ((101, 77), 32, 12, 5),
        ((64, 64), 64, 16, 1),
        ((7, 9), 32, 8, 2),  # smaller than a tile: padded by reflection
        ((1, 40), 16, 4, 3),
        ((50, 33), (16, 24), 6, 4),
    ],
)
def test_identity_is_exact(rng, shape, tile, overlap, batch):
    image = rng.normal(size=shape).astype(np.float32) * 1e3
    out = predict_tiled(_identity, image, tile=tile, overlap=overlap, batch=batch)
    assert out.dtype == np.float32 and out.shape == shape
    np.testing.assert_array_equal(out, image)


def _conv_net() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1),
        nn.LeakyReLU(0.1),
        nn.Conv2d(6, 6, 3, padding=1),
        nn.LeakyReLU(0.1),
        nn.Conv2d(6, 1, 3, padding=1),
    )
    return net.eval()  # receptive field 7: radius 3 < overlap / 4


def test_tiled_equals_whole_image_on_a_large_image(rng):
    net = _conv_net()
    image = rng.normal(size=(1000, 1200)).astype(np.float32)
    with torch.no_grad():
        whole = net(torch.from_numpy(image)[None, None])[0, 0].numpy()
        tiled = predict_tiled(net, image, tile=256, overlap=32, batch=4)
    rel = np.abs(tiled - whole).max() / np.abs(whole).max()
    assert rel < 1e-4


def test_aligned_tiles_match_a_pooling_network(rng):
    config = NetworkConfig(depth=2, base_channels=4)
    torch.manual_seed(1)
    net = build_network(config).eval()
    image = rng.normal(size=(201, 235)).astype(np.float32)  # padded to multiples of 4
    with torch.no_grad():
        whole = net(torch.from_numpy(image)[None, None])[0, 0].numpy()
        tiled = predict_tiled(net, image, tile=128, overlap=56, batch=4, align=4)
    rel = np.abs(tiled - whole).max() / np.abs(whole).max()
    assert rel < 1e-4


def test_no_seams_with_a_smooth_function():
    # a position-independent smooth map gives the same result whatever the tiling
    yy, xx = np.mgrid[0:90, 0:70].astype(np.float32)
    image = np.sin(yy / 9.0) + np.cos(xx / 7.0)
    out = predict_tiled(lambda x: 2.0 * x + 1.0, image, tile=24, overlap=8, batch=3)
    np.testing.assert_allclose(out, 2.0 * image + 1.0, rtol=1e-6, atol=1e-6)


def test_weights_are_positive_and_a_partition_of_unity():
    tile, overlap = 40, 16
    starts, length = _layout(100, tile, overlap, 1)
    total = np.zeros(length)
    for i, s in enumerate(starts):
        weights = _profile(tile, overlap, i == 0, i == len(starts) - 1)
        assert (weights >= EDGE_WEIGHT).all() and weights.max() == 1.0
        total[s : s + tile] += weights
    assert np.all(total > 0.999)


def test_layout_aligns_starts():
    starts, length = _layout(1000, 256, 64, 16)
    assert all(s % 16 == 0 for s in starts)
    assert starts[0] == 0 and starts[-1] + 256 == length and 1000 <= length < 1016
    assert all(b - a <= 256 - 64 for a, b in zip(starts, starts[1:]))
    assert _layout(1000, 256, 64, 1) == ([0, 192, 384, 576, 744], 1000)
    assert _layout(100, 256, 64, 16) == ([0], 256)


def test_batches_and_progress(rng):
    calls, seen = [], []
    image = rng.normal(size=(60, 60)).astype(np.float32)

    def fn(x):
        calls.append(x.shape[0])
        return x

    predict_tiled(fn, image, tile=24, overlap=8, batch=4, progress=lambda d, t: seen.append((d, t)))
    assert max(calls) == 4 and sum(calls) == seen[-1][1] == seen[-1][0]


def test_bad_arguments(rng):
    image = np.zeros((50, 50), dtype=np.float32)
    with pytest.raises(ParameterError, match="overlap"):
        predict_tiled(_identity, image, tile=16, overlap=8)
    with pytest.raises(ParameterError, match="2D"):
        predict_tiled(_identity, np.zeros((2, 5, 5)), tile=16, overlap=2)
    with pytest.raises(ValueError, match="shape"):
        predict_tiled(lambda x: x[..., :-1], image, tile=16, overlap=2)


def test_available_memory_is_positive():
    assert available_memory_bytes("cpu") > 0


def test_memory_is_one_accumulator_not_a_padded_copy(rng):
    """Tiles past the border are reflected on the fly: same result as padding the image."""
    image = rng.normal(size=(45, 61)).astype(np.float32)
    shifted = predict_tiled(lambda x: x * 2.0, image, tile=32, overlap=8, batch=3)
    np.testing.assert_allclose(shifted, 2 * image, rtol=1e-6)


def test_explicit_margin_keeps_tiled_equal_to_whole(rng):
    """With the margin set to the receptive-field radius, the overlap can be short."""
    torch.manual_seed(0)
    net = nn.Sequential(*[nn.Conv2d(1, 1, 3, padding=1) for _ in range(4)]).eval()  # radius 4

    def fn(x):
        with torch.no_grad():
            return net(x)

    image = rng.normal(size=(200, 170)).astype(np.float32)
    whole = fn(torch.from_numpy(image)[None, None])[0, 0].numpy()
    tiled = predict_tiled(fn, image, tile=48, overlap=4 + 4 + 6, margin=4, batch=2)
    assert np.abs(tiled - whole).max() <= 1e-4 * np.abs(whole).max()
