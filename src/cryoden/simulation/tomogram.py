"""A crowded specimen for tomography: copies of one or more structures in a slab of ice.

The volume is ``volume[z, y, x]`` (voxel ``shape // 2`` is the origin) of ``voxel_size``-Å
voxels. Particles get uniformly random orientations (:func:`random_rotations`) and random
centres in a slab of ice about ``z = 0`` (:func:`place_in_slab`): each particle lies entirely
inside the slab's thickness, laterally anywhere in the volume (particles at the edges are cut,
as in a real tomogram), and no two centres are closer than ``min_separation`` times the sum of
their radii (bounding spheres, so a fraction below 1 lets irregular shapes come close without
overlapping much).

Each particle is rendered in its own box (:class:`ParticleRenderer`) and added into the volume:

* an atomic model (or the embedded phantom) is rotated atom by atom and gridded with
  :func:`~cryoden.simulation.projection_atoms.atoms_to_map` (the Coulomb potential in V,
  band-limited to the volume's Nyquist frequency; no interpolation of a map is involved), with
  its centre at its exact sub-voxel position;
* a density map is low-passed to the volume's Nyquist frequency (when its voxels are finer),
  then rotated and resampled by cubic-spline interpolation (map units).

Every box is multiplied by a soft spherical mask (1 out to the particle's radius plus one
voxel, a raised-cosine edge to zero :data:`MARGIN_VOXELS` voxels beyond it), so the band
limit's ringing and a map's background stay near the particle. The ice itself is not part of
the volume: a laterally uniform slab projects to a constant in every tilt image, so the volume
holds the particles' potential alone (the contrast against vacuum, which overstates the
contrast against ice; only relative scales matter at an SNR).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.fft
import scipy.ndimage

from cryoden.errors import ParameterError
from cryoden.simulation.orientations import matrices_to_quaternions, random_rotations
from cryoden.simulation.projection_atoms import atoms_to_map
from cryoden.simulation.sources import Source
from cryoden.simulation.structures import Atoms

logger = logging.getLogger(__name__)

#: Voxels between a particle's radius and the edge of its rendering box (the soft mask's edge).
MARGIN_VOXELS = 3
#: Candidate positions drawn per particle before it is left out (the slab is full).
ATTEMPTS_PER_PARTICLE = 500


@dataclass(frozen=True, eq=False)
class PlacedParticle:
    """One particle of a tomogram: which source, its rotation and its centre.

    ``rotation`` acts as ``r' = R (r - c)`` about the source's centre ``c`` (its atoms'
    centroid, or a map's voxel ``shape // 2``); ``centre_angstrom`` is ``(x, y, z)`` in Å from
    the volume's voxel ``shape // 2``.
    """

    source_index: int
    rotation: np.ndarray
    centre_angstrom: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary for a manifest."""
        return {
            "source": int(self.source_index),
            "rotation": np.round(self.rotation, 12).tolist(),
            "quaternion_wxyz": np.round(matrices_to_quaternions(self.rotation), 12).tolist(),
            "centre_angstrom": [round(float(c), 6) for c in self.centre_angstrom],
        }


def _soft_sphere(box: int, centre_zyx: np.ndarray, inner: float, outer: float) -> np.ndarray:
    """1 within ``inner`` voxels of ``centre_zyx``, a raised cosine down to 0 at ``outer``."""
    axes = [np.arange(box, dtype=np.float64) - c for c in centre_zyx]
    r = np.sqrt(axes[0][:, None, None] ** 2 + axes[1][None, :, None] ** 2 + axes[2] ** 2)
    t = np.clip((r - inner) / max(outer - inner, 1e-6), 0.0, 1.0)
    return 0.5 * (1.0 + np.cos(np.pi * t))


def _lowpass_volume(volume: np.ndarray, cutoff_nyquist: float) -> np.ndarray:
    """``volume`` with every frequency above ``cutoff_nyquist`` (Nyquist units) removed."""
    spectrum = scipy.fft.rfftn(volume.astype(np.float64))
    kz = np.fft.fftfreq(volume.shape[0])[:, None, None]
    ky = np.fft.fftfreq(volume.shape[1])[None, :, None]
    kx = np.fft.rfftfreq(volume.shape[2])[None, None, :]
    radius = 2.0 * np.sqrt(kz**2 + ky**2 + kx**2)
    spectrum[radius > cutoff_nyquist] = 0.0
    return scipy.fft.irfftn(spectrum, s=volume.shape)


class ParticleRenderer:
    """Rotated copies of one source on a voxel grid, in a cubic box around the particle.

    Parameters
    ----------
    source
        The atomic model, phantom or map (:func:`~cryoden.simulation.sources.load_source`).
    voxel_size_angstrom
        The tomogram's voxel size in Å.
    b_factor
        Global B-factor in Å² of an atomic model (``>= 0``; unused for maps).
    """

    def __init__(self, source: Source, voxel_size_angstrom: float, *, b_factor: float = 0.0):
        v = float(voxel_size_angstrom)
        if not math.isfinite(v) or v <= 0:
            raise ParameterError(f"voxel_size_angstrom must be > 0 Å, got {voxel_size_angstrom}")
        self.source = source
        self.voxel_size_angstrom = v
        self.b_factor = float(b_factor)
        self.radius_voxels = float(source.radius_angstrom) / v
        half = int(math.ceil(self.radius_voxels)) + MARGIN_VOXELS
        #: Side of the rendering box in voxels (odd; the particle sits at voxel ``box // 2``).
        self.box = 2 * half + 1
        self._atoms: Atoms | None = None
        self._map: np.ndarray | None = None
        if source.atoms is not None:
            atoms = source.atoms
            self._atoms = Atoms(atoms.coords_angstrom - atoms.centroid(), atoms.elements)
        else:
            assert source.volume is not None and source.voxel_size_angstrom is not None
            volume = source.volume.astype(np.float64)
            if source.voxel_size_angstrom < v:  # anti-aliasing before the coarser sampling
                volume = _lowpass_volume(volume, source.voxel_size_angstrom / v)
            self._map = volume

    @property
    def radius_angstrom(self) -> float:
        """The particle's radius (Å), as the source gives it."""
        return float(self.source.radius_angstrom)

    def render(self, rotation: np.ndarray, offset_voxels: np.ndarray) -> np.ndarray:
        """The particle rotated by ``rotation`` with its centre at ``box // 2 + offset_voxels``.

        ``offset_voxels`` is ``(z, y, x)`` in voxels (a sub-voxel shift, ``|offset| <= 0.5``).
        Returns a ``(box, box, box)`` float32 array, softly masked (see the module notes).
        """
        r = np.asarray(rotation, dtype=np.float64)
        offset = np.asarray(offset_voxels, dtype=np.float64)
        v, box = self.voxel_size_angstrom, self.box
        if self._atoms is not None:
            rotated = Atoms(self._atoms.coords_angstrom @ r.T, self._atoms.elements)
            centre_xyz = -offset[::-1] * v  # the model point placed at voxel box // 2
            stamp = atoms_to_map(
                rotated,
                voxel_size_angstrom=v,
                shape=box,
                b_factor=self.b_factor,
                center_angstrom=centre_xyz,
            ).astype(np.float64)
        else:
            stamp = self._resample_map(r, offset)
        inner = self.radius_voxels + 1.0
        mask = _soft_sphere(box, box // 2 + offset, inner, inner + MARGIN_VOXELS - 1.0)
        return (stamp * mask).astype(np.float32)

    def _resample_map(self, rotation: np.ndarray, offset: np.ndarray) -> np.ndarray:
        """Cubic-spline resampling of the rotated map onto the box (array order ``z, y, x``).

        An output voxel ``o`` is ``d = (o - box // 2 - offset) * v`` from the particle centre;
        its point in the map's frame is ``R^T d``, at map voxel ``R^T d / v_map + shape // 2``.
        """
        assert self._map is not None and self.source.voxel_size_angstrom is not None
        flip = np.eye(3)[::-1]  # (x, y, z) <-> (z, y, x)
        scale = self.voxel_size_angstrom / self.source.voxel_size_angstrom
        matrix = scale * (flip @ rotation.T @ flip)
        centre_out = self.box // 2 + offset
        centre_in = np.array(self._map.shape, dtype=np.float64) // 2
        return scipy.ndimage.affine_transform(
            self._map,
            matrix,
            offset=centre_in - matrix @ centre_out,
            output_shape=(self.box,) * 3,
            order=3,
            mode="constant",
            cval=0.0,
        )


def slab_particle_count(
    shape_zyx: Sequence[int],
    voxel_size_angstrom: float,
    slab_thickness_angstrom: float,
    radius_angstrom: float,
    volume_fraction: float,
) -> int:
    """Particles whose bounding spheres fill ``volume_fraction`` of the slab (at least 1)."""
    if not 0.0 < volume_fraction <= 0.5:
        raise ParameterError(f"volume_fraction must be in (0, 0.5], got {volume_fraction}")
    _, n_y, n_x = (int(s) for s in shape_zyx)
    v = float(voxel_size_angstrom)
    slab = n_y * v * n_x * v * float(slab_thickness_angstrom)
    sphere = 4.0 / 3.0 * math.pi * float(radius_angstrom) ** 3
    return max(1, int(volume_fraction * slab / sphere))


def place_in_slab(
    radii_angstrom: Sequence[float] | np.ndarray,
    *,
    shape_zyx: Sequence[int],
    voxel_size_angstrom: float,
    slab_thickness_angstrom: float,
    rng: np.random.Generator,
    min_separation: float = 0.8,
) -> tuple[np.ndarray, np.ndarray]:
    """Random centres for particles of the given radii in a slab about ``z = 0`` (rejection).

    Laterally anywhere in the volume; along ``z`` so that each particle (a sphere of its
    radius) lies inside the slab; centres of particles ``i, j`` at least ``min_separation *
    (r_i + r_j)`` apart. A particle that finds no place in :data:`ATTEMPTS_PER_PARTICLE`
    draws is left out (the slab is full).

    Returns
    -------
    tuple of numpy.ndarray
        ``(k, 3)`` centres ``(x, y, z)`` in Å from the volume's centre voxel, and the ``(k,)``
        indices into ``radii_angstrom`` of the particles placed, in order.
    """
    radii = np.asarray(radii_angstrom, dtype=np.float64).reshape(-1)
    n_z, n_y, n_x = (int(s) for s in shape_zyx)
    v = float(voxel_size_angstrom)
    thickness = float(slab_thickness_angstrom)
    if not 0.0 < min_separation <= 2.0:
        raise ParameterError(f"min_separation must be in (0, 2], got {min_separation}")
    if thickness > n_z * v + 1e-9:
        raise ParameterError(
            f"slab_thickness_angstrom ({thickness:.0f} Å) exceeds the volume's thickness "
            f"({n_z} voxels of {v} Å = {n_z * v:.0f} Å)"
        )
    if radii.size and 2.0 * radii.max() > thickness:
        raise ParameterError(
            f"slab_thickness_angstrom ({thickness:.0f} Å) is thinner than a particle "
            f"(diameter {2.0 * radii.max():.0f} Å)"
        )
    # the volume's extent from its centre voxel: [-(n // 2), n - 1 - n // 2] voxels
    x_range = (-(n_x // 2) * v, (n_x - 1 - n_x // 2) * v)
    y_range = (-(n_y // 2) * v, (n_y - 1 - n_y // 2) * v)
    centres: list[np.ndarray] = []
    kept: list[int] = []
    for index, radius in enumerate(radii):
        z_half = thickness / 2.0 - radius
        for _ in range(ATTEMPTS_PER_PARTICLE):
            candidate = np.array(
                [rng.uniform(*x_range), rng.uniform(*y_range), rng.uniform(-z_half, z_half)]
            )
            if centres:
                placed = np.asarray(centres)
                distance = np.sqrt(((placed - candidate) ** 2).sum(axis=1))
                if (distance < min_separation * (radii[kept] + radius)).any():
                    continue
            centres.append(candidate)
            kept.append(index)
            break
    if len(kept) < radii.size:
        logger.info("slab full: placed %d of %d particles", len(kept), radii.size)
    return np.asarray(centres, dtype=np.float64).reshape(-1, 3), np.asarray(kept, dtype=np.int64)


def draw_particles(
    radii_angstrom: Sequence[float],
    n_particles: int,
    *,
    shape_zyx: Sequence[int],
    voxel_size_angstrom: float,
    slab_thickness_angstrom: float,
    rng: np.random.Generator,
    min_separation: float = 0.8,
) -> list[PlacedParticle]:
    """``n_particles`` (or fewer, when the slab is full) particles: for each, a source drawn
    uniformly among ``radii_angstrom``'s sources, a uniform rotation and a slab position."""
    if n_particles < 1:
        raise ParameterError(f"n_particles must be >= 1, got {n_particles}")
    sources = rng.integers(0, len(radii_angstrom), size=n_particles)
    rotations = random_rotations(n_particles, rng=rng)
    radii = np.asarray(radii_angstrom, dtype=np.float64)[sources]
    centres, kept = place_in_slab(
        radii,
        shape_zyx=shape_zyx,
        voxel_size_angstrom=voxel_size_angstrom,
        slab_thickness_angstrom=slab_thickness_angstrom,
        rng=rng,
        min_separation=min_separation,
    )
    return [
        PlacedParticle(int(sources[i]), rotations[i], centre)
        for i, centre in zip(kept, centres, strict=True)
    ]


def render_volume(
    renderers: Sequence[ParticleRenderer],
    particles: Sequence[PlacedParticle],
    shape_zyx: Sequence[int],
) -> np.ndarray:
    """The ``(Z, Y, X)`` float32 volume holding every particle (boxes cut at the edges)."""
    shape = tuple(int(s) for s in shape_zyx)
    volume = np.zeros(shape, dtype=np.float64)
    origin = np.array(shape) // 2
    for particle in particles:
        renderer = renderers[particle.source_index]
        position = origin + particle.centre_angstrom[::-1] / renderer.voxel_size_angstrom
        whole = np.rint(position).astype(int)
        stamp = renderer.render(particle.rotation, position - whole)
        start = whole - renderer.box // 2
        target, inside = [], []
        for axis in range(3):
            lo, hi = max(start[axis], 0), min(start[axis] + renderer.box, shape[axis])
            if lo >= hi:
                break
            target.append(slice(lo, hi))
            inside.append(slice(lo - start[axis], hi - start[axis]))
        else:
            volume[tuple(target)] += stamp[tuple(inside)]
    return volume.astype(np.float32)
