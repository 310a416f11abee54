"""Projected Coulomb potential of atomic models (and their 3D potential on a voxel grid).

Units and sampling
------------------
* :class:`AtomProjector` and :func:`project_atoms` give the **projected potential** (the
  electrostatic potential integrated along the beam) in **V·Å**, computed from the electron
  scattering factors of :mod:`cryoden.simulation.scattering` (Peng et al. 1996). Pixel values
  are samples of the projected potential *band-limited to the image's Nyquist frequency* (an
  ideal anti-aliasing filter: every spatial frequency up to Nyquist is kept, up to the gridding
  error below, and nothing above it; the Nyquist row/column of even sizes is set to 0). The sum
  of an image times ``pixel_size**2`` equals the total ``sum 47.8776 f_e(0)`` of its atoms in
  V·Å³. By default pixels far from every atom are then set to exactly 0, removing the band
  limit's ringing there (see ``zero_background`` in :class:`AtomProjector`).
* :func:`atoms_to_map` gives the 3D potential in **V** on a voxel grid, band-limited the same
  way; :func:`cryoden.simulation.projection_maps.project_map` of that map matches
  :func:`project_atoms` of the model.

Geometry
--------
A rotation ``R`` acts on coordinates about a centre ``c``: ``r' = R (r - c)``. The image is the
projection along ``z'``: ``image[row, col]`` is at ``y' = (row - size // 2) * pixel``,
``x' = (col - size // 2) * pixel`` (the centre is pixel ``size // 2`` on both axes). For a map
``volume[z, y, x]`` the centre is voxel ``shape // 2`` and the same ``R`` gives the same view.

Method
------
For each element, the rotated atoms are splatted with the cubic B-spline kernel onto a grid
twice as fine as the image (:mod:`cryoden.simulation.gridding`, one :func:`numpy.bincount`),
Fourier transformed, cropped to the image's frequencies, divided by the kernel's transfer
function ``sinc**4`` and multiplied by the element's form factor
``47.8776 f_e(q/2) exp(-B q**2/4)`` (projection-slice theorem); the elements are summed and one
inverse FFT gives the image. That is ``O(N_atoms + n_elements * FFT)`` per projection. The
remaining (gridding) error is the kernel's aliasing on the fine grid.

References
----------
.. [1] L.-M. Peng et al., Acta Cryst. A52, 257-276 (1996) (scattering factors).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import scipy.fft
import scipy.ndimage

from cryoden.errors import ParameterError
from cryoden.simulation.gridding import (
    OVERSAMPLE,
    WORKERS,
    bspline_splat,
    bspline_transfer,
    check_b_factor,
    check_positive,
    check_size,
    freq_indices,
)
from cryoden.simulation.orientations import check_rotation
from cryoden.simulation.scattering import (
    has_parameters,
    potential_form_factor,
    scattering_parameters,
)
from cryoden.simulation.structures import Atoms

logger = logging.getLogger(__name__)


def _element_groups(atoms: Atoms) -> tuple[list[str], np.ndarray]:
    """Unique elements (unknown ones warned about once) and each atom's group index."""
    names, inverse = np.unique(atoms.elements, return_inverse=True)
    unknown = [str(n) for n in names if not has_parameters(str(n))]
    if unknown:
        logger.warning(
            "no electron scattering factor for element(s) %s; using carbon's", ", ".join(unknown)
        )
    return [str(n) for n in names], inverse.reshape(-1)


