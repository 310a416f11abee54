"""The general-model section of docs/results.md (see ``make_results_doc.py``): the shipped
model's headroom runs (``general_headroom_*.json``, from ``bench_general.py --headroom``). Its
quality and fine-tuning runs are on its card, ``docs/models/general.md``.

Standard library only; every figure comes from the result files.
"""

from __future__ import annotations

from typing import Any

from results_format import file_link as _link
from results_format import signed as _signed


def _headroom_lines(name: str, run: dict[str, Any]) -> list[str]:
    prov, spec, setting = run["provenance"], run["specialists"], run["setting"]
    lines = [
        f"{_link(name)} ({prov.get('date', '–')}, commit `{prov['git_commit'][:7]}`): "
        f"specialists of the general model's network, {spec['steps']} steps on "
        f"{spec['train_images']} training images of one condition each; "
        f"{setting['n_images_per_cell']} held-out images of {setting['size_px']}² px per cell. "
        "Margins over the best oracle filter (dB).",
        "",
        "| source | SNR | noise | CTF | best oracle filter (dB) | general model "
        "| Noise2Noise specialist | supervised specialist |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in run["rows"]:
        margins = [
            _signed(r[f"margin_{k}_db"])
            for k in ("general", "n2n_specialist", "supervised_specialist")
        ]
        lines.append(
            f"| {r['source']} | {r['snr']:.3g} | {r['noise']} | {'yes' if r['ctf'] else 'no'} | "
            f"{r['psnr_best_filter']:.2f} | " + " | ".join(margins) + " |"
        )
    return [*lines, ""]


def general_model_section(runs: dict[str, dict]) -> list[str]:
    """The section's lines (none when there is no headroom run)."""
    chosen = [(n, r) for n, r in runs.items() if n.startswith("general_headroom_")]
    if not chosen:
        return []
    out = [
        "## The general model's headroom",
        "",
        "`benchmarks/bench_general.py --headroom`: is the shipped general model held back by "
        "covering every condition? Specialists with its network train on one condition "
        "alone, one with Noise2Noise targets and one supervised with the clean images (a "
        "ceiling no real dataset allows), and denoise the same held-out cells as the general "
        "model. Its quality and fine-tuning runs are on its card, "
        "[docs/models/general.md](models/general.md).",
        "",
    ]
    for name, run in chosen:
        out += _headroom_lines(name, run)
    return out
