"""Training inputs are checked before any training starts, one clear line each; one image
works; two runs into one output are refused, not interleaved."""

from __future__ import annotations

import logging
import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from typer.testing import CliRunner

from cryoden.cli.main import app
from cryoden.errors import InputFileError, OutputFileError, ParameterError
from cryoden.io.folders import read_images, read_pairs
from cryoden.io.mrc import write_mrc
from cryoden.models import load_model
from cryoden.nets import NetworkConfig
from cryoden.training import SingleDataset, TrainConfig, train
from cryoden.training.lock import lock_path, output_lock

TINY = NetworkConfig(base_channels=2, depth=1)
QUICK = TrainConfig(epochs=2, steps_per_epoch=2, batch_size=2, patch=16, validation_patches=4)


def _noise(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _folder(path, names, shape=(24, 24), pixel=1.0):
    path.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        write_mrc(path / name, _noise(shape, i), voxel_size_angstrom=pixel)
    return path


def test_pairs_with_different_counts_say_which(tmp_path):
    a = _folder(tmp_path / "a", ["x.mrc", "y.mrc", "z.mrc"])
    b = _folder(tmp_path / "b", ["x.mrc", "y.mrc"])
    with pytest.raises(InputFileError) as info:
        read_pairs(a, b)
    message = str(info.value)
    assert str(a / "z.mrc") in message and "no partner" in message
    assert "has 3 images" in message and "has 2" in message


def test_pairs_with_different_shapes_say_which(tmp_path):
    a = _folder(tmp_path / "a", ["x.mrc"])
    b = _folder(tmp_path / "b", ["x.mrc"], shape=(24, 20))
    with pytest.raises(InputFileError, match="does not match its partner") as info:
        read_pairs(a, b)
    assert str(b / "x.mrc") in str(info.value)


def test_image_smaller_than_patch_names_the_file(tmp_path):
    images = [_noise((40, 40)), _noise((12, 40))]
    dataset = SingleDataset(images, sources=["big.mrc", "small.mrc"])
    with pytest.raises(InputFileError) as info:
        train("n2v", TINY, dataset, None, QUICK, out=tmp_path / "m")
    assert str(info.value).startswith("small.mrc: ") and "patch size 16" in str(info.value)
    assert not (tmp_path / "m").exists()


def test_non_finite_image_names_the_file(tmp_path):
    bad = _noise((24, 24))
    bad[3, 3] = np.nan
    with pytest.raises(InputFileError, match="^two.mrc: contains NaN"):
        SingleDataset([_noise((24, 24)), bad], sources=["one.mrc", "two.mrc"])
    with pytest.raises(ParameterError, match="image 0 contains NaN"):
        SingleDataset([np.full((24, 24), np.nan, np.float32)])


def test_mixed_pixel_sizes_warn(tmp_path, caplog):
    folder = _folder(tmp_path / "i", ["a.mrc"], pixel=1.0)
    _folder(folder, ["b.mrc"], pixel=2.5)
    with caplog.at_level(logging.WARNING, logger="cryoden.io.folders"):
        images, _ = read_images([folder])
    assert len(images) == 2
    assert "different pixel sizes" in caplog.text and "b.mrc" in caplog.text


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_minutes", 0),
        ("max_minutes", -1.0),
        ("max_minutes", math.nan),
        ("max_minutes", math.inf),
        ("epochs", 0),
        ("epochs", math.nan),
        ("steps_per_epoch", 0),
        ("steps_per_epoch", -3),
        ("learning_rate", math.nan),
    ],
)
def test_bad_budgets_are_refused_naming_the_parameter(field, value):
    with pytest.raises(ParameterError, match=f"^{field} must be"):
        TrainConfig(**{field: value})


def test_one_image_trains_with_a_held_out_region(tmp_path, caplog, one_thread):
    with caplog.at_level(logging.INFO, logger="cryoden.training"):
        result = train(
            "n2v", TINY, SingleDataset([_noise((64, 48))]), None, QUICK, out=tmp_path / "m"
        )
    assert "held out for validation" in caplog.text
    assert result.best_validation_loss is not None
    summary = load_model(tmp_path / "m").config.training
    assert summary["n_train_images"] == 1 and summary["n_validation_images"] == 1
    assert summary["shapes"] == [[16, 48], [48, 48]]


def test_one_small_image_trains_without_validation_and_says_so(tmp_path, caplog, one_thread):
    with caplog.at_level(logging.WARNING, logger="cryoden.training"):
        result = train(
            "n2v", TINY, SingleDataset([_noise((20, 20))]), None, QUICK, out=tmp_path / "m"
        )
    assert "no validation" in caplog.text
    assert result.best_validation_loss is not None  # the training loss stands in
    assert load_model(tmp_path / "m").config.training["n_validation_images"] == 0


def test_cli_single_micrograph(tmp_path, one_thread):
    """The README's single-micrograph example: one file in the folder is enough."""
    folder = _folder(tmp_path / "micrographs", ["only.mrc"], shape=(64, 64))
    out = tmp_path / "n2v"
    args = ["train", "n2v", "--images", str(folder), "--out", str(out), "--epochs", "1"]
    args += ["--steps-per-epoch", "2", "--batch", "2", "--patch", "16", "--base-channels", "2"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert load_model(out).config.training["n_train_images"] == 1


def test_lock_is_exclusive_across_processes(tmp_path):
    out = tmp_path / "model"
    holder = textwrap.dedent(
        f"""
        import sys, time
        from cryoden.training.lock import output_lock
        with output_lock({str(out)!r}):
            print("locked", flush=True)
            sys.stdin.readline()
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", holder], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(OutputFileError) as info:
            with output_lock(out):
                pass
        assert str(info.value) == f"another cryoden train is writing to {out} (pid {proc.pid})"
        with pytest.raises(OutputFileError, match="another cryoden train"):
            train("n2v", TINY, SingleDataset([_noise((40, 40))] * 2), None, QUICK, out=out)
        assert not out.exists()
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    with output_lock(out):  # released when its holder ends
        with output_lock(out):  # and re-entrant within one process
            pass
    assert lock_path(out).name == ".model.train.lock"


def test_two_cli_trainings_into_one_out_do_not_interleave(tmp_path):
    """Two ``cryoden train`` processes started together: one trains, the other is refused in
    one line (or, if the first had already finished, trains after it); never both at once."""
    folder = _folder(tmp_path / "i", ["a.mrc", "b.mrc"], shape=(48, 48))
    out = tmp_path / "m"
    args = [sys.executable, "-m", "cryoden.cli.main", "train", "n2v", "--images", str(folder)]
    args += ["--out", str(out), "--epochs", "3", "--steps-per-epoch", "3", "--batch", "2"]
    args += ["--patch", "16", "--base-channels", "2", "--threads", "1"]
    procs = [subprocess.Popen(args, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    for p in procs:
        p.stderr.close()
    refused = [err for code, err in results if code != 0]
    assert all("another cryoden train is writing to" in err for err in refused), refused
    assert len(refused) <= 1
    assert load_model(out).config.training["epochs"] == 3
