"""Tiny models and images for the batch tests (32-48 px images, a 2-level U-Net of base 4)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from cryoden.io import write_mrc
from cryoden.models import ModelConfig, save_model
from cryoden.nets import NetworkConfig, build_network


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A single-file model of a 2-level U-Net of base 4 with seeded random weights."""
    config = NetworkConfig(depth=2, base_channels=4)
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("model")
    return save_model(folder / "m.safetensors", build_network(config), ModelConfig(network=config))


@pytest.fixture
def write_images():
    """``write_images(folder, n, shape=(40, 48))``: ``n`` seeded noise images ``img<i>.mrc``
    with a 1.5 Å voxel size, their paths returned."""

    def write(folder: Path, n: int, shape: tuple[int, ...] = (40, 48)) -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for i in range(n):
            path = folder / f"img{i}.mrc"
            data = np.random.default_rng(i).normal(size=shape).astype(np.float32)
            write_mrc(path, data, voxel_size_angstrom=1.5)
            paths.append(path)
        return paths

    return write
