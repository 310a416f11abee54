"""Batch throughput: micrographs per hour in one process versus a local Dask cluster.

On ``--n`` synthetic ``--size``² micrographs (seeded noise, float32, 1 Å pixels) and one model
(by default the default Noise2Noise network with random weights: speed does not depend on what
the weights are, only, through the tile margin, a little on how far they reach):

1. the forward passes alone: the in-process denoiser on one micrograph, timed around each call
   of the network on its tiles (the second of two runs; the first also sets up the kernels), and
   the whole in-memory denoising (normalisation, tiling, blending) of that micrograph;
2. ``cryoden denoise`` in one process with ``--threads`` threads, run as a fresh process whose
   peak resident memory is measured (``wait4``): wall time, micrographs per hour, time per
   micrograph and its ratio to the forward passes (1 would mean reading, writing, start-up and
   the model load all hidden behind the compute; the batch runner overlaps them);
3. the same batch on a local Dask cluster of ``--workers`` worker processes of ``--threads``
   threads each (:mod:`cryoden.pipeline.distributed`, as ``cryoden denoise --workers``): the
   cluster's start-up, the batch's wall time (each worker loading the model once included),
   micrographs per hour, the ratio, and each worker's peak resident memory.

Writes ``benchmarks/results/batch_<date>.json`` (or ``--json``) with a provenance record. Run it
alone on the machine; the numbers of a loaded machine mean little.

    python benchmarks/bench_batch.py --n 12 --size 4096 --workers 2
"""

from __future__ import annotations

import argparse
import datetime
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from measure import run_measured  # benchmarks/ is on sys.path when run as a script
from provenance import REPO, run_provenance  # benchmarks/ is on sys.path when run as a script

from cryoden.inference.denoise import Denoiser
from cryoden.io import write_mrc
from cryoden.models import ModelConfig, load_model, save_model
from cryoden.nets.registry import build_network
from cryoden.pipeline.batch import BatchItem
from cryoden.pipeline.completion import output_key
from cryoden.pipeline.denoise_job import DenoiseRecipe
from cryoden.pipeline.distributed import ClusterSpec, dask_client, run_distributed
from cryoden.training.defaults import default_network


def forward_seconds(model_path: Path, image: np.ndarray, threads: int) -> tuple[float, float]:
    """Seconds of the network's forward passes on one image's tiles, and of the whole
    in-memory denoising of it (the second of two runs)."""
    denoiser = Denoiser(load_model(model_path), threads=threads)
    _ = denoiser.margin  # measured once per model, not per image
    spent = {"seconds": 0.0}
    untimed = denoiser.predict_normalized

    def timed(tiles: torch.Tensor) -> torch.Tensor:
        start = time.perf_counter()
        out = untimed(tiles)
        spent["seconds"] += time.perf_counter() - start
        return out

    denoiser.predict_normalized = timed  # type: ignore[method-assign]
    for _ in range(2):
        spent["seconds"] = 0.0
        start = time.perf_counter()
        denoiser(image)
        whole = time.perf_counter() - start
    return spent["seconds"], whole


def _peak_rss_mib() -> float:
    """This process's peak resident memory (MiB), run on each Dask worker."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def cluster_batch(
    model_path: Path, inputs: list[Path], out: Path, workers: int, threads: int
) -> dict:
    """The batch on a local cluster of ``workers`` processes: start-up, wall, per-worker RSS."""
    loaded = load_model(model_path)
    recipe = DenoiseRecipe.for_model(loaded, settings={"threads": threads})
    resolved = recipe.resolved(recipe.denoiser(loaded), pin_memory=True)
    key = resolved.key_recipe()
    items = [BatchItem(p, out / p.name, output_key(key, p)) for p in inputs]
    start = time.perf_counter()
    with dask_client(ClusterSpec(workers=workers, threads_per_worker=threads)) as client:
        client.wait_for_workers(workers)
        startup = time.perf_counter() - start
        start = time.perf_counter()
        report = run_distributed(client, resolved.build, "bench", items)
        wall = time.perf_counter() - start
        rss = sorted(client.run(_peak_rss_mib).values())
    if report.count("done") != len(inputs):
        raise RuntimeError(f"the cluster batch did not finish: {report.summary()}")
    return {"startup_seconds": startup, "wall_seconds": wall, "peak_rss_mib_per_worker": rss}


def _rates(wall: float, n: int, forward: float) -> dict:
    per = wall / n
    return {
        "micrographs_per_hour": 3600.0 / per,
        "seconds_per_micrograph": per,
        "ratio_to_forward": per / forward,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=12, help="micrographs (default 12)")
    parser.add_argument("--size", type=int, default=4096, help="side in pixels (default 4096)")
    parser.add_argument("--workers", type=int, default=2, help="cluster workers (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="threads per process (default 1)")
    parser.add_argument("--model", type=Path, help="model (default: default n2n, random weights)")
    parser.add_argument("--json", type=Path, help="where to write (default benchmarks/results)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cryoden-bench-batch-"))
    try:
        model_path = args.model
        if model_path is None:
            torch.manual_seed(0)
            model_path = tmp / "default-model"
            config = default_network("n2n")
            save_model(model_path, build_network(config), ModelConfig(network=config))
        rng = np.random.default_rng(0)
        inputs = []
        for i in range(args.n):
            path = tmp / "in" / f"micrograph_{i:03d}.mrc"
            path.parent.mkdir(exist_ok=True)
            data = rng.normal(size=(args.size, args.size)).astype(np.float32)
            write_mrc(path, data, voxel_size_angstrom=1.0)
            inputs.append(path)
        forward, in_memory = forward_seconds(model_path, data, args.threads)
        print(
            f"forward passes {forward:.2f} s, in-memory denoising {in_memory:.2f} s per micrograph"
        )
        cmd = [sys.executable, "-m", "cryoden.cli.main", "-q", "denoise", "--model",
               str(model_path), str(tmp / "in"), "-o", str(tmp / "single"),
               "--threads", str(args.threads), "--no-preview"]  # fmt: skip
        wall, rss, _ = run_measured(cmd)
        single = {"wall_seconds": wall, "peak_rss_mib": rss, **_rates(wall, args.n, forward)}
        print(f"1 process: {single['micrographs_per_hour']:.0f} micrographs/h, "
              f"ratio {single['ratio_to_forward']:.2f}, {rss:.0f} MiB")  # fmt: skip
        cluster = cluster_batch(model_path, inputs, tmp / "cluster", args.workers, args.threads)
        cluster.update(workers=args.workers, **_rates(cluster["wall_seconds"], args.n, forward))
        print(f"{args.workers} workers: {cluster['micrographs_per_hour']:.0f} micrographs/h, "
              f"ratio {cluster['ratio_to_forward']:.2f}, "
              f"{max(cluster['peak_rss_mib_per_worker']):.0f} MiB per worker")  # fmt: skip
        results = {
            "provenance": run_provenance(),
            "settings": {"micrographs": args.n, "size_px": args.size, "threads": args.threads,
                         "model": str(args.model or "default n2n network, random weights"),
                         "model_config": load_model(model_path).config.network.to_dict()},
            "forward_seconds_per_micrograph": forward,
            "in_memory_denoise_seconds_per_micrograph": in_memory,
            "single_process": single,
            "local_cluster": cluster,
            "cluster_speedup": single["wall_seconds"] / cluster["wall_seconds"],
        }  # fmt: skip
        today = datetime.date.today().isoformat()
        target = args.json or REPO / "benchmarks" / "results" / f"batch_{today}.json"
        target.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {target}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
