"""The settings of one tomogram simulation, validated once: :class:`TomogramConfig`.

:class:`~cryoden.simulation.tomo_dataset.TomogramSimulator` and
:func:`~cryoden.simulation.tomo_dataset.simulate_tomogram_dataset` take one of these. Every
check that does not need the structure files happens in :meth:`TomogramConfig.__post_init__`,
so a bad value fails before anything is loaded or written; errors name the field.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from typing import Any

from cryoden.errors import ParameterError
from cryoden.simulation.phantoms import PHANTOMS
from cryoden.simulation.tilt_series import WBP_FILTERS, tilt_angles

#: Smallest side of a tomogram in voxels.
MIN_SIDE = 8
#: Default slab thickness as a fraction of the volume's thickness.
DEFAULT_SLAB_FRACTION = 0.75


def _number(
    name: str, value: Any, *, above: float | None = None, minimum: float | None = None
) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise ParameterError(f"{name} must be a finite number, got {value}")
    if above is not None and v <= above:
        raise ParameterError(f"{name} must be > {above:g}, got {value}")
    if minimum is not None and v < minimum:
        raise ParameterError(f"{name} must be >= {minimum:g}, got {value}")
    return v


def _integer(name: str, value: Any, *, minimum: int) -> int:
    try:
        ok = not isinstance(value, bool) and int(value) == value
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok or int(value) < minimum:
        raise ParameterError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class TomogramConfig:
    """What fills the tomograms, how they are imaged and which noise the halves get.

    Attributes
    ----------
    structures
        Atomic models (PDB/mmCIF, ``.gz`` allowed) and/or MRC density maps; each particle is
        a copy of one of them, drawn uniformly. Empty: the embedded ``phantom``.
    phantom
        Embedded phantom used when ``structures`` is empty (``"groel"``).
    n_tomograms
        Number of tomograms (``>= 1``).
    first_index
        Index of the first tomogram; tomogram ``i`` draws from streams derived from
        ``(seed, i)``, so a test set is other indices.
    shape_zyx
        ``(Z, Y, X)`` voxels of each tomogram; ``y`` is the tilt axis, ``z`` the beam at 0°.
    voxel_size_angstrom
        Voxel (and tilt-image pixel) size in Å.
    slab_thickness_angstrom
        Thickness of the ice slab holding the particles (Å); by default
        :data:`DEFAULT_SLAB_FRACTION` of the volume's thickness.
    n_particles
        Particles wanted per tomogram; by default enough bounding spheres to fill
        ``volume_fraction`` of the slab.
    volume_fraction
        Target crowding when ``n_particles`` is None, in ``(0, 0.5]``.
    min_separation
        Centres of two particles are at least this times the sum of their radii apart.
    b_factor_a2
        Global B-factor (Å²) of atomic models.
    tilt_min_deg, tilt_max_deg, tilt_step_deg
        The tilt series' angles in degrees (:func:`~cryoden.simulation.tilt_series.tilt_angles`).
    snr
        Gaussian noise per tilt image at this SNR (``var(clean tilt series) / var(noise)``;
        each half, even and odd, has this SNR).
    dose_e_per_a2
        Poisson noise instead: the tilt series' total dose in e/Å², spread evenly over the
        tilts and split evenly between the two halves.
    voltage_kv
        Accelerating voltage (kV) of the weak-phase contrast at a dose.
    filter_name
        Weighted back-projection filter (:data:`~cryoden.simulation.tilt_series.WBP_FILTERS`).
    seed
        Base seed (``>= 0``).
    """

    structures: tuple[str, ...] = ()
    phantom: str = "groel"
    n_tomograms: int = 1
    first_index: int = 0
    shape_zyx: tuple[int, int, int] = (64, 128, 128)
    voxel_size_angstrom: float = 8.0
    slab_thickness_angstrom: float | None = None
    n_particles: int | None = None
    volume_fraction: float = 0.2
    min_separation: float = 0.8
    b_factor_a2: float = 0.0
    tilt_min_deg: float = -60.0
    tilt_max_deg: float = 60.0
    tilt_step_deg: float = 3.0
    snr: float | None = None
    dose_e_per_a2: float | None = None
    voltage_kv: float = 300.0
    filter_name: str = "ramp"
    seed: int = 0

    def __post_init__(self) -> None:
        put = self._put
        put("structures", tuple(os.fspath(s) for s in self.structures))
        if not self.structures and self.phantom not in PHANTOMS:
            known = ", ".join(sorted(PHANTOMS))
            raise ParameterError(f"unknown phantom {self.phantom!r}; known phantoms: {known}")
        put("n_tomograms", _integer("n_tomograms", self.n_tomograms, minimum=1))
        put("first_index", _integer("first_index", self.first_index, minimum=0))
        put("seed", _integer("seed", self.seed, minimum=0))
        shape = tuple(self.shape_zyx)
        if len(shape) != 3:
            raise ParameterError(f"shape_zyx must be 3 sides (Z, Y, X), got {shape}")
        put("shape_zyx", tuple(_integer("shape_zyx", s, minimum=MIN_SIDE) for s in shape))
        voxel = _number("voxel_size_angstrom", self.voxel_size_angstrom, above=0)
        put("voxel_size_angstrom", voxel)
        if self.slab_thickness_angstrom is not None:
            slab = _number("slab_thickness_angstrom", self.slab_thickness_angstrom, above=0)
            if slab > self.shape_zyx[0] * voxel + 1e-9:
                raise ParameterError(
                    f"slab_thickness_angstrom ({slab:g} Å) exceeds the volume's thickness "
                    f"({self.shape_zyx[0]} x {voxel:g} Å)"
                )
            put("slab_thickness_angstrom", slab)
        if self.n_particles is not None:
            put("n_particles", _integer("n_particles", self.n_particles, minimum=1))
        fraction = _number("volume_fraction", self.volume_fraction, above=0)
        if fraction > 0.5:
            raise ParameterError(f"volume_fraction must be in (0, 0.5], got {fraction}")
        put("volume_fraction", fraction)
        separation = _number("min_separation", self.min_separation, above=0)
        if separation > 2:
            raise ParameterError(f"min_separation must be in (0, 2], got {separation}")
        put("min_separation", separation)
        put("b_factor_a2", _number("b_factor_a2", self.b_factor_a2, minimum=0))
        for name in ("tilt_min_deg", "tilt_max_deg", "tilt_step_deg"):
            put(name, _number(name, getattr(self, name)))
        tilt_angles(self.tilt_min_deg, self.tilt_max_deg, self.tilt_step_deg)  # checks them
        self._check_noise()
        put("voltage_kv", _number("voltage_kv", self.voltage_kv, above=0))
        if self.filter_name not in WBP_FILTERS:
            raise ParameterError(
                f"filter_name must be one of {', '.join(WBP_FILTERS)}; got {self.filter_name!r}"
            )

    def _put(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)

    def _check_noise(self) -> None:
        if self.snr is not None and self.dose_e_per_a2 is not None:
            raise ParameterError("give either snr or dose_e_per_a2, not both")
        if self.snr is not None:
            self._put("snr", _number("snr", self.snr, above=0))
        if self.dose_e_per_a2 is not None:
            self._put("dose_e_per_a2", _number("dose_e_per_a2", self.dose_e_per_a2, above=0))

    @property
    def slab_angstrom(self) -> float:
        """The slab's thickness in Å (the given one, or the default fraction of the volume)."""
        if self.slab_thickness_angstrom is not None:
            return float(self.slab_thickness_angstrom)
        return DEFAULT_SLAB_FRACTION * self.shape_zyx[0] * self.voxel_size_angstrom

    @property
    def angles_deg(self) -> list[float]:
        """The tilt angles in degrees."""
        return tilt_angles(self.tilt_min_deg, self.tilt_max_deg, self.tilt_step_deg).tolist()

    def replace(self, **changes: Any) -> TomogramConfig:
        """A copy with ``changes`` (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary of every field (for manifests and study records)."""
        data = dataclasses.asdict(self)
        data["structures"] = list(self.structures)
        data["shape_zyx"] = list(self.shape_zyx)
        data["slab_thickness_angstrom"] = self.slab_angstrom
        return data
