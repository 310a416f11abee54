"""The embedded GroEL-like phantom: dimensions, D7 symmetry, determinism."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from cryoden.errors import ParameterError
from cryoden.simulation.orientations import rotation_about_z
from cryoden.simulation.phantoms import PHANTOMS, get_phantom, groel_phantom
from cryoden.simulation.projection_atoms import project_atoms


@pytest.fixture(scope="module")
def phantom():
    return groel_phantom()


def test_size_and_composition(phantom):
    assert 50_000 <= len(phantom) <= 60_000
    counts = phantom.element_counts()
    assert set(counts) == {"C", "N", "O", "S"}
    assert counts["C"] / len(phantom) == pytest.approx(0.63, abs=0.02)
    assert phantom.centroid() == pytest.approx([0, 0, 0], abs=0.5)


def test_dimensions_match_groel(phantom):
    xyz = phantom.coords_angstrom
    radial = np.hypot(xyz[:, 0], xyz[:, 1])
    height = xyz[:, 2].max() - xyz[:, 2].min()
    width = 2 * radial.max()
    channel = 2 * radial.min()
    assert height == pytest.approx(146, rel=0.10)
    assert width == pytest.approx(137, rel=0.10)
    assert channel == pytest.approx(45, rel=0.10)


def test_d7_symmetry(phantom):
    xyz = phantom.coords_angstrom
    tree = cKDTree(xyz)
    twofold = np.diag([1.0, -1.0, -1.0]) @ rotation_about_z(-np.pi / 14)
    twofold = rotation_about_z(np.pi / 14) @ twofold
    for op in (rotation_about_z(2 * np.pi / 7), twofold):
        moved = xyz @ op.T
        distance, index = tree.query(moved)
        assert distance.max() < 1e-6
        assert np.array_equal(phantom.elements[index], phantom.elements)
    # but not 14-fold or 6-fold: the symmetry is really D7
    distance, _ = tree.query(xyz @ rotation_about_z(2 * np.pi / 14).T)
    assert distance.max() > 1.0


def test_deterministic():
    a, b = groel_phantom(), groel_phantom()
    assert np.array_equal(a.coords_angstrom, b.coords_angstrom)
    assert np.array_equal(a.elements, b.elements)
    a.coords_angstrom[0] = 1e3  # a copy: the cached phantom is not modified
    assert not np.array_equal(a.coords_angstrom, groel_phantom().coords_angstrom)


def test_views_look_like_groel(phantom):
    # top view: seven-fold ring around an empty channel; side view: four stripes along the axis
    p = 3.0
    top = project_atoms(phantom, np.eye(3), size=64, pixel_size_angstrom=p)
    centre = top[30:34, 30:34]
    assert centre.max() < 0.02 * top.max()
    yy, xx = np.mgrid[0:64, 0:64] - 32
    ring = top[np.abs(np.hypot(xx, yy) * p - 45) < 2]
    assert ring.min() > 0.2 * top.max()
    side_view = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])  # axis z -> image rows
    side = project_atoms(phantom, side_view, size=64, pixel_size_angstrom=4.0, b_factor=300.0)
    profile = side.sum(axis=1) / side.sum(axis=1).max()
    bands = profile > 0.45
    n_stripes = int(bands[0]) + int(np.count_nonzero(bands[1:] & ~bands[:-1]))
    assert n_stripes == 4


def test_unknown_phantom_lists_known_ones():
    assert "groel" in PHANTOMS
    with pytest.raises(
        ParameterError, match="unknown phantom 'ribosome'; known phantoms: groel"
    ) as info:
        get_phantom("ribosome")
    assert "\n" not in str(info.value)
