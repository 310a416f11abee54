"""The tomography study: its data, filters, configuration and a tiny end-to-end run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cryoden.benchmark.tomo import TomoStudyConfig, tomo_preset
from cryoden.benchmark.tomo_data import (
    TEST_FIRST_INDEX,
    noise_autocorrelation,
    simulate_set,
    study_configs,
)
from cryoden.benchmark.tomo_methods import lowpass_3d, mean_psnr, oracle_filter, score_volumes
from cryoden.benchmark.tomo_runner import run_tomo_study
from cryoden.errors import ParameterError
from cryoden.simulation.noise_streams import NoiseLevel
from cryoden.simulation.tilt_series import reconstruct_wbp, tilt_angles
from cryoden.simulation.tomo_dataset import TomogramSimulator
from cryoden.training.noise2void import VOLUME_N2V_MIN_SNR

from .tomo_helpers import TEST_CLUMPS, TRAIN_CLUMPS, particle_map


@pytest.fixture
def structures(tmp_path):
    """Two different tiny particles: one to train on, one to test on."""
    return (
        particle_map(tmp_path / "train.mrc", TRAIN_CLUMPS, 1),
        particle_map(tmp_path / "test.mrc", TEST_CLUMPS, 2),
    )


def test_lowpass_removes_everything_above_its_cutoff(rng):
    volume = rng.standard_normal((12, 16, 20)).astype(np.float32)
    filtered = lowpass_3d(volume, cutoff_nyquist=0.4)
    power = np.abs(np.fft.fftn(filtered)) ** 2
    kz, ky, kx = np.meshgrid(*(np.fft.fftfreq(n) for n in volume.shape), indexing="ij")
    above = 2 * np.sqrt(kz**2 + ky**2 + kx**2) > 0.45
    assert power[above].max() < 1e-8 * power.max()
    assert power[~above].sum() > 0.1 * (np.abs(np.fft.fftn(volume)) ** 2)[~above].sum()


def test_the_oracle_picks_the_best_grid_value(rng):
    zz, yy, xx = np.mgrid[0:16, 0:16, 0:16].astype(np.float64)
    clean = np.exp(-((zz - 8) ** 2 + (yy - 7) ** 2 + (xx - 9) ** 2) / 10.0).astype(np.float32)
    noisy = [clean + 0.3 * rng.standard_normal(clean.shape).astype(np.float32)]
    grid = [0.3, 1.0, 2.0, 4.0]
    outputs, choice = oracle_filter("gaussian", noisy, [clean], grid)
    assert choice["value"] == grid[int(np.argmax(choice["grid_psnr"]))]
    assert mean_psnr([clean], outputs) == pytest.approx(max(choice["grid_psnr"]), abs=1e-3)
    assert mean_psnr([clean], outputs) > mean_psnr([clean], noisy) + 3.0


def test_wbp_noise_is_correlated_along_x_and_z_not_along_the_tilt_axis(rng):
    white = noise_autocorrelation(rng.standard_normal((24, 24, 24)))
    assert max(abs(v) for values in white.values() for v in values) < 0.08
    angles = tilt_angles(-60, 60, 3)
    tilts = rng.standard_normal((len(angles), 12, 48)).astype(np.float32)
    wbp = noise_autocorrelation(reconstruct_wbp(tilts, angles, n_z=24))
    assert wbp["z"][0] > 0.2 and min(wbp["x"][:2]) < -0.1
    assert max(abs(v) for v in wbp["y"]) < 0.08


def test_identity_scores_perfectly(rng):
    clean = [rng.standard_normal((8, 12, 12)).astype(np.float32)]
    scores = score_volumes(clean, clean, voxel_size_angstrom=4.0)
    assert scores["psnr"] == float("inf") and scores["cc"] == pytest.approx(1.0)
    assert np.allclose(scores["fsc"]["correlation"][1:], 1.0)
    assert scores["fsc_resolution"]["0.143"] == 1.0


def test_halves_equal_the_reconstructed_noisy_tilt_series(structures):
    train, _ = structures
    config = tomo_preset("tiny", test_structures=(structures[1],), train_structures=(train,))
    train_cfg, _ = study_configs(config.tomogram_config(), (train,), (structures[1],),
                                 n_train=1, n_test=1)  # fmt: skip
    simulator = TomogramSimulator(train_cfg)
    data = simulate_set(train_cfg, "train", simulator=simulator)
    even, odd = data.halves(0.3)[0]
    clean = simulator.clean(0)
    tilts = simulator.noisy_tilts(clean, "odd", NoiseLevel("snr", snr=0.3), shared=True)
    direct = simulator.reconstruct(tilts)
    np.testing.assert_allclose(odd, direct, atol=1e-4 * np.abs(direct).max())
    assert (
        abs(np.corrcoef((even - data.clean[0]).ravel(), (odd - data.clean[0]).ravel())[0, 1]) < 0.1
    )


def test_config_needs_unseen_test_structures(structures):
    train, test = structures
    with pytest.raises(ParameterError, match="test_structures"):
        TomoStudyConfig()
    with pytest.raises(ParameterError, match="must differ"):
        tomo_preset("tiny", train_structures=(train,), test_structures=(train, test))
    with pytest.raises(ParameterError, match="methods"):
        tomo_preset("tiny", test_structures=(test,), methods=("n2n", "bm4d"))


def test_tiny_study_end_to_end(tmp_path, structures, one_thread):
    train, test = structures
    config = tomo_preset("tiny", train_structures=(train,), test_structures=(test,), seed=1)
    out = tmp_path / "study"
    run = run_tomo_study(config, out)
    results = json.loads((out / "results.json").read_text())
    cells = {(r["method"], r["snr"]) for r in results["results"]}
    assert cells == {(m, s) for m in config.methods for s in config.snr_levels}
    assert results["data"]["test"]["indices"] == [TEST_FIRST_INDEX]
    assert results["data"]["train"]["indices"] == [0]
    assert results["network"]["flops_per_voxel"] > 0
    noisy = {r["snr"]: r["psnr"] for r in results["noisy"]}
    for row in results["results"]:
        assert row["status"] in ("ok", "degenerate")
        if row["method"] in ("gaussian", "lowpass"):  # an oracle filter beats the noisy input
            assert row["psnr"] > noisy[row["snr"]]
        if row["status"] == "ok":
            assert len(row["fsc"]["correlation"]) == len(row["fsc"]["frequency_nyquist"])
    n2v = sorted(
        (r["training"] for r in results["results"] if r["method"] == "n2v"),
        key=lambda t: -t["volume_snr"],  # the order they trained in: the highest SNR first
    )
    for before, training in zip([None, *n2v], n2v, strict=False):
        # the variant from the measured voxel SNR, N2V2's network with it; warm-started only
        # from a model of the same network
        expected = "n2v" if training["volume_snr"] >= VOLUME_N2V_MIN_SNR else "n2v2"
        assert training["scheme"] == expected
        assert training["network"]["top_skip"] == (expected == "n2v")
        same = before is not None and before["network"] == training["network"]
        assert training["initialised_from"] == ("previous SNR" if same else "random weights")
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 5
    for name in ("montage_xy.png", "montage_xz.png", "fsc.png", "psnr_vs_snr.png"):
        assert (out / "figures" / name).stat().st_size > 1000
    assert run.report_paths["html"] == out / "report.html"
