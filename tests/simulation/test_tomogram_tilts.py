"""Tilt-series geometry and weighted back-projection on tiny volumes."""

from __future__ import annotations

import numpy as np
import pytest

from cryoden.errors import ParameterError
from cryoden.simulation.tilt_series import (
    missing_wedge_mask,
    project_tilt_series,
    reconstruct_wbp,
    tilt_angles,
)


def test_tilt_angles_include_both_ends():
    angles = tilt_angles(-60, 60, 3)
    assert angles.size == 41
    assert angles[0] == -60 and angles[-1] == 60
    assert tilt_angles(-10, 10, 7).tolist() == [-10.0, -3.0, 4.0]


@pytest.mark.parametrize(
    ("low", "high", "step", "name"),
    [(-95, 60, 3, "tilt_min_deg"), (10, -10, 3, "tilt_max_deg"), (-60, 60, 0, "tilt_step_deg")],
)
def test_bad_tilt_angles_name_the_parameter(low, high, step, name):
    with pytest.raises(ParameterError, match=name):
        tilt_angles(low, high, step)


@pytest.mark.parametrize("shape", [(12, 5, 32), (11, 4, 31)])
def test_a_point_projects_to_x_cos_minus_z_sin(shape):
    n_z, n_y, n_x = shape
    x, z = 5, 3  # voxels from the centre voxel
    zz, xx = np.mgrid[0:n_z, 0:n_x] - np.array([n_z // 2 + z, n_x // 2 + x])[:, None, None]
    blob = np.exp(-(zz**2 + xx**2) / 2.0)  # a small Gaussian blob, sigma 1 voxel
    volume = np.zeros(shape, dtype=np.float32)
    volume[:, 2, :] = blob / blob.sum()
    angles = np.array([-45.0, 0.0, 30.0])
    tilts = project_tilt_series(volume, angles)
    assert tilts.shape == (3, n_y, n_x)
    for k, theta in enumerate(np.radians(angles)):
        row = tilts[k, 2].astype(np.float64)
        centroid = (row * np.arange(n_x)).sum() / row.sum() - n_x // 2
        assert centroid == pytest.approx(x * np.cos(theta) - z * np.sin(theta), abs=0.15)
        assert row.sum() == pytest.approx(1.0, rel=0.01)  # a line integral keeps the mass
    assert np.abs(tilts[:, [0, 1, 3]]).max() == 0.0  # other y slices see nothing


def _blobs(shape, rng):
    """Smooth random blobs in the middle of the slab (a tiny specimen)."""
    n_z, n_y, n_x = shape
    zz, yy, xx = np.mgrid[0:n_z, 0:n_y, 0:n_x].astype(np.float64)
    volume = np.zeros(shape)
    for _ in range(6):
        c = rng.uniform([n_z * 0.35, 0, 4], [n_z * 0.65, n_y, n_x - 4])
        volume += np.exp(-((zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2) / 6.0)
    return volume.astype(np.float32)


def test_noise_free_reconstruction_correlates_with_the_volume(rng):
    volume = _blobs((16, 6, 32), rng)
    angles = tilt_angles(-60, 60, 3)
    tomogram = reconstruct_wbp(project_tilt_series(volume, angles), angles, n_z=16)
    assert tomogram.shape == volume.shape and tomogram.dtype == np.float32
    assert np.corrcoef(tomogram.ravel(), volume.ravel())[0, 1] > 0.7
    # a full tilt range (no missing wedge) reconstructs better than +-60 degrees
    full = tilt_angles(-89, 89, 2)
    complete = reconstruct_wbp(project_tilt_series(volume, full), full, n_z=16)
    assert (
        np.corrcoef(complete.ravel(), volume.ravel())[0, 1]
        > np.corrcoef(tomogram.ravel(), volume.ravel())[0, 1]
    )


def test_the_missing_wedge_is_empty_in_fourier_space(rng):
    shape = (24, 4, 24)
    volume = rng.standard_normal(shape).astype(np.float32)  # white: power at every frequency
    angles = tilt_angles(-60, 60, 2)
    tomogram = reconstruct_wbp(project_tilt_series(volume, angles), angles, n_z=shape[0])
    power = np.abs(np.fft.fftn(tomogram.astype(np.float64))) ** 2
    wedge = missing_wedge_mask(shape, 60.0)
    # well inside the wedge (not on its edge) against well outside it
    core = missing_wedge_mask(shape, 75.0)
    outside = ~missing_wedge_mask(shape, 45.0)
    outside[0, :, 0] = False  # the k_x = k_z = 0 line
    assert wedge.sum() > 0 and core.sum() > 0
    assert power[core].mean() < 0.05 * power[outside].mean()
    # the input had power there: the wedge comes from the tilt range, not the data
    input_power = np.abs(np.fft.fftn(volume.astype(np.float64))) ** 2
    assert input_power[core].mean() > 0.5 * input_power[outside].mean()


def test_reconstruction_is_linear(rng):
    angles = tilt_angles(-30, 30, 10)
    a = rng.standard_normal((len(angles), 3, 16)).astype(np.float32)
    b = rng.standard_normal((len(angles), 3, 16)).astype(np.float32)
    left = reconstruct_wbp(a + 2 * b, angles, n_z=8)
    right = reconstruct_wbp(a, angles, n_z=8) + 2 * reconstruct_wbp(b, angles, n_z=8)
    np.testing.assert_allclose(left, right, atol=1e-4 * np.abs(right).max())


def test_reconstruct_checks_its_inputs():
    angles = tilt_angles(-30, 30, 10)
    with pytest.raises(ParameterError, match="tilts"):
        reconstruct_wbp(np.zeros((3, 4, 16)), angles, n_z=8)
    with pytest.raises(ParameterError, match="filter_name"):
        reconstruct_wbp(np.zeros((len(angles), 4, 16)), angles, n_z=8, filter_name="box")
    with pytest.raises(ParameterError, match="volume"):
        project_tilt_series(np.zeros((4, 4)), angles)
