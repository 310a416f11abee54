"""Shared fixtures: tiny seeded data and the optional shared data folder."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """``$CRYODEN_SHARED_DATA`` or ``../shared/data`` beside the checkout."""
    env = os.environ.get("CRYODEN_SHARED_DATA")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """The shared real-data folder; tests using it skip cleanly when it is absent."""
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"shared data folder not found at {path}")
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def blob_image() -> np.ndarray:
    """A 96x80 float32 image of smooth blobs on a zero background (not square on purpose)."""
    yy, xx = np.mgrid[0:96, 0:80].astype(np.float64)
    img = np.zeros((96, 80))
    for cy, cx, r, a in [(30, 25, 9, 1.0), (60, 50, 14, 0.7), (70, 20, 6, 1.3)]:
        img += a * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r**2))
    return img.astype(np.float32)


@pytest.fixture(scope="module")
def one_thread():
    """Run a test on one torch thread, then restore the count: tiny tensors gain nothing from
    threads, and a shared 2-core machine punishes oversubscription."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
