"""Held-out quality of the shipped general model, and fine-tuning from it against from scratch.

Quality (default mode): simulated micrographs (``scripts/general_data.py``) of what the model
never saw in training: the 1AON GroEL-GroES model (skipped when the shared data folder lacks
it) and the procedural ``filament`` family, drawn from random streams training never uses, at
each SNR of ``--snrs`` (default the study's ten, 0.01-0.5), with white and with correlated noise,
with and without a CTF. Per cell of (source, SNR, noise, CTF): the mean PSNR of the raw images,
of the best Gaussian and the best low-pass filter (one parameter per cell, chosen *with the clean
images*: oracle filters, an upper bound for them) and of the general model. The bar: the model
beats the best filter by at least 2 dB in every cell at SNR 0.05-0.5, and beats it at 0.01.

    python benchmarks/bench_general.py --json benchmarks/results/general_model_<date>.json
    python benchmarks/bench_general.py --quick --json /tmp/general.json

Fine-tuning (``--finetune``): a new dataset of one held-out source at one condition; for each
budget, Noise2Noise training from the general model's weights and from random weights (the same
network), for the same wall time (``--minutes``, default 1, 3 and 10) or the same optimiser steps
(``--budget-steps``), then the PSNR of each on held-out images of that dataset. Each start
takes its own recipe, as a user would: from the general model at ``train --init``'s learning
rate (``--finetune-lr-factor`` times the default), from random weights at the default.

    python benchmarks/bench_general.py --finetune --json benchmarks/results/general_finetune_<date>.json

Headroom (``--headroom``): is the general model held back by being general? For each condition
of ``--headroom-conditions`` (noise and CTF) at ``--headroom-snr``, *specialists* with the
general model's network train on that condition alone, for ``--headroom-steps`` optimiser steps
on ``--headroom-train`` images of the training sources (from training streams beyond the general
model's own, ``spawn_key (0, 900000 + i)``): one with Noise2Noise targets, one supervised with
the clean images as targets (``care``, a ceiling no real dataset allows). All three models then
denoise the quality mode's held-out cells of that condition (the same images).
``--headroom-network`` gives the specialists a larger network (``base_channels=32,depth=4``),
``--headroom-schemes`` picks which train (``care``, or ``none``), and ``--headroom-bm3d`` adds
BM3D with an oracle noise level (white noise; the optional ``bm3d`` package), a strong
denoiser of another kind.

    python benchmarks/bench_general.py --headroom --json benchmarks/results/general_headroom_<date>.json

Run it alone on the machine: wall-time budgets depend on its load.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
import torch
from provenance import run_provenance  # benchmarks/ is on sys.path when run as a script

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
import general_data  # noqa: E402  (scripts/general_data.py)

from cryoden.errors import DegenerateModelError  # noqa: E402
from cryoden.filters import gaussian_filter, lowpass  # noqa: E402
from cryoden.inference.denoise import Denoiser  # noqa: E402
from cryoden.metrics import psnr  # noqa: E402
from cryoden.models import load_model  # noqa: E402
from cryoden.models.registry import file_sha256, resolve_model  # noqa: E402
from cryoden.nets.analysis import count_parameters  # noqa: E402
from cryoden.nets.registry import build_network  # noqa: E402
from cryoden.noise import STUDY_SNR_LEVELS  # noqa: E402
from cryoden.training import TrainConfig, train  # noqa: E402
from cryoden.training.data import PairDataset  # noqa: E402
from cryoden.training.defaults import FINE_TUNE_LR_FACTOR  # noqa: E402

SIGMAS_PX = np.geomspace(0.4, 12.0, 24)
CUTOFFS_NYQUIST = np.geomspace(0.02, 1.0, 24)
#: The bar of the issue: margin over the best oracle filter (dB) by SNR range.
BAR_MARGIN_DB = 2.0
BAR_SNR_FROM = 0.05
#: Index offsets of the fine-tuning dataset's images in the test streams (the quality cells use
#: indices below it).
FINETUNE_TRAIN_INDEX, FINETUNE_TEST_INDEX = 100_000, 200_000

#: BM3D's noise level as factors of the true one, searched with the clean images (--headroom-bm3d).
BM3D_FACTORS = np.array([0.5, 0.7, 1.0, 1.4, 2.0, 2.8, 4.0])

#: The headroom rows' names of the specialists by training scheme.
SPECIALIST_NAMES = {"n2n": "n2n_specialist", "care": "supervised_specialist"}

#: Index offset of the headroom specialists' training images in the training streams (the
#: general model's own training images use indices below it).
HEADROOM_TRAIN_INDEX = 900_000

#: The default learning rate (``TrainConfig``'s), which training from scratch uses.
DEFAULT_LR = TrainConfig().learning_rate


def passes_bar(snr: float, margin_db: float) -> bool:
    """The issue's bar for one cell: >= 2 dB over the best filter at SNR >= 0.05, > 0 below."""
    return margin_db >= BAR_MARGIN_DB if snr >= BAR_SNR_FROM else margin_db > 0.0


