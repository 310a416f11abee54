# Over ~450 lines on purpose: each finding is a small function over the same results table, and
# the reading's order is the order of this module; split, the reading would be scattered.
"""A short plain-language reading of the study's numbers (generated, never hand-written).

Every sentence is computed from ``results.json``: warnings first (cells with no result, cells
that correlate worse with the clean image than their noisy input does), which method wins where,
how far each method stays below the supervised ceiling, the depth study (``n2n-seed5`` against
``n2n-seed4``), CC of denoised against noisy images, what the 0.001 low-pass leaves, and learned
methods against filters tuned on a clean image.

The module is longer than most because it is one reading: each section is a small function over
the same table helpers, and splitting it would scatter those helpers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from cryoden.benchmark.registry import BY_NAME, CEILING_METHOD, METHODS, method_names

#: Filters whose parameter is chosen on a clean calibration image (an oracle).
CALIBRATED_FILTERS: tuple[str, ...] = method_names("calibrated")
#: Filters with the study's fixed settings (no clean data).
STUDY_LOWPASS: tuple[str, ...] = method_names("fixed")
N2N_METHODS: tuple[str, ...] = method_names("learned", scheme="n2n")
LEARNED: tuple[str, ...] = method_names("learned")
#: Learned methods that see no clean image (all but the supervised ceiling).
SELF_SUPERVISED: tuple[str, ...] = tuple(
    m.name for m in METHODS if m.learned and not m.trains_on_clean
)
#: The SNR at which the ceiling sentences quote a gap (the nearest level of the run).
CEILING_QUOTE_SNR = 0.1
#: Learned methods that train on single noisy images rather than pairs.
SINGLE_IMAGE: tuple[str, ...] = tuple(
    m.name for m in METHODS if m.learned and not m.trains_on_pairs and not m.trains_on_clean
)

# The study's own questions name its methods: the depth study compares the two seed networks,
# single-image methods are set against the first Noise2Noise network present of REFERENCE_N2N.
DEPTH_STUDY: tuple[str, str] = ("n2n-seed5", "n2n-seed4")
REFERENCE_N2N: tuple[str, ...] = ("n2n-unet", "n2n-seed5")


def snr_text(snr: float) -> str:
    """An SNR as the report prints it."""
    return f"{snr:.4g}"


def table(results: dict[str, Any], metric: str) -> dict[str, dict[float, float | None]]:
    """``{method: {snr: value}}`` of a metric; ``metric`` may be ``"frc_resolution.0.143"``."""
    out: dict[str, dict[float, float | None]] = {}
    for row in results["results"]:
        value: Any = row
        for part in _metric_path(metric):
            value = None if value is None else value.get(part)
        out.setdefault(row["method"], {})[float(row["snr"])] = (
            None if value is None else float(value)
        )
    return out


def _metric_path(metric: str) -> list[str]:
    if metric.startswith("frc_resolution."):
        return ["frc_resolution", metric[len("frc_resolution.") :]]
    return [metric]


def noisy_table(results: dict[str, Any], metric: str) -> dict[float, float | None]:
    """``{snr: value}`` of a metric for the noisy images."""
    out: dict[float, float | None] = {}
    for row in results.get("noisy", []):
        value: Any = row
        for part in _metric_path(metric):
            value = None if value is None else value.get(part)
        out[float(row["snr"])] = None if value is None else float(value)
    return out


def _ranges(snrs: Sequence[float], selected: Sequence[float]) -> str:
    """Consecutive runs of ``selected`` among ``snrs``: ``"0.01-0.1733 and 0.3911"``."""
    chosen = set(selected)
    runs: list[list[float]] = []
    for snr in snrs:
        if snr in chosen:
            if runs and runs[-1][-1] == snrs[snrs.index(snr) - 1]:
                runs[-1].append(snr)
            else:
                runs.append([snr])
    parts = [snr_text(r[0]) if len(r) == 1 else f"{snr_text(r[0])}–{snr_text(r[-1])}" for r in runs]
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _or_minus_inf(value: float | None) -> float:
    return -np.inf if value is None else value


def _known(values: Iterable[float | None]) -> list[float]:
    """The values that are not ``None``, in order."""
    return [v for v in values if v is not None]


def _paired(
    a: dict[float, float | None], b: dict[float, float | None], snrs: Sequence[float]
) -> list[tuple[float, float, float]]:
    """``(snr, a's value, b's value)`` at each of ``snrs`` where both values are known."""
    out = []
    for s in snrs:
        x, y = a.get(s), b.get(s)
        if x is not None and y is not None:
            out.append((s, x, y))
    return out


def _present(results: dict[str, Any], methods: Sequence[str]) -> list[str]:
    return [m for m in methods if m in results["methods"]]


def winners(results: dict[str, Any], metric: str = "psnr") -> list[str]:
    """Sentences: the best method by ``metric`` over runs of SNRs (the supervised ceiling, which
    trains on clean images, set aside)."""
    snrs = [float(s) for s in results["snr_levels"]]
    values = {m: v for m, v in table(results, metric).items() if m != CEILING_METHOD}
    best: dict[float, str] = {}
    for snr in snrs:
        candidates = [(v[snr], m) for m, v in values.items() if v.get(snr) is not None]
        if candidates:
            best[snr] = max(candidates)[1]
    by_method: dict[str, list[float]] = {}
    for snr, method in best.items():
        by_method.setdefault(method, []).append(snr)
    order = sorted(by_method, key=lambda m: -len(by_method[m]))
    label = {"psnr": "PSNR", "cc": "CC", "ssim": "SSIM"}.get(metric, metric)
    if CEILING_METHOD in results["methods"]:
        label += f" ({CEILING_METHOD} aside)"
    parts = [
        f"{m} at SNR {_ranges(snrs, by_method[m])} ({len(by_method[m])} of {len(snrs)})"
        for m in order
    ]
    return [f"Best by {label}: " + "; ".join(parts) + "."] if parts else []


def ceiling_gaps(results: dict[str, Any], metric: str = "psnr") -> dict[str, dict[float, float]]:
    """``{method: {snr: method's value - the supervised ceiling's}}`` of every other method (a
    negative PSNR gap is below the ceiling); empty without the ceiling."""
    if CEILING_METHOD not in results["methods"]:
        return {}
    snrs = [float(s) for s in results["snr_levels"]]
    values = table(results, metric)
    top = values.get(CEILING_METHOD, {})
    return {
        m: {s: x - y for s, x, y in _paired(values.get(m, {}), top, snrs)}
        for m in results["methods"]
        if m != CEILING_METHOD
    }


def ceiling(results: dict[str, Any]) -> list[str]:
    """Sentences: how far each self-supervised method stays below the supervised ceiling (PSNR),
    quoted at the SNR nearest :data:`CEILING_QUOTE_SNR`, with the mean and the range."""
    gaps = ceiling_gaps(results)
    out = []
    for method in _present(results, SELF_SUPERVISED):
        by_snr = gaps.get(method, {})
        if not by_snr:
            continue
        quote = min(by_snr, key=lambda s: abs(s - CEILING_QUOTE_SNR))
        worst = min(by_snr, key=lambda s: by_snr[s])
        best = max(by_snr, key=lambda s: by_snr[s])
        out.append(
            f"{method} is {_gap_text(by_snr[quote])} {CEILING_METHOD} at SNR {snr_text(quote)} "
            f"(on average {_gap_text(float(np.mean(list(by_snr.values()))))} over "
            f"{len(by_snr)} SNRs, from {_gap_text(by_snr[worst])} at SNR {snr_text(worst)} to "
            f"{_gap_text(by_snr[best])} at SNR {snr_text(best)})."
        )
    if out:
        out.insert(
            0,
            f"{CEILING_METHOD} trains the same U-Net as n2n-unet on the same noisy images with "
            "their clean images as targets: the ceiling of the self-supervised methods (real "
            "data has no clean images).",
        )
    return out


def _gap_text(gap_db: float) -> str:
    """``"0.20 dB below"`` / ``"0.20 dB above"`` for a PSNR difference to the ceiling."""
    return f"{abs(gap_db):.2f} dB {'below' if gap_db < 0 else 'above'}"


def below_noisy_cells(results: dict[str, Any]) -> dict[str, list[float]]:
    """``{method: [snr, ...]}``: the scored cells whose CC with the clean image is below the
    noisy input's (denoising made the image less like the clean one)."""
    noisy = noisy_table(results, "cc")
    out: dict[str, list[float]] = {}
    for row in results["results"]:
        snr = float(row["snr"])
        reference = row.get("cc_noisy", noisy.get(snr))
        if row.get("cc") is not None and reference is not None and row["cc"] < reference:
            out.setdefault(row["method"], []).append(snr)
    return out


