"""Networks: shapes for any size, the study's block structure, options, configs, analysis."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from cryoden.errors import ParameterError
from cryoden.nets import (
    NetworkConfig,
    build_network,
    count_parameters,
    flops_per_pixel,
    receptive_field,
)
from cryoden.nets.blocks import BlurPool

TINY = {"base_channels": 4}
CONFIGS = {
    "unet": NetworkConfig(arch="unet", depth=3, **TINY),
    "unet-n2v2": NetworkConfig(arch="unet", depth=2, blurpool=True, top_skip=False, **TINY),
    "unet-space-to-depth": NetworkConfig(arch="unet", depth=2, space_to_depth=2, **TINY),
    "seed5": NetworkConfig(arch="seed5", **TINY),
    "seed4": NetworkConfig(arch="seed4", kernel_size=5, **TINY),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("shape", [(32, 32), (37, 50), (5, 3), (1, 1)])
def test_networks_keep_shape(name, shape):
    torch.manual_seed(0)
    net = build_network(CONFIGS[name]).eval()
    x = torch.randn(2, 1, *shape)
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape
    assert y.dtype == torch.float32
    assert torch.isfinite(y).all()


def test_seed_nets_have_the_study_blocks():
    for arch, n_blocks in (("seed5", 5), ("seed4", 4)):
        net = build_network(NetworkConfig(arch=arch, **TINY))
        assert sum(isinstance(m, nn.MaxPool2d) for m in net.modules()) == n_blocks
        # encoder: Conv2d -> ReLU -> MaxPool2d blocks
        layers = list(net.encoder)
        assert len(layers) == 3 * n_blocks
        for i in range(n_blocks):
            conv, act, pool = layers[3 * i : 3 * i + 3]
            assert isinstance(conv, nn.Conv2d) and isinstance(act, nn.ReLU)
            assert isinstance(pool, nn.MaxPool2d)
        ups = [m for m in net.decoder if isinstance(m, nn.Upsample)]
        assert len(ups) == n_blocks and all(u.mode == "bilinear" for u in ups)
        # no skip connections: the decoder only sees the encoder's output
        assert not any(isinstance(m, nn.ConvTranspose2d) for m in net.modules())


@pytest.mark.parametrize("arch", ["seed5", "seed4", "unet"])
@pytest.mark.parametrize("k", [3, 5, 7])
def test_kernel_size_is_honoured(arch, k):
    net = build_network(NetworkConfig(arch=arch, kernel_size=k, **TINY))
    sizes = {m.kernel_size for m in net.modules() if isinstance(m, nn.Conv2d)}
    assert (k, k) in sizes
    assert sizes <= {(k, k), (1, 1)}  # 1x1: output head and upsampling projections


def test_unet_options():
    plain = build_network(NetworkConfig(depth=2, **TINY))
    n2v2 = build_network(NetworkConfig(depth=2, blurpool=True, top_skip=False, **TINY))
    assert sum(isinstance(m, nn.MaxPool2d) for m in plain.modules()) == 2
    assert sum(isinstance(m, nn.MaxPool2d) for m in n2v2.modules()) == 0
    assert sum(isinstance(m, BlurPool) for m in n2v2.modules()) == 2
    # the top decoder takes the upsampled features only (no concatenated skip)
    assert plain.decoders[-1][0].in_channels == 8
    assert n2v2.decoders[-1][0].in_channels == 4
    assert any(isinstance(m, nn.LeakyReLU) for m in plain.modules())
    assert not any(isinstance(m, (nn.ReLU, nn.ConvTranspose2d)) for m in plain.modules())


def test_blurpool_halves_even_sizes_and_blurs():
    pool = BlurPool(1)
    x = torch.zeros(1, 1, 8, 10)
    x[0, 0, 4, 4] = 16.0
    y = pool(x)
    assert y.shape == (1, 1, 4, 5)
    assert (y > 0).sum() > 1  # the maximum is spread by the blur
    assert torch.isclose(y.sum(), torch.tensor(16.0 * 4 / 4))  # 2x2 max then mean-preserving


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_config_round_trip(name):
    config = CONFIGS[name]
    data = json.loads(json.dumps(config.to_dict()))
    assert NetworkConfig.from_dict(data) == config


def test_config_defaults():
    assert NetworkConfig().arch == "unet"
    assert NetworkConfig(arch="seed5").depth == 5
    assert NetworkConfig(arch="seed4").depth == 4
    assert NetworkConfig(arch="seed5").activation == "relu"
    assert NetworkConfig().activation == "leaky_relu"
    assert NetworkConfig().kernel_size == 3
    assert set(NetworkConfig().to_dict()) >= {"arch", "base_channels", "depth", "space_to_depth"}


@pytest.mark.parametrize("arch", ["unet", "seed5"])
def test_legacy_fields_at_their_only_value_still_load(arch):
    """Model files may hold ``activation``, ``upsampling`` and ``residual``: at the value every
    network has they are accepted and dropped."""
    config = NetworkConfig(arch=arch, **TINY)
    legacy = {
        **config.to_dict(),
        "activation": config.activation,
        "upsampling": "bilinear",
        "residual": False,
    }
    assert NetworkConfig.from_dict(legacy) == config
    assert NetworkConfig.from_dict({**legacy, "activation": None}) == config
    assert not {"activation", "upsampling", "residual"} & set(config.to_dict())


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"activation": "relu"}, "activation"),
        ({"arch": "seed4", "activation": "leaky_relu"}, "activation"),
        ({"upsampling": "transposed"}, "upsampling"),
        ({"residual": True}, "residual"),
    ],
)
def test_legacy_fields_at_another_value_are_refused(changes, field):
    with pytest.raises(ParameterError, match=f"{field}=.*not supported"):
        NetworkConfig.from_dict({**NetworkConfig().to_dict(), **changes})


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"arch": "resnet"}, "arch"),
        ({"depth": 0}, "depth"),
        ({"depth": 9}, "depth"),
        ({"arch": "seed5", "depth": 4}, "depth"),
        ({"kernel_size": 4}, "kernel_size"),
        ({"kernel_size": 0}, "kernel_size"),
        ({"base_channels": 0}, "base_channels"),
        ({"base_channels": True}, "base_channels"),
        ({"base_channels": 8.0}, "base_channels"),
        ({"activation": "gelu"}, "activation"),
        ({"upsampling": "nearest"}, "upsampling"),
        ({"blurpool": "yes"}, "blurpool"),
        ({"arch": "seed4", "top_skip": False}, "top_skip"),
        ({"arch": "seed4", "upsampling": "transposed"}, "upsampling"),
        ({"residual": True, "out_channels": 2}, "residual"),
        ({"space_to_depth": 3}, "space_to_depth"),
        ({"arch": "seed4", "space_to_depth": 2}, "space_to_depth"),
        ({"colour": 3}, "colour"),
    ],
)
def test_invalid_config_raises_parameter_error(changes, field):
    with pytest.raises(ParameterError, match=field):
        NetworkConfig.from_dict({**NetworkConfig().to_dict(), **changes})


def test_count_parameters():
    net = nn.Conv2d(1, 4, 3)
    assert count_parameters(net) == 4 * 9 + 4


def test_flops_per_pixel_of_a_conv_stack():
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.Conv2d(8, 1, 5, padding=2))
    assert flops_per_pixel(net, size=16) == pytest.approx(2 * (9 * 8 + 25 * 8))


def test_flops_per_pixel_accepts_a_config_and_grows_with_width():
    small = flops_per_pixel(NetworkConfig(depth=2, base_channels=4))
    wide = flops_per_pixel(NetworkConfig(depth=2, base_channels=8))
    assert 3.5 * small < wide < 4.5 * small  # conv cost is quadratic in width


def _measured_field(config: NetworkConfig) -> int:
    """Width of the input region that the centre output pixel depends on (gradient support)."""
    torch.manual_seed(0)
    net = build_network(config).double().eval()
    for m in net.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False
    size = 2 * receptive_field(config) + 32
    size += (-size) % config.size_multiple
    x = torch.randn(1, 1, size, size, dtype=torch.float64, requires_grad=True)
    net(x)[0, 0, size // 2, size // 2].backward()
    support = (x.grad[0, 0].abs() > 0).nonzero()
    rows = support[:, 0]
    return int(rows.max() - rows.min() + 1)


@pytest.mark.parametrize(
    "config",
    [
        NetworkConfig(arch="seed4", base_channels=2),
        NetworkConfig(arch="unet", depth=2, base_channels=2),
        NetworkConfig(arch="unet", depth=2, base_channels=2, blurpool=True, top_skip=False),
        NetworkConfig(arch="unet", depth=2, base_channels=2, space_to_depth=2),
    ],
    ids=["seed4", "unet", "unet-n2v2", "unet-space-to-depth"],
)
def test_receptive_field_bounds_the_measured_one(config):
    measured = _measured_field(config)
    analytic = receptive_field(config)
    assert measured <= analytic
    assert measured >= 0.7 * analytic


def test_receptive_field_grows_with_depth_and_kernel():
    assert receptive_field(NetworkConfig(arch="seed5")) > receptive_field(
        NetworkConfig(arch="seed4")
    )
    assert receptive_field(NetworkConfig(arch="seed4", kernel_size=5)) > receptive_field(
        NetworkConfig(arch="seed4")
    )


def test_space_to_depth_runs_the_unet_at_half_size():
    """Same width, a quarter of the FLOPs per pixel, twice the receptive field, size multiple
    doubled; the output keeps the input's shape."""
    plain = NetworkConfig(depth=2, base_channels=8)
    s2d = plain.replace(space_to_depth=2)
    assert s2d.size_multiple == 2 * plain.size_multiple
    assert flops_per_pixel(s2d) == pytest.approx(flops_per_pixel(plain) / 4, rel=0.15)
    assert receptive_field(s2d) == 2 * receptive_field(plain)
    net = build_network(s2d).eval()
    assert net.encoders[0][0].in_channels == 4 and net.head.out_channels == 4
    with torch.no_grad():
        assert net(torch.randn(2, 1, 37, 22)).shape == (2, 1, 37, 22)
