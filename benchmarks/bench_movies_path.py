"""The movie path end to end, against ground truth: simulate -> split-frames -> train -> denoise.

Every step is the ``cryoden`` command a user runs, as a subprocess:

1. ``cryoden simulate --movies``: training movies of two structures (the embedded GroEL-like
   phantom and, when ``../shared/data/groel`` has it, the single GroEL ring 1OEL), each set
   with its own seed; test movies of structures the model never sees (the GroEL-GroES complex
   1AON and, with ``--test-map``, the EMD-1080 GroEL map) with other seeds, each with its clean
   micrograph (expected counts of the drift-free sum).
2. ``cryoden split-frames --align``: even/odd sums of every movie, drift removed with the
   default (bilinear) interpolation, which correlates neighbouring pixels' noise.
3. ``cryoden train n2n`` on all training movies' even/odd sums, for ``--steps`` optimiser
   steps on ``--threads`` torch threads (a step budget: the same seed gives the same model).
4. ``cryoden denoise`` of the test movies' even and odd sums; the denoised micrograph is their
   sum (as cryoCARE does; each half is denoised at the dose the model was trained on). Also
   scored: denoising the full sum (even + odd) directly.

Scores, as in ``bench_quality.py``: PSNR against the clean micrograph (data range of the clean
image, no rescaling of the images), on the interior (``--border`` pixels left out on each side,
where aligned frames are extended by their edge pixels), averaged per test structure. The
classical reference is the best Gaussian filter and the best low-pass of the full aligned sum,
each with its parameter chosen *with the clean micrographs in hand* per test structure (oracle
filters: an upper bound for those filters); a per-micrograph oracle is recorded too, and, for
reference only, a radial Wiener filter built from each micrograph's true signal and noise
spectra (:func:`wiener_oracle`, a bound for linear filters that no user can build). The bar:
the learned path beats the best oracle filter by at least ``--bar-db`` dB on every test
structure.

With ``--ceilings``, two references that no user can build, to tell how much any denoiser could
gain here (neither is in the bar):

* ``supervised``: ``cryoden train care`` on the training movies' full aligned sums with their
  clean micrographs as targets (same network, steps and seed as the Noise2Noise model), which
  then denoises the test sums: what this network learns with perfect targets.
* ``known_everything_but_texture``: the ice's molecular texture is a Gaussian random field; an
  oracle that knows everything else in the clean micrograph (particles, ice thickness, CTF:
  the test movies simulated again with the same seeds and ``--no-ice-texture``) must still
  estimate the texture from texture plus noise, at best with the Wiener filter of the
  texture's and the noise's 2D power spectra (the noise's from the even - odd difference):
  :func:`texture_oracle`. For a Gaussian field in Gaussian noise no estimator does better, so
  its PSNR bounds every denoiser's (up to the noise's departure from Gaussian and the
  texture's from stationarity, where particles displace the ice).

    python benchmarks/bench_movies_path.py --steps 5000 --workdir /tmp/movies_path \\
        --json benchmarks/results/movies_path_$(date +%F).json

With ``--workdir``, finished stages (simulated sets, split pairs, the model, denoised images)
are kept and not redone, so ``--until data`` can prepare the movies before the training runs.
Run one at a time (one training); timings are not reported.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import mrcfile
import numpy as np
from provenance import run_provenance  # benchmarks/ is on sys.path when run as a script

from cryoden.filters import gaussian_filter, lowpass
from cryoden.metrics import psnr

REPO = Path(__file__).resolve().parents[1]
GROEL = REPO.parent / "shared" / "data" / "groel"
CRYODEN = str(Path(sys.executable).with_name("cryoden"))
GAUSSIAN_SIGMAS_PX = np.linspace(0.5, 8.0, 31)
LOWPASS_CUTOFFS = np.linspace(0.04, 0.8, 39)


def run(*args: object) -> None:
    """Run one ``cryoden`` command; stop with its message if it fails."""
    command = [CRYODEN, "--quiet", *map(str, args)]
    print("$", " ".join(command[1:]), flush=True)
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(command)}\n{done.stderr.strip()}")


def read(path: Path) -> np.ndarray:
    with mrcfile.open(path, permissive=True) as mrc:
        return np.asarray(mrc.data, dtype=np.float32)


def write(path: Path, image: np.ndarray) -> None:
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(image.astype(np.float32))


def interior(image: np.ndarray, border: int) -> np.ndarray:
    return image[border:-border, border:-border] if border else image


def scores(clean: list[np.ndarray], images: list[np.ndarray], border: int) -> list[float]:
    return [psnr(interior(c, border), interior(x, border)) for c, x in zip(clean, images)]


def oracle(clean, noisy, border, name, values, apply) -> dict:
    """The filter parameter with the best mean PSNR over a set, and the best per image."""
    table = np.array([scores(clean, [apply(x, v) for x in noisy], border) for v in values])
    best = int(np.argmax(table.mean(axis=1)))
    return {
        "filter": name,
        "best_parameter": float(values[best]),
        "psnr": float(table[best].mean()),
        "psnr_per_image": table[best].round(4).tolist(),
        "psnr_best_parameter_per_image": float(table.max(axis=0).mean()),
    }


def wiener_oracle(clean: np.ndarray, noisy: np.ndarray, rings: int = 256) -> np.ndarray:
    """The noisy image through the radial Wiener filter ``S / (S + N)`` whose signal and noise
    spectra ``S``, ``N`` are measured on ``rings`` frequency rings from the clean image and the
    noise itself: the best radially symmetric linear filter of one image, known only with the
    clean image in hand (a bound for linear filters, not a usable method)."""
    c, x = clean.astype(np.float64), noisy.astype(np.float64)
    fy = np.fft.fftfreq(c.shape[0])[:, None]
    fx = np.fft.rfftfreq(c.shape[1])[None, :]
    ring = np.minimum((np.hypot(fy, fx) / 0.5 * rings).astype(int), rings)
    signal_power = np.abs(np.fft.rfft2(c - c.mean())) ** 2
    noise_power = np.abs(np.fft.rfft2(x - c)) ** 2
    counts = np.bincount(ring.ravel(), minlength=rings + 1)
    s_ring = np.bincount(ring.ravel(), signal_power.ravel(), rings + 1) / np.maximum(counts, 1)
    n_ring = np.bincount(ring.ravel(), noise_power.ravel(), rings + 1) / np.maximum(counts, 1)
    gain = (s_ring / np.maximum(s_ring + n_ring, 1e-30))[ring]
    gain[0, 0] = 1.0
    return np.fft.irfft2(np.fft.rfft2(x) * gain, s=c.shape)


def texture_oracle(
    clean: np.ndarray,
    clean_without_texture: np.ndarray,
    even: np.ndarray,
    odd: np.ndarray,
    smooth_bins: int = 7,
) -> np.ndarray:
    """The clean micrograph as an oracle best estimates it knowing everything but the ice's
    texture: ``clean_without_texture`` plus the texture ``T = clean - clean_without_texture``
    estimated from ``even + odd - clean_without_texture`` (``T`` plus noise) by the Wiener
    filter ``S_T / (S_T + N)``, with ``S_T`` the power spectrum of ``T`` and ``N`` that of
    ``even - odd`` (the sum's noise), each smoothed over ``smooth_bins``² frequency bins."""
    from scipy.ndimage import uniform_filter

    base = clean_without_texture.astype(np.float64)
    texture = clean.astype(np.float64) - base
    noise = even.astype(np.float64) - odd.astype(np.float64)
    s_t = uniform_filter(
        np.abs(np.fft.fft2(texture - texture.mean())) ** 2, smooth_bins, mode="wrap"
    )
    s_n = uniform_filter(np.abs(np.fft.fft2(noise - noise.mean())) ** 2, smooth_bins, mode="wrap")
    gain = s_t / np.maximum(s_t + s_n, 1e-30)
    gain[0, 0] = 1.0
    observed = even.astype(np.float64) + odd.astype(np.float64) - base
    return base + np.real(np.fft.ifft2(np.fft.fft2(observed) * gain))


def sum_halves(folder: Path, prefix: str, name: str) -> np.ndarray:
    """Image ``name`` of ``folder/<prefix>even`` plus that of ``folder/<prefix>odd``: a movie's
    full sum from its halves (or its denoised micrograph from its denoised halves)."""
    return read(folder / f"{prefix}even" / name) + read(folder / f"{prefix}odd" / name)


def movie_options(args: argparse.Namespace) -> list[object]:
    texture = ["--no-ice-texture"] if args.no_ice_texture else []
    return [*texture,
        "--size", args.size, "--pixel-size", args.pixel_size, "--frames", args.frames,
        "--dose-per-frame", args.dose_per_frame,
    ]  # fmt: skip


def structure_option(path: Path | None) -> list[object]:
    return ["--structure", path] if path is not None else []


def training_sets(args: argparse.Namespace) -> list[tuple[str, Path | None, int]]:
    """``(name, structure or None for the phantom, seed)`` of each training set."""
    sets: list[tuple[str, Path | None, int]] = [("phantom", None, args.train_seeds[0])]
    if (GROEL / "1OEL.pdb").is_file() and not args.phantom_only:
        sets.append(("1OEL", GROEL / "1OEL.pdb", args.train_seeds[1]))
    return sets


def test_sets(args: argparse.Namespace) -> list[tuple[str, Path, int]]:
    """``(name, structure, seed)`` of each test set: never a training structure or seed."""
    structures = [("1AON", GROEL / "1AON.pdb.gz")]
    if args.test_map:
        structures.append(("EMD-1080", GROEL / "emd_1080_groel_11.5A.mrc"))
    missing = [str(p) for _, p in structures if not p.is_file()]
    if missing:
        sys.exit(f"test structures not found: {', '.join(missing)}")
    return [(name, path, seed) for name, path in structures for seed in args.test_seeds]


def simulate_and_split(work: Path, name: str, structure: Path | None, seed: int, n: int, args):
    """Movies of one set into ``work/name``, their even/odd sums into ``work/name_pairs``."""
    if not (work / name / "manifest.json").is_file():
        run("simulate", "--movies", "--out", work / name, *structure_option(structure),
            "--n-images", n, "--seed", seed, *movie_options(args))  # fmt: skip
    pairs = work / f"{name}_pairs"
    movies = sorted((work / name / "movies").glob("*.mrc"))
    if len(list((pairs / "odd").glob("*.mrc"))) < len(movies):
        shutil.rmtree(pairs, ignore_errors=True)  # an unfinished split: redo it
        run("split-frames", *movies, "-o", pairs, "--align")


def gather_training_pairs(work: Path, names: list[str]) -> Path:
    """Links to every training set's even/odd sums in one folder pair (names prefixed)."""
    out = work / "train_pairs"
    for half in ("even", "odd"):
        (out / half).mkdir(parents=True, exist_ok=True)
        for name in names:
            for path in sorted((work / f"{name}_pairs" / half).glob("*.mrc")):
                link = out / half / f"{name}_{path.name}"
                if not link.exists():
                    link.symlink_to(path.resolve())
    return out


def simulate_without_texture(work: Path, name: str, structure: Path, seed: int, n: int, args):
    """The test set ``name`` simulated again without the ice's texture, into
    ``work/name_no_texture`` (same seeds: same particles, ice thickness, CTF and drift)."""
    out = work / f"{name}_no_texture"
    if not (out / "manifest.json").is_file():
        run("simulate", "--movies", "--out", out, *structure_option(structure),
            "--n-images", n, "--seed", seed, *movie_options(args), "--no-ice-texture")  # fmt: skip


def train_supervised(work: Path, names: list[str], args) -> None:
    """``cryoden train care`` from the training movies' full aligned sums to their clean
    micrographs (the supervised ceiling), into ``work/supervised_model``."""
    noisy, clean = work / "supervised_in" / "sum", work / "supervised_in" / "clean"
    for folder in (noisy, clean):
        folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        pairs = work / f"{name}_pairs"
        for path in sorted((pairs / "even").glob("*.mrc")):
            target = noisy / f"{name}_{path.name}"
            if not target.exists():
                write(target, sum_halves(pairs, "", path.name))
            link = clean / f"{name}_{path.name}"
            if not link.exists():
                link.symlink_to((work / name / "clean" / path.name).resolve())
    if not (work / "supervised_model" / "config.json").is_file():
        run("train", "care", "--a", noisy, "--b", clean, "--out", work / "supervised_model",
            "--steps", args.steps, "--threads", args.threads, "--seed", args.train_seeds[0],
            "--no-preview")  # fmt: skip


def denoise_set(work: Path, name: str, threads: int) -> None:
    """Denoised even, odd and full sums of one test set (skipped when present), and the full
    sums through the supervised model when there is one."""
    pairs = work / f"{name}_pairs"
    names = sorted(p.name for p in (pairs / "even").glob("*.mrc"))
    full = work / f"{name}_sum"
    full.mkdir(exist_ok=True)
    for n in names:
        write(full / n, sum_halves(pairs, "", n))
    for label, folder in (("even", pairs / "even"), ("odd", pairs / "odd"), ("sum", full)):
        out = work / f"{name}_denoised_{label}"
        if len(list(out.glob("*.mrc"))) < len(names):
            run("denoise", "--model", work / "model", *[folder / n for n in names], "-o", out,
                "--threads", threads, "--no-preview", "--overwrite")  # fmt: skip
    out = work / f"{name}_supervised_sum"
    done = len(list(out.glob("*.mrc"))) == len(names)
    if (work / "supervised_model" / "config.json").is_file() and not done:
        run("denoise", "--model", work / "supervised_model", *[full / n for n in names], "-o",
            out, "--threads", threads, "--no-preview", "--overwrite")  # fmt: skip


def score_structure(work: Path, sets: list[str], border: int) -> dict:
    """Scores of the test sets of one structure together."""
    clean, noisy, halves, whole, seeds = [], [], [], [], []
    supervised: list[np.ndarray] = []
    known: list[np.ndarray] = []
    for name in sets:
        pairs = work / f"{name}_pairs"
        names = sorted(p.name for p in (pairs / "even").glob("*.mrc"))
        manifest = json.loads((work / name / "manifest.json").read_text())
        seeds += [m["seed"] for m in manifest["movies"]]
        for n in names:
            clean.append(read(work / name / "clean" / n))
            noisy.append(read(work / f"{name}_sum" / n))
            halves.append(sum_halves(work, f"{name}_denoised_", n))
            whole.append(read(work / f"{name}_denoised_sum" / n))
            if (work / f"{name}_supervised_sum" / n).is_file():
                supervised.append(read(work / f"{name}_supervised_sum" / n))
            if (work / f"{name}_no_texture" / "clean" / n).is_file():
                known.append(texture_oracle(
                    clean[-1], read(work / f"{name}_no_texture" / "clean" / n),
                    read(pairs / "even" / n), read(pairs / "odd" / n),
                ))  # fmt: skip
    filters = [
        oracle(clean, noisy, border, "gaussian", GAUSSIAN_SIGMAS_PX,
               lambda x, v: gaussian_filter(x, sigma_px=v)),
        oracle(clean, noisy, border, "lowpass", LOWPASS_CUTOFFS,
               lambda x, v: lowpass(x, cutoff_nyquist=v, edge="soft")),
    ]  # fmt: skip
    best = max(filters, key=lambda f: f["psnr"])
    learned = scores(clean, halves, border)
    wiener = scores(clean, [wiener_oracle(c, x) for c, x in zip(clean, noisy)], border)
    ceilings = {
        label: float(np.mean(scores(clean, images, border)))
        for label, images in (("supervised", supervised), ("known_everything_but_texture", known))
        if len(images) == len(clean)
    }
    return {
        "sets": sets,
        "movie_seeds": seeds,
        "n_micrographs": len(clean),
        "psnr_noisy_sum": float(np.mean(scores(clean, noisy, border))),
        "oracle_filters": filters,
        "best_oracle_filter": {k: best[k] for k in ("filter", "best_parameter", "psnr")},
        "psnr_learned_even_plus_odd": float(np.mean(learned)),
        "psnr_learned_even_plus_odd_per_image": np.round(learned, 4).tolist(),
        "psnr_learned_full_sum": float(np.mean(scores(clean, whole, border))),
        "psnr_radial_wiener_oracle_not_in_bar": float(np.mean(wiener)),
        "margin_over_best_oracle_db": float(np.mean(learned)) - best["psnr"],
        "margin_over_per_image_oracle_db": float(np.mean(learned))
        - max(f["psnr_best_parameter_per_image"] for f in filters),
        **(
            {
                "ceilings_not_in_bar": ceilings,
                "ceiling_margins_over_best_oracle_db": {
                    k: v - best["psnr"] for k, v in ceilings.items()
                },
            }
            if ceilings
            else {}
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=5000, help="training optimiser steps")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--train-movies", type=int, default=10, help="per training structure")
    parser.add_argument("--phantom-only", action="store_true", help="train on the phantom only")
    parser.add_argument("--test-movies", type=int, default=2, help="per test structure and seed")
    parser.add_argument("--test-seeds", type=int, nargs="+", default=[12, 13])
    parser.add_argument("--test-map", action="store_true", help="also test on the EMD-1080 map")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--pixel-size", type=float, default=2.0)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--dose-per-frame", type=float, default=1.5)
    parser.add_argument(
        "--train-seeds", type=int, nargs=2, default=[11, 21], help="phantom and 1OEL movie seeds"
    )
    parser.add_argument(
        "--no-ice-texture", action="store_true", help="movies without the ice's molecular texture"
    )
    parser.add_argument("--border", type=int, default=16, help="pixels left out when scoring")
    parser.add_argument("--bar-db", type=float, default=3.0)
    parser.add_argument(
        "--ceilings",
        action="store_true",
        help="also the supervised and the known-everything-but-texture references",
    )
    parser.add_argument("--until", choices=("data", "all"), default="all")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the files here")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    train = training_sets(args)
    test = test_sets(args)
    if {seed for *_, seed in test} & {seed for *_, seed in train}:
        sys.exit("test seeds must differ from the training seeds")
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        test_names = [f"test_{name}_{seed}" for name, _, seed in test]
        for name, structure, seed in train:
            simulate_and_split(work, f"train_{name}", structure, seed, args.train_movies, args)
        for set_name, (_, structure, seed) in zip(test_names, test):
            simulate_and_split(work, set_name, structure, seed, args.test_movies, args)
            if args.ceilings and not args.no_ice_texture:
                simulate_without_texture(work, set_name, structure, seed, args.test_movies, args)
        if args.until == "data":
            return
        pairs = gather_training_pairs(work, [f"train_{name}" for name, _, _ in train])
        if not (work / "model" / "config.json").is_file():
            run("train", "n2n", "--a", pairs / "even", "--b", pairs / "odd", "--out",
                work / "model", "--steps", args.steps, "--threads", args.threads,
                "--seed", args.train_seeds[0], "--no-preview")  # fmt: skip
        if args.ceilings:
            train_supervised(work, [f"train_{name}" for name, _, _ in train], args)
        for set_name in test_names:
            denoise_set(work, set_name, args.threads)
        model_config = json.loads((work / "model" / "config.json").read_text())
        by_structure: dict[str, list[str]] = {}
        for set_name, (name, _, _) in zip(test_names, test):
            by_structure.setdefault(name, []).append(set_name)
        per_structure = {
            name: score_structure(work, sets, args.border) for name, sets in by_structure.items()
        }
        manifest = json.loads((work / test_names[0] / "manifest.json").read_text())
        train_seeds = {
            name: [m["seed"] for m in json.loads(
                (work / f"train_{name}" / "manifest.json").read_text())["movies"]]
            for name, _, _ in train
        }  # fmt: skip

    margins = {name: r["margin_over_best_oracle_db"] for name, r in per_structure.items()}
    results = {
        "benchmark": "movies_path",
        "path": "simulate --movies -> split-frames --align -> train n2n -> denoise (even, odd)",
        "settings": {**vars(args), "workdir": str(args.workdir), "json": str(args.json)},
        "train_sets": [
            {"name": n, "structure": str(s) if s else "embedded GroEL-like phantom", "seed": seed}
            for n, s, seed in train
        ],
        "train_movie_seeds": train_seeds,
        "test_sets": [{"name": n, "structure": str(s), "seed": seed} for n, s, seed in test],
        "simulation_parameters": manifest["parameters"],
        "scoring": f"mean PSNR (dB, data range of the clean micrograph, images not rescaled) "
        f"per test structure, {args.border}-pixel border left out; oracle filter parameters "
        f"chosen per test structure with the clean micrographs",
        "per_test_structure": per_structure,
        "margin_over_best_oracle_db": margins,
        "bar_db": args.bar_db,
        "passes_bar": bool(min(margins.values()) >= args.bar_db),
        "model_training": model_config.get("training"),
    }
    summary = {
        name: {k: r[k] for k in ("psnr_noisy_sum", "best_oracle_filter",
                                 "psnr_learned_even_plus_odd", "psnr_learned_full_sum",
                                 "psnr_radial_wiener_oracle_not_in_bar",
                                 "margin_over_best_oracle_db", "ceilings_not_in_bar") if k in r}
        for name, r in per_structure.items()
    }  # fmt: skip
    print(
        json.dumps({"per_test_structure": summary, "passes_bar": results["passes_bar"]}, indent=1)
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"provenance": run_provenance(), **results}, indent=2))


if __name__ == "__main__":
    main()
