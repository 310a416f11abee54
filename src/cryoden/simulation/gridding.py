"""Gridding kernel shared by the projectors: cubic B-spline splatting and its transfer function.

Point masses (atoms) are spread onto a grid :data:`OVERSAMPLE` times finer than the output with
the cubic B-spline kernel (4 taps per axis: 16 in 2D, 64 in 3D), all in one
:func:`numpy.bincount`. In Fourier space the splat multiplies every frequency by the kernel's
transfer function ``prod_axes sinc(m / n_fine) ** 4`` (:func:`bspline_transfer`); dividing by it
after cropping to the output's frequencies (gridding correction) leaves only the kernel's
aliasing, which the fine grid keeps small. The helpers that check sizes and Fourier indices used
by both :mod:`~cryoden.simulation.projection_atoms` and
:mod:`~cryoden.simulation.projection_maps` live here too.

References
----------
J. I. Jackson, C. H. Meyer, D. G. Nishimura, A. Macovski, "Selection of a convolution function
for Fourier inversion using gridding", IEEE Trans. Med. Imaging 10, 473-478 (1991).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence

import numpy as np

from cryoden.errors import ParameterError

#: FFT worker threads of the projectors.
WORKERS = max(1, min(4, os.cpu_count() or 1))
#: The splatting grid is this many times finer than the output grid on each axis.
OVERSAMPLE = 2
#: Order of the B-spline splatting kernel (cubic: 4 taps per axis, transfer ``sinc**4``).
KERNEL_ORDER = 3


def check_positive(name: str, value: float) -> float:
    """``value`` as a float; ParameterError naming ``name`` unless finite and > 0."""
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        raise ParameterError(f"{name} must be a positive number, got {value}")
    return value


def check_size(size: int) -> int:
    """An image side in pixels, as an int; ParameterError unless a positive integer."""
    if int(size) != size or size < 1:
        raise ParameterError(f"size must be a positive integer number of pixels, got {size}")
    return int(size)


def check_b_factor(b_factor: float) -> float:
    """A global B-factor in Å², as a float; ParameterError unless finite and >= 0."""
    b = float(b_factor)
    if not np.isfinite(b) or b < 0:
        raise ParameterError(f"b_factor must be >= 0 Å², got {b_factor}")
    return b


def freq_indices(n: int) -> np.ndarray:
    """Integer DFT frequency indices of an ``n``-point axis (numpy order)."""
    return np.rint(np.fft.fftfreq(n) * n).astype(np.int64)


def _bspline_weights(t: np.ndarray) -> list[np.ndarray]:
    """The 4 cubic B-spline tap weights at fractional positions ``t``; taps at -1, 0, 1, 2."""
    t2 = t * t
    t3 = t2 * t
    return [
        (1.0 - t) ** 3 / 6.0,
        (3.0 * t3 - 6.0 * t2 + 4.0) / 6.0,
        (-3.0 * t3 + 3.0 * t2 + 3.0 * t + 1.0) / 6.0,
        t3 / 6.0,
    ]


def bspline_splat(
    u: np.ndarray,
    shape: Sequence[int],
    *,
    offsets: np.ndarray | None = None,
    n_bins: int | None = None,
) -> np.ndarray:
    """Splat unit point masses at ``u`` (grid units) with the cubic B-spline; flat float64 grid.

    ``u`` is ``(M, d)`` with columns ``(x, y[, z])``; ``shape`` is the grid's array shape
    (``(..., y, x)``: column ``j`` runs along array axis ``-1 - j``); indices wrap
    periodically. ``offsets`` (``(M,)`` ints) are added to each point's flat index, so several
    grids (one per element) can be filled by one :func:`numpy.bincount` of length ``n_bins``.
    The splat's transfer function is :func:`bspline_transfer` on each axis.
    """
    m, d = u.shape
    base = np.floor(u)
    frac = u - base
    base = base.astype(np.intp)
    # per axis, slowest (last column) first: lists of (M,) tap indices and weights
    axes_index: list[list[np.ndarray]] = []
    axes_weight: list[list[np.ndarray]] = []
    stride = 1
    for col in range(d):
        n = int(shape[-1 - col])
        weights = _bspline_weights(frac[:, col])
        axes_index.append([((base[:, col] + (k - 1)) % n) * stride for k in range(len(weights))])
        axes_weight.append(weights)
        stride *= n
    if offsets is not None:
        axes_index[-1] = [i + offsets for i in axes_index[-1]]
    taps = [range(len(w)) for w in axes_weight]
    combos = list(itertools.product(*taps))
    index = np.empty((len(combos), m), dtype=np.intp)
    weight = np.empty((len(combos), m))
    for row, combo in enumerate(combos):
        np.copyto(index[row], axes_index[0][combo[0]])
        np.copyto(weight[row], axes_weight[0][combo[0]])
        for axis in range(1, d):
            index[row] += axes_index[axis][combo[axis]]
            weight[row] *= axes_weight[axis][combo[axis]]
    length = stride if n_bins is None else n_bins
    return np.bincount(index.reshape(-1), weights=weight.reshape(-1), minlength=length)


def bspline_transfer(m: np.ndarray, n: int) -> np.ndarray:
    """Transfer function of the cubic B-spline splat at DFT index ``m`` of an ``n``-point axis."""
    return np.sinc(m / n) ** (KERNEL_ORDER + 1)
