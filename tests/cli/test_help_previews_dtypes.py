"""What a new user sees: examples in every --help, flags shown as flags, previews beside the
outputs, the output dtype and voxel-size rules, `models info` as a summary, `train --steps`."""

from __future__ import annotations

import json
import logging

import mrcfile
import numpy as np
import pytest
import torch
from PIL import Image

from cryoden.io import read_mrc, write_mrc
from cryoden.io.images import downsample_to_width, side_by_side
from cryoden.models import ModelConfig, save_model
from cryoden.nets import NetworkConfig, build_network

pytestmark = pytest.mark.usefixtures("one_thread")

COMMANDS = [
    "demo", "noise", "filter", "evaluate", "simulate", "denoise", "split-frames",
    "train n2n", "train n2v", "train ne2ne", "train care", "models info", "bench seed",
    "relion denoise", "relion train",
]  # fmt: skip


@pytest.fixture
def wide(monkeypatch):
    """A wide terminal, so that no example line is wrapped."""
    monkeypatch.setenv("COLUMNS", "200")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_help_shows_an_example(cli, wide, command):
    result = cli(*command.split(), "--help")
    assert result.code == 0, result.err
    assert "Example" in result.out
    lines = [line.strip() for line in result.out.splitlines()]
    assert any(line.startswith(f"cryoden {command} ") for line in lines), result.out


@pytest.mark.parametrize("command", ["train n2v", "denoise", "models info", "bench seed", ""])
def test_boolean_flags_show_without_a_value(cli, wide, command):
    result = cli(*command.split(), "--help")
    assert result.code == 0, result.err
    assert "<bool>" not in result.out
    if command == "train n2v":
        line = next(line for line in result.out.splitlines() if "--resume" in line)
        assert "--resume" in line and "<" not in line.split("--resume")[1].split("Continue")[0]


def test_help_keeps_brackets_and_states_the_output_rules(cli, wide):
    out = cli("denoise", "--help").out
    assert "cryoden[onnx]" in out
    assert "float16" in out and "voxel size" in out and "unknown" in out
    assert "float16" in cli("filter", "--help").out


def test_side_by_side_uses_the_raw_images_contrast():
    rng = np.random.default_rng(0)
    raw = rng.normal(size=(20, 30)).astype(np.float32)
    both = side_by_side(raw, raw, gap_px=2)
    assert both.shape == (20, 62) and both.dtype == np.uint8
    assert np.array_equal(both[:, :30], both[:, 32:])
    # a processed image of half the contrast shows as half the contrast (same window)
    half = side_by_side(raw, raw * 0.5)
    assert half[:, 34:].std() < 0.7 * half[:, :30].std()


def test_downsample_to_width_keeps_at_most_the_width():
    image = np.arange(48 * 100, dtype=np.float32).reshape(48, 100)
    small = downsample_to_width(image, 40)
    assert small.shape[1] <= 40 and small.shape[0] == 48 // 3
    assert downsample_to_width(image, 200).shape == image.shape


@pytest.fixture
def model(tmp_path):
    config = NetworkConfig(depth=2, base_channels=4)
    torch.manual_seed(0)
    return save_model(tmp_path / "m.safetensors", build_network(config), ModelConfig(config))


def _mrc_mode(path):
    with mrcfile.open(path, permissive=True) as mrc:
        return int(mrc.header.mode)


def test_denoise_preview_dtype_and_unknown_voxel_size(cli, tmp_path, model, blob_image, caplog):
    image = tmp_path / "in.mrc"
    write_mrc(image, blob_image)  # no voxel size: unknown
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING, logger="cryoden"):
        r = cli("denoise", "--model", model, image, "-o", out, "--dtype", "float16")
    assert r.code == 0, r.err
    assert _mrc_mode(out / "in.mrc") == 12
    assert read_mrc(out / "in.mrc").voxel_size_angstrom == (0.0, 0.0, 0.0)
    assert "no voxel size" in r.err
    preview = Image.open(out / "preview.png")
    assert preview.size[1] == blob_image.shape[0] and preview.size[0] > 2 * blob_image.shape[1]
    record = json.loads((out / "cryoden_provenance.json").read_text())
    assert record["parameters"]["dtype"] == "float16"

    r = cli("denoise", "--model", model, image, "-o", tmp_path / "plain", "--no-preview")
    assert r.code == 0, r.err
    assert _mrc_mode(tmp_path / "plain" / "in.mrc") == 2
    assert not (tmp_path / "plain" / "preview.png").exists()

    r = cli("denoise", "--model", model, image, "-o", tmp_path / "x", "--dtype", "int8")
    assert r.code != 0 and "--dtype" in r.err


def test_integer_input_is_said_to_come_back_as_float(cli, tmp_path, model):
    image = tmp_path / "counts.mrc"
    with mrcfile.new(image) as mrc:
        mrc.set_data(np.random.default_rng(1).integers(0, 50, (40, 40)).astype(np.int16))
        mrc.voxel_size = 1.5
    r = cli("denoise", "--model", model, image, "-o", tmp_path / "out")
    assert r.code == 0, r.err
    assert "int16" in r.err and "float32" in r.err
    assert _mrc_mode(tmp_path / "out" / "counts.mrc") == 2
    assert read_mrc(tmp_path / "out" / "counts.mrc").pixel_size_angstrom == pytest.approx(1.5)


def test_float16_refuses_values_it_cannot_hold(cli, tmp_path):
    image = tmp_path / "big.mrc"
    big = np.full((16, 16), 1e6, np.float32) + np.eye(16, dtype=np.float32)
    write_mrc(image, big, voxel_size_angstrom=1.0)
    r = cli("filter", "mean", image, "-o", tmp_path / "out", "--dtype", "float16")
    assert r.code != 0 and "--dtype float16" in r.err and len(r.err.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "big.mrc").exists()


def test_models_info_is_a_summary(cli, model):
    r = cli("models", "info", model)
    assert r.code == 0, r.err
    for needle in ("scheme:", "network:", "parameters:", "on disk", "FLOP per pixel",
                   "receptive field", "training data", "training budget", "validation loss"):  # fmt: skip
        assert needle in r.out, needle
    assert "Conv2d" not in r.out
    verbose = cli("models", "info", model, "--verbose")
    assert "Conv2d" in verbose.out
    described = json.loads(cli("models", "info", model, "--json").out)
    assert described["size_on_disk_bytes"] == model.stat().st_size


def test_train_steps_budget_preview_and_summary(cli, tmp_path, blob_image):
    rng = np.random.default_rng(0)
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(3):
        noisy = blob_image + 0.3 * rng.normal(size=blob_image.shape)
        write_mrc(folder / f"{i}.mrc", noisy.astype(np.float32), voxel_size_angstrom=2.0)
    out = tmp_path / "n2v.safetensors"
    r = cli("train", "n2v", "--images", folder, "--out", out, "--steps", "3",
            "--steps-per-epoch", "2", "--patch", "32", "--batch", "2",
            "--base-channels", "4", "--depth", "2")  # fmt: skip
    assert r.code in (0, 1), r.err
    if r.code == 1:  # a degenerate model after 3 steps: one line, and no model file
        assert len(r.err.strip().splitlines()) == 1 and not out.exists()
        return
    log = json.loads((tmp_path / "n2v.safetensors.training_log.json").read_text())
    assert log["result"]["steps"] == 3 and log["parameters"]["steps"] == 3
    assert (tmp_path / "n2v.safetensors.preview.png").exists()
    info = cli("models", "info", out).out
    assert "3 of 3 steps" in info and "48x80" not in info and "96x80" in info
