"""The noise of the real particle stacks in ``../shared/data/particles``, as ``cryoden inspect
noise`` reads it from single images, with the figures that bound it.

For each stack: the noise variance and its correlation at lags 1-3 along x and y read from the
high-frequency band (the default lower edge 0.5 Nyquist, and 0.3 and 0.7 beside it, to show how
far the signal in the band moves them), the SNR, and, as an upper bound that holds the signal's
correlation too, the correlation of the raw images themselves. No pairs exist for these stacks,
so there is no noise-only reference.

    python benchmarks/bench_real_noise.py
    python benchmarks/bench_real_noise.py --out benchmarks/results/real_noise_2026-12-10.json
"""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path

import numpy as np
from provenance import run_provenance  # benchmarks/ is on sys.path when run as a script

from cryoden.io import read_mrc
from cryoden.io.stacks import as_images
from cryoden.metrics.noise_stats import (
    correlation_verdict,
    fit_separable_noise,
    measure_single,
    noise_autocorrelation,
    pool_measurements,
)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "particles"
STACKS = ("aspire_sample.mrcs", "relion31.mrcs")
BANDS = (0.3, 0.5, 0.7)


def _rounded(values: dict[str, list[float]]) -> dict[str, list[float]]:
    return {k: [round(float(v), 4) for v in vs] for k, vs in values.items()}


def measure_stack(path: Path) -> dict[str, object]:
    """One stack's noise figures (see the module docstring)."""
    stack = as_images(read_mrc(path)).astype(np.float64)
    pooled = pool_measurements([measure_single(image) for image in stack])
    return {
        "images": int(stack.shape[0]),
        "shape": list(stack.shape[1:]),
        "noise_variance": round(pooled.noise_variance, 5),
        "snr": round(float(pooled.snr), 4),
        "autocorrelation": _rounded(pooled.autocorrelation),
        "verdict": correlation_verdict(pooled.autocorrelation),
        "autocorrelation_by_band": {
            f"{low:.1f}": _rounded(fit_separable_noise(stack, low_nyquist=low).autocorrelation(3))
            for low in BANDS
        },
        "raw_image_autocorrelation": _rounded(noise_autocorrelation(stack, max_lag=3)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out = args.out or REPO / "benchmarks" / "results" / (
        f"real_noise_{datetime.date.today().isoformat()}.json"
    )
    stacks = {}
    for name in STACKS:
        path = args.data / name
        if not path.is_file():
            print(f"{path} not found; skipped")
            continue
        stacks[name] = measure_stack(path)
        print(name, json.dumps(stacks[name]))
    if not stacks:
        raise SystemExit(f"no particle stacks under {args.data}")
    record = {
        "provenance": run_provenance(),
        "method": "cryoden.metrics.noise_stats.measure_single per image, pooled; "
        "fit_separable_noise on the whole stack for the bands",
        "stacks": stacks,
    }
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
