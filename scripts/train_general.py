"""Train cryoden's shipped general model on simulated micrographs, benchmark it, write its card.

    python scripts/train_general.py --work runs/general --steps 200000 --threads 16
    python scripts/train_general.py --work runs/general --steps 200000 --threads 16 --resume
    python scripts/train_general.py --work /tmp/general-dry --dry-run    # every path, tiny

What it does, each step resumable:

1. Simulates ``--n-images`` Noise2Noise pairs of ``--size``² px into ``WORK/cache``
   (``scripts/general_data.py``: many structures and procedural shapes, pixel sizes 0.6-2.5 Å,
   SNR 0.01-0.5, CTF defocus 0.5-3 µm, ice gradients, white and correlated noise). Chunks
   already there are kept, so an interrupted build continues.
2. Trains the general network (:data:`NETWORK`: U-Net, base 12, depth 3, space-to-depth 2,
   about 1 MB of float32 weights) with Noise2Noise for ``--steps`` optimiser steps into
   ``WORK/model``, with a checkpoint each epoch; ``--resume`` continues the run exactly.
3. Installs ``config.json`` and ``weights.safetensors`` into
   ``src/cryoden/models/shipped/general/``.
4. Benchmarks it (``benchmarks/bench_general.py``) on structures, a shape family and seeds it
   never saw, into ``benchmarks/results/general_model_<date>.json`` (``--no-benchmark``: skip).
5. Writes its card, ``card.json`` (with each model file's SHA-256), and
   ``docs/models/general.md`` from it (``scripts/make_model_card.py``).

Run it alone on the machine (it uses every thread it is given). ``--dry-run`` trains 50 steps on
64 images of 96² px on one thread and benchmarks into WORK, so that the shipped files exist and
every path runs; its weights are a placeholder, and its card says so.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import general_data  # scripts/ is on sys.path when run as a script

from cryoden import __version__
from cryoden.io.atomic import atomic_output
from cryoden.models.files import CONFIG_NAME, WEIGHTS_NAME
from cryoden.models.registry import CARD_NAME, CHECKED_FILES, SHIPPED_DIR, file_sha256
from cryoden.nets.analysis import count_parameters
from cryoden.nets.device import default_device
from cryoden.nets.registry import build_network
from cryoden.training import TrainConfig, train
from cryoden.training.data import PairDataset
from cryoden.training.defaults import default_network

REPO = Path(__file__).resolve().parents[1]
NAME = "general"
#: The general model's network: the Noise2Noise U-Net at base 12 and depth 3 (space-to-depth 2).
NETWORK = default_network("n2n", base_channels=12, depth=3)

#: Where not to trust it (the card's list; what the training data never held).
NOT_TO_TRUST = [
    "pixel sizes outside the trained range, or an SNR far outside it (the denoise command warns)",
    "3D volumes and tomograms (refused) and tilt series at high tilt (thicker ice than it saw)",
    "specimens unlike protein particles in vitreous ice: carbon edges, ice crystals, gold "
    "fiducials, contamination, membranes (absent from the training set)",
    "noise unlike Gaussian white or nearest-neighbour-correlated noise: gain-reference "
    "errors, fixed patterns, hot pixels, strong long-range correlation",
    "quantitative use of denoised intensities or resolution claims: denoise for viewing and "
    "picking; refine against the raw images",
    "its structures are GroEL-family models and maps plus procedural shapes: fine-tune on your "
    "own data (cryoden train n2n ... --init general) for the best result",
]


def _log_progress(every: int) -> Any:
    start = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if done % every == 0 or done == total:
            minutes = (time.perf_counter() - start) / 60.0
            rate = done / minutes if minutes > 0 else float("nan")
            print(f"step {done}/{total} ({rate:.0f} steps/min in this session)", flush=True)

    return progress


def install(model_dir: Path, target: Path) -> None:
    """Copy the model's config and weights into the shipped folder (each atomically)."""
    target.mkdir(parents=True, exist_ok=True)
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        with atomic_output(target / name) as tmp:
            shutil.copyfile(model_dir / name, tmp)