def mean_psnr(clean: list[np.ndarray], images: list[np.ndarray]) -> float:
    return float(np.mean([psnr(c, x) for c, x in zip(clean, images)]))


def oracle(clean, noisy, values, apply) -> tuple[float, float]:
    """The best mean PSNR over ``values`` of a filter, and the value that gave it."""
    scores = [mean_psnr(clean, [apply(x, float(v)) for x in noisy]) for v in values]
    best = int(np.argmax(scores))
    return scores[best], float(values[best])


def filters_and_raw(clean, noisy) -> dict[str, float]:
    gauss, sigma = oracle(clean, noisy, SIGMAS_PX, lambda x, s: gaussian_filter(x, sigma_px=s))
    low, cutoff = oracle(clean, noisy, CUTOFFS_NYQUIST, lambda x, c: lowpass(x, cutoff_nyquist=c))
    return {
        "psnr_raw": mean_psnr(clean, noisy),
        "psnr_gaussian": gauss,
        "gaussian_sigma_px": sigma,
        "psnr_lowpass": low,
        "lowpass_cutoff_nyquist": cutoff,
        "psnr_best_filter": max(gauss, low),
    }


def simulate(seed, index_base, n, size, source, **fixed):
    """``n`` test images of ``source``: clean, one noisy copy each, the other copy, records."""
    out = [
        general_data.make_image(
            seed, "test", (index_base, k), size, [source], source=source, **fixed
        )
        for k in range(n)
    ]
    return [o[0] for o in out], [o[1] for o in out], [o[2] for o in out], [o[3] for o in out]


def cell_grid(snrs: list[float]) -> list[tuple[str, float, str, bool]]:
    """The quality cells ``(source, SNR, noise, CTF)`` in order; a cell's index seeds its images."""
    return list(product(general_data.sources("test"), snrs, ("white", "correlated"), (False, True)))


def quality(args, denoiser: Denoiser) -> dict[str, Any]:
    sources = general_data.sources("test")
    cells = []
    for cell_index, (source, snr, noise, ctf) in enumerate(cell_grid(args.snrs)):
        clean, noisy, _, records = simulate(
            args.seed, cell_index, args.n_images, args.size, source, snr=snr, noise=noise, ctf=ctf
        )
        scores = filters_and_raw(clean, noisy)
        denoised = list(denoiser(np.stack(noisy)))
        scores["psnr_model"] = mean_psnr(clean, denoised)
        scores["margin_over_best_filter_db"] = scores["psnr_model"] - scores["psnr_best_filter"]
        cell = {"source": source, "snr": snr, "noise": noise, "ctf": ctf, **scores,
                "pixel_size_angstrom": [r["pixel_size_angstrom"] for r in records]}  # fmt: skip
        cells.append(cell)
        print(f"{source} SNR {snr:.3f} {noise} ctf={ctf}: raw {scores['psnr_raw']:.2f}, best "
              f"filter {scores['psnr_best_filter']:.2f}, model {scores['psnr_model']:.2f} dB "
              f"({scores['margin_over_best_filter_db']:+.2f})", flush=True)  # fmt: skip
    by_snr = []
    for snr in args.snrs:
        rows = [c for c in cells if c["snr"] == snr]
        by_snr.append({
            "snr": snr,
            **{key: float(np.mean([c[key] for c in rows]))
               for key in ("psnr_raw", "psnr_best_filter", "psnr_model",
                           "margin_over_best_filter_db")},
            "smallest_margin_db": float(min(c["margin_over_best_filter_db"] for c in rows)),
        })  # fmt: skip
    failing = [
        {k: c[k] for k in ("source", "snr", "noise", "ctf", "margin_over_best_filter_db")}
        for c in cells
        if not passes_bar(c["snr"], c["margin_over_best_filter_db"])
    ]
    return {
        "sources": sources,
        "cells": cells,
        "by_snr": by_snr,
        "bar": {
            "rule": f"margin over the best oracle filter >= {BAR_MARGIN_DB} dB in every cell at "
            f"SNR >= {BAR_SNR_FROM}, > 0 dB below it",
            "passed": not failing,
            "failing_cells": failing,
        },
    }


