# Over ~450 lines on purpose: the HTML and Markdown reports are built from the same tables in one
# place, so a column added to one cannot be missing from the other.
"""The study's report, made from ``results.json`` (and ``montage.npz`` beside it) alone.

:func:`write_report` reads the results file, draws the figures (:mod:`cryoden.benchmark.figures`),
generates the plain-language reading (:mod:`cryoden.benchmark.findings`) and writes

* ``report.html``: self-contained (figures embedded as base64 ``data:`` URIs, inline CSS, no
  external asset), with every figure and table. A small inline script records on load, in the
  ``<div id="image-check">`` element's ``data-images`` / ``data-loaded`` attributes, how many
  images the page has and how many decoded (``complete && naturalWidth > 0``).
* ``report.md``: the same text and tables, figures linked from ``figures/``.
* ``figures/*.png``.

Every number printed comes from ``results.json``; nothing is recomputed from images except the
montage, which shows ``montage.npz`` as is.
"""

from __future__ import annotations

import base64
import html
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cryoden.benchmark.figures import figure_set, write_figures
from cryoden.benchmark.findings import (
    below_noisy_cells,
    ceiling_gaps,
    chosen_parameters,
    findings,
    noisy_table,
    snr_text,
    table,
    warnings,
)
from cryoden.benchmark.registry import BY_NAME, CEILING_METHOD
from cryoden.errors import InputFileError
from cryoden.io.atomic import atomic_output

logger = logging.getLogger(__name__)

REPORT_HTML = "report.html"
REPORT_MD = "report.md"
FIGURES_DIR = "figures"

#: (metric key, title, format, higher is better)
TABLES: tuple[tuple[str, str, str, bool | None], ...] = (
    ("psnr", "PSNR (dB) against the clean image", "{:.2f}", True),
    ("ssim", "SSIM against the clean image", "{:.3f}", True),
    (
        "cc",
        "Cross-correlation coefficient with the clean image (⚠: below the noisy input's)",
        "{:.3f}",
        True,
    ),
    ("frc_resolution.0.5", "FRC = 0.5 crossing (Nyquist units)", "{:.3f}", True),
    ("frc_resolution.0.143", "FRC = 0.143 crossing (Nyquist units)", "{:.3f}", True),
    ("seconds", "Wall time per cell (s): training or calibration + inference", "{:.1f}", None),
)

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222;
       padding: 0 1em; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .6em 0 1.4em; font-size: .85em; }
