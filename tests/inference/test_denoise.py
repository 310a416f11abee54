"""The Denoiser: scale kept, tiling invisible, stacks, precision switches."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cryoden.errors import ParameterError
from cryoden.inference import Denoiser, default_device
from cryoden.models import LoadedModel, ModelConfig, load_model, save_model
from cryoden.nets import NetworkConfig, build_network
from cryoden.nets.polyphase import halfband_taps


class _PlusInput(nn.Module):
    """``x + network(x)``: with a zero head, the identity (a network the tiler cannot tell
    from a real one: same config, same receptive field)."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.network(x)


def _model(identity: bool = False) -> LoadedModel:
    config = NetworkConfig(depth=2, base_channels=4)
    torch.manual_seed(2)
    net = build_network(config).eval()
    if identity:
        nn.init.zeros_(net.head.weight)
        nn.init.zeros_(net.head.bias)
        net = _PlusInput(net).eval()
    return LoadedModel(network=net, config=ModelConfig(network=config), path="memory")


def test_default_device_is_a_device():
    assert isinstance(default_device(), torch.device)


def test_identity_model_keeps_the_input_and_its_scale(rng):
    image = (rng.normal(size=(45, 61)) * 30 + 500).astype(np.float32)
    out = Denoiser(_model(identity=True), device="cpu", precision="fp32")(image)
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
    identity = _model(identity=True)
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


@needs_onnxruntime
def test_failed_export_switches_only_that_denoiser(rng, monkeypatch):
    """An export failure moves the denoiser of that model to PyTorch; others keep ONNX Runtime."""
    failing, working = _model(), _model()
    export = torch.onnx.export

    def refuse_one(module, *args, **kwargs):
        if module is failing.network:
            raise RuntimeError("cannot export")
        return export(module, *args, **kwargs)

    monkeypatch.setattr(torch.onnx, "export", refuse_one)
    image = rng.normal(size=(40, 40)).astype(np.float32)
    a = Denoiser(failing, device="cpu", precision="fp32", backend="onnxruntime")
    b = Denoiser(working, device="cpu", precision="fp32", backend="onnxruntime")
    a(image)
    b(image)
    assert (a.backend, b.backend) == ("torch", "onnxruntime")
    assert b._onnx is not None and b._onnx._sessions


@needs_onnxruntime
def test_onnxruntime_run_errors_propagate_and_keep_the_backend(rng, monkeypatch):
    from cryoden.inference.onnx_backend import OnnxRuntimeNetwork

    class BrokenSession:
        def run(self, *args, **kwargs):
            raise RuntimeError("out of memory in the session")

    monkeypatch.setattr(OnnxRuntimeNetwork, "_create_session", lambda self, shape: BrokenSession())
    denoiser = Denoiser(_model(), device="cpu", precision="fp32", backend="onnxruntime")
    image = rng.normal(size=(40, 40)).astype(np.float32)
    with pytest.raises(RuntimeError, match="out of memory in the session"):
        denoiser(image)
    assert denoiser.backend == "onnxruntime" and denoiser._onnx is not None


@needs_onnxruntime
def test_session_creation_errors_are_export_errors(monkeypatch):
    from cryoden.inference.onnx_backend import OnnxExportError, OnnxRuntimeNetwork

    def refuse(*args, **kwargs):
        raise ValueError("invalid graph")

    network = OnnxRuntimeNetwork(_model().network)
    monkeypatch.setattr(network._ort, "InferenceSession", refuse)
    with pytest.raises(OnnxExportError, match="invalid graph"):
        network.session((1, 1, 8, 8))


def test_threads_are_set_only_while_denoising(rng):
    """``threads`` applies during a call, and torch's thread count is restored after it, also
    when the call fails."""
    previous = torch.get_num_threads()
    wanted = previous + 1
    seen: list[int] = []
    model = _model()

    class Recording(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.network = model.network

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(torch.get_num_threads())
            return self.network(x)

    recording = LoadedModel(network=Recording(), config=model.config, path="memory")
    try:
        denoiser = Denoiser(recording, device="cpu", precision="fp32", threads=wanted)
        assert torch.get_num_threads() == previous
        denoiser(rng.normal(size=(2, 24, 24)).astype(np.float32))
        assert seen and set(seen) == {wanted}
        assert torch.get_num_threads() == previous
        with pytest.raises(ParameterError):
            denoiser(np.full((24, 24), np.nan, dtype=np.float32))
        assert torch.get_num_threads() == previous
        Denoiser(model, device="cpu", precision="fp32")(
            rng.normal(size=(24, 24)).astype(np.float32)
        )
        assert torch.get_num_threads() == previous
    finally:
        torch.set_num_threads(previous)


def test_parameter_errors_name_parameters_not_flags():
    for kwargs, name in (
        ({"tile": 0}, "tile"),
        ({"batch": 0}, "batch"),
        ({"threads": 0}, "threads"),
        ({"overlap": -1}, "overlap"),
        ({"memory_mb": 0}, "memory_mb"),
        ({"backend": "onnxruntime", "precision": "bf16"}, "backend"),
    ):
        with pytest.raises(ParameterError, match=name) as info:
            Denoiser(_model(), device="cpu", **kwargs)
        assert "--" not in str(info.value)


def test_unknown_or_missing_backend_is_a_parameter_error(monkeypatch):
    from cryoden.inference import denoise as denoise_module

    with pytest.raises(ParameterError, match="backend must be one of"):
        Denoiser(_model(), device="cpu", backend="tensorrt")
    monkeypatch.setattr(denoise_module, "onnxruntime_available", lambda: False)
    with pytest.raises(ParameterError, match=r"pip install 'cryoden\[onnx\]'"):
        Denoiser(_model(), device="cpu", precision="fp32", backend="onnxruntime")
    assert Denoiser(_model(), device="cpu", precision="fp32").backend == "torch"


def test_inference_stands_on_nets_models_io_and_errors_only():
    import subprocess
    import sys

    code = (
        "import sys, cryoden.inference\n"
        "allowed = {'inference', 'nets', 'models', 'io', 'errors'}\n"
        "print(sorted(m for m in sys.modules if m.startswith('cryoden.')"
        " and m.split('.')[1] not in allowed))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
