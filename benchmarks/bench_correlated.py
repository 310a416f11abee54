"""Noise2Void on correlated noise: the default (adaptive) blind spot against plain Noise2Void and
the oracle classical filters, on a structure never trained on.

Training images are projections of one structure (the embedded GroEL-like phantom by default),
test images of another (the real 1AON GroEL-GroES model from ``../shared/data/groel`` by
default). At each adjacent-pixel noise correlation (the same along x and y, made by
:func:`cryoden.noise.correlated.add_correlated_gaussian_noise`; 0 is white noise) the same clean
images get correlated Gaussian noise at the SNR, and each method trains on the noisy training
images for a fixed number of optimiser steps (``--steps``, one thread, one training at a time),
then denoises the noisy test images. Methods:

- ``default``: ``cryoden train n2v`` with its default options: the blind spot chosen from the
  measured noise correlation of the training images (``Noise2Void.for_images``, ``auto``).
- ``plain``: Noise2Void with the one-pixel blind spot (the paper's).
- ``structured:X,Y``, ``pd:2``: a blind spot given by hand.

Each method's mean PSNR against the clean test images is compared with the best low-pass cutoff
and the best Gaussian sigma chosen *with the clean test images in hand* (oracle filters, an upper
bound for those filters). Results go to ``benchmarks/results/correlated_<date>.json`` (with
provenance), written after every method so that a cut run keeps what it measured. A method
whose blind spot is one already run at that correlation (``plain`` and ``default`` on white
noise) would repeat that run bit for bit at the same seed, so it is recorded as that run
(``same_run_as``).

    python benchmarks/bench_correlated.py --steps 1000
    python benchmarks/bench_correlated.py --correlations 0.4 --methods default,plain,pd:2
"""

from __future__ import annotations

import argparse
import datetime
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from provenance import run_provenance  # benchmarks/ is on sys.path when run as a script

from cryoden.filters import gaussian_filter, lowpass
from cryoden.inference.denoise import Denoiser
from cryoden.metrics import psnr
from cryoden.metrics.high_frequency import high_frequency_power_ratio
from cryoden.models import load_model
from cryoden.noise import image_rng
from cryoden.noise.correlated import add_correlated_gaussian_noise
from cryoden.simulation.datasets import simulate_images
from cryoden.training import TrainConfig, train
from cryoden.training.data import SingleDataset
from cryoden.training.defaults import default_network
from cryoden.training.noise2void import Noise2Void

REPO = Path(__file__).resolve().parents[1]
DEFAULT_TEST = REPO.parent / "shared" / "data" / "groel" / "1AON.pdb.gz"
RESULTS = REPO / "benchmarks" / "results"

#: Offsets of the noise streams of the training and test images from the seed.
TRAIN_NOISE, TEST_NOISE = 101, 202


def simulate_clean(
    structure: Path | None, n: int, *, size: int, pixel: float, seed: int, first: int
) -> list[np.ndarray]:
    """``n`` clean projections of ``structure`` (the GroEL-like phantom when ``None``)."""
    images = simulate_images(
        structure=structure, phantom=None if structure else "groel", n_images=n, size=size,
        pixel_size_angstrom=pixel, snr_levels=[1.0], seed=seed, first_index=first,
    )  # fmt: skip
    return [im.clean for im in images]


def add_noise(
    clean: list[np.ndarray], snr: float, correlation: float, seed: int
) -> list[np.ndarray]:
    """Correlated Gaussian noise on each image, from its own stream ``(seed, index)``."""
    return [
        add_correlated_gaussian_noise(c, snr, correlation, rng=image_rng(seed, i))
        for i, c in enumerate(clean)
    ]


def mean_psnr(clean: list[np.ndarray], images: list[np.ndarray]) -> float:
    return float(np.mean([psnr(c, x) for c, x in zip(clean, images, strict=True)]))


def oracle(clean, noisy, name, values, apply) -> dict[str, Any]:
    """The filter parameter (of ``values``) with the best mean PSNR against ``clean``."""
    scores = [mean_psnr(clean, [apply(x, v) for x in noisy]) for v in values]
    best = int(np.argmax(scores))
    return {"filter": name, "best_parameter": float(values[best]), "psnr": scores[best]}


def make_scheme(method: str, train_noisy: list[np.ndarray]) -> Noise2Void:
    """The training scheme of ``method`` (see the module docstring)."""
    if method == "default":
        return Noise2Void.for_images(train_noisy)
    if method == "plain":
        return Noise2Void.for_images(train_noisy, blind_spot="pixel")
    return Noise2Void.for_images(train_noisy, blind_spot=method)


def _same_run(method: str, done: dict[str, Any], train_noisy: list[np.ndarray]) -> str | None:
    """A method already run whose blind spot ``method`` would train with (white noise: the
    default chooses the plain blind spot), else ``None``."""
    spot = make_scheme(method, train_noisy).blind_spot.spec
    return next((name for name, scores in done.items() if scores["blind_spot"] == spot), None)


