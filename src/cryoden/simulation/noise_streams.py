"""Noise levels, per-image random streams and the paired noisy copies of a clean image.

Noise
-----
* Gaussian noise: white, zero mean, variance ``var(clean) / SNR`` (``var`` over the whole
  image, background included, as in the study), via :func:`cryoden.noise.add_noise`.
* Poisson noise at an SNR: :func:`cryoden.noise.add_poisson_noise_at_snr` (signal-dependent).
* Poisson noise at a dose (``dose_e_per_a2``): the clean image is the expected electron count
  per pixel ``dose * p**2 * (1 - 2 sigma (CTF * V_z))`` (weak-phase approximation with the
  interaction constant ``sigma`` of the voltage; with no CTF an ideal in-focus phase plate,
  CTF = 1, is assumed; :func:`dose_reference`), and the noisy images are Poisson counts drawn
  from it.

Randomness
----------
Image ``i`` of a run seeded with ``seed`` draws from streams derived from
``cryoden.noise.seeding.image_seed_sequence(seed, i)`` (the sequence behind
:func:`cryoden.noise.image_rng`): spawn key ``(i, 0)`` for its orientation(s) and position(s),
``(i, 1, kind, level)`` for noise ``a`` and ``(i, 2, kind, level)`` for noise ``b``, where
``kind`` is 0 for an SNR and 1 for a dose and ``level`` is the SNR (or dose) times 10^4
rounded. So an image does not depend on batching, on the other images or on which other levels
are simulated, ``a`` and ``b`` are independent, and a test set is just other indices. With
shared noise every SNR level uses the key ``(kind, level) = (0, 0)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cryoden.noise import add_noise
from cryoden.noise.models import add_poisson_noise
from cryoden.noise.seeding import image_seed_sequence
from cryoden.simulation.config import SimulationConfig
from cryoden.simulation.ctf import interaction_constant
from cryoden.simulation.layout import dose_dirname, snr_dirname

#: Spawn-key streams of an image: poses (clean image), noise copy ``a``, noise copy ``b``.
STREAM_POSES, STREAM_A, STREAM_B = 0, 1, 2
_KIND_SNR, _KIND_DOSE = 0, 1


@dataclass(frozen=True)
class NoiseLevel:
    """One noise level: an SNR (Gaussian or Poisson noise) or a dose (Poisson noise)."""

    name: str
    snr: float | None = None
    dose_e_per_a2: float | None = None

    @property
    def value(self) -> float:
        """The SNR, or the dose for dose levels."""
        level = self.snr if self.snr is not None else self.dose_e_per_a2
        assert level is not None  # noise_levels() gives every level an SNR or a dose
        return float(level)

    def stream_key(self) -> tuple[int, int]:
        """``(kind, level)`` part of the spawn key of this level's noise streams."""
        kind = _KIND_SNR if self.snr is not None else _KIND_DOSE
        return kind, int(round(self.value * 1e4))

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary (for the manifest)."""
        return {"name": self.name, "snr": self.snr, "dose_e_per_a2": self.dose_e_per_a2}


def noise_levels(config: SimulationConfig) -> list[NoiseLevel]:
    """The levels of a run: one per SNR of ``config.snr_levels``, or one dose level."""
    if config.dose_e_per_a2 is not None:
        dose = config.dose_e_per_a2
        return [NoiseLevel(dose_dirname(dose), dose_e_per_a2=dose)]
    return [NoiseLevel(snr_dirname(s), snr=s) for s in config.snr_levels or ()]


def stream(seed: int, index: int, *key: int) -> np.random.Generator:
    """Generator of image ``index``'s stream ``key`` (spawn key ``(index, *key)`` of ``seed``)."""
    parent = image_seed_sequence(seed, index)
    child = np.random.SeedSequence(entropy=parent.entropy, spawn_key=(*parent.spawn_key, *key))
    return np.random.Generator(np.random.PCG64(child))


def dose_reference(
    potential: np.ndarray, dose_e_per_a2: float, pixel_size_angstrom: float, voltage_kv: float
) -> tuple[np.ndarray, np.ndarray]:
    """(weak-phase contrast, expected counts per pixel) of a projected potential in V·Å."""
    contrast = -2.0 * interaction_constant(voltage_kv) * potential.astype(np.float64)
    counts = dose_e_per_a2 * pixel_size_angstrom**2 * np.clip(1.0 + contrast, 0.0, None)
    return contrast, counts


def noisy_pair(
    noise_input: np.ndarray,
    level: NoiseLevel,
    *,
    seed: int,
    index: int,
    noise_model: str,
    pixel_size_angstrom: float,
    shared: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Two independent noisy copies ``(a, b)`` of image ``index`` at ``level``.

    ``noise_input`` is the clean image for an SNR level and the weak-phase contrast (from
    :func:`dose_reference`) for a dose level. With ``shared`` an SNR level's streams do not
    depend on its value.
    """
    key = (_KIND_SNR, 0) if shared and level.snr is not None else level.stream_key()
    pair = []
    for copy in (STREAM_A, STREAM_B):
        rng = stream(seed, index, copy, *key)
        if level.snr is not None:
            pair.append(add_noise(noise_input, model=noise_model, snr=level.snr, rng=rng))
        else:
            assert level.dose_e_per_a2 is not None
            pair.append(
                add_poisson_noise(noise_input, level.dose_e_per_a2, pixel_size_angstrom, rng=rng)
            )
    return pair[0], pair[1]
