"""Single-axis tilt series of a volume and their weighted back-projection (a tomogram).

Geometry
--------
A volume is ``volume[z, y, x]`` with the centre at voxel ``shape // 2`` (as everywhere in
cryoden). The tilt axis is ``y``; the beam is along ``z`` at tilt 0. Each ``y`` slice
``volume[:, y, :]`` is projected with scikit-image's Radon transform, so at a tilt of ``theta``
degrees a point ``(x, z)`` (voxels from the centre) lands on detector column
``u = x cos(theta) - z sin(theta)`` from the centre column ``X // 2``: a tilt image
``tilts[k, y, u]`` is the line integral of the volume along the beam direction
``(sin(theta), cos(theta))`` in ``(x, z)``, in the volume's units times voxels. The detector is
as wide as the volume (``X`` columns); what projects outside it is lost, as on a real detector.
A specimen confined to a slab of thickness ``t <= X sqrt(3) / 3`` voxels (about ``0.58 X``)
about ``z = 0`` projects entirely inside it at every tilt up to 60 degrees.

Reconstruction
--------------
:func:`reconstruct_wbp` is weighted (filtered) back-projection: each row of detector columns
(one ``y``) is ramp-filtered and back-projected over the tilts with scikit-image's inverse
Radon transform, into a square ``max(Z, X)`` slice that is cropped to ``(Z, X)``. Tilts cover
only ``[tilt_min, tilt_max]``, so the Fourier transform of the tomogram is empty in the
*missing wedge*: the frequencies within ``90 - max|tilt|`` degrees of the ``k_z`` axis (in
the ``(k_x, k_z)`` plane of each ``k_y``). Reconstructions are linear in the tilt series and
keep scikit-image's scale (which assumes tilts spread over 180 degrees), the same for every
tomogram of a run, so a clean and a noisy reconstruction are directly comparable.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence

import numpy as np
from skimage.transform import iradon, radon

from cryoden.errors import ParameterError

logger = logging.getLogger(__name__)

#: Filters of the weighted back-projection (scikit-image's ``iradon`` ``filter_name``): the
#: ramp of plain WBP, or the ramp times an apodising window.
WBP_FILTERS: tuple[str, ...] = ("ramp", "shepp-logan", "cosine", "hamming", "hann")


def tilt_angles(
    tilt_min_deg: float = -60.0, tilt_max_deg: float = 60.0, tilt_step_deg: float = 3.0
) -> np.ndarray:
    """Tilt angles in degrees from ``tilt_min_deg`` to ``tilt_max_deg`` (included when a whole
    number of steps away) in steps of ``tilt_step_deg``.

    Examples
    --------
    >>> tilt_angles(-60, 60, 3).size
    41
    """
    low, high, step = float(tilt_min_deg), float(tilt_max_deg), float(tilt_step_deg)
    for name, value in (("tilt_min_deg", low), ("tilt_max_deg", high)):
        if not math.isfinite(value) or not -90.0 < value < 90.0:
            raise ParameterError(f"{name} must be in (-90, 90) degrees, got {value}")
    if high < low:
        raise ParameterError(f"tilt_max_deg ({high}) must be >= tilt_min_deg ({low})")
    if not math.isfinite(step) or step <= 0:
        raise ParameterError(f"tilt_step_deg must be > 0 degrees, got {step}")
    count = int(math.floor((high - low) / step + 1e-9)) + 1
    return low + step * np.arange(count, dtype=np.float64)


def _check_volume(volume: np.ndarray) -> np.ndarray:
    array = np.asarray(volume)
    if array.ndim != 3 or min(array.shape) < 2:
        raise ParameterError(f"volume must be a (Z, Y, X) array, got shape {array.shape}")
    return array


def _square_side(n_z: int, n_x: int) -> int:
    return max(int(n_z), int(n_x))


def _detector_length(side: int) -> int:
    """Length of scikit-image's Radon detector for a ``side``-square image (its diagonal)."""
    return int(math.ceil(math.sqrt(2.0) * side))


def _detector_crop(side: int, n_x: int) -> slice:
    """The ``n_x`` detector columns centred like the volume's ``x`` (centre ``n_x // 2``)."""
    start = _detector_length(side) // 2 - n_x // 2
    return slice(start, start + n_x)


