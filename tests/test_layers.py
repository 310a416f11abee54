"""The layer contract of docs/ARCHITECTURE.md holds: `lint-imports` finds no upward import.

The contract itself is `[tool.importlinter]` in pyproject.toml; this test runs it and checks that
it names the same layers, in the same order, as the architecture page.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = None


def _lint_imports() -> str | None:
    beside = Path(sys.executable).with_name("lint-imports")
    return str(beside) if beside.exists() else shutil.which("lint-imports")


def test_lint_imports_keeps_the_layer_contract():
    command = _lint_imports()
    if command is None:
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    result = subprocess.run(
        [command, "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(tomllib is None, reason="tomllib needs Python 3.11")
def test_contract_matches_the_architecture_page():
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    (contract,) = config["tool"]["importlinter"]["contracts"]
    assert contract["type"] == "layers" and contract["containers"] == ["cryoden"]
    assert "ignore_imports" not in contract and "exhaustive_ignores" not in contract
    layers = [[name.strip() for name in layer.split("|")] for layer in contract["layers"]]

    page = (REPO / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    block = page.split("## Layers and dependency direction", 1)[1].split("```")[1]
    documented = [
        [name.strip() for name in re.split(r"\s+\|\s+", line.split("  ")[0].strip())]
        for line in block.strip().splitlines()
    ]
    assert layers == documented[::-1]
