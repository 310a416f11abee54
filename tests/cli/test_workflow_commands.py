"""simulate -> train -> denoise -> models info -> evaluate, and split-frames, end to end on tiny data."""

from __future__ import annotations

import json
import pickle

import mrcfile
import numpy as np
import pytest
import torch

from cryoden.io import read_mrc
from cryoden.models import load_model

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def simulated(cli, tmp_path):
    out = tmp_path / "sim"
    result = cli(
        "simulate", "--out", out, "--n-images", "6", "--size", "48", "--pixel-size", "4.0",
        "--snr", "0.5", "--seed", "1",
    )  # fmt: skip
    assert result.code == 0, result.err
    return out


def test_simulate_layout_and_manifest(simulated):
    manifest = json.loads((simulated / "manifest.json").read_text())
    assert len(list((simulated / "clean").glob("*.mrc"))) == 6
    for half in "ab":
        files = sorted((simulated / "snr_0.5000" / half).glob("*.mrc"))
        assert len(files) == 6
        assert read_mrc(files[0]).pixel_size_angstrom == pytest.approx(4.0)
    assert "0.5" in json.dumps(manifest)
    assert (simulated / "cryoden_provenance.json").exists()


def test_simulate_bad_inputs(cli, tmp_path):
    bad = tmp_path / "broken.pdb"
    bad.write_text("HELLO this is not a PDB file\n")
    r = cli("simulate", "--out", tmp_path / "o1", "--structure", bad, "--snr", "0.1")
    assert r.code != 0 and "broken.pdb" in r.err and len(r.err.strip().splitlines()) == 1
    r = cli("simulate", "--out", tmp_path / "o2", "--phantom", "ribosome", "--snr", "0.1")
    assert r.code != 0 and "ribosome" in r.err and len(r.err.strip().splitlines()) == 1
    r = cli("simulate", "--out", tmp_path / "o3", "--pixel-size", "-1", "--snr", "0.1")
    assert r.code != 0 and "pixel" in r.err.lower() and len(r.err.strip().splitlines()) == 1


def test_train_denoise_info_evaluate(cli, tmp_path, simulated):
    model = tmp_path / "model"
    level = simulated / "snr_0.5000"
    r = cli(
        "train", "n2n", "--a", level / "a", "--b", level / "b", "--out", model,
        "--base-channels", "4", "--depth", "2", "--epochs", "2", "--steps-per-epoch", "3",
        "--patch", "32", "--batch", "4", "--seed", "0",
    )  # fmt: skip
    assert r.code == 0, r.err
    assert (model / "config.json").exists() and (model / "weights.safetensors").exists()

    info = cli("models", "info", model, "--json")
    assert info.code == 0, info.err
    described = json.loads(info.out)
    assert described["network"]["arch"] == "unet" and described["parameters"] > 0
    # n2n's default U-Net works on 2x2 blocks; the options given replace only their own fields
    assert described["network"]["space_to_depth"] == 2
    assert (described["network"]["base_channels"], described["network"]["depth"]) == (4, 2)
    assert described["flops_per_pixel"] > 0

    out_dir = tmp_path / "denoised"
    inputs = sorted((level / "a").glob("*.mrc"))[:2]
    r = cli("denoise", "--model", model, *inputs, "-o", out_dir)
    assert r.code == 0, r.err
    for path in inputs:
        out = read_mrc(out_dir / path.name)
        src = read_mrc(path)
        assert out.data.shape == src.data.shape
        assert out.voxel_size_angstrom == src.voxel_size_angstrom
        assert out.origin_angstrom == src.origin_angstrom
        assert out.labels[: len(src.labels)] == src.labels[-9:] or not src.labels
        assert out.labels[-1].startswith("cryoden") and "denoise" in out.labels[-1]
    r = cli(
        "evaluate",
        "--reference",
        simulated / "clean" / inputs[0].name,
        out_dir / inputs[0].name,
        "--json",
    )
    assert r.code == 0 and json.loads(r.out)[0]["cc"] > 0


