"""Projections of atomic models and maps: geometry, units, and map-vs-atoms agreement."""

from __future__ import annotations

import numpy as np
import pytest

from cryoden.errors import ParameterError
from cryoden.simulation import project_atoms as package_project_atoms
from cryoden.simulation import project_map as package_project_map
from cryoden.simulation.orientations import random_rotations, rotation_about_z
from cryoden.simulation.phantoms import groel_phantom
from cryoden.simulation.projection_atoms import AtomProjector, atoms_to_map, project_atoms
from cryoden.simulation.projection_maps import MapProjector, project_map
from cryoden.simulation.scattering import potential_form_factor
from cryoden.simulation.structures import Atoms


@pytest.fixture(scope="module")
def phantom():
    return groel_phantom()


def _lowpass_circle(image: np.ndarray) -> np.ndarray:
    """Keep frequencies inside the Nyquist circle (drop the square's corners)."""
    n = image.shape[0]
    spectrum = np.fft.rfft2(image)
    ky = np.fft.fftfreq(n)[:, None]
    kx = np.fft.rfftfreq(n)[None, :]
    spectrum[np.hypot(kx, ky) > 0.5] = 0
    return np.fft.irfft2(spectrum, s=image.shape)


def _cc(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def _rel_rms(a: np.ndarray, reference: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - reference) ** 2) / np.mean(reference**2)))


def test_map_projection_matches_atom_projection(phantom):
    """Tolerance: CC > 0.999 and relative RMS < 5 % as is; < 2 % inside the Nyquist circle.

    The map (V, from the same scattering factors) is band-limited to a cube of frequencies,
    the atoms' image to a square; after rotation the cube does not cover the square's corners,
    hence the larger difference without the circular low-pass. Views along a map axis are the
    Fourier-slice projector's worst case (about 1.3 %), general views about 0.6 %.
    """
    v = 4.0
    volume = atoms_to_map(phantom, voxel_size_angstrom=v, shape=64)
    projector = MapProjector(volume, v, size=64, pixel_size_angstrom=v)
    atoms_projector = AtomProjector(phantom, size=64, pixel_size_angstrom=v)
    side_view = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])
    rotations = [np.eye(3), side_view, *random_rotations(3, rng=np.random.default_rng(5))]
    for k, rotation in enumerate(rotations):
        from_map = projector.project(rotation)
        from_atoms = atoms_projector.project(rotation)
        assert _cc(from_map, from_atoms) > 0.999
        assert _rel_rms(from_map, from_atoms) < 0.05
        low_map, low_atoms = _lowpass_circle(from_map), _lowpass_circle(from_atoms)
        assert _rel_rms(low_map, low_atoms) < (0.02 if k < 2 else 0.01)


def test_map_integral_and_units(phantom):
    # the map is a potential in V: its integral (V·Å³) equals the image's (V·Å · Å²)
    v = 4.0
    volume = atoms_to_map(phantom, voxel_size_angstrom=v, shape=64)
    image = project_atoms(phantom, np.eye(3), size=64, pixel_size_angstrom=v, zero_background=False)
    assert volume.sum() * v**3 == pytest.approx(image.sum() * v**2, rel=1e-4)
    general = random_rotations(1, rng=np.random.default_rng(3))[0]
    projected = project_map(volume, v, general, size=64, pixel_size_angstrom=v)
    assert projected.sum() * v**2 == pytest.approx(volume.sum() * v**3, rel=5e-3)
    along_axis = project_map(volume, v, np.eye(3), size=64, pixel_size_angstrom=v)
    assert along_axis.sum() * v**2 == pytest.approx(volume.sum() * v**3, rel=2e-2)


def test_map_projection_resamples_to_pixel_size(phantom):
    # project at half the voxel size: same object, same integral, twice as many pixels across
    v = 4.0
    volume = atoms_to_map(phantom, voxel_size_angstrom=v, shape=64, b_factor=200.0)
    coarse = project_map(volume, v, np.eye(3), size=64, pixel_size_angstrom=v)
    fine = project_map(volume, v, np.eye(3), size=128, pixel_size_angstrom=v / 2)
    assert fine.sum() * (v / 2) ** 2 == pytest.approx(coarse.sum() * v**2, rel=1e-3)
    np.testing.assert_allclose(fine[::2, ::2], coarse, atol=0.02 * coarse.max())


