"""Tiny seeded data, networks and training shared by the training tests."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from cryoden.nets.config import NetworkConfig
from cryoden.nets.polyphase import merge_polyphase, split_polyphase
from cryoden.nets.registry import build_network
from cryoden.training.data import sample_patches


def blob_images(n: int, size: int = 48, *, seed: int = 0) -> list[np.ndarray]:
    """``n`` clean ``size × size`` images of a few smooth blobs on a zero background."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    images = []
    for _ in range(n):
        img = np.zeros((size, size))
        for _ in range(4):
            cy, cx = rng.uniform(6, size - 6, 2)
            r = rng.uniform(2.5, 6.0)
            img += rng.uniform(0.5, 1.5) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
        images.append(img.astype(np.float32))
    return images


def noisy_pairs(
    clean: list[np.ndarray], snr: float, *, seed: int = 1
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Two independent Gaussian-noise realisations of each clean image at a variance SNR."""
    rng = np.random.default_rng(seed)
    sigma = float(np.sqrt(np.var(np.stack(clean)) / snr))
    return [
        (
            (c + rng.normal(0, sigma, c.shape)).astype(np.float32),
            (c + rng.normal(0, sigma, c.shape)).astype(np.float32),
        )
        for c in clean
    ]


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    """Run a block with the process umask set to ``mask``, then restore the caller's."""
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


# --- tiny networks and training for the scheme tests --------------------------------------

#: A small U-Net (two levels, base 8) that trains in a fraction of a second per step.
TINY = NetworkConfig(base_channels=8, depth=2)


def tiny_network(config: NetworkConfig = TINY, seed: int = 0) -> torch.nn.Module:
    """``config``'s network with weights from torch's global generator seeded with ``seed``."""
    torch.manual_seed(seed)
    return build_network(config)


def gen(seed: int = 0) -> torch.Generator:
    """A seeded CPU generator."""
    return torch.Generator().manual_seed(seed)


def shapes_image(rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """Hard-edged discs and squares: plenty of high-frequency power in the clean image."""
    yy, xx = np.mgrid[0:size, 0:size]
    image = np.zeros((size, size))
    for _ in range(6):
        cy, cx = rng.uniform(8, size - 8, 2)
        r = rng.uniform(3, 9)
        amplitude = rng.uniform(0.5, 1.5)
        if rng.random() < 0.5:
            image[(yy - cy) ** 2 + (xx - cx) ** 2 < r**2] += amplitude
        else:
            image[(abs(yy - cy) < r) & (abs(xx - cx) < r)] += amplitude
    return image.astype(np.float32)


def noisy_shapes_images() -> tuple[np.ndarray, np.ndarray]:
    """Five clean 64 x 64 images (four to train on, one held out) and their noisy versions."""
    rng = np.random.default_rng(10)
    clean = np.stack([shapes_image(rng) for _ in range(5)])
    noisy = clean + rng.normal(scale=0.5, size=clean.shape).astype(np.float32)
    return clean, noisy.astype(np.float32)


def train_tiny(
    scheme: Any,
    noisy: np.ndarray,
    *,
    config: NetworkConfig = TINY,
    steps: int = 60,
    polyphase: bool = False,
) -> tuple[np.ndarray, list[float]]:
    """Train ``config``'s network with ``scheme`` on ``noisy[:-1]`` (a bare Adam loop);
    return the denoised held-out image ``noisy[-1]`` (original scale) and the step losses.

    The prediction is made at full size or, with ``polyphase``, on the four 2×2 sub-images and
    merged, as the denoiser applies Neighbor2Neighbor models.
    """
    mean, std = float(noisy.mean()), float(noisy.std())
    normalised = [(im[None] - mean) / std for im in noisy]
    network = tiny_network(config)
    optimizer = torch.optim.Adam(network.parameters(), lr=3e-3)
    generator = gen(11)
    losses = []
    for _ in range(steps):
        batch = sample_patches(normalised[:-1], patch=32, batch=8, generator=generator)
        loss = scheme.loss(network, batch, generator=generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    network.eval()
    x = torch.from_numpy(normalised[-1][None])
    with torch.no_grad():
        if polyphase:
            out = merge_polyphase(network(split_polyphase(x)), tuple(x.shape[-2:]))
        else:
            out = network(x)
    return out[0, 0].numpy() * std + mean, losses


#: A tiny U-Net and a fast training recipe shared by the loop and step-budget tests.
FAST_NET = NetworkConfig(depth=2, base_channels=4)
FAST = {
    "patch": 24,
    "batch_size": 4,
    "steps_per_epoch": 4,
    "validation_patches": 8,
    "threads": 1,
    "seed": 7,
}


class Interrupt(Exception):
    """Raised from a progress callback to cut a training short, as a crash would."""
