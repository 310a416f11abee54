"""Uniform rotations on SO(3) and quaternion conversions."""

from __future__ import annotations

import numpy as np
import pytest

from cryoden.errors import ParameterError
from cryoden.simulation.orientations import (
    check_rotation,
    matrices_to_quaternions,
    quaternions_to_matrices,
    random_rotations,
    rotation_about_z,
)


def test_random_rotations_are_proper_rotations():
    r = random_rotations(50, rng=np.random.default_rng(0))
    assert r.shape == (50, 3, 3)
    np.testing.assert_allclose(
        r @ r.transpose(0, 2, 1), np.broadcast_to(np.eye(3), r.shape), atol=1e-12
    )
    np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=1e-12)


def test_random_rotations_are_uniform():
    # Haar measure: E[R] = 0; a rotated axis is uniform on the sphere (E[z] = 0, E[z^2] = 1/3);
    # the rotation angle has density (1 - cos t) / pi, so E[cos t] = -1/2.
    n = 20000
    r = random_rotations(n, rng=np.random.default_rng(1))
    tol = 4 / np.sqrt(n)
    assert np.abs(r.mean(axis=0)).max() < tol
    z = r[:, 2, 2]
    assert abs(z.mean()) < tol
    assert abs((z**2).mean() - 1 / 3) < tol
    cos_angle = (np.trace(r, axis1=1, axis2=2) - 1) / 2
    assert abs(cos_angle.mean() + 0.5) < tol


def test_quaternion_round_trip():
    r = random_rotations(20, rng=np.random.default_rng(2))
    q = matrices_to_quaternions(r)
    assert np.all(q[:, 0] >= 0)
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(quaternions_to_matrices(q), r, atol=1e-12)
    # a 180 degree rotation is handled too
    flip = np.diag([1.0, -1.0, -1.0])
    np.testing.assert_allclose(
        quaternions_to_matrices(matrices_to_quaternions(flip)), flip, atol=1e-12
    )


def test_check_rotation_rejects_non_rotations():
    check_rotation(rotation_about_z(0.3))
    with pytest.raises(ParameterError, match="proper rotation"):
        check_rotation(np.diag([1.0, 1.0, -1.0]))
    with pytest.raises(ParameterError, match="3x3"):
        check_rotation(np.eye(2))
