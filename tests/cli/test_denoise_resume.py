"""A denoise batch killed with ``kill -9`` mid-batch is finished by running the same command
again: the outputs it left are complete and are kept (skipped, not rewritten), the rest are
denoised, and every output equals an uninterrupted run's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from cryoden.io import read_mrc, write_mrc
from cryoden.io.atomic import TEMP_SUFFIX
from cryoden.models import ModelConfig, save_model
from cryoden.nets import NetworkConfig, build_network

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]

N_IMAGES = 8


@pytest.fixture
def batch(tmp_path):
    config = NetworkConfig(depth=2, base_channels=4)
    torch.manual_seed(0)
    model = save_model(tmp_path / "m.safetensors", build_network(config), ModelConfig(config))
    (tmp_path / "in").mkdir()
    for i in range(N_IMAGES):
        data = np.random.default_rng(i).normal(size=(128, 128)).astype(np.float32)
        write_mrc(tmp_path / "in" / f"img{i}.mrc", data)
    return model, tmp_path / "in"


def _finals(folder):
    return sorted(p for p in folder.glob("*.mrc") if not p.name.endswith(TEMP_SUFFIX))


def test_killed_batch_is_finished_by_a_rerun(cli, tmp_path, batch):
    model, inputs = batch
    args = ["denoise", "-m", str(model), str(inputs), "--threads", "1", "--no-preview"]
    reference = cli(*args, "-o", tmp_path / "reference")
    assert reference.code == 0, reference.err
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cryoden.cli.main", *args, "-o", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while proc.poll() is None and len(_finals(out) if out.exists() else []) < 2:
        assert time.monotonic() < deadline, "the batch never wrote an output"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)  # mid-batch (or just after its end, on a fast machine)
    proc.wait(timeout=30)
    left = {p: (os.stat(p).st_ino, os.stat(p).st_mtime_ns) for p in _finals(out)}
    for path in left:  # whatever carries a final name is a complete, valid output
        assert read_mrc(path).data.shape == (128, 128)
    rerun = cli(*args, "-o", out)
    assert rerun.code == 0, rerun.err
    assert f"{N_IMAGES - len(left)} succeeded, {len(left)} skipped" in rerun.out
    for path, stamp in left.items():  # kept, not rewritten
        assert (os.stat(path).st_ino, os.stat(path).st_mtime_ns) == stamp
    names = [p.name for p in _finals(out)]
    assert names == [p.name for p in _finals(tmp_path / "reference")]
    for name in names:
        np.testing.assert_array_equal(
            read_mrc(out / name).data, read_mrc(tmp_path / "reference" / name).data
        )
