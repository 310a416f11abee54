"""Figures of the seed study, drawn from ``results.json`` (and ``montage.npz``) alone.

Matplotlib's object-oriented API with the Agg canvas (no pyplot, no global backend switch).
Every function returns PNG bytes; :func:`write_figures` saves them atomically under a folder.

* ``frc_<method>.png``: the method's FRC curves, SNRs in two panels of five (as the study).
* ``cc_vs_snr.png``: CC of denoised vs clean per method, and of noisy vs clean.
* ``psnr_vs_snr.png``, ``ssim_vs_snr.png``: the same for PSNR and SSIM.
* ``frc_resolution_vs_snr.png``: the FRC = 0.143 crossing per method against SNR.
* ``montage.png``: the first test image, clean, noisy and each method, at selected SNRs.

:func:`side_by_side_figure` draws rows of images side by side (raw | filtered | denoised) for
the documentation's figures of real data.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from cryoden.benchmark.registry import BY_NAME
from cryoden.io.atomic import atomic_output

logger = logging.getLogger(__name__)

DPI = 100

#: The FRC thresholds drawn as horizontal lines, with their line styles.
FRC_LEVELS: tuple[tuple[float, str], ...] = ((0.5, "--"), (0.143, ":"))


def line_style(method: str) -> dict[str, Any]:
    """Colour, line style and width of a method's curves, from its record (matplotlib's
    defaults for a name the registry does not know)."""
    record = BY_NAME.get(method)
    if record is None:
        return {"ls": "--", "lw": 1.1}
    return {"color": record.color, "ls": record.line_style, "lw": record.line_width}


def _png(figure: Figure, dpi: int = DPI) -> bytes:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _rows(results: dict[str, Any], method: str) -> list[dict[str, Any]]:
    rows = [r for r in results["results"] if r["method"] == method]
    return sorted(rows, key=lambda r: r["snr"])


def _value(row: dict[str, Any], key: str) -> float:
    value = row.get(key)
    return float("nan") if value is None else float(value)


def frc_figure(results: dict[str, Any], method: str) -> bytes:
    """The FRC curves of one method, the SNRs split into two panels (five each for ten)."""
    snrs = list(results["snr_levels"])
    rows = {round(r["snr"], 10): r for r in _rows(results, method)}
    half = (len(snrs) + 1) // 2
    groups = [snrs[:half], snrs[half:]] if len(snrs) > 1 else [snrs]
    figure = Figure(figsize=(10, 4), layout="constrained")
    axes = figure.subplots(1, len(groups), sharey=True, squeeze=False)[0]
    cmap = colormaps["viridis"]
    for ax, group in zip(axes, groups):
        plotted = 0
        for k, snr in enumerate(group):
            row = rows.get(round(snr, 10))
            if row is None or row.get("frc") is None:  # no cell, or one without a result
                continue
            plotted += 1
            color = cmap(0.9 * k / max(len(group) - 1, 1))
            ax.plot(
                row["frc"]["frequency"], row["frc"]["correlation"], color=color,
                label=f"SNR {snr:.4g}", lw=1.5,
            )  # fmt: skip
        for level, style in FRC_LEVELS:
            ax.axhline(level, color="0.4", ls=style, lw=0.8)
        ax.set_xlim(0, 1)
        ax.set_ylim(-0.2, 1.02)
        ax.set_xlabel("spatial frequency (Nyquist = 1)")
        ax.grid(alpha=0.3)
        if plotted:
            ax.legend(fontsize=8, loc="upper right")
        else:  # every cell of the panel without a result
            ax.text(0.5, 0.5, "no result", ha="center", va="center", transform=ax.transAxes)
    axes[0].set_ylabel("FRC (denoised vs clean)")
    figure.suptitle(f"{method}: Fourier ring correlation with the clean image")
    return _png(figure)


def metric_figure(results: dict[str, Any], metric: str, label: str) -> bytes:
    """A metric of every method against SNR, with the noisy images' value as a baseline."""
    figure = Figure(figsize=(8, 5), layout="constrained")
    ax = figure.subplots()
    for method in results["methods"]:
        rows = _rows(results, method)
        if not rows:
            continue
        ax.plot(
            [r["snr"] for r in rows], [_value(r, metric) for r in rows],
            marker="o", ms=3.5, label=method, **line_style(method),
        )  # fmt: skip
    noisy = sorted(results.get("noisy", []), key=lambda r: r["snr"])
    if noisy:
        ax.plot(
            [r["snr"] for r in noisy], [_value(r, metric) for r in noisy],
            color="black", lw=2.2, ls=":", marker="s", ms=4, label="noisy (no denoising)",
        )  # fmt: skip
    ax.set_xlabel("SNR (var(signal) / var(noise))")
    ax.set_ylabel(label)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2, loc="best")
    ax.set_title(f"{label} against SNR (mean over the test images)")
    return _png(figure)


def resolution_figure(results: dict[str, Any], threshold: str = "0.143") -> bytes:
    """The FRC crossing of ``threshold`` (Nyquist units) of every method against SNR."""
    figure = Figure(figsize=(8, 5), layout="constrained")
    ax = figure.subplots()
    for method in results["methods"]:
        rows = _rows(results, method)
        style = {k: v for k, v in line_style(method).items() if k != "lw"}
        ax.plot(
            [r["snr"] for r in rows],
            [_value(r.get("frc_resolution") or {}, threshold) for r in rows],
            marker="o", ms=3.5, label=method, **style,
        )  # fmt: skip
    noisy = sorted(results.get("noisy", []), key=lambda r: r["snr"])
    if noisy:
        ax.plot(
            [r["snr"] for r in noisy], [_value(r["frc_resolution"], threshold) for r in noisy],
            color="black", lw=2.2, ls=":", marker="s", ms=4, label="noisy (no denoising)",
        )  # fmt: skip
    ax.set_xlabel("SNR (var(signal) / var(noise))")
    ax.set_ylabel(f"FRC = {threshold} crossing (Nyquist = 1; higher is better)")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2, loc="best")
    ax.set_title(f"Resolution (FRC {threshold}) against SNR")
    return _png(figure)


