"""The Denoiser: scale kept, tiling invisible, stacks, precision switches."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cryoden.errors import ParameterError
from cryoden.inference import Denoiser, default_device
from cryoden.models.modelfile import LoadedModel, ModelConfig, load_model, save_model
from cryoden.nets import NetworkConfig, build_network
from cryoden.nets.polyphase import halfband_taps


def _model(residual_identity: bool = False) -> LoadedModel:
    config = NetworkConfig(depth=2, base_channels=4, residual=residual_identity)
    torch.manual_seed(2)
    net = build_network(config).eval()
    if residual_identity:
        nn.init.zeros_(net.head.weight)
        nn.init.zeros_(net.head.bias)
    return LoadedModel(network=net, config=ModelConfig(network=config), path="memory")


def test_default_device_is_a_device():
    assert isinstance(default_device(), torch.device)


def test_identity_model_keeps_the_input_and_its_scale(rng):
    image = (rng.normal(size=(45, 61)) * 30 + 500).astype(np.float32)
    out = Denoiser(_model(residual_identity=True), device="cpu", precision="fp32")(image)
    assert out.dtype == np.float32 and out.shape == image.shape
    np.testing.assert_allclose(out, image, rtol=1e-6, atol=1e-3)


def test_tiling_does_not_change_the_result(rng):
    model = _model()
    image = rng.normal(size=(300, 411)).astype(np.float32)
    whole_denoiser = Denoiser(model, device="cpu", channels_last=False, precision="fp32")
    assert whole_denoiser.plan(image.shape).tile == image.shape
    whole = whole_denoiser(image)
    norm = model.config.normalization.fit(image)
    with torch.no_grad():
        forward = model.network(torch.from_numpy(norm.apply(image))[None, None])[0, 0]
    # the Denoiser normalises in float32, the reference in float64: equal to float32 rounding
    np.testing.assert_allclose(whole, norm.invert(forward.numpy()), rtol=1e-5, atol=1e-6)
    tiled_denoiser = Denoiser(model, device="cpu", tile=128, batch=3, precision="fp32")
    assert tiled_denoiser.plan(image.shape).tile == (128, 128)
    tiled = tiled_denoiser(image)
    assert np.abs(tiled - whole).max() / np.abs(whole).max() < 1e-4


def test_stacks_are_denoised_image_by_image(rng):
    model = _model()
    stack = rng.normal(size=(3, 40, 52)).astype(np.float32) * np.array([1, 10, 100])[:, None, None]
    denoiser = Denoiser(model, device="cpu", precision="fp32")
    out = denoiser(stack)
    assert out.shape == stack.shape
    for i in range(3):
        np.testing.assert_array_equal(out[i], denoiser(stack[i]))
    # per-image normalisation: scaling an image scales its output
    np.testing.assert_allclose(denoiser(10 * stack[0]), 10 * out[0], rtol=1e-4, atol=1e-4)


def test_precision_and_memory_format_switches(rng):
    model = _model()
    image = rng.normal(size=(64, 80)).astype(np.float32)
    reference = Denoiser(model, device="cpu", channels_last=False, precision="fp32")(image)
    channels_last = Denoiser(model, device="cpu", channels_last=True, precision="fp32")(image)
    np.testing.assert_allclose(channels_last, reference, rtol=1e-4, atol=1e-5)
    bf16 = Denoiser(model, device="cpu", precision="bf16")(image)
    assert bf16.dtype == np.float32
    assert np.abs(bf16 - reference).max() < 0.05 * np.abs(reference).max() + 1e-3


def test_loaded_model_round_trip_denoises_identically(rng, tmp_path):
    model = _model()
    path = save_model(tmp_path / "m.safetensors", model.network, model.config)
    image = rng.normal(size=(33, 47)).astype(np.float32)
    a = Denoiser(model, device="cpu")(image)
    b = Denoiser(load_model(path), device="cpu")(image)  # same precision choice: bitwise equal
    np.testing.assert_array_equal(a, b)


def test_bad_inputs(rng):
    denoiser = Denoiser(_model(), device="cpu")
    with pytest.raises(ParameterError, match="stack"):
        denoiser(np.zeros((2, 2, 8, 8), dtype=np.float32))
    bad = np.zeros((8, 8), dtype=np.float32)
    bad[1, 1] = np.inf
    with pytest.raises(ParameterError, match="NaN"):
        denoiser(bad)
    with pytest.raises(ParameterError, match="precision"):
        Denoiser(_model(), precision="fp8")
    with pytest.raises(ParameterError, match="tile"):
        Denoiser(_model(), tile=0)


def test_auto_precision_follows_the_hardware():
    from cryoden.inference.denoise import native_bf16

    denoiser = Denoiser(_model(), device="cpu")
    assert denoiser.precision == ("bf16" if native_bf16(torch.device("cpu")) else "fp32")


def test_default_plan_covers_large_images_evenly_within_the_budget():
    denoiser = Denoiser(_model(), device="cpu", precision="fp32", memory_mb=64)
    plan = denoiser.plan((4096, 4096))
    side = plan.tile[0]
    assert plan.tile == (side, side) and side < 4096
    assert side % denoiser.model.config.network.size_multiple == 0
    # margin + ramp: short overlap, tiles of nearly equal share of the image
    assert 2 * denoiser.margin < plan.overlap < side // 2
    stride = side - plan.overlap
    n = -(-(4096 - plan.overlap) // stride)
    assert n * side - (n - 1) * plan.overlap < 4096 + side // 2  # little repeated work


def test_polyphase_inference_for_neighbor2neighbor_models(rng):
    """Ne2Ne models get polyphase inference by default; the merge is the half-band average of
    the four sub-images (identity in: the image, low-passed at half Nyquist), odd sizes included,
    and tiling does not change it."""
    identity = _model(residual_identity=True)
    ne2ne = LoadedModel(
        network=identity.network,
        config=ModelConfig(network=identity.config.network, scheme="ne2ne"),
        path="memory",
    )
    denoiser = Denoiser(ne2ne, device="cpu", precision="fp32")
    assert denoiser.polyphase and denoiser.size_multiple == 2 * 4
    assert not Denoiser(ne2ne, device="cpu", polyphase=False).polyphase
    assert not Denoiser(identity, device="cpu").polyphase
    assert Denoiser(identity, device="cpu", polyphase=True).polyphase
    # a smooth image passes unchanged (the reflected edges bend slightly)
    yy, xx = np.mgrid[:37, :52]
    smooth = (100 + 10 * np.cos(2 * np.pi * (yy / 37 + xx / 52))).astype(np.float32)
    out = denoiser(smooth)
    np.testing.assert_allclose(out[4:-4, 4:-4], smooth[4:-4, 4:-4], rtol=0, atol=0.05)
    np.testing.assert_allclose(out, smooth, rtol=0, atol=1.0)
    # white noise keeps the power of the half-band filter, (sum of squared taps)**2 (~1/4)
    noise = rng.normal(size=(128, 128)).astype(np.float32)
    out = denoiser(noise)
    expected = float(np.sum(halfband_taps() ** 2) ** 2)
    assert 0.15 < expected < 0.25
    assert float(np.var(out)) == pytest.approx(expected, rel=0.1)
    tiled = Denoiser(ne2ne, device="cpu", precision="fp32", tile=64)
    assert tiled.plan(noise.shape).tile == (64, 64)
    np.testing.assert_allclose(tiled(noise), out, atol=2e-3)


needs_onnxruntime = pytest.mark.skipif(
    not __import__("cryoden.inference.onnx_backend").inference.onnx_backend.onnxruntime_available(),
    reason="the optional onnxruntime and onnx packages are not installed",
)


@needs_onnxruntime
def test_onnxruntime_backend_gives_the_pytorch_result(rng):
    model = _model()
    image = rng.normal(size=(150, 97)).astype(np.float32)
    reference = Denoiser(model, device="cpu", precision="fp32", backend="torch")(image)
    onnx = Denoiser(model, device="cpu", precision="fp32", backend="onnxruntime", tile=64)
    assert onnx.backend == "onnxruntime"
    out = onnx(image)
    assert onnx._onnx is not None and len(onnx._onnx._sessions) >= 1  # it did run
    assert onnx.backend == "onnxruntime"
    assert np.abs(out - reference).max() <= 1e-4 * np.abs(reference).max()


@needs_onnxruntime
def test_auto_backend_uses_onnxruntime_for_float32_on_the_cpu_only():
    assert Denoiser(_model(), device="cpu", precision="fp32").backend == "onnxruntime"
    assert Denoiser(_model(), device="cpu", precision="bf16").backend == "torch"
    with pytest.raises(ParameterError, match="float32 on the CPU only"):
        Denoiser(_model(), device="cpu", precision="bf16", backend="onnxruntime")


@needs_onnxruntime
def test_failed_export_falls_back_to_pytorch(rng, monkeypatch):
    def refuse(*args, **kwargs):
        raise RuntimeError("cannot export")

    model = _model()
    image = rng.normal(size=(64, 64)).astype(np.float32)
    reference = Denoiser(model, device="cpu", precision="fp32", backend="torch")(image)
    monkeypatch.setattr(torch.onnx, "export", refuse)
    denoiser = Denoiser(model, device="cpu", precision="fp32", backend="onnxruntime")
    np.testing.assert_array_equal(denoiser(image), reference)
    assert denoiser.backend == "torch"


def test_unknown_or_missing_backend_is_a_parameter_error(monkeypatch):
    from cryoden.inference import denoise as denoise_module

    with pytest.raises(ParameterError, match="backend must be one of"):
        Denoiser(_model(), device="cpu", backend="tensorrt")
    monkeypatch.setattr(denoise_module, "onnxruntime_available", lambda: False)
    with pytest.raises(ParameterError, match=r"pip install 'cryoden\[onnx\]'"):
        Denoiser(_model(), device="cpu", precision="fp32", backend="onnxruntime")
    assert Denoiser(_model(), device="cpu", precision="fp32").backend == "torch"