def test_train_init_fine_tunes_a_model(cli, tmp_path, simulated):
    """--init starts from a model's network and weights: with a vanishing learning rate the
    fine-tuned model keeps them, whatever --arch says."""
    level = simulated / "snr_0.5000"
    common = ("--epochs", "1", "--steps-per-epoch", "2", "--patch", "32", "--batch", "2")
    base = tmp_path / "base.safetensors"
    r = cli("train", "n2n", "--a", level / "a", "--b", level / "b", "--out", base,
            "--base-channels", "4", "--depth", "2", *common)  # fmt: skip
    assert r.code == 0, r.err
    tuned = tmp_path / "tuned.safetensors"
    r = cli("train", "n2n", "--a", level / "a", "--b", level / "b", "--out", tuned,
            "--init", base, "--arch", "seed4", "--lr", "1e-12", *common)  # fmt: skip
    assert r.code == 0, r.err
    a, b = load_model(base), load_model(tuned)
    assert b.config.network == a.config.network
    wa, wb = a.network.state_dict(), b.network.state_dict()
    assert all(torch.allclose(wa[k], wb[k], atol=1e-6) for k in wa)
    r = cli("train", "n2n", "--a", level / "a", "--b", level / "b", "--out", tmp_path / "x",
            "--init", tmp_path / "missing.safetensors", *common)  # fmt: skip
    assert r.code != 0 and "missing.safetensors" in r.err


def test_space_to_depth_model_trains_and_denoises(cli, tmp_path, simulated):
    level = simulated / "snr_0.5000"
    model = tmp_path / "s2d.safetensors"
    r = cli("train", "n2n", "--a", level / "a", "--b", level / "b", "--out", model,
            "--space-to-depth", "2", "--base-channels", "4", "--depth", "2", "--epochs", "1",
            "--steps-per-epoch", "2", "--patch", "32", "--batch", "2")  # fmt: skip
    assert r.code == 0, r.err
    assert load_model(model).config.network.space_to_depth == 2
    image = sorted((level / "a").glob("*.mrc"))[0]
    r = cli("denoise", "--model", model, image, "-o", tmp_path / "d")
    assert r.code == 0, r.err
    assert read_mrc(tmp_path / "d" / image.name).data.shape == read_mrc(image).data.shape
    r = cli("train", "n2n", "--a", level / "a", "--b", level / "b", "--out", tmp_path / "x",
            "--space-to-depth", "3")  # fmt: skip
    assert r.code != 0 and "--space-to-depth" in r.err


@pytest.mark.parametrize("scheme", ["n2v", "ne2ne"])
def test_single_image_training_commands(cli, tmp_path, simulated, scheme):
    model = tmp_path / f"{scheme}.safetensors"
    r = cli(
        "train", scheme, "--images", simulated / "snr_0.5000" / "a", "--out", model,
        "--base-channels", "4", "--depth", "2", "--epochs", "1", "--steps-per-epoch", "2",
        "--patch", "32", "--batch", "2",
    )  # fmt: skip
    assert r.code == 0, r.err
    assert load_model(model).config.network.space_to_depth == 1  # the plain U-Net by default
    if scheme == "ne2ne":
        assert load_model(model).config.scheme_options == {"input_image": "cell-mean"}
    r = cli(
        "denoise",
        "--model",
        model,
        sorted((simulated / "clean").glob("*.mrc"))[0],
        "-o",
        tmp_path / "d",
    )
    assert r.code == 0, r.err


