"""Signal-to-noise ratio definitions.

cryoden's SNR is the variance ratio ``var(signal) / var(noise)`` (not in dB). This is the
definition the seed study's levels (0.01 to 0.5) refer to: the signal variance is taken over the
whole clean image, background included.
"""

from __future__ import annotations

import numpy as np

#: The seed study's ten SNR levels, evenly spaced from 0.01 to 0.5.
STUDY_SNR_LEVELS: tuple[float, ...] = tuple(float(s) for s in np.linspace(0.01, 0.5, 10))


def estimate_snr(clean: np.ndarray, noisy: np.ndarray) -> float:
    """SNR of ``noisy`` given the ``clean`` image: ``var(clean) / var(noisy - clean)``."""
    clean = np.asarray(clean, dtype=np.float64)
    noisy = np.asarray(noisy, dtype=np.float64)
    if clean.shape != noisy.shape:
        raise ValueError(f"shape mismatch: clean {clean.shape} vs noisy {noisy.shape}")
    noise_var = float(np.var(noisy - clean))
    if noise_var == 0.0:
        return float("inf")
    return float(np.var(clean)) / noise_var


def snr_to_db(snr: float) -> float:
    """A variance-ratio SNR in decibels, ``10 log10(snr)``."""
    return float(10.0 * np.log10(snr))