def project_tilt_series(
    volume: np.ndarray,
    angles_deg: Sequence[float] | np.ndarray,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Tilt series of ``volume`` about its ``y`` axis (see the module's geometry).

    Parameters
    ----------
    volume
        ``(Z, Y, X)`` volume, e.g. a Coulomb potential in V.
    angles_deg
        Tilt angles in degrees (from :func:`tilt_angles`).
    progress
        Optional ``progress(done, total)`` callback, called per ``y`` slice.

    Returns
    -------
    numpy.ndarray
        ``(n_tilts, Y, X)`` float32 line integrals (volume units × voxels).
    """
    vol = _check_volume(volume).astype(np.float64, copy=False)
    angles = np.asarray(angles_deg, dtype=np.float64).reshape(-1)
    if angles.size == 0:
        raise ParameterError("angles_deg needs at least one tilt angle")
    n_z, n_y, n_x = vol.shape
    side = _square_side(n_z, n_x)
    z0, x0 = (side - n_z) // 2, (side - n_x) // 2
    crop = _detector_crop(side, n_x)
    square = np.zeros((side, side), dtype=np.float64)
    tilts = np.empty((angles.size, n_y, n_x), dtype=np.float32)
    for y in range(n_y):
        square[z0 : z0 + n_z, x0 : x0 + n_x] = vol[:, y, :]
        sinogram = radon(square, theta=angles, circle=False)  # (detector, n_tilts)
        tilts[:, y, :] = sinogram[crop].T
        if progress is not None:
            progress(y + 1, n_y)
    return tilts


def reconstruct_wbp(
    tilts: np.ndarray,
    angles_deg: Sequence[float] | np.ndarray,
    *,
    n_z: int,
    filter_name: str = "ramp",
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Weighted back-projection of a tilt series into a ``(n_z, Y, X)`` tomogram.

    Parameters
    ----------
    tilts
        ``(n_tilts, Y, X)`` tilt series in the geometry of :func:`project_tilt_series`.
    angles_deg
        The tilt angle of each image, in degrees.
    n_z
        Thickness of the tomogram in voxels.
    filter_name
        The back-projection filter, one of :data:`WBP_FILTERS` (``"ramp"``: plain WBP).
    progress
        Optional ``progress(done, total)`` callback, called per ``y`` slice.

    Returns
    -------
    numpy.ndarray
        ``(n_z, Y, X)`` float32 tomogram (linear in ``tilts``; scale as in the module notes).
    """
    series = np.asarray(tilts)
    angles = np.asarray(angles_deg, dtype=np.float64).reshape(-1)
    if series.ndim != 3 or series.shape[0] != angles.size:
        raise ParameterError(
            f"tilts must be (n_tilts, Y, X) with one image per angle; got shape {series.shape} "
            f"for {angles.size} angles"
        )
    if filter_name not in WBP_FILTERS:
        raise ParameterError(
            f"filter_name must be one of {', '.join(WBP_FILTERS)}; got {filter_name!r}"
        )
    if int(n_z) != n_z or n_z < 1:
        raise ParameterError(f"n_z must be a positive number of voxels, got {n_z}")
    n_tilts, n_y, n_x = series.shape
    side = _square_side(int(n_z), n_x)
    z0, x0 = (side - int(n_z)) // 2, (side - n_x) // 2
    crop = _detector_crop(side, n_x)
    sinogram = np.zeros((_detector_length(side), n_tilts), dtype=np.float64)
    volume = np.empty((int(n_z), n_y, n_x), dtype=np.float32)
    for y in range(n_y):
        sinogram[crop] = series[:, y, :].T
        square = iradon(
            sinogram, theta=angles, output_size=side, circle=False, filter_name=filter_name
        )
        volume[:, y, :] = square[z0 : z0 + int(n_z), x0 : x0 + n_x]
        if progress is not None:
            progress(y + 1, n_y)
    return volume


def missing_wedge_mask(shape: Sequence[int], max_tilt_deg: float) -> np.ndarray:
    """Boolean mask of the missing wedge in ``numpy.fft.fftn`` layout of a ``(Z, Y, X)`` volume.

    True where the direction of ``(k_x, k_z)`` lies within ``90 - max_tilt_deg`` degrees of
    the ``k_z`` axis (frequencies no tilt up to ``max_tilt_deg`` measures); the origin and the
    ``k_z = k_x = 0`` line are outside it.
    """
    n_z, n_y, n_x = (int(s) for s in shape)
    if not 0.0 < float(max_tilt_deg) < 90.0:
        raise ParameterError(f"max_tilt_deg must be in (0, 90) degrees, got {max_tilt_deg}")
    kz = np.fft.fftfreq(n_z)[:, None, None]
    kx = np.fft.fftfreq(n_x)[None, None, :]
    angle_from_kz = np.degrees(np.arctan2(np.abs(kx), np.abs(kz)))
    wedge = (angle_from_kz < 90.0 - float(max_tilt_deg)) & (np.abs(kz) > 0)
    return np.broadcast_to(wedge, (n_z, n_y, n_x)).copy()