def test_ne2ne_input_image_option(cli, tmp_path, simulated):
    images = simulated / "snr_0.5000" / "a"
    model = tmp_path / "paper.safetensors"
    r = cli("train", "ne2ne", "--images", images, "--out", model, "--input-image", "neighbour",
            "--base-channels", "4", "--depth", "2", "--epochs", "1", "--steps-per-epoch", "1",
            "--patch", "32", "--batch", "2")  # fmt: skip
    assert r.code == 0, r.err
    assert load_model(model).config.scheme_options == {"input_image": "neighbour"}
    r = cli("models", "info", model)
    assert r.code == 0 and "ne2ne, input_image=neighbour" in r.out
    r = cli("train", "ne2ne", "--images", images, "--out", tmp_path / "x",
            "--input-image", "median")  # fmt: skip
    assert r.code != 0 and "--input-image" in r.err and not (tmp_path / "x").exists()


def test_pickled_model_is_refused(cli, tmp_path, simulated):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    bad = tmp_path / "model.pt"
    bad.write_bytes(pickle.dumps(Evil()))
    r = cli(
        "denoise",
        "--model",
        bad,
        sorted((simulated / "clean").glob("*.mrc"))[0],
        "-o",
        tmp_path / "d",
    )
    assert r.code != 0 and "model.pt" in r.err and len(r.err.strip().splitlines()) == 1
    assert not marker.exists()
    assert not (tmp_path / "d").exists()


def test_denoise_reports_a_bad_input_and_denoises_the_others(cli, tmp_path, simulated):
    model = tmp_path / "m"
    level = simulated / "snr_0.5000"
    cli("train", "n2n", "--a", level / "a", "--b", level / "b", "--out", model, "--base-channels", "4",
        "--depth", "2", "--epochs", "1", "--steps-per-epoch", "1", "--patch", "32", "--batch", "2")  # fmt: skip
    cut = tmp_path / "cut.mrc"
    cut.write_bytes((level / "a" / "0000.mrc").read_bytes()[:-100])
    r = cli("denoise", "--model", model, level / "a" / "0000.mrc", cut, "-o", tmp_path / "out")
    assert r.code == 1
    errors = [line for line in r.err.splitlines() if line.startswith("cryoden: error: ")]
    assert len(errors) == 1 and "cut.mrc" in errors[0] and "truncated" in errors[0]
    assert [p.name for p in (tmp_path / "out").rglob("*.mrc")] == ["0000.mrc"]  # mirrored
    assert "1 succeeded" in r.out and "1 failed" in r.out


def test_split_frames_command(cli, tmp_path):
    rng = np.random.default_rng(0)
    movie = rng.poisson(5.0, size=(6, 40, 40)).astype(np.float32)
    path = tmp_path / "movie.mrcs"
    with mrcfile.new(path) as mrc:
        mrc.set_data(movie)
        mrc.voxel_size = 0.8
    # Fourier (cyclic) shifts keep every count; the default bilinear shifts extend the edges.
    r = cli("split-frames", path, "-o", tmp_path / "pairs", "--align", "--interpolation", "fourier")
    assert r.code == 0, r.err
    even = read_mrc(tmp_path / "pairs" / "even" / "movie.mrc")
    odd = read_mrc(tmp_path / "pairs" / "odd" / "movie.mrc")
    assert even.data.shape == (40, 40) and even.pixel_size_angstrom == pytest.approx(0.8)
    assert even.data.sum() == pytest.approx(movie[0::2].sum(), rel=1e-3)
    assert odd.data.sum() == pytest.approx(movie[1::2].sum(), rel=1e-3)


def test_demo_command(cli, tmp_path):
    r = cli("demo", "--out", tmp_path / "demo", "--size", "64")
    assert r.code == 0, r.err
    scores = json.loads((tmp_path / "demo" / "scores.json").read_text())
    by = {(s["snr"], s["method"]): s for s in scores}
    # Filtering helps at low SNR: the best filter beats the noisy image's CC.
    assert (
        max(v["cc"] for (snr, m), v in by.items() if snr == 0.05 and m != "noisy")
        > by[(0.05, "noisy")]["cc"]
    )
