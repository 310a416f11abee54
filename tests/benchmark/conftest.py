"""Fixtures of the benchmark tests: synthetic results, the tiny study run once, headless Chromium.

Chromium is launched once per module that renders reports: :func:`render_in_chromium` loads
every page into one harness page (each in a ``srcdoc`` iframe, same-origin, so the harness can
read each report's own image check) and takes the DOM dump and the screenshot in the same run.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cryoden.benchmark.registry import LEARNED_METHODS, METHODS
from cryoden.benchmark.study import preset
from cryoden.noise import STUDY_SNR_LEVELS

CHROMIUM = "/usr/bin/chromium"

#: Every method that needs no optional package, in drawing order (learned ones first).
ALL_BUILTIN: tuple[str, ...] = tuple(m.name for m in METHODS if m.requires is None)
#: The methods of the synthetic report: one of each kind is enough for its figures and tables.
REPORT_METHODS: tuple[str, ...] = ("n2n-seed5", "n2v", "supervised", "lowpass-0.05", "lowpass-best")


def fake_results(methods: tuple[str, ...] = ALL_BUILTIN) -> dict[str, Any]:
    """A results dict shaped like the runner's, with plausible made-up numbers."""
    snrs = list(STUDY_SNR_LEVELS)
    freq = np.linspace(0, 1, 17)
    rows = []
    noisy = []
    for s, snr in enumerate(snrs):
        noisy.append(
            {
                "snr": snr,
                "psnr": 5 + 10 * snr,
                "ssim": 0.05 + snr / 2,
                "cc": 0.1 + snr,
                "frc": {"frequency": freq.tolist(), "correlation": (0.3 * (1 - freq)).tolist()},
                "frc_resolution": {"0.5": 0.0, "0.143": 0.5},
            }
        )
        for k, method in enumerate(methods):
            quality = 1.2 if method == "supervised" else 1.0 - 0.05 * k
            cutoff = 0.2 + 0.6 * snr * quality
            rows.append(
                {
                    "method": method,
                    "snr": snr,
                    "snr_index": s,
                    "status": "ok",
                    "psnr": 15 + 12 * snr * quality + (0 if k else 1) + (0.003 if s == 3 else 0),
                    "ssim": 0.3 + snr * quality,
                    "cc": 0.5 + 0.8 * snr * quality,
                    "frc": {
                        "frequency": freq.tolist(),
                        "correlation": np.clip(1 - freq / cutoff, -0.1, 1).tolist(),
                    },
                    "frc_resolution": {"0.5": cutoff / 2, "0.143": cutoff * 0.857},
                    "frc_resolution_angstrom": {"0.5": 10 / cutoff, "0.143": 5 / cutoff},
                    "psnr_noisy": 5 + 10 * snr,
                    "ssim_noisy": 0.05 + snr / 2,
                    "cc_noisy": 0.1 + snr,
                    "seconds": 12.5 if method in LEARNED_METHODS else 0.01,
                    "parameters": {"cutoff_nyquist": 0.1 + snr} if method == "lowpass-best" else {},
                }
            )
    return {
        "format": "cryoden-bench-seed",
        "format_version": 1,
        "snr_levels": snrs,
        "methods": list(methods),
        "results": rows,
        "noisy": noisy,
        "config": {"preset": "fake", "image_size": 32, "montage_snr_indices": [0, 5, 9]},
        "data": {"structure": "fake", "split_statement": "disjoint"},
        "provenance": {"cryoden_version": "test"},
    }


@pytest.fixture
def make_fake_results() -> Any:
    """The :func:`fake_results` factory."""
    return fake_results


def write_fake_study(folder: Path, methods: tuple[str, ...] = REPORT_METHODS) -> Path:
    """Write a synthetic results.json and a montage.npz into ``folder``."""
    results = fake_results(methods)
    path = folder / "results.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results))
    rng = np.random.default_rng(0)
    n_m, n_s = len(results["methods"]), len(results["snr_levels"])
    np.savez(
        path.parent / "montage.npz",
        clean=rng.normal(size=(24, 24)).astype(np.float32),
        noisy=rng.normal(size=(n_s, 24, 24)).astype(np.float32),
        denoised=rng.normal(size=(n_m, n_s, 24, 24)).astype(np.float32),
        methods=np.array(results["methods"]),
        snr_levels=np.array(results["snr_levels"]),
    )
    return path


