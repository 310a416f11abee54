"""A one-minute tour: noise, classical filters and metrics on the embedded GroEL-like phantom.

Example::

    cryoden demo --out demo/

Projects the phantom, adds noise at three SNRs, applies each classical filter and prints CC,
PSNR and the FRC 0.143 crossing for each; writes PNG previews and ``demo/scores.json``. For the
whole study (learned methods included) run ``cryoden bench seed --quick``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.table import Table

from cryoden.cli.common import (
    echo,
    number,
    output_folder,
    print_table,
    write_json_atomic,
    write_provenance,
)
from cryoden.filters import apply_filter
from cryoden.io import export_preview, write_mrc
from cryoden.metrics import cross_correlation, frc, psnr, resolution_crossing
from cryoden.simulation.config import MIN_SIZE
from cryoden.simulation.datasets import simulate_images

FILTER_SETTINGS: dict[str, tuple[str, dict[str, Any]]] = {
    "lowpass-0.05": ("lowpass", {"cutoff_nyquist": 0.05}),
    "lowpass-0.2": ("lowpass", {"cutoff_nyquist": 0.2}),
    "gaussian-2": ("gaussian", {"sigma_px": 2.0}),
    "median-5": ("median", {"size": 5}),
    "wiener": ("wiener", {"size": 5}),
}


def command(
    out: Path = typer.Option(Path("demo"), "--out", metavar="DIR", help="Output folder."),
    size: int = typer.Option(
        128,
        "--size",
        help="Image side in pixels.",
        callback=number("--size", minimum=MIN_SIZE, maximum=4096),
    ),
    seed: int = typer.Option(
        0, "--seed", help="Random seed.", callback=number("--seed", minimum=0)
    ),
) -> None:
    """Add noise to a phantom projection, filter it and score every filter."""
    output_folder(out)
    snrs = (0.05, 0.1, 0.5)
    sample = next(
        iter(
            simulate_images(
                n_images=1, size=size, pixel_size_angstrom=2.0, snr_levels=snrs, seed=seed
            )
        )
    )
    clean = sample.clean
    write_mrc(out / "clean.mrc", clean, voxel_size_angstrom=2.0)
    export_preview(out / "clean.png", clean)
    rows: list[dict[str, Any]] = []
    for snr in snrs:
        noisy = sample.pairs[snr][0]
        export_preview(out / f"noisy_snr{snr}.png", noisy)
        for name, image in [("noisy", noisy)] + [
            (label, apply_filter(f, noisy, **p)) for label, (f, p) in FILTER_SETTINGS.items()
        ]:
            curve = frc(clean, image)
            rows.append({
                "snr": snr, "method": name, "cc": cross_correlation(clean, image),
                "psnr": psnr(clean, image), "frc_0.143": resolution_crossing(curve, 0.143),
            })  # fmt: skip
            if name != "noisy":
                export_preview(out / f"{name}_snr{snr}.png", image)
    table = Table(title="classical filters on the GroEL-like phantom (FRC in Nyquist units)")
    for col in ("SNR", "method", "CC", "PSNR (dB)", "FRC 0.143"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(f"{r['snr']}", r["method"], f"{r['cc']:.3f}", f"{r['psnr']:.2f}",
                      f"{r['frc_0.143']:.3f}")  # fmt: skip
    print_table(table)
    write_json_atomic(
        out / "scores.json",
        [
            {k: float(v) if isinstance(v, (float, np.floating)) else v for k, v in r.items()}
            for r in rows
        ],
    )
    write_provenance(out, "demo", {"size": size, "seed": seed})
    echo(f"previews and scores in {out}")
