"""Simulated datasets: clean projections and pairs of independently noisy copies (Noise2Noise).

Layout written by :func:`simulate_dataset`::

    DIR/clean/NNNN.mrc            clean image (projected potential, CTF-filtered if asked)
    DIR/snr_<S>/a/NNNN.mrc        first noisy copy at SNR S (S from :func:`snr_dirname`)
    DIR/snr_<S>/b/NNNN.mrc        second, independent noisy copy
    DIR/manifest.json             every parameter, per-image seeds, poses and measured SNRs

With Poisson noise at a dose the level folders are ``dose_<D>`` instead of ``snr_<S>``.

What the images hold
--------------------
* The clean image is the projected Coulomb potential in V·Å (atomic models) or the line
  integral of a map (map units × Å), see :mod:`cryoden.simulation.projection`; with a CTF it is
  that image filtered by the CTF (:mod:`cryoden.simulation.ctf`, zero-padded 2x against
  wrap-around). No normalisation: SNR is a variance ratio, so only relative scales matter.
  Single particles from atoms lie on an exactly zero background (without CTF); maps keep their
  own background.
* Gaussian noise: white, zero mean, variance ``var(clean) / SNR`` (``var`` over the whole
  image, background included, as in the study), via :func:`cryoden.noise.add_noise`.
* Poisson noise at an SNR: :func:`cryoden.noise.add_poisson_noise_at_snr` (signal-dependent).
* Poisson noise at a dose (``dose_e_per_a2``): the clean image written is the expected electron
  count per pixel ``dose * p**2 * (1 - 2 sigma (CTF * V_z))`` (weak-phase approximation with
  the interaction constant ``sigma`` of the voltage; with no CTF an ideal in-focus phase plate,
  CTF = 1, is assumed), and the noisy images are Poisson counts drawn from it.

Randomness
----------
Image ``i`` of a run seeded with ``seed`` draws from streams derived from
``cryoden.noise.seeding.image_seed_sequence(seed, i)`` (the sequence behind
:func:`cryoden.noise.image_rng`): spawn key ``(i, 0)`` for its orientation(s) and position(s),
``(i, 1, kind, level)`` for noise ``a`` and ``(i, 2, kind, level)`` for noise ``b``, where
``level`` is the SNR (or dose) times 10^4 rounded. So an image does not depend on batching, on
the other images or on which other levels are simulated, ``a`` and ``b`` are independent, and a
test set is just other indices (``first_index``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cryoden import __version__
from cryoden.errors import InputFileError, ParameterError
from cryoden.io import atomic_output, read_mrc, write_mrc
from cryoden.noise import NOISE_MODELS, add_noise, estimate_snr, image_seed
from cryoden.noise.models import add_poisson_noise
from cryoden.noise.seeding import image_seed_sequence
from cryoden.simulation.ctf import CtfParams, apply_ctf, interaction_constant
from cryoden.simulation.fields import DEFAULT_COVERAGE, place_particles
from cryoden.simulation.orientations import (
    check_rotation,
    matrices_to_quaternions,
    random_rotations,
)
from cryoden.simulation.phantoms import get_phantom
from cryoden.simulation.projection import AtomProjector, MapProjector
from cryoden.simulation.structures import Atoms, is_structure_path, read_atoms

logger = logging.getLogger(__name__)

#: Smallest image side accepted, in pixels.
MIN_SIZE = 16
#: Noise models :func:`simulate_images` supports.
SUPPORTED_NOISE_MODELS: tuple[str, ...] = ("gaussian", "poisson")
#: File name endings read as density maps.
MAP_SUFFIXES: tuple[str, ...] = (".mrc", ".map", ".mrc.gz", ".map.gz", ".ccp4")

_STREAM_CLEAN, _STREAM_A, _STREAM_B = 0, 1, 2
_KIND_SNR, _KIND_DOSE = 0, 1


def snr_dirname(snr: float) -> str:
    """Folder name of an SNR level: ``snr_`` and the SNR with 4 decimals (``snr_0.1189``).

    Examples
    --------
    >>> snr_dirname(0.11888888888888888)
    'snr_0.1189'
    """
    return f"snr_{float(snr):.4f}"


def dose_dirname(dose_e_per_a2: float) -> str:
    """Folder name of a dose level: ``dose_`` and the dose in e/Å² with 4 decimals."""
    return f"dose_{float(dose_e_per_a2):.4f}"


@dataclass(frozen=True)
class NoiseLevel:
    """One noise level: an SNR (Gaussian or Poisson noise) or a dose (Poisson noise)."""

    name: str
    snr: float | None = None
    dose_e_per_a2: float | None = None

    @property
    def value(self) -> float:
        """The SNR, or the dose for dose levels."""
        return float(self.snr if self.snr is not None else self.dose_e_per_a2)  # type: ignore[arg-type]

    def _key(self) -> tuple[int, int]:
        kind = _KIND_SNR if self.snr is not None else _KIND_DOSE
        return kind, int(round(self.value * 1e4))

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary (for the manifest)."""
        return {"name": self.name, "snr": self.snr, "dose_e_per_a2": self.dose_e_per_a2}


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
        The :class:`NoiseLevel` of each key of ``pairs``.
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


