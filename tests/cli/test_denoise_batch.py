"""`cryoden denoise` and `filter` as batch commands: inputs from folders, glob patterns and
cryoSPARC files, outputs mirroring the input folders, reruns that skip complete outputs and
redo stale ones, one bad file among good ones, progress and --quiet, and a local Dask cluster
giving the same outputs as one process."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from cryoden.io import read_mrc, write_mrc
from cryoden.models import ModelConfig, save_model
from cryoden.nets import NetworkConfig, build_network

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    config = NetworkConfig(depth=2, base_channels=4)
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("model")
    return save_model(folder / "m.safetensors", build_network(config), ModelConfig(config))


@pytest.fixture
def tree(tmp_path):
    """``in/a/x.mrc``, ``in/a/y.mrc``, ``in/b/x.mrc`` (same name, other folder) and a stack
    ``in/b/s.mrcs``: 32x40 seeded noise, 1.25 Å pixels."""
    files = {}
    for i, rel in enumerate(("a/x.mrc", "a/y.mrc", "b/x.mrc", "b/s.mrcs")):
        path = tmp_path / "in" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        shape = (2, 32, 40) if rel.endswith(".mrcs") else (32, 40)
        data = np.random.default_rng(i).normal(size=shape).astype(np.float32)
        write_mrc(path, data, voxel_size_angstrom=1.25)
        files[rel] = path
    return files


def _mrcs(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*.mrc*"))


def _error_lines(result):
    return [line for line in result.err.splitlines() if line.startswith("cryoden: error: ")]


def test_outputs_mirror_the_input_folders(cli, tmp_path, tree, model, monkeypatch):
    out = tmp_path / "out"
    r = cli("denoise", "-m", model, tmp_path / "in" / "**" / "*.mrc*", "-o", out, "--threads", "1")
    assert r.code == 0, r.err
    assert _mrcs(out) == ["a/x.mrc", "a/y.mrc", "b/s.mrcs", "b/x.mrc"]
    for rel, source in tree.items():
        denoised, raw = read_mrc(out / rel), read_mrc(source)
        assert denoised.data.shape == raw.data.shape
        assert denoised.voxel_size_angstrom == raw.voxel_size_angstrom
    assert "4 succeeded, 0 skipped" in r.out and "0 failed" in r.out
    # a folder: its files, with plain names
    r = cli("filter", "mean", tmp_path / "in" / "a", "-o", tmp_path / "fa")
    assert r.code == 0, r.err
    assert _mrcs(tmp_path / "fa") == ["x.mrc", "y.mrc"]


def test_cryosparc_exposures_are_inputs(cli, tmp_path, tree, monkeypatch):
    monkeypatch.chdir(tmp_path)  # cryoSPARC paths are relative to its project folder
    exposures = np.zeros(2, dtype=[("uid", "<u8"), ("micrograph_blob/path", "S32")])
    exposures["micrograph_blob/path"] = [b"in/a/x.mrc", b"in/a/y.mrc"]
    with open(tmp_path / "exposures.cs", "wb") as handle:
        np.save(handle, exposures)
    r = cli("filter", "gaussian", "exposures.cs", "-o", "out")
    assert r.code == 0, r.err
    assert _mrcs(tmp_path / "out") == ["x.mrc", "y.mrc"]


def test_a_rerun_skips_complete_outputs_and_redoes_stale_ones(cli, tmp_path, tree, model):
    out = tmp_path / "out"
    args = ["denoise", "-m", model, tmp_path / "in" / "a", "-o", out, "--threads", "1"]
    assert cli(*args).code == 0
    stamps = {p: os.stat(p).st_mtime_ns for p in out.glob("*.mrc")}
    first = {p: read_mrc(p).data for p in stamps}
    r = cli(*args)
    assert r.code == 0, r.err
    assert "0 succeeded, 2 skipped" in r.out and "already complete" in r.err
    assert {p: os.stat(p).st_mtime_ns for p in stamps} == stamps  # not rewritten
    # other options make the outputs stale: all are redone
    r = cli(*args, "--dtype", "float16")
    assert r.code == 0 and "2 succeeded, 0 skipped" in r.out
    assert all(read_mrc(p).data.dtype == np.float32 for p in stamps)  # mode 12 read back
    # a changed input is redone alone
    write_mrc(tree["a/y.mrc"], np.ones((32, 40), np.float32), voxel_size_angstrom=1.25)
    r = cli(*args, "--dtype", "float16")
    assert "1 succeeded, 1 skipped" in r.out
    # --overwrite redoes everything; the result is the same as the first run's
    r = cli(*args, "--overwrite")
    assert "2 succeeded, 0 skipped" in r.out
    np.testing.assert_array_equal(read_mrc(out / "x.mrc").data, first[out / "x.mrc"])


def test_an_output_that_is_not_complete_is_redone(cli, tmp_path, tree, model):
    out = tmp_path / "out"
    args = ["denoise", "-m", model, tmp_path / "in" / "a", "-o", out, "--threads", "1"]
    assert cli(*args).code == 0
    expected = read_mrc(out / "x.mrc").data
    raw = (out / "x.mrc").read_bytes()
    (out / "x.mrc").write_bytes(raw[: len(raw) // 2])  # a copy cut short, not ours
    write_mrc(out / "y.mrc", np.zeros((32, 40), np.float32))  # some other program's file
    r = cli(*args)
    assert r.code == 0 and "2 succeeded, 0 skipped" in r.out
    np.testing.assert_array_equal(read_mrc(out / "x.mrc").data, expected)


def test_one_bad_file_among_good_ones(cli, tmp_path, tree, model):
    bad = tmp_path / "in" / "a" / "z.mrc"
    bad.write_bytes(tree["a/x.mrc"].read_bytes()[:-200])
    out = tmp_path / "out"
    r = cli("denoise", "-m", model, tmp_path / "in" / "a", "-o", out, "--threads", "1")
    assert r.code == 1
    (line,) = _error_lines(r)
    assert "z.mrc" in line and "truncated" in line
    assert _mrcs(out) == ["x.mrc", "y.mrc"]
    assert "2 succeeded, 0 skipped (already complete), 1 failed, of 3 file(s)" in r.out
    # the options and the model are checked before any work: nothing is written
    r = cli("denoise", "-m", model, tmp_path / "in" / "a", "-o", tmp_path / "o2", "--tile", "0")
    assert r.code != 0 and "--tile" in r.err and not (tmp_path / "o2").exists()


def test_progress_bar_and_quiet(cli, tmp_path, tree, model, monkeypatch):
    args = ["denoise", "-m", model, tmp_path / "in" / "a", "--threads", "1"]
    monkeypatch.setenv("CRYODEN_PROGRESS", "1")  # draw the bar although stderr is no terminal
    r = cli(*args, "-o", tmp_path / "bar")
    assert r.code == 0, r.err
    assert "2/2" in r.err and "/min" in r.err  # images done and the rate
    bad = tmp_path / "in" / "a" / "z.mrc"
    bad.write_bytes(b"not an image" * 100)
    r = cli(*args, "-o", tmp_path / "bar")  # a failure is one line above the bar
    assert r.code == 1 and len(_error_lines(r)) == 1 and "z.mrc" in _error_lines(r)[0]
    bad.unlink()
    monkeypatch.delenv("CRYODEN_PROGRESS")
    r = cli("--quiet", *args, "-o", tmp_path / "quiet")
    assert r.code == 0 and r.err == ""
    assert "2 succeeded" in r.out


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--jobs", "2"], "--jobs apply to --cluster only"),
        (["--cluster", "slurm"], "--memory"),
        (["--cluster", "slurm", "--memory", "2GB", "--workers", "2"], "exactly one of"),
        (["--cluster", "htcondor", "--memory", "2GB"], "--cluster"),
        (["--scheduler", "localhost"], "--scheduler"),
        (["--workers", "0"], "--workers"),
    ],
)
def test_cluster_options_are_checked_before_any_work(cli, tmp_path, tree, model, flags, needle):
    r = cli("denoise", "-m", model, tmp_path / "in" / "a", "-o", tmp_path / "out", *flags)
    assert r.code != 0 and len(_error_lines(r)) == 1 and needle in r.err, r.err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_workers_give_the_outputs_of_one_process(cli, tmp_path, tree, model):
    """A local Dask cluster of two single-threaded worker processes writes what one process
    with one thread writes, bit for bit, and a rerun on it skips them all."""
    inputs = tmp_path / "in" / "**" / "*.mrc*"
    one = cli("denoise", "-m", model, inputs, "-o", tmp_path / "one", "--threads", "1")
    assert one.code == 0, one.err
    many = cli("denoise", "-m", model, inputs, "-o", tmp_path / "many", "--workers", "2")
    assert many.code == 0, many.err
    assert _mrcs(tmp_path / "many") == _mrcs(tmp_path / "one")
    for rel in _mrcs(tmp_path / "one"):
        a, b = read_mrc(tmp_path / "one" / rel), read_mrc(tmp_path / "many" / rel)
        np.testing.assert_array_equal(a.data, b.data)
    # the outputs of one are complete for the other (same model, same options)
    again = cli("denoise", "-m", model, inputs, "-o", tmp_path / "one", "--workers", "2")
    assert again.code == 0 and "0 succeeded, 4 skipped" in again.out
