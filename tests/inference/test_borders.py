"""Image borders: a denoised image has no frame, and old zero-padded model files compute as
they did."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from cryoden.inference import Denoiser
from cryoden.models import LoadedModel, ModelConfig, load_model, save_model
from cryoden.nets import NetworkConfig, build_network

#: Width of the border band (pixels) whose error is compared with the interior's.
BAND = 4


def _smooth_images(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """Smooth images that are even about their first and last rows and columns, so a
    reflected border continues them exactly: sums of products of low-frequency cosines."""
    t = np.arange(size) * np.pi / (size - 1)
    out = np.zeros((n, size, size))
    for i in range(n):
        for _ in range(8):
            m, k = rng.integers(0, 5, 2)
            out[i] += rng.normal() * np.cos(m * t)[:, None] * np.cos(k * t)[None, :]
    return out.astype(np.float32)


def _edge_to_interior_error(denoised: np.ndarray, clean: np.ndarray) -> float:
    """Mean squared error against the clean images in a ``BAND``-pixel border band, over the
    mean squared error inside it."""
    error = (denoised - clean) ** 2
    band = np.zeros(clean.shape[-2:], dtype=bool)
    band[:BAND], band[-BAND:], band[:, :BAND], band[:, -BAND:] = True, True, True, True
    return float(error[..., band].mean() / error[..., ~band].mean())


def _smoothing_seed4(padding: str) -> nn.Module:
    """A ``seed4`` network built as a multi-scale box smoother: channel 0 carries the input
    plus an offset through every layer (each convolution a box average of channel 0, every
    other weight zero), the head removes the offset. Its only border behaviour is its padding."""
    config = NetworkConfig(arch="seed4", base_channels=2, padding=padding)
    net = build_network(config).eval()
    offset = 10.0
    with torch.no_grad():
        convs = [m for m in net.modules() if isinstance(m, nn.Conv2d) and m is not net.head]
        for conv in convs:
            conv.weight.zero_()
            conv.bias.zero_()
            k = conv.kernel_size[0]
            conv.weight[0, 0] = 1.0 / (k * k)
        convs[0].bias[0] = offset
        net.head.weight.zero_()
        net.head.weight[0, 0] = 1.0
        net.head.bias.fill_(-offset)
    return net


@pytest.mark.parametrize("padding", ["reflect", "zeros"])
def test_reflect_padding_leaves_no_frame(one_thread, rng, padding):
    clean = _smooth_images(rng, 4, 64)
    noisy = clean + 0.1 * rng.normal(size=clean.shape).astype(np.float32)
    net = _smoothing_seed4(padding)
    model = LoadedModel(
        net,
        ModelConfig(network=NetworkConfig(arch="seed4", base_channels=2, padding=padding)),
        "memory",
    )
    denoised = Denoiser(model, device="cpu", precision="fp32", backend="torch")(noisy)
    ratio = _edge_to_interior_error(denoised, clean)
    # A multi-scale smoother is intrinsically a little worse at a border, where it has half
    # the neighbours (and its coarse levels reflect about shifted axes); zero padding pulls
    # zeros in at every layer and leaves a frame several times the interior's error.
    if padding == "reflect":
        assert ratio < 2.0
    else:
        assert ratio > 6.0


def _trained_like(config: NetworkConfig) -> nn.Module:
    torch.manual_seed(0)
    return build_network(config).eval()


@pytest.mark.parametrize("arch", ["unet", "seed4"])
def test_model_file_without_padding_loads_as_zeros_and_computes_as_before(
    one_thread, tmp_path, rng, arch
):
    """A model file written before the ``padding`` field existed describes a zero-padded
    network: it loads as one and gives bitwise the output of plain zero-padded convolutions."""
    old = NetworkConfig(
        arch=arch, base_channels=4, depth=2 if arch == "unet" else None, padding="zeros"
    )
    net = _trained_like(old)
    path = save_model(tmp_path / "old-model", net, ModelConfig(network=old))  # a directory
    config_file = path / "config.json"
    stored = json.loads(config_file.read_text())
    assert stored["network"].pop("padding") == "zeros"  # as files written before the field
    config_file.write_text(json.dumps(stored))

    loaded = load_model(path)
    assert loaded.config.network.padding == "zeros"
    for conv in loaded.network.modules():
        if isinstance(conv, nn.Conv2d):  # exactly the convolution zero-padded networks used
            assert type(conv) is nn.Conv2d and conv.padding_mode == "zeros"
            assert conv.padding == (conv.kernel_size[0] // 2,) * 2
    x = torch.from_numpy(rng.normal(size=(2, 1, 40, 36)).astype(np.float32))
    with torch.no_grad():
        assert torch.equal(loaded.network(x), net(x))
        reflect = build_network(old.replace(padding="reflect")).eval()
        reflect.load_state_dict(net.state_dict())
        assert not torch.equal(reflect(x), net(x))  # the field decides what is computed


def test_new_configs_pad_by_reflection_and_record_it():
    config = NetworkConfig()
    assert config.padding == "reflect"
    assert config.to_dict()["padding"] == "reflect"
    assert NetworkConfig.from_dict(config.to_dict()) == config
    stored = {k: v for k, v in config.to_dict().items() if k != "padding"}
    assert NetworkConfig.from_dict(stored).padding == "zeros"
