"""`cryoden simulate`: the library's defaults and parameter errors, shown with the CLI's flags."""

from __future__ import annotations

import sys

import pytest

from cryoden.cli.main import main
from cryoden.cli.simulate import FLAGS
from cryoden.simulation.config import SimulationConfig


def _run(capsys, monkeypatch, *args):
    monkeypatch.setattr(sys, "argv", ["cryoden", "simulate", *map(str, args)])
    with pytest.raises(SystemExit) as info:
        main()
    captured = capsys.readouterr()
    return info.value.code, captured.out + captured.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--size", "8"], "--size must be in [16, 16384], got 8"),
        (["--seed", "-1"], "--seed must be >= 0, got -1"),
        (["--noise-model", "speckle"], "--noise-model must be one of gaussian, poisson, got 'speckle'"),
        (["--dose", "20"], "--dose needs --noise-model 'poisson'"),
        (["--ctf-defocus", "1e4", "--cs", "-1"], "--cs must be >= 0"),
    ],
)
def test_parameter_errors_name_the_flags(capsys, monkeypatch, tmp_path, args, message):
    code, text = _run(capsys, monkeypatch, "--out", tmp_path / "o", "--snr", "0.1", *args)
    assert code != 0
    assert message in text and len(text.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_help_shows_the_library_defaults(capsys, monkeypatch):
    code, text = _run(capsys, monkeypatch, "--help")
    assert code == 0
    for flag in ["--n-images", "--size", "--pixel-size", "--seed", "--voltage", "--ctf-bfactor"]:
        assert flag in text
    assert str(SimulationConfig.n_images) in text and "groel" in text


def test_every_mapped_parameter_exists():
    from cryoden.simulation.ctf import CtfParams

    names = set(SimulationConfig.__dataclass_fields__) | set(CtfParams.__dataclass_fields__)
    assert set(FLAGS) <= names
