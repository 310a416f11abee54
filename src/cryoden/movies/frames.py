"""Reading movie frames (MRC or TIFF), gain correction and even/odd frame sums."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mrcfile
import numpy as np
import tifffile

from cryoden.errors import InputFileError, ParameterError
from cryoden.movies.alignment import INTERPOLATIONS, _bin, estimate_global_drift, shift_image

logger = logging.getLogger(__name__)


def _is_tiff(path: Path) -> bool:
    return path.suffix.lower() in (".tif", ".tiff")


def movie_info(path: str | Path) -> tuple[int, tuple[int, int], float | None]:
    """``(n_frames, (H, W), pixel_size_angstrom or None)`` of a movie, reading headers only."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "no such file")
    try:
        if _is_tiff(path):
            with tifffile.TiffFile(path) as tif:
                pages = tif.pages
                shape = pages[0].shape
                n = len(pages) if len(shape) == 2 else shape[0]
                hw = shape[-2:]
                return n, (int(hw[0]), int(hw[1])), None
        with mrcfile.mmap(path, mode="r", permissive=True) as mrc:
            if mrc.data is None:
                raise InputFileError(path, "not a readable MRC movie (no data)")
            data = mrc.data
            n = 1 if data.ndim == 2 else data.shape[0]
            px = float(mrc.voxel_size.x)
            return n, (int(data.shape[-2]), int(data.shape[-1])), px if px > 0 else None
    except InputFileError:
        raise
    except Exception as exc:  # mrcfile/tifffile raise many kinds of errors for bad files
        raise InputFileError(
            path, f"cannot read as a movie ({exc.__class__.__name__}: {exc})"
        ) from exc


def iter_movie_frames(path: str | Path) -> Iterator[np.ndarray]:
    """Yield the frames of an MRC (``.mrc``/``.mrcs``) or TIFF movie as float32 ``(H, W)``."""
    path = Path(path)
    movie_info(path)  # validates
    try:
        if _is_tiff(path):
            with tifffile.TiffFile(path) as tif:
                if len(tif.pages) == 1 and tif.pages[0].ndim == 3:
                    for frame in tif.pages[0].asarray():
                        yield np.asarray(frame, dtype=np.float32)
                else:
                    for page in tif.pages:
                        yield np.asarray(page.asarray(), dtype=np.float32)
            return
        with mrcfile.mmap(path, mode="r", permissive=True) as mrc:
            data = mrc.data
            frames = data[None] if data.ndim == 2 else data
            for frame in frames:
                yield np.asarray(frame, dtype=np.float32)
    except (ValueError, OSError) as exc:
        raise InputFileError(path, f"truncated or corrupt movie ({exc})") from exc


def read_gain(path: str | Path, shape: tuple[int, int]) -> np.ndarray:
    """A gain reference (MRC or TIFF, one image) that frames are multiplied by."""
    path = Path(path)
    frames = list(iter_movie_frames(path))
    if len(frames) != 1:
        raise InputFileError(path, f"a gain reference must hold one image, found {len(frames)}")
    gain = frames[0]
    if gain.shape != tuple(shape):
        raise InputFileError(path, f"gain shape {gain.shape} does not match the frames {shape}")
    if not np.all(np.isfinite(gain)):
        raise InputFileError(path, "gain reference contains NaN or infinite values")
    return gain


@dataclass(frozen=True)
class EvenOddSums:
    """The even-frame and odd-frame sums of one movie (frames counted from 0)."""

    even: np.ndarray
    odd: np.ndarray
    n_frames: int
    shifts_px: np.ndarray  # (n_frames, 2) global drift (dy, dx) that was removed; zeros if none
    pixel_size_angstrom: float | None


def even_odd_sums(
    path: str | Path,
    *,
    gain: np.ndarray | None = None,
    align: bool = False,
    align_max_size: int = 1024,
    interpolation: str = "bilinear",
) -> EvenOddSums:
    """Sum the even (0, 2, 4, ...) and odd (1, 3, 5, ...) frames of a movie.

    With ``align=True`` the global drift of each frame is estimated by cross-correlation on
    frames binned to at most ``align_max_size`` pixels and removed before summing, each frame
    shifted with ``interpolation`` (see :func:`cryoden.movies.alignment.shift_image`; the
    default bilinear interpolation correlates neighbouring pixels' noise, as real motion
    correction does). The two sums see the same specimen with independent shot noise: a
    Noise2Noise pair.
    """
    path = Path(path)
    if interpolation not in INTERPOLATIONS:
        known = ", ".join(INTERPOLATIONS)
        raise ParameterError(f"interpolation must be one of {known}, got {interpolation!r}")
    n, (h, w), px = movie_info(path)
    if n < 2:
        raise InputFileError(path, f"has {n} frame; even/odd sums need at least 2 frames")
    shifts = np.zeros((n, 2))
    if align:
        factor = max(1, int(np.ceil(max(h, w) / align_max_size)))
        binned = np.stack([_bin(_gain(f, gain), factor) for f in iter_movie_frames(path)])
        shifts = estimate_global_drift(binned) * factor
        logger.info("%s: global drift up to %.2f px", path.name, float(np.abs(shifts).max()))
    even = np.zeros((h, w), np.float64)
    odd = np.zeros((h, w), np.float64)
    for i, frame in enumerate(iter_movie_frames(path)):
        frame = _gain(frame, gain)
        if align:
            frame = shift_image(frame, (-shifts[i, 0], -shifts[i, 1]), interpolation=interpolation)
        (even if i % 2 == 0 else odd)[...] += frame
    return EvenOddSums(even.astype(np.float32), odd.astype(np.float32), n, shifts, px)


def _gain(frame: np.ndarray, gain: np.ndarray | None) -> np.ndarray:
    return frame if gain is None else frame * gain
