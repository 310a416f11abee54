"""Write docs/models/<name>.md for each shipped model from its card.json and benchmark JSON.

The card (``src/cryoden/models/shipped/<name>/card.json``, written by
``scripts/train_general.py``) says what the model was trained on, its trained range, the command
that trained it and where not to trust it. Measured quality comes only from the benchmark JSON
files in ``benchmarks/results/`` that measured these very weights (their
``setting.model_weights_sha256`` is the card's digest of ``weights.safetensors``; the newest of
each kind), so a number is never typed by hand.

    python scripts/make_model_card.py            # rewrite docs/models/*.md
    python scripts/make_model_card.py --check    # exit 1 if a page is out of date

Standard library only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "src" / "cryoden" / "models" / "shipped"
DOCS = REPO / "docs" / "models"
RESULTS = REPO / "benchmarks" / "results"


def _span(values: Any, unit: str = "") -> str:
    if isinstance(values, (list, tuple)) and len(values) == 2:
        return f"{values[0]:g}–{values[1]:g}{unit}"
    return "not recorded"


def _db(x: float) -> str:
    return f"{x:.2f}"


def _signed(x: float) -> str:
    return f"{x:+.2f}".replace("-", "−")


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _data_lines(card: dict[str, Any]) -> list[str]:
    data = card.get("training_data") or {}
    training = card.get("training") or {}
    structures = data.get("structures") or {}
    families = data.get("procedural_families") or []
    held = data.get("held_out") or {}
    noise = data.get("noise_models") or {}
    return [
        "| | |",
        "|---|---|",
        "| structures | "
        + (", ".join(f"{k} (`{v}` in the shared data)" for k, v in structures.items()) or "none")
        + " |",
        "| other sources | "
        + ", ".join(s for s in data.get("sources", []) if s not in structures and ":" not in s)
        + " |",
        f"| procedural particle families | {', '.join(families) or 'none'} |",
        f"| images | {data.get('n_pairs', '–')} Noise2Noise pairs of "
        f"{data.get('image_size_px', '–')}² px (seed {data.get('seed', '–')}) |",
        f"| pixel sizes | {_span(data.get('pixel_size_angstrom'), ' Å')} (log-uniform) |",
        f"| noise levels | SNR {_span(data.get('snr'))} (log-uniform, var(signal) / var(noise)) |",
        f"| dose | {data.get('dose', 'not recorded')} |",
        f"| CTF | on {100 * data.get('ctf_fraction', 0):.0f} % of the images: defocus "
        f"{_span(data.get('defocus_um'), ' µm')}, "
        f"{' or '.join(f'{v:g}' for v in data.get('voltage_kv', []))} kV |",
        f"| ice gradients | on {100 * data.get('ice_gradient_fraction', 0):.0f} % of the images |",
        "| noise models | "
        + "; ".join(f"{k} ({100 * v:.0f} %)" for k, v in noise.items())
        + f"; correlated noise from {data.get('correlated_noise_from', '–')} |",
        f"| detector MTF | {data.get('detector_mtf', 'not recorded')} |",
        "| held out (never trained on) | structures "
        f"{', '.join(held.get('structures', [])) or 'none'}; families "
        f"{', '.join(held.get('procedural_families', [])) or 'none'}; "
        f"{held.get('random_streams', '')} |",
        f"| budget | {training.get('steps', '–')} optimiser steps ({training.get('epochs', '–')} "
        f"epochs), patch {training.get('patch_px', '–')} px, batch {training.get('batch', '–')}, "
        f"{training.get('device', '–')}, {training.get('threads') or 'default'} threads |",
    ]


def _quality_lines(bench: dict[str, Any], name: str) -> list[str]:
    prov = bench["provenance"]
    setting = bench.get("setting", {})
    out = [
        f"From [`{name}`](../../{name}) ({prov.get('date', '–')}, commit "
        f"`{prov['git_commit'][:7]}`, {prov['machine']}): held-out sources "
        f"{', '.join(bench.get('sources', []))}; {setting.get('n_images_per_cell', '–')} images "
        f"of {setting.get('size_px', '–')}² px per cell; white and correlated noise, with and "
        "without CTF. Best filters are oracles (chosen with the clean images). Mean PSNR (dB):",
        "",
        "| SNR | raw | best filter | general model | margin | smallest margin of a cell |",
        "|---|---|---|---|---|---|",
    ]
    for row in bench.get("by_snr", []):
        out.append(
            f"| {row['snr']:.3g} | {_db(row['psnr_raw'])} | {_db(row['psnr_best_filter'])} "
            f"| {_db(row['psnr_model'])} | {_signed(row['margin_over_best_filter_db'])} "
            f"| {_signed(row['smallest_margin_db'])} |"
        )
    bar = bench.get("bar", {})
    verdict = (
        "passed"
        if bar.get("passed")
        else f"not passed ({len(bar.get('failing_cells', []))} cells fail)"
    )
    out += ["", f"The bar ({bar.get('rule', '–')}): **{verdict}**.", ""]
    return out


def _finetune_lines(bench: dict[str, Any], name: str) -> list[str]:
    prov = bench["provenance"]
    data = bench.get("dataset", {})
    ref = bench.get("reference", {})
    out = [
        f"Fine-tuning, from [`{name}`](../../{name}) ({prov.get('date', '–')}, "
        f"{prov['machine']}): a new dataset ({data.get('source')}, SNR {data.get('snr')}, "
        f"{data.get('noise')} noise, {'with' if data.get('ctf') else 'no'} CTF; "
        f"{data.get('n_train_pairs')} training "
        f"pairs). Raw {_db(ref['psnr_raw'])} dB, best oracle filter "
        f"{_db(ref['psnr_best_filter'])} dB, the general model as shipped "
        f"{_db(ref['psnr_general_as_shipped'])} dB.",
        "",
        "| budget | from the general model (dB, steps) | from scratch (dB, steps) |",
        "|---|---|---|",
    ]
    for row in bench.get("budgets", []):
        budget = f"{row['minutes']:g} min" if "minutes" in row else f"{row['steps']} steps"
        cells = []
        for start in ("from_general", "from_scratch"):
            r = row.get(start, {})
            cells.append(
                f"{_db(r['psnr'])} ({r['steps']})" if "psnr" in r else r.get("status", "–")
            )
        out.append(f"| {budget} | {cells[0]} | {cells[1]} |")
    rates = bench.get("learning_rate")
    if rates:
        out += ["", f"Learning rate: {rates['from_general']:g} from the general model (what "
                f"`train --init` uses), {rates['from_scratch']:g} from scratch."]  # fmt: skip
    shipped = ref["psnr_general_as_shipped"]
    kept = [
        row for row in bench.get("budgets", [])
        if abs(row.get("from_general", {}).get("psnr", float("nan")) - shipped) < 1e-9
    ]  # fmt: skip
    if kept:
        out += ["", f"In {len(kept)} of {len(bench.get('budgets', []))} budgets the fine-tuned "
                "model scores exactly the model as shipped: its validation loss never improved "
                "on the start's, so training kept the start."]  # fmt: skip
    return out + [""]


def measurements(card: dict[str, Any], results: Path = RESULTS) -> dict[str, tuple[Path, dict]]:
    """The newest benchmark file of each kind (``"general_model"``, ``"general_finetune"``) that
    measured the card's weights (same SHA-256), by kind."""
    weights = (card.get("files") or {}).get("weights.safetensors")
    found: dict[str, tuple[Path, dict]] = {}
    if not weights:
        return found
    candidates = []
    for path in sorted(results.glob("*.json")):
        bench = _load(path)
        if bench.get("setting", {}).get("model_weights_sha256") == weights:
            candidates.append((bench["provenance"].get("date", ""), path.name, path, bench))
    for _, _, path, bench in sorted(candidates, key=lambda c: (c[0], c[1])):
        found[bench.get("benchmark", "")] = (path, bench)
    return found