def unscored_cells(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows without a result (status other than ``"ok"``, e.g. a degenerate model)."""
    return [r for r in results["results"] if r.get("status", "ok") != "ok"]


def warnings(results: dict[str, Any]) -> list[str]:
    """Sentences that start with "Warning:": cells without a result, cells below the noisy
    input's CC (learned methods first), and models the trainer could not judge."""
    snrs = [float(s) for s in results["snr_levels"]]
    out = []
    for row in unscored_cells(results):
        out.append(
            f"Warning: {row['method']} at SNR {snr_text(float(row['snr']))} has no result: "
            f"{row.get('status')} ({row.get('reason') or 'no reason recorded'}); it is not "
            "scored (a warm-started next SNR starts from random weights)."
        )
    below = below_noisy_cells(results)
    order = [m for m in results["methods"] if m in below]
    for group, what in ((LEARNED, "learned"), (None, "filter")):
        names = [m for m in order if (m in LEARNED) == (group is not None)]
        if names:
            parts = "; ".join(f"{m} at SNR {_ranges(snrs, below[m])}" for m in names)
            out.append(
                f"Warning: CC with the clean image below the noisy input's ({what} "
                f"{'methods' if len(names) > 1 else 'method'}): {parts}."
            )
    for row in results["results"]:
        training = row.get("training") or {}
        if training.get("degenerate"):
            out.append(
                f"Warning: {row['method']} at SNR {snr_text(float(row['snr']))}: the model may be "
                f"degenerate ({training['degenerate']}); the run was too short to judge."
            )
    return out


def training_notes(results: dict[str, Any]) -> list[str]:
    """Sentences: what the trainer warned about in each learned cell (e.g. a validation loss
    that never improved on the starting model's)."""
    out = []
    for row in results["results"]:
        for text in (row.get("training") or {}).get("warnings") or []:
            out.append(
                f"Training note, {row['method']} at SNR {snr_text(float(row['snr']))}: {text}"
            )
    return out


def n2n_trend(results: dict[str, Any]) -> list[str]:
    """Sentences: does each N2N variant's PSNR rise with SNR?"""
    snrs = [float(s) for s in results["snr_levels"]]
    psnr = table(results, "psnr")
    out = []
    for method in _present(results, N2N_METHODS):
        values = _known(psnr[method].get(s) for s in snrs)
        if len(values) < len(snrs) or len(values) < 2:
            continue
        rises = sum(b > a for a, b in zip(values[:-1], values[1:]))
        shape = (
            "rises at every step"
            if rises == len(values) - 1
            else (f"rises at {rises} of {len(values) - 1} steps")
        )
        out.append(
            f"{method}: PSNR goes from {values[0]:.2f} dB at SNR {snr_text(snrs[0])} to "
            f"{values[-1]:.2f} dB at SNR {snr_text(snrs[-1])} and {shape}."
        )
    return out


def versus(
    results: dict[str, Any], method: str, other: str, metric: str = "psnr"
) -> dict[str, Any]:
    """How ``method`` compares with ``other`` on ``metric`` at each SNR."""
    snrs = [float(s) for s in results["snr_levels"]]
    values = table(results, metric)
    a, b = values.get(method, {}), values.get(other, {})
    pairs = _paired(a, b, snrs)
    shared = [s for s, _, _ in pairs]
    diffs = [x - y for _, x, y in pairs]
    return {
        "snrs": shared,
        "wins": [s for s, d in zip(shared, diffs) if d > 0],
        "losses": [s for s, d in zip(shared, diffs) if d <= 0],
        "mean_difference": float(np.mean(diffs)) if diffs else None,
    }


def n2n_vs_lowpass(results: dict[str, Any]) -> list[str]:
    """Sentences: N2N variants against the study's two low-pass cutoffs (PSNR)."""
    out = []
    for method in _present(results, N2N_METHODS):
        parts = []
        for cutoff in _present(results, STUDY_LOWPASS):
            cmp = versus(results, method, cutoff)
            above = [s for s in cmp["snrs"] if s >= 0.06]
            above_wins = [s for s in above if s in cmp["wins"]]
            note = (
                "every SNR ≥ 0.06" if above and len(above_wins) == len(above) else
                f"{len(above_wins)} of {len(above)} SNRs ≥ 0.06"
            )  # fmt: skip
            parts.append(
                f"{cutoff} at {len(cmp['wins'])} of {len(cmp['snrs'])} SNRs ({note}; mean "
                f"margin {cmp['mean_difference']:+.2f} dB)"
            )
        if parts:
            out.append(f"{method} beats " + " and ".join(parts) + " by PSNR.")
    return out


def depth_study(results: dict[str, Any]) -> list[str]:
    """Sentences: the study's depth experiment, seed5 against seed4."""
    deep, shallow = DEPTH_STUDY
    if not {deep, shallow} <= set(results["methods"]):
        return []
    p = versus(results, deep, shallow, "psnr")
    c = versus(results, deep, shallow, "cc")
    if p["mean_difference"] is None:
        return []
    gap = abs(p["mean_difference"])
    if gap < 0.5:
        verdict = (
            "the two depths perform alike (mean PSNR gap under 0.5 dB): cutting the encoder from "
            "5 to 4 levels keeps the character of N2N denoising, as the study found"
        )
    elif p["mean_difference"] > 0:
        verdict = "the 5-level network is clearly better here"
    else:
        verdict = (
            "the 4-level network is clearly better here (shallower trains faster in a fixed budget)"
        )
    return [
        f"Depth study: {deep} beats {shallow} at {len(p['wins'])} of {len(p['snrs'])} SNRs by "
        f"PSNR (mean difference {p['mean_difference']:+.2f} dB) and at {len(c['wins'])} of "
        f"{len(c['snrs'])} by CC (mean {c['mean_difference']:+.3f}); {verdict}."
    ]


def cc_vs_noisy(results: dict[str, Any]) -> list[str]:
    """Sentences: at which SNRs does denoising raise the CC with the clean image?"""
    snrs = [float(s) for s in results["snr_levels"]]
    cc = table(results, "cc")
    noisy = noisy_table(results, "cc")
    out = []
    for method in _present(results, LEARNED):
        scored = [s for s, _, _ in _paired(cc[method], noisy, snrs)]
        better = [s for s, denoised, raw in _paired(cc[method], noisy, snrs) if denoised > raw]
        worse = [s for s in scored if s not in better]
        missing = [s for s in snrs if s not in scored]
        if not scored:  # no result at all: the warnings say so
            continue
        if not worse:
            text = f"at all {len(scored)} SNRs" if not missing else "at every scored SNR"
        elif not better:
            text = "at no SNR"
        else:
            text = f"at SNR {_ranges(snrs, better)} but not at {_ranges(snrs, worse)}"
        if missing:
            text += f" (no result at SNR {_ranges(snrs, missing)})"
        out.append(
            f"{method} correlates better with the clean image than the noisy image does {text}."
        )
    if out:
        out.append(
            "The study saw denoised images win only at the five lowest SNRs; a well-trained "
            "network should win at every SNR."
        )
    return out


def lowpass_001(results: dict[str, Any]) -> list[str]:
    """Sentences: what the 0.001 low-pass leaves of the image."""
    if "lowpass-0.001" not in results["methods"]:
        return []
    snrs = [float(s) for s in results["snr_levels"]]
    cc = table(results, "cc")["lowpass-0.001"]
    res = table(results, "frc_resolution.0.143")["lowpass-0.001"]
    noisy_cc = noisy_table(results, "cc")
    mean_cc = float(np.nanmean([np.nan if cc.get(s) is None else cc[s] for s in snrs]))
    mean_res = float(np.nanmean([np.nan if res.get(s) is None else res[s] for s in snrs]))
    mean_noisy = float(
        np.nanmean([np.nan if noisy_cc.get(s) is None else noisy_cc[s] for s in snrs])
    )
    image_size = results.get("config", {}).get("image_size")
    keeps = (
        f" (on a {image_size}-pixel image the first Fourier ring is at {2 / image_size:.3f} "
        "Nyquist, so it keeps little more than the mean)"
        if image_size else ""
    )  # fmt: skip
    verdict = (
        "it destroys almost all detail, as in the study"
        if mean_cc < 0.3 or mean_res < 0.05
        else "it keeps more than the study reported"
    )
    out = [
        f"lowpass-0.001{keeps}: mean CC {mean_cc:.3f} (noisy images {mean_noisy:.3f}), FRC 0.143 "
        f"crossing at {mean_res:.3f} Nyquist on average; {verdict}."
    ]
    if "lowpass-0.05" in results["methods"]:
        cmp = versus(results, "lowpass-0.05", "lowpass-0.001", "cc")
        out.append(
            f"lowpass-0.05 correlates better than lowpass-0.001 at {len(cmp['wins'])} of "
            f"{len(cmp['snrs'])} SNRs (mean CC difference {cmp['mean_difference']:+.3f})."
        )
    return out


def chosen_parameters(results: dict[str, Any]) -> dict[str, dict[float, Any]]:
    """``{method: {snr: chosen value}}`` of the calibrated filters."""
    out: dict[str, dict[float, Any]] = {}
    for row in results["results"]:
        record = BY_NAME.get(row["method"])
        key = record.parameter if record is not None and record.kind == "calibrated" else None
        if key is not None:
            out.setdefault(row["method"], {})[float(row["snr"])] = (
                row.get("parameters") or {}
            ).get(key)
    return out


def learned_vs_filters(results: dict[str, Any]) -> list[str]:
    """Sentences: the best learned method against the best oracle-tuned filter, per SNR."""
    snrs = [float(s) for s in results["snr_levels"]]
    psnr = table(results, "psnr")
    learned = _present(results, SELF_SUPERVISED)
    tuned = _present(results, CALIBRATED_FILTERS)
    out = []
    if learned and tuned:
        margins, wins = [], []
        for s in snrs:
            lv = _known(psnr[m].get(s) for m in learned)
            fv = _known(psnr[m].get(s) for m in tuned)
            if lv and fv:
                margins.append(max(lv) - max(fv))
                if margins[-1] > 0:
                    wins.append(s)
        if margins:
            out.append(
                f"The best self-supervised method beats the best calibrated filter at {len(wins)} of "
                f"{len(margins)} SNRs (mean PSNR margin {np.mean(margins):+.2f} dB). The "
                "filters' parameters were chosen on a clean calibration image, an oracle that "
                "real data does not offer; the self-supervised methods used no clean image at all."
            )
    fixed = _present(results, STUDY_LOWPASS)
    if learned and fixed:
        wins = [
            s
            for s in snrs
            if max(_or_minus_inf(psnr[m].get(s)) for m in learned)
            > max(_or_minus_inf(psnr[m].get(s)) for m in fixed)
        ]
        out.append(
            f"Against the oracle-free filters (the study's fixed cutoffs {', '.join(fixed)}), "
            f"the best self-supervised method wins at {len(wins)} of {len(snrs)} SNRs."
        )
    params = chosen_parameters(results)
    if "lowpass-best" in params:
        cutoffs = [v for v in params["lowpass-best"].values() if v is not None]
        if cutoffs:
            out.append(
                f"The calibrated low-pass cutoff ranged from {min(cutoffs):g} to {max(cutoffs):g} "
                "Nyquist across SNRs: the right cutoff depends on the noise level, which is why a "
                "fixed cutoff cannot be right everywhere."
            )
    return out


def single_image_methods(results: dict[str, Any]) -> list[str]:
    """Sentences: the single-image methods (N2V, Ne2Ne) against Noise2Noise."""
    reference = next((m for m in REFERENCE_N2N if m in results["methods"]), None)
    out: list[str] = []
    if reference is None:
        return out
    for method in _present(results, SINGLE_IMAGE):
        cmp = versus(results, method, reference, "psnr")
        if cmp["mean_difference"] is not None:
            out.append(
                f"{method} (single noisy images, no pairs) is {abs(cmp['mean_difference']):.2f} "
                f"dB {'above' if cmp['mean_difference'] > 0 else 'below'} {reference} on average "
                f"by PSNR, ahead at {len(cmp['wins'])} of {len(cmp['snrs'])} SNRs."
            )
    return out


def findings(results: dict[str, Any], *, with_warnings: bool = True) -> list[str]:
    """All sentences of the reading, in report order (``with_warnings``: the :func:`warnings`
    first; the report shows them in a section of their own)."""
    out: list[str] = []
    if with_warnings:
        out += warnings(results)
    out += winners(results, "psnr")
    out += winners(results, "cc")
    out += n2n_trend(results)
    out += n2n_vs_lowpass(results)
    out += ceiling(results)
    out += depth_study(results)
    out += cc_vs_noisy(results)
    out += lowpass_001(results)
    out += learned_vs_filters(results)
    out += single_image_methods(results)
    out += training_notes(results)
    return out
