"""CPU (or GPU) tomogram inference benchmark: time and peak memory of `cryoden denoise` on volumes.

For each size ``XxYxZ`` (default 512x512x256 and 1024x1024x300) a float32 tomogram of noise is
written slab by slab to a temporary folder, and the whole command ``cryoden denoise --model
MODEL IN -o OUT --threads T`` (a 3D model: tiled 3D inference, output written slab by slab) runs
in a fresh process, ``--repeats`` times; the median wall time and the peak resident memory of
that process (``wait4``'s rusage, through the launcher of ``bench_inference.py``) are reported,
with voxels per second, the model's FLOPs per voxel and the achieved GFLOP/s of the whole
command and of the in-process denoiser (no start-up, no file I/O: an in-memory volume). A plain
``Conv3d`` (3x3x3, 16 to 16 channels, fp32, fp32 channels-last-3d and bf16 channels-last-3d)
timed in the same process gives the machine's practical 3D-convolution limit; the fraction of it
reached is reported. The targets (``--target-wall-s`` for the first size, ``--target-peak-mib``
for the last) are recorded with whether each run met them.

Speed depends on the weights only through the box margin (the effective receptive field, wider
for a trained network), so pass a trained 3D model with ``--model`` for representative numbers;
without it, a model of the default 3D Noise2Noise network with random weights is used.
``--halves`` denoises two half tomograms and averages them (twice the network work).

    python benchmarks/bench_tomo_inference.py --threads 2 --json benchmarks/results/tomo_inference.json
    python benchmarks/bench_tomo_inference.py --sizes 64x64x32 --repeats 1   # a dry run
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from measure import run_measured  # benchmarks/ is on sys.path when run as a script
from provenance import run_provenance

from cryoden.inference.volume import VolumeDenoiser
from cryoden.io.mrc_slabs import SlabWriter
from cryoden.models import ModelConfig, load_model, save_model
from cryoden.nets.analysis import flops_per_pixel
from cryoden.nets.registry import build_network
from cryoden.training.defaults import default_network

#: Sections written (and generated) at a time when making a test tomogram.
_WRITE_SECTIONS = 16
#: The in-process denoiser is timed on volumes of at most this many voxels (it holds them).
_IN_PROCESS_MAX_VOXELS = 256 * 512 * 512


def parse_size(text: str) -> tuple[int, int, int]:
    """``"XxYxZ"`` (voxels, as tomograms are usually named) to the array shape ``(Z, Y, X)``."""
    x, y, z = (int(v) for v in text.lower().split("x"))
    return z, y, x


def write_tomogram(path: Path, shape: tuple[int, int, int], seed: int) -> None:
    """A float32 tomogram of Gaussian noise (5 Å voxels), generated and written by slabs."""
    rng = np.random.default_rng(seed)
    with SlabWriter(path, shape, voxel_size_angstrom=5.0) as out:
        for start in range(0, shape[0], _WRITE_SECTIONS):
            n = min(_WRITE_SECTIONS, shape[0] - start)
            out.write(start, rng.normal(size=(n, shape[1], shape[2])).astype(np.float32))


def conv3d_microbenchmark(threads: int, channels: int = 16, side: int = 64) -> dict[str, float]:
    """GFLOP/s of a plain 3x3x3 ``Conv3d`` (fp32, fp32 channels-last-3d, bf16 channels-last-3d):
    2 warm-up and 5 timed runs on each of two inputs; the best run counts."""
    torch.set_num_threads(threads)
    conv = torch.nn.Conv3d(channels, channels, 3, padding=1, bias=False).eval()
    flops = 2 * 27 * channels * channels * side**3
    results = {}
    for label, layout, bf16 in (
        ("fp32", torch.contiguous_format, False),
        ("fp32_channels_last_3d", torch.channels_last_3d, False),
        ("bf16_channels_last_3d", torch.channels_last_3d, True),
    ):
        c = conv.to(memory_format=layout)
        times = []
        for _ in range(2):
            x = torch.randn(1, channels, side, side, side).contiguous(memory_format=layout)
            with (
                torch.inference_mode(),
                torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16),
            ):
                for i in range(7):
                    t0 = time.perf_counter()
                    c(x)
                    if i >= 2:
                        times.append(time.perf_counter() - t0)
        results[label] = flops / min(times) / 1e9
    return results


def in_process(loaded, shape, threads, precision, halves) -> dict[str, float] | None:
    """Seconds of the denoiser on an in-memory volume (second of two calls), or None for a
    volume too large to hold here."""
    if np.prod(shape) > _IN_PROCESS_MAX_VOXELS:
        return None
    rng = np.random.default_rng(1)
    volumes = [rng.normal(size=shape).astype(np.float32) for _ in range(2 if halves else 1)]
    denoiser = VolumeDenoiser(loaded, threads=threads, precision=precision or "auto")
    _ = denoiser.margin  # measured once per model
    seconds = 0.0
    for _ in range(2):  # the first call also sets up oneDNN's kernels for the box shape
        t0 = time.perf_counter()
        denoiser(volumes if halves else volumes[0])
        seconds = time.perf_counter() - t0
    plan = denoiser.plan(shape, channels=len(volumes))
    return {"seconds": seconds, "tile": list(plan.tile), "overlap": plan.overlap}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="512x512x256,1024x1024x300")
    parser.add_argument("--model", type=Path, help="3D model (default: random weights)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--precision", default=None, help="pass --precision to cryoden denoise")
    parser.add_argument("--halves", action="store_true", help="denoise two halves, averaged")
    parser.add_argument("--target-wall-s", type=float, default=60.0)
    parser.add_argument("--target-peak-mib", type=float, default=3072.0)
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    shapes = [parse_size(s) for s in args.sizes.split(",")]

    tmp = Path(tempfile.mkdtemp(prefix="cryoden-bench-tomo-"))
    try:
        model_path = args.model
        if model_path is None:
            config = default_network("n2n", dims=3)
            torch.manual_seed(0)
            model_path = tmp / "default-3d-model"
            save_model(model_path, build_network(config), ModelConfig(network=config))
        loaded = load_model(model_path)
        if loaded.config.network.dims != 3:
            raise SystemExit(f"{model_path} is not a 3D model")
        fpv = flops_per_pixel(loaded.network)
        print(f"model {model_path}: {loaded.config.network.to_dict()}")
        print(f"FLOPs per voxel: {fpv:,.0f}; threads: {args.threads}; torch {torch.__version__}")
        micro = conv3d_microbenchmark(args.threads)
        limit = max(micro.values())
        print("3x3x3 Conv3d (GFLOP/s): " + ", ".join(f"{k} {v:.0f}" for k, v in micro.items()))
        rows = []
        for index, shape in enumerate(shapes):
            name = "x".join(str(v) for v in shape[::-1])
            inputs = [tmp / f"tomo_{name}_{h}.mrc" for h in ("even", "odd")[: 1 + args.halves]]
            for seed, path in enumerate(inputs):
                write_tomogram(path, shape, seed)
            if args.halves:  # a RELION 5 tomograms.star: the halves are denoised and averaged
                star = tmp / f"tomograms_{name}.star"
                star.write_text(
                    "data_global\n\nloop_\n_rlnTomoName #1\n_rlnTomoReconstructedTomogramHalf1 "
                    f"#2\n_rlnTomoReconstructedTomogramHalf2 #3\nT {inputs[0]} {inputs[1]}\n"
                )
                target = [str(star)]
            else:
                target = [str(inputs[0])]
            out = tmp / f"out_{name}"
            cmd = [sys.executable, "-m", "cryoden.cli.main", "-q", "denoise", "--model",
                   str(model_path), *target, "-o", str(out), "--threads", str(args.threads),
                   "--no-preview"]  # fmt: skip
            if args.precision:
                cmd += ["--precision", args.precision]
            walls, peaks = [], []
            for _ in range(args.repeats):
                shutil.rmtree(out, ignore_errors=True)
                wall, peak, _ = run_measured(cmd)
                walls.append(wall)
                peaks.append(peak)
            voxels = int(np.prod(shape))
            wall = statistics.median(walls)
            work = voxels * (2 if args.halves else 1)
            row = {
                "size_xyz": list(shape[::-1]),
                "halves": args.halves,
                "wall_s": wall,
                "wall_runs_s": walls,
                "peak_rss_mib": max(peaks),
                "voxels_per_s": voxels / wall,
                "flops_per_voxel": fpv,
                "gflops_whole_command": fpv * work / wall / 1e9,
            }
            row["fraction_of_conv3d_limit"] = row["gflops_whole_command"] / limit
            measured = in_process(loaded, shape, args.threads, args.precision, args.halves)
            if measured is not None:
                row["in_process_s"] = measured["seconds"]
                row["in_process_tile_zyx"] = measured["tile"]
                row["in_process_overlap"] = measured["overlap"]
                row["gflops_in_process"] = fpv * work / measured["seconds"] / 1e9
                row["in_process_fraction_of_conv3d_limit"] = row["gflops_in_process"] / limit
            if index == 0:
                row["target_wall_s"] = args.target_wall_s
                row["meets_wall_target"] = wall <= args.target_wall_s
            if index == len(shapes) - 1:
                row["target_peak_mib"] = args.target_peak_mib
                row["meets_peak_target"] = max(peaks) <= args.target_peak_mib
            rows.append(row)
            print(
                f"{name}: wall {wall:.1f} s (runs {', '.join(f'{w:.1f}' for w in walls)}), "
                f"peak RSS {max(peaks):.0f} MiB, {row['voxels_per_s'] / 1e6:.2f} Mvoxel/s, "
                f"{row['gflops_whole_command']:.0f} GFLOP/s "
                f"({100 * row['fraction_of_conv3d_limit']:.0f}% of the Conv3d limit)"
            )
            for path in inputs:
                path.unlink()
            shutil.rmtree(out, ignore_errors=True)
        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        "provenance": run_provenance(),
                        "conv3d_micro_gflops": micro,
                        "threads": args.threads,
                        "precision": args.precision or "auto",
                        "model": loaded.config.network.to_dict(),
                        "model_path": str(args.model) if args.model else None,
                        "rows": rows,
                    },
                    indent=2,
                )
                + "\n"
            )
            print(f"wrote {args.json}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
