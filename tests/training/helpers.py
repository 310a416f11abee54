"""Tiny seeded training data shared by the training and inference tests."""

from __future__ import annotations

import numpy as np


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
