"""The settings of one simulation run, validated once: :class:`SimulationConfig`.

:func:`~cryoden.simulation.datasets.simulate_images` and
:func:`~cryoden.simulation.datasets.simulate_dataset` take one of these (or its fields as
keyword arguments). Every check that does not need the structure file happens in
:meth:`SimulationConfig.__post_init__`, so a bad value fails before anything is loaded or
written; errors name the field.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cryoden.errors import ParameterError
from cryoden.noise import NOISE_MODELS
from cryoden.simulation.ctf import CtfParams
from cryoden.simulation.layout import snr_dirname
from cryoden.simulation.orientations import check_rotation
from cryoden.simulation.phantoms import PHANTOMS

#: Smallest image side accepted, in pixels.
MIN_SIZE = 16
#: Noise models the simulation supports.
SUPPORTED_NOISE_MODELS: tuple[str, ...] = ("gaussian", "poisson")


@dataclass(frozen=True)
class SimulationConfig:
    """What to project, how to image it and which noise to add.

    Attributes
    ----------
    structure
        A PDB/mmCIF atomic model (``.pdb``, ``.cif``, optionally ``.gz``) or an MRC density map
        (``.mrc``, ``.map``); None uses ``phantom``.
    phantom
        Embedded phantom used when ``structure`` is None (``"groel"``, see
        :mod:`cryoden.simulation.phantoms`).
    n_images
        Number of images (``>= 1``).
    size
        Image side in pixels (``>= 16``).
    pixel_size_angstrom
        Pixel size in Å (``> 0``).
    snr_levels
        SNRs (variance ratio, each ``> 0``, distinct at 4 decimals), e.g.
        :data:`cryoden.noise.STUDY_SNR_LEVELS`.
    dose_e_per_a2
        Electron dose in e/Å² for Poisson noise at a dose (instead of SNR levels).
    noise_model
        ``"gaussian"`` (at each SNR) or ``"poisson"`` (at each SNR, or at ``dose_e_per_a2``).
    shared_noise
        Draw an image's noise at every SNR level from the same random stream (common random
        numbers): with Gaussian noise its ``a`` (and ``b``) copies at two SNRs then differ only
        by the scale of one noise field, so differences between levels reflect the SNR, not
        the luck of the draw. Dose levels keep their own streams.
    ctf
        CTF applied to the clean image, or None.
    field
        Micrograph-like fields of many non-overlapping particles at random positions and
        orientations instead of one centred particle per image.
    particles_per_field
        Particles wanted per field (default: about 30 % area coverage).
    max_shift_angstrom
        Single particles are shifted uniformly within ``[-max, max]`` Å on each axis.
    b_factor_a2
        Global B-factor in Å² applied to atomic models (``>= 0``).
    rotations
        ``(n_images, 3, 3)`` given orientations (single particles only); uniform random on
        SO(3) by default.
    seed
        Base seed (``>= 0``); image ``i`` uses streams derived from ``(seed, i)``.
    first_index
        Index of the first image (a test set uses indices after the training set's).
    """

    structure: Path | None = None
    phantom: str | None = "groel"
    n_images: int = 16
    size: int = 128
    pixel_size_angstrom: float = 2.0
    snr_levels: tuple[float, ...] | None = None
    dose_e_per_a2: float | None = None
    noise_model: str = "gaussian"
    shared_noise: bool = False
    ctf: CtfParams | None = None
    field: bool = False
    particles_per_field: int | None = None
    max_shift_angstrom: float = 0.0
    b_factor_a2: float = 0.0
    rotations: np.ndarray | None = dataclasses.field(default=None, compare=False, repr=False)
    seed: int = 0
    first_index: int = 0

    def __post_init__(self) -> None:
        put = self._put
        if self.structure is not None:
            put("structure", Path(os.fspath(self.structure)))
        elif self.phantom is None:
            raise ParameterError("give a structure file (structure) or a phantom (phantom)")
        elif self.phantom not in PHANTOMS:
            known = ", ".join(sorted(PHANTOMS))
            raise ParameterError(f"unknown phantom {self.phantom!r}; known phantoms: {known}")
        put("n_images", _integer("n_images", self.n_images, minimum=1))
        put("size", _integer("size", self.size, minimum=MIN_SIZE, unit=" pixels"))
        put("pixel_size_angstrom", _positive("pixel_size_angstrom", self.pixel_size_angstrom))
        put("seed", _integer("seed", self.seed, minimum=0))
        put("first_index", _integer("first_index", self.first_index, minimum=0))
        self._check_noise()
        if self.ctf is not None and not isinstance(self.ctf, CtfParams):
            raise ParameterError(f"ctf must be a CtfParams or None, got {type(self.ctf).__name__}")
        put("b_factor_a2", _non_negative("b_factor_a2", self.b_factor_a2, unit=" Å²"))
        put("max_shift_angstrom", _non_negative("max_shift_angstrom", self.max_shift_angstrom))
        if self.particles_per_field is not None:
            put(
                "particles_per_field",
                _integer("particles_per_field", self.particles_per_field, minimum=1),
            )
        put("field", bool(self.field))
        put("shared_noise", bool(self.shared_noise))
        if self.rotations is not None:
            put("rotations", self._checked_rotations())

    def _put(self, name: str, value: object) -> None:
        """Store a normalised value (the dataclass is frozen)."""
        object.__setattr__(self, name, value)

    def _check_noise(self) -> None:
        put = self._put
        if self.noise_model not in SUPPORTED_NOISE_MODELS:
            known = ", ".join(SUPPORTED_NOISE_MODELS)
            extra = (
                " (poisson-gaussian is not supported)" if self.noise_model in NOISE_MODELS else ""
            )
            raise ParameterError(f"unknown noise_model {self.noise_model!r}; known: {known}{extra}")
        snrs = [] if self.snr_levels is None else list(self.snr_levels)
        if self.dose_e_per_a2 is not None:
            if self.noise_model != "poisson":
                raise ParameterError("dose_e_per_a2 needs noise_model 'poisson'")
            if snrs:
                raise ParameterError("give either snr_levels or dose_e_per_a2, not both")
            put("dose_e_per_a2", _positive("dose_e_per_a2", self.dose_e_per_a2))
            return
        if not snrs:
            raise ParameterError("at least one SNR level is needed (snr_levels), or dose_e_per_a2")
        levels = tuple(_positive("snr_levels", s) for s in snrs)
        names = [snr_dirname(s) for s in levels]
        if len(set(names)) != len(names):
            raise ParameterError(f"snr_levels must differ at 4 decimals, got {', '.join(names)}")
        put("snr_levels", levels)

    def _checked_rotations(self) -> np.ndarray:
        if self.field:
            raise ParameterError("rotations are for single-particle images, not with field")
        rotations = np.array(self.rotations, dtype=np.float64)
        if rotations.shape != (self.n_images, 3, 3):
            raise ParameterError(
                f"rotations must have shape ({self.n_images}, 3, 3), got {rotations.shape}"
            )
        for r in rotations:
            check_rotation(r)
        rotations.setflags(write=False)
        return rotations


def _number(name: str, value: Any) -> float:
    """``value`` as a finite float; anything else (Any: the conversion is the check) raises."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(v):
        raise ParameterError(f"{name} must be a finite number, got {value}")
    return v


def _positive(name: str, value: object) -> float:
    v = _number(name, value)
    if v <= 0:
        raise ParameterError(f"{name} must be a positive number, got {value}")
    return v


def _non_negative(name: str, value: object, unit: str = "") -> float:
    v = _number(name, value)
    if v < 0:
        raise ParameterError(f"{name} must be >= 0{unit}, got {value}")
    return v


def _integer(name: str, value: Any, *, minimum: int, unit: str = "") -> int:
    """``value`` as an int of at least ``minimum`` (Any: the conversion is the check)."""
    try:
        ok = int(value) == value
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok or int(value) < minimum:
        raise ParameterError(f"{name} must be an integer >= {minimum}{unit}, got {value!r}")
    return int(value)
