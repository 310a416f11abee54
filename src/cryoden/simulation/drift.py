"""Smooth specimen drift during a movie: beam-induced motion, stage drift and a slow wander.

The specimen's in-plane position (Å) at a time ``t`` (in frames, ``0 <= t <= n_frames``) is
the sum of

* beam-induced motion, fast at the start of the exposure and decaying: ``A (1 - exp(-t /
  tau)) / (1 - exp(-n / tau))`` along a random direction (``A = beam_induced_angstrom``,
  ``tau = decay_frames``);
* stage drift, constant in speed: ``B t / n`` along another random direction
  (``B = stage_drift_angstrom``);
* a slow wander: a few random sinusoids with periods of at least ``n / 3`` frames, with a total
  standard deviation of ``wander_angstrom`` per axis.

Every term is smooth in time, so frame-to-frame shifts vary slowly and the trajectory is
continuous and sub-pixel. Each frame integrates the motion during its exposure: it is sampled at
``samples_per_frame`` evenly spaced times within the frame (the motion blur of one frame). The
positions are returned relative to their mean over every sample, so the drift-free (clean)
micrograph lies at the average position of the exposure, which is where a frame alignment that
centres its shifts (:func:`cryoden.movies.alignment.estimate_global_drift`) registers the sum.

Typical values at 300 kV on vitreous ice: 5-20 Å of beam-induced motion, most of it in the first
few e/Å² (the first 2-5 frames), and under 1 Å per frame of stage drift once settled.

References
----------
.. [1] A. F. Brilot et al., "Beam-induced motion of vitrified specimen on holey carbon film",
   J. Struct. Biol. 177, 630-637 (2012).
.. [2] S. Q. Zheng et al., "MotionCor2: anisotropic correction of beam-induced motion for
   improved cryo-electron microscopy", Nat. Methods 14, 331-332 (2017).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from cryoden.errors import ParameterError

#: Random sinusoids that make up the slow wander.
WANDER_TERMS = 3


@dataclass(frozen=True)
class DriftModel:
    """Parameters of the drift trajectory (see the module docstring).

    Attributes
    ----------
    beam_induced_angstrom
        Total beam-induced displacement over the movie in Å (``>= 0``; typically 5-20).
    decay_frames
        Time constant of the beam-induced motion in frames (``> 0``; typically 2-5).
    stage_drift_angstrom
        Total stage drift over the movie in Å (``>= 0``; typically 0-5).
    wander_angstrom
        Standard deviation per axis of the slow wander in Å (``>= 0``; typically under 1).
    samples_per_frame
        Times at which each frame's position is sampled for its motion blur (``>= 1``).
    """

    beam_induced_angstrom: float = 8.0
    decay_frames: float = 3.0
    stage_drift_angstrom: float = 2.0
    wander_angstrom: float = 0.5
    samples_per_frame: int = 3

    def __post_init__(self) -> None:
        for name in ("beam_induced_angstrom", "stage_drift_angstrom", "wander_angstrom"):
            value = float(getattr(self, name))
            if not (np.isfinite(value) and 0.0 <= value <= 1e5):
                raise ParameterError(f"{name} must be in [0, 1e5] Å, got {value}")
            object.__setattr__(self, name, value)
        decay = float(self.decay_frames)
        if not (np.isfinite(decay) and decay > 0):
            raise ParameterError(f"decay_frames must be > 0, got {decay}")
        object.__setattr__(self, "decay_frames", decay)
        samples = self.samples_per_frame
        if isinstance(samples, bool) or not isinstance(samples, int) or not 1 <= samples <= 64:
            raise ParameterError(f"samples_per_frame must be an integer in [1, 64], got {samples}")

    @property
    def total_angstrom(self) -> float:
        """An upper bound on the distance between any two positions of a movie, in Å."""
        return self.beam_induced_angstrom + self.stage_drift_angstrom + 6 * self.wander_angstrom

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary (for manifests)."""
        return asdict(self)


def sample_times(n_frames: int, samples_per_frame: int) -> np.ndarray:
    """``(n_frames, samples)`` times in frames: ``samples`` evenly spaced inside each frame."""
    offsets = (np.arange(samples_per_frame) + 0.5) / samples_per_frame
    return np.arange(n_frames)[:, None] + offsets[None, :]


def drift_trajectory(
    n_frames: int,
    model: DriftModel,
    *,
    pixel_size_angstrom: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Specimen positions ``(n_frames, samples_per_frame, 2)`` as ``(dy, dx)`` in pixels.

    Positions are relative to their mean over every sample (see the module docstring); a frame
    whose samples are at ``s`` shows the drift-free image shifted by ``s`` (moved towards
    ``+y, +x`` for positive values).
    """
    if isinstance(n_frames, bool) or not isinstance(n_frames, int) or n_frames < 1:
        raise ParameterError(f"n_frames must be an integer >= 1, got {n_frames!r}")
    p = float(pixel_size_angstrom)
    if not (np.isfinite(p) and p > 0):
        raise ParameterError(f"pixel_size_angstrom must be > 0, got {pixel_size_angstrom}")
    t = sample_times(n_frames, model.samples_per_frame)
    n = float(n_frames)
    tau = model.decay_frames
    beam = (1.0 - np.exp(-t / tau)) / (1.0 - np.exp(-n / tau))
    beam_dir = _direction(rng)
    stage_dir = _direction(rng)
    position = (
        model.beam_induced_angstrom * beam[..., None] * beam_dir
        + model.stage_drift_angstrom * (t / n)[..., None] * stage_dir
    )
    # slow wander: sinusoids with periods between n / 3 and 2 n frames, each axis independent
    periods = rng.uniform(n / 3.0, 2.0 * n, size=(WANDER_TERMS, 2))
    phases = rng.uniform(0.0, 2.0 * np.pi, size=(WANDER_TERMS, 2))
    waves = np.sin(2.0 * np.pi * t[..., None, None] / periods + phases)
    # each unit sinusoid has variance 1/2: scale the sum to wander_angstrom per axis
    position = position + model.wander_angstrom * waves.sum(axis=-2) * np.sqrt(2.0 / WANDER_TERMS)
    position -= position.reshape(-1, 2).mean(axis=0)
    return position / p


def frame_shifts(trajectory: np.ndarray) -> np.ndarray:
    """Mean position of each frame ``(n_frames, 2)`` in pixels (what a frame alignment finds)."""
    return np.asarray(trajectory).mean(axis=1)


def _direction(rng: np.random.Generator) -> np.ndarray:
    """A random unit vector ``(dy, dx)``."""
    angle = rng.uniform(0.0, 2.0 * np.pi)
    return np.array([np.sin(angle), np.cos(angle)])
