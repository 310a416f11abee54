"""Tomograms on the command line: ``train`` decides 3D from the data, ``denoise`` runs 3D models
slab by slab (files and RELION 5 ``tomograms.star``), and bad inputs end in one line."""

from __future__ import annotations

import json

import mrcfile
import numpy as np
import pytest
import torch

from cryoden.io import read_mrc, write_mrc
from cryoden.models import ModelConfig, load_model, save_model
from cryoden.nets import NetworkConfig, build_network
from cryoden.training.blind_spot import parse_blind_spot
from cryoden.training.defaults import default_network
from cryoden.training.noise2void import VOLUME_N2V_MIN_SNR

SHAPE = (20, 32, 36)
TRAIN = ("--steps", "4", "--steps-per-epoch", "2", "--patch", "16", "--batch", "2",
         "--threads", "1", "--no-preview")  # fmt: skip


def _halves(folder, n=1, *, seed=0):
    """``n`` pairs of noisy half tomograms ``even/t<i>.mrc``, ``odd/t<i>.mrc`` (2 Å voxels)."""
    rng = np.random.default_rng(seed)
    for half in ("even", "odd"):
        (folder / half).mkdir(exist_ok=True)
    clean = np.cumsum(np.cumsum(rng.normal(size=SHAPE), axis=1), axis=2) / 10
    for i in range(n):
        for half in ("even", "odd"):
            noisy = (clean + rng.normal(size=SHAPE)).astype(np.float32)
            write_mrc(folder / half / f"t{i}.mrc", noisy, voxel_size_angstrom=2.0)


def _errors(result) -> list[str]:
    return [line for line in result.err.splitlines() if line.startswith("cryoden: error:")]


@pytest.fixture
def model_3d(tmp_path):
    """An untrained 3D model file with the default Noise2Noise network for volumes."""
    config = default_network("n2n", dims=3)
    torch.manual_seed(0)
    return save_model(tmp_path / "m3d.safetensors", build_network(config), ModelConfig(config))


def test_train_n2n_on_volumes_makes_a_3d_model_that_denoises_them(cli, tmp_path):
    _halves(tmp_path)
    r = cli("train", "n2n", "--a", tmp_path / "even", "--b", tmp_path / "odd",
            "--out", tmp_path / "model", *TRAIN)  # fmt: skip
    assert r.code == 0, r.err
    model = load_model(tmp_path / "model")
    assert model.config.network.dims == 3
    assert model.config.training["data"]["dims"] == 3
    r = cli("denoise", "-m", tmp_path / "model", tmp_path / "even" / "t0.mrc",
            "-o", tmp_path / "out", "--threads", "1", "--precision", "fp32")  # fmt: skip
    assert r.code == 0, r.err
    out = read_mrc(tmp_path / "out" / "t0.mrc")
    assert out.data.shape == SHAPE and out.voxel_size_angstrom == (2.0, 2.0, 2.0)
    assert np.isfinite(out.data).all() and out.data.std() > 0
    record = json.loads((tmp_path / "out" / "cryoden_provenance.json").read_text())
    assert record["parameters"]["dims"] == 3


def test_train_n2v_on_volumes_makes_a_3d_blind_spot_model(cli, tmp_path):
    _halves(tmp_path)
    r = cli("train", "n2v", "--images", tmp_path / "even", "--mask", "none",
            "--out", tmp_path / "n2v.safetensors", *TRAIN)  # fmt: skip
    assert r.code == 0, r.err
    model = load_model(tmp_path / "n2v.safetensors")
    # auto: these volumes' smooth signal is strong (measured voxel SNR above the threshold),
    # so plain N2V trains, with its top skip (noisier volumes train N2V2)
    log = json.loads((tmp_path / "n2v.safetensors.training_log.json").read_text())
    assert log["parameters"]["volume_snr"] >= VOLUME_N2V_MIN_SNR
    assert log["parameters"]["variant"] == "n2v"
    assert model.config.network.dims == 3 and model.config.scheme == "n2v"
    assert model.config.network.top_skip and not model.config.network.blurpool
    assert model.config.network.space_to_depth == 1  # the blind spot is voxel-wise
    # the blind spot follows the volumes' measured noise (auto), and is recorded and shown
    options = model.config.scheme_options
    assert set(options["noise_correlation"]) == {"x", "y", "z"}
    assert parse_blind_spot(options["blind_spot"]) is not None
    info = cli("models", "info", tmp_path / "n2v.safetensors")
    assert f"blind spot:       {options['blind_spot']}" in info.out
    assert "training volumes" in info.out
    r = cli("train", "n2v", "--images", tmp_path / "even", "--mask", "none", "--blind-spot",
            "pd:2", "--out", tmp_path / "pd.safetensors", *TRAIN)  # fmt: skip
    assert r.code != 0 and "for 2D images" in r.err and not (tmp_path / "pd.safetensors").exists()