def _stretch(image: np.ndarray) -> np.ndarray:
    finite = np.isfinite(image)
    if not finite.any():
        return np.zeros_like(image)
    low, high = np.percentile(image[finite], [1.0, 99.0])
    if not high > low:
        return np.full_like(image, 0.5)
    return np.clip((np.where(finite, image, low) - low) / (high - low), 0.0, 1.0)


def montage_figure(
    results: dict[str, Any], montage: dict[str, np.ndarray], snr_indices: Sequence[int]
) -> bytes:
    """Columns: selected SNRs; rows: clean, noisy, each method (contrast stretched per panel)."""
    methods = [str(m) for m in montage["methods"]]
    snrs = [float(s) for s in montage["snr_levels"]]
    labels = ["clean", "noisy", *methods]
    n_rows, n_cols = len(labels), len(snr_indices)
    figure = Figure(figsize=(1.7 * n_cols + 0.6, 1.7 * n_rows + 0.5), layout="constrained")
    axes = figure.subplots(n_rows, n_cols, squeeze=False)
    for c, s in enumerate(snr_indices):
        panels = [montage["clean"], montage["noisy"][s], *montage["denoised"][:, s]]
        for r, (label, image) in enumerate(zip(labels, panels)):
            ax = axes[r, c]
            ax.imshow(_stretch(np.asarray(image, dtype=np.float64)), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"SNR {snrs[s]:.4g}", fontsize=9)
            if c == 0:
                ax.set_ylabel(label, fontsize=9)
    figure.suptitle(
        "First test image: clean, noisy and denoised\n(contrast per panel)", fontsize=10
    )
    return _png(figure)


def side_by_side_figure(
    rows: Sequence[Sequence[np.ndarray]], labels: Sequence[str], title: str, *, dpi: int = 110
) -> bytes:
    """Rows of images side by side (say raw | Gaussian | denoised), PNG bytes.

    Every panel of a row shares the grey scale of the row's first image (its 0.5 and 99.5
    percentiles), so what a method removes or adds stays visible instead of being stretched
    away; ``labels`` title the columns and ``title`` goes above."""
    n_cols = len(labels)
    figure = Figure(figsize=(2.5 * n_cols, 2.6 * len(rows)), layout="tight")
    axes = figure.subplots(len(rows), n_cols, squeeze=False)
    for r, panels in enumerate(rows):
        low, high = np.percentile(np.asarray(panels[0], dtype=np.float64), [0.5, 99.5])
        for c, panel in enumerate(panels):
            ax = axes[r, c]
            ax.imshow(panel, cmap="gray", vmin=low, vmax=high, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(labels[c], fontsize=9)
    figure.suptitle(title, fontsize=8)
    return _png(figure, dpi=dpi)


def figure_set(
    results: dict[str, Any], montage: dict[str, np.ndarray] | None = None
) -> dict[str, tuple[str, bytes]]:
    """Every figure: ``{file name: (caption, PNG bytes)}`` in report order."""
    figures: dict[str, tuple[str, bytes]] = {}
    figures["psnr_vs_snr.png"] = (
        "PSNR against SNR for every method, and of the noisy images.",
        metric_figure(results, "psnr", "PSNR (dB)"),
    )
    figures["cc_vs_snr.png"] = (
        "Cross-correlation coefficient with the clean image: denoised (each method) and noisy.",
        metric_figure(results, "cc", "CC with the clean image"),
    )
    figures["ssim_vs_snr.png"] = (
        "SSIM against SNR for every method, and of the noisy images.",
        metric_figure(results, "ssim", "SSIM"),
    )
    figures["frc_resolution_vs_snr.png"] = (
        "Where the FRC with the clean image falls below 0.143 (Nyquist units; higher is finer).",
        resolution_figure(results, "0.143"),
    )
    if montage is not None:
        indices = results.get("config", {}).get("montage_snr_indices") or [
            0,
            len(results["snr_levels"]) // 2,
            len(results["snr_levels"]) - 1,
        ]
        indices = [i for i in indices if 0 <= i < len(montage["snr_levels"])]
        figures["montage.png"] = (
            "The first test image at selected SNRs: clean, noisy and each method's output.",
            montage_figure(results, montage, indices),
        )
    for method in results["methods"]:
        figures[f"frc_{method}.png"] = (
            f"FRC of {method} with the clean image; SNRs in two panels of five. Dashed: 0.5; "
            "dotted: 0.143.",
            frc_figure(results, method),
        )
    return figures


def write_figures(figures: dict[str, tuple[str, bytes]], folder: str | Path) -> dict[str, Path]:
    """Save figures (from :func:`figure_set`) as PNG files under ``folder`` (created)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name, (_, data) in figures.items():
        path = folder / name
        with atomic_output(path) as tmp:
            tmp.write_bytes(data)
        paths[name] = path
    logger.debug("wrote %d figures to %s", len(paths), folder)
    return paths
