"""Compare images with a clean reference: CC, PSNR, SSIM and the FRC curve.

Example::

    cryoden evaluate --reference clean.mrc denoised.mrc noisy.mrc
    cryoden evaluate --reference clean.mrc denoised/*.mrc --json > scores.json

With ``--json``, stdout is one JSON list with one object per image: ``{"image", "cc", "psnr",
"ssim", "frc": {"frequency", "correlation"}, "frc_resolution": {"0.5", "0.143"}}``, frequencies
in Nyquist units (1 = Nyquist). PSNR uses the reference's data range, so a constant reference
is refused. An image identical to its reference has an infinite PSNR: JSON has no infinity, so
it is written as the string ``"inf"`` (and any other non-finite score likewise as ``"inf"``,
``"-inf"`` or ``"nan"``), keeping stdout valid JSON. A stack is compared section by section with
a reference stack of the same shape (``"image"`` is then ``path:index``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.table import Table

from cryoden.cli.common import echo, print_table
from cryoden.errors import InputFileError
from cryoden.io import probe_mrc, read_mrc
from cryoden.io.stacks import as_images
from cryoden.metrics import cross_correlation, frc, psnr, resolution_crossing, ssim


def _xyz(shape: tuple[int, ...]) -> str:
    """A header shape ``(nz, ny, nx)`` as ``nx×ny`` (``×nz`` for stacks)."""
    nz, ny, nx = shape
    return f"{nx}×{ny}" + (f"×{nz}" if nz > 1 else "")


def score(reference: np.ndarray, image: np.ndarray, pixel_size: float | None) -> dict[str, Any]:
    """All metrics of one image against its reference."""
    curve = frc(reference, image, pixel_size_angstrom=pixel_size)
    return {
        "cc": float(cross_correlation(reference, image)),
        "psnr": float(psnr(reference, image)),
        "ssim": float(ssim(reference, image)),
        "frc": {
            "frequency": [float(f) for f in curve.frequency_nyquist],
            "correlation": [float(c) for c in curve.correlation],
        },
        "frc_resolution": {
            "0.5": float(resolution_crossing(curve, 0.5)),
            "0.143": float(resolution_crossing(curve, 0.143)),
        },
    }


def json_number(value: Any) -> Any:
    """``value`` with non-finite floats as the strings ``"inf"``, ``"-inf"`` and ``"nan"``
    (strict JSON has no such numbers), in nested lists and dicts too."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else "inf" if value > 0 else "-inf"
    if isinstance(value, list):
        return [json_number(v) for v in value]
    if isinstance(value, dict):
        return {k: json_number(v) for k, v in value.items()}
    return value


def command(
    inputs: list[Path] = typer.Argument(..., metavar="IN...", help="Images to score."),
    reference: Path = typer.Option(..., "--reference", "-r", metavar="CLEAN.mrc"),
    as_json: bool = typer.Option(
        False,
        "--json",
        help='Print one JSON list on stdout (strict JSON: an infinite PSNR is the string "inf").',
    ),
) -> None:
    """Score images against a clean reference (CC, PSNR, SSIM, FRC)."""
    ref_shape = probe_mrc(reference)
    for path in inputs:  # check every header before reading any data
        probe_mrc(path)
    ref = read_mrc(reference)
    ref_stack = as_images(ref)
    for i, section in enumerate(ref_stack):
        if not float(section.max() - section.min()) > 0:
            where = "" if len(ref_stack) == 1 else f" (section {i})"
            raise InputFileError(
                reference,
                f"is constant{where}: with a data range of 0, PSNR and SSIM are undefined",
            )
    for path in inputs:  # check every input before scoring any
        shape = probe_mrc(path)
        if shape != ref_shape:
            raise InputFileError(
                path, f"shape {_xyz(shape)} does not match the reference {_xyz(ref_shape)}"
            )
    rows: list[dict[str, Any]] = []
    for path in inputs:
        mrc = read_mrc(path)
        stack = as_images(mrc)
        for i, (r, image) in enumerate(zip(ref_stack, stack)):
            name = mrc.path if len(stack) == 1 else f"{mrc.path}:{i}"
            rows.append({"image": str(name), **score(r, image, ref.pixel_size_angstrom)})
    if as_json:
        echo(json.dumps(json_number(rows), allow_nan=False))
        return
    table = Table(title=f"against {reference}")
    for col in ("image", "CC", "PSNR (dB)", "SSIM", "FRC 0.5", "FRC 0.143"):
        table.add_column(col, justify="left" if col == "image" else "right")
    for row in rows:
        res = row["frc_resolution"]
        table.add_row(
            row["image"],
            f"{row['cc']:.4f}",
            f"{row['psnr']:.2f}",
            f"{row['ssim']:.4f}",
            f"{res['0.5']:.3f}",
            f"{res['0.143']:.3f}",
        )
    print_table(table)
    echo("FRC crossings in Nyquist units (1 = Nyquist).")
