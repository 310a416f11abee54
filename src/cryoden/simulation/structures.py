"""Atomic models: read PDB / mmCIF files (plain or gzipped) with gemmi into :class:`Atoms`."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np

from cryoden.errors import InputFileError, ParameterError
from cryoden.simulation.scattering import normalize_element

logger = logging.getLogger(__name__)

#: File name endings read as atomic models (``.gz`` allowed on each).
STRUCTURE_SUFFIXES: tuple[str, ...] = (".pdb", ".ent", ".cif", ".mmcif", ".pdbx")


@dataclass(frozen=True, eq=False)
class Atoms:
    """A set of atoms: coordinates, element symbols and (optionally) B-factors.

    Attributes
    ----------
    coords_angstrom
        ``(N, 3)`` float64 Cartesian coordinates ``(x, y, z)`` in Å.
    elements
        ``(N,)`` element symbols, canonical capitalisation (``"C"``, ``"Mg"``).
    b_factors
        ``(N,)`` isotropic B-factors in Å², or None when unknown. Projections use one global
        B-factor (see :mod:`cryoden.simulation.projection`); these are kept for reference.
    source
        Where the atoms came from (a path or a phantom name), for manifests and messages.
    """

    coords_angstrom: np.ndarray
    elements: np.ndarray
    b_factors: np.ndarray | None = None
    source: str = ""

    def __post_init__(self) -> None:
        coords = np.asarray(self.coords_angstrom, dtype=np.float64)
        elements = np.asarray(self.elements).astype(str)
        if coords.ndim != 2 or coords.shape[1] != 3:
            raise ParameterError(f"atom coordinates must have shape (N, 3), got {coords.shape}")
        if elements.shape != (coords.shape[0],):
            raise ParameterError(f"{coords.shape[0]} atoms but elements has shape {elements.shape}")
        if not np.all(np.isfinite(coords)):
            raise ParameterError("atom coordinates must be finite")
        object.__setattr__(self, "coords_angstrom", coords)
        object.__setattr__(self, "elements", elements)
        if self.b_factors is not None:
            b = np.asarray(self.b_factors, dtype=np.float64)
            if b.shape != (coords.shape[0],):
                raise ParameterError(f"{coords.shape[0]} atoms but b_factors has shape {b.shape}")
            object.__setattr__(self, "b_factors", b)

    def __len__(self) -> int:
        return int(self.coords_angstrom.shape[0])

    @property
    def n_atoms(self) -> int:
        """Number of atoms."""
        return len(self)

    def centroid(self) -> np.ndarray:
        """Unweighted mean of the coordinates, ``(3,)`` in Å (the default rotation centre)."""
        return self.coords_angstrom.mean(axis=0)

    def radius_angstrom(self, center: np.ndarray | None = None) -> float:
        """Largest distance (Å) of an atom from ``center`` (the centroid by default)."""
        c = self.centroid() if center is None else np.asarray(center, dtype=np.float64)
        return float(np.sqrt(((self.coords_angstrom - c) ** 2).sum(axis=1).max()))

    def element_counts(self) -> dict[str, int]:
        """Number of atoms of each element."""
        names, counts = np.unique(self.elements, return_counts=True)
        return {str(n): int(c) for n, c in zip(names, counts, strict=True)}


def is_structure_path(path: str | PathLike[str]) -> bool:
    """Whether ``path``'s name looks like a PDB or mmCIF file (``.gz`` allowed)."""
    name = Path(path).name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return name.endswith(STRUCTURE_SUFFIXES)


def read_atoms(
    path: str | PathLike[str],
    *,
    include_hetatm: bool = True,
    skip_waters: bool = True,
    skip_hydrogens: bool = True,
) -> Atoms:
    """Read the first model of a PDB or mmCIF file (plain or gzipped) with gemmi.

    Alternative conformations are reduced to the first one.

    Parameters
    ----------
    path
        ``.pdb``, ``.ent``, ``.cif`` or ``.mmcif`` file, optionally ``.gz``-compressed.
    include_hetatm
        Keep HETATM records (ligands, ions). Waters are controlled by ``skip_waters``.
    skip_waters
        Drop water molecules.
    skip_hydrogens
        Drop hydrogen (and deuterium) atoms.

    Returns
    -------
    Atoms
        Coordinates in Å, element symbols and B-factors.

    Raises
    ------
    InputFileError
        The file is missing, cannot be parsed, or holds no (selected) atoms.
    """
    import gemmi  # imported here: gemmi is only needed for atomic models

    p = Path(path)
    if not p.exists():
        raise InputFileError(p, "file not found")
    if not p.is_file():
        raise InputFileError(p, "not a file")
    try:
        structure = gemmi.read_structure(str(p))
    except Exception as exc:  # gemmi raises RuntimeError/ValueError/IOError with long texts
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputFileError(p, f"cannot read as a PDB or mmCIF model ({first_line})") from None
    if len(structure) == 0:
        raise InputFileError(p, "no atoms (no model in the file)")
    if len(structure) > 1:
        logger.info("%s: %d models; using the first", p, len(structure))
    structure.remove_alternative_conformations()

    coords: list[tuple[float, float, float]] = []
    elements: list[str] = []
    b_factors: list[float] = []
    for chain in structure[0]:
        for residue in chain:
            if skip_waters and residue.is_water():
                continue
            if not include_hetatm and residue.het_flag == "H":
                continue
            for atom in residue:
                if skip_hydrogens and atom.is_hydrogen():
                    continue
                pos = atom.pos
                coords.append((pos.x, pos.y, pos.z))
                elements.append(normalize_element(atom.element.name))
                b_factors.append(atom.b_iso)
    if not coords:
        raise InputFileError(p, "no atoms in the first model")
    logger.debug("%s: read %d atoms", p, len(coords))
    return Atoms(
        coords_angstrom=np.array(coords, dtype=np.float64),
        elements=np.array(elements),
        b_factors=np.array(b_factors, dtype=np.float64),
        source=str(p),
    )
