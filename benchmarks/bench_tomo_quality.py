"""Quality of 3D denoisers on simulated tomograms of structures never trained on.

Runs the tomography study (:mod:`cryoden.benchmark.tomo`, ``quick`` preset: 128 x 128 x 64
voxel tomograms of 8 Å, tilts ±60° in 3° steps, three tilt-image SNRs) with training tomograms
of the embedded GroEL-like phantom and test tomograms crowded with the real 1AON and 1OEL
models (``../shared/data/groel`` by default), and checks:

* 3D Noise2Noise beats the best 3D Gaussian chosen with the clean test tomograms (an oracle) by
  at least 2 dB PSNR, at every SNR;
* 3D Noise2Void beats that Gaussian too.

Then compares candidate 3D U-Nets (``--networks base:depth[:space_to_depth],...``) by quality per FLOP: each
trains 3D Noise2Noise from random weights for the same step budget at one SNR (``--network-snr``)
on the same tomograms, and is scored on the same test tomograms.

    python benchmarks/bench_tomo_quality.py
    python benchmarks/bench_tomo_quality.py --train-steps 100 --networks 8:2 --json /tmp/t.json
    python benchmarks/bench_tomo_quality.py --via-cli --threads 2 --networks ''

``--via-cli`` runs the study as the user's command, ``cryoden bench tomo --quick`` (same
settings), in a fresh process, and records its wall time and peak memory against the quick
mode's time target (``--target-wall-s``): run it alone on the machine.

Budgets are optimiser steps on ``--threads`` torch threads (1 by default): the numbers do not
depend on how busy the machine is; the wall times recorded do.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
from measure import run_measured  # benchmarks/ is on sys.path when run as a script
from provenance import run_provenance

from cryoden.benchmark.tomo import tomo_preset
from cryoden.benchmark.tomo_methods import (
    denoise_volumes,
    mean_psnr,
    oracle_filter,
    train_learned,
)
from cryoden.benchmark.tomo_runner import run_tomo_study, simulate_sets, train_config
from cryoden.nets.analysis import count_parameters, flops_per_pixel
from cryoden.nets.config import NetworkConfig
from cryoden.nets.registry import build_network

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "groel"
DEFAULT_TEST = f"{DATA / '1AON.pdb.gz'},{DATA / '1OEL.pdb'}"
#: What a result file of this script holds (its provenance's description).
DESCRIPTION = (
    "The tomography study (quick preset; trained on tomograms of the GroEL-like phantom, tested "
    "on tomograms of other structures): 3D Noise2Noise and Noise2Void against the oracle 3D "
    "Gaussian and low-pass; and candidate 3D U-Nets trained with Noise2Noise for one step "
    "budget at one SNR, for quality per FLOP."
)
#: The required margin of 3D Noise2Noise over the oracle Gaussian (dB).
N2N_MARGIN_DB = 2.0


def requirement(results: dict) -> dict:
    """Per SNR: each method's PSNR, the margins over the oracle Gaussian and whether the
    requirement holds."""
    by_snr: dict[float, dict[str, float]] = {}
    for row in results["results"]:
        if row.get("psnr") is not None:
            by_snr.setdefault(row["snr"], {})[row["method"]] = row["psnr"]
    noisy = {r["snr"]: r["psnr"] for r in results["noisy"]}
    table = []
    for snr in sorted(by_snr):
        scores = by_snr[snr]
        gaussian = scores.get("gaussian")
        n2n, n2v = scores.get("n2n"), scores.get("n2v")
        table.append({
            "snr": snr,
            "noisy_psnr": noisy.get(snr),
            **{f"{m}_psnr": v for m, v in scores.items()},
            "n2n_minus_gaussian_db": None if n2n is None or gaussian is None else n2n - gaussian,
            "n2v_minus_gaussian_db": None if n2v is None or gaussian is None else n2v - gaussian,
        })  # fmt: skip
    n2n_ok = all((r["n2n_minus_gaussian_db"] or -1e9) >= N2N_MARGIN_DB for r in table)
    n2v_ok = all((r["n2v_minus_gaussian_db"] or -1e9) > 0 for r in table)
    return {"per_snr": table, "n2n_beats_gaussian_by_2db": n2n_ok, "n2v_beats_gaussian": n2v_ok}


def compare_networks(config, candidates, snr, threads) -> tuple[list[dict], dict]:
    """3D Noise2Noise with each candidate network, same data and step budget, at ``snr``; and
    the test tomograms' reconstructed-noise correlation."""
    train_set, test_set, _ = simulate_sets(config)
    noisy = [even for even, _ in test_set.halves(snr)]
    _, gaussian = oracle_filter("gaussian", noisy, test_set.clean, config.gaussian_sigmas_px)
    rows = []
    with tempfile.TemporaryDirectory(prefix="tomo-nets-") as tmp:
        for base, depth, blocks in candidates:
            network = NetworkConfig(
                arch="unet", dims=3, base_channels=base, depth=depth, space_to_depth=blocks
            )
            recipe = train_config(config, "n2n", 0, warm=False)
            start = time.perf_counter()
            model, record = train_learned(
                "n2n",
                train_set.halves(snr),
                network,
                recipe,
                out=Path(tmp) / f"{base}-{depth}-{blocks}.safetensors",
            )
            score = None
            if model is not None:
                score = mean_psnr(test_set.clean, denoise_volumes(model, noisy, threads=threads))
            flops = float(flops_per_pixel(network))
            rows.append({
                "base_channels": base, "depth": depth, "space_to_depth": blocks,
                "flops_per_voxel": flops,
                "parameters": int(count_parameters(build_network(network))),
                "psnr": score, "oracle_gaussian_psnr": max(gaussian["grid_psnr"]),
                "steps": record.get("steps"), "status": record["status"],
                "wall_seconds": round(time.perf_counter() - start, 1),
            })  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)
    return rows, test_set.noise_correlation()


