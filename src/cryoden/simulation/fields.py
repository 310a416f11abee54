"""Random, non-overlapping particle positions for micrograph-like fields."""

from __future__ import annotations

import numpy as np

from cryoden.errors import ParameterError

#: Default fraction of the field's area covered by particle discs when no count is given.
DEFAULT_COVERAGE = 0.3


def place_particles(
    field_size_angstrom: float,
    radius_angstrom: float,
    *,
    rng: np.random.Generator,
    n_particles: int | None = None,
    coverage: float = DEFAULT_COVERAGE,
    max_attempts: int | None = None,
) -> np.ndarray:
    """Particle centres drawn uniformly at random, at least ``2 * radius`` apart (rejection).

    Centres lie at least ``radius`` from the field's edges, so no particle is cut.

    Parameters
    ----------
    field_size_angstrom
        Side of the square field in Å.
    radius_angstrom
        Particle radius in Å (the largest distance of its atoms from its centre).
    rng
        Random generator.
    n_particles
        Number of particles wanted; by default enough discs to cover ``coverage`` of the area.
    coverage
        Target area fraction when ``n_particles`` is None, in ``(0, 0.5]``.
    max_attempts
        Candidate draws before giving up (default ``200 * n``); fewer particles than wanted are
        returned when the field is full.

    Returns
    -------
    numpy.ndarray
        ``(k, 2)`` centres ``(x, y)`` in Å relative to the field centre, ``1 <= k <= n``.

    Raises
    ------
    ParameterError
        The field is too small to hold even one particle, or a parameter is out of range.
    """
    size = float(field_size_angstrom)
    radius = float(radius_angstrom)
    if not np.isfinite(size) or size <= 0 or not np.isfinite(radius) or radius <= 0:
        raise ParameterError(
            f"field size and particle radius must be positive, got {size} Å and {radius} Å"
        )
    if size < 2 * radius:
        raise ParameterError(
            f"field_size_angstrom ({size:.0f} Å) is smaller than one particle (diameter "
            f"2 * radius_angstrom = {2 * radius:.0f} Å)"
        )
    if n_particles is None:
        if not 0 < coverage <= 0.5:
            raise ParameterError(f"coverage must be in (0, 0.5], got {coverage}")
        n_particles = max(1, int(coverage * size * size / (np.pi * radius * radius)))
    if n_particles < 1:
        raise ParameterError(f"n_particles must be >= 1, got {n_particles}")
    attempts = 200 * n_particles if max_attempts is None else int(max_attempts)
    low, high = -size / 2 + radius, size / 2 - radius
    min_dist2 = (2 * radius) ** 2
    centres = np.empty((n_particles, 2))
    count = 0
    batch = 64
    drawn = 0
    while count < n_particles and drawn < attempts:
        candidates = rng.uniform(low, high, size=(batch, 2))
        drawn += batch
        for candidate in candidates:
            if count and (((centres[:count] - candidate) ** 2).sum(axis=1) < min_dist2).any():
                continue
            centres[count] = candidate
            count += 1
            if count == n_particles:
                break
    return centres[:count].copy()
