"""`cryoden bench tomo`: a tiny run through the command, and bad input in one line."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from cryoden.benchmark.tomo import TomoStudyConfig
from cryoden.cli.bench_tomo import FLAGS

from .tomo_helpers import TEST_CLUMPS, TRAIN_CLUMPS, particle_map, run_cli


@pytest.fixture
def cli(capsys, monkeypatch):
    def run(*args):
        code, out, err = run_cli(capsys, monkeypatch, *args)
        return SimpleNamespace(code=code, out=out, err=err)

    return run


@pytest.fixture
def maps(tmp_path):
    return (
        particle_map(tmp_path / "a.mrc", TRAIN_CLUMPS, 1),
        particle_map(tmp_path / "b.mrc", TEST_CLUMPS, 2),
    )


def test_a_tiny_study_through_the_command(cli, tmp_path, maps, one_thread):
    train, test = maps
    out = tmp_path / "study"
    result = cli("bench", "tomo", "--preset", "tiny", "--out", out, "--train-structures", train,
                 "--test-structures", test, "--methods", "n2n,gaussian", "--snr", "0.2",
                 "--seed", "2")  # fmt: skip
    assert result.code == 0, result.err
    results = json.loads((out / "results.json").read_text())
    assert {r["method"] for r in results["results"]} == {"n2n", "gaussian"}
    assert results["snr_levels"] == [0.2] and results["config"]["seed"] == 2
    assert (out / "report.html").is_file() and (out / "cryoden_provenance.json").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--test-structures", "missing.pdb"], "missing.pdb: structure file not found"),
        (["--test-structures", "{test}", "--methods", "n2n,bm4d"], "--methods: unknown bm4d"),
        (["--test-structures", "{test}", "--snr", "0.1,x"], "--snr must be numbers"),
        (["--test-structures", "{test}", "--snr", "-1"], "--snr must be > 0"),
        (["--test-structures", "{test}", "--train-structures", "{test}"], "must differ"),
    ],
)
def test_bad_input_fails_in_one_line_without_output(cli, tmp_path, maps, args, message):
    out = tmp_path / "o"
    args = [a.replace("{test}", maps[1]) for a in args]
    result = cli("bench", "tomo", "--preset", "tiny", "--out", out, *args)
    assert result.code != 0
    assert message in result.err and len(result.err.strip().splitlines()) == 1
    assert not out.exists()


def test_every_mapped_parameter_exists():
    assert set(FLAGS) <= set(TomoStudyConfig.__dataclass_fields__)


def test_help_shows_an_example_and_flags_as_flags(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # no example line wrapped
    result = cli("bench", "tomo", "--help")
    assert result.code == 0, result.err
    lines = [line.strip() for line in result.out.splitlines()]
    assert any(line.startswith("cryoden bench tomo --quick ") for line in lines)
    assert "--test-structures" in result.out and "<bool>" not in result.out