def _stream(seed: int, index: int, *key: int) -> np.random.Generator:
    parent = image_seed_sequence(seed, index)
    child = np.random.SeedSequence(entropy=parent.entropy, spawn_key=(*parent.spawn_key, *key))
    return np.random.Generator(np.random.PCG64(child))


def _check_positive(option: str, value: float) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{option} must be a number, got {value!r}") from None
    if not np.isfinite(v) or v <= 0:
        raise ParameterError(f"{option} must be a positive number, got {value}")
    return v


def _noise_levels(
    noise_model: str, snr_levels: Sequence[float] | None, dose_e_per_a2: float | None
) -> list[NoiseLevel]:
    if noise_model not in SUPPORTED_NOISE_MODELS:
        known = ", ".join(SUPPORTED_NOISE_MODELS)
        extra = (
            " (poisson-gaussian is not supported by simulate)"
            if noise_model in NOISE_MODELS
            else ""
        )
        raise ParameterError(f"unknown --noise-model {noise_model!r}; known: {known}{extra}")
    snrs = list(snr_levels or [])
    if dose_e_per_a2 is not None:
        if noise_model != "poisson":
            raise ParameterError("a dose (--dose) needs --noise-model poisson")
        if snrs:
            raise ParameterError("give either SNR levels (--snr) or a dose (--dose), not both")
        dose = _check_positive("--dose", dose_e_per_a2)
        return [NoiseLevel(dose_dirname(dose), dose_e_per_a2=dose)]
    if not snrs:
        raise ParameterError("at least one SNR level is needed (--snr S[,S...] or --snr-sweep)")
    levels = [NoiseLevel(snr_dirname(s), snr=_check_positive("--snr", s)) for s in snrs]
    names = [lv.name for lv in levels]
    if len(set(names)) != len(names):
        raise ParameterError(f"SNR levels must differ at 4 decimals, got {', '.join(names)}")
    return levels


def _source_file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _is_map_path(path: Path) -> bool:
    return path.name.lower().endswith(MAP_SUFFIXES)


@dataclass
class _Source:
    """What the images are projected from: atoms or a map, and the particle radius (Å)."""

    description: dict[str, Any]
    radius_angstrom: float
    atoms: Atoms | None = None
    volume: np.ndarray | None = None
    voxel_size_angstrom: float | None = None