th, td { border: 1px solid #ccc; padding: .25em .5em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
tr.noisy td { font-style: italic; background: #f6f6f6; }
td.best { font-weight: bold; background: #e8f4e8; }
table.kv td { text-align: left; }
figure { margin: 1em 0 2em; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: .9em; color: #555; }
.meta { color: #666; font-size: .9em; }
.warnings { border: 2px solid #c0392b; background: #fdecea; padding: .2em 1em; margin: 1em 0; }
.warnings h2 { color: #c0392b; border: 0; }
"""

_SCRIPT = """
window.addEventListener("load", function () {
  var images = document.images, loaded = 0;
  for (var i = 0; i < images.length; i++) {
    if (images[i].complete && images[i].naturalWidth > 0) { loaded++; }
  }
  var check = document.getElementById("image-check");
  check.setAttribute("data-images", String(images.length));
  check.setAttribute("data-loaded", String(loaded));
  check.setAttribute("data-status", loaded === images.length ? "ok" : "broken");
  check.textContent = loaded + " of " + images.length + " figures loaded";
});
"""


def read_results(path: str | Path) -> dict[str, Any]:
    """Read and check a ``results.json``.

    Raises
    ------
    InputFileError
        If the file is missing, not JSON, or lacks the study's keys.
    """
    path = Path(path)
    try:
        results = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputFileError(path, "file not found") from None
    except (OSError, ValueError) as exc:
        raise InputFileError(path, f"not a readable JSON file ({exc})") from None
    missing = [k for k in ("snr_levels", "results", "methods") if k not in results]
    if missing:
        raise InputFileError(path, f"not a seed-study results file (no {', '.join(missing)})")
    return results


def read_montage(path: str | Path) -> dict[str, np.ndarray] | None:
    """The montage arrays saved by the runner, or ``None`` when the file is absent."""
    path = Path(path)
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as data:
        return {k: np.array(data[k]) for k in data.files}


def _fmt(value: float | None, pattern: str) -> str:
    if value is None or not np.isfinite(value):
        return "–"
    return pattern.format(value)


def metric_rows(
    results: dict[str, Any], metric: str, pattern: str, higher_better: bool | None
) -> tuple[list[str], list[tuple[str, list[str], list[bool]]]]:
    """A metric table: SNR headers and ``(label, cells, is_best)`` rows (noisy row last)."""
    snrs = [float(s) for s in results["snr_levels"]]
    values = table(results, metric)
    rows: list[tuple[str, list[float | None]]] = [
        (m, [values.get(m, {}).get(s) for s in snrs]) for m in results["methods"]
    ]
    best: list[float | None] = []
    for k in range(len(snrs)):
        column = [v for v in (r[1][k] for r in rows) if v is not None and np.isfinite(v)]
        if not column or higher_better is None:
            best.append(None)
        else:
            best.append(max(column) if higher_better else min(column))
    unscored = {
        (r["method"], float(r["snr"])) for r in results["results"] if r.get("status", "ok") != "ok"
    }
    below = below_noisy_cells(results) if metric == "cc" else {}
    out = []
    for label, vals in rows:
        cells = [
            "degenerate" if (label, s) in unscored else _fmt(v, pattern) + _mark(label, s, below)
            for v, s in zip(vals, snrs)
        ]
        flags = [v is not None and b is not None and v == b for v, b in zip(vals, best)]
        out.append((label, cells, flags))
    if metric != "seconds" and results.get("noisy"):
        noisy = noisy_table(results, metric)
        out.append(
            ("noisy (input)", [_fmt(noisy.get(s), pattern) for s in snrs], [False] * len(snrs))
        )
    return [snr_text(s) for s in snrs], out


#: Appended to a CC cell below the noisy input's CC.
BELOW_NOISY_MARK = " ⚠"


def _mark(method: str, snr: float, below: dict[str, list[float]]) -> str:
    return BELOW_NOISY_MARK if snr in below.get(method, ()) else ""


def ceiling_rows(
    results: dict[str, Any],
) -> tuple[list[str], list[tuple[str, list[str], list[bool]]]]:
    """The ceiling-gap table: each method's PSNR minus the supervised ceiling's (dB), per SNR."""
    snrs = [float(s) for s in results["snr_levels"]]
    rows = [
        (m, [_fmt(gaps.get(s), "{:+.2f}") for s in snrs], [False] * len(snrs))
        for m, gaps in ceiling_gaps(results).items()
    ]
    return [snr_text(s) for s in snrs], rows


def _budget_text(config: dict[str, Any]) -> str:
    """The training budget as set: optimiser steps and threads (a file written before budgets
    were steps has a time budget instead)."""
    if config.get("train_steps") is None and config.get("train_seconds") is not None:
        return f"{config['train_seconds']} s per learned (method, SNR) cell"
    return (
        f"{config.get('train_steps')} optimiser steps per learned (method, SNR) cell "
        f"({config.get('cold_start_factor')} times as many from random weights) with "
        f"{config.get('threads')} torch thread(s)"
    )


def _setup_rows(results: dict[str, Any]) -> list[tuple[str, str]]:
    config = results.get("config", {})
    data = results.get("data", {})
    rows = [
        ("preset", str(config.get("preset", "–"))),
        ("structure", str(data.get("structure", "–"))),
        (
            "images",
            f"{config.get('image_size')} × {config.get('image_size')} px at "
            f"{config.get('pixel_size_angstrom')} Å/px",
        ),
        (
            "data",
            f"{data.get('n_train_pairs')} training pairs, {data.get('n_validation_pairs')} "
            f"validation pairs, {data.get('n_calibration')} calibration image(s), "
            f"{data.get('n_test')} test images per SNR",
        ),
        (
            "projection indices",
            f"train {data.get('train_indices')}, validation {data.get('validation_indices')}, "
            f"calibration {data.get('calibration_indices')}, test {data.get('test_indices')}",
        ),
        ("split", str(data.get("split_statement", "–"))),
        ("noise", str(data.get("noise", "–"))),
        ("SNR levels", ", ".join(snr_text(float(s)) for s in results["snr_levels"])),
        (
            "training",
            _budget_text(config) + ", patches "
            f"{config.get('patch')} px, batch {config.get('batch')}, base width "
            f"{config.get('base_channels')}, learning rate {config.get('learning_rate')}, "
            f"seed {config.get('seed')}; "
            + (
                "each SNR's network starts from the same method's network of the "
                + (
                    "previous SNR (warm start; the first from random weights)"
                    if config.get("train_steps") is None  # a file of the ascending curriculum
                    else "next lower SNR (warm start; the lowest SNR's from a network pretrained on the highest SNR's data)"
                )
                if config.get("warm_start")
                else "every cell starts from random weights"
            ),
        ),
        ("metrics", str(config.get("metrics", "–"))),
    ]
    return rows


def _parameter_rows(results: dict[str, Any]) -> tuple[list[str], list[tuple[str, list[str]]]]:
    snrs = [float(s) for s in results["snr_levels"]]
    params = chosen_parameters(results)
    rows = []
    for method, values in params.items():
        rows.append(
            (
                f"{method}: {BY_NAME[method].parameter_label}",
                ["–" if values.get(s) is None else f"{values[s]:g}" for s in snrs],
            )
        )
    return [snr_text(s) for s in snrs], rows


def _esc(text: Any) -> str:
    return html.escape(str(text))


def _html_table(
    headers: list[str], rows: list[tuple[str, list[str], list[bool]]], corner: str
) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in [corner, *headers])
    body = []
    for label, cells, flags in rows:
        cls = ' class="noisy"' if label.startswith("noisy") else ""
        tds = "".join(
            f'<td class="best">{_esc(c)}</td>' if f else f"<td>{_esc(c)}</td>"
            for c, f in zip(cells, flags)
        )
        body.append(f"<tr{cls}><td>{_esc(label)}</td>{tds}</tr>")
    kind = ' class="kv"' if len(headers) == 1 else ""
    return f"<table{kind}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _md_table(
    headers: list[str], rows: list[tuple[str, list[str], list[bool]]], corner: str
) -> str:
    lines = [
        "| " + " | ".join([corner, *headers]) + " |",
        "|" + "---|" * (len(headers) + 1),
    ]
    for label, cells, flags in rows:
        shown = [f"**{c}**" if f else c for c, f in zip(cells, flags)]
        lines.append("| " + " | ".join([label, *shown]) + " |")
    return "\n".join(lines)


def _sections(
    results: dict[str, Any],
    figures: dict[str, tuple[str, bytes]],
    image: Callable[[str, str, bytes], str],
    render_table: Callable[[list[str], list[tuple[str, list[str], list[bool]]], str], str],
    heading: Callable[[int, str], str],
    paragraph: Callable[[str], str],
    bullets: Callable[[list[str]], str],
    warning_box: Callable[[list[str]], str],
) -> list[str]:
    """The report's body, in a markup given by the callables (shared by HTML and Markdown)."""
    out = []
    cautions = warnings(results)
    if cautions:
        out += [warning_box(cautions)]
    out += [heading(2, "Reading of the results"), bullets(findings(results, with_warnings=False))]
    out.append(heading(2, "Setup"))
    out.append(
        render_table(["value"], [(k, [v], [False]) for k, v in _setup_rows(results)], "setting")
    )
    descriptions = results.get("config", {}).get("method_descriptions", {})
    out.append(
        render_table(
            ["description"],
            [(m, [descriptions.get(m, "")], [False]) for m in results["methods"]],
            "method",
        )
    )
    out.append(heading(2, "Figures"))
    for name, (caption, data) in figures.items():
        out.append(image(name, caption, data))
    out.append(heading(2, "Tables (mean over the test images; best per SNR in bold)"))
    for metric, title, pattern, higher in TABLES:
        headers, rows = metric_rows(results, metric, pattern, higher)
        out.append(heading(3, title))
        out.append(render_table(headers, rows, "method \\ SNR"))
    headers, crows = ceiling_rows(results)
    if crows:
        out.append(heading(3, f"PSNR gap to the {CEILING_METHOD} ceiling (dB; negative is below)"))
        out.append(render_table(headers, crows, "method \\ SNR"))
    headers, prows = _parameter_rows(results)
    if prows:
        out.append(heading(3, "Filter parameters chosen on the clean calibration image"))
        out.append(render_table(headers, [(k, v, [False] * len(v)) for k, v in prows], "filter"))
    provenance = results.get("provenance", {})
    if provenance:
        out.append(heading(2, "Provenance"))
        out.append(
            render_table(["value"], [(k, [str(v)], [False]) for k, v in provenance.items()], "key")
        )
    out.append(paragraph("All numbers on this page are read from results.json."))
    return out


def render_html(results: dict[str, Any], figures: dict[str, tuple[str, bytes]]) -> str:
    """The self-contained HTML report."""

    def image(name: str, caption: str, data: bytes) -> str:
        uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
        return (
            f'<figure id="fig-{_esc(name[:-4])}"><img src="{uri}" alt="{_esc(caption)}">'
            f"<figcaption>{_esc(name)}: {_esc(caption)}</figcaption></figure>"
        )

    def bullets(items: list[str]) -> str:
        return "<ul>" + "".join(f"<li>{_esc(i)}</li>" for i in items) + "</ul>"

    body = _sections(
        results,
        figures,
        image,
        _html_table,
        lambda level, text: f"<h{level}>{_esc(text)}</h{level}>",
        lambda text: f'<p class="meta">{_esc(text)}</p>',
        bullets,
        lambda items: (
            f'<div class="warnings" id="warnings"><h2>Warnings</h2>{bullets(items)}</div>'
        ),
    )
    provenance = results.get("provenance", {})
    title = "cryoden seed study: denoising GroEL projections"
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>",
            f"<h1>{_esc(title)}</h1>",
            f'<p class="meta">{len(results["methods"])} methods × {len(results["snr_levels"])} '
            f"SNRs; cryoden {_esc(provenance.get('cryoden_version', '?'))}, "
            f"{_esc(provenance.get('time_utc', ''))}.</p>",
            '<div id="image-check" data-images="" data-loaded="" data-status="pending" '
            'class="meta"></div>',
            *body,
            f"<script>{_SCRIPT}</script>",
            "</body></html>",
        ]
    )


def render_markdown(results: dict[str, Any], figures: dict[str, tuple[str, bytes]]) -> str:
    """The Markdown report (figures linked from ``figures/``)."""

    def image(name: str, caption: str, data: bytes) -> str:
        return f"![{caption}]({FIGURES_DIR}/{name})\n\n*{name}: {caption}*"

    body = _sections(
        results,
        figures,
        image,
        _md_table,
        lambda level, text: "#" * level + " " + text,
        lambda text: text,
        lambda items: "\n".join(f"- {i}" for i in items),
        lambda items: "## Warnings\n\n" + "\n".join(f"> **{i}**\n>" for i in items).rstrip(">\n"),
    )
    title = "# cryoden seed study: denoising GroEL projections"
    return "\n\n".join([title, *body]) + "\n"


def write_report(
    results_path: str | Path,
    *,
    out_dir: str | Path | None = None,
    montage_path: str | Path | None = None,
) -> dict[str, Path]:
    """Write ``report.html``, ``report.md`` and ``figures/`` from a ``results.json``.

    Parameters
    ----------
    results_path
        The study's ``results.json``.
    out_dir
        Where to write; the results file's folder by default.
    montage_path
        The runner's ``montage.npz``; by default the one beside ``results_path`` (the montage
        figure is left out when there is none).

    Returns
    -------
    dict
        ``{"html": path, "md": path, "<figure name>": path, ...}``.
    """
    results_path = Path(results_path)
    results = read_results(results_path)
    out = Path(out_dir) if out_dir is not None else results_path.parent
    out.mkdir(parents=True, exist_ok=True)
    montage_file = (
        Path(montage_path) if montage_path is not None else results_path.parent / "montage.npz"
    )
    montage = read_montage(montage_file)
    figures = figure_set(results, montage)
    paths: dict[str, Path] = dict(write_figures(figures, out / FIGURES_DIR))
    for key, name, text in (
        ("html", REPORT_HTML, render_html(results, figures)),
        ("md", REPORT_MD, render_markdown(results, figures)),
    ):
        with atomic_output(out / name) as tmp:
            tmp.write_text(text, encoding="utf-8")
        paths[key] = out / name
    logger.info("wrote %s and %s", paths["html"], paths["md"])
    return paths
