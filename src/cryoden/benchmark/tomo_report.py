"""The tomography study's report, made from ``results.json`` (and ``montage.npz``) alone.

:func:`write_tomo_report` draws the figures and writes ``report.html`` (self-contained: figures
embedded as ``data:`` URIs, inline CSS), ``report.md`` and ``figures/*.png``:

* ``montage_xy.png`` / ``montage_xz.png``: central slices of the first test tomogram (``xy`` at
  the middle ``z``; ``xz`` at the middle ``y``, where the missing wedge's elongation along ``z``
  shows): clean, noisy and each method, one row per SNR;
* ``fsc.png``: FSC with the clean reconstruction, one panel per SNR, every method and the
  noisy input;
* ``psnr_vs_snr.png``, ``cc_vs_snr.png``: the seed study's metric plots
  (:func:`cryoden.benchmark.figures.metric_figure`).

Every number printed comes from ``results.json``.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from cryoden.benchmark.figures import line_style, metric_figure, write_figures
from cryoden.errors import InputFileError
from cryoden.io.atomic import atomic_output

REPORT_HTML = "report.html"
REPORT_MD = "report.md"
FIGURES_DIR = "figures"

_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;"
    "padding:0 1em;line-height:1.45}table{border-collapse:collapse;margin:.6em 0 1.4em;"
    "font-size:.85em}th,td{border:1px solid #ccc;padding:.25em .5em;text-align:right}"
    "th:first-child,td:first-child{text-align:left}td.best{font-weight:bold;background:#e8f4e8}"
    "figure{margin:1em 0 2em}figure img{max-width:100%;border:1px solid #ddd}"
    "figcaption,.meta{font-size:.9em;color:#555}"
)


def _png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()


def _stretch(image: np.ndarray) -> np.ndarray:
    low, high = np.percentile(image, [1.0, 99.0])
    if not high > low:
        return np.full_like(image, 0.5)
    return np.clip((image - low) / (high - low), 0.0, 1.0)


def read_montage(path: Path) -> dict[str, np.ndarray]:
    """``montage.npz`` as ``{"method/snr/plane": slice}`` (empty when the file is missing)."""
    if not path.is_file():
        return {}
    with np.load(path, allow_pickle=False) as data:
        return {key.replace("__", "/"): np.asarray(data[key]) for key in data.files}


def montage_figure(results: dict[str, Any], montage: dict[str, np.ndarray], plane: str) -> bytes:
    """Rows: SNRs; columns: clean, noisy, each method (contrast stretched per panel)."""
    snrs = [float(s) for s in results["snr_levels"]]
    columns = ["clean", "noisy", *results["methods"]]
    aspect = montage[f"clean/{plane}"].shape
    width = 1.9 * aspect[1] / max(aspect)
    height = 1.9 * aspect[0] / max(aspect)
    figure = Figure(
        figsize=(width * len(columns) + 0.6, height * len(snrs) + 0.8), layout="constrained"
    )
    axes = figure.subplots(len(snrs), len(columns), squeeze=False)
    for r, snr in enumerate(snrs):
        for c, name in enumerate(columns):
            ax = axes[r, c]
            key = f"clean/{plane}" if name == "clean" else f"{name}/{snr:.4f}/{plane}"
            if key in montage:
                ax.imshow(_stretch(montage[key].astype(np.float64)), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(name, fontsize=9)
            if c == 0:
                ax.set_ylabel(f"SNR {snr:g}", fontsize=9)
    figure.suptitle(f"First test tomogram, central {plane} slice (contrast per panel)", fontsize=10)
    return _png(figure)


def fsc_figure(results: dict[str, Any]) -> bytes:
    """FSC with the clean reconstruction: one panel per SNR, each method and the noisy input."""
    snrs = [float(s) for s in results["snr_levels"]]
    figure = Figure(figsize=(4.2 * len(snrs), 3.8), layout="constrained")
    axes = figure.subplots(1, len(snrs), squeeze=False, sharey=True)[0]
    noisy = {round(r["snr"], 10): r for r in results["noisy"]}
    for ax, snr in zip(axes, snrs):
        rows = [r for r in results["results"] if round(r["snr"], 10) == round(snr, 10)]
        for row in rows:
            if row.get("fsc"):
                curve = row["fsc"]
                ax.plot(curve["frequency_nyquist"], curve["correlation"], label=row["method"],
                        **line_style(row["method"]))  # fmt: skip
        base = noisy.get(round(snr, 10))
        if base is not None:
            ax.plot(base["fsc"]["frequency_nyquist"], base["fsc"]["correlation"], color="black",
                    ls=":", lw=2, label="noisy")  # fmt: skip
        for level, style in ((0.5, "--"), (0.143, ":")):
            ax.axhline(level, color="grey", lw=0.8, ls=style)
        ax.set_title(f"SNR {snr:g}", fontsize=10)
        ax.set_xlabel("frequency (Nyquist units)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("FSC with the clean reconstruction")
    axes[0].legend(fontsize=8)
    return _png(figure)


def figure_set(
    results: dict[str, Any], montage: dict[str, np.ndarray]
) -> dict[str, tuple[str, bytes]]:
    """Every figure: ``{file name: (caption, PNG bytes)}`` in report order."""
    figures: dict[str, tuple[str, bytes]] = {}
    for plane in ("xy", "xz"):
        if f"clean/{plane}" in montage:
            figures[f"montage_{plane}.png"] = (
                f"Central {plane} slice of the first test tomogram: clean reconstruction, noisy "
                "even half and each method's output, at each SNR.",
                montage_figure(results, montage, plane),
            )
    figures["fsc.png"] = (
        "FSC of each method's output (and of the noisy half) with the clean reconstruction, "
        "mean over the test tomograms. Dashed: 0.5; dotted: 0.143.",
        fsc_figure(results),
    )
    figures["psnr_vs_snr.png"] = (
        "PSNR against the tilt-image SNR, mean over the test tomograms.",
        metric_figure(results, "psnr", "PSNR (dB)"),
    )
    figures["cc_vs_snr.png"] = (
        "Cross-correlation with the clean reconstruction against the tilt-image SNR.",
        metric_figure(results, "cc", "CC with the clean reconstruction"),
    )
    return figures


def _value(row: dict[str, Any], key: str) -> float | None:
    value: Any = row
    for part in key.split("|"):
        if not isinstance(value, dict) or value.get(part) is None:
            return None
        value = value[part]
    return float(value)


def metric_table(results: dict[str, Any], key: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows (method, one cell per SNR; the noisy input first) of a metric; the best
    method of each SNR is marked with ``*``."""
    snrs = [float(s) for s in results["snr_levels"]]
    header = ["method", *(f"SNR {s:g}" for s in snrs)]
    values: dict[str, list[float | None]] = {}
    noisy = {round(r["snr"], 10): r for r in results["noisy"]}
    values["noisy (even half)"] = [_value(noisy.get(round(s, 10), {}), key) for s in snrs]
    for method in results["methods"]:
        by_snr = {round(r["snr"], 10): r for r in results["results"] if r["method"] == method}
        values[method] = [_value(by_snr.get(round(s, 10), {}), key) for s in snrs]
    best: list[float | None] = []
    for i in range(len(snrs)):
        known = [v[i] for m, v in values.items() if m in results["methods"]]
        present = [x for x in known if x is not None]
        best.append(max(present) if present else None)
    rows = []
    for method, cells in values.items():
        shown = []
        for i, v in enumerate(cells):
            text = "–" if v is None else f"{v:.3f}"
            shown.append(text + ("*" if v is not None and v == best[i] else ""))
        rows.append([method, *shown])
    return header, rows


