"""3D networks: volumes of any size, the 3D blocks, the config field ``dims`` and its cost."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cryoden.errors import ParameterError
from cryoden.nets import NetworkConfig, build_network, count_parameters, receptive_field
from cryoden.nets.analysis import effective_radius, flops_per_pixel
from cryoden.nets.blocks import BlurPool, depth_to_space, pad_spatial, space_to_depth
from cryoden.nets.config import estimated_parameters

pytestmark = pytest.mark.usefixtures("one_thread")

TINY_3D = NetworkConfig(dims=3, base_channels=4, depth=2)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"space_to_depth": 2},
        {"blurpool": True, "top_skip": False},
        {"padding": "zeros"},
    ],
)
@pytest.mark.parametrize("shape", [(9, 13, 17), (16, 16, 16), (3, 5, 4)])
def test_3d_unet_maps_volumes_of_any_size_to_their_own_shape(options, shape):
    config = TINY_3D.replace(**options)
    torch.manual_seed(0)
    net = build_network(config).eval()
    x = torch.randn(2, 1, *shape)
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()
    assert sum(isinstance(m, nn.Conv3d) for m in net.modules()) > 0
    assert not any(isinstance(m, nn.Conv2d) for m in net.modules())


def test_estimated_parameters_count_the_3d_network_exactly():
    for options in ({}, {"space_to_depth": 2}, {"top_skip": False}, {"kernel_size": 5}):
        config = TINY_3D.replace(**options)
        assert estimated_parameters(config) == count_parameters(build_network(config))


def test_space_to_depth_3d_is_inverted_and_matches_pixel_unshuffle_order():
    x = torch.arange(2 * 3 * 4 * 6 * 8, dtype=torch.float32).reshape(2, 3, 4, 6, 8)
    packed = space_to_depth(x, 2, 3)
    assert packed.shape == (2, 24, 2, 3, 4)
    assert torch.equal(depth_to_space(packed, 2, 3), x)
    # channel (c, dz, dy, dx) holds voxel (2z + dz, 2y + dy, 2x + dx) of channel c
    c, dz, dy, dx = 1, 1, 0, 1
    channel = c * 8 + dz * 4 + dy * 2 + dx
    assert torch.equal(packed[:, channel], x[:, c, dz::2, dy::2, dx::2])
    # on a single section, the 2D layout agrees with pixel_unshuffle for dz = 0
    flat = torch.randn(1, 1, 2, 6, 8)
    unshuffled = torch.nn.functional.pixel_unshuffle(flat[:, :, 0], 2)
    assert torch.equal(space_to_depth(flat, 2, 3)[:, :4, 0], unshuffled)


def test_pad_spatial_reflects_each_axis_and_keeps_the_original_sizes():
    x = torch.randn(1, 1, 5, 3, 7)
    padded, sizes = pad_spatial(x, 8, 3)
    assert sizes == (5, 3, 7) and padded.shape[-3:] == (8, 8, 8)
    assert torch.equal(padded[..., :5, :3, :7], x)
    assert torch.equal(padded[..., 5, :3, :7], x[..., 3, :, :])  # reflection, no edge repeat
    one = torch.randn(1, 1, 1, 4, 4)  # a one-voxel axis is replicated
    padded, _ = pad_spatial(one, 4, 3)
    assert torch.equal(padded[..., 3, :4, :4], one[..., 0, :, :])


def test_blurpool_3d_halves_a_volume_and_keeps_a_constant():
    pool = BlurPool(2, dims=3)
    x = torch.full((1, 2, 8, 6, 4), 3.0)
    y = pool(x)
    assert y.shape == (1, 2, 4, 3, 2)
    torch.testing.assert_close(y, torch.full_like(y, 3.0))


def test_cost_and_fields_of_3d_networks():
    plain, packed = TINY_3D, TINY_3D.replace(space_to_depth=2)
    # space-to-depth works on an eighth of the voxels: far fewer FLOPs per voxel
    assert flops_per_pixel(packed) < 0.5 * flops_per_pixel(plain)
    # counted by hand: multiply-accumulates per input voxel, level l holding 8**-l of the voxels
    k3 = 27
    level0 = (1 * 4 + 4 * 4 + 8 * 4 + 4 * 4) * k3 + 4 * 1  # encoder, decoder, 1x1 head
    level1 = ((4 * 8 + 8 * 8 + 16 * 8 + 8 * 8) * k3 + 8 * 4) / 8  # and the 1x1 up-projection
    level2 = ((8 * 16 + 16 * 16) * k3 + 16 * 8) / 64  # bottleneck, up-projection
    assert flops_per_pixel(plain) == pytest.approx(2 * (level0 + level1 + level2))
    flat = NetworkConfig(base_channels=4, depth=2)
    assert receptive_field(plain) == receptive_field(flat)  # per axis, the same layers
    torch.manual_seed(0)
    net = build_network(plain)
    radius = effective_radius(net, plain, tolerance=1e-3)
    assert 0 < radius <= receptive_field(plain) // 2


def test_dims_is_recorded_and_old_configs_load_as_2d():
    data = TINY_3D.to_dict()
    assert data["dims"] == 3
    assert NetworkConfig.from_dict(data) == TINY_3D
    old = {k: v for k, v in NetworkConfig().to_dict().items() if k != "dims"}
    assert NetworkConfig.from_dict(old).dims == 2


@pytest.mark.parametrize(
    ("changes", "needle"),
    [({"dims": 4}, "dims"), ({"dims": True}, "dims"), ({"arch": "seed5", "dims": 3}, "arch unet")],
)
def test_bad_dims_are_refused_naming_the_field(changes, needle):
    with pytest.raises(ParameterError, match=needle):
        NetworkConfig(**changes)


def test_a_network_refuses_input_of_the_other_dimensionality():
    net3d, net2d = build_network(TINY_3D), build_network(NetworkConfig(base_channels=4, depth=2))
    with pytest.raises(ValueError, match="3D network needs input of 5 axes"):
        net3d(torch.zeros(1, 1, 16, 16))
    with pytest.raises(ValueError, match="2D network needs input of 4 axes"):
        net2d(torch.zeros(1, 1, 8, 16, 16))


def test_2d_networks_are_unchanged_by_the_3d_blocks():
    """A 2D U-Net still has only 2D layers and its parameter names (model files load)."""
    config = NetworkConfig(base_channels=4, depth=2, blurpool=True)
    net = build_network(config)
    assert not any(isinstance(m, (nn.Conv3d, nn.MaxPool3d)) for m in net.modules())
    names = set(net.state_dict())
    assert {"encoders.0.0.weight", "ups.0.proj.weight", "head.weight", "downs.0.kernel"} <= names
    assert np.prod(net.state_dict()["downs.0.kernel"].shape[-2:]) == 9
