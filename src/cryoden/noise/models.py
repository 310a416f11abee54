"""Noise models: additive white Gaussian at a target SNR, Poisson shot noise at a dose, and
Poisson shot noise plus Gaussian read noise.

All functions take the clean image first, options keyword-only, and an explicit
:class:`numpy.random.Generator`; they return a new float32 array and never modify the input.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from cryoden.errors import ParameterError

NoiseModel = Literal["gaussian", "poisson", "poisson-gaussian"]
NOISE_MODELS: tuple[str, ...] = ("gaussian", "poisson", "poisson-gaussian")


def _check_positive(name: str, value: float) -> None:
    if not np.isfinite(value) or value <= 0:
        raise ParameterError(f"{name} must be a positive number, got {value}")


def noise_sigma_for_snr(clean: np.ndarray, snr: float) -> float:
    """Standard deviation of white noise that gives ``var(clean) / sigma**2 == snr``."""
    _check_positive("snr", snr)
    signal_var = float(np.var(np.asarray(clean, dtype=np.float64)))
    if signal_var == 0.0:
        raise ParameterError("the clean image is constant: its SNR is undefined")
    return float(np.sqrt(signal_var / snr))


def add_gaussian_noise(clean: np.ndarray, snr: float, *, rng: np.random.Generator) -> np.ndarray:
    """Add zero-mean white Gaussian noise so that ``var(clean) / var(noise) = snr``.

    The noise variance is set from the clean image's variance (background included), so the
    measured SNR of a large image is ``snr`` up to sampling error (about ``sqrt(2 / n_pixels)``).
    """
    sigma = noise_sigma_for_snr(clean, snr)
    noise = rng.standard_normal(np.shape(clean), dtype=np.float64) * sigma
    return (np.asarray(clean, dtype=np.float64) + noise).astype(np.float32)


def expected_counts_per_pixel(dose_e_per_a2: float, pixel_size_angstrom: float) -> float:
    """Mean electron count per pixel for a dose in e⁻/Å² and a pixel size in Å."""
    _check_positive("dose_e_per_a2", dose_e_per_a2)
    _check_positive("pixel_size_angstrom", pixel_size_angstrom)
    return float(dose_e_per_a2 * pixel_size_angstrom**2)


def _intensity(clean: np.ndarray, dose_e_per_a2: float, pixel_size_angstrom: float) -> np.ndarray:
    """Expected counts per pixel, ``dose * p**2 * (1 + clean)`` clipped at 0.

    The clean image is read as a relative contrast (background 0): weak-phase images have
    ``|clean|`` of a few percent.
    """
    lam = expected_counts_per_pixel(dose_e_per_a2, pixel_size_angstrom)
    contrast = np.asarray(clean, dtype=np.float64)
    return np.clip(lam * (1.0 + contrast), 0.0, None)


def add_poisson_noise_at_snr(
    clean: np.ndarray, snr: float, *, rng: np.random.Generator
) -> np.ndarray:
    """Signal-dependent Poisson noise at a target variance-ratio SNR, in the input's scale.

    The image is shifted to be non-negative, ``I = clean - min(clean)``, and read as a count
    rate scaled by ``k``: counts ~ Poisson(k I). Then signal variance is ``k**2 var(I)`` and
    noise variance ``k mean(I)``, so ``k = snr * mean(I) / var(I)`` gives the target SNR. The
    counts are mapped back with ``counts / k + min(clean)``.
    """
    _check_positive("snr", snr)
    base = np.asarray(clean, dtype=np.float64)
    offset = float(base.min())
    intensity = base - offset
    mean, var = float(intensity.mean()), float(intensity.var())
    if var == 0.0:
        raise ParameterError("the clean image is constant: its SNR is undefined")
    scale = snr * mean / var
    counts = rng.poisson(intensity * scale)
    return (counts / scale + offset).astype(np.float32)


def add_poisson_noise(
    clean: np.ndarray,
    dose_e_per_a2: float,
    pixel_size_angstrom: float,
    *,
    rng: np.random.Generator,
) -> np.ndarray:
    """Poisson shot noise at a dose.

    ``clean`` is a relative contrast image (background 0); the expected count per pixel is
    ``dose_e_per_a2 * pixel_size_angstrom**2 * (1 + clean)`` (clipped at 0). Returns the counts
    (float32), whose mean is the expected count and whose noise variance equals it.
    """
    return rng.poisson(_intensity(clean, dose_e_per_a2, pixel_size_angstrom)).astype(np.float32)


def add_poisson_gaussian_noise(
    clean: np.ndarray,
    dose_e_per_a2: float,
    pixel_size_angstrom: float,
    read_noise_sigma: float,
    *,
    rng: np.random.Generator,
) -> np.ndarray:
    """Poisson shot noise at a dose plus white Gaussian read noise (sigma in counts)."""
    if read_noise_sigma < 0:
        raise ParameterError(f"read_noise_sigma must be >= 0, got {read_noise_sigma}")
    counts = add_poisson_noise(clean, dose_e_per_a2, pixel_size_angstrom, rng=rng).astype(
        np.float64
    )
    counts += rng.standard_normal(counts.shape) * read_noise_sigma
    return counts.astype(np.float32)


def add_noise(
    clean: np.ndarray,
    *,
    model: str = "gaussian",
    rng: np.random.Generator,
    snr: float | None = None,
    dose_e_per_a2: float | None = None,
    pixel_size_angstrom: float | None = None,
    read_noise_sigma: float = 0.0,
) -> np.ndarray:
    """Add noise of the named ``model``.

    ``gaussian`` needs ``snr``; ``poisson`` takes either ``snr`` (signal-dependent shot noise at
    that SNR, see :func:`add_poisson_noise_at_snr`) or a dose (``dose_e_per_a2`` and
    ``pixel_size_angstrom``); ``poisson-gaussian`` needs the dose and ``read_noise_sigma``.
    """
    if model == "gaussian":
        if snr is None:
            raise ParameterError("the gaussian noise model needs snr")
        return add_gaussian_noise(clean, snr, rng=rng)
    if model == "poisson" and dose_e_per_a2 is None and snr is not None:
        return add_poisson_noise_at_snr(clean, snr, rng=rng)
    if model in ("poisson", "poisson-gaussian"):
        if dose_e_per_a2 is None or pixel_size_angstrom is None:
            raise ParameterError(
                f"the {model} noise model needs a dose (e/Å²) and a pixel size (Å)"
            )
        if model == "poisson":
            return add_poisson_noise(clean, dose_e_per_a2, pixel_size_angstrom, rng=rng)
        return add_poisson_gaussian_noise(
            clean, dose_e_per_a2, pixel_size_angstrom, read_noise_sigma, rng=rng
        )
    raise ParameterError(f"unknown noise model {model!r}; known: {', '.join(NOISE_MODELS)}")
