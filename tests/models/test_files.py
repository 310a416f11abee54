"""Model files: bitwise round trips, and refusal of pickles and broken files."""

from __future__ import annotations

import json
import os
import pickle
import stat
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from cryoden.errors import InputFileError
from cryoden.models import ModelConfig, load_model, save_model
from cryoden.models.normalization import NormalizationSpec
from cryoden.nets import NetworkConfig, build_network

CONFIG = NetworkConfig(depth=2, base_channels=4, blurpool=True, top_skip=False)


def _model_config() -> ModelConfig:
    return ModelConfig(
        network=CONFIG,
        normalization=NormalizationSpec(clip=20.0),
        scheme="n2n",
        training={"n_train_images": 3, "shapes": [[48, 48]], "source": {"a": "/data/a"}},
    )


def _trained_looking_network() -> torch.nn.Module:
    torch.manual_seed(3)
    return build_network(CONFIG).eval()


@pytest.mark.parametrize("name", ["model", "model.safetensors"])
def test_save_load_predict_is_bitwise_equal(tmp_path, name):
    net = _trained_looking_network()
    path = save_model(tmp_path / name, net, _model_config())
    loaded = load_model(path)
    x = torch.randn(2, 1, 37, 41)
    with torch.no_grad():
        assert torch.equal(loaded.network(x), net(x))
    assert loaded.config.to_dict() == _model_config().to_dict()
    assert not loaded.network.training
    info = loaded.describe()
    assert info["parameters"] > 0 and info["receptive_field_px"] > 0
    assert info["network"]["arch"] == "unet"
    assert info["cryoden_version"]


def test_directory_layout_and_config_path(tmp_path):
    save_model(tmp_path / "m", _trained_looking_network(), _model_config())
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        "config.json",
        "weights.safetensors",
    ]
    data = json.loads((tmp_path / "m" / "config.json").read_text())
    assert data["format_version"] == 1 and data["scheme"] == "n2n"
    assert load_model(tmp_path / "m" / "config.json").config.network == CONFIG


class Marker:
    """Unpickling this object creates a file: proof that something was unpickled."""

    path = ""

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


@pytest.mark.parametrize("layout", ["file", "directory", "torch-zip", "torch-zip-dir"])
def test_pickles_are_refused_without_unpickling(tmp_path, layout):
    marker = Marker()
    marker.path = str(tmp_path / "unpickled.marker")
    payload = {"weights": torch.zeros(2), "evil": marker}
    if layout == "file":
        target = tmp_path / "model.safetensors"
        target.write_bytes(pickle.dumps(payload, protocol=4))
    elif layout == "torch-zip":
        target = tmp_path / "model.pt"
        torch.save(payload, target)
    else:
        target = tmp_path / "model"
        save_model(target, _trained_looking_network(), _model_config())
        weights = target / "weights.safetensors"
        if layout == "directory":
            weights.write_bytes(pickle.dumps(payload))
        else:
            torch.save(payload, weights)
    assert not Path(marker.path).exists()
    with pytest.raises(InputFileError, match="pickles are never loaded") as err:
        load_model(target)
    assert "\n" not in str(err.value)
    assert ("zip" in str(err.value)) == layout.startswith("torch-zip")
    assert not Path(marker.path).exists()


def _single(tmp_path: Path) -> Path:
    return save_model(tmp_path / "m.safetensors", _trained_looking_network(), _model_config())


def test_missing_path(tmp_path):
    with pytest.raises(InputFileError, match="no such model"):
        load_model(tmp_path / "nothing.safetensors")


def test_truncated_and_foreign_files(tmp_path):
    path = _single(tmp_path)
    data = path.read_bytes()
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputFileError, match="truncated|unreadable"):
        load_model(truncated)
    text = tmp_path / "notes.safetensors"
    text.write_text("hello, this is not a model\n")
    with pytest.raises(InputFileError, match="not a safetensors file"):
        load_model(text)
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    with pytest.raises(InputFileError, match="empty"):
        load_model(empty)


def test_safetensors_without_config(tmp_path):
    path = tmp_path / "bare.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(InputFileError, match="cryoden_config"):
        load_model(path)


def _directory(tmp_path: Path) -> Path:
    return save_model(tmp_path / "m", _trained_looking_network(), _model_config())


def test_corrupt_json(tmp_path):
    path = _directory(tmp_path)
    (path / "config.json").write_text('{"format_version": 1, "network": ')
    with pytest.raises(InputFileError, match="not valid JSON"):
        load_model(path)


def _edit_config(path: Path, edit) -> None:
    data = json.loads((path / "config.json").read_text())
    edit(data)
    (path / "config.json").write_text(json.dumps(data))


