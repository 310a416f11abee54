"""The general-model section of docs/results.md (see ``make_results_doc.py``): the shipped
model's headroom runs (``general_headroom_*.json``, from ``bench_general.py --headroom``). Its
quality and fine-tuning runs are on its card, ``docs/models/general.md``.

Standard library only; every figure comes from the result files.
"""

from __future__ import annotations

from typing import Any

from results_format import file_link as _link
from results_format import signed as _signed

#: The training schemes in words.
SCHEME_WORDS = {"n2n": "Noise2Noise", "care": "supervised (`care`)"}
#: The other denoisers' columns: row key and heading.
SPECIALISTS = (("n2n_specialist", "Noise2Noise specialist"),
               ("supervised_specialist", "supervised specialist"),
               ("bm3d_oracle", "BM3D, oracle noise level"))  # fmt: skip


def _network_text(spec: dict[str, Any]) -> str:
    """The specialists' network in words: the general model's, or the changed one's size."""
    network = spec["network"]
    if isinstance(network, str):
        return f"specialists of {network} network"
    size = f", {spec['parameters']:,} parameters" if "parameters" in spec else ""
    return (
        f"specialists of a larger U-Net (base {network['base_channels']}, depth "
        f"{network['depth']}, space-to-depth {network['space_to_depth']}{size})"
    )


def _compared_text(spec: dict[str, Any], setting: dict[str, Any]) -> str:
    """What the run set against the general model, in words."""
    parts = []
    if spec.get("schemes", ["n2n", "care"]):
        parts.append(
            f"{_network_text(spec)}, {spec['steps']} steps on {spec['train_images']} training "
            "images of one condition each"
            + (f" at learning rate {spec['learning_rate']:g}" if "learning_rate" in spec else "")
        )
    if setting.get("bm3d_oracle"):
        factors = ", ".join(f"{f:g}" for f in setting["bm3d_oracle"]["factors_of_true_noise_sigma"])
        parts.append(
            f"BM3D at {factors} times each image's true noise level, the factor chosen per cell "
            "with the clean images"
        )
    return "; ".join(parts)


def _headroom_lines(name: str, run: dict[str, Any]) -> list[str]:
    prov, spec, setting = run["provenance"], run["specialists"], run["setting"]
    columns = [(k, h) for k, h in SPECIALISTS if any(f"margin_{k}_db" in r for r in run["rows"])]
    lines = [
        f"{_link(name)} ({prov.get('date', '–')}, commit `{prov['git_commit'][:7]}`): "
        f"{_compared_text(spec, setting)}; "
        f"{setting['n_images_per_cell']} held-out images of {setting['size_px']}² px per cell. "
        "Margins over the best oracle filter (dB).",
        "",
        "| source | SNR | noise | CTF | best oracle filter (dB) | general model | "
        + " | ".join(h for _, h in columns)
        + " |",
        "|---|---|---|---|---|---|" + "---|" * len(columns),
    ]
    for r in run["rows"]:
        margins = [_signed(r[f"margin_{k}_db"]) for k in ("general", *(k for k, _ in columns))]
        lines.append(
            f"| {r['source']} | {r['snr']:.3g} | {r['noise']} | {'yes' if r['ctf'] else 'no'} | "
            f"{r['psnr_best_filter']:.2f} | " + " | ".join(margins) + " |"
        )
    lines.append("")
    for t in spec.get("trainings", []):
        warned = f"; its warnings: {' '.join(t['warnings'])}" if t["warnings"] else ""
        lines.append(
            f"- The {SCHEME_WORDS.get(t['scheme'], t['scheme'])} specialist on {t['condition']} "
            f"trained {t['steps']} steps "
            f"and kept epoch {t['best_epoch']} of {t['epochs']}{warned}."
        )
    return [*lines, ""] if spec.get("trainings") else lines


def general_model_section(runs: dict[str, dict]) -> list[str]:
    """The section's lines (none when there is no headroom run)."""
    chosen = [(n, r) for n, r in runs.items() if n.startswith("general_headroom_")]
    if not chosen:
        return []
    out = [
        "## The general model's headroom",
        "",
        "`benchmarks/bench_general.py --headroom`: is the shipped general model held back by "
        "covering every condition? Specialists with its network (or a larger one) train "
        "on one condition alone, one with Noise2Noise targets and one supervised with the clean images (a "
        "ceiling no real dataset allows), and denoise the same held-out cells as the general "
        "model. BM3D at an oracle noise level stands for a strong denoiser of another kind. Its quality and fine-tuning runs are on its card, "
        "[docs/models/general.md](models/general.md).",
        "",
    ]
    for name, run in chosen:
        out += _headroom_lines(name, run)
    return out
