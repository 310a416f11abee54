"""Global (whole-frame) drift estimation by cross-correlation.

Shifts are in pixels, ``(dy, dx)``; a frame shifted by ``s`` is brought back by ``-s``. The
estimate aligns each frame to the sum of all the others (which removes the frame's own noise from
the reference), iterates a few times, and refines the peak to sub-pixel precision with a
parabola through the peak and its neighbours.
"""

from __future__ import annotations

import logging

import numpy as np

logger = logging.getLogger(__name__)


def _bin(frame: np.ndarray, factor: int) -> np.ndarray:
    if factor == 1:
        return frame.astype(np.float64)
    h, w = (frame.shape[0] // factor) * factor, (frame.shape[1] // factor) * factor
    return frame[:h, :w].reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))


def _bfactor_weight(shape: tuple[int, int], b_pixels2: float) -> np.ndarray:
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.rfftfreq(shape[1])[None, :]
    return np.exp(-b_pixels2 * (fy**2 + fx**2) / 4.0)


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


def shift_image(image: np.ndarray, shift_px: tuple[float, float]) -> np.ndarray:
    """Shift an image by ``(dy, dx)`` pixels with a Fourier phase ramp (cyclic)."""
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

    Returns
    -------
    numpy.ndarray
        Shifts relative to the mean position (they sum to zero); apply ``-shift`` to align.
    """
    n = frames.shape[0]
    binned = np.stack([_bin(f, bin_factor) for f in frames])
    binned -= binned.mean(axis=(1, 2), keepdims=True)
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
    logger.debug("drift (binned px): %s", shifts.tolist())
    return shifts * bin_factor