def write_card(target: Path, card: dict[str, Any]) -> None:
    """``card.json`` in the shipped folder, with the SHA-256 of each model file."""
    card = {**card, "files": {name: file_sha256(target / name) for name in CHECKED_FILES}}
    with atomic_output(target / CARD_NAME) as tmp:
        tmp.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def run_benchmark(args: argparse.Namespace, model: Path, out: Path) -> bool:
    """``benchmarks/bench_general.py`` on the installed model; True when it wrote ``out``."""
    command = [
        sys.executable, str(REPO / "benchmarks" / "bench_general.py"), "--model", str(model),
        "--json", str(out), "--seed", str(args.seed),
    ]  # fmt: skip
    if args.threads:
        command += ["--threads", str(args.threads)]
    if args.device:
        command += ["--device", args.device]
    if args.dry_run:
        command += ["--quick"]
    print("benchmark:", shlex.join(command), flush=True)
    return subprocess.run(command, check=False).returncode == 0 and out.is_file()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", type=Path, required=True, help="cache, model and checkpoints")
    parser.add_argument("--n-images", type=int, default=4000, help="training pairs to simulate")
    parser.add_argument("--size", type=int, default=192, help="simulated image side (px)")
    parser.add_argument("--steps", type=int, default=200_000, help="optimiser steps")
    parser.add_argument("--patch", type=int, default=96, help="training patch side (px)")
    parser.add_argument("--batch", type=int, default=16, help="patches per step")
    parser.add_argument("--steps-per-epoch", type=int, default=1000)
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (cosine)")
    parser.add_argument("--validation-patches", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: best here)")
    parser.add_argument("--resume", action="store_true", help="continue WORK's training run")
    parser.add_argument("--dry-run", action="store_true", help="tiny run: every path, no model")
    parser.add_argument("--no-benchmark", action="store_true")
    parser.add_argument("--benchmark-json", type=Path, default=None)
    parser.add_argument("--install-dir", type=Path, default=SHIPPED_DIR / NAME)
    parser.add_argument("--docs", type=Path, default=REPO / "docs" / "models" / f"{NAME}.md")
    args = parser.parse_args(argv)
    if args.dry_run:
        args.n_images, args.size, args.steps, args.patch = 64, 96, 50, 48
        args.batch, args.steps_per_epoch, args.threads = 8, 25, args.threads or 1
        args.validation_patches = 32
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    command = shlex.join(
        ["python", "scripts/train_general.py", *(sys.argv[1:] if argv is None else argv)]
    )
    cache = args.work / "cache"
    print(f"simulating {args.n_images} pairs of {args.size}² px into {cache}", flush=True)
    settings = general_data.build_cache(
        cache, n_images=args.n_images, size=args.size, seed=args.seed,
        progress=_log_progress(max(1, args.n_images // 20)),
    )  # fmt: skip
    pairs, _ = general_data.load_cache(cache, args.n_images)
    summary = general_data.training_summary(settings)
    config = TrainConfig(
        max_steps=args.steps, patch=args.patch, batch_size=args.batch,
        steps_per_epoch=args.steps_per_epoch, learning_rate=args.lr, seed=args.seed,
        threads=args.threads, validation_fraction=0.05, validation_patches=args.validation_patches,
        early_stopping_patience=None,
    )  # fmt: skip
    device = args.device or str(default_device())
    result = train(
        "n2n", NETWORK, PairDataset(pairs), None, config, out=args.work / "model",
        resume=args.resume, progress=_log_progress(max(1, args.steps // 50)),
        data_summary={"dataset": "cryoden general simulated set", **summary}, device=device,
    )  # fmt: skip
    del pairs
    install(args.work / "model", args.install_dir)
    date = datetime.date.today().isoformat()
    bench = args.benchmark_json or (
        args.work / "bench_general.json"
        if args.dry_run
        else REPO / "benchmarks" / "results" / f"general_model_{date}.json"
    )
    measured = not args.no_benchmark and run_benchmark(args, args.install_dir, bench)
    status = (
        f"dry run: {result.steps} steps on {args.n_images} images of {args.size}² px, placeholder "
        "weights that prove every path; not a usable denoiser yet"
        if args.dry_run
        else f"trained: {result.steps} steps on {args.n_images} pairs of {args.size}² px"
    )
    card = {
        "name": NAME,
        "card_version": 1,
        "status": status,
        "summary": "A Noise2Noise U-Net trained on simulated micrographs of many structures and "
        "procedural shapes over a range of pixel sizes, noise levels and CTFs, to denoise 2D "
        "cryo-EM micrographs and particle images with no training, and as the start for "
        "fine-tuning on one's own data.",
        "scheme": "n2n",
        "network": NETWORK.to_dict(),
        "parameters": count_parameters(build_network(NETWORK)),
        "trained_range": {
            "pixel_size_angstrom": list(general_data.PIXEL_SIZE_RANGE_ANGSTROM),
            "snr": list(general_data.SNR_RANGE),
            "dims": 2,
        },
        "training_data": summary,
        "training": {
            "command": command,
            "steps": result.steps,
            "epochs": result.epochs,
            "patch_px": args.patch,
            "batch": args.batch,
            "learning_rate": args.lr,
            "threads": args.threads,
            "device": device,
            "cryoden_version": __version__,
            "date": date,
        },
        "not_to_trust": NOT_TO_TRUST,
    }
    write_card(args.install_dir, card)
    import make_model_card  # scripts/ is on sys.path

    make_model_card.write(args.install_dir / CARD_NAME, args.docs)
    print(f"installed {args.install_dir}; card and {args.docs} written", flush=True)
    if measured:
        print(f"benchmark: {bench} (docs pages show benchmarks/results/ files only)", flush=True)


if __name__ == "__main__":
    main()
