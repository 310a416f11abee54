"""Procedural particles: each family's shape, its symmetry, the atom cap, determinism."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from cryoden.errors import ParameterError
from cryoden.metrics import cross_correlation
from cryoden.simulation.procedural import FAMILIES, random_particle
from cryoden.simulation.projection_atoms import AtomProjector


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_is_capped_centred_and_seeded(family):
    first = random_particle(family, rng=np.random.default_rng(3), max_atoms=3000)
    again = random_particle(family, rng=np.random.default_rng(3), max_atoms=3000)
    other = random_particle(family, rng=np.random.default_rng(4), max_atoms=3000)
    assert 0 < len(first.atoms) <= 3000 and first.description["family"] == family
    np.testing.assert_array_equal(first.atoms.coords_angstrom, again.atoms.coords_angstrom)
    assert first.description != other.description
    assert np.allclose(first.atoms.centroid(), 0.0, atol=1e-6)
    assert first.b_factor_a2 > 0


def test_a_sparse_cloud_is_smoothed_more():
    dense = random_particle("blob", rng=np.random.default_rng(1), max_atoms=20000, b_factor_a2=1)
    sparse = random_particle("blob", rng=np.random.default_rng(1), max_atoms=500, b_factor_a2=1)
    assert sparse.b_factor_a2 > dense.b_factor_a2


def _seed_with(predicate):
    return next(
        s
        for s in range(200)
        if predicate(random_particle("lobes", rng=np.random.default_rng(s), max_atoms=500))
    )


def test_cyclic_lobes_look_the_same_turned_by_their_symmetry():
    seed = _seed_with(lambda p: p.description["symmetry"] in ("C3", "C4", "C5", "C6"))
    particle = random_particle("lobes", rng=np.random.default_rng(seed), max_atoms=20000)
    order = int(particle.description["symmetry"][1:])
    projector = AtomProjector(
        particle.atoms, size=96, pixel_size_angstrom=3.0, b_factor=particle.b_factor_a2,
        center_angstrom=np.zeros(3), zero_background=False,
    )  # fmt: skip
    image = projector.project(np.eye(3))  # down the symmetry axis
    turned = ndimage.rotate(image, 360.0 / order, reshape=False, order=1)
    half_turned = ndimage.rotate(image, 180.0 / order, reshape=False, order=1)
    assert cross_correlation(image, turned) > 0.9
    assert cross_correlation(image, turned) > cross_correlation(image, half_turned)


def test_a_shell_is_hollow_and_a_filament_is_long():
    shell = random_particle("shell", rng=np.random.default_rng(0), radius_angstrom=100.0)
    r = np.linalg.norm(shell.atoms.coords_angstrom, axis=1)
    assert np.percentile(r, 5) > 55.0 and np.percentile(r, 95) < 130.0
    rod = random_particle("filament", rng=np.random.default_rng(0), radius_angstrom=30.0,
                          length_angstrom=600.0)  # fmt: skip
    xyz = rod.atoms.coords_angstrom
    assert np.ptp(xyz[:, 2]) > 4 * max(np.ptp(xyz[:, 0]), np.ptp(xyz[:, 1]))


def test_bad_arguments_name_the_parameter():
    with pytest.raises(ParameterError, match="family"):
        random_particle("ribosome", rng=np.random.default_rng(0))
    with pytest.raises(ParameterError, match="max_atoms"):
        random_particle("blob", rng=np.random.default_rng(0), max_atoms=0)
    with pytest.raises(ParameterError, match="radius_angstrom"):
        random_particle("blob", rng=np.random.default_rng(0), radius_angstrom=-5.0)