@pytest.fixture
def results_file(tmp_path: Path) -> Path:
    """A synthetic results.json with a montage.npz beside it, in a fresh folder."""
    return write_fake_study(tmp_path / "study")


@pytest.fixture(scope="module")
def fake_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A report written once per module from a synthetic results.json (treat as read-only)."""
    from cryoden.benchmark.report import write_report

    results = write_fake_study(tmp_path_factory.mktemp("fake-study"))
    return {"results": results, **write_report(results)}


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The tiny study with every available method, run once per session (treat as read-only)."""
    import torch

    from cryoden.benchmark.runner import run_study

    out = tmp_path_factory.mktemp("tiny-study")
    config = preset("tiny")  # one torch thread (the preset's), set by the study for every cell
    assert config.threads == 1
    calls: list[tuple[int, int]] = []
    threads = torch.get_num_threads()
    run = run_study(config, out, progress=lambda done, total: calls.append((done, total)))
    assert torch.get_num_threads() == threads  # the study restores the caller's count
    snapshot = {name: (out / name).read_text() for name in ("results.json", "report.md")}
    return {"out": out, "config": config, "run": run, "progress": calls, "snapshot": snapshot}


def chromium_or_skip() -> str:
    """Path of Debian's Chromium; the test is skipped when it is absent."""
    path = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if not path:
        pytest.skip("chromium is not installed (scripts/test.sh installs it)")
    return path


def _chromium_args(profile: Path) -> list[str]:
    """The flags of a quiet, offline, headless run."""
    return [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=5000",
    ]


#: Copies each report's image check (set by the report's own script on its load) into the
#: harness, where the DOM dump can see it; the harness's load waits for every iframe's.
_HARNESS_SCRIPT = """
window.addEventListener("load", function () {
  var frames = document.getElementsByTagName("iframe");
  for (var i = 0; i < frames.length; i++) {
    var name = frames[i].id.slice("page-".length);
    var out = document.getElementById("check-" + name);
    var check = frames[i].contentDocument.getElementById("image-check");
    if (!check) { out.setAttribute("data-status", "no-image-check"); continue; }
    ["images", "loaded", "status"].forEach(function (key) {
      out.setAttribute("data-" + key, check.getAttribute("data-" + key));
    });
  }
});
"""


@dataclass
class Rendered:
    """What one Chromium run saw: each page's image check and a screenshot of the first page."""

    checks: dict[str, dict[str, str]]
    screenshot: Path


def render_in_chromium(pages: dict[str, Path], folder: Path) -> Rendered:
    """Load ``pages`` (name: HTML file) in one headless Chromium run.

    The first page fills the screenshot's window; the others follow below it.
    """
    exe = chromium_or_skip()
    folder.mkdir(parents=True, exist_ok=True)
    frames, checks = [], []
    for name, page in pages.items():
        source = html.escape(page.read_text(encoding="utf-8"), quote=True)
        frames.append(
            f'<iframe id="page-{name}" srcdoc="{source}" width="1280" height="2400" '
            'style="border:0;display:block"></iframe>'
        )
        checks.append(f'<div id="check-{name}" data-status="pending"></div>')
    harness = folder / "harness.html"
    harness.write_text(
        '<!DOCTYPE html><html><head><meta charset="utf-8"></head><body style="margin:0">'
        + "".join(checks + frames)
        + f"<script>{_HARNESS_SCRIPT}</script></body></html>",
        encoding="utf-8",
    )
    png = folder / "shot.png"
    done = subprocess.run(
        [exe, *_chromium_args(folder / "profile"), "--dump-dom", f"--screenshot={png}",
         "--window-size=1280,2400", harness.resolve().as_uri()],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    found = {}
    for name in pages:
        match = re.search(rf'<div[^>]*id="check-{re.escape(name)}"[^>]*>', done.stdout)
        assert match, f"no check of {name} in the dumped DOM"
        found[name] = dict(re.findall(r'data-([a-z]+)="([^"]*)"', match.group(0)))
    return Rendered(found, png)


@pytest.fixture(scope="session")
def chromium() -> Any:
    """:func:`render_in_chromium` (the test is skipped when Chromium is not installed)."""
    chromium_or_skip()
    return render_in_chromium
