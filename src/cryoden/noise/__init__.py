"""Noise models and SNR definitions (SNR = var(signal) / var(noise))."""

from cryoden.noise.models import (
    NOISE_MODELS,
    add_gaussian_noise,
    add_noise,
    add_poisson_gaussian_noise,
    add_poisson_noise,
    add_poisson_noise_at_snr,
    expected_counts_per_pixel,
    noise_sigma_for_snr,
)
from cryoden.noise.seeding import image_rng, image_seed
from cryoden.noise.snr import STUDY_SNR_LEVELS, estimate_snr, snr_to_db

__all__ = [
    "NOISE_MODELS",
    "STUDY_SNR_LEVELS",
    "add_gaussian_noise",
    "add_noise",
    "add_poisson_gaussian_noise",
    "add_poisson_noise",
    "add_poisson_noise_at_snr",
    "estimate_snr",
    "expected_counts_per_pixel",
    "image_rng",
    "image_seed",
    "noise_sigma_for_snr",
    "snr_to_db",
]
