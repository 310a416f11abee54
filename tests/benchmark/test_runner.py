"""The whole study end to end on the tiny preset: every method at its SNRs, files, resume.

The tiny study itself (``tiny_study``, run once per session) is in ``conftest.py``.
"""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest

from cryoden.benchmark import runner
from cryoden.benchmark.registry import LEARNED_METHODS, default_methods, get_method
from cryoden.benchmark.report import write_report
from cryoden.benchmark.runner import run_study
from cryoden.benchmark.study import preset
from cryoden.errors import InputFileError

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
    assert all(r["seconds"] > 0 and r["parameters"]["steps"] >= 1 for r in learned)
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
def test_learned_cells_warm_start_from_the_previous_snr(tiny_study):
    """Each learned cell keeps its model; the next SNR's cell starts from it."""
    results = json.loads((tiny_study["out"] / "results.json").read_text())
    assert results["config"]["warm_start"] is True
    cells = tiny_study["out"] / "cells"
    learned = [r for r in results["results"] if "scheme" in r["parameters"]]
    assert learned
    for row in learned:
        s, method = row["snr_index"], row["method"]
        assert (cells / f"{method}__snr{s:02d}.safetensors").is_file()
        origin = row["parameters"]["initialised_from"]
        rate = row["parameters"]["train"]["learning_rate"]
        config = results["config"]
        if s == 0:
            assert origin == "random weights"
            assert rate == pytest.approx(config["learning_rate"])
        else:
            assert f"{method}__snr{s - 1:02d}.safetensors" in origin
            # warm-started cells fine-tune at a lower rate
            assert rate == pytest.approx(config["learning_rate"] * config["warm_start_lr_factor"])


def test_cold_start_trains_every_cell_from_random_weights(tmp_path):
    config = preset(
        "tiny", methods=("n2n-unet",), warm_start=False, snr_levels=(0.1, 0.2),
        montage_snr_indices=(0, 1),
    )  # fmt: skip
    run_study(config, tmp_path, report=False)
    rows = json.loads((tmp_path / "results.json").read_text())["results"]
    assert {r["parameters"]["initialised_from"] for r in rows} == {"random weights"}


def test_a_missing_previous_model_falls_back_to_random_weights(tmp_path, caplog):
    config = preset(
        "tiny", methods=("n2n-unet",), snr_levels=(0.1, 0.2), montage_snr_indices=(0, 1)
    )
    run_study(config, tmp_path, report=False)
    (tmp_path / "cells" / "n2n-unet__snr01.json").unlink()
    (tmp_path / "cells" / "n2n-unet__snr00.safetensors").unlink()
    run = run_study(config, tmp_path, report=False)
    assert (run.computed, run.reused) == (1, 1)
    rows = json.loads((tmp_path / "results.json").read_text())["results"]
    assert rows[1]["parameters"]["initialised_from"] == "random weights"
    assert "no model of the previous SNR" in caplog.text
