"""Peak memory of `cryoden train` on many large micrographs: it must not grow with their number.

Synthetic float32 micrographs (Gaussian noise, ``--size``² pixels, default 4096²) are written to
a temporary folder through memory maps (``mrcfile.new_mmap``, filled a band of rows at a time),
so this script never holds one whole. Then, for each count in ``--files`` (default 10 and 200),
the command ``cryoden train n2v --images FOLDER --steps N --threads 1`` runs in a fresh process
on the first that many files, and the peak resident memory of that process (``ru_maxrss`` from
``wait4``, through a small launcher so that this script's own memory is not counted) is
recorded with the limit it must stay under (``--limit-mib``, default 2048 MiB).

The files need ``count × size² × 4`` bytes of disk (200 files of 4096²: about 13.4 GB) in
``--folder`` (default: a temporary folder, removed afterwards).

    python benchmarks/bench_training_memory.py                      # 200 files of 4096²
    python benchmarks/bench_training_memory.py --files 4,10 --size 1024 --json /tmp/dry.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import mrcfile
import numpy as np
from measure import run_measured  # benchmarks/ is on sys.path when run as a script
from provenance import REPO, run_provenance  # benchmarks/ is on sys.path when run as a script

_BAND_ROWS = 256


def write_micrographs(folder: Path, count: int, size: int, *, seed: int = 0) -> list[Path]:
    """``count`` noise micrographs of ``size``² float32 pixels, written through memory maps."""
    paths = []
    for i in range(count):
        path = folder / f"micrograph_{i:04d}.mrc"
        rng = np.random.default_rng([seed, i])
        with mrcfile.new_mmap(path, shape=(size, size), mrc_mode=2, overwrite=True) as mrc:
            for top in range(0, size, _BAND_ROWS):
                rows = min(_BAND_ROWS, size - top)
                mrc.data[top : top + rows] = rng.standard_normal((rows, size), dtype=np.float32)
            mrc.voxel_size = 1.0
        paths.append(path)
    return paths


def train_command(folder: Path, out: Path, args: argparse.Namespace) -> list[str]:
    """The training command a user would run on ``folder``."""
    cryoden = Path(sys.executable).with_name("cryoden")
    return [
        str(cryoden), "train", "n2v", "--images", str(folder), "--out", str(out),
        "--steps", str(args.steps), "--steps-per-epoch", str(args.steps),
        "--patch", str(args.patch), "--batch", str(args.batch), "--threads", "1",
        "--no-preview",
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", default="10,200", help="comma-separated file counts")
    parser.add_argument("--size", type=int, default=4096, help="micrograph side in pixels")
    parser.add_argument("--steps", type=int, default=5, help="optimiser steps per run")
    parser.add_argument("--patch", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--limit-mib", type=float, default=2048.0)
    parser.add_argument("--folder", type=Path, default=None, help="where the files go")
    parser.add_argument("--json", type=Path, default=None, help="results file")
    args = parser.parse_args()
    counts = sorted({int(c) for c in args.files.split(",")})
    need = max(counts) * args.size * args.size * 4 + (1 << 30)
    work = Path(args.folder or tempfile.mkdtemp(prefix="cryoden-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    if shutil.disk_usage(work).free < need:
        raise SystemExit(f"{work}: needs {need / 1e9:.1f} GB free for the micrographs")
    runs = []
    try:
        (work / "all").mkdir(exist_ok=True)
        paths = write_micrographs(work / "all", max(counts), args.size)
        for count in counts:
            folder = work / f"first_{count}"
            folder.mkdir(exist_ok=True)
            for path in paths[:count]:
                os.symlink(path, folder / path.name)
            _, peak, _ = run_measured(train_command(folder, work / f"model_{count}", args))
            runs.append({"files": count, "peak_rss_mib": round(peak, 1)})
            print(f"{count} files of {args.size}²: peak RSS {peak:.0f} MiB", flush=True)
    finally:
        if args.folder is None:
            shutil.rmtree(work, ignore_errors=True)
    results = {
        "provenance": {
            **run_provenance(),
            "description": "peak resident memory of `cryoden train n2v` on synthetic float32 "
            "micrographs read patch by patch from memory maps, one torch thread",
        },
        "setting": {
            "scheme": "n2v",
            "size_px": args.size,
            "steps": args.steps,
            "patch": args.patch,
            "batch": args.batch,
            "threads": 1,
            "limit_mib": args.limit_mib,
        },  # fmt: skip
        "runs": runs,
        "under_limit": all(r["peak_rss_mib"] < args.limit_mib for r in runs),
    }
    date = datetime.date.today().isoformat()
    out = args.json or REPO / "benchmarks" / "results" / f"training_memory_{date}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
