"""Scores of a stack of images against their clean references, averaged over the stack.

PSNR (data range of each clean reference), SSIM and the Pearson CC are averaged over the
images; the FRC curve is averaged ring by ring, and its 0.5 and 0.143 crossings are read off the
averaged curve (Nyquist units, 1 = Nyquist; 1.0 when the curve never falls below).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from cryoden.metrics import cross_correlation, frc, psnr, resolution_crossing, ssim

#: FRC thresholds reported (keys of ``frc_resolution``).
FRC_THRESHOLDS: tuple[float, ...] = (0.5, 0.143)


def _threshold_key(threshold: float) -> str:
    return f"{threshold:g}"


def score_stack(
    clean: np.ndarray, images: np.ndarray, *, pixel_size_angstrom: float | None = None
) -> dict[str, Any]:
    """Average scores of ``images`` against ``clean`` (both ``(N, H, W)``).

    Parameters
    ----------
    clean, images
        Stacks of the same shape.
    pixel_size_angstrom
        Pixel size, for the resolutions in Å.

    Returns
    -------
    dict
        ``psnr``, ``ssim``, ``cc`` (means), ``frc`` (``{"frequency", "correlation"}``, the mean
        curve), ``frc_resolution`` (``{"0.5", "0.143"}`` in Nyquist units) and
        ``frc_resolution_angstrom`` (same keys, Å; ``None`` without a pixel size).
    """
    clean = np.asarray(clean, dtype=np.float32)
    images = np.asarray(images, dtype=np.float32)
    if clean.shape != images.shape or clean.ndim != 3:
        raise ValueError(
            f"expected two (N, H, W) stacks of one shape, got {clean.shape}, {images.shape}"
        )
    curves = [frc(c, d, pixel_size_angstrom=pixel_size_angstrom) for c, d in zip(clean, images)]
    mean_correlation = np.mean(
        [np.asarray(c.correlation, dtype=np.float64) for c in curves], axis=0
    )
    mean_curve = dataclasses.replace(curves[0], correlation=mean_correlation)
    crossings = {
        _threshold_key(t): float(resolution_crossing(mean_curve, t)) for t in FRC_THRESHOLDS
    }
    angstrom: dict[str, float | None] = {}
    for key, f in crossings.items():
        angstrom[key] = (
            float(2.0 * pixel_size_angstrom / f) if pixel_size_angstrom and f > 0 else None
        )
    return {
        "psnr": float(np.mean([psnr(c, d) for c, d in zip(clean, images)])),
        "ssim": float(np.mean([ssim(c, d) for c, d in zip(clean, images)])),
        "cc": float(np.mean([cross_correlation(c, d) for c, d in zip(clean, images)])),
        "frc": {
            "frequency": [round(float(f), 6) for f in curves[0].frequency_nyquist],
            "correlation": [round(float(c), 6) for c in mean_correlation],
        },
        "frc_resolution": crossings,
        "frc_resolution_angstrom": angstrom,
    }
