"""The settings of a movie simulation, validated once: :class:`MovieConfig`.

:class:`~cryoden.simulation.movies.MovieSimulator` and
:func:`~cryoden.simulation.movie_files.simulate_movie_dataset` take one of these. Every check
that does not need a structure file happens in :meth:`MovieConfig.__post_init__`; errors name
the field.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cryoden.errors import ParameterError
from cryoden.simulation.astigmatism import AstigmaticCtf
from cryoden.simulation.detector import DetectorModel
from cryoden.simulation.drift import DriftModel
from cryoden.simulation.ice import IceModel
from cryoden.simulation.phantoms import PHANTOMS

#: Smallest movie side in pixels.
MIN_MOVIE_SIZE = 32
#: Largest number of frames per movie.
MAX_FRAMES = 1000


@dataclass(frozen=True)
class MovieConfig:
    """What to image, with which microscope, detector and exposure.

    Attributes
    ----------
    structures
        PDB/mmCIF models or MRC maps whose particles are mixed in each field (each particle's
        structure drawn uniformly); empty uses ``phantom``.
    phantom
        Embedded phantom used when ``structures`` is empty.
    n_movies
        Number of movies (``>= 1``).
    size
        Side of the square frames in pixels (``>= 32``).
    pixel_size_angstrom
        Pixel size in Å (``> 0``).
    n_frames
        Frames per movie (``>= 2``, typically 20-50).
    dose_per_frame_e_per_a2
        Electron dose of each frame in e/Å² (``> 0``, typically 0.5-2; a movie's total dose is
        typically 30-60 e/Å²).
    particles_per_field
        Particles per field of ``size`` pixels (default: about 30 % area coverage).
    defocus_angstrom
        Mean defocus in Å (underfocus > 0; typically 5,000-30,000).
    defocus_spread_angstrom
        Each movie's mean defocus is drawn uniformly within ``defocus_angstrom ± spread`` Å.
    astigmatism_angstrom
        Each movie's astigmatism ``|dU - dV|`` is drawn uniformly in ``[0, astigmatism]`` Å, at
        a uniform random angle.
    voltage_kv, cs_mm, amplitude_contrast
        Microscope optics (see :class:`cryoden.simulation.ctf.CtfParams`).
    envelope_b_factor
        CTF envelope B-factor in Å² (``>= 0``, typically 50-150): the partial coherence,
        specimen motion within frames not modelled and radiation damage that fade high
        resolution.
    ice, detector, drift
        :class:`~cryoden.simulation.ice.IceModel`,
        :class:`~cryoden.simulation.detector.DetectorModel`,
        :class:`~cryoden.simulation.drift.DriftModel`.
    seed
        Base seed (``>= 0``); movie ``i`` draws from streams derived from ``(seed, i)``.
    first_index
        Index of the first movie (a test set uses indices after the training set's).
    """

    structures: tuple[Path, ...] = ()
    phantom: str | None = "groel"
    n_movies: int = 4
    size: int = 512
    pixel_size_angstrom: float = 2.0
    n_frames: int = 30
    dose_per_frame_e_per_a2: float = 1.5
    particles_per_field: int | None = None
    defocus_angstrom: float = 15000.0
    defocus_spread_angstrom: float = 5000.0
    astigmatism_angstrom: float = 400.0
    voltage_kv: float = 300.0
    cs_mm: float = 2.7
    amplitude_contrast: float = 0.1
    envelope_b_factor: float = 60.0
    ice: IceModel = field(default_factory=IceModel)
    detector: DetectorModel = field(default_factory=DetectorModel)
    drift: DriftModel = field(default_factory=DriftModel)
    seed: int = 0
    first_index: int = 0

    def __post_init__(self) -> None:
        put = self._put
        put("structures", tuple(Path(os.fspath(s)) for s in self.structures))
        if not self.structures:
            if self.phantom is None:
                raise ParameterError("give structure files (structures) or a phantom (phantom)")
            if self.phantom not in PHANTOMS:
                known = ", ".join(sorted(PHANTOMS))
                raise ParameterError(f"unknown phantom {self.phantom!r}; known phantoms: {known}")
        put("n_movies", _integer("n_movies", self.n_movies, 1, 10**6))
        put("size", _integer("size", self.size, MIN_MOVIE_SIZE, 16384))
        put("n_frames", _integer("n_frames", self.n_frames, 2, MAX_FRAMES))
        put("seed", _integer("seed", self.seed, 0, 2**63 - 1))
        put("first_index", _integer("first_index", self.first_index, 0, 2**62))
        if self.particles_per_field is not None:
            put(
                "particles_per_field",
                _integer("particles_per_field", self.particles_per_field, 1, 10**5),
            )
        put(
            "pixel_size_angstrom", _number("pixel_size_angstrom", self.pixel_size_angstrom, above=0)
        )
        put(
            "dose_per_frame_e_per_a2",
            _number("dose_per_frame_e_per_a2", self.dose_per_frame_e_per_a2, above=0),
        )
        put(
            "defocus_spread_angstrom",
            _number("defocus_spread_angstrom", self.defocus_spread_angstrom, minimum=0),
        )
        put(
            "astigmatism_angstrom",
            _number("astigmatism_angstrom", self.astigmatism_angstrom, minimum=0),
        )
        put("envelope_b_factor", _number("envelope_b_factor", self.envelope_b_factor, minimum=0))
        put("defocus_angstrom", _number("defocus_angstrom", self.defocus_angstrom))
        low = self.defocus_angstrom - self.defocus_spread_angstrom - self.astigmatism_angstrom / 2
        if low <= 0:
            raise ParameterError(
                "defocus_angstrom must exceed defocus_spread_angstrom plus half of "
                f"astigmatism_angstrom (every movie underfocused), got {self.defocus_angstrom} "
                f"± {self.defocus_spread_angstrom} Å with {self.astigmatism_angstrom} Å astigmatism"
            )
        for name, kind in (("ice", IceModel), ("detector", DetectorModel), ("drift", DriftModel)):
            if not isinstance(getattr(self, name), kind):
                raise ParameterError(f"{name} must be a {kind.__name__}")
        self.ctf(self.defocus_angstrom, self.defocus_angstrom, 0.0)  # checks the optics

    def _put(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)

    @property
    def total_dose_e_per_a2(self) -> float:
        """Dose of the whole movie in e/Å²."""
        return self.n_frames * self.dose_per_frame_e_per_a2

    @property
    def max_defocus_angstrom(self) -> float:
        """The largest defocus any movie can have, in Å."""
        return self.defocus_angstrom + self.defocus_spread_angstrom + self.astigmatism_angstrom / 2

    def ctf(self, defocus_u: float, defocus_v: float, angle_deg: float) -> AstigmaticCtf:
        """The CTF of the config's optics at the given defoci (Å) and astigmatism angle."""
        return AstigmaticCtf(
            defocus_u_angstrom=defocus_u,
            defocus_v_angstrom=defocus_v,
            astigmatism_angle_deg=angle_deg,
            voltage_kv=self.voltage_kv,
            cs_mm=self.cs_mm,
            amplitude_contrast=self.amplitude_contrast,
            b_factor=self.envelope_b_factor,
        )

    def draw_ctf(self, rng: np.random.Generator) -> AstigmaticCtf:
        """One movie's CTF: mean defocus and astigmatism drawn uniformly (see the attributes)."""
        spread = self.defocus_spread_angstrom
        mean = self.defocus_angstrom + rng.uniform(-spread, spread)
        astig = rng.uniform(0.0, self.astigmatism_angstrom)
        angle = rng.uniform(0.0, 180.0)
        return self.ctf(mean + astig / 2, mean - astig / 2, angle)

    def replace(self, **changes: Any) -> MovieConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings (paths as strings, the models with their derived values)."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["structures"] = [str(s) for s in self.structures]
        data["ice"] = self.ice.to_dict()
        data["detector"] = self.detector.to_dict()
        data["drift"] = self.drift.to_dict()
        data["total_dose_e_per_a2"] = self.total_dose_e_per_a2
        return data


def _number(
    name: str, value: Any, *, minimum: float | None = None, above: float | None = None
) -> float:
    """``value`` as a finite float within the bounds (Any: the conversion is the check)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(v):
        raise ParameterError(f"{name} must be a finite number, got {value}")
    if minimum is not None and v < minimum:
        raise ParameterError(f"{name} must be >= {minimum:g}, got {value}")
    if above is not None and v <= above:
        raise ParameterError(f"{name} must be > {above:g}, got {value}")
    return v


def _integer(name: str, value: Any, minimum: int, maximum: int) -> int:
    """``value`` as an int in ``[minimum, maximum]`` (Any: the conversion is the check)."""
    try:
        ok = not isinstance(value, bool) and int(value) == value
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok or not minimum <= int(value) <= maximum:
        raise ParameterError(f"{name} must be an integer in [{minimum}, {maximum}], got {value!r}")
    return int(value)