def run_method(
    method: str,
    train_noisy: list[np.ndarray],
    test_clean: list[np.ndarray],
    test_noisy: list[np.ndarray],
    *,
    steps: int,
    seed: int,
    threads: int,
) -> dict[str, Any]:
    """Train ``method`` for ``steps`` steps and score it on the test images."""
    scheme = make_scheme(method, train_noisy)
    config = TrainConfig(max_steps=steps, seed=seed, threads=threads, early_stopping_patience=None)
    with tempfile.TemporaryDirectory() as tmp:
        result = train(
            scheme, default_network("n2v"), SingleDataset(train_noisy), None, config,
            out=Path(tmp) / "model",
        )  # fmt: skip
        model = load_model(result.model_path)
    denoiser = Denoiser(model, threads=threads)
    denoised = list(denoiser(np.stack(test_noisy)))
    return {
        "blind_spot": scheme.blind_spot.spec,
        "measured_noise_correlation": scheme.noise_correlation,
        "psnr": mean_psnr(test_clean, denoised),
        "high_frequency_power_ratio": float(
            np.mean([high_frequency_power_ratio(x, c) for x, c in zip(denoised, test_clean)])
        ),
        "steps": result.steps,
        "best_epoch": result.best_epoch,
        "stopped": result.stopped,
        "train_seconds": result.wall_seconds,
        "inference_precision": denoiser.precision,
        "polyphase_inference": denoiser.polyphase,
        "warnings": result.warnings,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--correlations", default="0,0.2,0.4,0.5")
    parser.add_argument("--methods", default="default,plain")
    parser.add_argument("--snr", type=float, default=0.1)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--pixel-size", type=float, default=3.5, help="Å")
    parser.add_argument("--n-train", type=int, default=48)
    parser.add_argument("--n-test", type=int, default=16)
    parser.add_argument(
        "--train-structure", type=Path, default=None, help="default: GroEL-like phantom"
    )
    parser.add_argument("--test-structure", type=Path, default=DEFAULT_TEST)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--json", type=Path, default=None, help="default: results/correlated_<date>.json"
    )
    args = parser.parse_args()
    if not args.test_structure.is_file():
        raise SystemExit(f"test structure {args.test_structure} not found; pass --test-structure")
    torch.set_num_threads(args.threads)
    out = args.json or RESULTS / f"correlated_{datetime.date.today().isoformat()}.json"
    correlations = [float(c) for c in args.correlations.split(",")]
    methods = args.methods.split(",")

    sim = {"size": args.size, "pixel": args.pixel_size}
    train_clean = simulate_clean(args.train_structure, args.n_train, seed=args.seed, first=0, **sim)
    test_clean = simulate_clean(
        args.test_structure, args.n_test, seed=args.seed + 1, first=10_000, **sim
    )
    results: dict[str, Any] = {
        "setting": {
            **{k: v for k, v in vars(args).items() if k != "json"},
            "train_structure": str(args.train_structure or "phantom:groel"),
            "test_structure": str(args.test_structure),
            "noise": "Gaussian, adjacent-pixel correlation the same along x and y "
            "(cryoden.noise.correlated)",
            "network": default_network("n2v").to_dict(),
        },
        "correlations": {},
    }

    def save() -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        record = {"provenance": run_provenance(), **results}
        out.write_text(json.dumps(record, indent=2) + "\n")

    for correlation in correlations:
        train_noisy = add_noise(train_clean, args.snr, correlation, args.seed + TRAIN_NOISE)
        test_noisy = add_noise(test_clean, args.snr, correlation, args.seed + TEST_NOISE)
        entry: dict[str, Any] = {
            "noisy_psnr": mean_psnr(test_clean, test_noisy),
            "oracle_lowpass": oracle(
                test_clean, test_noisy, "lowpass", np.geomspace(0.01, 1.0, 48),
                lambda x, c: lowpass(x, cutoff_nyquist=float(c)),
            ),
            "oracle_gaussian": oracle(
                test_clean, test_noisy, "gaussian", np.geomspace(0.3, 12.0, 48),
                lambda x, s: gaussian_filter(x, sigma_px=float(s)),
            ),
            "methods": {},
        }  # fmt: skip
        best = max(entry["oracle_lowpass"]["psnr"], entry["oracle_gaussian"]["psnr"])
        entry["best_oracle_psnr"] = best
        results["correlations"][str(correlation)] = entry
        print(
            f"correlation {correlation}: noisy {entry['noisy_psnr']:.2f} dB, best oracle filter "
            f"{best:.2f} dB", flush=True,
        )  # fmt: skip
        for method in methods:
            start = time.perf_counter()
            same = _same_run(method, entry["methods"], train_noisy)
            if same is not None:  # the same blind spot at the same seed: the same run, bitwise
                entry["methods"][method] = {**entry["methods"][same], "same_run_as": same}
                print(f"  {method}: the same run as {same}", flush=True)
                continue
            scores = run_method(
                method, train_noisy, test_clean, test_noisy,
                steps=args.steps, seed=args.seed, threads=args.threads,
            )  # fmt: skip
            scores["margin_over_best_oracle_db"] = scores["psnr"] - best
            entry["methods"][method] = scores
            save()
            print(
                f"  {method} ({scores['blind_spot']}): {scores['psnr']:.2f} dB, "
                f"{scores['margin_over_best_oracle_db']:+.2f} dB over the best oracle filter "
                f"({time.perf_counter() - start:.0f} s)", flush=True,
            )  # fmt: skip
    save()
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
