"""Global (whole-frame) drift estimation by cross-correlation.

Shifts are in pixels, ``(dy, dx)``; a frame shifted by ``s`` is brought back by ``-s``. The
estimate aligns each frame to the sum of all the others (which removes the frame's own noise from
the reference), iterates a few times, and refines the peak to sub-pixel precision with a
parabola through the peak and its neighbours.

Applying the shifts (:func:`shift_image`) interpolates. A Fourier phase ramp (``"fourier"``)
moves an image without changing its power spectrum, so white noise stays white. Real-space
interpolation (``"bilinear"``, ``"cubic"``), as many motion-correction programs use, mixes
neighbouring pixels at a sub-pixel shift: the noise of an aligned frame sum is then correlated
between neighbours (and its variance lower), as in real motion-corrected micrographs, while the
signal loses a little high-frequency power. Integer shifts move pixels exactly with any of them.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.ndimage

from cryoden.errors import ParameterError

logger = logging.getLogger(__name__)


def _bin(frame: np.ndarray, factor: int) -> np.ndarray:
    if factor == 1:
        return frame.astype(np.float64)
    h, w = (frame.shape[0] // factor) * factor, (frame.shape[1] // factor) * factor
    return frame[:h, :w].reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))


#: Rings of the frames' spectrum (in Fourier pixels) below which the correlation weight fades:
#: the slowest variations (an ice-thickness gradient, the edge taper) carry no position.
LOW_CUT_RINGS = 2.0
#: Fraction of each frame's side over which :func:`_taper` fades the frame to its mean.
TAPER_FRACTION = 0.1


def _bfactor_weight(shape: tuple[int, int], b_pixels2: float) -> np.ndarray:
    """``exp(-B f²/4)`` (f in cycles/pixel) with the lowest :data:`LOW_CUT_RINGS` rings faded:
    a band that keeps where the signal of a single frame lies, without the image-wide trends
    whose cyclic correlation has a broad peak anywhere along the trend."""
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.rfftfreq(shape[1])[None, :]
    f2 = fy**2 + fx**2
    low = (LOW_CUT_RINGS / min(shape)) ** 2
    return np.exp(-b_pixels2 * f2 / 4.0) * (1.0 - np.exp(-f2 / low))


def _taper(shape: tuple[int, int]) -> np.ndarray:
    """A separable raised-cosine edge window (1 inside), so a frame's opposite edges do not
    meet in a cyclic correlation."""
    windows = []
    for n in shape:
        ramp = max(1, int(TAPER_FRACTION * n))
        w = np.ones(n)
        edge = 0.5 - 0.5 * np.cos(np.pi * (np.arange(ramp) + 0.5) / ramp)
        w[:ramp] = edge
        w[n - ramp :] = edge[::-1]
        windows.append(w)
    return windows[0][:, None] * windows[1][None, :]


def _peak_subpixel(cc: np.ndarray) -> tuple[float, float]:
    """Sub-pixel location of the maximum of a cyclic correlation map (shift convention)."""
    h, w = cc.shape
    iy, ix = np.unravel_index(int(np.argmax(cc)), cc.shape)

    def refine(m1: float, c0: float, p1: float) -> float:
        denom = m1 - 2 * c0 + p1
        return 0.0 if denom == 0 else 0.5 * (m1 - p1) / denom

    dy = refine(cc[(iy - 1) % h, ix], cc[iy, ix], cc[(iy + 1) % h, ix])
    dx = refine(cc[iy, (ix - 1) % w], cc[iy, ix], cc[iy, (ix + 1) % w])
    sy = iy + dy if iy <= h // 2 else iy + dy - h
    sx = ix + dx if ix <= w // 2 else ix + dx - w
    return float(sy), float(sx)


#: Interpolations of :func:`shift_image`, and the spline order of the real-space ones.
INTERPOLATIONS: dict[str, int | None] = {"bilinear": 1, "cubic": 3, "fourier": None}


def shift_image(
    image: np.ndarray, shift_px: tuple[float, float], *, interpolation: str = "fourier"
) -> np.ndarray:
    """Shift an image by ``(dy, dx)`` pixels (content moves towards ``+y, +x``).

    ``interpolation``: ``"fourier"`` (phase ramp, cyclic), ``"bilinear"`` or ``"cubic"``
    (real-space spline of order 1 or 3, edges extended with the nearest pixel).
    """
    if interpolation not in INTERPOLATIONS:
        known = ", ".join(INTERPOLATIONS)
        raise ParameterError(f"interpolation must be one of {known}, got {interpolation!r}")
    order = INTERPOLATIONS[interpolation]
    if order is not None:
        shifted = scipy.ndimage.shift(
            np.asarray(image, dtype=np.float64), shift_px, order=order, mode="nearest"
        )
        return shifted.astype(np.float32)
    h, w = image.shape
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    ramp = np.exp(-2j * np.pi * (fy * shift_px[0] + fx * shift_px[1]))
    return np.fft.irfft2(np.fft.rfft2(image) * ramp, s=(h, w)).astype(np.float32)


def estimate_global_drift(
    frames: np.ndarray,
    *,
    bin_factor: int = 1,
    b_factor_pixels2: float = 500.0,
    iterations: int = 3,
    max_shift_px: float | None = None,
    smoothing: float = 2.0,
) -> np.ndarray:
    """Per-frame global shifts ``(n_frames, 2)`` in pixels of the full-size frames.

    Parameters
    ----------
    frames
        ``(n, H, W)`` movie frames (already gain-corrected).
    bin_factor
        Frames are binned by this factor before correlating (speed; shifts are scaled back).
    b_factor_pixels2
        Gaussian weighting ``exp(-B f²/4)`` (f in cycles/pixel of the binned frame) that keeps the
        low frequencies where the signal of a single frame lies.
    iterations
        Rounds of aligning each frame to the sum of all others.
    max_shift_px
        Optional bound on any estimated shift (full-size pixels).
    smoothing
        Weight ``lambda`` of a penalty on the trajectory's second differences (a Whittaker
        smoother, :func:`smooth_trajectory`): specimen drift is smooth, the noise of each frame's
        estimate is not. 0 keeps the raw estimates; a constant-speed drift is never changed.

    Returns
    -------
    numpy.ndarray
        Shifts relative to the mean position (they sum to zero); apply ``-shift`` to align.
    """
    n = frames.shape[0]
    binned = np.stack([_bin(f, bin_factor) for f in frames])
    binned -= binned.mean(axis=(1, 2), keepdims=True)
    binned *= _taper(binned.shape[1:])
    weight = _bfactor_weight(binned.shape[1:], b_factor_pixels2)
    spectra = np.fft.rfft2(binned) * weight
    shifts = np.zeros((n, 2))
    fy = np.fft.fftfreq(binned.shape[1])[:, None]
    fx = np.fft.rfftfreq(binned.shape[2])[None, :]
    for _ in range(iterations):
        ramps = np.exp(
            2j * np.pi * (fy[None] * shifts[:, 0, None, None] + fx[None] * shifts[:, 1, None, None])
        )
        aligned = spectra * ramps
        total = aligned.sum(axis=0)
        new = np.zeros_like(shifts)
        for i in range(n):
            reference = total - aligned[i]
            cc = np.fft.irfft2(spectra[i] * np.conj(reference), s=binned.shape[1:])
            new[i] = _peak_subpixel(cc)
        new -= new.mean(axis=0)
        if max_shift_px is not None:
            new = np.clip(new, -max_shift_px / bin_factor, max_shift_px / bin_factor)
        converged = np.abs(new - shifts).max() < 0.01
        shifts = new
        if converged:
            break
    shifts = smooth_trajectory(shifts, smoothing)
    logger.debug("drift (binned px): %s", shifts.tolist())
    return shifts * bin_factor


def smooth_trajectory(shifts: np.ndarray, smoothing: float) -> np.ndarray:
    """Whittaker smoothing of ``(n, 2)`` shifts: ``argmin |x - shifts|² + smoothing |D² x|²``
    (``D²`` the second difference along the frames), re-centred on zero; linear trajectories
    are kept exactly."""
    if not (np.isfinite(smoothing) and smoothing >= 0):
        raise ParameterError(f"smoothing must be >= 0, got {smoothing}")
    n = shifts.shape[0]
    if smoothing == 0 or n < 3:
        return shifts
    d2 = np.diff(np.eye(n), 2, axis=0)
    smoothed = np.linalg.solve(np.eye(n) + smoothing * d2.T @ d2, shifts)
    return smoothed - smoothed.mean(axis=0)
