"""Fourier ring and shell correlation (FRC, FSC) and resolution thresholds.

Shells are measured in Nyquist units on each axis (``f = sqrt(sum((2 k_i / N_i)**2))``, numpy's
``fftfreq * 2``), so a non-square image or non-cubic volume is handled without resampling. Shells
are one Fourier pixel of the smallest side wide: shell ``k`` holds the coefficients with
``round(f / d) = k`` for ``d = 2 / min(shape)`` and is reported at its centre ``k d``, from 0 (DC)
up to Nyquist; the corners beyond are left out.

Sums run over the full FFT: the real transform (``rfftn``) is used with each half-plane
coefficient weighted by the number of full-FFT coefficients it stands for (1 or 2), and
``n_per_shell`` counts full-FFT coefficients, Hermitian partners included. With this count the
FRC of two independent white-noise images has standard deviation ``1 / sqrt(n_per_shell)`` per
shell, the basis of the usual ``3 / sqrt(n)`` (3 sigma) curve and of the half-bit threshold.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.fft

from cryoden.errors import ParameterError
from cryoden.metrics.image import check_image_pair

logger = logging.getLogger(__name__)

ThresholdName = Literal["half-bit"]


@dataclass
class FourierCorrelation:
    """An FRC or FSC curve.

    Attributes
    ----------
    frequency_nyquist
        Shell centres in Nyquist units, ``0, d, 2d, ...`` up to at most 1 (``d = 2 / min(shape)``).
    correlation
        Correlation in each shell, in [-1, 1]; 0 for a shell where either input has no power.
    n_per_shell
        Number of full-FFT coefficients in each shell (Hermitian partners counted).
    pixel_size_angstrom
        Pixel (voxel) size in Å, or None if unknown.
    """

    frequency_nyquist: np.ndarray
    correlation: np.ndarray
    n_per_shell: np.ndarray
    pixel_size_angstrom: float | None = None

    @property
    def frequency_per_angstrom(self) -> np.ndarray | None:
        """Shell centres in 1/Å (``f / (2 p)``), or None without a pixel size."""
        if self.pixel_size_angstrom is None:
            return None
        return self.frequency_nyquist / (2.0 * self.pixel_size_angstrom)


def _check_pair(a: np.ndarray, b: np.ndarray, ndim: int, what: str) -> tuple[np.ndarray, ...]:
    """Shared image checks (:func:`cryoden.metrics.image.check_image_pair`), then dimensionality."""
    x, y = check_image_pair(a, b, what)
    kind = "2D images (H, W)" if ndim == 2 else "3D volumes (Z, Y, X)"
    if x.ndim != ndim:
        raise ParameterError(f"{what} needs {kind}, got shape {x.shape}")
    if min(x.shape) < 2:
        raise ParameterError(f"{what} needs at least 2 pixels per axis, got shape {x.shape}")
    return x, y


def _check_pixel_size(pixel_size_angstrom: float | None) -> float | None:
    if pixel_size_angstrom is None:
        return None
    size = float(pixel_size_angstrom)
    if not np.isfinite(size) or size <= 0:
        raise ParameterError(f"pixel_size_angstrom must be > 0, got {pixel_size_angstrom!r}")
    return size


def shell_geometry(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, int]:
    """Shell index and full-FFT weight of each ``rfftn`` coefficient of an array of ``shape``.

    Returns
    -------
    index
        int64 array in the ``rfftn`` layout: the shell of each coefficient (``round(f / d)``
        with ``d = 2 / min(shape)``).
    weights
        float64 array, same layout: 2 for coefficients whose Hermitian partner is not stored,
        1 for those on the ``kx = 0`` (and, for even widths, ``kx = Nyquist``) planes.
    n_shells
        Number of shells reported, ``min(shape) // 2 + 1`` (0 up to Nyquist).
    """
    grids = [2.0 * np.fft.fftfreq(n) for n in shape[:-1]]
    grids.append(2.0 * np.fft.rfftfreq(shape[-1]))
    squared = np.zeros([len(g) for g in grids])
    for axis, grid in enumerate(grids):
        shape_1d = [1] * len(grids)
        shape_1d[axis] = len(grid)
        squared = squared + grid.reshape(shape_1d) ** 2
    step = 2.0 / min(shape)
    index = np.rint(np.sqrt(squared) / step).astype(np.int64)
    column = np.full(shape[-1] // 2 + 1, 2.0)
    column[0] = 1.0
    if shape[-1] % 2 == 0:
        column[-1] = 1.0
    weights = np.broadcast_to(column, index.shape)
    return index, weights, min(shape) // 2 + 1


def _fourier_correlation(
    x: np.ndarray, y: np.ndarray, pixel_size_angstrom: float | None
) -> FourierCorrelation:
    fx = scipy.fft.rfftn(x)
    fy = scipy.fft.rfftn(y)
    index, weights, n_shells = shell_geometry(x.shape)
    keep = index < n_shells
    idx = index[keep]
    w = weights[keep]
    fx = fx[keep]
    fy = fy[keep]

    def shell_sum(values: np.ndarray) -> np.ndarray:
        return np.bincount(idx, weights=values * w, minlength=n_shells)

    cross = shell_sum(fx.real * fy.real + fx.imag * fy.imag)
    power_x = shell_sum(fx.real**2 + fx.imag**2)
    power_y = shell_sum(fy.real**2 + fy.imag**2)
    n_per_shell = np.bincount(idx, weights=w, minlength=n_shells).round().astype(np.int64)
    denominator = np.sqrt(power_x * power_y)
    correlation = np.divide(cross, denominator, out=np.zeros(n_shells), where=denominator > 0)
    frequency = np.arange(n_shells) * (2.0 / min(x.shape))
    return FourierCorrelation(
        frequency_nyquist=frequency,
        correlation=np.clip(correlation, -1.0, 1.0),
        n_per_shell=n_per_shell,
        pixel_size_angstrom=pixel_size_angstrom,
    )


def frc(
    a: np.ndarray, b: np.ndarray, *, pixel_size_angstrom: float | None = None
) -> FourierCorrelation:
    """Fourier ring correlation of two 2D images of the same shape (any ``H, W``).

    ``FRC(k) = Re(sum A conj(B)) / sqrt(sum |A|**2 sum |B|**2)`` over the coefficients of ring
    ``k`` of the full 2D FFT.

    Parameters
    ----------
    a, b
        2D images ``(H, W)``, at least 2 pixels per side.
    pixel_size_angstrom
        Pixel size in Å, to express frequencies in 1/Å; None if unknown.

    Returns
    -------
    FourierCorrelation
        ``min(H, W) // 2 + 1`` rings from DC to Nyquist.

    Raises
    ------
    ParameterError
        If the shapes differ (the message gives both) or the inputs are not 2D and finite.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(32, 40))
    >>> curve = frc(x, x)
    >>> bool(np.allclose(curve.correlation, 1.0)), float(curve.frequency_nyquist[-1])
    (True, 1.0)
    """
    x, y = _check_pair(a, b, 2, "FRC")
    return _fourier_correlation(x, y, _check_pixel_size(pixel_size_angstrom))


def fsc(
    a: np.ndarray, b: np.ndarray, *, pixel_size_angstrom: float | None = None
) -> FourierCorrelation:
    """Fourier shell correlation of two 3D volumes ``(Z, Y, X)`` of the same shape.

    Same definitions as :func:`frc`, over spherical shells of the full 3D FFT.

    Parameters
    ----------
    a, b
        3D volumes, at least 2 voxels per side.
    pixel_size_angstrom
        Voxel size in Å (isotropic), to express frequencies in 1/Å; None if unknown.

    Returns
    -------
    FourierCorrelation
        ``min(shape) // 2 + 1`` shells from DC to Nyquist.

    Raises
    ------
    ParameterError
        If the shapes differ or the inputs are not 3D and finite.
    """
    x, y = _check_pair(a, b, 3, "FSC")
    return _fourier_correlation(x, y, _check_pixel_size(pixel_size_angstrom))


def half_bit_threshold(n_per_shell: np.ndarray) -> np.ndarray:
    """The half-bit information threshold of van Heel & Schatz (2005).

    ``T(n) = (0.2071 + 1.9102 / sqrt(n)) / (1.2071 + 0.9102 / sqrt(n))`` with ``n`` the number of
    Fourier coefficients in the shell. ``T(1) = 1``, falling towards ``0.2071 / 1.2071 = 0.1716``
    for large shells; shells with ``n = 0`` get 1 (nothing can pass).

    Parameters
    ----------
    n_per_shell
        Coefficients per shell (as in :attr:`FourierCorrelation.n_per_shell`).

    Returns
    -------
    numpy.ndarray
        float64 thresholds, same shape.

    References
    ----------
    M. van Heel and M. Schatz, "Fourier shell correlation threshold criteria", J. Struct. Biol.
    151 (2005) 250-262.
    """
    n = np.asarray(n_per_shell, dtype=np.float64)
    if np.any(n < 0) or not np.all(np.isfinite(n)):
        raise ParameterError("n_per_shell must be finite and >= 0")
    root = np.sqrt(np.where(n > 0, n, 1.0))
    threshold = (0.2071 + 1.9102 / root) / (1.2071 + 0.9102 / root)
    return np.where(n > 0, threshold, 1.0)


def resolution_crossing(curve: FourierCorrelation, threshold: float | ThresholdName) -> float:
    """Frequency (Nyquist units) where the curve first falls below a threshold.

    The search starts after the DC shell. At the first shell ``i >= 1`` whose correlation is
    below the threshold, the crossing is interpolated linearly between shells ``i - 1`` and
    ``i``; if the curve is below the threshold at shell 1 and at DC too (as for zero-mean
    images, whose DC shell is 0), the frequency of shell 1 is returned.

    Parameters
    ----------
    curve
        An FRC or FSC curve.
    threshold
        A fixed value such as 0.5 or 0.143, or ``"half-bit"`` for :func:`half_bit_threshold` of
        the curve's ``n_per_shell``.

    Returns
    -------
    float
        Frequency in Nyquist units; 1.0 if the curve never falls below the threshold.

    Raises
    ------
    ParameterError
        For an unknown threshold name or a value outside (-1, 1].

    Examples
    --------
    >>> import numpy as np
    >>> f = np.linspace(0, 1, 11)
    >>> c = FourierCorrelation(f, 1 - f, np.full(11, 100))
    >>> round(resolution_crossing(c, 0.5), 6)
    0.5
    """
    frequency = np.asarray(curve.frequency_nyquist, dtype=np.float64)
    correlation = np.asarray(curve.correlation, dtype=np.float64)
    if isinstance(threshold, str):
        if threshold.strip().lower().replace("_", "-") not in ("half-bit", "halfbit"):
            raise ParameterError(f"threshold must be a number or 'half-bit', got {threshold!r}")
        limits = half_bit_threshold(curve.n_per_shell)
    else:
        value = float(threshold)
        if not np.isfinite(value) or not -1.0 < value <= 1.0:
            raise ParameterError(f"threshold must be in (-1, 1], got {threshold!r}")
        limits = np.full_like(correlation, value)
    excess = correlation - limits
    below = np.flatnonzero(excess[1:] < 0) + 1
    if below.size == 0:
        return 1.0
    i = int(below[0])
    previous = excess[i - 1]
    if i == 1 and previous <= 0:  # the DC shell is not above the threshold either
        return float(frequency[1])
    t = previous / (previous - excess[i])
    return float(frequency[i - 1] + t * (frequency[i] - frequency[i - 1]))


def resolution_angstrom(frequency_nyquist: float, pixel_size_angstrom: float) -> float:
    """Resolution in Å of a frequency in Nyquist units: ``2 p / f``.

    Parameters
    ----------
    frequency_nyquist
        Frequency in Nyquist units, >= 0 (0 gives infinity).
    pixel_size_angstrom
        Pixel size ``p`` in Å, > 0.

    Returns
    -------
    float
        Resolution in Å (``2 p`` at Nyquist).

    Examples
    --------
    >>> resolution_angstrom(0.5, 1.5)
    6.0
    """
    size = _check_pixel_size(pixel_size_angstrom)
    if size is None:
        raise ParameterError("resolution_angstrom needs a pixel size")
    f = float(frequency_nyquist)
    if not np.isfinite(f) or f < 0:
        raise ParameterError(f"frequency_nyquist must be >= 0, got {frequency_nyquist!r}")
    if f == 0.0:
        return float("inf")
    return 2.0 * size / f