def test_unknown_architecture(tmp_path):
    path = _directory(tmp_path)
    _edit_config(path, lambda d: d["network"].update(arch="transformer"))
    with pytest.raises(InputFileError, match="arch"):
        load_model(path)


def test_scheme_options_round_trip_and_default(tmp_path):
    config = _model_config()
    config.scheme_options = {"input_image": "cell-mean"}
    path = save_model(tmp_path / "m", _trained_looking_network(), config)
    assert load_model(path).config.scheme_options == {"input_image": "cell-mean"}
    _edit_config(path, lambda d: d.pop("scheme_options"))  # a file without the field
    assert load_model(path).config.scheme_options == {}
    _edit_config(path, lambda d: d.update(scheme_options=["cell-mean"]))
    with pytest.raises(InputFileError, match="scheme_options"):
        load_model(path)


def test_newer_format_version(tmp_path):
    path = _directory(tmp_path)
    _edit_config(path, lambda d: d.update(format_version=99))
    with pytest.raises(InputFileError, match="newer"):
        load_model(path)


def test_missing_config_or_weights(tmp_path):
    path = _directory(tmp_path)
    (path / "weights.safetensors").unlink()
    with pytest.raises(InputFileError, match="weights.safetensors is missing"):
        load_model(path)


def test_missing_extra_and_misshapen_weights(tmp_path):
    net = _trained_looking_network()
    tensors = {k: v.contiguous() for k, v in net.state_dict().items()}
    metadata = {"cryoden_config": json.dumps(_model_config().to_dict())}
    cases = {
        "missing weights": {k: v for k, v in list(tensors.items())[1:]},
        "unexpected weights": {**tensors, "extra.weight": torch.zeros(1)},
        "has shape": {**tensors, "head.bias": torch.zeros(3)},
    }
    for message, case in cases.items():
        path = tmp_path / f"{message.replace(' ', '_')}.safetensors"
        save_file(case, str(path), metadata=metadata)
        with pytest.raises(InputFileError, match=message):
            load_model(path)


def test_wrong_network_config_for_the_weights(tmp_path):
    path = _directory(tmp_path)
    _edit_config(path, lambda d: d["network"].update(base_channels=8))
    with pytest.raises(InputFileError, match="has shape"):
        load_model(path)


def test_saving_is_atomic_overwrite(tmp_path):
    path = _single(tmp_path)
    before = load_model(path).network.state_dict()
    other = build_network(CONFIG)
    save_model(path, other, _model_config())
    after = load_model(path).network.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    np.testing.assert_array_equal(
        after["head.weight"].numpy(), other.state_dict()["head.weight"].numpy()
    )


def test_header_length_starting_with_0x80_is_not_mistaken_for_a_pickle(tmp_path):
    """A valid safetensors file whose 8-byte header length begins with byte 0x80 loads."""
    from cryoden.models import check_safetensors

    for pad in range(300):
        path = tmp_path / f"t{pad}.safetensors"
        save_file({"x": torch.zeros(1)}, str(path), metadata={"k": "v" * pad})
        if path.read_bytes()[:1] == b"\x80":
            check_safetensors(path)  # must not raise
            return
    pytest.skip("no metadata length produced a 0x80 first byte")


@pytest.fixture
def umask_022():
    """Run with umask 0o022, then restore the caller's umask."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.mark.parametrize("name", ["model", "model.safetensors"])
def test_saved_files_get_the_umask_permissions(tmp_path, name, umask_022):
    """Model files are readable by others like any output (0o666 less the umask), not 0o600."""
    path = save_model(tmp_path / name, _trained_looking_network(), _model_config())
    files = sorted(path.iterdir()) if path.is_dir() else [path]
    assert files
    for file in files:
        assert stat.S_IMODE(file.stat().st_mode) == 0o644, file


def test_an_nb2nb_model_loads_as_neighbor2neighbor_and_denoises(tmp_path):
    """A model file whose config names the scheme ``"nb2nb"`` loads as ``"ne2ne"`` and is
    applied like a Neighbor2Neighbor model (polyphase inference)."""
    from cryoden.inference.denoise import Denoiser

    config = ModelConfig(network=CONFIG, scheme="ne2ne")
    path = save_model(tmp_path / "old", _trained_looking_network(), config)
    _edit_config(path, lambda d: d.update(scheme="nb2nb"))
    assert json.loads((path / "config.json").read_text())["scheme"] == "nb2nb"
    model = load_model(path)
    assert model.config.scheme == "ne2ne"
    denoiser = Denoiser(model, device="cpu", threads=1)
    assert denoiser.polyphase
    image = np.random.default_rng(0).normal(size=(40, 36)).astype(np.float32)
    denoised = denoiser(image)
    assert denoised.shape == image.shape and np.isfinite(denoised).all()