def load_source(structure: str | os.PathLike[str] | None, phantom: str | None) -> _Source:
    """Load an atomic model (PDB/mmCIF), a map (MRC) or the named phantom."""
    if structure is None:
        if phantom is None:
            raise ParameterError("give a structure file (--structure) or a phantom (--phantom)")
        atoms = get_phantom(phantom)
        return _Source(
            description={"kind": "phantom", "phantom": phantom, "n_atoms": len(atoms)},
            radius_angstrom=atoms.radius_angstrom(),
            atoms=atoms,
        )
    path = Path(structure)
    if not path.is_file():
        raise InputFileError(path, "file not found" if not path.exists() else "not a file")
    description: dict[str, Any] = {"path": str(path.resolve()), "sha256": _source_file_hash(path)}
    if _is_map_path(path):
        mrc = read_mrc(path)
        if mrc.data.ndim != 3 or min(mrc.data.shape) < 2:
            raise InputFileError(path, f"not a density map (shape {mrc.data.shape}); need a volume")
        voxel = np.array(mrc.voxel_size_angstrom, dtype=np.float64)
        if np.any(voxel <= 0):
            raise InputFileError(path, "the map header has no voxel size")
        if voxel.max() - voxel.min() > 1e-3 * voxel.max():
            raise InputFileError(path, f"non-cubic voxels {tuple(voxel)} Å are not supported")
        volume = mrc.data
        description |= {
            "kind": "map",
            "shape_zyx": list(volume.shape),
            "voxel_size_angstrom": float(voxel[0]),
        }
        return _Source(
            description=description,
            radius_angstrom=_map_radius(volume, float(voxel[0])),
            volume=volume,
            voxel_size_angstrom=float(voxel[0]),
        )
    if not is_structure_path(path):
        logger.info("%s: unknown file type, trying to read it as an atomic model", path)
    atoms = read_atoms(path)
    description |= {"kind": "atoms", "n_atoms": len(atoms), "elements": atoms.element_counts()}
    return _Source(description=description, radius_angstrom=atoms.radius_angstrom(), atoms=atoms)


def _map_radius(volume: np.ndarray, voxel_size_angstrom: float) -> float:
    """Radius (Å) of the map's particle: farthest voxel above 20 % of the maximum."""
    mask = volume > 0.2 * float(volume.max())
    if not mask.any():
        return 0.5 * max(volume.shape) * voxel_size_angstrom
    idx = np.argwhere(mask) - np.array(volume.shape) // 2
    return float(np.sqrt((idx**2).sum(axis=1).max()) * voxel_size_angstrom)


class _Simulator:
    """Clean images of one source at one size/pixel size, and their noisy copies."""

    def __init__(
        self,
        source: _Source,
        *,
        size: int,
        pixel_size_angstrom: float,
        ctf: CtfParams | None,
        field: bool,
        b_factor: float,
        particles_per_field: int | None,
        max_shift_angstrom: float,
    ) -> None:
        self.source = source
        self.size = size
        self.pixel_size_angstrom = pixel_size_angstrom
        self.ctf = ctf
        self.field = field
        self.particles_per_field = particles_per_field
        self.max_shift_angstrom = max_shift_angstrom
        self._stamp_size = size
        if field and source.volume is not None:
            stamp = int(np.ceil(2 * source.radius_angstrom / pixel_size_angstrom)) + 16
            self._stamp_size = min(size, stamp + stamp % 2)
        if source.atoms is not None:
            self._projector: AtomProjector | MapProjector = AtomProjector(
                source.atoms, size=size, pixel_size_angstrom=pixel_size_angstrom, b_factor=b_factor
            )
        else:
            assert source.volume is not None and source.voxel_size_angstrom is not None
            self._projector = MapProjector(
                source.volume,
                source.voxel_size_angstrom,
                size=self._stamp_size,
                pixel_size_angstrom=pixel_size_angstrom,
            )

    def poses(self, seed: int, index: int, rotation: np.ndarray | None) -> list[ParticlePose]:
        rng = _stream(seed, index, _STREAM_CLEAN)
        if self.field:
            centres = place_particles(
                self.size * self.pixel_size_angstrom,
                self.source.radius_angstrom,
                rng=rng,
                n_particles=self.particles_per_field,
            )
            rotations = random_rotations(len(centres), rng=rng)
            return [ParticlePose(r, c) for r, c in zip(rotations, centres, strict=True)]
        drawn = random_rotations(1, rng=rng)[0]
        rot = drawn if rotation is None else check_rotation(rotation)
        shift = np.zeros(2)
        if self.max_shift_angstrom > 0:
            shift = rng.uniform(-self.max_shift_angstrom, self.max_shift_angstrom, size=2)
        return [ParticlePose(rot, shift)]

    def project(self, poses: list[ParticlePose]) -> np.ndarray:
        projector = self._projector
        if isinstance(projector, AtomProjector):
            rotations = np.stack([p.rotation for p in poses])
            shifts = np.stack([p.shift_angstrom for p in poses])
            image = projector.project_many(rotations, shifts)
        elif not self.field:
            image = projector.project(poses[0].rotation, shift_angstrom=poses[0].shift_angstrom)
        else:
            image = self._map_field(projector, poses)
        if self.ctf is not None:
            image = apply_ctf(
                image,
                pixel_size_angstrom=self.pixel_size_angstrom,
                pad_factor=2.0,
                **self.ctf.to_dict(),
            )
        return image.astype(np.float32)

    def _map_field(self, projector: MapProjector, poses: list[ParticlePose]) -> np.ndarray:
        n, box, p = self.size, self._stamp_size, self.pixel_size_angstrom
        image = np.zeros((n, n), dtype=np.float64)
        for pose in poses:
            centre = n // 2 + pose.shift_angstrom / p  # (x, y) in pixels
            whole = np.rint(centre).astype(int)
            stamp = projector.project(pose.rotation, shift_angstrom=(centre - whole) * p)
            x0, y0 = whole[0] - box // 2, whole[1] - box // 2
            ys, xs = slice(max(y0, 0), min(y0 + box, n)), slice(max(x0, 0), min(x0 + box, n))
            image[ys, xs] += stamp[ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0]
        return image.astype(np.float32)