def choose(rows: list[dict], tolerance_db: float = 0.25) -> dict | None:
    """The cheapest network (FLOP per voxel) within ``tolerance_db`` of the best PSNR."""
    scored = [r for r in rows if r["psnr"] is not None]
    if not scored:
        return None
    best = max(r["psnr"] for r in scored)
    close = [r for r in scored if r["psnr"] >= best - tolerance_db]
    pick = min(close, key=lambda r: r["flops_per_voxel"])
    return {"base_channels": pick["base_channels"], "depth": pick["depth"],
            "space_to_depth": pick["space_to_depth"],
            "rule": f"cheapest within {tolerance_db} dB of the best PSNR"}  # fmt: skip


def _run_cli(args: argparse.Namespace, tests: tuple[str, ...], out: Path) -> tuple[dict, dict]:
    """The study as ``cryoden bench tomo --quick`` in a fresh, measured process: its results and
    ``{"wall_s", "peak_rss_mib", "argv"}``."""
    if out.exists():
        shutil.rmtree(out)
    argv = ["bench", "tomo", "--quick", "--out", str(out), "--test-structures", ",".join(tests),
            "--seed", str(args.seed), "--threads", str(args.threads)]  # fmt: skip
    if args.train_structures:
        argv += ["--train-structures", args.train_structures]
    if args.train_steps is not None:
        argv += ["--train-steps", str(args.train_steps)]
    cryoden = Path(sys.executable).with_name("cryoden")
    wall, peak, _ = run_measured([str(cryoden), *argv])
    results = json.loads((out / "results.json").read_text())
    command = {"wall_s": round(wall, 1), "peak_rss_mib": round(peak, 1),
               "argv": ["cryoden", *argv]}  # fmt: skip
    return results, command


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--test-structures", default=DEFAULT_TEST)
    parser.add_argument("--train-structures", default="", help="default: the GroEL-like phantom")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--train-steps", type=int, default=None, help="default: the preset's")
    parser.add_argument(
        "--networks", default="8:2,8:3,16:2:2", help="candidates base:depth[:space_to_depth],..."
    )
    parser.add_argument("--network-snr", type=float, default=0.3)
    parser.add_argument("--skip-study", action="store_true")
    parser.add_argument("--out", type=Path, default=None, help="keep the study's report here")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--via-cli", action="store_true", help="run the study as `cryoden bench tomo --quick`"
    )
    parser.add_argument("--target-wall-s", type=float, default=900.0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tests = tuple(p for p in args.test_structures.split(",") if p)
    for path in tests:
        if not Path(path).is_file():
            raise SystemExit(f"test structure {path} not found; pass --test-structures")
    changes = {
        "test_structures": tests,
        "seed": args.seed,
        "threads": args.threads,
        "train_structures": tuple(p for p in args.train_structures.split(",") if p),
    }
    if args.train_steps is not None:
        changes["train_steps"] = args.train_steps
    config = tomo_preset("quick", **changes)
    output: dict = {"config": config.to_dict()}
    if not args.skip_study:
        with tempfile.TemporaryDirectory(prefix="tomo-study-") as tmp:
            out = args.out or Path(tmp) / "study"
            if args.via_cli:
                results, seconds = _run_cli(args, tests, out)
                output["command"] = {**seconds, "target_wall_s": args.target_wall_s,
                                     "meets_wall_target": seconds["wall_s"] <= args.target_wall_s}  # fmt: skip
                study_seconds = seconds["wall_s"]
            else:
                run = run_tomo_study(config, out)
                results, study_seconds = run.results, run.seconds
        output["study"] = {
            "noisy": [{k: r[k] for k in ("snr", "tomogram_snr", "psnr", "cc")}
                      for r in results["noisy"]],
            "results": [{k: r.get(k) for k in ("method", "snr", "psnr", "cc", "fsc_resolution",
                                               "parameter", "training", "seconds")}
                        for r in results["results"]],
            "network": results["network"],
            "networks": results.get("networks"),
            "data": results["data"],
            "seconds": round(study_seconds, 1),
        }  # fmt: skip
        output["requirement"] = requirement(results)
        print(json.dumps(output["requirement"], indent=1), flush=True)
    candidates = []
    for text in filter(None, args.networks.split(",")):
        sizes = [int(x) for x in text.split(":")]
        candidates.append((sizes[0], sizes[1], sizes[2] if len(sizes) > 2 else 1))
    if candidates:
        rows, correlation = compare_networks(config, candidates, args.network_snr, args.threads)
        output["networks"] = {"snr": args.network_snr, "candidates": rows,
                              "choice": choose(rows), "noise_correlation": correlation}  # fmt: skip
    date = datetime.date.today().isoformat()
    path = args.json or REPO / "benchmarks" / "results" / f"tomo_quality_{date}.json"
    run = 2
    while args.json is None and path.exists():  # every run is kept, none overwritten
        path = path.with_name(f"tomo_quality_{date}_run{run}.json")
        run += 1
    provenance = {**run_provenance(), "description": DESCRIPTION}
    path.write_text(json.dumps({"provenance": provenance, **output}, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
