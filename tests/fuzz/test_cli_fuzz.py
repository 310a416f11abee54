"""The command line under hostile inputs, options and output paths.

For every case: a non-zero exit, exactly one line on stderr naming the file or option, no
traceback, nothing left under an output name, and the inputs unchanged (hashed). The corpus of
bad files is the io fuzz corpus (``fuzz_case``, from conftest.py), driven through ``filter``,
``evaluate`` and ``denoise``; each run is guarded against hangs (a FIFO input must not block).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from cryoden.cli.common import PROVENANCE_NAME
from cryoden.cli.main import main
from cryoden.io import write_mrc
from cryoden.models import ModelConfig, save_model
from cryoden.nets import build_network
from cryoden.nets.config import NetworkConfig


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys, monkeypatch, hang_guard):
    def run(*args: object) -> Result:
        monkeypatch.setattr(sys, "argv", ["cryoden", *map(str, args)])
        code = 0
        with hang_guard(20.0):
            try:
                main()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    config = NetworkConfig(depth=2, base_channels=4)
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("model")
    return save_model(folder / "m.safetensors", build_network(config), ModelConfig(network=config))


@pytest.fixture
def images(tmp_path) -> dict[str, Path]:
    """Two valid 32x32 images, a constant one and one with a NaN, in ``tmp_path/in``."""
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(0)
    paths = {name: folder / f"{name}.mrc" for name in ("a", "b", "flat", "nan")}
    write_mrc(paths["a"], rng.normal(size=(32, 32)).astype(np.float32))
    write_mrc(paths["b"], rng.normal(size=(32, 32)).astype(np.float32))
    write_mrc(paths["flat"], np.ones((32, 32), np.float32))
    raw = bytearray(paths["a"].read_bytes())
    raw[1024:1028] = np.float32(np.nan).tobytes()
    paths["nan"].write_bytes(bytes(raw))
    return paths


def hashes(folder: Path) -> dict[str, str]:
    """Content hash of every regular file under ``folder`` (links and FIFOs not followed)."""
    found = {}
    for root, _dirs, files in os.walk(folder):
        for name in files:
            path = Path(root) / name
            if path.is_symlink() or not path.is_file():
                continue
            found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def assert_one_error(result: Result, *needles: str) -> str:
    assert result.code != 0, (result.out, result.err)
    assert "Traceback" not in result.err + result.out
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("cryoden: error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def assert_one_failed_input(result: Result, *needles: str) -> str:
    """A batch command (filter, denoise) with one input it cannot process: status 1, no
    traceback, and exactly one error line, naming the file and the problem; the batch may log
    (the denoiser it made, its progress, the good inputs' voxel sizes), nothing else."""
    assert result.code == 1, (result.out, result.err)
    assert "Traceback" not in result.err + result.out
    lines = result.err.strip().splitlines()
    errors = [line for line in lines if line.startswith("cryoden: error: ")]
    assert len(errors) == 1, result.err
    others = [line for line in lines if line not in errors]
    assert all(line.startswith(("INFO ", "WARNING ", " ")) for line in others), result.err
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    return errors[0]


def leftovers(out: Path) -> list[str]:
    """Files under the output name(s), temporaries included."""
    if not out.exists() or out.is_file():
        return []
    return sorted(str(p.relative_to(out)) for p in out.rglob("*"))


# ------------------------------------------------------------------------------ the corpus


def _corpus_run(
    cli, fuzz_case, args: list[object], out: Path, *, refusals: tuple[str, ...] = ()
) -> None:
    """Run the batch command ``args`` on a corpus file: success where the io layer reads it
    (unless the command refuses it with a message holding one of ``refusals``), else the file
    fails alone: one error line naming it, status 1, no output."""
    corpus = fuzz_case.path.parent
    before = hashes(corpus)
    result = cli(*args)
    after = hashes(corpus)
    assert before == after, "an input changed"
    refused = result.code != 0 and any(phrase in result.err for phrase in refusals)
    if (fuzz_case.expect == "ok" and not refused) or (
        fuzz_case.expect == "either" and result.code == 0
    ):
        assert result.code == 0, result.err
        return
    line = assert_one_failed_input(result)
    named = fuzz_case.path.name.replace("\n", "\\n")
    assert named in line or str(fuzz_case.path.parent.name) in line, line
    assert leftovers(out) == [], "output left behind"
    assert not out.exists()


def test_filter_corpus(cli, fuzz_case, tmp_path):
    out = tmp_path / "out"
    _corpus_run(cli, fuzz_case, ["filter", "mean", fuzz_case.path, "-o", out], out)


def test_evaluate_corpus(cli, fuzz_case, tmp_path, images):
    args = ["evaluate", "-r", images["a"], fuzz_case.path, "--json"]
    corpus = fuzz_case.path.parent
    before = hashes(corpus)
    result = cli(*args)
    assert hashes(corpus) == before
    if result.code == 0:  # a readable file of another shape is refused; a 32x32 one is scored
        json.loads(result.out)
        return
    assert_one_error(result)


def test_denoise_corpus(cli, fuzz_case, tmp_path, tiny_model):
    out = tmp_path / "den"
    args = ["denoise", "--model", tiny_model, fuzz_case.path, "-o", out, "--threads", "1"]
    refusals = ("denoising needs at least", "is a 3D volume")  # a 2D model refuses volumes
    _corpus_run(cli, fuzz_case, args, out, refusals=refusals)


def test_models_info_corpus(cli, fuzz_case):
    """Every corpus file given as a model is refused in one line (never unpickled)."""
    result = cli("models", "info", fuzz_case.path)
    assert_one_error(result)
    assert not (fuzz_case.path.parent / "UNPICKLED").exists()


# ------------------------------------------------------------------------------ bad options

BAD_FILTER = [
    (["gaussian", "--sigma", "nan"], "--sigma"),
    (["gaussian", "--sigma", "inf"], "--sigma"),
    (["gaussian", "--sigma", "-1"], "--sigma"),
    (["gaussian", "--sigma", "1e9"], "--sigma"),
    (["gaussian", "--sigma", "200"], "--sigma"),  # kernel larger than the 32x32 image
    (["mean", "--size", "-1"], "--size"),
    (["mean", "--size", "4"], "--size"),
    (["mean", "--size", "1e9"], "--size"),
    (["median", "--size", "1000000001"], "--size"),
    (["median", "--size", "nan"], "--size"),
    (["mean", "--size", "2001"], "--size"),  # larger than the image
    (["lowpass", "--cutoff", "nan"], "--cutoff"),
    (["lowpass", "--cutoff", "inf"], "--cutoff"),
    (["lowpass", "--cutoff", "-1"], "--cutoff"),
    (["lowpass", "--cutoff", "1e9"], "--cutoff"),
    (["lowpass", "--cutoff", "0"], "--cutoff"),
    (["lowpass"], "--cutoff"),
    (["lowpass", "--cutoff", "0.1", "--edge", "wobbly"], "--edge"),
    (["bandpass", "--cutoff", "0.2", "--low-cutoff", "nan"], "--low-cutoff"),
    (["bandpass", "--cutoff", "0.2", "--low-cutoff", "0.5"], "--low-cutoff"),
    (["bandpass", "--cutoff", "0.2", "--low-cutoff", "-1"], "--low-cutoff"),
    (["nonsense"], "nonsense"),
    (["mean", "--bogus"], "--bogus"),
]


@pytest.mark.parametrize(("args", "needle"), BAD_FILTER)
def test_filter_bad_options(cli, tmp_path, images, args, needle):
    before = hashes(tmp_path / "in")
    name, *options = args
    result = cli("filter", name, images["a"], "-o", tmp_path / "out", *options)
    assert_one_error(result, needle)
    assert not (tmp_path / "out").exists()
    assert hashes(tmp_path / "in") == before


BAD_DENOISE = [
    (["--device", "bogus"], "--device"),
    (["--device", "cuda:99"], "--device"),
    (["--device", "cpu:3"], "--device"),
    (["--memory-mb", "nan"], "--memory-mb"),
    (["--memory-mb", "inf"], "--memory-mb"),
    (["--memory-mb", "-1"], "--memory-mb"),
    (["--memory-mb", "0"], "--memory-mb"),
    (["--tile", "0"], "--tile"),
    (["--tile", "-1"], "--tile"),
    (["--tile", "1e9"], "--tile"),
    (["--tile", "1000000000"], "--tile"),
    (["--batch", "0"], "--batch"),
    (["--batch", "nan"], "--batch"),
    (["--threads", "0"], "--threads"),
    (["--threads", "-4"], "--threads"),
    (["--threads", "100000"], "--threads"),
    (["--precision", "fp8"], "--precision"),
    (["--backend", "tensorflow"], "--backend"),
]
if not torch.cuda.is_available():
    BAD_DENOISE.append((["--device", "cuda"], "--device"))


@pytest.mark.parametrize(("args", "needle"), BAD_DENOISE)
def test_denoise_bad_options(cli, tmp_path, images, tiny_model, args, needle):
    before = hashes(tmp_path / "in")
    result = cli("denoise", "--model", tiny_model, images["a"], "-o", tmp_path / "out", *args)
    line = assert_one_error(result, needle)
    if "--device" in args:
        assert "cpu" in line  # the devices this machine has are listed
    assert not (tmp_path / "out").exists()
    assert hashes(tmp_path / "in") == before


BAD_NOISE = [
    (["--snr", "nan"], "--snr"),
    (["--snr", "inf"], "--snr"),
    (["--snr", "-1"], "--snr"),
    (["--snr", "0"], "--snr"),
    (["--snr", "0.1", "--seed", "-1"], "--seed"),
    (["--dose", "nan"], "--dose"),
    (["--dose", "-5"], "--dose"),
    (["--dose", "5", "--pixel-size", "inf"], "--pixel-size"),
    (["--snr", "0.1", "--read-noise", "nan"], "--read-noise"),
    (["--snr", "0.1", "--model", "laplace"], "--model"),
]


@pytest.mark.parametrize(("args", "needle"), BAD_NOISE)
def test_noise_bad_options(cli, tmp_path, images, args, needle):
    before = hashes(tmp_path / "in")
    out = tmp_path / "noisy.mrc"
    assert_one_error(cli("noise", images["a"], "-o", out, *args), needle)
    assert not out.exists() and not Path(f"{out}.json").exists()
    assert hashes(tmp_path / "in") == before


BAD_TRAIN = [
    (["--epochs", "0"], "--epochs"),
    (["--epochs", "-1"], "--epochs"),
    (["--epochs", "1e9"], "--epochs"),
    (["--max-minutes", "nan"], "--max-minutes"),
    (["--max-minutes", "inf"], "--max-minutes"),
    (["--max-minutes", "-1"], "--max-minutes"),
    (["--lr", "nan"], "--lr"),
    (["--lr", "inf"], "--lr"),
    (["--lr", "-0.1"], "--lr"),
    (["--lr", "1e9"], "--lr"),
    (["--patch", "0"], "--patch"),
    (["--patch", "1000000000"], "--patch"),
    (["--batch", "-2"], "--batch"),
    (["--steps-per-epoch", "0"], "--steps-per-epoch"),
    (["--threads", "0"], "--threads"),
    (["--seed", "-1"], "--seed"),
    (["--patience", "0"], "--patience"),
    (["--kernel", "4"], "--kernel"),
    (["--kernel", "1001"], "--kernel"),
    (["--depth", "0"], "--depth"),
    (["--depth", "100"], "--depth"),
    (["--base-channels", "100000"], "--base-channels"),
    (["--space-to-depth", "3"], "--space-to-depth"),
    (["--loss", "huber"], "--loss"),
    (["--arch", "transformer"], "--arch"),
    (["--device", "bogus"], "--device"),
    (["--variant", "n2v3"], "--variant"),
]


@pytest.mark.parametrize(("args", "needle"), BAD_TRAIN)
def test_train_bad_options(cli, tmp_path, images, args, needle):
    before = hashes(tmp_path / "in")
    out = tmp_path / "model"
    assert_one_error(cli("train", "n2v", "--images", tmp_path / "in", "--out", out, *args), needle)
    assert not out.exists()
    assert hashes(tmp_path / "in") == before


BAD_SIMULATE = [
    (["--snr", "nan"], "--snr"),
    (["--snr", "0.1,inf"], "--snr"),
    (["--snr", "-1"], "--snr"),
    (["--snr", "0.1", "--size", "1000000000"], "--size"),
    (["--snr", "0.1", "--size", "-1"], "--size"),
    (["--snr", "0.1", "--n-images", "0"], "--n-images"),
    (["--snr", "0.1", "--pixel-size", "nan"], "--pixel-size"),
    (["--snr", "0.1", "--ctf-defocus", "inf"], "--ctf-defocus"),
    (["--snr", "0.1", "--amplitude-contrast", "2"], "--amplitude-contrast"),
    (["--snr", "0.1", "--noise-model", "laplace"], "--noise-model"),
    (["--snr", "0.1", "--phantom", "unicorn"], "--phantom"),
    (["--dose", "-1"], "--dose"),
]


@pytest.mark.parametrize(("args", "needle"), BAD_SIMULATE)
def test_simulate_bad_options(cli, tmp_path, args, needle):
    out = tmp_path / "sim"
    assert_one_error(cli("simulate", "--out", out, *args), needle)
    assert not out.exists()


# ------------------------------------------------------------------------------ paths


def test_output_folder_is_a_file_or_under_one(cli, tmp_path, images, tiny_model):
    blocker = tmp_path / "blocker"
    blocker.write_text("keep me")
    before = hashes(tmp_path)
    for out in (blocker, blocker / "sub"):
        for args in (
            ["filter", "mean", images["a"], "-o", out],
            ["denoise", "--model", tiny_model, images["a"], "-o", out],
            ["noise", images["a"], "-o", out / "x.mrc", "--snr", "0.1"],
            ["simulate", "--out", out, "--snr", "0.1", "--n-images", "1", "--size", "16"],
        ):
            assert_one_error(cli(*args), "blocker")
    assert hashes(tmp_path) == before


def test_output_onto_an_input_is_refused(cli, tmp_path, images, tiny_model):
    before = hashes(tmp_path / "in")
    for args in (
        ["filter", "mean", images["a"], "-o", tmp_path / "in"],
        ["denoise", "--model", tiny_model, images["a"], "-o", tmp_path / "in"],
        ["noise", images["a"], "-o", images["a"], "--snr", "0.1"],
    ):
        assert_one_error(cli(*args), "a.mrc")
    assert hashes(tmp_path / "in") == before
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == sorted(
        p.name for p in images.values()
    )


def test_symlink_loop_and_fifo_inputs(cli, tmp_path, images, tiny_model):
    loop = tmp_path / "in" / "loop.mrc"
    os.symlink(tmp_path / "in" / "loop2.mrc", loop)
    os.symlink(loop, tmp_path / "in" / "loop2.mrc")
    fifo = tmp_path / "in" / "fifo.mrc"
    os.mkfifo(fifo)
    for bad in (loop, fifo):
        for args in (
            ["filter", "mean", images["a"], bad, "-o", tmp_path / "out"],
            ["denoise", "--model", tiny_model, images["a"], bad, "-o", tmp_path / "out"],
        ):
            result = cli(*args)
            if bad == loop:  # names no file: refused before any work
                assert_one_error(result, bad.name)
                assert not (tmp_path / "out").exists()
            else:  # a file that cannot be read fails alone; the good input is processed
                assert_one_failed_input(result, bad.name)
                assert sorted(p.name for p in (tmp_path / "out").glob("*.mrc")) == ["a.mrc"]
                shutil.rmtree(tmp_path / "out")
        for args in (
            ["evaluate", "-r", images["a"], bad],
            ["evaluate", "-r", bad, images["a"]],
            ["noise", bad, "-o", tmp_path / "n.mrc", "--snr", "0.1"],
        ):
            assert_one_error(cli(*args), bad.name)
            assert not (tmp_path / "n.mrc").exists()


@pytest.mark.parametrize("command", ["filter", "denoise"])
def test_nan_second_input_is_reported_and_the_first_written(
    cli, tmp_path, images, tiny_model, command
):
    args = ["filter", "mean"] if command == "filter" else ["denoise", "--model", tiny_model]
    result = cli(*args, images["a"], images["nan"], "-o", tmp_path / "out")
    assert_one_failed_input(result, "nan.mrc", "NaN")
    assert "1 succeeded" in result.out and "1 failed" in result.out
    assert sorted(p.name for p in (tmp_path / "out").glob("*.mrc")) == ["a.mrc"]


@pytest.mark.parametrize("command", ["filter", "denoise"])
def test_a_batch_of_only_bad_inputs_leaves_no_output(cli, tmp_path, images, tiny_model, command):
    args = ["filter", "mean"] if command == "filter" else ["denoise", "--model", tiny_model]
    result = cli(*args, images["nan"], "-o", tmp_path / "out")
    assert_one_failed_input(result, "nan.mrc", "NaN")
    assert not (tmp_path / "out").exists()


def test_constant_reference_names_the_reference(cli, images):
    line = assert_one_error(cli("evaluate", "-r", images["flat"], images["a"]), "flat.mrc")
    assert "data_range" not in line


def test_truncated_gzip_is_named(cli, tmp_path, images):
    import gzip

    bad = tmp_path / "in" / "cut.mrc.gz"
    bad.write_bytes(gzip.compress(images["a"].read_bytes())[:-300])
    line = assert_one_error(cli("filter", "mean", bad, "-o", tmp_path / "out"), "cut.mrc.gz")
    assert "Aborted" not in line
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------ outputs


def test_two_denoise_runs_keep_both_provenance_records(cli, tmp_path, images, tiny_model):
    out = tmp_path / "out"
    assert cli("denoise", "--model", tiny_model, images["a"], "-o", out).code == 0
    assert cli("denoise", "--model", tiny_model, images["b"], "-o", out).code == 0
    record = json.loads((out / PROVENANCE_NAME).read_text())
    assert record["parameters"]["inputs"] == [str(images["b"])]
    (first,) = record["earlier_runs"]
    assert first["parameters"]["inputs"] == [str(images["a"])]
    assert first["parameters"]["outputs"] == [str(out / "a.mrc")]
    names = ["a.mrc", "b.mrc", PROVENANCE_NAME, "preview.png"]  # the preview of the last run
    assert sorted(p.name for p in out.iterdir()) == sorted(names)


def test_evaluate_json_is_strict_for_an_infinite_psnr(cli, images):
    result = cli("evaluate", "-r", images["a"], images["a"], "--json")
    assert result.code == 0, result.err
    rows = json.loads(result.out, parse_constant=lambda name: pytest.fail(f"{name} in JSON"))
    assert rows[0]["psnr"] == "inf"


def _cryoden(*args: object, **kwargs) -> subprocess.CompletedProcess:
    code = "from cryoden.cli.main import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, args)], capture_output=True, timeout=60, **kwargs
    )


def test_stdout_to_a_full_disk_is_one_line(images):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-c", "from cryoden.cli.main import main; main()",
             "evaluate", "-r", str(images["a"]), str(images["a"]), "--json"],
            stdout=full, stderr=subprocess.PIPE, timeout=60,
        )  # fmt: skip
    err = done.stderr.decode()
    assert done.returncode != 0 and "Traceback" not in err
    assert err.strip().splitlines() == ["cryoden: error: standard output: cannot write: "
                                        "No space left on device"]  # fmt: skip


def test_stdout_to_a_closed_pipe_exits_quietly(images):
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written
    try:
        done = subprocess.run(
            [sys.executable, "-c", "from cryoden.cli.main import main; main()",
             "evaluate", "-r", str(images["a"]), str(images["a"]), "--json"],
            stdout=write_end, stderr=subprocess.PIPE, timeout=60,
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert done.returncode == 141, done.stderr
    assert done.stderr.decode() == ""


def test_simulate_help_shows_plain_defaults():
    done = _cryoden("simulate", "--help", env={**os.environ, "COLUMNS": "200"})
    text = done.stdout.decode()
    assert "[default: 16]" in text and "[default: (" not in text
