"""Orientations: rotation matrices drawn uniformly on SO(3), and quaternion conversions.

Convention: a rotation matrix ``R`` acts on column vectors of a structure's coordinates,
``r' = R (r - centre)``; the image is the projection of the rotated structure along ``z'``
(image rows are ``y'``, columns ``x'``). Quaternions are ``(w, x, y, z)`` with ``w >= 0``.
"""

from __future__ import annotations

import numpy as np

from cryoden.errors import ParameterError


def random_quaternions(n: int, *, rng: np.random.Generator) -> np.ndarray:
    """``n`` unit quaternions ``(w, x, y, z)`` uniform on SO(3) (Shoemake's method).

    Parameters
    ----------
    n
        Number of quaternions (``>= 0``).
    rng
        Random generator.

    Returns
    -------
    numpy.ndarray
        ``(n, 4)`` float64, ``w >= 0``.

    References
    ----------
    K. Shoemake, "Uniform random rotations", Graphics Gems III, 124-132 (1992).
    """
    if n < 0:
        raise ParameterError(f"the number of rotations must be >= 0, got {n}")
    u1, u2, u3 = rng.random((3, n))
    a = np.sqrt(1.0 - u1)
    b = np.sqrt(u1)
    q = np.stack(
        [
            a * np.sin(2 * np.pi * u2),
            a * np.cos(2 * np.pi * u2),
            b * np.sin(2 * np.pi * u3),
            b * np.cos(2 * np.pi * u3),
        ],
        axis=1,
    )
    # (x, y, z, w) -> (w, x, y, z), sign fixed so w >= 0 (q and -q are the same rotation)
    q = q[:, [3, 0, 1, 2]]
    q[q[:, 0] < 0] *= -1.0
    return q


def quaternions_to_matrices(quaternions: np.ndarray) -> np.ndarray:
    """Rotation matrices ``(..., 3, 3)`` of unit quaternions ``(..., 4)`` given as ``(w, x, y, z)``."""
    q = np.asarray(quaternions, dtype=np.float64)
    if q.shape[-1] != 4:
        raise ParameterError(f"quaternions must have a last axis of 4, got shape {q.shape}")
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
            np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
            np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
        ],
        axis=-2,
    )


def matrices_to_quaternions(matrices: np.ndarray) -> np.ndarray:
    """Unit quaternions ``(..., 4)`` as ``(w, x, y, z)``, ``w >= 0``, of rotation matrices."""
    m = np.asarray(matrices, dtype=np.float64)
    if m.shape[-2:] != (3, 3):
        raise ParameterError(f"rotation matrices must have shape (..., 3, 3), got {m.shape}")
    flat = m.reshape(-1, 3, 3)
    out = np.empty((flat.shape[0], 4))
    for i, r in enumerate(flat):
        # symmetric 4x4 matrix whose top eigenvector is the quaternion (Bar-Itzhack 2000):
        # robust for every rotation, including 180 degree ones
        k = (
            np.array(
                [
                    [
                        r[0, 0] - r[1, 1] - r[2, 2],
                        r[1, 0] + r[0, 1],
                        r[2, 0] + r[0, 2],
                        r[2, 1] - r[1, 2],
                    ],
                    [
                        r[1, 0] + r[0, 1],
                        r[1, 1] - r[0, 0] - r[2, 2],
                        r[2, 1] + r[1, 2],
                        r[0, 2] - r[2, 0],
                    ],
                    [
                        r[2, 0] + r[0, 2],
                        r[2, 1] + r[1, 2],
                        r[2, 2] - r[0, 0] - r[1, 1],
                        r[1, 0] - r[0, 1],
                    ],
                    [
                        r[2, 1] - r[1, 2],
                        r[0, 2] - r[2, 0],
                        r[1, 0] - r[0, 1],
                        r[0, 0] + r[1, 1] + r[2, 2],
                    ],
                ]
            )
            / 3.0
        )
        vals, vecs = np.linalg.eigh(k)
        x, y, z, w = vecs[:, np.argmax(vals)]
        q = np.array([w, x, y, z])
        out[i] = -q if q[0] < 0 else q
    return out.reshape(m.shape[:-2] + (4,))


def random_rotations(n: int, *, rng: np.random.Generator) -> np.ndarray:
    """``n`` rotation matrices drawn uniformly (Haar measure) on SO(3).

    Parameters
    ----------
    n
        Number of rotations (``>= 0``).
    rng
        Random generator.

    Returns
    -------
    numpy.ndarray
        ``(n, 3, 3)`` float64 proper rotation matrices.

    Examples
    --------
    >>> import numpy as np
    >>> r = random_rotations(2, rng=np.random.default_rng(0))
    >>> bool(np.allclose(r @ r.transpose(0, 2, 1), np.eye(3)))
    True
    """
    return quaternions_to_matrices(random_quaternions(n, rng=rng))


def check_rotation(rotation: np.ndarray, *, atol: float = 1e-6) -> np.ndarray:
    """Return ``rotation`` as a float64 ``(3, 3)`` array; ParameterError if it is not a rotation."""
    r = np.asarray(rotation, dtype=np.float64)
    if r.shape != (3, 3):
        raise ParameterError(f"a rotation must be a 3x3 matrix, got shape {r.shape}")
    if not np.allclose(r @ r.T, np.eye(3), atol=atol) or np.linalg.det(r) < 0:
        raise ParameterError("the rotation matrix is not a proper rotation (R R^T != I or det < 0)")
    return r


def rotation_about_z(angle_rad: float) -> np.ndarray:
    """Rotation by ``angle_rad`` about the z axis (counter-clockwise seen from +z)."""
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
