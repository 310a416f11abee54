"""Hostile model files: each is refused in one line naming the file, runs no code and allocates
nothing beyond its (capped) header, through ``load_model``, ``cryoden models info`` and
``cryoden denoise --model``."""

from __future__ import annotations

import json
import os
import pickle
import struct
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

from cryoden.cli.main import app
from cryoden.errors import InputFileError, ParameterError
from cryoden.io.mrc import write_mrc
from cryoden.models import ModelConfig, load_model, save_model
from cryoden.models.safetensors_file import MAX_HEADER_BYTES
from cryoden.nets import NetworkConfig, build_network

NET = NetworkConfig(base_channels=2, depth=1)
runner = CliRunner()


class Evil:
    """Unpickling this would create the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.marker, "w"))


def _good(folder: Path, name: str = "model.safetensors") -> Path:
    torch.manual_seed(0)
    return save_model(folder / name, build_network(NET), ModelConfig(network=NET))


def _weights(folder: Path, tensors: dict[str, torch.Tensor], network: dict | None = None) -> Path:
    """A single-file model of these tensors whose config describes ``network``."""
    config = ModelConfig(network=NET).to_dict()
    if network is not None:
        config["network"] = network
    path = folder / "model.safetensors"
    save_file(tensors, str(path), metadata={"cryoden_config": json.dumps(config)})
    return path


def _state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {k: v.clone() for k, v in build_network(NET).state_dict().items()}


def _raw(folder: Path, head: bytes, size: int | None = None) -> Path:
    path = folder / "model.safetensors"
    path.write_bytes(head)
    if size is not None:
        os.truncate(path, size)  # sparse: costs no disk
    return path


def pickle_file(folder: Path) -> Path:
    path = folder / "model.safetensors"
    path.write_bytes(pickle.dumps({"weights": Evil(folder / "MARKER")}))
    return path


def pickle_protocol_0(folder: Path) -> Path:
    path = folder / "model.safetensors"
    path.write_bytes(pickle.dumps(Evil(folder / "MARKER"), protocol=0))
    return path


def torch_save_zip(folder: Path) -> Path:
    path = folder / "model.safetensors"
    torch.save({"state": Evil(folder / "MARKER")}, path)
    return path


def pickle_as_folder_weights(folder: Path) -> Path:
    model = _good(folder, "model")
    (model / "weights.safetensors").write_bytes(pickle.dumps(Evil(folder / "MARKER")))
    return model


def huge_header_length(folder: Path) -> Path:
    return _raw(folder, struct.pack("<Q", 1 << 60) + b'{"a":1}')


def header_longer_than_file(folder: Path) -> Path:
    return _raw(folder, struct.pack("<Q", 4096) + b'{"__metadata__":{}}')


def header_over_cap(folder: Path) -> Path:
    n = MAX_HEADER_BYTES + 1
    return _raw(folder, struct.pack("<Q", n) + b"{", size=8 + n + 16)


def header_not_json(folder: Path) -> Path:
    body = b"{not json at all}"
    return _raw(folder, struct.pack("<Q", len(body)) + body)


def header_not_utf8(folder: Path) -> Path:
    body = b'{"\xff\xfe": 1}'
    return _raw(folder, struct.pack("<Q", len(body)) + body)


def header_a_list(folder: Path) -> Path:
    body = b"[1, 2, 3]"
    return _raw(folder, struct.pack("<Q", len(body)) + body)


def tensor_beyond_file(folder: Path) -> Path:
    body = json.dumps({"w": {"dtype": "F32", "shape": [1 << 20], "data_offsets": [0, 4 << 20]}})
    return _raw(folder, struct.pack("<Q", len(body)) + body.encode() + b"\0" * 16)


def tensor_bytes_mismatch(folder: Path) -> Path:
    body = json.dumps({"w": {"dtype": "F32", "shape": [1000, 1000], "data_offsets": [0, 16]}})
    return _raw(folder, struct.pack("<Q", len(body)) + body.encode() + b"\0" * 16)


def empty_file(folder: Path) -> Path:
    return _raw(folder, b"")


def wrong_shape(folder: Path) -> Path:
    state = _state()
    state["head.weight"] = torch.zeros(3, 2, 1, 1)
    return _weights(folder, state)


def integer_dtype(folder: Path) -> Path:
    state = _state()
    state["head.weight"] = torch.zeros(state["head.weight"].shape, dtype=torch.int32)
    return _weights(folder, state)


def missing_tensor(folder: Path) -> Path:
    state = _state()
    del state["head.bias"]
    return _weights(folder, state)


def extra_tensor(folder: Path) -> Path:
    return _weights(folder, {**_state(), "payload": torch.zeros(4)})


def nan_weight(folder: Path) -> Path:
    state = _state()
    state["head.weight"][0, 0, 0, 0] = float("nan")
    return _weights(folder, state)


def inf_weight(folder: Path) -> Path:
    state = _state()
    state["head.bias"][0] = float("inf")
    return _weights(folder, state)


def unknown_architecture(folder: Path) -> Path:
    return _weights(folder, _state(), {**NET.to_dict(), "arch": "transformer"})


def unknown_field(folder: Path) -> Path:
    return _weights(folder, _state(), {**NET.to_dict(), "attention_heads": 8})


def absurd_width(folder: Path) -> Path:
    return _weights(folder, _state(), {**NET.to_dict(), "base_channels": 1024})


def absurd_parameters(folder: Path) -> Path:
    return _weights(folder, _state(), {**NET.to_dict(), "base_channels": 256, "depth": 6})


def config_not_json(folder: Path) -> Path:
    path = folder / "model.safetensors"
    save_file(_state(), str(path), metadata={"cryoden_config": "{oops"})
    return path


def no_config(folder: Path) -> Path:
    path = folder / "model.safetensors"
    save_file(_state(), str(path))
    return path


def config_symlink_outside(folder: Path) -> Path:
    model = _good(folder, "model")
    outside = folder / "elsewhere.json"
    (model / "config.json").rename(outside)
    (model / "config.json").symlink_to(outside)
    return model


def weights_symlink_outside(folder: Path) -> Path:
    model = _good(folder, "model")
    outside = folder / "elsewhere.safetensors"
    (model / "weights.safetensors").rename(outside)
    (model / "weights.safetensors").symlink_to(outside)
    return model


def fifo_model(folder: Path) -> Path:
    path = folder / "model.safetensors"
    os.mkfifo(path)
    return path


def fifo_config(folder: Path) -> Path:
    model = _good(folder, "model")
    (model / "config.json").unlink()
    os.mkfifo(model / "config.json")
    return model


#: Builder -> a phrase its error must hold.
CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "pickle": (pickle_file, "pickle"),
    "pickle_protocol_0": (pickle_protocol_0, "not a safetensors file"),
    "torch_save_zip": (torch_save_zip, "zip"),
    "pickle_as_folder_weights": (pickle_as_folder_weights, "pickle"),
    "huge_header_length": (huge_header_length, "header of"),
    "header_longer_than_file": (header_longer_than_file, "header of 4096 bytes"),
    "header_over_cap": (header_over_cap, "at most"),
    "header_not_json": (header_not_json, "not JSON"),
    "header_not_utf8": (header_not_utf8, "not JSON"),
    "header_a_list": (header_a_list, "not a JSON object"),
    "tensor_beyond_file": (tensor_beyond_file, "do not hold"),
    "tensor_bytes_mismatch": (tensor_bytes_mismatch, "do not hold"),
    "empty_file": (empty_file, "empty"),
    "wrong_shape": (wrong_shape, "head.weight has shape"),
    "integer_dtype": (integer_dtype, "dtype I32"),
    "missing_tensor": (missing_tensor, "missing weights"),
    "extra_tensor": (extra_tensor, "unexpected weights"),
    "nan_weight": (nan_weight, "NaN or infinite"),
    "inf_weight": (inf_weight, "NaN or infinite"),
    "unknown_architecture": (unknown_architecture, "arch"),
    "unknown_field": (unknown_field, "attention_heads"),
    "absurd_width": (absurd_width, "base_channels must be in [1, 256]"),
    "absurd_parameters": (absurd_parameters, "exceeds the limit"),
    "config_not_json": (config_not_json, "not valid JSON"),
    "no_config": (no_config, "without a cryoden config"),
    "config_symlink_outside": (config_symlink_outside, "leading out of the model folder"),
    "weights_symlink_outside": (weights_symlink_outside, "leading out of the model folder"),
    "fifo_model": (fifo_model, "not a regular file"),
    "fifo_config": (fifo_config, "not a regular file"),
}


@pytest.fixture(params=sorted(CASES))
def hostile(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str, Path]:
    build, phrase = CASES[request.param]
    folder = tmp_path / "case"
    folder.mkdir()
    return build(folder), phrase, folder


def _check_refusal(err: BaseException, model: Path, phrase: str, folder: Path) -> None:
    assert isinstance(err, InputFileError), repr(err)
    message = str(err)
    assert "\n" not in message
    assert str(model) in message or err.path.startswith(str(model))
    assert phrase in message, message
    assert not (folder / "MARKER").exists(), "unpickling ran code"


def test_load_model_refuses(hostile, monkeypatch):
    model, phrase, folder = hostile
    built: list[NetworkConfig] = []
    real_build = build_network

    def spy(config: NetworkConfig) -> torch.nn.Module:
        built.append(config)
        return real_build(config)

    monkeypatch.setattr("cryoden.models.files.build_network", spy)
    tracemalloc.start()
    try:
        with pytest.raises(InputFileError) as info:
            load_model(model)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    _check_refusal(info.value, model, phrase, folder)
    assert peak < 4 * 1024 * 1024, f"{peak} bytes allocated to refuse a hostile file"
    assert all(c.base_channels <= 256 for c in built)


def test_models_info_refuses(hostile):
    model, phrase, folder = hostile
    result = runner.invoke(app, ["models", "info", str(model)])
    assert result.exit_code != 0
    _check_refusal(result.exception, model, phrase, folder)


@pytest.mark.parametrize(
    "case", ["pickle", "torch_save_zip", "header_not_json", "nan_weight", "absurd_width"]
)
def test_denoise_refuses(case, tmp_path):
    build, phrase = CASES[case]
    folder = tmp_path / "case"
    folder.mkdir()
    model = build(folder)
    image = tmp_path / "in.mrc"
    write_mrc(image, np.zeros((16, 16), np.float32))
    result = runner.invoke(
        app, ["denoise", str(image), "--model", str(model), "-o", str(tmp_path / "o")]
    )
    assert result.exit_code != 0
    _check_refusal(result.exception, model, phrase, folder)
    assert not list((tmp_path / "o").glob("*.mrc")) if (tmp_path / "o").exists() else True


def test_wide_config_is_refused_before_any_network_is_built(monkeypatch):
    calls: list[object] = []
    monkeypatch.setattr("cryoden.nets.registry.NETWORKS", {"unet": calls.append})
    tracemalloc.start()
    try:
        with pytest.raises(ParameterError, match="base_channels must be in \\[1, 256\\], got 1024"):
            NetworkConfig.from_dict({**NET.to_dict(), "base_channels": 1024})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert calls == [] and peak < 1024 * 1024


@pytest.mark.parametrize(
    ("field", "value", "phrase"),
    [
        ("depth", 9, "depth must be in [1, 6]"),
        ("kernel_size", 31, "kernel_size must be in [1, 15]"),
        ("space_to_depth", 8, "space_to_depth must be 1 or 2"),
        ("in_channels", 10_000, "in_channels must be in [1, 16]"),
        ("out_channels", 10_000, "out_channels must be in [1, 16]"),
        ("base_channels", 0, "base_channels must be in [1, 256]"),
    ],
)
def test_absurd_sizes_name_field_and_range(field, value, phrase):
    with pytest.raises(ParameterError) as info:
        NetworkConfig.from_dict({**NET.to_dict(), field: value})
    assert phrase in str(info.value)


def test_symlink_inside_the_folder_is_fine(tmp_path):
    model = _good(tmp_path, "model")
    (model / "weights.safetensors").rename(model / "real.safetensors")
    (model / "weights.safetensors").symlink_to("real.safetensors")
    assert load_model(model).config.network == NET


def test_good_files_still_load(tmp_path):
    for name in ("model", "model.safetensors"):
        assert load_model(_good(tmp_path, name)).config.network == NET
