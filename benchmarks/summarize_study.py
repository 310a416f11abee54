"""Summarise a finished seed study (``cryoden bench seed``) into ``benchmarks/results/``.

The study's own ``OUT/results.json`` holds every cell; this script keeps what the project's
results page reports of a run, with the run's provenance (cryoden version, git commit, machine,
command):

- per method and SNR: PSNR and CC against the clean test images, and the status of the cell;
- per learned method: its PSNR at the lowest and highest SNR, whether it rises at every SNR step,
  whether its CC beats the noisy input's at every SNR, and its smallest CC margin over the noisy
  input; its gap to the supervised ceiling at every SNR where both have scores;
- the study's wall time (``wall_seconds``, measured by the study itself).

    python benchmarks/summarize_study.py results/quick --json benchmarks/results/study_quick_seed0.json \\
        --command "bash scripts/run.sh" --description "The quick study on the landed code."
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from provenance import run_provenance  # benchmarks/ is on sys.path when run as a script

CEILING = "supervised"


def _series(rows: list[dict[str, Any]], method: str, key: str) -> list[float | None]:
    cells = sorted((r for r in rows if r["method"] == method), key=lambda r: r["snr_index"])
    return [r.get(key) for r in cells]


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    """The summary of one study's ``results.json`` (see the module docstring)."""
    rows = results["results"]
    cc_noisy = [n["cc"] for n in results["noisy"]]
    psnr_noisy = [n["psnr"] for n in results["noisy"]]
    ceiling = _series(rows, CEILING, "psnr") if CEILING in results["methods"] else None
    methods: dict[str, Any] = {}
    for method in results["methods"]:
        psnr = _series(rows, method, "psnr")
        cc = _series(rows, method, "cc")
        status = _series(rows, method, "status")
        entry: dict[str, Any] = {"psnr": psnr, "cc": cc, "status": status}
        entry["learned"] = any("training" in r for r in rows if r["method"] == method)
        known = [p for p in psnr if p is not None]
        if known and len(known) == len(psnr):
            entry["psnr_lowest_snr"] = psnr[0]
            entry["psnr_highest_snr"] = psnr[-1]
            entry["rises_at_every_snr_step"] = all(b > a for a, b in zip(known, known[1:]))
        margins = [c - n if c is not None else None for c, n in zip(cc, cc_noisy)]
        entry["cc_above_noisy_at_every_snr"] = all(m is not None and m > 0 for m in margins)
        entry["smallest_cc_margin_over_noisy"] = min(
            (m for m in margins if m is not None), default=None
        )
        if ceiling is not None and method != CEILING:
            entry["gap_to_supervised_db"] = [
                None if p is None or c is None else p - c for p, c in zip(psnr, ceiling)
            ]
        methods[method] = entry
    return {
        "snr_levels": results["snr_levels"],
        "noisy": {"psnr": psnr_noisy, "cc": cc_noisy},
        "wall_seconds": results["provenance"].get("elapsed_seconds_this_run"),
        "setting": {
            k: results["config"][k]
            for k in (
                "preset", "seed", "image_size", "pixel_size_angstrom", "n_train", "n_val",
                "n_test", "train_steps", "cold_start_factor", "steps_per_epoch", "threads",
                "warm_start", "warm_start_lr_factor", "shared_noise", "methods",
            )
            if k in results["config"]
        },
        "methods": methods,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", type=Path, help="the study's output folder (with results.json)")
    parser.add_argument("--json", type=Path, required=True, help="where to write the summary")
    parser.add_argument("--command", required=True, help="the command that ran the study")
    parser.add_argument("--description", default="", help="one sentence about the run")
    args = parser.parse_args()
    results = json.loads((args.study / "results.json").read_text())
    provenance = run_provenance()
    provenance["command"] = args.command
    provenance["description"] = args.description
    provenance["study_provenance"] = results["provenance"]
    summary = {"provenance": provenance, **summarize(results)}
    args.json.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
