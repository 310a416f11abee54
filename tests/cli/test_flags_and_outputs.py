"""CLI plumbing: library errors reworded with flags, defaults left to the library, atomic JSON."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from cryoden.cli.common import flag_names, write_json_atomic
from cryoden.cli.train import _train_config
from cryoden.errors import CryodenError, ParameterError
from cryoden.io import write_mrc
from cryoden.models import ModelConfig, save_model
from cryoden.nets import NetworkConfig, build_network
from cryoden.training import TrainConfig

pytestmark = pytest.mark.usefixtures("one_thread")


def _one_error_line(result, *needles):
    assert result.code != 0
    lines = [line for line in result.err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.err, result.err
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_flag_names_rewords_whole_parameter_names_only():
    with pytest.raises(ParameterError) as info:
        with flag_names({"memory_mb": "--memory-mb", "tile": "--tile"}):
            raise ParameterError("memory_mb must be positive; tile 3, tiles 2, --tile, tile_size")
    assert str(info.value) == ("--memory-mb must be positive; --tile 3, tiles 2, --tile, tile_size")
    with flag_names({"x": "--x"}):  # no error: nothing happens
        pass


@pytest.fixture
def model_and_image(tmp_path, blob_image):
    config = NetworkConfig(depth=2, base_channels=4)
    torch.manual_seed(0)
    model = save_model(
        tmp_path / "m.safetensors", build_network(config), ModelConfig(network=config)
    )
    image = tmp_path / "in.mrc"
    write_mrc(image, blob_image)
    return model, image


@pytest.mark.parametrize(
    ("flags", "needles"),
    [
        (["--tile", "0"], ["--tile"]),
        (["--memory-mb", "0"], ["--memory-mb"]),
        (["--threads", "0"], ["--threads"]),
        (["--precision", "fp8"], ["--precision"]),
        (["--backend", "onnxruntime", "--precision", "bf16"], ["--backend", "--precision bf16"]),
    ],
)
def test_denoise_errors_name_flags(cli, tmp_path, model_and_image, flags, needles):
    model, image = model_and_image
    r = cli("denoise", "--model", model, image, "-o", tmp_path / "out", *flags)
    _one_error_line(r, *needles)
    assert not (tmp_path / "out").exists()


def test_denoise_defaults_come_from_the_denoiser(cli, tmp_path, model_and_image):
    model, image = model_and_image
    r = cli("denoise", "--model", model, image, "-o", tmp_path / "out", "--backend", "torch")
    assert r.code == 0, r.err
    record = json.loads((tmp_path / "out" / "cryoden_provenance.json").read_text())
    assert record["parameters"]["precision"] in ("fp32", "bf16")
    assert record["parameters"]["backend"] == "torch"


def test_train_options_default_to_the_train_config():
    options = dict.fromkeys(
        ("epochs", "max_minutes", "patch", "batch", "steps_per_epoch", "steps", "lr", "loss",
         "patience", "seed",
         "threads"),
    )  # fmt: skip
    assert _train_config(dict(options)) == TrainConfig()
    filled = dict(options, epochs=3, lr=0.5)
    config = _train_config(filled)
    assert (config.epochs, config.learning_rate) == (3, 0.5)
    # the log records the values used, defaults included
    assert filled["batch"] == TrainConfig().batch_size and filled["epochs"] == 3


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--lr", "0"], "--lr"),
        (["--patience", "0"], "--patience"),
        (["--batch", "0"], "--batch"),
        (["--steps-per-epoch", "0"], "--steps-per-epoch"),
        (["--base-channels", "0"], "--base-channels"),
        (["--kernel", "4"], "--kernel"),
        (["--loss", "huber"], "--loss"),
    ],
)
def test_train_errors_name_flags(cli, tmp_path, flags, needle):
    r = cli("train", "n2v", "--images", tmp_path / "none", "--out", tmp_path / "m", *flags)
    _one_error_line(r, needle)
    assert not (tmp_path / "m").exists()


def test_filter_records_the_filter_defaults_it_used(cli, tmp_path, blob_image):
    image = tmp_path / "in.mrc"
    write_mrc(image, blob_image)
    r = cli("filter", "gaussian", image, "-o", tmp_path / "out")
    assert r.code == 0, r.err
    record = json.loads((tmp_path / "out" / "cryoden_provenance.json").read_text())
    assert record["parameters"]["sigma_px"] == 1.0
    r = cli("filter", "median", image, "-o", tmp_path / "out2", "--size", "4")
    _one_error_line(r, "--size")


def test_write_json_atomic_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    write_json_atomic(target, {"a": np.float64(1.5).item()})
    assert json.loads(target.read_text()) == {"a": 1.5}
    assert os.listdir(tmp_path) == ["out.json"]
    with pytest.raises(CryodenError, match="missing"):
        write_json_atomic(tmp_path / "missing" / "x.json", {})
    with pytest.raises(TypeError):  # not JSON: the old file stays as it was
        write_json_atomic(target, {"a": object()})
    assert json.loads(target.read_text()) == {"a": 1.5}
    assert os.listdir(tmp_path) == ["out.json"]
