"""Clean images of a source (poses, projection, CTF) and the simulated images with their pairs.

What the clean images hold: the projected Coulomb potential in V·Å (atomic models,
:mod:`cryoden.simulation.projection_atoms`) or the line integral of a map (map units × Å,
:mod:`cryoden.simulation.projection_maps`); with a CTF, that image filtered by the CTF
(:mod:`cryoden.simulation.ctf`, zero-padded 2x against wrap-around). No normalisation: SNR is a
variance ratio, so only relative scales matter. Single particles from atoms lie on an exactly
zero background (without CTF); maps keep their own background. For Poisson noise at a dose the
clean image is the expected electron count instead (see
:mod:`cryoden.simulation.noise_streams`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cryoden.noise import estimate_snr
from cryoden.simulation.config import SimulationConfig
from cryoden.simulation.ctf import apply_ctf
from cryoden.simulation.fields import place_particles
from cryoden.simulation.noise_streams import (
    STREAM_POSES,
    NoiseLevel,
    dose_reference,
    noisy_pair,
    stream,
)
from cryoden.simulation.orientations import (
    check_rotation,
    matrices_to_quaternions,
    random_rotations,
)
from cryoden.simulation.projection_atoms import AtomProjector
from cryoden.simulation.projection_maps import MapProjector
from cryoden.simulation.sources import Source

logger = logging.getLogger(__name__)

#: Voltage (kV) of the weak-phase contrast at a dose when no CTF is given.
DEFAULT_VOLTAGE_KV = 300.0


@dataclass(frozen=True, eq=False)
class ParticlePose:
    """Pose of one particle: rotation (``r' = R (r - centre)``) and in-plane position (Å)."""

    rotation: np.ndarray
    shift_angstrom: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary: rotation matrix, quaternion ``(w, x, y, z)`` and shift (Å)."""
        return {
            "rotation": np.round(self.rotation, 12).tolist(),
            "quaternion_wxyz": np.round(matrices_to_quaternions(self.rotation), 12).tolist(),
            "shift_angstrom": [float(s) for s in self.shift_angstrom],
        }


@dataclass(frozen=True, eq=False)
class SimulatedImage:
    """One simulated image and its noisy pairs.

    Attributes
    ----------
    index
        Image index (seeds derive from it).
    clean
        ``(size, size)`` float32 clean image.
    pairs
        Level value (SNR, or dose for dose levels) -> ``(a, b)`` float32 noisy images.
    levels
        The :class:`~cryoden.simulation.noise_streams.NoiseLevel` of each key of ``pairs``.
    measured_snr
        Level value -> ``(snr(a), snr(b))`` measured with :func:`cryoden.noise.estimate_snr`.
    poses
        One :class:`ParticlePose` per particle (one for single-particle images).
    """

    index: int
    clean: np.ndarray
    pairs: dict[float, tuple[np.ndarray, np.ndarray]]
    levels: dict[float, NoiseLevel]
    measured_snr: dict[float, tuple[float, float]]
    poses: list[ParticlePose] = field(default_factory=list)


class Simulator:
    """Clean images of one source at the config's image size, pixel size, CTF and geometry."""

    def __init__(self, source: Source, config: SimulationConfig) -> None:
        self.source = source
        self.config = config
        size, p = config.size, config.pixel_size_angstrom
        self._stamp_size = size
        if config.field and source.volume is not None:
            stamp = int(np.ceil(2 * source.radius_angstrom / p)) + 16
            self._stamp_size = min(size, stamp + stamp % 2)
        if source.atoms is not None:
            self._projector: AtomProjector | MapProjector = AtomProjector(
                source.atoms, size=size, pixel_size_angstrom=p, b_factor=config.b_factor_a2
            )
        else:
            assert source.volume is not None and source.voxel_size_angstrom is not None
            self._projector = MapProjector(
                source.volume,
                source.voxel_size_angstrom,
                size=self._stamp_size,
                pixel_size_angstrom=p,
            )

    def poses(self, index: int, rotation: np.ndarray | None) -> list[ParticlePose]:
        """Poses of image ``index``, drawn from its pose stream (``rotation`` if given)."""
        config = self.config
        rng = stream(config.seed, index, STREAM_POSES)
        if config.field:
            centres = place_particles(
                config.size * config.pixel_size_angstrom,
                self.source.radius_angstrom,
                rng=rng,
                n_particles=config.particles_per_field,
            )
            rotations = random_rotations(len(centres), rng=rng)
            return [ParticlePose(r, c) for r, c in zip(rotations, centres, strict=True)]
        drawn = random_rotations(1, rng=rng)[0]
        rot = drawn if rotation is None else check_rotation(rotation)
        shift = np.zeros(2)
        if config.max_shift_angstrom > 0:
            shift = rng.uniform(-config.max_shift_angstrom, config.max_shift_angstrom, size=2)
        return [ParticlePose(rot, shift)]

    def project(self, poses: Sequence[ParticlePose]) -> np.ndarray:
        """The clean image of particles at ``poses`` (CTF-filtered if the config has a CTF)."""
        projector = self._projector
        if isinstance(projector, AtomProjector):
            rotations = np.stack([p.rotation for p in poses])
            shifts = np.stack([p.shift_angstrom for p in poses])
            image = projector.project_many(rotations, shifts)
        elif not self.config.field:
            image = projector.project(poses[0].rotation, shift_angstrom=poses[0].shift_angstrom)
        else:
            image = self._map_field(projector, poses)
        if self.config.ctf is not None:
            image = apply_ctf(
                image,
                pixel_size_angstrom=self.config.pixel_size_angstrom,
                pad_factor=2.0,
                **self.config.ctf.to_dict(),
            )
        return image.astype(np.float32)

    def _map_field(self, projector: MapProjector, poses: Sequence[ParticlePose]) -> np.ndarray:
        """A field of map projections: each particle projected in a stamp, added in place."""
        n, box, p = self.config.size, self._stamp_size, self.config.pixel_size_angstrom
        image = np.zeros((n, n), dtype=np.float64)
        for pose in poses:
            centre = n // 2 + pose.shift_angstrom / p  # (x, y) in pixels
            whole = np.rint(centre).astype(int)
            stamp = projector.project(pose.rotation, shift_angstrom=(centre - whole) * p)
            x0, y0 = whole[0] - box // 2, whole[1] - box // 2
            ys, xs = slice(max(y0, 0), min(y0 + box, n)), slice(max(x0, 0), min(x0 + box, n))
            image[ys, xs] += stamp[ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0]
        return image.astype(np.float32)


def generate(simulator: Simulator, levels: Sequence[NoiseLevel]) -> Iterator[SimulatedImage]:
    """One :class:`SimulatedImage` per index of the simulator's config, in order."""
    config = simulator.config
    p = config.pixel_size_angstrom
    voltage = config.ctf.voltage_kv if config.ctf is not None else DEFAULT_VOLTAGE_KV
    warned = False
    for k in range(config.n_images):
        index = config.first_index + k
        given = None if config.rotations is None else config.rotations[k]
        poses = simulator.poses(index, given)
        clean = simulator.project(poses)
        pairs: dict[float, tuple[np.ndarray, np.ndarray]] = {}
        measured: dict[float, tuple[float, float]] = {}
        level_map: dict[float, NoiseLevel] = {}
        reference = clean
        for level in levels:
            noise_input = clean
            if level.dose_e_per_a2 is not None:
                noise_input, counts = dose_reference(clean, level.dose_e_per_a2, p, voltage)
                reference = counts.astype(np.float32)
                if not warned and np.abs(noise_input).max() > 0.5:
                    warned = True
                    logger.warning(
                        "weak-phase contrast reaches %.2f (> 0.5): the linear approximation "
                        "overestimates the contrast of this thick, solvent-free specimen",
                        float(np.abs(noise_input).max()),
                    )
            a, b = noisy_pair(
                noise_input,
                level,
                seed=config.seed,
                index=index,
                noise_model=config.noise_model,
                pixel_size_angstrom=p,
                shared=config.shared_noise,
            )
            pairs[level.value] = (a, b)
            measured[level.value] = (estimate_snr(reference, a), estimate_snr(reference, b))
            level_map[level.value] = level
        yield SimulatedImage(
            index=index,
            clean=reference,
            pairs=pairs,
            levels=level_map,
            measured_snr=measured,
            poses=poses,
        )