def findings(results: dict[str, Any]) -> list[str]:
    """Plain statements read off the PSNR table: each learned method against the best filter."""
    lines = []
    filters = [m for m in results["methods"] if m in ("gaussian", "lowpass")]
    for snr in results["snr_levels"]:
        rows = {r["method"]: r for r in results["results"] if r["snr"] == snr}
        bar = max((rows[f]["psnr"] for f in filters if f in rows and "psnr" in rows[f]),
                  default=None)  # fmt: skip
        if bar is None:
            continue
        for method in ("n2n", "n2v"):
            row = rows.get(method)
            if row is None or "psnr" not in row:
                continue
            gap = row["psnr"] - bar
            word = "above" if gap >= 0 else "below"
            lines.append(
                f"SNR {snr:g}: {method} is {abs(gap):.2f} dB {word} the best oracle filter "
                f"({row['psnr']:.2f} against {bar:.2f} dB)."
            )
    return lines


def _sections(results: dict[str, Any]) -> list[tuple[str, Any]]:
    """The report's blocks: ``("h2", text)``, ``("p", text)``, ``("ul", items)``,
    ``("table", (header, rows))`` or ``("figure", name)``."""
    data, network = results["data"], results["network"]
    blocks: list[tuple[str, Any]] = [
        ("p", f"Input: {data['input']}; reference: {data['reference']}. Training structures: "
              f"{_names(data['train']['sources'])}; test structures (never trained on): "
              f"{_names(data['test']['sources'])}. {len(data['train']['indices'])} training and "
              f"{len(data['test']['indices'])} test tomograms of "
              f"{'x'.join(str(s) for s in reversed(data['test']['shape_zyx']))} voxels of "
              f"{data['test']['voxel_size_angstrom']:g} Å, tilts "
              f"{data['tilt_angles_deg'][0]:g}° to {data['tilt_angles_deg'][-1]:g}°."),
        ("p", "Networks: " + "; ".join(
            f"{method}: 3D U-Net, base {net['config']['base_channels']}, depth "
            f"{net['config']['depth']}, {net['flops_per_voxel']:.0f} FLOP per voxel, "
            f"{net['parameters']} parameters"
            for method, net in (results.get("networks") or {"all": network}).items()
        ) + ". Filters: parameter chosen on the clean test tomograms (an oracle)."),
        ("h2", "Findings"),
        ("ul", findings(results)),
        ("h2", "PSNR (dB) against the clean reconstruction (* best)"),
        ("table", metric_table(results, "psnr")),
        ("h2", "Cross-correlation with the clean reconstruction"),
        ("table", metric_table(results, "cc")),
        ("h2", "FSC = 0.143 crossing (Nyquist units)"),
        ("table", metric_table(results, "fsc_resolution|0.143")),
        ("h2", "Figures"),
    ]  # fmt: skip
    for name in ("montage_xy.png", "montage_xz.png", "fsc.png", "psnr_vs_snr.png", "cc_vs_snr.png"):
        blocks.append(("figure", name))
    blocks.append(("h2", "Filters' chosen parameters and trainings"))
    blocks.append(("table", _details(results)))
    provenance = results.get("provenance", {})
    blocks.append(("table", (["key", "value"], [[k, str(v)] for k, v in provenance.items()])))
    return blocks


