"""Tiled prediction with smooth blending, and the choice of tile size.

An image of any size is cut into overlapping tiles; each tile is predicted (in batches) and
the predictions are blended with weights that rise as a raised cosine across the middle of
each overlap. Near an interior tile edge, where the network saw zero padding instead of the
neighbouring pixels, a tile's weight is tiny (``EDGE_WEIGHT``) and its neighbour's is ~1, so
with an overlap of at least four times the receptive-field radius, tiled and whole-image
predictions agree to float precision. Weights are strictly positive and the blend is divided by
their sum, so there are no seams.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from cryoden.errors import ParameterError
from cryoden.nets.analysis import receptive_field
from cryoden.nets.config import NetworkConfig

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


def _profile(tile: int, overlap: int, first: bool, last: bool) -> np.ndarray:
    """1D blending weights of one tile: 1 inside, raised-cosine ramps over interior overlaps.

    On an interior edge the outer quarter of the overlap gets ``EDGE_WEIGHT``, the middle half
    ramps up as ``sin²``, the inner quarter is 1. Edges on the image border stay at 1.
    """
    weights = np.ones(tile, dtype=np.float64)
    if overlap <= 0:
        return weights
    margin = overlap // 4
    ramp_len = overlap - 2 * margin
    ramp = np.sin(0.5 * np.pi * (np.arange(ramp_len) + 0.5) / ramp_len) ** 2
    rising = np.concatenate([np.zeros(margin), ramp, np.ones(overlap - margin - ramp_len)])
    rising = np.maximum(rising, EDGE_WEIGHT)[:tile]
    if not first:
        weights[: rising.size] = np.minimum(weights[: rising.size], rising)
    if not last:
        weights[tile - rising.size :] = np.minimum(weights[tile - rising.size :], rising[::-1])
    return weights


def _reflect_pad(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pad bottom/right to ``height × width`` by reflection (edge for 1-px axes)."""
    pad_h, pad_w = height - image.shape[0], width - image.shape[1]
    if pad_h == 0 and pad_w == 0:
        return image
    mode = "reflect" if min(image.shape) > 1 else "edge"
    return np.pad(image, ((0, pad_h), (0, pad_w)), mode=mode)


def predict_tiled(
    fn: Callable[[torch.Tensor], torch.Tensor],
    image: np.ndarray,
    *,
    tile: int | tuple[int, int],
    overlap: int,
    batch: int = 1,
    align: int = 1,
    progress: ProgressCallback | None = None,
) -> np.ndarray:
    """Predict a 2D image tile by tile and blend the tiles without seams.

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
    ys, ph = _layout(height, th, overlap, align)
    xs, pw = _layout(width, tw, overlap, align)
    padded = _reflect_pad(image, ph, pw)
    wy = {y: _profile(th, overlap, y == 0, y + th >= ph) for y in ys}
    wx = {x: _profile(tw, overlap, x == 0, x + tw >= pw) for x in xs}
    acc = np.zeros((ph, pw), dtype=np.float64)
    norm = np.zeros((ph, pw), dtype=np.float64)
    starts = [(y, x) for y in ys for x in xs]
    for first in range(0, len(starts), batch):
        chunk = starts[first : first + batch]
        tiles = np.stack([padded[y : y + th, x : x + tw] for y, x in chunk])[:, None]
        result = fn(torch.from_numpy(np.ascontiguousarray(tiles)))
        result = result.detach().to(device="cpu", dtype=torch.float32).numpy()
        if result.shape != tiles.shape:
            raise ValueError(f"fn returned shape {result.shape} for tiles of {tiles.shape}")
        for (y, x), pred in zip(chunk, result[:, 0]):
            weight = np.outer(wy[y], wx[x])
            acc[y : y + th, x : x + tw] += weight * pred
            norm[y : y + th, x : x + tw] += weight
        if progress is not None:
            progress(min(first + batch, len(starts)), len(starts))
    return (acc / norm)[:height, :width].astype(np.float32)


@dataclass(frozen=True)
class TilingPlan:
    """Tile ``(height, width)``, overlap and batch chosen by :func:`choose_tiling`."""

    tile: tuple[int, int]
    overlap: int
    batch: int


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


def _bytes_per_pixel(config: NetworkConfig, dtype_bytes: int) -> float:
    """Rough peak activation memory of one forward pass per input pixel."""
    # level l holds ~(skip + 3 working tensors) of base * 2**l channels at 4**-l of the pixels
    depth = int(config.depth)  # type: ignore[arg-type]
    channels = sum(4.0 * config.base_channels * 2**level / 4**level for level in range(depth + 1))
    return 2.0 * dtype_bytes * channels + 64.0  # x2 for convolution workspaces


def choose_tiling(
    config: NetworkConfig,
    image_shape: tuple[int, ...],
    *,
    device: torch.device | str = "cpu",
    memory_fraction: float = 0.25,
    max_tile: int = 2048,
    dtype_bytes: int = 4,
) -> TilingPlan:
    """Choose tile side, overlap and batch from free memory and the receptive field.

    The tile is the largest multiple of ``2**depth`` whose activations fit in
    ``memory_fraction`` of the free memory, at most ``max_tile`` and no larger than the image
    needs (the tile is clipped to the image: the network pads internally, so borders are
    treated as in a whole-image forward pass). The overlap is twice the network's receptive
    field, rounded up to a multiple of 8 (the quarter of the overlap that is discarded at
    interior tile edges then covers the receptive-field radius, and tiling changes nothing
    beyond float rounding), and less than half the tile. As many tiles as fit (at most 16)
    make a batch.

    Parameters
    ----------
    config
        The network's configuration.
    image_shape
        ``(H, W)`` (or ``(N, H, W)``) of the images to denoise.
    device
        Where inference runs (for the free memory).
    memory_fraction
        Fraction of the free memory to use.
    max_tile
        Upper bound on the tile side.
    dtype_bytes
        Bytes per activation (4 for float32, 2 for bf16).
    """
    multiple = config.size_multiple
    height, width = int(image_shape[-2]), int(image_shape[-1])
    budget = max(available_memory_bytes(device) * memory_fraction, 64 * 1024**2)
    per_pixel = _bytes_per_pixel(config, dtype_bytes)
    side = int(math.sqrt(budget / per_pixel)) // multiple * multiple
    side = max(4 * multiple, min(side, max_tile))
    field = receptive_field(config)
    overlap = min(-(-2 * field // 8) * 8, (side - 1) // 2)
    tile = (min(side, height), min(side, width))
    batch = int(max(1, min(16, budget // (per_pixel * tile[0] * tile[1]))))
    return TilingPlan(tile=tile, overlap=overlap, batch=batch)