def finetune(args, loaded) -> dict[str, Any]:
    source = args.finetune_source
    fixed = {"snr": args.finetune_snr, "noise": "correlated", "ctf": True}
    _, train_a, train_b, _ = simulate(
        args.seed, FINETUNE_TRAIN_INDEX, args.finetune_train, args.size, source, **fixed
    )
    clean, noisy, _, _ = simulate(
        args.seed, FINETUNE_TEST_INDEX, args.n_images, args.size, source, **fixed
    )
    reference = filters_and_raw(clean, noisy)
    reference["psnr_general_as_shipped"] = mean_psnr(
        clean, list(Denoiser(loaded, device=args.device)(np.stack(noisy)))
    )
    budgets = []
    start_weights = {k: v.clone() for k, v in loaded.network.state_dict().items()}
    limits = (
        [("steps", s) for s in args.budget_steps] if args.budget_steps
        else [("minutes", m) for m in args.minutes]
    )  # fmt: skip
    for kind, value in limits:
        row: dict[str, Any] = {kind: value}
        for start in ("from_general", "from_scratch"):
            budget = {"max_steps": int(value)} if kind == "steps" else {
                "epochs": 1_000_000, "max_minutes": float(value)}  # fmt: skip
            if start == "from_general":  # what `cryoden train --init general` does
                budget["learning_rate"] = DEFAULT_LR * args.finetune_lr_factor
            config = TrainConfig(
                patch=min(64, args.size), batch_size=16, steps_per_epoch=25, seed=args.seed,
                threads=args.threads, early_stopping_patience=None, **budget,
            )  # fmt: skip
            with tempfile.TemporaryDirectory() as tmp:
                begin = time.perf_counter()
                try:
                    result = train(
                        "n2n", loaded.config.network, PairDataset(list(zip(train_a, train_b))),
                        None, config, out=Path(tmp) / "model", device=args.device,
                        initial_weights=start_weights if start == "from_general" else None,
                    )  # fmt: skip
                except DegenerateModelError as err:
                    row[start] = {"status": "degenerate", "reason": err.reason}
                    continue
                seconds = time.perf_counter() - begin
                model = load_model(result.model_path)
                score = mean_psnr(clean, list(Denoiser(model, device=args.device)(np.stack(noisy))))
            row[start] = {"psnr": score, "steps": result.steps, "wall_seconds": seconds}
            print(f"{kind} {value} {start}: {score:.2f} dB after {result.steps} steps", flush=True)
        budgets.append(row)
    return {
        "learning_rate": {"from_scratch": DEFAULT_LR,
                          "from_general": DEFAULT_LR * args.finetune_lr_factor},
        "dataset": {"source": source, **fixed, "n_train_pairs": args.finetune_train,
                    "n_test_images": args.n_images, "size_px": args.size},
        "reference": reference,
        "budgets": budgets,
    }  # fmt: skip


def oracle_bm3d(clean, noisy) -> tuple[float, float]:
    """BM3D (the optional ``bm3d`` package) with an oracle noise level: ``factor`` times each
    image's true noise standard deviation (``noisy - clean``, white noise), ``factor`` of
    :data:`BM3D_FACTORS` chosen with the clean images. The mean PSNR and the factor."""
    import bm3d  # optional: only --headroom-bm3d needs it

    def denoised(pair: tuple[np.ndarray, np.ndarray], factor: float) -> np.ndarray:
        c, x = pair  # the noise level is the oracle's: it needs the clean image
        sigma = factor * float(np.std(x.astype(np.float64) - c))
        return np.asarray(bm3d.bm3d(x.astype(np.float64), sigma_psd=sigma)).reshape(x.shape)

    return oracle(clean, list(zip(clean, noisy)), BM3D_FACTORS, denoised)