def page(card: dict[str, Any], repo: Path = REPO) -> str:
    """The markdown page of one card (benchmark files are read from ``repo``)."""
    name = card["name"]
    training = card.get("training") or {}
    trained = card.get("trained_range") or {}
    net = card.get("network") or {}
    lines = [
        f"# The shipped `{name}` model",
        "",
        f"<!-- generated by scripts/make_model_card.py from "
        f"src/cryoden/models/shipped/{name}/card.json; do not edit -->",
        "",
        f"**Status:** {card.get('status', 'not recorded')}",
        "",
        card.get("summary", ""),
        "",
        "```bash",
        "cryoden denoise micrographs/*.mrc -o denoised/            # uses it",
        f"cryoden train n2n --a even/ --b odd/ --init {name} --out mine/   # fine-tunes it",
        f"cryoden models info {name}",
        "```",
        "",
        "## Trained range",
        "",
        f"Pixel size {_span(trained.get('pixel_size_angstrom'), ' Å')}, SNR "
        f"{_span(trained.get('snr'))}, {trained.get('dims', 2)}D images (and stacks of them). "
        "`cryoden denoise` warns about inputs outside it and refuses 3D volumes.",
        "",
        "## What it was trained on",
        "",
        f"Scheme `{card.get('scheme', '–')}`; network {net.get('arch', '–')} base "
        f"{net.get('base_channels', '–')}, depth {net.get('depth', '–')}, space-to-depth "
        f"{net.get('space_to_depth', 1)} ({card.get('parameters', '–'):,} parameters).",
        "",
        *_data_lines(card),
        "",
        "The exact command:",
        "",
        "```bash",
        training.get("command", "not recorded"),
        "```",
        "",
        "## Measured quality",
        "",
    ]
    found = measurements(card, repo / "benchmarks" / "results")
    for kind, render in (("general_model", _quality_lines), ("general_finetune", _finetune_lines)):
        if kind in found:
            path, bench = found[kind]
            lines += render(bench, path.relative_to(repo).as_posix())
    if not found:
        lines += ["Not measured yet (`benchmarks/bench_general.py` writes it).", ""]
    lines += ["## Where not to trust it", ""]
    lines += [f"- {item}" for item in card.get("not_to_trust", [])]
    lines += ["", "## Files", "", "| file | SHA-256 |", "|---|---|"]
    lines += [f"| `{k}` | `{v}` |" for k, v in (card.get("files") or {}).items()]
    return "\n".join(lines) + "\n"


def write(card_path: Path, doc_path: Path, repo: Path = REPO) -> None:
    """Write ``doc_path`` from ``card_path``."""
    doc_path.parent.mkdir(parents=True, exist_ok=True)
    doc_path.write_text(page(_load(card_path), repo), encoding="utf-8")


def pages(shipped: Path = SHIPPED, docs: Path = DOCS) -> dict[Path, Path]:
    """Each shipped model's card and its page."""
    return {card: docs / f"{card.parent.name}.md" for card in sorted(shipped.glob("*/card.json"))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if a page is out of date")
    args = parser.parse_args(argv)
    stale = []
    for card, doc in pages().items():
        text = page(_load(card))
        if args.check:
            if not doc.is_file() or doc.read_text(encoding="utf-8") != text:
                stale.append(doc)
        else:
            doc.parent.mkdir(parents=True, exist_ok=True)
            doc.write_text(text, encoding="utf-8")
    if stale:
        print(
            "out of date: "
            + ", ".join(str(p.relative_to(REPO)) for p in stale)
            + " (run python scripts/make_model_card.py)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
