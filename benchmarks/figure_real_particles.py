"""Real particle images denoised by Noise2Void: raw | plain blind spot | default (adaptive).

    python benchmarks/figure_real_particles.py               # docs/figures/real_particles_n2v.png
    python benchmarks/figure_real_particles.py --steps 300 --out /tmp/particles.png

The noise of real particle stacks is correlated between adjacent pixels. Both models train on
the images of ``particles/aspire_sample.mrcs`` in the shared data folder other than the ones
shown (``--indices``), for ``--steps`` optimiser steps on one thread: one with the plain
one-pixel blind spot, one with ``cryoden train n2v``'s default (the blind spot chosen from the
measured noise correlation). Each row shows one held-out particle, its three panels on one grey
scale (the raw image's 0.5-99.5 percentiles); the caption gives the chosen blind spot, the
measured correlation, and each output's power near Nyquist relative to the raw image's
(:func:`cryoden.metrics.high_frequency.high_frequency_power_ratio`): copied correlated noise
keeps it high. The figure is written atomically.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from cryoden.benchmark.figures import side_by_side_figure
from cryoden.inference.denoise import Denoiser
from cryoden.io import read_mrc
from cryoden.io.atomic import atomic_output
from cryoden.metrics.high_frequency import high_frequency_power_ratio
from cryoden.models import load_model
from cryoden.training import TrainConfig, train
from cryoden.training.data import SingleDataset
from cryoden.training.defaults import default_network
from cryoden.training.noise2void import Noise2Void

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CRYODEN_SHARED_DATA", REPO.parent / "shared" / "data"))
DEFAULT_INPUT = SHARED / "particles" / "aspire_sample.mrcs"


def train_and_denoise(
    scheme: Noise2Void, train_images: list[np.ndarray], shown: list[np.ndarray], args
) -> list[np.ndarray]:
    """Train ``scheme`` on ``train_images`` for ``args.steps`` steps; denoise ``shown``."""
    config = TrainConfig(
        max_steps=args.steps, seed=args.seed, threads=args.threads, early_stopping_patience=None
    )
    with tempfile.TemporaryDirectory() as tmp:
        result = train(
            scheme, default_network("n2v"), SingleDataset(train_images), None, config,
            out=Path(tmp) / "model",
        )  # fmt: skip
        model = load_model(result.model_path)
    denoise = Denoiser(model, threads=args.threads, device="cpu")
    return [denoise(image) for image in shown]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--input", type=Path, default=DEFAULT_INPUT)
    parser.add_argument("--indices", default="0,1", help="held-out images to show")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--out", type=Path, default=REPO / "docs" / "figures" / "real_particles_n2v.png"
    )
    args = parser.parse_args(argv)
    if not args.input.is_file():
        raise SystemExit(f"{args.input}: not found (the shared data folder holds the default)")
    torch.set_num_threads(args.threads)
    data = read_mrc(args.input).data
    stack = [
        np.asarray(image, dtype=np.float32) for image in (data[None] if data.ndim == 2 else data)
    ]
    held_out = sorted({int(i) for i in args.indices.split(",")})
    shown = [stack[i] for i in held_out]
    train_images = [image for i, image in enumerate(stack) if i not in held_out]

    default = Noise2Void.for_images(train_images)
    plain = Noise2Void.for_images(train_images, blind_spot="pixel")
    outputs = {
        "plain": train_and_denoise(plain, train_images, shown, args),
        "default": train_and_denoise(default, train_images, shown, args),
    }
    ratios = {
        name: float(np.mean([high_frequency_power_ratio(o, s) for o, s in zip(out, shown)]))
        for name, out in outputs.items()
    }
    correlation = default.noise_correlation or {"x": [float("nan")], "y": [float("nan")]}
    labels = (
        "raw",
        f"plain N2V (1-pixel blind spot)\nnear-Nyquist power {ratios['plain']:.2g} of raw",
        f"default N2V ({default.blind_spot.spec})\nnear-Nyquist power {ratios['default']:.2g} "
        "of raw",
    )
    title = (
        f"{args.input.name} (real particles, held out: {args.indices}); trained {args.steps} "
        f"steps on the other {len(train_images)}; measured noise correlation, lag 1: "
        f"x {correlation['x'][0]:.2f}, y {correlation['y'][0]:.2f}"
    )
    rows = list(zip(shown, outputs["plain"], outputs["default"]))
    png = side_by_side_figure(rows, labels, title)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(args.out) as tmp:
        tmp.write_bytes(png)
    print(f"wrote {args.out} (near-Nyquist power relative to raw: {ratios})")


if __name__ == "__main__":
    main()
