"""Held-out denoising quality of the learned methods against oracle filters.

Training images are simulated from one structure (the embedded GroEL-like phantom by default);
test images from another that the models never see (the real 1AON GroEL–GroES model from
``../shared/data/groel`` by default). At SNR 0.1 and 128² images, each method trains on 48 images
(N2N: 48 noisy pairs; N2V and Neighbor2Neighbor: the 48 first images of the pairs) for at most
``--minutes`` minutes on this machine, then denoises the test images. Its mean PSNR against the
clean test images is compared with the best low-pass cutoff and the best Gaussian sigma chosen
*with the clean test images in hand* (oracle filters: an upper bound for those filters).

    python benchmarks/bench_quality.py --methods n2n-unet,n2n-seed5,n2n-seed4 --minutes 3
    python benchmarks/bench_quality.py --methods n2v,ne2ne,n2n-unet --json quality.json

Run it alone on the machine: the trainings are time-limited, so a loaded machine trains less.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from provenance import run_provenance  # benchmarks/ is on sys.path when run as a script

from cryoden.filters import gaussian_filter, lowpass
from cryoden.inference.denoise import Denoiser
from cryoden.metrics import psnr
from cryoden.models import load_model
from cryoden.nets.config import NetworkConfig
from cryoden.simulation.datasets import simulate_images
from cryoden.training import TrainConfig, train
from cryoden.training.data import PairDataset, SingleDataset
from cryoden.training.defaults import default_network
from cryoden.training.neighbor2neighbor import Neighbor2Neighbor

REPO = Path(__file__).resolve().parents[1]
DEFAULT_TEST = REPO.parent / "shared" / "data" / "groel" / "1AON.pdb.gz"

#: method -> (scheme, network config, needs pairs)
METHODS = {
    "n2n-unet": ("n2n", default_network("n2n"), True),
    "n2n-seed5": ("n2n", default_network("n2n", "seed5"), True),
    "n2n-seed4": ("n2n", default_network("n2n", "seed4"), True),
    "n2v": ("n2v", default_network("n2v"), False),
    "n2v2": ("n2v2", default_network("n2v2"), False),
    "ne2ne": ("ne2ne", default_network("ne2ne"), False),
}


def simulate(
    structure: Path | None, n: int, *, snr: float, size: int, pixel: float, seed: int, first: int
):
    images = simulate_images(
        structure=structure, phantom=None if structure else "groel", n_images=n, size=size,
        pixel_size_angstrom=pixel, snr_levels=[snr], seed=seed, first_index=first,
    )  # fmt: skip
    out = [(im.clean, *im.pairs[snr]) for im in images]
    return [o[0] for o in out], [o[1] for o in out], [o[2] for o in out]


def mean_psnr(clean: list[np.ndarray], images: list[np.ndarray]) -> float:
    return float(np.mean([psnr(c, x) for c, x in zip(clean, images)]))


def oracle(clean, noisy, name, values, apply):
    scores = [mean_psnr(clean, [apply(x, v) for x in noisy]) for v in values]
    best = int(np.argmax(scores))
    return {"filter": name, "best_parameter": float(values[best]), "psnr": scores[best]}


def high_frequency_ratio(clean: list[np.ndarray], images: list[np.ndarray]) -> float:
    """Mean over the test images of the excess power at the highest frequencies (0.9-1 Nyquist
    and the Nyquist lines) relative to the clean image; a grid or checkerboard shows above 1."""
    from cryoden.metrics.high_frequency import high_frequency_power_ratio

    return float(np.mean([high_frequency_power_ratio(x, c) for x, c in zip(images, clean)]))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--methods", default="n2n-unet,n2n-seed5,n2n-seed4,n2v,ne2ne")
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--snr", type=float, default=0.1)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument(
        "--pixel-size",
        type=float,
        default=3.5,
        help="Å; 128 px = 448 Å, about twice 1AON's largest dimension (a usual box)",
    )
    parser.add_argument("--n-train", type=int, default=48)
    parser.add_argument("--n-test", type=int, default=16)
    parser.add_argument(
        "--train-structure", type=Path, default=None, help="default: GroEL-like phantom"
    )
    parser.add_argument("--test-structure", type=Path, default=DEFAULT_TEST)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--patch", type=int, default=None, help="training patch (default: TrainConfig's)"
    )
    parser.add_argument("--batch", type=int, default=None, help="patches per step")
    parser.add_argument("--lr", type=float, default=None, help="learning rate")
    parser.add_argument(
        "--base-channels", type=int, default=None, help="override the networks' width"
    )
    parser.add_argument("--depth", type=int, default=None, help="override the U-Net's depth")
    parser.add_argument(
        "--space-to-depth", type=int, default=None, help="override the U-Net's space_to_depth"
    )
    parser.add_argument(
        "--gamma", type=float, default=None, help="Neighbor2Neighbor's regulariser weight"
    )
    parser.add_argument(
        "--reference",
        default=None,
        help="Neighbor2Neighbor's regulariser reference: polyphase (default) or full (the paper's)",
    )
    parser.add_argument(
        "--input-image",
        default=None,
        help="Neighbor2Neighbor's input image: cell-mean (default) or neighbour (the paper's)",
    )
    parser.add_argument("--keep-models", type=Path, help="copy the trained models here")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not args.test_structure.is_file():
        raise SystemExit(f"test structure {args.test_structure} not found; pass --test-structure")
    if args.threads:
        torch.set_num_threads(args.threads)

    sim = dict(snr=args.snr, size=args.size, pixel=args.pixel_size)
    _, train_a, train_b = simulate(
        args.train_structure, args.n_train, seed=args.seed, first=0, **sim
    )
    test_clean, test_noisy, _ = simulate(
        args.test_structure, args.n_test, seed=args.seed + 1, first=10_000, **sim
    )
    results = {
        "setting": {**vars(args), "train_structure": str(args.train_structure or "phantom:groel"),
                    "test_structure": str(args.test_structure), "json": None, "keep_models": None},
        "noisy_psnr": mean_psnr(test_clean, test_noisy),
        "oracle_lowpass": oracle(test_clean, test_noisy, "lowpass", np.geomspace(0.01, 1.0, 48),
                                 lambda x, c: lowpass(x, cutoff_nyquist=float(c))),
        "oracle_gaussian": oracle(test_clean, test_noisy, "gaussian", np.geomspace(0.3, 12.0, 48),
                                  lambda x, s: gaussian_filter(x, sigma_px=float(s))),
        "methods": {},
    }  # fmt: skip
    best_filter = max(results["oracle_lowpass"]["psnr"], results["oracle_gaussian"]["psnr"])
    print(f"noisy {results['noisy_psnr']:.2f} dB; oracle low-pass {results['oracle_lowpass']}; "
          f"oracle Gaussian {results['oracle_gaussian']}", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.methods.split(","):
            scheme, network, pairs = METHODS[name]
            overrides = {
                k: v
                for k, v in (
                    ("base_channels", args.base_channels),
                    ("depth", args.depth if network.arch == "unet" else None),
                    ("space_to_depth", args.space_to_depth if network.arch == "unet" else None),
                )
                if v
            }
            if overrides:
                network = NetworkConfig.from_dict({**network.to_dict(), **overrides})
            data = PairDataset(list(zip(train_a, train_b))) if pairs else SingleDataset(train_a)
            extra = {
                k: v
                for k, v in (
                    ("patch", args.patch),
                    ("batch_size", args.batch),
                    ("learning_rate", args.lr),
                )
                if v
            }
            config = TrainConfig(epochs=10_000, max_minutes=args.minutes, seed=args.seed,
                                 early_stopping_patience=None, **extra)  # fmt: skip
            if scheme == "ne2ne" and (args.gamma is not None or args.reference or args.input_image):
                scheme = Neighbor2Neighbor(
                    **({"gamma": args.gamma} if args.gamma is not None else {}),
                    **({"reference": args.reference} if args.reference else {}),
                    **({"input_image": args.input_image} if args.input_image else {}),
                )
            start = time.perf_counter()
            result = train(scheme, network, data, None, config, out=Path(tmp) / name)
            seconds = time.perf_counter() - start
            model = load_model(result.model_path)
            default = Denoiser(model)  # precision "auto": bf16 where the CPU has it natively
            denoised = list(default(np.stack(test_noisy)))
            score = mean_psnr(test_clean, denoised)
            fp32 = mean_psnr(
                test_clean, list(Denoiser(model, precision="fp32")(np.stack(test_noisy)))
            )
            extra_scores = {
                "high_frequency_power_ratio": high_frequency_ratio(test_clean, denoised)
            }
            if default.polyphase:  # Ne2Ne: also the full-size inference
                full = Denoiser(model, polyphase=False)
                extra_scores["psnr_full_size_inference"] = mean_psnr(
                    test_clean, list(full(np.stack(test_noisy)))
                )
            if args.keep_models:
                args.keep_models.mkdir(parents=True, exist_ok=True)
                shutil.copytree(result.model_path, args.keep_models / name, dirs_exist_ok=True)
            steps = sum(1 for _ in result.history) * config.steps_per_epoch
            results["methods"][name] = {
                "psnr": score, "margin_over_best_oracle_db": score - best_filter,
                "inference_precision": default.precision, "psnr_fp32": fp32,
                "train_seconds": seconds, "epochs": len(result.history), "approx_steps": steps,
                "best_epoch": result.best_epoch, "network": network.to_dict(), **extra_scores,
            }  # fmt: skip
            print(f"{name}: {score:.2f} dB ({score - best_filter:+.2f} dB over the best oracle "
                  f"filter; {default.precision} inference, fp32 {fp32:.3f} dB), "
                  f"{len(result.history)} epochs in {seconds:.0f} s {extra_scores}",
                  flush=True)  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"provenance": run_provenance(), **results}, indent=2))


if __name__ == "__main__":
    main()
