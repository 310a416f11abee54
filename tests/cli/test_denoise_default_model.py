"""`cryoden denoise` with no --model uses the shipped general model; inputs outside its trained
range are warned about, a 3D volume is refused in one line; `train --init general` fine-tunes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cryoden.io import read_mrc, write_mrc
from cryoden.models import load_model
from cryoden.models.registry import resolve_model
from cryoden.training import TrainConfig
from cryoden.training.defaults import FINE_TUNE_LR_FACTOR

pytestmark = pytest.mark.usefixtures("one_thread")


def _words(text: str) -> str:
    """Log output with rich's line wrapping undone."""
    return " ".join(text.split())


def _micrograph(blob_image, seed: int, snr: float = 0.2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    sigma = float(np.sqrt(blob_image.var() / snr))
    return (blob_image + rng.normal(0, sigma, blob_image.shape)).astype(np.float32)


def test_denoise_without_a_model_uses_general_and_says_so(cli, tmp_path, blob_image):
    write_mrc(tmp_path / "mic.mrc", _micrograph(blob_image, 0), voxel_size_angstrom=1.2)
    r = cli("denoise", tmp_path / "mic.mrc", "-o", tmp_path / "out", "--threads", "1")
    assert r.code == 0, r.err
    assert "no --model given: using cryoden's shipped 'general' model" in _words(r.err)
    out = read_mrc(tmp_path / "out" / "mic.mrc")
    assert out.data.shape == blob_image.shape and np.isfinite(out.data).all()
    assert out.pixel_size_angstrom == pytest.approx(1.2)
    assert "pixel size" not in r.err  # inside the trained range


def test_model_general_names_it_and_the_output_is_the_same(cli, tmp_path, blob_image):
    write_mrc(tmp_path / "mic.mrc", _micrograph(blob_image, 0), voxel_size_angstrom=1.2)
    assert cli("denoise", tmp_path / "mic.mrc", "-o", tmp_path / "a", "--threads", "1").code == 0
    r = cli(
        "denoise", tmp_path / "mic.mrc", "-o", tmp_path / "b", "-m", "general", "--threads", "1"
    )
    assert r.code == 0, r.err
    assert "no --model given" not in r.err
    a, b = (read_mrc(tmp_path / d / "mic.mrc").data for d in "ab")
    np.testing.assert_array_equal(a, b)


def test_a_pixel_size_outside_the_range_is_warned_about_with_what_to_do(cli, tmp_path, blob_image):
    for i in range(2):
        write_mrc(tmp_path / f"m{i}.mrc", _micrograph(blob_image, i), voxel_size_angstrom=4.0)
    r = cli("denoise", tmp_path / "m0.mrc", tmp_path / "m1.mrc", "-o", tmp_path / "out",
            "--threads", "1")  # fmt: skip
    assert r.code == 0, r.err
    said = _words(r.err)
    assert "m0.mrc (and 1 more input(s)): outside the general model's trained range" in said
    assert "pixel size 4 Å (trained on 0.6-2.5 Å)" in said
    assert "--init general" in said
    assert (tmp_path / "out" / "m1.mrc").exists()


def test_a_3d_volume_is_refused_in_one_line_with_no_output(cli, tmp_path):
    volume = np.random.default_rng(0).normal(size=(8, 32, 32)).astype(np.float32)
    write_mrc(tmp_path / "map.mrc", volume, voxel_size_angstrom=2.0)
    r = cli("denoise", tmp_path / "map.mrc", "-o", tmp_path / "out", "--threads", "1")
    assert r.code == 1
    last = r.err.strip().splitlines()[-1]
    assert last.startswith("cryoden: error:") and "map.mrc: is a 3D volume" in last
    assert not (tmp_path / "out").exists()
    # the same sections named as a stack are images: denoised
    write_mrc(tmp_path / "map.mrcs", volume, voxel_size_angstrom=2.0)
    r = cli("denoise", tmp_path / "map.mrcs", "-o", tmp_path / "out", "--threads", "1")
    assert r.code == 0, r.err
    assert read_mrc(tmp_path / "out" / "map.mrcs").data.shape == volume.shape


def _pairs(tmp_path, blob_image):
    for half, seed in (("a", 1), ("b", 2)):
        (tmp_path / half).mkdir()
        for i in range(2):
            image = _micrograph(blob_image, 10 * seed + i)
            write_mrc(tmp_path / half / f"m{i}.mrc", image, voxel_size_angstrom=1.0)


@pytest.mark.parametrize("scheme", ["n2n", "n2v"])
def test_fine_tuning_from_general_runs_a_few_steps(cli, tmp_path, blob_image, scheme):
    _pairs(tmp_path, blob_image)
    data = ["--a", tmp_path / "a", "--b", tmp_path / "b"] if scheme == "n2n" else [
        "--images", tmp_path / "a"]  # fmt: skip
    r = cli("train", scheme, *data, "--init", "general", "--out", tmp_path / "tuned",
            "--steps", "4", "--steps-per-epoch", "2", "--patch", "32", "--batch", "2",
            "--threads", "1", "--no-preview")  # fmt: skip
    assert r.code == 0, r.err
    tuned, general = (
        load_model(tmp_path / "tuned"),
        load_model(resolve_model("general")),
    )
    assert tuned.config.network == general.config.network
    assert tuned.config.training["steps"] == 4
    # fine-tuning runs at a fraction of the default learning rate (none was given)
    log = json.loads((tmp_path / "tuned" / "training_log.json").read_text())
    assert log["parameters"]["lr"] == pytest.approx(
        TrainConfig().learning_rate * FINE_TUNE_LR_FACTOR
    )
