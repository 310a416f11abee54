"""Random particles built procedurally: many shapes and symmetries, so a model trained on their
projections does not learn one protein.

Each particle is a cloud of pseudo-atoms (carbon) filling a union of ellipsoids, drawn from one
of four *families*:

- ``lobes``: one to four ellipsoidal lobes repeated around the ``z`` axis with cyclic symmetry
  ``C1``-``C8``, or doubled by a two-fold axis (dihedral ``D2``-``D8``): compact complexes;
- ``shell``: a hollow ellipsoidal shell studded with small bumps: capsid- and vesicle-like;
- ``filament``: lobes on a helix along ``z`` (random rise and twist), longer than most fields:
  fibrils, rods, microtubule-like tubes;
- ``blob``: three to twelve ellipsoids joined by a random walk, no symmetry: irregular
  particles and aggregates.

The pseudo-atoms sit at protein density (:data:`PROTEIN_ATOM_DENSITY_PER_A3`) up to a cap on
their number (``max_atoms``); a sparser cloud gets a larger B-factor (at least that of a Gaussian
of half the mean spacing), so its projection is smooth density, not a scatter of points. Project
them with :class:`~cryoden.simulation.projection_atoms.AtomProjector` using the particle's
``b_factor_a2``. Everything is drawn from the ``rng`` passed in, so a seed gives the same
particle on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cryoden.errors import ParameterError
from cryoden.simulation.orientations import random_rotations, rotation_about_z
from cryoden.simulation.phantoms import PROTEIN_ATOM_DENSITY_PER_A3
from cryoden.simulation.structures import Atoms

#: The particle families, in a fixed order.
FAMILIES: tuple[str, ...] = ("lobes", "shell", "filament", "blob")

#: Radius range (Å) each family draws from when none is given (log-uniform).
RADIUS_RANGE_ANGSTROM: dict[str, tuple[float, float]] = {
    "lobes": (25.0, 120.0),
    "shell": (60.0, 200.0),
    "filament": (20.0, 100.0),
    "blob": (25.0, 120.0),
}

#: Default cap on the pseudo-atoms of one particle (projection cost grows with it).
DEFAULT_MAX_ATOMS = 20_000


@dataclass(frozen=True)
class Ellipsoid:
    """An ellipsoid: centre (Å), semi-axes (Å) and the rotation of its axes."""

    center_angstrom: np.ndarray
    semi_axes_angstrom: np.ndarray
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))

    @property
    def volume_a3(self) -> float:
        """Volume in Å³."""
        return float(4.0 / 3.0 * np.pi * np.prod(self.semi_axes_angstrom))


@dataclass(frozen=True, eq=False)
class ProceduralParticle:
    """A random particle: its pseudo-atoms, the B-factor (Å²) to project it with, and what was
    drawn (family, radius, symmetry: JSON-ready, for manifests)."""

    atoms: Atoms
    b_factor_a2: float
    description: dict[str, Any]


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def _ball_points(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` points uniform in the unit ball."""
    direction = rng.standard_normal((n, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True) + 1e-12
    return direction * rng.random((n, 1)) ** (1.0 / 3.0)


def _fill(
    ellipsoids: list[Ellipsoid], density_per_a3: float, rng: np.random.Generator
) -> np.ndarray:
    """Points uniform inside each ellipsoid at ``density_per_a3`` (overlaps count twice)."""
    clouds = []
    for e in ellipsoids:
        n = int(rng.poisson(e.volume_a3 * density_per_a3))
        if n == 0:
            continue
        local = _ball_points(n, rng) * e.semi_axes_angstrom
        clouds.append(local @ e.rotation.T + e.center_angstrom)
    return np.concatenate(clouds) if clouds else np.zeros((0, 3))


def _random_ellipsoid(
    center: np.ndarray, low: float, high: float, rng: np.random.Generator
) -> Ellipsoid:
    axes = rng.uniform(low, high, size=3)
    return Ellipsoid(np.asarray(center, float), axes, random_rotations(1, rng=rng)[0])


def _symmetric_copies(subunit: list[Ellipsoid], order: int, dihedral: bool) -> list[Ellipsoid]:
    """``subunit`` repeated ``order`` times about ``z`` (and about the ``x`` two-fold axis when
    ``dihedral``)."""
    operators = [rotation_about_z(2.0 * np.pi * k / order) for k in range(order)]
    if dihedral:
        twofold = np.diag([1.0, -1.0, -1.0])
        operators += [twofold @ op for op in operators]
    return [
        Ellipsoid(op @ e.center_angstrom, e.semi_axes_angstrom, op @ e.rotation)
        for op in operators
        for e in subunit
    ]


def _lobes(radius: float, rng: np.random.Generator) -> tuple[list[Ellipsoid], dict[str, Any]]:
    order = int(rng.integers(1, 9))
    dihedral = order >= 2 and bool(rng.random() < 0.4)
    n_lobes = int(rng.integers(1, 5))
    subunit = []
    for _ in range(n_lobes):
        r = rng.uniform(0.15, 0.65) * radius if order > 1 else rng.uniform(0.0, 0.5) * radius
        phi = rng.uniform(-np.pi / order, np.pi / order)
        z = rng.uniform(0.1, 0.55) * radius if dihedral else rng.uniform(-0.5, 0.5) * radius
        centre = np.array([r * np.cos(phi), r * np.sin(phi), z])
        subunit.append(_random_ellipsoid(centre, 0.12 * radius, 0.4 * radius, rng))
    symmetry = f"{'D' if dihedral else 'C'}{order}"
    return _symmetric_copies(subunit, order, dihedral), {"symmetry": symmetry, "lobes": n_lobes}


def _shell_points(
    radius: float, rng: np.random.Generator, density: float
) -> tuple[np.ndarray, dict[str, Any]]:
    """A hollow ellipsoidal shell with bumps on its surface."""
    thickness = rng.uniform(0.1, 0.3) * radius
    aspect = rng.uniform(0.85, 1.15, size=3)
    inner, outer = radius - thickness, radius
    shell_volume = 4.0 / 3.0 * np.pi * (outer**3 - inner**3) * float(np.prod(aspect))
    n = int(rng.poisson(shell_volume * density))
    direction = rng.standard_normal((n, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True) + 1e-12
    r = (inner**3 + rng.random((n, 1)) * (outer**3 - inner**3)) ** (1.0 / 3.0)
    points = direction * r * aspect
    n_bumps = int(rng.integers(12, 61))
    normals = rng.standard_normal((n_bumps, 3))
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    bump_size = rng.uniform(0.05, 0.12) * radius
    bumps = [
        _random_ellipsoid(v * outer * aspect, 0.6 * bump_size, bump_size, rng) for v in normals
    ]
    points = np.concatenate([points, _fill(bumps, density, rng)])
    return points, {"thickness_angstrom": round(thickness, 2), "bumps": n_bumps}


def _filament(
    radius: float, length: float, rng: np.random.Generator
) -> tuple[list[Ellipsoid], dict[str, Any]]:
    rise = rng.uniform(4.0, 40.0)
    twist = rng.uniform(-np.pi, np.pi)
    helix_radius = rng.uniform(0.0, 0.6) * radius
    size = (0.2 * radius, max(0.25 * radius, 0.6 * rise))
    subunit = [_random_ellipsoid(np.zeros(3), *size, rng)]
    n = max(1, int(length / rise))
    ellipsoids = []
    for k in range(n):
        turn = rotation_about_z(k * twist)
        centre = turn @ np.array([helix_radius, 0.0, (k - (n - 1) / 2) * rise])
        ellipsoids += [
            Ellipsoid(centre + turn @ e.center_angstrom, e.semi_axes_angstrom, turn @ e.rotation)
            for e in subunit
        ]
    return ellipsoids, {
        "rise_angstrom": round(rise, 2),
        "twist_deg": round(float(np.degrees(twist)), 2),
        "length_angstrom": round(n * rise, 1),
    }


def _blob(radius: float, rng: np.random.Generator) -> tuple[list[Ellipsoid], dict[str, Any]]:
    n = int(rng.integers(3, 13))
    centre = np.zeros(3)
    ellipsoids = []
    for _ in range(n):
        ellipsoids.append(_random_ellipsoid(centre, 0.15 * radius, 0.45 * radius, rng))
        step = rng.standard_normal(3)
        centre = np.clip(centre + 0.35 * radius * step / np.linalg.norm(step), -radius, radius)
    return ellipsoids, {"ellipsoids": n}


def random_particle(
    family: str,
    *,
    rng: np.random.Generator,
    radius_angstrom: float | None = None,
    length_angstrom: float | None = None,
    max_atoms: int = DEFAULT_MAX_ATOMS,
    b_factor_a2: float | None = None,
) -> ProceduralParticle:
    """A random particle of ``family`` (one of :data:`FAMILIES`).

    Parameters
    ----------
    family
        ``"lobes"``, ``"shell"``, ``"filament"`` or ``"blob"``.
    rng
        The source of every random choice.
    radius_angstrom
        Overall radius in Å (a filament's cross-section radius); drawn log-uniformly from
        :data:`RADIUS_RANGE_ANGSTROM` when ``None``.
    length_angstrom
        A filament's length in Å (default: 8 radii, at least 400 Å); other families ignore it.
    max_atoms
        Cap on the pseudo-atoms: above it the density is lowered and the B-factor raised.
    b_factor_a2
        B-factor in Å² to project with (at least the smoothing the density needs); drawn from
        20-300 Å² when ``None``.

    Returns
    -------
    ProceduralParticle
        Atoms centred on their centroid, the B-factor and a description of the draw.

    Raises
    ------
    ParameterError
        For an unknown family or a non-positive size or atom cap.

    Examples
    --------
    >>> import numpy as np
    >>> particle = random_particle("lobes", rng=np.random.default_rng(0), max_atoms=2000)
    >>> 0 < len(particle.atoms) <= 2600 and particle.description["family"]
    'lobes'
    """
    if family not in FAMILIES:
        raise ParameterError(f"unknown particle family {family!r}; known: {', '.join(FAMILIES)}")
    if isinstance(max_atoms, bool) or not isinstance(max_atoms, int) or max_atoms < 1:
        raise ParameterError(f"max_atoms must be a positive integer, got {max_atoms!r}")
    radius = (
        _log_uniform(rng, *RADIUS_RANGE_ANGSTROM[family])
        if radius_angstrom is None
        else float(radius_angstrom)
    )
    if not np.isfinite(radius) or radius <= 0:
        raise ParameterError(f"radius_angstrom must be positive, got {radius_angstrom!r}")
    description: dict[str, Any] = {"family": family, "radius_angstrom": round(radius, 2)}
    if family == "shell":
        outer_volume = 4.0 / 3.0 * np.pi * radius**3
        density = min(PROTEIN_ATOM_DENSITY_PER_A3, 2.0 * max_atoms / outer_volume)
        points, extra = _shell_points(radius, rng, density)
    else:
        if family == "lobes":
            ellipsoids, extra = _lobes(radius, rng)
        elif family == "filament":
            length = length_angstrom if length_angstrom is not None else max(8 * radius, 400.0)
            ellipsoids, extra = _filament(radius, float(length), rng)
        else:
            ellipsoids, extra = _blob(radius, rng)
        volume = sum(e.volume_a3 for e in ellipsoids)
        density = min(PROTEIN_ATOM_DENSITY_PER_A3, max_atoms / max(volume, 1.0))
        points = _fill(ellipsoids, density, rng)
    if len(points) > max_atoms:  # overlaps and bumps can exceed the cap: keep a random subset
        points = points[rng.choice(len(points), size=max_atoms, replace=False)]
    if len(points) == 0:  # a tiny draw: one pseudo-atom at the centre
        points = np.zeros((1, 3))
    spacing = density ** (-1.0 / 3.0)
    smoothing = 8.0 * np.pi**2 * (0.5 * spacing) ** 2
    drawn = rng.uniform(20.0, 300.0) if b_factor_a2 is None else float(b_factor_a2)
    b_factor = float(max(drawn, smoothing))
    description |= extra | {"n_atoms": int(len(points)), "b_factor_a2": round(b_factor, 1)}
    points = points - points.mean(axis=0)
    atoms = Atoms(
        coords_angstrom=points,
        elements=np.full(len(points), "C"),
        source=f"procedural:{family}",
    )
    return ProceduralParticle(atoms=atoms, b_factor_a2=b_factor, description=description)