class AtomProjector:
    """Projections of one atomic model at a fixed image size and pixel size.

    Precomputes the element groups and the Fourier-space filters once, so each projection
    costs one cubic B-spline splat, ``n_elements`` FFTs of the twice-finer grid and one inverse
    FFT.

    Parameters
    ----------
    atoms
        The atomic model.
    size
        Image side in pixels (square images; odd sizes allowed).
    pixel_size_angstrom
        Pixel size in Å.
    b_factor
        Global isotropic B-factor in Å² applied to every atom (``>= 0``; per-atom B-factors in
        ``atoms`` are not used).
    center_angstrom
        Rotation centre ``(x, y, z)`` in Å; the atoms' centroid by default.
    zero_background
        Set pixels farther than :attr:`support_margin_angstrom` from every atom to exactly 0
        (the study's empty background). Six standard deviations of the widest Gaussian term put
        the atoms' own potential there below ``exp(-18)`` of its peak; what the ideal band
        limit leaves there is Gibbs ringing from the sharp atoms, slowly decaying away from the
        particle. Ringing inside the support is kept. Set False for the pure band-limited image
        (e.g. to compare with :func:`~cryoden.simulation.projection_maps.project_map`).
    """

    def __init__(
        self,
        atoms: Atoms,
        *,
        size: int,
        pixel_size_angstrom: float,
        b_factor: float = 0.0,
        center_angstrom: Sequence[float] | np.ndarray | None = None,
        zero_background: bool = True,
    ) -> None:
        self.size = check_size(size)
        self.pixel_size_angstrom = check_positive("pixel_size_angstrom", pixel_size_angstrom)
        self.b_factor = check_b_factor(b_factor)
        if len(atoms) == 0:
            raise ParameterError("the atomic model has no atoms")
        center = atoms.centroid() if center_angstrom is None else np.asarray(center_angstrom)
        if center.shape != (3,):
            raise ParameterError(f"center_angstrom must have 3 values, got shape {center.shape}")
        self.center_angstrom = center.astype(np.float64)
        self.elements, groups = _element_groups(atoms)
        self.zero_background = bool(zero_background)
        # widest Gaussian of the elements present: exp(-4 pi^2 r^2 / b) = exp(-r^2 / (2 s^2))
        b_max = max(float(scattering_parameters(e)[1].max()) for e in self.elements)
        sigma_max = np.sqrt((b_max + self.b_factor) / (8 * np.pi**2))
        #: Distance (Å) from the nearest atom beyond which ``zero_background`` zeroes pixels:
        #: 6 standard deviations of the widest Gaussian term (and at least 3 pixels).
        self.support_margin_angstrom = float(max(6.0 * sigma_max, 3.0 * self.pixel_size_angstrom))
        order = np.argsort(groups, kind="stable")
        self._coords = np.ascontiguousarray(atoms.coords_angstrom[order] - self.center_angstrom)
        self._group_offset = groups[order].astype(np.int64) * (self._fine_size**2)

        n = self.size
        p = self.pixel_size_angstrom
        self._rows = freq_indices(n) % self._fine_size
        self._cols = np.arange(n // 2 + 1)
        my = freq_indices(n).astype(np.float64)
        mx = np.arange(n // 2 + 1, dtype=np.float64)
        q = np.sqrt(my[:, None] ** 2 + mx[None, :] ** 2) / (n * p)
        # the splat's transfer function at these frequencies, on the fine grid
        nf = self._fine_size
        window = bspline_transfer(my, nf)[:, None] * bspline_transfer(mx, nf)[None, :]
        filters = np.stack(
            [potential_form_factor(e, q, b_factor=self.b_factor) for e in self.elements]
        ) / (p**2 * window)
        if n % 2 == 0:  # Nyquist row and column: no Hermitian partner, set to 0
            filters[:, n // 2, :] = 0.0
            filters[:, :, n // 2] = 0.0
        self._filters = filters.astype(np.complex64)

    @property
    def _fine_size(self) -> int:
        return self.size * OVERSAMPLE

    @property
    def n_atoms(self) -> int:
        """Number of atoms per particle."""
        return int(self._coords.shape[0])

    def _splat(self, positions: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """B-spline splat of in-plane positions (Å, centre 0) -> ``(n_el, nf, nf)`` grid."""
        nf = self._fine_size
        half = 0.5 * self.size * self.pixel_size_angstrom
        inside = (np.abs(positions[:, 0]) < half) & (np.abs(positions[:, 1]) < half)
        if not inside.all():
            logger.debug("%d atoms fall outside the image and are left out", (~inside).sum())
            positions = positions[inside]
            offsets = offsets[inside]
        u = positions / (self.pixel_size_angstrom / OVERSAMPLE)
        n_el = len(self.elements)
        grid = bspline_splat(u, (nf, nf), offsets=offsets, n_bins=n_el * nf * nf)
        return grid.reshape(n_el, nf, nf).astype(np.float32)

    def _image_from_grid(self, grid: np.ndarray) -> np.ndarray:
        n = self.size
        spectrum = scipy.fft.rfft2(grid, workers=WORKERS)
        cropped = spectrum[:, self._rows[:, None], self._cols[None, :]]
        total = np.einsum("eij,eij->ij", cropped, self._filters)
        image = scipy.fft.irfft2(total, s=(n, n), workers=WORKERS)
        return np.fft.fftshift(image).astype(np.float32)

    def project(
        self,
        rotation: np.ndarray,
        *,
        shift_angstrom: Sequence[float] | np.ndarray = (0.0, 0.0),
    ) -> np.ndarray:
        """Projected potential (V·Å) of the model rotated by ``rotation``.

        Parameters
        ----------
        rotation
            ``(3, 3)`` rotation matrix (see :mod:`cryoden.simulation.orientations`).
        shift_angstrom
            In-plane shift ``(x, y)`` of the particle centre from the image centre, in Å.

        Returns
        -------
        numpy.ndarray
            ``(size, size)`` float32.
        """
        return self.project_many(
            np.asarray(rotation)[None], np.asarray(shift_angstrom, dtype=np.float64)[None]
        )

    def project_many(self, rotations: np.ndarray, shifts_angstrom: np.ndarray) -> np.ndarray:
        """Sum of the projections of several copies of the model in one image (a field).

        Parameters
        ----------
        rotations
            ``(k, 3, 3)`` rotation matrices, one per copy.
        shifts_angstrom
            ``(k, 2)`` in-plane positions ``(x, y)`` of the copies' centres relative to the
            image centre, in Å. Atoms falling outside the image are left out.

        Returns
        -------
        numpy.ndarray
            ``(size, size)`` float32 projected potential in V·Å.
        """
        rotations = np.asarray(rotations, dtype=np.float64)
        shifts = np.asarray(shifts_angstrom, dtype=np.float64).reshape(-1, 2)
        if rotations.ndim != 3 or rotations.shape[0] != shifts.shape[0]:
            raise ParameterError(
                f"need one shift per rotation, got rotations {rotations.shape} and shifts "
                f"{shifts.shape}"
            )
        positions = []
        for rotation, shift in zip(rotations, shifts, strict=True):
            r = check_rotation(rotation)
            positions.append(self._coords @ r[:2].T + shift)
        pos = np.concatenate(positions) if len(positions) > 1 else positions[0]
        offsets = np.tile(self._group_offset, len(positions))
        image = self._image_from_grid(self._splat(pos, offsets))
        if self.zero_background:
            image[~self._support(pos)] = 0.0
        return image

    def _support(self, positions: np.ndarray) -> np.ndarray:
        """Pixels within :attr:`support_margin_angstrom` of an atom's projected position."""
        n, p = self.size, self.pixel_size_angstrom
        pix = np.rint(positions / p).astype(np.int64) + n // 2  # (x, y) nearest pixel
        ok = np.all((pix >= 0) & (pix < n), axis=1)
        occupied = np.zeros(n * n, dtype=bool)
        occupied[pix[ok, 1] * n + pix[ok, 0]] = True
        distance = scipy.ndimage.distance_transform_edt(~occupied.reshape(n, n))
        # + half a pixel diagonal: an atom may sit anywhere within its nearest pixel
        return distance * p <= self.support_margin_angstrom + p / np.sqrt(2)


def project_atoms(
    atoms: Atoms,
    rotation: np.ndarray,
    *,
    size: int,
    pixel_size_angstrom: float,
    shift_angstrom: Sequence[float] | np.ndarray = (0.0, 0.0),
    b_factor: float = 0.0,
    center_angstrom: Sequence[float] | np.ndarray | None = None,
    zero_background: bool = True,
) -> np.ndarray:
    """Projected Coulomb potential (V·Å) of an atomic model along a direction.

    Convenience wrapper around :class:`AtomProjector`; use the class for many projections of
    the same model.

    Parameters
    ----------
    atoms
        The atomic model.
    rotation
        ``(3, 3)`` rotation matrix; the image is the projection along ``z'`` of
        ``R (r - centre)``.
    size
        Image side in pixels.
    pixel_size_angstrom
        Pixel size in Å.
    shift_angstrom
        In-plane shift ``(x, y)`` of the particle in Å.
    b_factor
        Global B-factor in Å².
    center_angstrom
        Rotation centre in Å (the centroid by default).
    zero_background
        Set pixels far from every atom to exactly 0 (see :class:`AtomProjector`).

    Returns
    -------
    numpy.ndarray
        ``(size, size)`` float32, band-limited samples of the projected potential in V·Å.

    Examples
    --------
    >>> import numpy as np
    >>> atoms = Atoms(np.zeros((1, 3)), np.array(["C"]))
    >>> img = project_atoms(atoms, np.eye(3), size=32, pixel_size_angstrom=1.0, zero_background=False)
    >>> round(float(img.sum()), 1)  # = 47.8776 * f_e(0) for carbon, in V·Å³ / Å²
    120.1
    """
    projector = AtomProjector(
        atoms,
        size=size,
        pixel_size_angstrom=pixel_size_angstrom,
        b_factor=b_factor,
        center_angstrom=center_angstrom,
        zero_background=zero_background,
    )
    return projector.project(rotation, shift_angstrom=shift_angstrom)


def _check_shape3(shape: Sequence[int] | int) -> tuple[int, int, int]:
    if isinstance(shape, int | np.integer):
        shape = (int(shape),) * 3
    values = tuple(int(s) for s in shape)
    if len(values) != 3 or min(values) < 1:
        raise ParameterError(f"a map shape must be 3 positive integers (Z, Y, X), got {values}")
    return values[0], values[1], values[2]


def atoms_to_map(
    atoms: Atoms,
    *,
    voxel_size_angstrom: float,
    shape: Sequence[int] | int,
    b_factor: float = 0.0,
    center_angstrom: Sequence[float] | np.ndarray | None = None,
) -> np.ndarray:
    """Coulomb potential (V) of an atomic model on a 3D grid, from the same scattering factors.

    Same method as the projections in 3D: per element, cubic B-spline splat on a grid twice as
    fine, FFT, crop to the map's frequencies, divide by the splat's ``sinc**4`` transfer,
    multiply by the form factor ``47.8776 f_e(q/2) exp(-B q**2/4)`` (V·Å³), sum and invert. Values are samples of the potential band-limited to the map's Nyquist.

    Parameters
    ----------
    atoms
        The atomic model.
    voxel_size_angstrom
        Voxel size in Å (isotropic).
    shape
        ``(Z, Y, X)`` map shape (or one int for a cube).
    b_factor
        Global B-factor in Å².
    center_angstrom
        Model point placed at voxel ``shape // 2`` (the centroid by default).

    Returns
    -------
    numpy.ndarray
        ``(Z, Y, X)`` float32 potential in V.
    """
    v = check_positive("voxel_size_angstrom", voxel_size_angstrom)
    shape3 = _check_shape3(shape)
    b = check_b_factor(b_factor)
    center = atoms.centroid() if center_angstrom is None else np.asarray(center_angstrom)
    elements, groups = _element_groups(atoms)
    coords = atoms.coords_angstrom - center  # (x, y, z)
    fine = tuple(s * OVERSAMPLE for s in shape3)  # (Z, Y, X)
    vf = v / OVERSAMPLE

    mz, my = freq_indices(shape3[0]), freq_indices(shape3[1])
    mx = np.arange(shape3[2] // 2 + 1)
    sel = np.ix_(mz % fine[0], my % fine[1], mx)
    kz = mz[:, None, None] / (shape3[0] * v)
    ky = my[None, :, None] / (shape3[1] * v)
    kx = mx[None, None, :] / (shape3[2] * v)
    q = np.sqrt(kz**2 + ky**2 + kx**2)
    window = (
        bspline_transfer(mz, fine[0])[:, None, None]
        * bspline_transfer(my, fine[1])[None, :, None]
        * bspline_transfer(mx, fine[2])[None, None, :]
    )
    total = np.zeros(q.shape, dtype=np.complex128)
    half = np.array([shape3[2], shape3[1], shape3[0]]) * v / 2.0
    for gi, element in enumerate(elements):
        xyz = coords[groups == gi]
        xyz = xyz[np.all(np.abs(xyz) < half, axis=1)]
        if xyz.shape[0] == 0:
            continue
        grid = bspline_splat(xyz / vf, fine).reshape(fine)
        spectrum = scipy.fft.rfftn(grid, workers=WORKERS)[sel]
        total += spectrum * potential_form_factor(element, q, b_factor=b)
    total /= v**3 * window
    for axis, n in enumerate(shape3):  # Nyquist planes of even axes: no Hermitian partner
        if n % 2 == 0 and axis < 2:
            index: list[slice | int] = [slice(None)] * 3
            index[axis] = n // 2
            total[tuple(index)] = 0.0
    if shape3[2] % 2 == 0:
        total[:, :, shape3[2] // 2] = 0.0
    volume = scipy.fft.irfftn(total, s=shape3, workers=WORKERS)
    return np.fft.fftshift(volume).astype(np.float32)
