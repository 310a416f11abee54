"""Run the ``cryoden`` console entry point in-process and capture what a user sees."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import pytest

from cryoden.cli.main import main


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys, monkeypatch):
    def run(*args: str) -> CliResult:
        monkeypatch.setattr(sys, "argv", ["cryoden", *map(str, args)])
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run
