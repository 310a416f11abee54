"""Particle placement for micrograph-like fields."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import pdist

from cryoden.errors import ParameterError
from cryoden.simulation.fields import place_particles


def test_particles_do_not_overlap_and_stay_inside():
    radius, size = 20.0, 400.0
    centres = place_particles(size, radius, rng=np.random.default_rng(0))
    assert len(centres) > 10
    assert pdist(centres).min() >= 2 * radius
    assert np.abs(centres).max() <= size / 2 - radius


def test_requested_count_and_determinism():
    a = place_particles(300.0, 10.0, rng=np.random.default_rng(3), n_particles=12)
    b = place_particles(300.0, 10.0, rng=np.random.default_rng(3), n_particles=12)
    assert a.shape == (12, 2)
    assert np.array_equal(a, b)


def test_full_field_returns_fewer():
    centres = place_particles(100.0, 20.0, rng=np.random.default_rng(0), n_particles=50)
    assert 1 <= len(centres) < 50


def test_field_smaller_than_particle():
    with pytest.raises(ParameterError, match="smaller than one particle"):
        place_particles(30.0, 20.0, rng=np.random.default_rng(0))
