"""Validation of ``cryoden check`` where the truth is known: simulated micrographs.

Clean micrograph-like fields (GroEL particles with a CTF; the test fields from the real 1AON
model in ``../shared/data/groel`` when present, the training fields from the embedded phantom)
get pairs of independent noisy halves at each SNR, white or with adjacent-pixel correlation
(``cryoden.noise.correlated``). For each denoiser ``f`` (a Gaussian filter, and a Noise2Noise
model trained for this SNR and noise on other fields, with a step budget on one thread), the
half-set estimate (:func:`cryoden.metrics.halfset.pair_terms`) and the single-image estimate
(:func:`cryoden.metrics.halfset.single_terms`) of the MSE of ``f(a)`` against the clean image are
compared with the true MSE over a set of at least 10^7 pixels, and the estimated gain in dB with
the true one, ``10 log10(mean((a - clean)**2) / mean((f(a) - clean)**2))``.

Reported per cell: the estimates, their standard errors, the true values, ``z = (estimate -
true) / standard error`` for the set, the share of images whose own ``|z|`` is below 1 and 2
(about 0.68 and 0.95 for a standard error that fits, more for a cautious one), and the gain's
error. Writes ``benchmarks/results/check_validation_<date>.json`` with provenance.

    python benchmarks/bench_check.py                      # the full validation
    python benchmarks/bench_check.py --n-test 4 --size 256 --snrs 0.1 --n2n-steps 20  # a smoke run
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from provenance import run_provenance  # benchmarks/ is on sys.path when run as a script

from cryoden.filters import gaussian_filter
from cryoden.inference.denoise import Denoiser
from cryoden.metrics.halfset import ErrorTerms, pair_terms, single_terms
from cryoden.models import load_model
from cryoden.noise.correlated import correlated_gaussian_noise
from cryoden.noise.models import noise_sigma_for_snr
from cryoden.simulation import simulate_images
from cryoden.simulation.ctf import CtfParams
from cryoden.training import TrainConfig, train
from cryoden.training.data import PairDataset
from cryoden.training.defaults import default_network

REPO = Path(__file__).resolve().parents[1]
DEFAULT_TEST = REPO.parent / "shared" / "data" / "groel" / "1AON.pdb.gz"
CTF = CtfParams(defocus_angstrom=15000.0, b_factor=50.0)
GAUSSIAN_SIGMA_PX = 2.0

Denoise = Callable[[np.ndarray], np.ndarray]


def clean_fields(structure: Path | None, n: int, size: int, *, seed: int, first: int) -> list:
    """``n`` clean fields (float64), from ``structure`` or the embedded phantom."""
    images = simulate_images(
        structure=structure, phantom=None if structure else "groel", n_images=n, size=size,
        pixel_size_angstrom=2.0, field=True, snr_levels=[1.0], ctf=CTF, seed=seed,
        first_index=first,
    )  # fmt: skip
    return [im.clean.astype(np.float64) for im in images]


def noisy_pair(clean: np.ndarray, snr: float, correlation: float, rng: np.random.Generator):
    """Two independent noisy copies of ``clean`` at ``snr``, float32."""
    sigma = noise_sigma_for_snr(clean, snr)
    a, b = (clean + correlated_gaussian_noise(clean.shape, correlation, rng=rng, sigma=sigma)
            for _ in range(2))  # fmt: skip
    return a.astype(np.float32), b.astype(np.float32)


def pair_rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *key]))


def train_n2n(fields: list, snr: float, correlation: float, args, out: Path) -> Denoise:
    """A Noise2Noise model trained on ``fields`` at this SNR and noise, with a step budget."""
    pairs = [
        noisy_pair(c, snr, correlation, pair_rng(args.seed, 7, i)) for i, c in enumerate(fields)
    ]
    config = TrainConfig(
        max_steps=args.n2n_steps, epochs=100_000, steps_per_epoch=50, patch=64, batch_size=8,
        threads=1, seed=args.seed, early_stopping_patience=None, validation_fraction=0.1,
    )  # fmt: skip
    network = default_network("n2n", base_channels=8)
    result = train("n2n", network, PairDataset(pairs), None, config, out=out)
    denoiser = Denoiser(load_model(result.model_path), precision="fp32", threads=1)
    return lambda image: np.asarray(denoiser(image), dtype=np.float64)


def z_share(rows: list[dict[str, float]], limit: float) -> float:
    z = [abs(r["z"]) for r in rows if math.isfinite(r["z"])]
    return float(np.mean([v < limit for v in z])) if z else math.nan


def validate(
    clean: list, f: Denoise, snr: float, correlation: float, cell: int, args
) -> dict[str, Any]:
    """One cell: the set's and the images' estimates against the truth."""
    pair_total, single_total = ErrorTerms(), ErrorTerms()
    true_sq = raw_sq = 0.0
    n_pixels = 0
    pair_rows, single_rows = [], []
    for i, c in enumerate(clean):
        a, b = noisy_pair(c, snr, correlation, pair_rng(args.seed, cell, i))
        d = np.asarray(f(a), dtype=np.float64)
        true_mse = float(np.mean((d - c) ** 2))
        terms = pair_terms(a, b, d, block_px=args.block)
        single = single_terms(a, f, rng=pair_rng(args.seed, cell, i, 1), block_px=args.block,
                              denoised=d)  # fmt: skip
        pair_total.extend(terms)
        single_total.extend(single)
        for rows, part in ((pair_rows, terms.summary()), (single_rows, single.summary())):
            se = part["estimated_mse_uncertainty"]
            rows.append({"z": (part["estimated_mse"] - true_mse) / se if se > 0 else math.nan})
        true_sq += true_mse * c.size
        raw_sq += float(np.sum((a - c) ** 2))
        n_pixels += c.size
    true_mse = true_sq / n_pixels
    true_gain = 10 * math.log10(raw_sq / true_sq)
    result: dict[str, Any] = {
        "true_mse": true_mse,
        "true_gain_db": true_gain,
        "true_noise_variance": raw_sq / n_pixels,
        "n_pixels": n_pixels,
    }
    for name, total, rows in (("pairs", pair_total, pair_rows), ("single", single_total,
                                                                  single_rows)):  # fmt: skip
        s = total.summary()
        se = s["estimated_mse_uncertainty"]
        result[name] = {
            "noise_variance": s["noise_variance"],
            "estimated_mse": s["estimated_mse"],
            "estimated_mse_uncertainty": se,
            "z": (s["estimated_mse"] - true_mse) / se,
            "within_uncertainty": abs(s["estimated_mse"] - true_mse) <= se,
            "within_2_uncertainty": abs(s["estimated_mse"] - true_mse) <= 2 * se,
            "relative_error": (s["estimated_mse"] - true_mse) / true_mse,
            "gain_db": s["gain_db"],
            "gain_db_uncertainty": s["gain_db_uncertainty"],
            "gain_error_db": s["gain_db"] - true_gain,
            "images_within_1_se": z_share(rows, 1.0),
            "images_within_2_se": z_share(rows, 2.0),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--snrs", default="0.01,0.1,0.5")
    parser.add_argument(
        "--correlations", default="0.0,0.3", help="adjacent-pixel noise correlation"
    )
    parser.add_argument("--n2n-correlations", default="0.3", help="noises the N2N model is run on")
    parser.add_argument("--n-test", type=int, default=40)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--n-train", type=int, default=16)
    parser.add_argument("--train-size", type=int, default=256)
    parser.add_argument("--n2n-steps", type=int, default=300)
    parser.add_argument("--block", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test-structure", type=Path, default=DEFAULT_TEST)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = args.out or REPO / "benchmarks" / "results" / (
        f"check_validation_{datetime.date.today().isoformat()}.json"
    )
    structure = args.test_structure if args.test_structure.is_file() else None
    test = clean_fields(structure, args.n_test, args.size, seed=args.seed + 1, first=100_000)
    train_fields = clean_fields(None, args.n_train, args.train_size, seed=args.seed, first=0)
    snrs = [float(s) for s in args.snrs.split(",")]
    correlations = [float(c) for c in args.correlations.split(",")]
    n2n_correlations = [float(c) for c in args.n2n_correlations.split(",") if c]
    cells = []
    cell = 0
    with tempfile.TemporaryDirectory() as tmp:
        for correlation in correlations:
            for snr in snrs:
                denoisers: dict[str, Denoise] = {
                    "gaussian": lambda x: gaussian_filter(x, sigma_px=GAUSSIAN_SIGMA_PX)
                }
                if correlation in n2n_correlations:
                    where = Path(tmp) / f"n2n_{correlation}_{snr}"
                    denoisers["n2n"] = train_n2n(train_fields, snr, correlation, args, where)
                for name, f in denoisers.items():
                    cell += 1
                    found = validate(test, f, snr, correlation, cell, args)
                    row = {"denoiser": name, "snr": snr, "noise_correlation": correlation, **found}
                    cells.append(row)
                    p = found["pairs"]
                    print(f"{name} snr={snr} rho={correlation}: true {found['true_mse']:.5g}, "
                          f"pairs {p['estimated_mse']:.5g} ± {p['estimated_mse_uncertainty']:.2g}"
                          f" (z {p['z']:+.2f}), gain error {p['gain_error_db']:+.3f} dB; single "
                          f"{found['single']['estimated_mse']:.5g} "
                          f"(z {found['single']['z']:+.2f})", flush=True)  # fmt: skip
    pairs_ok = [abs(c["pairs"]["gain_error_db"]) <= 0.5 for c in cells]
    record = {
        "provenance": run_provenance(),
        "setting": {
            **{k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "test_structure": str(structure or "phantom:groel"),
            "train_structure": "phantom:groel",
            "ctf": CTF.__dict__,
            "gaussian_sigma_px": GAUSSIAN_SIGMA_PX,
            "n2n_network": "n2n default, base 8",
            "pixel_size_angstrom": 2.0,
        },  # fmt: skip
        "summary": {
            "cells": len(cells),
            "pairs_within_1_se": sum(c["pairs"]["within_uncertainty"] for c in cells),
            "pairs_within_2_se": sum(c["pairs"]["within_2_uncertainty"] for c in cells),
            "pairs_gain_within_0.5_db": sum(pairs_ok),
            "single_within_2_se": sum(c["single"]["within_2_uncertainty"] for c in cells),
            "single_gain_within_0.5_db": sum(
                abs(c["single"]["gain_error_db"]) <= 0.5 for c in cells
            ),
        },
        "cells": cells,
    }
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record["summary"]))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
