"""Embedded phantoms: atomic models built procedurally, so simulation works with no input file.

``groel`` is a **phantom, not GroEL**: a D7 double ring of 14 identical subunits with GroEL's
overall dimensions (about 146 Å tall, 137 Å wide, a 45 Å central channel; Braig et al. 1994),
each subunit made of three lobes standing in for the equatorial, intermediate and apical
domains, filled with atoms at protein density (one non-hydrogen atom per 17.3 Å³, i.e.
1.35 g/cm³) and a protein-like composition (C 63 %, N 17 %, O 19.5 %, S 0.5 % by count). Its
projections look like GroEL's at low resolution (side views: four stripes; top views: a
seven-fold ring around a channel), but it has no secondary structure, residues or sequence;
use a real atomic model (e.g. PDB 1AON) for anything that needs them. It is deterministic:
built from a fixed internal seed, the same on every machine.

References
----------
K. Braig, Z. Otwinowski, R. Hegde, D. C. Boisvert, A. Joachimiak, A. L. Horwich, P. B. Sigler,
"The crystal structure of the bacterial chaperonin GroEL at 2.8 Å", Nature 371, 578-586 (1994).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cryoden.errors import ParameterError
from cryoden.simulation.structures import Atoms

#: Number density of non-hydrogen atoms in protein (1/Å³): 1.35 g/cm³ at ~14 Da per heavy atom
#: (hydrogens included in the mass).
PROTEIN_ATOM_DENSITY_PER_A3 = 1.0 / 17.3

#: Composition by atom count of a typical protein's non-hydrogen atoms.
PROTEIN_COMPOSITION: dict[str, float] = {"C": 0.63, "N": 0.17, "O": 0.195, "S": 0.005}

_SEED = 20_240_611  # fixed: the phantom is part of the package, not a random draw


@dataclass(frozen=True)
class _Lobe:
    """A rounded block in cylindrical coordinates ``(r, phi, z)`` (Å, rad, Å).

    A point is inside when ``|dr/hr|**e + |dphi/hphi|**e + |dz/hz|**e <= 1``.
    """

    r: float
    half_r: float
    phi: float
    half_phi: float
    z: float
    half_z: float
    exponent: float = 4.0

    def contains(self, r: np.ndarray, phi: np.ndarray, z: np.ndarray) -> np.ndarray:
        e = self.exponent
        dphi = np.angle(np.exp(1j * (phi - self.phi)))
        return (
            np.abs((r - self.r) / self.half_r) ** e
            + np.abs(dphi / self.half_phi) ** e
            + np.abs((z - self.z) / self.half_z) ** e
        ) <= 1.0


# One GroEL-like subunit of the upper ring (z > 0), centred at azimuth 0. Radii and heights in
# Å: equatorial r 25.5-68.5, z 3-37; intermediate (a thin slanted hinge) r 46-64, z 34-48;
# apical r 22.5-62.5 (it lines the 45 Å channel), z 46-73, turned by ~11 degrees.
_GROEL_LOBES: tuple[_Lobe, ...] = (
    _Lobe(r=47.0, half_r=21.5, phi=0.0, half_phi=0.42, z=20.0, half_z=17.0, exponent=3.0),
    _Lobe(r=55.0, half_r=9.0, phi=0.10, half_phi=0.20, z=41.0, half_z=7.0),
    _Lobe(r=42.5, half_r=20.0, phi=0.20, half_phi=0.34, z=59.5, half_z=13.5),
)
_GROEL_SUBUNITS_PER_RING = 7
# The ring-to-ring two-fold axes lie in the equatorial plane at azimuth pi/14 (+ k pi/7), so a
# subunit of one ring faces the gap between two subunits of the other (staggered rings).
_GROEL_TWOFOLD_AZIMUTH = np.pi / 14.0


def _subunit(lobes: tuple[_Lobe, ...], rng: np.random.Generator) -> np.ndarray:
    """Atom positions filling the union of ``lobes`` on a jittered cubic lattice."""
    spacing = PROTEIN_ATOM_DENSITY_PER_A3 ** (-1.0 / 3.0)
    r_max = max(lobe.r + lobe.half_r for lobe in lobes)
    z_max = max(lobe.z + lobe.half_z for lobe in lobes)
    z_min = min(lobe.z - lobe.half_z for lobe in lobes)
    xs = np.arange(-r_max, r_max + spacing, spacing)
    zs = np.arange(z_min, z_max + spacing, spacing)
    grid = np.stack(np.meshgrid(xs, xs, zs, indexing="ij"), axis=-1).reshape(-1, 3)
    # a uniform jitter over the whole lattice cell (stratified sampling): homogeneous density
    # with no lattice periodicity left (the jitter's transfer, sinc(k a), is 0 at every Bragg peak)
    grid = grid + rng.uniform(-0.5 * spacing, 0.5 * spacing, size=grid.shape)
    r = np.hypot(grid[:, 0], grid[:, 1])
    phi = np.arctan2(grid[:, 1], grid[:, 0])
    inside = np.zeros(len(grid), dtype=bool)
    for lobe in lobes:
        inside |= lobe.contains(r, phi, grid[:, 2])
    return grid[inside]


def _rotation_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _twofold(azimuth: float) -> np.ndarray:
    """Rotation by pi about the in-plane axis ``(cos a, sin a, 0)``."""
    axis = np.array([np.cos(azimuth), np.sin(azimuth), 0.0])
    return 2.0 * np.outer(axis, axis) - np.eye(3)


@functools.lru_cache(maxsize=1)
def _groel_arrays() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.Generator(np.random.PCG64(_SEED))
    sub = _subunit(_GROEL_LOBES, rng)
    names = np.array(list(PROTEIN_COMPOSITION))
    cumulative = np.cumsum(list(PROTEIN_COMPOSITION.values()))
    cumulative[-1] = 1.0
    sub_elements = names[np.searchsorted(cumulative, rng.random(len(sub)), side="right")]
    ring = [sub @ _rotation_z(2 * np.pi * k / _GROEL_SUBUNITS_PER_RING).T for k in range(7)]
    upper = np.concatenate(ring)
    lower = upper @ _twofold(_GROEL_TWOFOLD_AZIMUTH).T
    coords = np.concatenate([upper, lower])
    elements = np.tile(sub_elements, 2 * _GROEL_SUBUNITS_PER_RING)
    coords.setflags(write=False)
    elements.setflags(write=False)
    return coords, elements


def groel_phantom() -> Atoms:
    """The GroEL-like phantom (a D7 double ring of 14 three-lobed subunits; not GroEL).

    The seven-fold axis is ``z``, the centre of the complex is the origin, and the two rings sit
    at ``z > 0`` and ``z < 0``. Deterministic (fixed internal seed).

    Returns
    -------
    Atoms
        About 55,000 C/N/O/S atoms, no B-factors, ``source = "phantom:groel"``.

    Examples
    --------
    >>> atoms = groel_phantom()
    >>> 50_000 < len(atoms) < 60_000
    True
    """
    coords, elements = _groel_arrays()
    return Atoms(coords_angstrom=coords.copy(), elements=elements.copy(), source="phantom:groel")


#: Known phantoms: name -> constructor.
PHANTOMS: dict[str, Callable[[], Atoms]] = {"groel": groel_phantom}


def get_phantom(name: str) -> Atoms:
    """The phantom called ``name``; ParameterError listing the known ones otherwise."""
    try:
        factory = PHANTOMS[name]
    except KeyError:
        raise ParameterError(
            f"unknown phantom {name!r}; known phantoms: {', '.join(sorted(PHANTOMS))}"
        ) from None
    return factory()
