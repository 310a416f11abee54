"""Fixtures of the benchmark tests: a synthetic results.json and a headless Chromium helper."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cryoden.benchmark.study import METHOD_NAMES
from cryoden.noise import STUDY_SNR_LEVELS

CHROMIUM = "/usr/bin/chromium"


def fake_results(methods: tuple[str, ...] = METHOD_NAMES[:-1]) -> dict[str, Any]:
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
            quality = 1.0 - 0.05 * k
            cutoff = 0.2 + 0.6 * snr * quality
            rows.append(
                {
                    "method": method,
                    "snr": snr,
                    "snr_index": s,
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
                    "seconds": 12.5 if k < 5 else 0.01,
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


def write_fake_study(folder: Path) -> Path:
    """Write a synthetic results.json (all methods but bm3d) and a montage.npz into ``folder``."""
    results = fake_results()
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


def _chromium_or_skip() -> str:
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


class Browser:
    """Headless Chromium: DOM dumps, screenshots and the report's image check."""

    def dump_dom(self, page: Path, profile: Path) -> str:
        """The page's DOM after load, as headless Chromium serialises it."""
        exe = _chromium_or_skip()
        done = subprocess.run(
            [exe, *_chromium_args(profile), "--dump-dom", page.resolve().as_uri()],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    def screenshot(self, page: Path, profile: Path, png: Path) -> None:
        """A PNG screenshot of the page's first screen."""
        exe = _chromium_or_skip()
        done = subprocess.run(
            [exe, *_chromium_args(profile), f"--screenshot={png}", "--window-size=1280,2400",
             page.resolve().as_uri()],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]

    def image_check(self, dom: str) -> dict[str, str]:
        """The data attributes the report's script wrote into ``<div id="image-check">``."""
        match = re.search(r'<div[^>]*id="image-check"[^>]*>', dom)
        assert match, "no image-check element in the dumped DOM"
        return dict(re.findall(r'data-([a-z]+)="([^"]*)"', match.group(0)))


@pytest.fixture
def browser() -> Browser:
    """Headless Chromium (the test is skipped when it is not installed)."""
    _chromium_or_skip()
    return Browser()
