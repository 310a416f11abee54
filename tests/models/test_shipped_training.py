"""The general model's training script, data mix and card page, on tiny budgets: every path
runs, the data are what they claim, training resumes, the card's page is up to date."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest

from cryoden.models import load_model
from cryoden.models.registry import list_shipped, resolve_model, shipped_model_at

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def scripts(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "scripts"))
    return importlib.import_module


def test_training_and_test_images_come_from_separate_streams(scripts):
    data = scripts("general_data")
    train = data.make_image(0, "train", (5,), 48, ["family:blob"])
    again = data.make_image(0, "train", (5,), 48, ["family:blob"])
    test = data.make_image(0, "test", (5,), 48, ["family:blob"])
    np.testing.assert_array_equal(train[1], again[1])
    assert not np.array_equal(train[0], test[0])
    assert set(data.sources("test")).isdisjoint(data.sources("train"))
    assert "family:filament" in data.sources("test")


@pytest.mark.parametrize("noise", ["white", "correlated"])
def test_a_pair_holds_two_noise_draws_at_the_asked_snr(scripts, noise):
    data = scripts("general_data")
    clean, a, b, record = data.make_image(
        1, "test", (0, 0), 96, ["family:lobes"], snr=0.1, noise=noise, ctf=True
    )
    for noisy in (a, b):
        assert np.var(clean) / np.var(noisy - clean) == pytest.approx(0.1, rel=0.15)
    assert abs(np.corrcoef((a - clean).ravel(), (b - clean).ravel())[0, 1]) < 0.05
    lag1 = np.corrcoef((a - clean)[:, 1:].ravel(), (a - clean)[:, :-1].ravel())[0, 1]
    assert (lag1 > 0.03) == (noise == "correlated")
    assert record["ctf"] is not None and 0.6 <= record["pixel_size_angstrom"] <= 2.5


@pytest.mark.slow
def test_train_install_card_and_resume(scripts, tmp_path, monkeypatch):
    monkeypatch.setenv("CRYODEN_SHARED_DATA", str(tmp_path / "absent"))  # structures skipped
    train_general = scripts("train_general")
    make_model_card = scripts("make_model_card")
    work, shipped = tmp_path / "work", tmp_path / "shipped" / "general"
    args = ["--work", str(work), "--n-images", "4", "--size", "48", "--patch", "32",
            "--batch", "2", "--steps-per-epoch", "2", "--threads", "1", "--no-benchmark",
            "--validation-patches", "4",
            "--install-dir", str(shipped), "--docs", str(tmp_path / "general.md")]  # fmt: skip
    train_general.main([*args, "--steps", "2"])
    card = json.loads((shipped / "card.json").read_text())
    assert card["training"]["steps"] == 2 and "--steps 2" in card["training"]["command"]
    assert card["trained_range"]["pixel_size_angstrom"] == [0.6, 2.5]
    assert card["training_data"]["structures"] == {}  # none in the (absent) shared data
    assert load_model(shipped).config.network == train_general.NETWORK
    page = (tmp_path / "general.md").read_text()
    assert page == make_model_card.page(card) and "Not measured yet" in page
    train_general.main([*args, "--steps", "4", "--resume"])  # continues the same run
    history = load_model(shipped).config.training["history"]
    assert [r["epoch"] for r in history] == [1, 2] and history[-1]["steps"] == 2


def test_the_page_shows_the_benchmark_of_these_weights_only(scripts, tmp_path):
    make_model_card = scripts("make_model_card")
    (card_path,) = make_model_card.pages()
    card = json.loads(card_path.read_text())
    results = tmp_path / "benchmarks" / "results"
    results.mkdir(parents=True)
    bench = {
        "provenance": {"date": "2030-01-01", "git_commit": "0" * 40, "machine": "m"},
        "benchmark": "general_model",
        "setting": {"model_weights_sha256": card["files"]["weights.safetensors"]},
        "sources": ["1AON"],
        "by_snr": [{"snr": 0.1, "psnr_raw": 5.0, "psnr_best_filter": 20.0, "psnr_model": 23.5,
                    "margin_over_best_filter_db": 3.5, "smallest_margin_db": 2.5}],
        "bar": {"rule": "r", "passed": True, "failing_cells": []},
    }  # fmt: skip
    (results / "general_model_2030-01-01.json").write_text(json.dumps(bench))
    other = {**bench, "setting": {"model_weights_sha256": "f" * 64}}
    (results / "general_model_2031-01-01.json").write_text(json.dumps(other))
    page = make_model_card.page(card, tmp_path)
    assert "| 0.1 | 5.00 | 20.00 | 23.50 | +3.50 | +2.50 |" in page
    assert "general_model_2030-01-01" in page and "2031" not in page and "**passed**" in page


def test_the_committed_model_pages_are_up_to_date(scripts):
    assert scripts("make_model_card").main(["--check"]) == 0


def test_each_shipped_model_has_a_page():
    for model in list_shipped():
        assert (REPO / "docs" / "models" / f"{model.name}.md").is_file()
        assert shipped_model_at(resolve_model(model.name)) == model