def _validate_common(
    n_images: int, size: int, pixel_size_angstrom: float, seed: int, first_index: int
) -> tuple[int, int, float]:
    if int(n_images) != n_images or n_images < 1:
        raise ParameterError(f"--n-images must be a positive integer, got {n_images}")
    if int(size) != size or size < MIN_SIZE:
        raise ParameterError(f"--size must be an integer >= {MIN_SIZE} pixels, got {size}")
    p = _check_positive("--pixel-size", pixel_size_angstrom)
    if int(seed) != seed or seed < 0:
        raise ParameterError(f"--seed must be a non-negative integer, got {seed}")
    if int(first_index) != first_index or first_index < 0:
        raise ParameterError(f"first_index must be a non-negative integer, got {first_index}")
    return int(n_images), int(size), p


def simulate_images(
    *,
    structure: str | os.PathLike[str] | None = None,
    phantom: str | None = "groel",
    n_images: int,
    size: int,
    pixel_size_angstrom: float,
    snr_levels: Sequence[float] | None = None,
    ctf: CtfParams | None = None,
    field: bool = False,
    seed: int = 0,
    noise_model: str = "gaussian",
    dose_e_per_a2: float | None = None,
    rotations: np.ndarray | None = None,
    max_shift_angstrom: float = 0.0,
    b_factor: float = 0.0,
    particles_per_field: int | None = None,
    first_index: int = 0,
    shared_noise: bool = False,
) -> Iterator[SimulatedImage]:
    """Simulate images in memory: clean images and pairs of noisy copies at each level.

    Parameters are those of :func:`simulate_dataset` (without the output folder), plus
    ``shared_noise``: if true, the noise of an image at every SNR level is drawn from the same
    random stream (common random numbers), so with Gaussian noise its ``a`` (and ``b``) copies
    at two SNRs differ only by the scale of one noise field. Differences between SNR levels
    then reflect the SNR, not the luck of the draw (the seed study uses this). Levels given as
    a dose keep their own streams. All parameters are checked before the first image is made;
    the returned iterator yields one :class:`SimulatedImage` per index
    ``first_index, ..., first_index + n_images - 1``.

    Returns
    -------
    Iterator[SimulatedImage]
        ``image.clean`` and ``image.pairs[snr] == (a, b)``.

    Examples
    --------
    >>> from cryoden.simulation import simulate_images
    >>> [img] = simulate_images(n_images=1, size=32, pixel_size_angstrom=8.0, snr_levels=[0.1])
    >>> a, b = img.pairs[0.1]
    >>> a.shape, a.dtype.name
    ((32, 32), 'float32')
    """
    simulator, levels, n_images, _, rotations = _prepare(
        structure=structure,
        phantom=phantom,
        n_images=n_images,
        size=size,
        pixel_size_angstrom=pixel_size_angstrom,
        snr_levels=snr_levels,
        ctf=ctf,
        field=field,
        seed=seed,
        noise_model=noise_model,
        dose_e_per_a2=dose_e_per_a2,
        rotations=rotations,
        max_shift_angstrom=max_shift_angstrom,
        b_factor=b_factor,
        particles_per_field=particles_per_field,
        first_index=first_index,
    )
    return _generate(
        simulator, levels, n_images, seed, noise_model, rotations, first_index, shared_noise
    )