def test_rotation_and_shift_geometry(phantom):
    # odd size: the centre pixel is fixed by 90 degree rotations of the array
    n, p = 65, 4.0
    base = project_atoms(phantom, np.eye(3), size=n, pixel_size_angstrom=p)
    turned = project_atoms(phantom, rotation_about_z(np.pi / 2), size=n, pixel_size_angstrom=p)
    # r' = R r turns x into y: image'[y', x'] = image[-x', y']
    np.testing.assert_allclose(turned, np.rot90(base, k=-1), atol=1e-3 * base.max())
    shifted = project_atoms(
        phantom, np.eye(3), size=n, pixel_size_angstrom=p, shift_angstrom=(2 * p, -3 * p)
    )
    np.testing.assert_allclose(shifted, np.roll(base, (-3, 2), axis=(0, 1)), atol=1e-3 * base.max())


def test_map_and_atoms_share_the_geometry(phantom):
    v = 4.0
    volume = atoms_to_map(phantom, voxel_size_angstrom=v, shape=64, b_factor=100.0)
    rotation = random_rotations(1, rng=np.random.default_rng(9))[0]
    shift = (6.0, -10.0)
    from_map = project_map(
        volume, v, rotation, size=64, pixel_size_angstrom=v, shift_angstrom=shift
    )
    from_atoms = project_atoms(
        phantom, rotation, size=64, pixel_size_angstrom=v, shift_angstrom=shift, b_factor=100.0
    )
    assert _cc(from_map, from_atoms) > 0.999


def test_background_is_exactly_zero(phantom):
    image = project_atoms(phantom, np.eye(3), size=96, pixel_size_angstrom=3.0)
    assert image.dtype == np.float32
    border = np.concatenate([image[:10].ravel(), image[-10:].ravel(), image[:, :10].ravel()])
    assert np.all(border == 0.0)
    assert image.max() > 0


def test_field_of_copies_is_the_sum_of_single_projections(phantom):
    projector = AtomProjector(phantom, size=128, pixel_size_angstrom=4.0, zero_background=False)
    rotations = random_rotations(2, rng=np.random.default_rng(1))
    shifts = np.array([[-120.0, 0.0], [120.0, 30.0]])
    field = projector.project_many(rotations, shifts)
    singles = sum(projector.project(r, shift_angstrom=s) for r, s in zip(rotations, shifts))
    np.testing.assert_allclose(field, singles, atol=1e-4 * field.max())


def _exact_band_limited(atoms: Atoms, size: int, pixel: float) -> np.ndarray:
    """Band-limited projection by a direct Fourier sum over atoms (no gridding), rotation I."""
    my = np.rint(np.fft.fftfreq(size) * size)[:, None]
    mx = np.arange(size // 2 + 1)[None, :]
    q = np.hypot(my, mx) / (size * pixel)
    centred = atoms.coords_angstrom - atoms.centroid()
    spectrum = np.zeros(q.shape, dtype=np.complex128)
    for element in np.unique(atoms.elements):
        xy = centred[atoms.elements == element]
        phase = np.exp(
            -2j * np.pi * (mx[..., None] * xy[:, 0] + my[..., None] * xy[:, 1]) / (size * pixel)
        ).sum(axis=-1)
        spectrum += phase * potential_form_factor(str(element), q)
    spectrum /= pixel**2
    spectrum[size // 2, :] = 0.0
    spectrum[:, size // 2] = 0.0
    return np.fft.fftshift(np.fft.irfft2(spectrum, s=(size, size)))


def test_gridding_matches_the_direct_fourier_sum():
    """The cubic B-spline gridding on the 2x grid is within 1 % RMS of the exact image."""
    rng = np.random.default_rng(4)
    atoms = Atoms(rng.normal(scale=12.0, size=(60, 3)), rng.choice(["C", "N", "O", "S"], 60))
    exact = _exact_band_limited(atoms, size=48, pixel=2.0)
    gridded = project_atoms(
        atoms, np.eye(3), size=48, pixel_size_angstrom=2.0, zero_background=False
    )
    assert _rel_rms(gridded, exact) < 0.01


def test_package_exports_the_projectors():
    assert package_project_atoms is project_atoms
    assert package_project_map is project_map


def test_invalid_parameters():
    atoms = Atoms(np.zeros((1, 3)), np.array(["C"]))
    with pytest.raises(ParameterError, match="pixel_size_angstrom must be a positive number"):
        project_atoms(atoms, np.eye(3), size=32, pixel_size_angstrom=0.0)
    with pytest.raises(ParameterError, match="proper rotation"):
        project_atoms(atoms, -np.eye(3), size=32, pixel_size_angstrom=1.0)
    with pytest.raises(ParameterError, match="cubic"):
        project_map(
            np.zeros((8, 8, 8)), (1.0, 1.0, 2.0), np.eye(3), size=8, pixel_size_angstrom=1.0
        )
    with pytest.raises(ParameterError, match="3D"):
        project_map(np.zeros((8, 8)), 1.0, np.eye(3), size=8, pixel_size_angstrom=1.0)
