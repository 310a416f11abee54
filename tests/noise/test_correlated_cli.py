"""``cryoden noise --correlation``: correlated Gaussian noise from the command line."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from cryoden.cli.main import main
from cryoden.io import read_mrc, write_mrc
from cryoden.metrics.noise_stats import noise_autocorrelation


def _cli(capsys, monkeypatch, *args):
    monkeypatch.setattr(sys, "argv", ["cryoden", *map(str, args)])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def clean_file(tmp_path):
    yy, xx = np.mgrid[0:256, 0:256]
    image = np.exp(-((yy - 128.0) ** 2 + (xx - 100.0) ** 2) / (2 * 30.0**2)).astype(np.float32)
    path = tmp_path / "clean.mrc"
    write_mrc(path, image, voxel_size_angstrom=2.0)
    return path


def test_anisotropic_correlation_per_axis(capsys, monkeypatch, tmp_path, clean_file):
    out = tmp_path / "noisy.mrc"
    code, _, err = _cli(
        capsys, monkeypatch, "noise", clean_file, "-o", out, "--snr", "0.05",
        "--correlation-x", "0.1", "--correlation-y", "0.3", "--seed", "2",
    )  # fmt: skip
    assert code == 0, err
    noise = read_mrc(out).data - read_mrc(clean_file).data
    measured = noise_autocorrelation(noise, max_lag=1)
    assert measured["x"][0] == pytest.approx(0.1, abs=0.02)
    assert measured["y"][0] == pytest.approx(0.3, abs=0.02)
    record = json.loads((tmp_path / "noisy.mrc.json").read_text())
    assert (record["parameters"]["correlation_x"], record["parameters"]["correlation_y"]) == (
        0.1,
        0.3,
    )


def test_one_correlation_for_both_axes(capsys, monkeypatch, tmp_path, clean_file):
    out = tmp_path / "noisy.mrc"
    code, _, err = _cli(
        capsys, monkeypatch, "noise", clean_file, "-o", out, "--snr", "0.05", "--correlation", "0.4"
    )
    assert code == 0, err
    measured = noise_autocorrelation(read_mrc(out).data - read_mrc(clean_file).data, max_lag=1)
    assert measured["x"][0] == pytest.approx(0.4, abs=0.02)
    assert measured["y"][0] == pytest.approx(0.4, abs=0.02)


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--correlation", "0.9"], "--correlation"),
        (["--correlation", "0.2", "--model", "poisson"], "--model gaussian"),
    ],
)
def test_bad_correlation_options_fail_in_one_line(
    capsys, monkeypatch, tmp_path, clean_file, flags, needle
):
    out = tmp_path / "noisy.mrc"
    code, _, err = _cli(capsys, monkeypatch, "noise", clean_file, "-o", out, "--snr", "0.1", *flags)
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert code != 0 and len(lines) == 1 and needle in lines[0], err
    assert not out.exists()
