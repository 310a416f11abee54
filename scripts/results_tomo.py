"""The tomography section of docs/results.md (see ``make_results_doc.py``): the tomography
study's runs (``tomo_quality_*.json``: 3D Noise2Noise and Noise2Void against the oracle 3D
Gaussian, the network comparison) and the tomogram inference runs (``tomo_inference_*.json``).

Standard library only; every figure comes from the result files.
"""

from __future__ import annotations

from typing import Any

from results_format import file_link as _link
from results_format import signed as _signed


def _net(config: dict[str, Any]) -> str:
    s2d = config.get("space_to_depth", 1)
    return f"U-Net b{config['base_channels']} d{config['depth']}" + (
        f" s2d{s2d}" if s2d > 1 else ""
    )


def _study_lines(name: str, run: dict[str, Any]) -> list[str]:
    study, config = run["study"], run["config"]
    networks = study.get("networks") or {"n2n": study["network"], "n2v": study["network"]}
    net_text = "; ".join(f"{m} {_net(n['config'])}" for m, n in networks.items())
    blind = sorted(
        {
            str((r.get("training") or {}).get("blind_spot"))
            for r in study["results"]
            if r["method"] == "n2v" and (r.get("training") or {}).get("blind_spot")
        }
    )
    variants = [
        f"{r['snr']:g}: {r['training']['scheme']} ({r['training']['volume_snr']:.3f})"
        for r in sorted(study["results"], key=lambda r: -r["snr"])
        if r["method"] == "n2v" and "volume_snr" in (r.get("training") or {})
    ]
    chosen = (
        f" Noise2Void variant by tilt SNR (the training tomograms' measured voxel SNR): "
        f"{'; '.join(variants)}."
        if variants
        else ""
    )
    lines = [
        f"{_link(name)} ({run['provenance'].get('date', '–')}, commit "
        f"`{run['provenance']['git_commit'][:7]}`): seed {config['seed']}, "
        f"{config['threads']} thread(s), {config['train_steps']} steps per cell "
        f"({config['cold_start_factor']}× for the first); networks: {net_text}; "
        f"Noise2Void blind spot: {', '.join(blind) or 'one voxel'}.{chosen}",
    ]
    command = run.get("command")
    if command:
        verdict = "within" if command["meets_wall_target"] else "over"
        lines[0] += (
            f" The whole `{' '.join(command['argv'][:3])}` command: {command['wall_s']:.0f} s "
            f"({verdict} its {command['target_wall_s']:.0f} s target), peak RSS "
            f"{command['peak_rss_mib']:.0f} MiB."
        )
    lines += [
        "",
        "| tilt SNR | noisy | Gaussian (oracle) | low-pass (oracle) | 3D N2N | 3D N2V "
        "| N2N − Gaussian | N2V − Gaussian |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in run["requirement"]["per_snr"]:
        cells = [
            "–" if row.get(key) is None else f"{row[key]:.2f}"
            for key in ("noisy_psnr", "gaussian_psnr", "lowpass_psnr", "n2n_psnr", "n2v_psnr")
        ]
        margins = [
            "–" if row.get(key) is None else _signed(row[key])
            for key in ("n2n_minus_gaussian_db", "n2v_minus_gaussian_db")
        ]
        lines.append(f"| {row['snr']:g} | " + " | ".join(cells + margins) + " |")
    return [*lines, ""]


def _networks_lines(name: str, run: dict[str, Any]) -> list[str]:
    block = run["networks"]
    choice = block["choice"]
    lines = [
        f"{_link(name)}: candidate 3D U-Nets trained with Noise2Noise at tilt SNR "
        f"{block['snr']:g}, scored on the test tomograms; rule: {choice.get('rule', '–')}; "
        f"chosen: {_net(choice)}.",
        "",
        "| network | FLOP per voxel | parameters | PSNR (dB) | oracle Gaussian (dB) |",
        "|---|---|---|---|---|",
    ]
    for row in block["candidates"]:
        lines.append(
            f"| {_net(row)} | {row['flops_per_voxel']:.0f} | {row['parameters']} "
            f"| {row['psnr']:.2f} | {row['oracle_gaussian_psnr']:.2f} |"
        )
    return [*lines, ""]


def _inference_lines(name: str, run: dict[str, Any]) -> list[str]:
    lines = [
        f"{_link(name)} ({run['provenance'].get('date', '–')}, commit "
        f"`{run['provenance']['git_commit'][:7]}`, {run['threads']} threads): "
        f"`cryoden denoise` with a 3D {_net(run['model'])} "
        f"({'trained' if run.get('model_path') else 'random weights'}).",
        "",
        "| tomogram (x × y × z) | wall (s) | peak RSS (MiB) | Mvoxel/s | GFLOP/s "
        "| fraction of Conv3d limit |",
        "|---|---|---|---|---|---|",
    ]
    for row in run["rows"]:
        lines.append(
            f"| {' × '.join(str(s) for s in row['size_xyz'])} | {row['wall_s']:.1f} "
            f"| {row['peak_rss_mib']:.0f} | {row['voxels_per_s'] / 1e6:.2f} "
            f"| {row['gflops_whole_command']:.0f} | {row['fraction_of_conv3d_limit']:.2f} |"
        )
    return [*lines, ""]


def tomography_section(runs: dict[str, dict[str, Any]]) -> list[str]:
    """The section's lines: every tomography study run, network comparison and tomogram
    inference run, by date and name."""
    ordered = sorted(runs.items(), key=lambda item: (item[1]["provenance"].get("date", ""), item[0]))
    studies = [(n, r) for n, r in ordered if n.startswith("tomo_quality") and "study" in r]
    networks = [(n, r) for n, r in ordered if n.startswith("tomo_quality") and "networks" in r]
    inference = [(n, r) for n, r in ordered if n.startswith("tomo_inference")]
    if not (studies or networks or inference):
        return []
    out = [
        "## Tomography",
        "",
        "The tomography study (`benchmarks/bench_tomo_quality.py`, `cryoden bench tomo --quick`): "
        "simulated 128 × 128 × 64-voxel tomograms of 8 Å, tilts ±60° in 3° steps, weighted "
        "back-projection; trained on the GroEL-like phantom, scored on tomograms of other "
        "structures (PSNR in dB against the clean reconstruction, mean over the test "
        "tomograms). The Gaussian and low-pass parameters are chosen with the clean test "
        "tomograms (an oracle). Every run is listed, including those made before a change.",
        "",
    ]
    for name, run in studies:
        out += _study_lines(name, run)
    for name, run in networks:
        out += _networks_lines(name, run)
    if inference:
        out += ["### Tomogram inference", ""]
        for name, run in inference:
            out += _inference_lines(name, run)
    return out