def _prepare(
    *,
    structure: str | os.PathLike[str] | None,
    phantom: str | None,
    n_images: int,
    size: int,
    pixel_size_angstrom: float,
    snr_levels: Sequence[float] | None,
    ctf: CtfParams | None,
    field: bool,
    seed: int,
    noise_model: str,
    dose_e_per_a2: float | None,
    rotations: np.ndarray | None,
    max_shift_angstrom: float,
    b_factor: float,
    particles_per_field: int | None,
    first_index: int,
) -> tuple[_Simulator, list[NoiseLevel], int, _Source, np.ndarray | None]:
    n_images, size, p = _validate_common(n_images, size, pixel_size_angstrom, seed, first_index)
    levels = _noise_levels(noise_model, snr_levels, dose_e_per_a2)
    if ctf is not None and not isinstance(ctf, CtfParams):
        raise ParameterError(f"ctf must be a CtfParams or None, got {type(ctf).__name__}")
    if not np.isfinite(b_factor) or b_factor < 0:
        raise ParameterError(f"--b-factor must be >= 0 Å², got {b_factor}")
    if not np.isfinite(max_shift_angstrom) or max_shift_angstrom < 0:
        raise ParameterError(f"max_shift_angstrom must be >= 0, got {max_shift_angstrom}")
    if rotations is not None:
        if field:
            raise ParameterError("given rotations are for single-particle images, not --field")
        rotations = np.asarray(rotations, dtype=np.float64)
        if rotations.shape != (n_images, 3, 3):
            raise ParameterError(
                f"rotations must have shape ({n_images}, 3, 3), got {rotations.shape}"
            )
        for r in rotations:
            check_rotation(r)
    if particles_per_field is not None and (
        int(particles_per_field) != particles_per_field or particles_per_field < 1
    ):
        raise ParameterError(f"particles_per_field must be >= 1, got {particles_per_field}")
    source = load_source(structure, phantom)
    if dose_e_per_a2 is not None and source.atoms is None:
        raise ParameterError(
            "Poisson noise at a dose (--dose) needs an atomic model or phantom: a map's values "
            "have no known potential scale; use --snr with a map"
        )
    diameter = 2 * source.radius_angstrom
    if field and size * p < diameter:
        raise ParameterError(
            f"the field ({size * p:.0f} Å) is smaller than one particle (diameter "
            f"{diameter:.0f} Å); use a larger --size or --pixel-size"
        )
    if not field and size * p < diameter + 2 * max_shift_angstrom:
        logger.warning(
            "the particle (diameter %.0f Å) does not fit in the image (%.0f Å): its edges are cut",
            diameter,
            size * p,
        )
    simulator = _Simulator(
        source,
        size=size,
        pixel_size_angstrom=p,
        ctf=ctf,
        field=field,
        b_factor=b_factor,
        particles_per_field=particles_per_field,
        max_shift_angstrom=float(max_shift_angstrom),
    )
    return simulator, levels, n_images, source, rotations


