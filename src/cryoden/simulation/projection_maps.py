"""Projections of density maps by Fourier-slice extraction.

Units
-----
:func:`project_map` gives the line integral of a map (sum of voxels times the voxel size): V·Å
for maps in V (e.g. from :func:`cryoden.simulation.projection_atoms.atoms_to_map`), "map units ·
Å" otherwise (EMDB maps have arbitrary scales). The study's datasets only use relative scales
(SNR is a variance ratio), so the unit is informational.

Geometry
--------
The same as :mod:`cryoden.simulation.projection_atoms`: ``r' = R (r - c)`` with the centre
``c`` at voxel ``shape // 2`` of ``volume[z, y, x]``, projection along ``z'``, image centre at
pixel ``size // 2``. So ``project_map(atoms_to_map(atoms, ...), ..., R)`` matches
``project_atoms(atoms, R, ...)``.

Method
------
As in RELION's projector: the map is zero-padded ``padding`` times, pre-divided by the trilinear
interpolator's real-space apodisation ``sinc**2`` (gridding correction), Fourier transformed
once; each projection is a central slice interpolated trilinearly at the image's frequencies
(which also resamples to the requested pixel size; the map's band limit applies), inverse
transformed on a grid large enough that the weak apodised copies of the map left one padded box
away do not fold onto the image, and cropped to ``size``. Those copies line up with the beam in
views along a map axis, which are therefore this projector's least accurate views; the square's
corners, which the rotated cube of the map's frequencies does not cover, are not reproduced.

References
----------
.. [1] S. H. W. Scheres, "RELION: implementation of a Bayesian approach to cryo-EM structure
   determination", J. Struct. Biol. 180, 519-530 (2012) (Fourier-slice projector with padding
   and gridding correction).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import scipy.fft

from cryoden.errors import ParameterError
from cryoden.simulation.gridding import WORKERS, check_positive, check_size
from cryoden.simulation.orientations import check_rotation

logger = logging.getLogger(__name__)


def _voxel_size(voxel_size_angstrom: float | Sequence[float]) -> float:
    if np.ndim(voxel_size_angstrom) == 0:
        return check_positive("voxel_size_angstrom", float(np.asarray(voxel_size_angstrom)))
    sizes = [float(s) for s in np.asarray(voxel_size_angstrom)]
    for s in sizes:
        check_positive("voxel_size_angstrom", s)
    if max(sizes) - min(sizes) > 1e-3 * max(sizes):
        raise ParameterError(f"the map's voxels must be cubic, got voxel size {tuple(sizes)} Å")
    return sizes[0]


class MapProjector:
    """Projections of one density map by Fourier-slice extraction.

    The padded map's Fourier transform is computed once; each projection interpolates a
    central slice (trilinear, with gridding correction) at the image's frequencies.

    Parameters
    ----------
    volume
        ``(Z, Y, X)`` map; the rotation centre is voxel ``shape // 2``.
    voxel_size_angstrom
        Voxel size in Å (a scalar, or ``(x, y, z)`` that must be equal).
    size
        Image side in pixels.
    pixel_size_angstrom
        Image pixel size in Å (may differ from the voxel size: the slice resamples).
    padding
        Zero-padding factor of the map before its Fourier transform (``>= 1``; 3 by default).
        Larger padding weakens the apodised copies of the map that trilinear interpolation
        leaves one padded box away, which add to views along a map axis, at the cost of a
        larger spectrum (``padding**3`` times the map's voxels).
    max_memory_bytes
        When the padded spectrum (``4 * n_pad**3`` bytes) would exceed this, padding drops to
        2 (logged).
    """

    def __init__(
        self,
        volume: np.ndarray,
        voxel_size_angstrom: float | Sequence[float],
        *,
        size: int,
        pixel_size_angstrom: float,
        padding: float = 3.0,
        max_memory_bytes: int = 1 << 30,
    ) -> None:
        vol = np.asarray(volume, dtype=np.float64)
        if vol.ndim != 3:
            raise ParameterError(f"a map must be 3D (Z, Y, X), got shape {vol.shape}")
        if not np.all(np.isfinite(vol)):
            raise ParameterError("the map holds NaN or infinite values")
        if padding < 1:
            raise ParameterError(f"padding must be >= 1, got {padding}")
        self.voxel_size_angstrom = _voxel_size(voxel_size_angstrom)
        self.size = check_size(size)
        self.pixel_size_angstrom = check_positive("pixel_size_angstrom", pixel_size_angstrom)
        v, p = self.voxel_size_angstrom, self.pixel_size_angstrom
        n_map = max(vol.shape)
        # the padded box must also hold the image's field of view beside the map
        n_min = n_map + int(np.ceil(self.size * p / v))
        n_pad = max(int(np.ceil(padding * n_map)), n_min)
        if 4 * n_pad**3 > max_memory_bytes and n_pad > max(2 * n_map, n_min):
            n_pad = max(2 * n_map, n_min)
            logger.info("map of %d voxels: padding reduced to 2x to save memory", n_map)
        n_pad += n_pad % 2
        self.n_pad = n_pad
        centers = [s // 2 for s in vol.shape]
        # gridding correction: trilinear interpolation of the spectrum multiplies real space
        # by sinc(x / n_pad)**2 per axis; divide it out beforehand
        for axis, (n, c) in enumerate(zip(vol.shape, centers, strict=True)):
            corr = np.sinc((np.arange(n) - c) / n_pad) ** 2
            shape = [1, 1, 1]
            shape[axis] = n
            vol = vol / corr.reshape(shape)
        padded = np.zeros((n_pad,) * 3, dtype=np.float32)
        padded[: vol.shape[0], : vol.shape[1], : vol.shape[2]] = vol
        padded = np.roll(padded, [-c for c in centers], axis=(0, 1, 2))
        self._spectrum = scipy.fft.rfftn(padded, workers=WORKERS).astype(np.complex64)
        del padded
        # output grid: trilinear interpolation leaves weak apodised copies of the map one padded
        # box (L) away; the grid's period must keep their folded images off the cropped image:
        # period >= L + map radius + image half-width
        box = n_pad * v
        period = box + 0.5 * n_map * v * np.sqrt(3) + 0.5 * self.size * p
        m = max(self.size, int(np.ceil(period / p)))
        self._grid = m + (m % 2)

    def project(
        self,
        rotation: np.ndarray,
        *,
        shift_angstrom: Sequence[float] | np.ndarray = (0.0, 0.0),
    ) -> np.ndarray:
        """Projection of the map rotated by ``rotation``, shifted by ``shift_angstrom`` (x, y).

        Returns
        -------
        numpy.ndarray
            ``(size, size)`` float32 line integral (map units × Å).
        """
        r = check_rotation(rotation)
        shift = np.asarray(shift_angstrom, dtype=np.float64).reshape(2)
        m = self._grid
        p = self.pixel_size_angstrom
        v = self.voxel_size_angstrom
        n_pad = self.n_pad
        qy = np.fft.fftfreq(m, d=p)
        qx = np.fft.rfftfreq(m, d=p)
        # image frequency (qx, qy, 0) in the rotated frame -> map frame R^T q, in padded index
        # units (cycles per padded box)
        scale = n_pad * v
        kx = (r[0, 0] * qx[None, :] + r[1, 0] * qy[:, None]) * scale
        ky = (r[0, 1] * qx[None, :] + r[1, 1] * qy[:, None]) * scale
        kz = (r[0, 2] * qx[None, :] + r[1, 2] * qy[:, None]) * scale
        values = _interpolate_hermitian(self._spectrum, kx.ravel(), ky.ravel(), kz.ravel())
        values = values.reshape(kx.shape) * (v**3 / p**2)
        if shift.any():
            values *= np.exp(-2j * np.pi * (qx[None, :] * shift[0] + qy[:, None] * shift[1]))
        if m % 2 == 0:
            values[m // 2, :] = 0.0
            values[:, m // 2] = 0.0
        image = np.fft.fftshift(scipy.fft.irfft2(values, s=(m, m), workers=WORKERS))
        start = m // 2 - self.size // 2
        return image[start : start + self.size, start : start + self.size].astype(np.float32)


def _interpolate_hermitian(
    spectrum: np.ndarray, kx: np.ndarray, ky: np.ndarray, kz: np.ndarray
) -> np.ndarray:
    """Trilinear interpolation of an ``rfftn`` spectrum ``(Z, Y, X//2+1)`` at index coordinates.

    Points with ``kx < 0`` use Hermitian symmetry ``F(-k) = conj(F(k))``. Points beyond the
    grid's Nyquist on any axis are 0.
    """
    n = spectrum.shape[0]
    nx = spectrum.shape[2]
    flip = kx < 0
    sign = np.where(flip, -1.0, 1.0)
    kx, ky, kz = kx * sign, ky * sign, kz * sign
    limit = n / 2 - 1
    valid = (kx <= limit) & (np.abs(ky) <= limit) & (np.abs(kz) <= limit)
    x0 = np.floor(kx).astype(np.int64)
    y0 = np.floor(ky).astype(np.int64)
    z0 = np.floor(kz).astype(np.int64)
    fx, fy, fz = kx - x0, ky - y0, kz - z0
    flat = spectrum.reshape(-1)
    out = np.zeros(kx.shape, dtype=np.complex128)
    for dz in (0, 1):
        wz = fz if dz else 1 - fz
        iz = (z0 + dz) % n
        for dy in (0, 1):
            wy = fy if dy else 1 - fy
            iy = (y0 + dy) % n
            for dx in (0, 1):
                wx = fx if dx else 1 - fx
                ix = np.minimum(x0 + dx, nx - 1)
                out += (wz * wy * wx) * flat[(iz * n + iy) * nx + ix]
    out[~valid] = 0.0
    return np.where(flip, np.conj(out), out)


def project_map(
    volume: np.ndarray,
    voxel_size_angstrom: float | Sequence[float],
    rotation: np.ndarray,
    *,
    size: int,
    pixel_size_angstrom: float,
    shift_angstrom: Sequence[float] | np.ndarray = (0.0, 0.0),
    padding: float = 3.0,
) -> np.ndarray:
    """Projection of a density map along a direction, resampled to a pixel size and size.

    Convenience wrapper around :class:`MapProjector` (which caches the map's Fourier transform;
    use it for many projections).

    Parameters
    ----------
    volume
        ``(Z, Y, X)`` map; rotation centre at voxel ``shape // 2``.
    voxel_size_angstrom
        Voxel size in Å.
    rotation
        ``(3, 3)`` rotation matrix (same convention as :func:`project_atoms`).
    size
        Image side in pixels.
    pixel_size_angstrom
        Image pixel size in Å.
    shift_angstrom
        In-plane shift ``(x, y)`` in Å.
    padding
        Zero-padding factor before the 3D FFT.

    Returns
    -------
    numpy.ndarray
        ``(size, size)`` float32 line integral of the map (map units × Å; V·Å for a map in V).
    """
    projector = MapProjector(
        volume,
        voxel_size_angstrom,
        size=size,
        pixel_size_angstrom=pixel_size_angstrom,
        padding=padding,
    )
    return projector.project(rotation, shift_angstrom=shift_angstrom)
