"""The real-micrograph section of docs/results.md (see ``make_results_doc.py``): the noise of the
real images in the shared data (``real_noise_*.json``), Noise2Void on correlated noise
(``correlated_*.json``), the movie path against ground truth (``movies_path_*.json``) and the
validation of ``cryoden check`` (``check_validation_*.json``).

Standard library only; every figure comes from the result files.
"""

from __future__ import annotations

from typing import Any

from results_format import file_link as _link
from results_format import signed as _signed


def _head(name: str, run: dict[str, Any]) -> str:
    prov = run["provenance"]
    return f"{_link(name)} ({prov.get('date', '–')}, commit `{prov['git_commit'][:7]}`)"


def _lags(values: list[float]) -> str:
    return ", ".join(f"{v:.3f}".replace("-", "−") for v in values)


def _noise_lines(name: str, run: dict[str, Any]) -> list[str]:
    lines = [
        f"{_head(name, run)}: each stack's noise measured from single images (the "
        "high-frequency band), pooled over its images.",
        "",
        "| stack | images | noise variance | SNR | noise correlation, x lags 1–3 "
        "| y lags 1–3 | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for stack, s in run["stacks"].items():
        shape = "×".join(str(n) for n in s["shape"])
        lines.append(
            f"| `{stack}` | {s['images']} of {shape} px | {s['noise_variance']:.3g} | "
            f"{s['snr']:.3g} | {_lags(s['autocorrelation']['x'])} | "
            f"{_lags(s['autocorrelation']['y'])} | {s['verdict']} |"
        )
    return [*lines, ""]


def _correlated_lines(name: str, run: dict[str, Any]) -> list[str]:
    s = run["setting"]
    lines = [
        f"{_head(name, run)}: seed {s['seed']}, SNR {s['snr']:g}, {s['n_train']} training "
        f"images of {s['size']}² px at {s['pixel_size']:g} Å (trained on "
        f"{s['train_structure']}), {s['n_test']} test images of "
        f"`{str(s['test_structure']).rsplit('/', 1)[-1]}`, {s['steps']} steps per method.",
        "",
        "| noise correlation | noisy | best oracle filter | method | blind spot | PSNR | margin |",
        "|---|---|---|---|---|---|---|",
    ]
    for corr, cell in run["correlations"].items():
        for method, m in cell["methods"].items():
            if m.get("same_run_as"):
                continue
            lines.append(
                f"| {float(corr):g} | {cell['noisy_psnr']:.2f} | {cell['best_oracle_psnr']:.2f} "
                f"| `{method}` | `{m['blind_spot']}` | {m['psnr']:.2f} | "
                f"{_signed(m['margin_over_best_oracle_db'])} |"
            )
    return [*lines, ""]


def _movie_rows(run: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """``(test structure, its scores)``: one row per structure (older files: one row)."""
    if "per_test_structure" in run:
        return list(run["per_test_structure"].items())
    name = str(run.get("test_structure", "test")).rsplit("/", 1)[-1].split(".")[0]
    return [(name, run)]


def _movies_lines(name: str, run: dict[str, Any]) -> list[str]:
    s = run["settings"]
    per_set = s.get("train_movies")
    sets = run.get("train_sets")
    trained = (
        f"{per_set} training movies of each of {', '.join(t['name'] for t in sets)}"
        if sets
        else f"{per_set} training movies of {run.get('train_structure', 'the phantom')}"
    )
    ice = "without" if s.get("no_ice_texture") else "with"
    training = run.get("model_training") or {}
    stopped = (
        f" (it stopped early, after {training['steps']}: its validation loss had stopped improving)"
        if training.get("stopped") == "early_stopping"
        else ""
    )
    lines = [
        f"{_head(name, run)}: {trained}; {s['size']}² px at {s['pixel_size']:g} Å, "
        f"{s['frames']} frames of {s['dose_per_frame']:g} e⁻/Å², ice {ice} its molecular "
        f"texture; `train n2n` with a budget of {s['steps']} steps{stopped}.",
        "",
        "| test structure | noisy sum | best oracle filter | learned (even + odd) "
        "| margin | radial Wiener oracle | supervised | known all but texture |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for structure, r in _movie_rows(run):
        best = r["best_oracle_filter"]
        ceilings = r.get("ceilings_not_in_bar", {})
        references = [
            r.get("psnr_radial_wiener_oracle_not_in_bar"),
            ceilings.get("supervised"),
            ceilings.get("known_everything_but_texture"),
        ]
        lines.append(
            f"| {structure} | {r['psnr_noisy_sum']:.2f} | {best['psnr']:.2f} "
            f"({best['filter']} {best['best_parameter']:g}) | "
            f"{r['psnr_learned_even_plus_odd']:.2f} | "
            f"{_signed(r['margin_over_best_oracle_db'])} | "
            + " | ".join("–" if x is None else f"{x:.2f}" for x in references)
            + " |"
        )
    verdict = "passed" if run["passes_bar"] else "not passed"
    key = "known_everything_but_texture"
    bounds = [
        f"{structure} {_signed(r['ceiling_margins_over_best_oracle_db'][key])} dB"
        for structure, r in _movie_rows(run)
        if key in r.get("ceiling_margins_over_best_oracle_db", {})
    ]
    if bounds:
        lines += [
            "",
            "The known-all-but-texture bound: no denoiser beats the best oracle filter on "
            f"these micrographs by more than {', '.join(bounds)} (up to the approximations "
            "the script's docstring states).",
        ]
    return [
        *lines,
        "",
        f"The bar (≥ {run['bar_db']:g} dB on every test structure): **{verdict}**.",
        "",
    ]


def _check_lines(name: str, run: dict[str, Any]) -> list[str]:
    s, summary = run["setting"], run["summary"]
    lines = [
        f"{_head(name, run)}: {s['n_test']} test images of {s['size']}² px per cell "
        f"({run['cells'][0]['n_pixels']:,} pixels), CTF at "
        f"{s['ctf']['defocus_angstrom'] / 1e4:g} µm defocus; denoisers: a Gaussian of "
        f"{s['gaussian_sigma_px']:g} px and a Noise2Noise model trained on other images. "
        f"With halves: {summary['pairs_within_2_se']} of {summary['cells']} cells within two "
        f"standard errors, {summary['pairs_gain_within_0.5_db']} of {summary['cells']} gains "
        f"within 0.5 dB; single images: {summary['single_within_2_se']} and "
        f"{summary['single_gain_within_0.5_db']}.",
        "",
        "| denoiser | SNR | noise correlation | true MSE | estimated MSE (halves) | z "
        "| true gain (dB) | gain error, halves (dB) | single image: MSE error | gain error (dB) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in run["cells"]:
        p, single = c["pairs"], c["single"]
        lines.append(
            f"| {c['denoiser']} | {c['snr']:g} | {c['noise_correlation']:g} | "
            f"{c['true_mse']:.4g} | {p['estimated_mse']:.4g} ± "
            f"{p['estimated_mse_uncertainty']:.2g} | {_signed(p['z'])} | "
            f"{c['true_gain_db']:.2f} | {_signed(p['gain_error_db'], 3)} | "
            f"{_signed(100 * single['relative_error'], 0)} % | "
            f"{_signed(single['gain_error_db'])} |"
        )
    return [*lines, ""]


def real_micrographs_section(runs: dict[str, dict]) -> list[str]:
    """The section's lines: every run of each kind, in file-name order."""
    kinds = [
        (
            "Noise of the real images",
            "`benchmarks/bench_real_noise.py` on the real particle stacks in `../shared/data`"
            " (the correlation a blind-spot method must not copy).",
            "real_noise_",
            _noise_lines,
        ),
        (
            "Noise2Void on correlated noise",
            "`benchmarks/bench_correlated.py`: `train n2v` with its default blind spot "
            "(`default`, chosen from the measured correlation) and the paper's one-pixel "
            "blind spot (`plain`), against the best oracle filter (Gaussian or low-pass, "
            "chosen with the clean test images), on a structure never trained on. The bar: "
            "`default` ≥ 2 dB over the oracle at correlations up to 0.5.",
            "correlated_",
            _correlated_lines,
        ),
        (
            "The movie path against ground truth",
            "`benchmarks/bench_movies_path.py`: `simulate --movies` → `split-frames --align`"
            " → `train n2n` → `denoise` of the even and odd sums, scored against the clean "
            "micrograph (PSNR in dB, data range of the clean image); the oracle filters "
            "filter the full aligned sum with their parameter chosen with the clean "
            "micrographs. Three references no user can build, none in the bar: the radial "
            "Wiener filter from each micrograph's true spectra; *supervised*, the same "
            "network trained with the clean micrographs as targets (`train care`); *known "
            "all but texture*, an oracle that knows the particles, ice thickness and CTF "
            "and estimates only the ice's molecular texture (a Gaussian random field) with "
            "its Wiener filter, which bounds every denoiser's PSNR (see the script's "
            "docstring).",
            "movies_path_",
            _movies_lines,
        ),
        (
            "`cryoden check` against the truth",
            "`benchmarks/bench_check.py`: the estimated error of a denoised image against "
            "the clean image nobody has, from independent halves (and from single images), "
            "against the true error on simulated micrographs; *z* is (estimated − true) / "
            "stated uncertainty.",
            "check_validation_",
            _check_lines,
        ),
    ]
    out = [
        "## Real micrographs",
        "",
        "Correlated noise, movies and quality without ground truth. Every run is listed.",
        "",
    ]
    for title, intro, prefix, lines in kinds:
        chosen = [(n, r) for n, r in runs.items() if n.startswith(prefix)]
        if not chosen:
            continue
        out += [f"### {title}", "", intro, ""]
        for name, run in chosen:
            out += lines(name, run)
    return out
