"""``cryoden bench seed``: options, one-line errors, provenance."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from cryoden.cli.main import app
from cryoden.errors import CryodenError

runner = CliRunner()


def test_help_shows_an_example():
    from cryoden.cli import bench_seed

    assert "cryoden bench seed --quick --out" in bench_seed.__doc__
    result = runner.invoke(app, ["bench", "seed", "--help"])
    assert result.exit_code == 0
    assert "--structure" in result.output and "--methods" in result.output
    assert " min" not in result.output  # no timings: the run's length depends on the machine
    assert "--train-steps" in result.output and "--threads" in result.output
    assert "--train-seconds" not in result.output  # budgets are steps, not wall time


@pytest.mark.slow
def test_runs_and_writes_provenance(tmp_path):
    out = tmp_path / "study"
    args = ["bench", "seed", "--preset", "tiny", "--methods", "lowpass-0.05,gaussian"]
    result = runner.invoke(app, [*args, "--out", str(out), "--seed", "2"])
    assert result.exit_code == 0, result.output
    provenance = json.loads((out / "cryoden_provenance.json").read_text())
    assert provenance["command"] == "bench seed"
    assert provenance["parameters"]["methods"] == ["lowpass-0.05", "gaussian"]
    assert provenance["parameters"]["seed"] == 2
    results = json.loads((out / "results.json").read_text())
    cells = 2 * len(results["snr_levels"])
    assert results["methods"] == ["lowpass-0.05", "gaussian"] and len(results["results"]) == cells
    assert (out / "report.html").is_file()
    again = runner.invoke(app, [*args, "--out", str(out), "--seed", "2"])
    assert again.exit_code == 0 and f"0 cells computed, {cells} reused" in again.output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--structure", "missing.pdb"], "missing.pdb: structure file not found"),
        (["--methods", "n2n-seed5,foo"], "--methods: unknown method 'foo'"),
        (["--methods", "median,median"], "--methods: a method is repeated"),
        (["--seed", "-1"], "--seed must be >= 0"),
        (["--train-steps", "0"], "--train-steps must be >= 1"),
        (["--threads", "0"], "--threads must be in [1, 1024]"),
    ],
)
def test_bad_options_are_user_errors(tmp_path, extra, message):
    result = runner.invoke(app, ["bench", "seed", "--quick", "--out", str(tmp_path / "o"), *extra])
    assert isinstance(result.exception, CryodenError)
    assert message in str(result.exception)
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_unreadable_structure_fails_in_one_line_before_writing(tmp_path):
    bad = tmp_path / "bad.pdb"
    bad.write_text("this is not a PDB file\n")
    out = tmp_path / "o"
    done = subprocess.run(
        [sys.executable, "-m", "cryoden.cli.main", "bench", "seed", "--quick", "--out", str(out),
         "--structure", str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and str(bad) in errors[0], done.stderr
    assert "Traceback" not in done.stderr
    assert not out.exists()
