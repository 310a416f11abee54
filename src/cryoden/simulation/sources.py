"""What the images are projected from: an embedded phantom, a PDB/mmCIF model or an MRC map.

:func:`load_source` reads the file (or builds the phantom) once and describes it for the
manifest (its kind, the file's SHA-256, its atom count or map shape), with the particle radius
used to place particles in fields and to warn when a particle does not fit in the image.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cryoden.errors import InputFileError, ParameterError
from cryoden.io import read_mrc
from cryoden.simulation.phantoms import get_phantom
from cryoden.simulation.structures import Atoms, is_structure_path, read_atoms

logger = logging.getLogger(__name__)

#: File name endings read as density maps.
MAP_SUFFIXES: tuple[str, ...] = (".mrc", ".map", ".mrc.gz", ".map.gz", ".ccp4")
#: A map's particle is the voxels above this fraction of the map's maximum.
MAP_THRESHOLD_FRACTION = 0.2


@dataclass(frozen=True, eq=False)
class Source:
    """Atoms or a map, its description for the manifest, and the particle radius (Å)."""

    description: dict[str, Any]
    radius_angstrom: float
    atoms: Atoms | None = None
    volume: np.ndarray | None = None
    voxel_size_angstrom: float | None = None


def is_map_path(path: Path) -> bool:
    """Whether ``path``'s name ends like a density map (:data:`MAP_SUFFIXES`)."""
    return path.name.lower().endswith(MAP_SUFFIXES)


def load_source(structure: str | os.PathLike[str] | None, phantom: str | None) -> Source:
    """Load an atomic model (PDB/mmCIF), a map (MRC) or, without ``structure``, the phantom."""
    if structure is None:
        if phantom is None:
            raise ParameterError("give a structure file (structure) or a phantom (phantom)")
        atoms = get_phantom(phantom)
        return Source(
            description={"kind": "phantom", "phantom": phantom, "n_atoms": len(atoms)},
            radius_angstrom=atoms.radius_angstrom(),
            atoms=atoms,
        )
    path = Path(structure)
    if not path.is_file():
        raise InputFileError(path, "file not found" if not path.exists() else "not a file")
    description: dict[str, Any] = {"path": str(path.resolve()), "sha256": _file_sha256(path)}
    if is_map_path(path):
        return _load_map(path, description)
    if not is_structure_path(path):
        logger.info("%s: unknown file type, trying to read it as an atomic model", path)
    atoms = read_atoms(path)
    description |= {"kind": "atoms", "n_atoms": len(atoms), "elements": atoms.element_counts()}
    return Source(description=description, radius_angstrom=atoms.radius_angstrom(), atoms=atoms)


def _load_map(path: Path, description: dict[str, Any]) -> Source:
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
    return Source(
        description=description,
        radius_angstrom=map_radius(volume, float(voxel[0])),
        volume=volume,
        voxel_size_angstrom=float(voxel[0]),
    )


def map_radius(volume: np.ndarray, voxel_size_angstrom: float) -> float:
    """Radius (Å) of a map's particle: the farthest voxel from the centre voxel ``shape // 2``
    above :data:`MAP_THRESHOLD_FRACTION` of the maximum (half the box without one)."""
    mask = volume > MAP_THRESHOLD_FRACTION * float(volume.max())
    if not mask.any():
        return 0.5 * max(volume.shape) * voxel_size_angstrom
    idx = np.argwhere(mask) - np.array(volume.shape) // 2
    return float(np.sqrt((idx**2).sum(axis=1).max()) * voxel_size_angstrom)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
