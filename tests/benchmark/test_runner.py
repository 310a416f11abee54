"""The whole study end to end on the tiny preset: every method at its SNRs, files, resume.

The tiny study itself (``tiny_study``, run once per session) is in ``conftest.py``.
"""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest

from cryoden.benchmark import methods, runner
from cryoden.benchmark.findings import findings
from cryoden.benchmark.registry import LEARNED_METHODS, default_methods, get_method
from cryoden.benchmark.report import write_report
from cryoden.benchmark.runner import TIMING_KEYS, run_study
from cryoden.benchmark.study import PRETRAIN, preset
from cryoden.errors import DegenerateModelError, InputFileError

pytestmark = pytest.mark.usefixtures("one_thread")

ROW_KEYS = {
    "method",
    "snr",
    "psnr",
    "ssim",
    "cc",
    "cc_noisy",
    "frc",
    "frc_resolution",
    "seconds",
    "status",
}


def _cells(study):
    """Number of (method, SNR) cells of a study fixture."""
    config = study["config"]
    return len(config.methods) * len(config.snr_levels)


@pytest.mark.slow
def test_every_file_is_written(tiny_study):
    out = tiny_study["out"]
    for name in ("results.json", "results.csv", "montage.npz", "report.html", "report.md"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    figures = {p.name for p in (out / "figures").glob("*.png")}
    methods = default_methods()
    assert {f"frc_{m}.png" for m in methods} <= figures
    assert {"psnr_vs_snr.png", "cc_vs_snr.png", "montage.png"} <= figures
    assert not (out / ".work").exists()
    assert len(list((out / "cells").glob("*__snr*.json"))) == _cells(tiny_study)


@pytest.mark.slow
def test_every_method_and_snr_cell_is_present(tiny_study):
    results = json.loads((tiny_study["out"] / "results.json").read_text())
    methods = list(default_methods())
    snrs = tiny_study["config"].snr_levels
    assert results["snr_levels"] == pytest.approx(list(snrs))
    assert results["methods"] == methods
    cells = {(r["method"], round(r["snr"], 6)) for r in results["results"]}
    assert cells == {(m, round(s, 6)) for m in methods for s in snrs}
    for row in results["results"]:
        assert ROW_KEYS <= set(row), row["method"]
        assert len(row["frc"]["frequency"]) == len(row["frc"]["correlation"]) > 3
        assert set(row["frc_resolution"]) == {"0.5", "0.143"}
        for key in ("psnr", "ssim", "cc", "cc_noisy", "seconds"):
            assert np.isfinite(row[key]), (row["method"], key)
    assert len(results["noisy"]) == len(snrs)
    assert results["data"]["disjoint"] is True and "disjoint" in results["data"]["split_statement"]
    assert results["config"]["preset"] == "tiny" and "provenance" in results
    learned = [r for r in results["results"] if r["method"] in LEARNED_METHODS]
    assert {r["method"] for r in learned} == set(LEARNED_METHODS)
    config = tiny_study["config"]
    for row in learned:
        # exactly the budget of steps (every cell warm: the first starts from the pretraining),
        # on the study's threads; wall time recorded as a result
        steps = config.cell_steps(warm=True)
        assert row["status"] == "ok" and row["training"]["steps"] == steps, row["training"]
        assert row["training"]["threads"] == tiny_study["config"].threads
        assert row["training"]["wall_seconds"] > 0 and row["seconds"] > 0
    assert results["config"]["train_steps"] == config.train_steps
    assert "train_seconds" not in results["config"]
    described = results["config"]["method_descriptions"]
    assert described == {m: get_method(m).description for m in methods}


@pytest.mark.slow
def test_csv_matches_json(tiny_study):
    results = json.loads((tiny_study["out"] / "results.json").read_text())
    with open(tiny_study["out"] / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(results["results"])
    first = results["results"][0]
    assert rows[0]["method"] == first["method"]
    assert float(rows[0]["psnr"]) == pytest.approx(first["psnr"], rel=1e-5)
    assert float(rows[0]["frc_0.143"]) == pytest.approx(first["frc_resolution"]["0.143"], rel=1e-5)


@pytest.mark.slow
def test_progress_reports_every_cell(tiny_study):
    calls = tiny_study["progress"]
    total = _cells(tiny_study)
    assert calls[0] == (0, total) and calls[-1] == (total, total)
    assert [d for d, _ in calls] == list(range(total + 1))


@pytest.mark.slow
def test_rerun_skips_finished_cells(tiny_study, monkeypatch):
    out = tiny_study["out"]
    before = json.loads((out / "results.json").read_text())

    def must_not_run(*args, **kwargs):
        raise AssertionError("a finished cell was recomputed")

    monkeypatch.setattr(runner, "run_method", must_not_run)
    run = run_study(tiny_study["config"], out, report=False)
    assert (run.computed, run.reused) == (0, _cells(tiny_study))
    after = json.loads((out / "results.json").read_text())
    assert after["results"] == before["results"]


def test_rerun_computes_only_missing_cells(tmp_path):
    """Cells are stored as soon as they finish: after a crash, a rerun does only the rest."""
    config = preset("tiny", methods=("lowpass-0.05", "gaussian", "median"))
    done = []
    real = runner.run_method

    def crash_after_five(method, data, cfg, **kwargs):
        if len(done) == 5:
            raise KeyboardInterrupt
        done.append((method, data.snr_index))
        return real(method, data, cfg, **kwargs)

    runner.run_method = crash_after_five
    try:
        with pytest.raises(KeyboardInterrupt):
            run_study(config, tmp_path, report=False)
    finally:
        runner.run_method = real
    assert len(list((tmp_path / "cells").glob("*__snr*.json"))) == 5
    run = run_study(config, tmp_path, report=False)
    total = len(config.methods) * len(config.snr_levels)
    assert (run.computed, run.reused) == (total - 5, 5)
    # a cell deleted by hand is recomputed, alone
    (tmp_path / "cells" / "median__snr01.json").unlink()
    run = run_study(config, tmp_path, report=False)
    assert (run.computed, run.reused) == (1, total - 1)


def test_other_settings_refuse_the_same_folder(tmp_path):
    config = preset("tiny", methods=("gaussian",))
    run_study(config, tmp_path, report=False)
    with pytest.raises(InputFileError, match="other settings"):
        run_study(config.replace(seed=3), tmp_path, report=False)


@pytest.mark.slow
def test_report_regenerates_from_the_results_alone(tiny_study, tmp_path):
    """Only results.json and montage.npz, copied elsewhere, give back the same report."""
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "results.json").write_text(tiny_study["snapshot"]["results.json"])
    shutil.copy(tiny_study["out"] / "montage.npz", copy / "montage.npz")
    paths = write_report(copy / "results.json")
    assert paths["md"].read_text() == tiny_study["snapshot"]["report.md"]
    assert paths["html"].read_text().count("<img ") == len(list((copy / "figures").glob("*.png")))


@pytest.mark.slow
def test_learned_cells_warm_start_from_the_next_lower_snr(tiny_study):
    """Each learned cell keeps its model; the next higher SNR's cell starts from it, and the
    lowest SNR's from the method's network pretrained on the highest SNR's data (the only
    training from random weights)."""
    results = json.loads((tiny_study["out"] / "results.json").read_text())
    assert results["config"]["warm_start"] is True
    cells = tiny_study["out"] / "cells"
    learned = [r for r in results["results"] if "scheme" in r["parameters"]]
    assert learned
    config = results["config"]
    for row in learned:
        s, method = row["snr_index"], row["method"]
        assert (cells / f"{method}__snr{s:02d}.safetensors").is_file()
        origin = row["parameters"]["initialised_from"]
        rate = row["parameters"]["train"]["learning_rate"]
        if s == 0:  # the tiny preset's SNRs ascend
            assert f"{method}__pretrain.safetensors" in origin
            assert (cells / f"{method}__pretrain.safetensors").is_file()
        else:
            assert f"{method}__snr{s - 1:02d}.safetensors" in origin
        # every cell is warm-started and fine-tunes at a lower rate
        assert rate == pytest.approx(config["learning_rate"] * config["warm_start_lr_factor"])


def test_cold_start_trains_every_cell_from_random_weights(tmp_path):
    config = preset(
        "tiny", methods=("n2n-unet",), warm_start=False, snr_levels=(0.1, 0.2),
        montage_snr_indices=(0, 1),
    )  # fmt: skip
    run_study(config, tmp_path, report=False)
    rows = json.loads((tmp_path / "results.json").read_text())["results"]
    assert {r["parameters"]["initialised_from"] for r in rows} == {"random weights"}


def test_a_missing_warm_start_model_falls_back_to_random_weights(tmp_path, caplog):
    config = preset(
        "tiny", methods=("n2n-unet",), snr_levels=(0.1, 0.2), montage_snr_indices=(0, 1)
    )
    assert config.snr_order == (0, 1) and config.warm_start_source(1) == 0
    assert config.warm_start_source(0) == PRETRAIN and config.pretrain_index == 1
    run_study(config, tmp_path, report=False)
    assert (tmp_path / "cells" / "n2n-unet__pretrain.safetensors").is_file()
    rows = json.loads((tmp_path / "results.json").read_text())["results"]
    assert "pretrain" in rows[0]["parameters"]["initialised_from"]
    (tmp_path / "cells" / "n2n-unet__snr01.json").unlink()
    (tmp_path / "cells" / "n2n-unet__snr00.safetensors").unlink()
    run = run_study(config, tmp_path, report=False)
    assert (run.computed, run.reused) == (1, 1)
    rows = json.loads((tmp_path / "results.json").read_text())["results"]
    assert [r["snr_index"] for r in rows] == [0, 1]  # listed by SNR, whatever the run order
    assert rows[1]["parameters"]["initialised_from"] == "random weights"
    assert "no model of the next lower SNR" in caplog.text


def _without_timing(value):
    """``value`` with every timing field (wall times: results of a run, not of its settings)
    removed, recursively."""
    if isinstance(value, dict):
        return {k: _without_timing(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [_without_timing(v) for v in value]
    return value


@pytest.mark.slow
def test_a_seeded_run_gives_identical_numbers(tiny_study, tmp_path):
    """Budgets in steps and a fixed thread count: a second run of some of the tiny study's
    methods, same seed, gives the session run's numbers exactly (timing fields aside)."""
    subset = ("n2v", "n2n-unet", "gaussian")
    run_study(tiny_study["config"].replace(methods=subset), tmp_path, report=False)
    again = json.loads((tmp_path / "results.json").read_text())
    first = json.loads(tiny_study["snapshot"]["results.json"])
    rows = {(r["method"], r["snr_index"]): r for r in first["results"] if r["method"] in subset}
    rerun = {(r["method"], r["snr_index"]): r for r in again["results"]}
    assert len(rows) == len(rerun) == 3 * len(tiny_study["config"].snr_levels)
    assert rerun.keys() == rows.keys()
    for key, row in rows.items():
        assert _without_timing(rerun[key]) == _without_timing(row), key
    assert _without_timing(again["noisy"]) == _without_timing(first["noisy"])


def test_a_degenerate_cell_is_recorded_not_scored(tmp_path, monkeypatch):
    """A training that ends with a degenerate model: the cell keeps its status and reason, no
    scores, a warning in the reading and the report; the study goes on."""

    def degenerate(*args, out, **kwargs):
        raise DegenerateModelError(out, "output anti-correlated with its input's low-pass", None)

    monkeypatch.setattr(methods, "train", degenerate)
    config = preset(
        "tiny", methods=("n2v", "gaussian"), snr_levels=(0.01, 0.5), montage_snr_indices=(0, 1)
    )
    run = run_study(config, tmp_path)
    assert run.computed == 4
    results = json.loads((tmp_path / "results.json").read_text())
    rows = {(r["method"], r["snr_index"]): r for r in results["results"]}
    for s in (0, 1):
        row = rows[("n2v", s)]
        assert row["status"] == "degenerate" and "anti-correlated" in row["reason"]
        assert row["psnr"] is None and row["cc"] is None and row["frc"] is None
        assert rows[("gaussian", s)]["status"] == "ok" and rows[("gaussian", s)]["psnr"] > 0
    assert not list((tmp_path / "cells").glob("n2v__*.safetensors"))
    text = " ".join(findings(results))
    assert "Warning: n2v at SNR 0.01 has no result: degenerate" in text
    md = (tmp_path / "report.md").read_text()
    assert "## Warnings" in md and "n2v at SNR 0.5 has no result" in md
    assert "| n2v | degenerate | degenerate |" in md
