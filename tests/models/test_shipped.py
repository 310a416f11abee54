"""The shipped models: the registry resolves names only to their own folders, the files are
checked against the card, a tampered model is refused in one line, and loading runs no code."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch

from cryoden.errors import InputFileError, ParameterError
from cryoden.models import load_model, registry
from cryoden.models.registry import (
    DEFAULT_MODEL,
    SHIPPED_MODELS,
    file_sha256,
    list_shipped,
    resolve_model,
    shipped_model,
    shipped_model_at,
)
from cryoden.nets.analysis import count_parameters


@pytest.fixture
def shipped_copy(tmp_path, monkeypatch):
    """A copy of the shipped models folder standing in for the package's."""
    root = tmp_path / "shipped"
    shutil.copytree(registry.SHIPPED_DIR, root)
    monkeypatch.setattr(registry, "SHIPPED_DIR", root)
    return root / DEFAULT_MODEL


def _reseal(folder: Path) -> None:
    """Record the files' current digests in the card, as a forger who edits it too would."""
    card = json.loads((folder / "card.json").read_text())
    card["files"] = {name: file_sha256(folder / name) for name in registry.CHECKED_FILES}
    (folder / "card.json").write_text(json.dumps(card))


def test_every_shipped_model_loads_and_matches_its_card():
    models = list_shipped()
    assert [m.name for m in models] == list(SHIPPED_MODELS) and DEFAULT_MODEL in SHIPPED_MODELS
    for model in models:
        assert model.folder.parent == registry.SHIPPED_DIR
        assert model.description and "\n" not in model.description
        loaded = load_model(model.folder)
        assert loaded.config.network.in_channels == 1
        trained = model.trained_range
        assert trained.dims == 2
        assert trained.pixel_size_angstrom[0] < trained.pixel_size_angstrom[1]
        assert trained.snr[0] < trained.snr[1]
        assert model.card["not_to_trust"] and model.card["training"]["command"]


def test_general_model_is_small():
    folder = resolve_model("general")
    weights = folder / "weights.safetensors"
    assert weights.stat().st_size < 2_000_000  # about 1 MB of float32 weights
    assert count_parameters(load_model(folder).network) < 500_000


def test_a_name_resolves_to_its_package_folder_and_a_path_stays_a_path(tmp_path):
    assert resolve_model("general") == registry.SHIPPED_DIR / "general"
    assert shipped_model_at(resolve_model("general")).name == "general"
    mine = tmp_path / "model"
    assert resolve_model(mine.with_suffix(".safetensors")) == mine.with_suffix(".safetensors")
    assert shipped_model_at(tmp_path) is None


@pytest.mark.parametrize(
    "text", ["General", "general/", " general", "general\n", "../general", "shipped/general"]
)
def test_names_are_exact_words_never_paths(text, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ParameterError, match="no shipped model"):
        shipped_model(text)
    resolved = resolve_model(text) if "/" in text or "." in text else None
    if resolved is not None:  # a path, as given: never the package's folder
        assert os.path.realpath(resolved) != os.path.realpath(registry.SHIPPED_DIR / "general")


def test_an_unknown_bare_word_says_which_names_exist(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputFileError, match="shipped: general") as err:
        resolve_model("generall")
    assert "\n" not in str(err.value)


def test_a_name_wins_over_a_local_folder_of_that_name(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "general").mkdir()
    assert resolve_model("general") == registry.SHIPPED_DIR / "general"
    assert "general/config.json" in caplog.text


def test_a_shipped_folder_that_leads_elsewhere_is_refused(tmp_path, monkeypatch):
    root = tmp_path / "shipped"
    root.mkdir()
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(registry.SHIPPED_DIR / "general", elsewhere)
    (root / "general").symlink_to(elsewhere, target_is_directory=True)
    monkeypatch.setattr(registry, "SHIPPED_DIR", root)
    with pytest.raises(InputFileError, match="leads out"):
        resolve_model("general")


def test_changed_weight_bytes_are_refused_in_one_line(shipped_copy):
    weights = shipped_copy / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0x40  # one bit of one weight: still a valid safetensors file
    weights.write_bytes(bytes(data))
    with pytest.raises(InputFileError, match="differs from the shipped model") as err:
        resolve_model("general")
    assert "\n" not in str(err.value) and str(weights) in str(err.value)


def test_a_changed_config_is_refused(shipped_copy):
    config = shipped_copy / "config.json"
    data = json.loads(config.read_text())
    data["network"]["arch"] = "seed5"
    config.write_text(json.dumps(data))
    with pytest.raises(InputFileError, match="differs from the shipped model"):
        resolve_model("general")


def test_a_resealed_config_of_another_architecture_fails_to_load_in_one_line(shipped_copy):
    config = shipped_copy / "config.json"
    data = json.loads(config.read_text())
    data["network"] = {"arch": "seed5"}
    config.write_text(json.dumps(data))
    _reseal(shipped_copy)
    with pytest.raises(InputFileError, match="weights") as err:
        load_model(resolve_model("general"))
    assert "\n" not in str(err.value)


def test_a_resealed_header_that_lies_is_refused(shipped_copy):
    weights = shipped_copy / "weights.safetensors"
    raw = weights.read_bytes()
    length = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + length])
    name = next(k for k in header if k != "__metadata__")
    header[name]["shape"] = [s + 1 for s in header[name]["shape"]]
    text = json.dumps(header).encode().ljust(length)
    weights.write_bytes(raw[:8] + text[:length] + raw[8 + length :])
    _reseal(shipped_copy)
    with pytest.raises(InputFileError) as err:
        load_model(resolve_model("general"))
    assert "\n" not in str(err.value)


class Marker:
    """Unpickling this object creates a file: proof that code ran while loading."""

    path = ""

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def test_a_resealed_pickle_runs_no_code(shipped_copy, tmp_path):
    marker = Marker()
    marker.path = str(tmp_path / "ran.marker")
    (shipped_copy / "weights.safetensors").write_bytes(
        pickle.dumps({"w": torch.zeros(2), "evil": marker})
    )
    _reseal(shipped_copy)
    with pytest.raises(InputFileError, match="pickles are never loaded"):
        load_model(resolve_model("general"))
    assert not Path(marker.path).exists()


def test_a_missing_card_or_file_is_named(shipped_copy):
    (shipped_copy / "card.json").unlink()
    with pytest.raises(InputFileError, match="card.json"):
        resolve_model("general")
