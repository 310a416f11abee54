"""Provenance of a benchmark run: cryoden version, git commit, machine, command and date.

Every file in ``benchmarks/results/`` carries this record under the key ``"provenance"``, which
``scripts/make_results_doc.py`` shows beside each run. A benchmark script adds it just before
writing its JSON::

    from provenance import run_provenance   # benchmarks/ is on sys.path when run as a script

    results = {"provenance": run_provenance(), **results}

Standard library only (PyTorch is asked about a GPU only when it is already imported).
"""

from __future__ import annotations

import datetime
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def git_commit(repo: Path = REPO) -> str:
    """The checked-out commit's full hash, with ``-dirty`` when tracked files differ from it.

    ``"unknown"`` outside a git checkout (an installed copy of the scripts).
    """
    try:
        head = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def machine_description() -> str:
    """One line: usable CPU cores, CPU model, AVX-512 / bf16 support, GPU (or "no GPU")."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    flags = _cpu_flags()
    vector = "AVX-512" if "avx512f" in flags else ("AVX2" if "avx2" in flags else "no AVX-512")
    bf16 = " with bf16" if {"avx512_bf16", "amx_bf16"} & flags else ""
    gpu = "no GPU"
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        gpu = "GPU " + torch.cuda.get_device_name(0)
    return f"{cores} CPU cores ({_cpu_model()}), {vector}{bf16}, {gpu}"


def run_provenance(argv: list[str] | None = None) -> dict[str, str]:
    """The provenance record of this process: version, commit, date, machine, command line."""
    try:
        from importlib.metadata import version

        cryoden_version = version("cryoden")
    except Exception:  # noqa: BLE001 - not installed: the record says so
        cryoden_version = "unknown"
    args = sys.argv if argv is None else argv
    script = Path(args[0])
    try:
        script = script.resolve().relative_to(REPO)
    except ValueError:
        pass
    return {
        "cryoden_version": cryoden_version,
        "git_commit": git_commit(),
        "date": datetime.date.today().isoformat(),
        "machine": machine_description(),
        "command": shlex.join(["python", script.as_posix(), *args[1:]]),
    }