def headroom(args, loaded) -> dict[str, Any]:
    """The general model against specialists of its network on single conditions."""
    network = dataclasses.replace(loaded.config.network, **args.headroom_network)
    general = Denoiser(loaded, device=args.device)
    rows: list[dict[str, Any]] = []
    trainings: list[dict[str, Any]] = []
    for condition in args.headroom_conditions:
        noise, ctf_text = condition.split(":")
        fixed = {"snr": args.headroom_snr, "noise": noise, "ctf": ctf_text == "ctf"}
        triples = [
            general_data.make_image(
                args.seed, "train", (HEADROOM_TRAIN_INDEX + i,), args.size,
                general_data.sources("train"), **fixed,
            )[:3]
            for i in range(args.headroom_train)
        ]  # fmt: skip
        specialists = {}
        for scheme, pairs, fit_on in (
            ("n2n", [(a, b) for _, a, b in triples], "both"),
            ("care", [(a, clean) for clean, a, _ in triples], "a"),
        ):
            if scheme not in args.headroom_schemes:
                continue
            config = TrainConfig(
                patch=min(96, args.size), batch_size=16, steps_per_epoch=250, seed=args.seed,
                threads=args.threads, early_stopping_patience=None, epochs=1_000_000,
                max_steps=args.headroom_steps, learning_rate=args.headroom_lr or DEFAULT_LR,
            )  # fmt: skip
            with tempfile.TemporaryDirectory() as tmp:
                result = train(
                    scheme, network, PairDataset(pairs, fit_on=fit_on), None, config,
                    out=Path(tmp) / "model", device=args.device,
                )  # fmt: skip
                specialists[scheme] = Denoiser(load_model(result.model_path), device=args.device)
            trainings.append({
                "condition": condition, "scheme": scheme, "steps": result.steps,
                "best_epoch": result.best_epoch, "epochs": result.epochs,
                "train_losses": result.train_losses,
                "validation_losses": result.validation_losses,
                "warnings": result.warnings,
            })  # fmt: skip
        for cell_index, (source, snr, cell_noise, ctf) in enumerate(cell_grid(args.snrs)):
            if (snr, cell_noise, ctf) != (fixed["snr"], fixed["noise"], fixed["ctf"]):
                continue
            clean, noisy, _, _ = simulate(
                args.seed, cell_index, args.n_images, args.size, source, **fixed
            )
            stack = np.stack(noisy)
            best = filters_and_raw(clean, noisy)["psnr_best_filter"]
            scores = {"general": mean_psnr(clean, list(general(stack)))} | {
                SPECIALIST_NAMES[scheme]: mean_psnr(clean, list(specialist(stack)))
                for scheme, specialist in specialists.items()
            }
            bm3d_factor = {}
            if args.headroom_bm3d:
                scores["bm3d_oracle"], bm3d_factor["bm3d_sigma_factor"] = oracle_bm3d(clean, noisy)
            row = {"source": source, **fixed, **bm3d_factor, "psnr_best_filter": best,
                   **{f"psnr_{k}": v for k, v in scores.items()},
                   **{f"margin_{k}_db": v - best for k, v in scores.items()}}  # fmt: skip
            rows.append(row)
            print(", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                            for k, v in row.items()), flush=True)  # fmt: skip
    return {
        "specialists": {"network": ("the general model's" if not args.headroom_network else
                                    dataclasses.asdict(network)),
                        "parameters": (count_parameters(build_network(network))
                                       if args.headroom_schemes else None),
                        "schemes": args.headroom_schemes, "train_images": args.headroom_train,
                        "learning_rate": args.headroom_lr or DEFAULT_LR,
                        "validation": f"{TrainConfig().validation_fraction:g} of the training "
                                      "images held out",
                        "trainings": trainings,
                        "steps": args.headroom_steps, "patch": min(96, args.size),
                        "batch": 16, "train_streams": f"spawn_key (0, {HEADROOM_TRAIN_INDEX} + i)"},
        "rows": rows,
    }  # fmt: skip


def headroom_text(args) -> str:
    """What a headroom run sets against the general model, in words (its description)."""
    names = {"n2n": "Noise2Noise", "care": "supervised"}
    parts = []
    if args.headroom_schemes:
        network = "a larger network" if args.headroom_network else "its network"
        kinds = " and ".join(names[s] for s in args.headroom_schemes)
        parts.append(f"specialists of {network} trained on single conditions ({kinds})")
    if args.headroom_bm3d:
        parts.append("BM3D at an oracle noise level")
    return " and ".join(parts) or "nothing"


def _network_overrides(text: str) -> dict[str, Any]:
    """``key=value,...`` of integer NetworkConfig fields, e.g. ``base_channels=16,depth=4``."""
    pairs = (item.split("=", 1) for item in text.split(",") if item)
    return {key.strip(): int(value) for key, value in pairs}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="general", help="a shipped model's name or a path")
    parser.add_argument("--snrs", type=lambda t: [float(x) for x in t.split(",")],
                        default=[float(s) for s in STUDY_SNR_LEVELS])  # fmt: skip
    parser.add_argument("--n-images", type=int, default=8, help="test images per cell")
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default=None)
    parser.add_argument("--quick", action="store_true",
                        help="3 SNRs, 2 images of 96² per cell (checks the paths, not the model)")  # fmt: skip
    parser.add_argument("--finetune", action="store_true")
    parser.add_argument("--finetune-source", default="family:filament")
    parser.add_argument("--finetune-snr", type=float, default=0.05)
    parser.add_argument("--finetune-train", type=int, default=32, help="training pairs")
    parser.add_argument(
        "--finetune-lr-factor", type=float, default=FINE_TUNE_LR_FACTOR,
        help="the fine-tuning learning rate as a fraction of the default (default: train "
        "--init's)",
    )  # fmt: skip
    parser.add_argument("--minutes", type=lambda t: [float(x) for x in t.split(",")],
                        default=[1.0, 3.0, 10.0])  # fmt: skip
    parser.add_argument("--budget-steps", type=lambda t: [int(x) for x in t.split(",")],
                        default=None, help="same steps instead of same minutes")  # fmt: skip
    parser.add_argument("--headroom", action="store_true")
    parser.add_argument(
        "--headroom-conditions", type=lambda t: t.split(","), default=["white:ctf", "white:no"],
        help="noise:ctf|no, comma-separated",
    )  # fmt: skip
    parser.add_argument(
        "--headroom-network", type=_network_overrides, default={},
        help="the specialists' network: the general model's with these NetworkConfig fields "
        "changed, e.g. base_channels=16,depth=4 (default: unchanged)",
    )  # fmt: skip
    parser.add_argument(
        "--headroom-schemes", type=lambda t: [x for x in t.split(",") if x and x != "none"],
        default=["n2n", "care"],
        help="the specialists to train: n2n (Noise2Noise targets), care (clean targets), or "
        "none",
    )  # fmt: skip
    parser.add_argument(
        "--headroom-bm3d", action="store_true",
        help="also BM3D with an oracle noise level (white noise only; needs the bm3d package)",
    )  # fmt: skip
    parser.add_argument("--headroom-lr", type=float, default=None,
                        help="the specialists' learning rate (default: TrainConfig's)")  # fmt: skip
    parser.add_argument("--headroom-snr", type=float, default=float(STUDY_SNR_LEVELS[2]))
    parser.add_argument("--headroom-steps", type=int, default=4000)
    parser.add_argument("--headroom-train", type=int, default=600, help="training images")
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args()
    if args.quick:
        args.snrs, args.n_images, args.size = [0.01, 0.1, 0.5], 2, 96
        args.finetune_train = min(args.finetune_train, 8)
        args.headroom_snr, args.headroom_train = 0.1, min(args.headroom_train, 8)
        args.headroom_steps = min(args.headroom_steps, 20)
    if args.threads:
        torch.set_num_threads(args.threads)
    model_path = resolve_model(args.model)
    loaded = load_model(model_path)
    weights = model_path / "weights.safetensors" if model_path.is_dir() else model_path
    setting = {
        "model": args.model, "model_weights_sha256": file_sha256(weights),
        "model_training_steps": loaded.config.training.get("steps"), "seed": args.seed,
        "n_images_per_cell": args.n_images, "size_px": args.size, "snrs": args.snrs,
        "quick": args.quick, "threads": args.threads, "device": args.device,
        "held_out": {"structures": list(general_data.HELD_OUT_STRUCTURES),
                     "procedural_families": list(general_data.HELD_OUT_FAMILIES),
                     "random_streams": "spawn_key (1, cell, image): never used in training"},
    }  # fmt: skip
    if args.finetune:
        setting |= {"minutes": None if args.budget_steps else args.minutes,
                    "budget_steps": args.budget_steps}  # fmt: skip
        body = {"benchmark": "general_finetune", "setting": setting, **finetune(args, loaded)}
    elif args.headroom:
        setting |= {"headroom_snr": args.headroom_snr,
                    "headroom_conditions": args.headroom_conditions,
                    "bm3d_oracle": ({"factors_of_true_noise_sigma": BM3D_FACTORS.tolist(),
                                     "chosen": "per cell, with the clean images"}
                                    if args.headroom_bm3d else None)}  # fmt: skip
        body = {"benchmark": "general_headroom", "setting": setting, **headroom(args, loaded)}
    else:
        denoiser = Denoiser(loaded, device=args.device, threads=args.threads)
        body = {"benchmark": "general_model", "setting": setting, **quality(args, denoiser)}
    steps = setting.get("model_training_steps")
    trained = f" ({steps} training steps)" if steps is not None else ""
    what = (
        f"fine-tuning the shipped model{trained} against training from scratch on a held-out "
        "dataset"
        if args.finetune
        else f"the shipped general model{trained} against {headroom_text(args)}"
        if args.headroom
        else f"the shipped general model{trained} against oracle filters on held-out "
        "structures, shapes and seeds"
    )
    results = {"provenance": {**run_provenance(), "description": what}, **body}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
