"""Tiled prediction with smooth blending, and the choice of tile size.

An image of any size is cut into overlapping tiles; each tile is predicted (in batches) and
the predictions are blended with weights that rise as a raised cosine across the middle of
each overlap. Near an interior tile edge, where the network saw its own padding instead of the
neighbouring pixels, a tile's weight is tiny (``EDGE_WEIGHT``) and its neighbour's is ~1, so
with an overlap of at least four times the receptive-field radius, tiled and whole-image
predictions agree to float precision. Weights are strictly positive and the blend is divided by
their sum, so there are no seams.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from cryoden.errors import ParameterError

logger = logging.getLogger(__name__)

#: Blending weight of pixels in the outer quarter of an overlap (strictly positive).
EDGE_WEIGHT = 1e-6

ProgressCallback = Callable[[int, int], None]


def _layout(length: int, tile: int, overlap: int, align: int) -> tuple[list[int], int]:
    """Tile starts along one axis and the (padded) length they cover.

    One tile covers an axis no longer than ``tile``. Otherwise starts are multiples of the
    stride (``tile - overlap`` rounded down to a multiple of ``align``) and the last tile starts
    at ``length - tile`` rounded up to a multiple of ``align``: it ends flush with the axis
    (``align = 1``) or less than ``align`` pixels beyond it, like a network that pads its
    input to a multiple of ``align``.
    """
    if length <= tile:
        return [0], tile
    stride = (tile - overlap) // align * align
    if stride < 1:
        raise ParameterError(
            f"tile {tile} minus overlap {overlap} leaves no stride that is a multiple of {align}"
        )
    last = -(-(length - tile) // align) * align
    return list(range(0, last, stride)) + [last], last + tile


def _profile(
    tile: int, overlap: int, first: bool, last: bool, margin: int | None = None
) -> np.ndarray:
    """1D blending weights of one tile: 1 inside, raised-cosine ramps over interior overlaps.

    On an interior edge the outer ``margin`` pixels of the overlap (a quarter of it by default)
    get ``EDGE_WEIGHT``, the next ``overlap - 2 margin`` pixels ramp up as ``sin²`` and the rest
    is 1. Edges on the image border stay at 1. Neighbouring tiles' ramps sum to 1.
    """
    weights = np.ones(tile, dtype=np.float64)
    if overlap <= 0:
        return weights
    margin = overlap // 4 if margin is None else margin
    ramp_len = overlap - 2 * margin
    if ramp_len < 1:
        raise ParameterError(f"overlap {overlap} leaves no blending ramp with margin {margin}")
    ramp = np.sin(0.5 * np.pi * (np.arange(ramp_len) + 0.5) / ramp_len) ** 2
    rising = np.concatenate([np.zeros(margin), ramp, np.ones(overlap - margin - ramp_len)])
    rising = np.maximum(rising, EDGE_WEIGHT)[:tile]
    if not first:
        weights[: rising.size] = np.minimum(weights[: rising.size], rising)
    if not last:
        weights[tile - rising.size :] = np.minimum(weights[tile - rising.size :], rising[::-1])
    return weights


def _reflect_indices(start: int, size: int, length: int) -> np.ndarray:
    """Indices ``start .. start + size - 1`` of an axis of ``length``, reflected past its end
    (as ``numpy.pad(mode="reflect")`` on the bottom/right; edge mode for a 1-pixel axis)."""
    idx = np.arange(start, start + size)
    if length == 1:
        return np.zeros_like(idx)
    period = 2 * (length - 1)
    idx = idx % period
    return np.where(idx < length, idx, period - idx)


def predict_tiled(
    fn: Callable[[torch.Tensor], torch.Tensor],
    image: np.ndarray,
    *,
    tile: int | tuple[int, int],
    overlap: int,
    batch: int = 1,
    align: int = 1,
    margin: int | None = None,
    progress: ProgressCallback | None = None,
) -> np.ndarray:
    """Predict a 2D image tile by tile and blend the tiles without seams.

    Memory: besides the image, the float32 output, a float64 band of one tile row, one float64
    tile and one batch of tiles; the image is never copied or padded as a whole.

    Parameters
    ----------
    fn
        Maps a float32 CPU tensor ``(B, 1, th, tw)`` to a tensor of the same shape (any
        device/dtype; the result is brought back to float32 on the CPU).
    image
        2D array ``(H, W)``, any size (odd included). When smaller than a tile, or to align
        the last tile, the image is padded by reflection on the bottom and right and the
        result cropped back.
    tile
        Tile side (or ``(th, tw)``); clipped to the image size when the image is smaller.
    overlap
        Overlap between neighbouring tiles in pixels; at least 4× the network's
        receptive-field radius (2× its receptive field) makes tiling invisible.
    batch
        Tiles per call of ``fn``.
    align
        Tile starts are multiples of this. Use the network's ``2**depth``: pooling then sees
        the same pixel grid in every tile as in the whole image, and tiles whose side is a
        multiple of it reproduce the network's own padding at the bottom and right.
    margin
        Pixels at each interior tile edge that get (almost) no weight: set it to the network's
        receptive-field radius (or its effective radius) and tiling changes nothing beyond
        rounding. The rest of the overlap is the blending ramp. Default: ``overlap // 4``.
    progress
        Called as ``progress(tiles_done, tiles_total)``.

    Returns
    -------
    np.ndarray
        float32 ``(H, W)``.

    Examples
    --------
    >>> image = np.arange(35 * 50, dtype=np.float32).reshape(35, 50)
    >>> out = predict_tiled(lambda x: x, image, tile=16, overlap=6, batch=4)
    >>> bool((out == image).all())
    True
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 2:
        raise ParameterError(f"predict_tiled needs a 2D image, got shape {image.shape}")
    th, tw = (tile, tile) if isinstance(tile, int) else (int(tile[0]), int(tile[1]))
    if th < 1 or tw < 1 or batch < 1:
        raise ParameterError(f"tile and batch must be positive, got tile {tile}, batch {batch}")
    height, width = image.shape
    for side, length in ((th, height), (tw, width)):
        if overlap < 0 or (length > side and 2 * overlap >= side):
            raise ParameterError(f"overlap must be in [0, tile/2), got {overlap} for tile {tile}")
    if margin is not None and not 0 <= 2 * margin < overlap:
        raise ParameterError(f"margin must be in [0, overlap/2), got {margin} for {overlap}")
    ys, ph = _layout(height, th, overlap, align)
    xs, pw = _layout(width, tw, overlap, align)
    wy = {y: _profile(th, overlap, y == 0, y + th >= ph, margin) for y in ys}
    wx = {x: _profile(tw, overlap, x == 0, x + tw >= pw, margin) for x in xs}
    # The weights are outer products on a full grid of tiles, so their sum is separable: 1D
    # normalisers suffice. Tiles are processed row by row and a float64 accumulator holds one
    # tile row (th x width): rows above the next tile row's start are final and are written
    # out. Besides the image, memory is the float32 output, that band and one batch of tiles.
    norm_y = np.zeros(ph)
    norm_x = np.zeros(pw)
    for y in ys:
        norm_y[y : y + th] += wy[y]
    for x in xs:
        norm_x[x : x + tw] += wx[x]
    inv_x = 1.0 / norm_x[:width]
    out = np.empty((height, width), dtype=np.float32)
    band = np.zeros((th, width), dtype=np.float64)
    scratch = np.empty((th, tw), dtype=np.float64)
    band_top = 0  # image row of band[0]
    starts = [(y, x) for y in ys for x in xs]
    done_in_row = dict.fromkeys(ys, 0)

    def finish_rows(stop: int) -> None:
        """Write rows [band_top, stop) to the output and move the band down to ``stop``."""
        nonlocal band_top
        stop = min(stop, height)
        n = stop - band_top
        if n <= 0:
            return
        rows = band[:n]  # normalised in place: no image-wide temporaries
        rows /= norm_y[band_top:stop, None]
        np.multiply(rows, inv_x[None, :], out=out[band_top:stop], casting="same_kind")
        band[: th - n] = band[n:]
        band[th - n :] = 0.0
        band_top = stop

    for first in range(0, len(starts), batch):
        chunk = starts[first : first + batch]
        tiles = np.empty((len(chunk), 1, th, tw), dtype=np.float32)
        for k, (y, x) in enumerate(chunk):
            if y + th <= height and x + tw <= width:
                tiles[k, 0] = image[y : y + th, x : x + tw]
            else:  # reflect past the bottom/right border, without padding the whole image
                rows_idx = _reflect_indices(y, th, height)
                cols_idx = _reflect_indices(x, tw, width)
                tiles[k, 0] = image[np.ix_(rows_idx, cols_idx)]
        result = fn(torch.from_numpy(tiles)).detach().to(device="cpu", dtype=torch.float32).numpy()
        if result.shape != tiles.shape:
            raise ValueError(f"fn returned shape {result.shape} for tiles of {tiles.shape}")
        for (y, x), pred in zip(chunk, result[:, 0]):
            h, w = min(th, height - y), min(tw, width - x)
            top = y - band_top
            weighted = scratch[:h, :w]  # float64 product, in a buffer reused for every tile
            np.multiply(pred[:h, :w], wy[y][:h, None], out=weighted)
            weighted *= wx[x][None, :w]
            band[top : top + h, x : x + w] += weighted
            done_in_row[y] += 1
            if done_in_row[y] == len(xs):  # this tile row is complete
                i = ys.index(y)
                finish_rows(ys[i + 1] if i + 1 < len(ys) else height)
        if progress is not None:
            progress(min(first + batch, len(starts)), len(starts))
    return out


@dataclass(frozen=True)
class TilingPlan:
    """Tile ``(height, width)``, overlap, batch and edge margin (``None``: a quarter of the
    overlap) for :func:`predict_tiled` (see :meth:`cryoden.inference.Denoiser.plan`)."""

    tile: tuple[int, int]
    overlap: int
    batch: int
    margin: int | None = None


def available_memory_bytes(device: torch.device | str = "cpu") -> int:
    """Free memory usable for inference on ``device``.

    CUDA: ``torch.cuda.mem_get_info``; otherwise ``MemAvailable`` from ``/proc/meminfo``, or
    ``os.sysconf`` (available pages × page size), or 4 GiB when neither is readable.
    """
    device = torch.device(device)
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 4 * 1024**3
