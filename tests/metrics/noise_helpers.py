"""Test data for the noise measurements: correlated Gaussian noise of known correlation and a
low-SNR simulated micrograph-like field."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def three_tap(a: float) -> np.ndarray:
    """The unit-energy kernel ``[a, 1, a]``."""
    taps = np.array([a, 1.0, a])
    return taps / np.sqrt(np.sum(taps * taps))


def kernel_correlation(a: float, max_lag: int = 3) -> list[float]:
    """Correlation of white noise filtered by :func:`three_tap` at lags ``1..max_lag``:
    ``2a / (1 + 2a²)``, ``a² / (1 + 2a²)``, then 0."""
    values = [2 * a / (1 + 2 * a * a), a * a / (1 + 2 * a * a)] + [0.0] * max_lag
    return values[:max_lag]


def correlated_noise(
    shape: tuple[int, ...], *, a_x: float, a_y: float, sigma: float, rng: np.random.Generator
) -> np.ndarray:
    """Stationary Gaussian noise of standard deviation ``sigma``, white noise filtered by
    :func:`three_tap` with ``a_x`` along the last axis and ``a_y`` along the one before ("valid"
    part only, so no border effects)."""
    padded = tuple(shape[:-2]) + (shape[-2] + 2, shape[-1] + 2)
    white = rng.normal(size=padded)
    out = ndimage.correlate1d(white, three_tap(a_x), axis=-1, mode="constant")
    out = ndimage.correlate1d(out, three_tap(a_y), axis=-2, mode="constant")
    return sigma * out[..., 1:-1, 1:-1]


def simulated_field(size: int = 128, *, seed: int = 0) -> np.ndarray:
    """A clean micrograph-like field 256 Å wide (GroEL phantom particles, CTF at 1.5 µm
    defocus) with unit variance, float64."""
    from cryoden.simulation import simulate_images
    from cryoden.simulation.ctf import CtfParams

    (image,) = simulate_images(
        n_images=1,
        size=size,
        pixel_size_angstrom=256.0 / size,
        field=True,
        snr_levels=[0.1],
        ctf=CtfParams(defocus_angstrom=15000.0, b_factor=50.0),
        seed=seed,
    )
    clean = image.clean.astype(np.float64)
    return (clean - clean.mean()) / clean.std()
