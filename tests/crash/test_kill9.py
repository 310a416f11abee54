"""Crash consistency: ``kill -9`` a command at seeded moments, then check that no final output
is corrupt and that a rerun completes.

Each run is killed after it has made some progress (its first output, checkpoint or finished
cell appears) plus a seeded random delay. After the kill, every file under a final output name
must read (``.mrc`` with the right shape, ``.json`` parses, models and checkpoints load);
temporary files never carry an output's name. A rerun (``--resume`` for training; a plain
rerun, which reuses finished cells, for the study) must then finish with complete outputs.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from cryoden.cli.main import app
from cryoden.io.atomic import TEMP_SUFFIX
from cryoden.io.mrc import read_mrc, write_mrc
from cryoden.models import ModelConfig, check_safetensors, load_model, read_tensors, save_model
from cryoden.nets import NetworkConfig, build_network

pytestmark = pytest.mark.slow

SEEDS = (0, 1, 2)
SHAPE = (96, 96)
runner = CliRunner()


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _kill_after(
    args: list[str], progressed: Callable[[], bool], seed: int, *, max_delay: float = 0.4
) -> bool:
    """Start ``cryoden ARGS``, wait for ``progressed()`` (or the end), sleep a seeded random
    delay and ``kill -9`` it. Returns whether it was killed while still running."""
    delay = random.Random(seed).uniform(0.0, max_delay)
    proc = subprocess.Popen(
        [sys.executable, "-m", "cryoden.cli.main", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_env(),
    )
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None and not progressed() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(delay)
        running = proc.poll() is None
        if running:
            os.kill(proc.pid, signal.SIGKILL)
        return running
    finally:
        proc.wait(timeout=30)


def _outputs(folder: Path, pattern: str) -> list[Path]:
    """Files under final output names (temporary files are hidden and end in .tmp)."""
    found = sorted(folder.rglob(pattern)) if folder.exists() else []
    for path in found:
        assert not path.name.endswith(TEMP_SUFFIX), path
    return found


def _check_json_files(folder: Path) -> None:
    for path in _outputs(folder, "*.json"):
        json.loads(path.read_text())


# ---------------------------------------------------------------------------- denoise


@pytest.fixture(scope="module")
def denoise_case(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("denoise")
    net = NetworkConfig(base_channels=4, depth=2)
    torch.manual_seed(0)
    model = save_model(root / "model", build_network(net), ModelConfig(network=net))
    inputs = []
    for i in range(6):
        path = root / "in" / f"img{i}.mrc"
        path.parent.mkdir(exist_ok=True)
        write_mrc(path, np.random.default_rng(i).normal(size=SHAPE).astype(np.float32))
        inputs.append(path)
    reference = root / "reference"
    result = runner.invoke(
        app, ["denoise", *map(str, inputs), "--model", str(model), "-o", str(reference)]
    )
    assert result.exit_code == 0, result.output
    expected = {p.name: read_mrc(p).data for p in _outputs(reference, "*.mrc")}
    assert len(expected) == 6
    return {"model": model, "inputs": inputs, "expected": expected}


@pytest.mark.parametrize("seed", SEEDS)
def test_denoise_killed_then_rerun(denoise_case, tmp_path, seed):
    out = tmp_path / "out"
    args = ["denoise", *map(str, denoise_case["inputs"]), "--model", str(denoise_case["model"])]
    args += ["-o", str(out), "--threads", "1"]
    _kill_after(args, lambda: bool(_outputs(out, "*.mrc")), seed, max_delay=0.3)
    for path in _outputs(out, "*.mrc"):
        assert read_mrc(path).data.shape == SHAPE
    _check_json_files(out)
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    done = {p.name: read_mrc(p).data for p in _outputs(out, "*.mrc")}
    assert sorted(done) == sorted(denoise_case["expected"])
    for name, data in done.items():
        np.testing.assert_array_equal(data, denoise_case["expected"][name])
    _check_json_files(out)


def test_two_denoise_processes_into_one_folder_never_corrupt_each_other(denoise_case, tmp_path):
    """Two ``cryoden denoise`` runs at once into one folder, on the same inputs: unique
    temporaries and atomic renames, so every output reads and equals a lone run's, and the
    provenance file parses."""
    out = tmp_path / "out"
    args = ["denoise", *map(str, denoise_case["inputs"]), "--model", str(denoise_case["model"])]
    args += ["-o", str(out), "--threads", "1"]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "cryoden.cli.main", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=_env(),
        )
        for _ in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    done = {p.name: read_mrc(p).data for p in _outputs(out, "*.mrc")}
    assert sorted(done) == sorted(denoise_case["expected"])
    for name, data in done.items():
        np.testing.assert_array_equal(data, denoise_case["expected"][name])
    _check_json_files(out)
    assert not list(out.glob(f"*{TEMP_SUFFIX}")) and not list(out.glob(f".*{TEMP_SUFFIX}"))


# ---------------------------------------------------------------------------- train


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("pairs")
    for side in ("a", "b"):
        for i in range(3):
            path = root / side / f"p{i}.mrc"
            path.parent.mkdir(exist_ok=True)
            data = np.random.default_rng([i, ord(side)]).normal(size=(40, 40))
            write_mrc(path, data.astype(np.float32))
    return root / "a", root / "b"


def _check_checkpoint(folder: Path) -> None:
    """A checkpoint is absent, or its JSON parses and its weights file loads."""
    record_path = folder / "checkpoint.json"
    if not record_path.exists():
        return
    record = json.loads(record_path.read_text())
    weights = folder / record["weights_file"]
    header = check_safetensors(weights)
    read_tensors(weights, header.tensors, finite=False)


@pytest.mark.parametrize("seed", SEEDS)
def test_train_killed_then_resumed(pairs, tmp_path, seed):
    out = tmp_path / "model"
    epochs = 30
    args = ["train", "n2n", "--a", str(pairs[0]), "--b", str(pairs[1]), "--out", str(out)]
    args += ["--epochs", str(epochs), "--steps-per-epoch", "2", "--batch", "2", "--patch", "16"]
    args += ["--base-channels", "2", "--depth", "1", "--patience", "1000", "--threads", "1"]
    checkpoint = out / "checkpoint"
    killed = _kill_after(
        args, lambda: (checkpoint / "checkpoint.json").exists(), seed, max_delay=0.5
    )
    if (out / "config.json").exists():
        load_model(out)
    _check_checkpoint(checkpoint)
    _check_json_files(out)
    result = runner.invoke(app, [*args, "--resume"])
    assert result.exit_code == 0, result.output
    model = load_model(out)
    assert model.config.training["epochs"] == epochs
    assert [r["epoch"] for r in model.config.training["history"]] == list(range(1, epochs + 1))
    _check_checkpoint(checkpoint)
    log = json.loads((out / "training_log.json").read_text())
    assert len(log["result"]["history"]) == epochs
    assert killed or seed >= 0  # a run that ended first still had to leave valid files


# ---------------------------------------------------------------------------- bench seed


@pytest.mark.parametrize("seed", SEEDS[:2])
def test_bench_seed_killed_then_resumed(tmp_path, seed):
    out = tmp_path / "study"
    args = ["bench", "seed", "--preset", "tiny", "--methods", "lowpass-0.05,gaussian"]
    args += ["--out", str(out)]
    cells = out / "cells"
    _kill_after(args, lambda: any(cells.glob("*__snr*.json")), seed, max_delay=0.5)
    _check_json_files(out)
    for path in _outputs(out, "*.npz"):
        with np.load(path) as data:
            for key in data.files:
                np.asarray(data[key])
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert len(results["results"]) == 2 * len(results["snr_levels"])
    assert (out / "report.html").is_file()
    _check_json_files(out)