def test_tomograms_star_halves_are_denoised_averaged_and_checked(
    cli, tmp_path, model_3d, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # STAR paths are relative to the RELION project folder
    _halves(tmp_path, 2)
    rows = "\n".join(f"TS_0{i} even/t{i}.mrc odd/t{i}.mrc" for i in range(2))
    star = tmp_path / "tomograms.star"
    star.write_text(
        "data_global\n\nloop_\n_rlnTomoName #1\n_rlnTomoReconstructedTomogramHalf1 #2\n"
        f"_rlnTomoReconstructedTomogramHalf2 #3\n{rows}\n"
    )
    r = cli("denoise", "-m", model_3d, star, "-o", tmp_path / "out", "--threads", "1")
    assert r.code == 0, r.err
    assert read_mrc(tmp_path / "out" / "TS_01.mrc").data.shape == SHAPE
    listed = (tmp_path / "out" / "tomograms.star").read_text()
    assert "_rlnTomoReconstructedTomogramDenoised" in listed and "out/TS_00.mrc" in listed
    record = json.loads((tmp_path / "out" / "cryoden_provenance.json").read_text())
    checks = record["parameters"]["half_map_fsc"]
    assert len(checks) == 2
    for check in checks.values():
        assert set(check) >= {"raw_even_vs_raw_odd", "denoised_even_vs_raw_odd"}
    # a rerun finds both outputs complete
    r = cli("denoise", "-m", model_3d, star, "-o", tmp_path / "out", "--threads", "1")
    assert r.code == 0 and "2 skipped" in r.out


def test_bad_volume_inputs_end_in_one_line_without_output(cli, tmp_path, model_3d):
    _halves(tmp_path)
    image = tmp_path / "image.mrc"
    write_mrc(image, np.zeros((32, 32), np.float32))
    r = cli("denoise", "-m", model_3d, image, "-o", tmp_path / "out1", "--threads", "1")
    assert r.code == 1 and "image.mrc: is a 2D image" in _errors(r)[-1]
    assert not (tmp_path / "out1").exists()
    flat = NetworkConfig(base_channels=4, depth=2)
    model_2d = save_model(tmp_path / "m2d.safetensors", build_network(flat), ModelConfig(flat))
    volume = tmp_path / "even" / "t0.mrc"
    r = cli("denoise", "-m", model_2d, volume, "-o", tmp_path / "out2", "--threads", "1")
    assert r.code == 1 and "t0.mrc: is a 3D volume; the model m2d.safetensors is 2D" in r.err
    assert not (tmp_path / "out2").exists()
    good = read_mrc(volume).data
    data = good.copy()
    data[10, 5, 5] = np.nan
    with pytest.warns(RuntimeWarning), mrcfile.new(tmp_path / "nan.mrc") as mrc:
        mrc.set_data(data)
        mrc.voxel_size = 2.0
    r = cli("denoise", "-m", model_3d, tmp_path / "nan.mrc", "-o", tmp_path / "out3")
    assert r.code == 1 and "nan.mrc: contains NaN" in _errors(r)[-1]
    assert not (tmp_path / "out3").exists()
    write_mrc(tmp_path / "odd" / "t0.mrc", good[:, :, :30])
    r = cli("train", "n2n", "--a", tmp_path / "even", "--b", tmp_path / "odd",
            "--out", tmp_path / "m", *TRAIN)  # fmt: skip
    assert r.code == 1 and len(_errors(r)) == 1 and "has shape (20, 32, 30)" in _errors(r)[0]
    assert not (tmp_path / "m").exists()
    r = cli("train", "n2v", "--images", tmp_path / "even", "--init", model_2d,
            "--out", tmp_path / "m", *TRAIN)  # fmt: skip
    assert r.code == 1 and "2D network cannot train on volumes" in _errors(r)[0]
    assert not (tmp_path / "m").exists()
