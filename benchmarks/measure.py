"""Wall time and peak memory of a command run in a fresh process, for the benchmark scripts.

    from measure import run_measured   # benchmarks/ is on sys.path when run as a script

    wall_s, peak_mib, output = run_measured(["cryoden", "denoise", ...])

Standard library only.
"""

from __future__ import annotations

import subprocess
import sys
import time

#: Runs a command and prints its peak RSS (KiB): started from this small launcher, the command's
#: peak is its own, not the benchmark's (Linux counts memory held before ``exec``).
_LAUNCHER = (
    "import os, subprocess, sys\n"
    "proc = subprocess.Popen(sys.argv[1:])\n"
    "_, status, usage = os.wait4(proc.pid, 0)\n"
    "print(f'PEAK_RSS_KIB {usage.ru_maxrss}', file=sys.stderr)\n"
    "sys.exit(os.waitstatus_to_exitcode(status))\n"
)


def run_measured(cmd: list[str]) -> tuple[float, float, str]:
    """Run ``cmd``; return (wall seconds, its peak RSS in MiB, its output: stdout and stderr).

    Raises ``RuntimeError`` with the output when the command fails."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-S", "-c", _LAUNCHER, *cmd],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        check=False,
    )
    wall = time.perf_counter() - start
    output = proc.stdout.decode()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{output}")
    peak_kib = int(output.rsplit("PEAK_RSS_KIB", 1)[1].split()[0])
    return wall, peak_kib / 1024.0, output