def _names(sources: list[dict[str, Any]]) -> str:
    return ", ".join(Path(s.get("path", s.get("phantom", "?"))).name for s in sources)


def _details(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    rows = []
    for row in results["results"]:
        if "parameter" in row:
            what = f"{row['parameter']['parameter']} = {row['parameter']['value']:g}"
        else:
            training = row.get("training", {})
            what = (f"{training.get('status')}: {training.get('steps', 0)} steps from "
                    f"{training.get('initialised_from')}")  # fmt: skip
        rows.append([row["method"], f"{row['snr']:g}", what, f"{row['seconds']:.1f}"])
    return ["method", "SNR", "parameter or training", "seconds"], rows


def _esc(text: Any) -> str:
    return html.escape(str(text))


def render_html(results: dict[str, Any], figures: dict[str, tuple[str, bytes]]) -> str:
    """The self-contained HTML report."""
    title = "cryoden tomography study: 3D denoisers on simulated tomograms"
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{_esc(title)}"
             f"</title><style>{_CSS}</style></head><body><h1>{_esc(title)}</h1>"]  # fmt: skip
    for kind, content in _sections(results):
        if kind in ("h2", "p"):
            parts.append(f"<{kind}>{_esc(content)}</{kind}>")
        elif kind == "ul":
            parts.append("<ul>" + "".join(f"<li>{_esc(i)}</li>" for i in content) + "</ul>")
        elif kind == "table":
            header, rows = content
            head = "".join(f"<th>{_esc(h)}</th>" for h in header)
            body = "".join(
                "<tr>" + "".join(
                    f"<td class='best'>{_esc(c[:-1])}</td>" if c.endswith("*") else
                    f"<td>{_esc(c)}</td>" for c in row
                ) + "</tr>"
                for row in rows
            )  # fmt: skip
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif kind == "figure" and content in figures:
            caption, data = figures[content]
            uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
            parts.append(f"<figure><img src='{uri}' alt='{_esc(caption)}'><figcaption>"
                         f"{_esc(content)}: {_esc(caption)}</figcaption></figure>")  # fmt: skip
    parts.append("<p class='meta'>All numbers on this page are read from results.json.</p>")
    return "\n".join(parts) + "</body></html>\n"


def render_markdown(results: dict[str, Any], figures: dict[str, tuple[str, bytes]]) -> str:
    """The Markdown report (figures linked from ``figures/``)."""
    parts = ["# cryoden tomography study: 3D denoisers on simulated tomograms"]
    for kind, content in _sections(results):
        if kind == "h2":
            parts.append(f"## {content}")
        elif kind == "p":
            parts.append(str(content))
        elif kind == "ul":
            parts.append("\n".join(f"- {i}" for i in content))
        elif kind == "table":
            header, rows = content
            lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            lines += ["| " + " | ".join(row) + " |" for row in rows]
            parts.append("\n".join(lines))
        elif kind == "figure" and content in figures:
            parts.append(f"![{figures[content][0]}]({FIGURES_DIR}/{content})")
    return "\n\n".join(parts) + "\n"


def write_tomo_report(
    results_path: str | Path, *, montage_path: str | Path | None = None
) -> dict[str, Path]:
    """Write ``report.html``, ``report.md`` and ``figures/`` beside ``results_path``."""
    results_path = Path(results_path)
    try:
        results = json.loads(results_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputFileError(results_path, f"cannot read the study's results: {exc}") from None
    if results.get("kind") != "cryoden-tomo-study":
        raise InputFileError(results_path, "not the results of a tomography study")
    out = results_path.parent
    montage_file = Path(montage_path) if montage_path else out / "montage.npz"
    figures = figure_set(results, read_montage(montage_file))
    paths = dict(write_figures(figures, out / FIGURES_DIR))
    for key, name, text in (
        ("html", REPORT_HTML, render_html(results, figures)),
        ("md", REPORT_MD, render_markdown(results, figures)),
    ):
        with atomic_output(out / name) as tmp:
            tmp.write_text(text, encoding="utf-8")
        paths[key] = out / name
    return paths