def _noisy_pair(
    clean: np.ndarray,
    level: NoiseLevel,
    *,
    seed: int,
    index: int,
    noise_model: str,
    pixel_size_angstrom: float,
    shared: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Two independent noisy copies; with ``shared`` an SNR level's streams ignore its value."""
    key = (_KIND_SNR, 0) if shared and level.snr is not None else level._key()
    pair = []
    for stream in (_STREAM_A, _STREAM_B):
        rng = _stream(seed, index, stream, *key)
        if level.snr is not None:
            pair.append(add_noise(clean, model=noise_model, snr=level.snr, rng=rng))
        else:
            assert level.dose_e_per_a2 is not None
            pair.append(_dose_counts(clean, level.dose_e_per_a2, pixel_size_angstrom, rng=rng))
    return pair[0], pair[1]


def _dose_reference(
    potential: np.ndarray, dose_e_per_a2: float, pixel_size_angstrom: float, voltage_kv: float
) -> tuple[np.ndarray, np.ndarray]:
    """(contrast, expected counts) of a (CTF-filtered) projected potential in V·Å."""
    contrast = -2.0 * interaction_constant(voltage_kv) * potential.astype(np.float64)
    counts = dose_e_per_a2 * pixel_size_angstrom**2 * np.clip(1.0 + contrast, 0.0, None)
    return contrast, counts


def _dose_counts(
    contrast: np.ndarray, dose: float, pixel_size_angstrom: float, *, rng: np.random.Generator
) -> np.ndarray:
    return add_poisson_noise(contrast, dose, pixel_size_angstrom, rng=rng)


def _generate(
    simulator: _Simulator,
    levels: list[NoiseLevel],
    n_images: int,
    seed: int,
    noise_model: str,
    rotations: np.ndarray | None,
    first_index: int,
    shared_noise: bool = False,
) -> Iterator[SimulatedImage]:
    p = simulator.pixel_size_angstrom
    voltage = simulator.ctf.voltage_kv if simulator.ctf is not None else 300.0
    warned = False
    for k in range(n_images):
        index = first_index + k
        poses = simulator.poses(seed, index, None if rotations is None else rotations[k])
        clean = simulator.project(poses)
        pairs: dict[float, tuple[np.ndarray, np.ndarray]] = {}
        measured: dict[float, tuple[float, float]] = {}
        level_map: dict[float, NoiseLevel] = {}
        reference = clean
        for level in levels:
            noise_input = clean
            if level.dose_e_per_a2 is not None:
                noise_input, counts = _dose_reference(clean, level.dose_e_per_a2, p, voltage)
                reference = counts.astype(np.float32)
                if not warned and np.abs(noise_input).max() > 0.5:
                    warned = True
                    logger.warning(
                        "weak-phase contrast reaches %.2f (> 0.5): the linear approximation "
                        "overestimates the contrast of this thick, solvent-free specimen",
                        float(np.abs(noise_input).max()),
                    )
            a, b = _noisy_pair(
                noise_input,
                level,
                seed=seed,
                index=index,
                noise_model=noise_model,
                pixel_size_angstrom=p,
                shared=shared_noise,
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


def simulate_dataset(
    out_dir: str | os.PathLike[str],
    *,
    structure: str | os.PathLike[str] | None = None,
    phantom: str | None = "groel",
    n_images: int,
    size: int,
    pixel_size_angstrom: float,
    snr_levels: Sequence[float] | None = None,
    ctf: CtfParams | None = None,
    field: bool = False,
    seed: int = 0,
    noise_model: str = "gaussian",
    dose_e_per_a2: float | None = None,
    rotations: np.ndarray | None = None,
    max_shift_angstrom: float = 0.0,
    b_factor: float = 0.0,
    particles_per_field: int | None = None,
    first_index: int = 0,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Simulate a dataset on disk: clean images, noisy pairs per level, and a manifest.

    Parameters
    ----------
    out_dir
        Output folder (created if needed). See the module docstring for the layout.
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
        SNRs (variance ratio, each ``> 0``), e.g. :data:`cryoden.noise.STUDY_SNR_LEVELS`.
    ctf
        CTF applied to the clean image, or None.
    field
        Micrograph-like fields of many non-overlapping particles at random positions and
        orientations instead of one centred particle per image.
    seed
        Base seed (``>= 0``); image ``i`` uses streams derived from ``(seed, i)``.
    noise_model
        ``"gaussian"`` (at each SNR) or ``"poisson"`` (at each SNR, or at ``dose_e_per_a2``).
    dose_e_per_a2
        Electron dose in e/Å² for Poisson noise at a dose (instead of SNR levels).
    rotations
        ``(n_images, 3, 3)`` given orientations (single particles only); uniform random on
        SO(3) by default.
    max_shift_angstrom
        Single particles are shifted uniformly within ``[-max, max]`` Å on each axis.
    b_factor
        Global B-factor (Å²) of atomic models.
    particles_per_field
        Particles wanted per field (default: about 30 % area coverage).
    first_index
        Index of the first image (a test set uses indices after the training set's).
    overwrite
        Allow writing into a folder that already holds a ``manifest.json``.
    progress
        Called as ``progress(done, total)`` after each image.

    Returns
    -------
    dict
        The manifest (also written to ``out_dir/manifest.json``).

    Raises
    ------
    ParameterError
        Invalid parameter (non-positive pixel size, size < 16, n_images < 1, SNR <= 0, unknown
        phantom or noise model).
    InputFileError
        Unreadable structure or map file, or an existing dataset in ``out_dir``.
    """
    simulator, levels, n_images, source, rotations = _prepare(
        structure=structure,
        phantom=phantom,
        n_images=n_images,
        size=size,
        pixel_size_angstrom=pixel_size_angstrom,
        snr_levels=snr_levels,
        ctf=ctf,
        field=field,
        seed=seed,
        noise_model=noise_model,
        dose_e_per_a2=dose_e_per_a2,
        rotations=rotations,
        max_shift_angstrom=max_shift_angstrom,
        b_factor=b_factor,
        particles_per_field=particles_per_field,
        first_index=first_index,
    )
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputFileError(out, "exists and is not a folder")
    if (out / "manifest.json").exists() and not overwrite:
        raise InputFileError(out, "already holds a simulated dataset (manifest.json)")
    width = max(4, len(str(first_index + n_images - 1)))
    folders = [out / "clean"]
    for level in levels:
        folders += [out / level.name / "a", out / level.name / "b"]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)

    dose_mode = any(lv.dose_e_per_a2 is not None for lv in levels)
    manifest: dict[str, Any] = {
        "cryoden_version": __version__,
        "kind": "cryoden-simulated-dataset",
        "source": source.description,
        "parameters": {
            "n_images": n_images,
            "first_index": int(first_index),
            "size": size,
            "pixel_size_angstrom": simulator.pixel_size_angstrom,
            "snr_levels": [lv.snr for lv in levels if lv.snr is not None],
            "dose_e_per_a2": dose_e_per_a2,
            "noise_model": noise_model,
            "ctf": None if ctf is None else ctf.to_dict(),
            "field": bool(field),
            "particles_per_field": particles_per_field,
            "coverage": DEFAULT_COVERAGE if field and particles_per_field is None else None,
            "seed": int(seed),
            "given_rotations": rotations is not None,
            "max_shift_angstrom": float(max_shift_angstrom),
            "b_factor": float(b_factor),
        },
        "conventions": {
            "clean_units": (
                "expected electrons per pixel (weak-phase contrast at the dose)"
                if dose_mode
                else "projected potential in V*A (atoms) or map units * A (maps), no normalisation"
            ),
            "snr": "var(clean) / var(noisy - clean), over the whole image",
            "rotation": "r' = R (r - centre); image = projection along z', rows y', columns x'",
            "shift_angstrom": "(x, y) of the particle centre relative to pixel (size//2, size//2)",
            "ctf": "RELION/CTFFIND convention, defocus > 0 = underfocus, see cryoden.simulation.ctf",
            "seeds": "per image: numpy SeedSequence(seed, spawn_key=(index, stream, ...))",
        },
        "levels": [lv.to_dict() for lv in levels],
        "images": [],
    }
    images = _generate(simulator, levels, n_images, seed, noise_model, rotations, first_index)
    voxel = simulator.pixel_size_angstrom
    for done, image in enumerate(images, start=1):
        name = f"{image.index:0{width}d}.mrc"
        write_mrc(out / "clean" / name, image.clean, voxel_size_angstrom=voxel)
        record: dict[str, Any] = {
            "index": image.index,
            "seed": image_seed(int(seed), image.index),
            "clean": f"clean/{name}",
            "particles": [pose.to_dict() for pose in image.poses],
            "measured_snr": {},
        }
        for value, (a, b) in image.pairs.items():
            level = image.levels[value]
            write_mrc(out / level.name / "a" / name, a, voxel_size_angstrom=voxel)
            write_mrc(out / level.name / "b" / name, b, voxel_size_angstrom=voxel)
            snr_a, snr_b = image.measured_snr[value]
            record["measured_snr"][level.name] = {"a": snr_a, "b": snr_b}
        manifest["images"].append(record)
        if progress is not None:
            progress(done, n_images)
    with atomic_output(out / "manifest.json") as tmp:
        tmp.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    logger.info("wrote %d images x %d levels to %s", n_images, len(levels), out)
    return manifest
