"""CPU (or GPU) inference benchmark: time and peak memory of `cryoden denoise` on micrographs.

For each size (default 1024², 2048², 4096², 8192²) a float32 micrograph is written to a temporary
folder and the whole command ``cryoden denoise --model MODEL IN -o OUT`` is run in a fresh
process, ``--repeats`` times; the median wall time and the peak resident memory of that process
(from ``wait4``'s rusage) are reported, with megapixels/s, the model's FLOPs per pixel and the
achieved GFLOP/s in three ways: of the whole command (image pixels / wall time), of the
in-process denoiser (image pixels / its time: normalisation, tiling, forward passes, blending)
and of the network's forward passes alone (the pixels of the tiles they ran on, overlaps
included, / the time inside them). A 3×3-convolution micro-benchmark run in the same process
gives the machine's practical limit.
If the optional ``topaz`` command is installed, ``topaz denoise -m unet -d -1`` is timed on the
same images and the ratio printed. If ``onnxruntime`` and ``onnx`` are installed, one tile's
forward pass is also timed in ONNX Runtime against PyTorch (:func:`onnxruntime_comparison`).

Speed depends on the weights only through the tile margin (the effective receptive field, which
is wider for a trained network), so pass a trained model with ``--model`` for representative
numbers; without it, a model of the default Noise2Noise architecture with random weights is used.
The network-alone time is that of the second of two calls (the first also sets up oneDNN's
kernels for the tile shape).

    python benchmarks/bench_inference.py --sizes 1024,2048,4096 --json results.json
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
from provenance import run_provenance  # benchmarks/ is on sys.path when run as a script

from cryoden.inference.denoise import Denoiser
from cryoden.io import write_mrc
from cryoden.models import ModelConfig, load_model, save_model
from cryoden.nets.analysis import flops_per_pixel
from cryoden.nets.registry import build_network
from cryoden.training.defaults import default_network


def conv_microbenchmark(threads: int, channels: int = 48, size: int = 512) -> dict[str, float]:
    """GFLOP/s of a 3×3 convolution (fp32, fp32 channels_last, bf16 channels_last).

    Each variant is timed on three freshly allocated inputs (its speed varies with the
    allocation by up to 1.6× in bf16 here), 2 warm-up and 5 timed runs each; the best run counts.
    """
    torch.set_num_threads(threads)
    conv = torch.nn.Conv2d(channels, channels, 3, padding=1, bias=False).eval()
    flops = 2 * 9 * channels * channels * size * size
    results = {}
    for label, layout, dtype in (
        ("fp32", torch.contiguous_format, None),
        ("fp32_channels_last", torch.channels_last, None),
        ("bf16_channels_last", torch.channels_last, torch.bfloat16),
    ):
        c = conv.to(memory_format=layout)
        times = []
        for _ in range(3):
            xi = torch.randn(1, channels, size, size).contiguous(memory_format=layout)
            with torch.inference_mode(), torch.autocast("cpu", dtype=dtype or torch.bfloat16,
                                                        enabled=dtype is not None):  # fmt: skip
                for i in range(7):
                    t0 = time.perf_counter()
                    c(xi)
                    if i >= 2:
                        times.append(time.perf_counter() - t0)
        results[label] = flops / min(times) / 1e9
    return results


def onnxruntime_comparison(network: torch.nn.Module, threads: int, size: int = 1024) -> dict:
    """The network's forward pass on one ``size``² tile: PyTorch (bf16 autocast, channels-last,
    as ``cryoden denoise`` runs it on a bf16 CPU; and fp32) against ONNX Runtime (fp32, its CPU
    provider, all graph optimisations), when the optional ``onnxruntime`` and ``onnx`` packages
    are installed. Returns milliseconds per tile (empty without the packages)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return {}
    import io
    import warnings

    torch.set_num_threads(threads)
    net = network.float().eval()
    x = torch.randn(1, 1, size, size)

    def ms(fn, n: int = 5) -> float:
        for _ in range(2):
            fn()
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        return 1e3 * (time.perf_counter() - t0) / n

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (x,), buffer, input_names=["x"], output_names=["y"], dynamo=False)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])
    x_np = x.numpy()
    result = {"tile": size, "onnxruntime_version": ort.__version__}
    result["onnxruntime_fp32_ms"] = ms(lambda: session.run(None, {"x": x_np}))
    cl = net.to(memory_format=torch.channels_last)
    xc = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        result["torch_fp32_channels_last_ms"] = ms(lambda: cl(xc))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            result["torch_bf16_channels_last_ms"] = ms(lambda: cl(xc))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1024,2048,4096,8192")
    parser.add_argument(
        "--model", type=Path, help="model file (default: default architecture, random weights)"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--precision", default=None, help="pass --precision to cryoden denoise")
    parser.add_argument("--extra", default="", help="extra arguments for cryoden denoise")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    tmp = Path(tempfile.mkdtemp(prefix="cryoden-bench-"))
    try:
        model_path = args.model
        if model_path is None:
            config = default_network("n2n")
            torch.manual_seed(0)
            model_path = tmp / "default-model"
            save_model(model_path, build_network(config), ModelConfig(network=config))
        loaded = load_model(model_path)
        fpp = flops_per_pixel(loaded.network)
        print(f"model {model_path}: {loaded.config.network.to_dict()}")
        print(f"FLOPs per pixel: {fpp:,.0f}; threads: {args.threads}; torch {torch.__version__}")
        micro = conv_microbenchmark(args.threads)
        print(
            "3x3 conv micro-benchmark (GFLOP/s): "
            + ", ".join(f"{k} {v:.0f}" for k, v in micro.items())
        )

        rows = []
        rng = np.random.default_rng(0)
        for size in sizes:
            image = tmp / f"micrograph_{size}.mrc"
            write_mrc(
                image, rng.normal(size=(size, size)).astype(np.float32), voxel_size_angstrom=1.0
            )
            cmd = [
                sys.executable,
                "-m",
                "cryoden.cli.main",
                "-q",
                "denoise",
                "--model",
                str(model_path),
                str(image),
                "-o",
                str(tmp / f"out_{size}"),
                "--threads",
                str(args.threads),
            ]
            if args.precision:
                cmd += ["--precision", args.precision]
            cmd += args.extra.split()
            walls, rss = [], []
            for _ in range(args.repeats):
                shutil.rmtree(tmp / f"out_{size}", ignore_errors=True)
                wall, peak, _ = run_measured(cmd)
                walls.append(wall)
                rss.append(peak)
            # The denoiser in this process (no start-up, no I/O), and its network's forward
            # passes alone (timed around each call, with the pixels of the tiles they ran on).
            denoiser = Denoiser(loaded, threads=args.threads, precision=args.precision or "auto")
            _ = denoiser.margin  # measured once per model; not part of the per-image time
            forward = {"seconds": 0.0, "pixels": 0}
            untimed = denoiser.predict_normalized

            def timed(tiles: torch.Tensor, untimed=untimed, forward=forward) -> torch.Tensor:
                t = time.perf_counter()
                out = untimed(tiles)
                forward["seconds"] += time.perf_counter() - t
                forward["pixels"] += int(tiles.shape[0] * tiles.shape[-2] * tiles.shape[-1])
                return out

            denoiser.predict_normalized = timed  # type: ignore[method-assign]
            data = rng.normal(size=(size, size)).astype(np.float32)
            for _ in range(2):  # the first call also sets up oneDNN's kernels for the tile shape
                forward.update(seconds=0.0, pixels=0)
                t0 = time.perf_counter()
                denoiser(data)
                compute = time.perf_counter() - t0
            mpix = size * size / 1e6
            wall = statistics.median(walls)
            limit = max(micro.values())
            row = {
                "size": size,
                "wall_s": wall,
                "peak_rss_mib": max(rss),
                "megapixels_per_s": mpix / wall,
                "flops_per_pixel": fpp,
                "network_s": compute,
                "gflops_whole_command": fpp * size * size / wall / 1e9,
                "gflops_network": fpp * size * size / compute / 1e9,
                "forward_s": forward["seconds"],
                "forward_pixels_per_image_pixel": forward["pixels"] / (size * size),
                "gflops_forward": fpp * forward["pixels"] / forward["seconds"] / 1e9,
            }
            row["fraction_of_conv_limit"] = row["gflops_network"] / limit
            row["forward_fraction_of_conv_limit"] = row["gflops_forward"] / limit
            if shutil.which("topaz"):
                tz_out = tmp / f"topaz_{size}"
                tz_out.mkdir()
                tz_wall, tz_rss, _ = run_measured(
                    ["topaz", "denoise", "-m", "unet", "-d", "-1", "-o", str(tz_out), str(image)]
                )
                row.update(
                    topaz_wall_s=tz_wall, topaz_peak_rss_mib=tz_rss, topaz_ratio=tz_wall / wall
                )
            rows.append(row)
            print(
                f"{size}²: wall {wall:.2f} s (runs {', '.join(f'{w:.2f}' for w in walls)}), "
                f"peak RSS {max(rss):.0f} MiB, {row['megapixels_per_s']:.2f} MP/s; in-process "
                f"denoiser {compute:.2f} s = {row['gflops_network']:.0f} GFLOP/s of image pixels "
                f"({100 * row['fraction_of_conv_limit']:.0f}% of the conv limit); forward passes "
                f"{row['forward_s']:.2f} s on {row['forward_pixels_per_image_pixel']:.2f}x the "
                f"pixels (tile overlaps) = {row['gflops_forward']:.0f} GFLOP/s "
                f"({100 * row['forward_fraction_of_conv_limit']:.0f}%)"
                + (
                    f", topaz {row['topaz_wall_s']:.1f} s (x{row['topaz_ratio']:.1f})"
                    if "topaz_wall_s" in row
                    else ""
                )
            )
        # Last: it holds an ONNX session and copies of the network in this process.
        ort_result = onnxruntime_comparison(load_model(model_path).network, args.threads)
        if ort_result:
            print(
                f"one {ort_result['tile']}² tile: ONNX Runtime fp32 "
                f"{ort_result['onnxruntime_fp32_ms']:.0f} ms, PyTorch fp32 "
                f"{ort_result['torch_fp32_channels_last_ms']:.0f} ms, PyTorch bf16 "
                f"{ort_result['torch_bf16_channels_last_ms']:.0f} ms"
            )
        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        "provenance": run_provenance(),
                        "micro_gflops": micro,
                        "onnxruntime_comparison": ort_result,
                        "threads": args.threads,
                        "model": loaded.config.network.to_dict(),
                        "rows": rows,
                    },
                    indent=2,
                )
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
