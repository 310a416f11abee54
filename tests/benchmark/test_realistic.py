"""The seed study on realistic micrographs (``bench seed --realistic``), on the tiny preset."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cryoden.benchmark.data import simulate_study_images
from cryoden.benchmark.realistic import (
    RealisticStudyConfig,
    realistic_record,
    run_realistic_study,
)
from cryoden.benchmark.study import preset
from cryoden.errors import ParameterError


@pytest.fixture(scope="module")
def tiny() -> RealisticStudyConfig:
    return RealisticStudyConfig.from_study(preset("tiny"), n_frames=8)


def test_doses_set_the_snr_of_each_level(tiny):
    images = simulate_study_images(tiny)
    record = realistic_record(tiny)
    assert record is not None
    doses = record["half_sum_dose_e_per_a2"]
    assert doses == sorted(doses) and doses[0] > 0  # more dose, higher SNR
    measured = np.array(record["measured_train_snr"])
    np.testing.assert_allclose(measured, tiny.snr_levels, rtol=0.25)
    # noisy images and clean images share one scale (counts per e/Å² of the sum)
    clean = images.clean.test
    a = images.at(len(tiny.snr_levels) - 1).test_noisy
    assert abs(a.mean() / clean.mean() - 1) < 0.05
    assert not np.array_equal(images.noisy_a, images.noisy_b)


def test_the_realistic_settings_never_share_cells_with_the_white_noise_study(tiny):
    white = preset("tiny")
    assert tiny.fingerprint() != white.fingerprint()
    assert tiny.replace(seed=1).realistic
    with pytest.raises(ParameterError, match="n_frames"):
        RealisticStudyConfig.from_study(white, n_frames=3)


def test_run_writes_results_with_the_doses_and_a_report(tiny, tmp_path):
    config = tiny.replace(methods=("gaussian",))
    run = run_realistic_study(config, tmp_path / "realistic")
    results = json.loads(run.results_path.read_text())
    assert "realistic micrograph crops" in results["data"]["noise"]
    assert len(results["data"]["realistic"]["half_sum_dose_e_per_a2"]) == len(tiny.snr_levels)
    assert all(row["psnr"] > row["psnr_noisy"] for row in results["results"])
    assert (tmp_path / "realistic" / "report.md").is_file()
    assert "half-sum doses" in (tmp_path / "realistic" / "report.md").read_text()


def test_the_command_writes_the_realistic_study_beside_the_white_noise_one(
    tmp_path, monkeypatch, capsys
):
    import sys

    from cryoden.cli.main import main

    argv = ["cryoden", "bench", "seed", "--preset", "tiny", "--realistic", "--methods",
            "gaussian", "--out", str(tmp_path / "study")]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    try:
        main()
    except SystemExit as exc:
        assert exc.code in (0, None)
    assert (tmp_path / "study" / "realistic" / "results.json").is_file()
    assert not (tmp_path / "study" / "results.json").exists()
    assert "realistic" in capsys.readouterr().err
