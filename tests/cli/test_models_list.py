"""`cryoden models list` and `cryoden models info NAME`: the shipped models and their cards."""

from __future__ import annotations

import json
import shutil

import pytest

from cryoden.models import registry

pytestmark = pytest.mark.usefixtures("one_thread")


def test_list_names_each_shipped_model_with_its_range(cli):
    r = cli("models", "list")
    assert r.code == 0, r.err
    for name, description in registry.SHIPPED_MODELS.items():
        assert f"{name}: {description}" in r.out
    assert "trained range: pixel size 0.6-2.5 Å, SNR 0.01-0.5, 2D images and stacks" in r.out


def test_list_as_json(cli):
    r = cli("models", "list", "--json")
    assert r.code == 0, r.err
    models = json.loads(r.out)
    assert [m["name"] for m in models] == list(registry.SHIPPED_MODELS)
    assert models[0]["trained_range"]["dims"] == 2 and models[0]["status"]


def test_info_of_a_name_shows_the_summary_and_the_card(cli):
    r = cli("models", "info", "general")
    assert r.code == 0, r.err
    assert "scheme:           n2n" in r.out and "parameters:" in r.out
    card = json.loads((registry.SHIPPED_DIR / "general" / "card.json").read_text())
    assert f"trained by:       {card['training']['command']}" in r.out
    assert r.out.count("do not trust it:") == len(card["not_to_trust"])
    assert "docs/models/general.md" in r.out
    r = cli("models", "info", "general", "--json")
    assert json.loads(r.out)["card"]["name"] == "general"


def test_an_altered_shipped_model_is_one_line(cli, tmp_path, monkeypatch):
    root = tmp_path / "shipped"
    shutil.copytree(registry.SHIPPED_DIR, root)
    weights = root / "general" / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    monkeypatch.setattr(registry, "SHIPPED_DIR", root)
    for args in (("models", "list"), ("models", "info", "general")):
        r = cli(*args)
        assert r.code == 1 and r.out == ""
        assert len(r.err.strip().splitlines()) == 1 and "reinstall cryoden" in r.err
