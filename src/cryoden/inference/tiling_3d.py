"""Tiled prediction of volumes with smooth blending, one slab of sections at a time.

The 3D form of :func:`cryoden.inference.tiling.predict_tiled`: a volume ``(Z, Y, X)`` is cut
into overlapping boxes, each box is predicted (in batches) and the predictions are blended with
weights that are outer products of the 1D raised-cosine profiles of the 2D tiler (near an
interior box face, where the network saw its own padding, a box's weight is tiny and its
neighbour's ~1). The weights' sum is separable, so three 1D normalisers divide it out.

Boxes are processed in rows of equal z-start. Only the sections of one row are held: the input
sections ``[z, z + tz)`` (reflected past the last section) and a float32 accumulator of the same
size; once a row is done, the sections before the next row's start are final and are handed to
``write`` and dropped. Memory is therefore bounded by the box depth ``tz`` times one section,
whatever the number of sections.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from cryoden.errors import ParameterError
from cryoden.inference.tiling import _layout, _profile, _reflect_indices

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]
#: Reads the sections at the given indices as ``(C, n, Y, X)`` float32 (C input channels).
ReadSections = Callable[[np.ndarray], np.ndarray]
#: Receives finished sections ``(n, Y, X)`` float32 starting at the given section index.
WriteSections = Callable[[int, np.ndarray], None]


@dataclass(frozen=True)
class VolumePlan:
    """Box ``(tz, ty, tx)``, overlap, batch and edge margin (``None``: a quarter of the
    overlap) for :func:`predict_tiled_volume` (see
    :meth:`cryoden.inference.volume.VolumeDenoiser.plan`)."""

    tile: tuple[int, int, int]
    overlap: int
    batch: int
    margin: int | None = None


def _as_box(tile: int | tuple[int, int, int]) -> tuple[int, int, int]:
    if isinstance(tile, int):
        return (tile, tile, tile)
    if len(tile) != 3:
        raise ParameterError(f"tile must be one side or (tz, ty, tx), got {tile}")
    return (int(tile[0]), int(tile[1]), int(tile[2]))


def _check(
    shape: tuple[int, int, int],
    box: tuple[int, int, int],
    overlap: int,
    batch: int,
    margin: int | None,
) -> None:
    if min(box) < 1 or batch < 1:
        raise ParameterError(f"tile and batch must be positive, got tile {box}, batch {batch}")
    if len(shape) != 3 or min(shape) < 1:
        raise ParameterError(f"expected a volume shape (Z, Y, X), got {shape}")
    for side, length in zip(box, shape):
        if overlap < 0 or (length > side and 2 * overlap >= side):
            raise ParameterError(f"overlap must be in [0, tile/2), got {overlap} for tile {box}")
    if margin is not None and not 0 <= 2 * margin < overlap:
        raise ParameterError(f"margin must be in [0, overlap/2), got {margin} for {overlap}")


def _shift_down(band: np.ndarray, n: int) -> None:
    """Move ``band[n:]`` to the front and zero the rest, in chunks of ``n`` sections so that no
    band-sized temporary is made."""
    depth = band.shape[0]
    for start in range(0, depth - n, n):
        stop = min(start + n, depth - n)
        band[start:stop] = band[start + n : stop + n]
    band[depth - n :] = 0.0


def predict_tiled_volume(
    fn: Callable[[torch.Tensor], torch.Tensor],
    read: ReadSections,
    shape: tuple[int, int, int],
    write: WriteSections,
    *,
    tile: int | tuple[int, int, int],
    overlap: int,
    batch: int = 1,
    align: int = 1,
    margin: int | None = None,
    progress: ProgressCallback | None = None,
) -> None:
    """Predict a volume box by box, blend the boxes without seams, and hand the result to
    ``write`` in consecutive slabs of sections.

    Parameters
    ----------
    fn
        Maps a float32 CPU tensor ``(B, C, tz, ty, tx)`` to ``(B, 1, tz, ty, tx)`` (any
        device/dtype; brought back to float32 on the CPU).
    read
        ``read(indices)`` returns the sections at those z-indices as ``(C, n, Y, X)`` float32.
        Called once per row of boxes with ``tz`` indices (reflected past the last section).
    shape
        ``(Z, Y, X)`` of the volume; any size (odd included, smaller than a box included: the
        box is then reflect-padded and the result cropped).
    write
        ``write(start, sections)`` receives finished sections ``(n, Y, X)`` in order; the array
        is reused afterwards, so ``write`` must copy what it keeps.
    tile
        Box side, or ``(tz, ty, tx)``; clipped to the volume on axes it covers.
    overlap
        Overlap of neighbouring boxes in voxels (see :func:`~cryoden.inference.tiling.predict_tiled`).
    batch
        Boxes per call of ``fn``.
    align
        Box starts are multiples of this (the network's size multiple), so pooling sees the
        same grid in every box as in the whole volume.
    margin
        Voxels at each interior box face that get (almost) no weight: the network's
        receptive-field radius makes tiling change nothing beyond rounding.
    progress
        Called as ``progress(boxes_done, boxes_total)``.

    Examples
    --------
    >>> volume = np.arange(9 * 10 * 11, dtype=np.float32).reshape(9, 10, 11)
    >>> out = np.empty_like(volume)
    >>> def keep(start, sections):
    ...     out[start : start + len(sections)] = sections
    >>> predict_tiled_volume(lambda x: x, lambda i: volume[None, i], volume.shape, keep,
    ...                      tile=6, overlap=2)
    >>> bool(np.allclose(out, volume))
    True
    """
    box = _as_box(tile)
    nz, ny, nx = (int(s) for s in shape)
    _check((nz, ny, nx), box, overlap, batch, margin)
    tz, ty, tx = box
    zs, pz = _layout(nz, tz, overlap, align)
    ys, py = _layout(ny, ty, overlap, align)
    xs, px = _layout(nx, tx, overlap, align)
    wz = {z: _profile(tz, overlap, z == 0, z + tz >= pz, margin) for z in zs}
    wy = {y: _profile(ty, overlap, y == 0, y + ty >= py, margin) for y in ys}
    wx = {x: _profile(tx, overlap, x == 0, x + tx >= px, margin) for x in xs}
    norm_z, norm_y, norm_x = np.zeros(pz), np.zeros(py), np.zeros(px)
    for z in zs:
        norm_z[z : z + tz] += wz[z]
    for y in ys:
        norm_y[y : y + ty] += wy[y]
    for x in xs:
        norm_x[x : x + tx] += wx[x]
    inv_z = (1.0 / norm_z[:nz]).astype(np.float32)
    inv_yx = (1.0 / norm_y[:ny, None] / norm_x[None, :nx]).astype(np.float32)
    band = np.zeros((tz, ny, nx), dtype=np.float32)
    starts = [(y, x) for y in ys for x in xs]
    total, done = len(zs) * len(starts), 0
    for row, z in enumerate(zs):
        sections = np.asarray(read(_reflect_indices(z, tz, nz)), dtype=np.float32)
        if sections.ndim != 4 or sections.shape[1:] != (tz, ny, nx):
            raise ValueError(f"read returned shape {sections.shape} for {tz} sections")
        depth = min(tz, nz - z)
        for first in range(0, len(starts), batch):
            chunk = starts[first : first + batch]
            boxes = np.empty((len(chunk), sections.shape[0], tz, ty, tx), dtype=np.float32)
            for k, (y, x) in enumerate(chunk):
                if y + ty <= ny and x + tx <= nx:
                    boxes[k] = sections[:, :, y : y + ty, x : x + tx]
                else:  # reflect past the far faces, without padding the whole volume
                    rows = _reflect_indices(y, ty, ny)
                    cols = _reflect_indices(x, tx, nx)
                    boxes[k] = sections[:, :, rows[:, None], cols[None, :]]
            result = fn(torch.from_numpy(boxes)).detach().to("cpu", torch.float32).numpy()
            if result.shape != (len(chunk), 1, tz, ty, tx):
                raise ValueError(f"fn returned shape {result.shape} for boxes of {boxes.shape}")
            for (y, x), prediction in zip(chunk, result[:, 0]):
                h, w = min(ty, ny - y), min(tx, nx - x)
                weights = (wy[y][:h, None] * wx[x][None, :w]).astype(np.float32)
                weighted = prediction[:depth, :h, :w] * wz[z][:depth, None, None].astype(np.float32)
                weighted *= weights
                band[:depth, y : y + h, x : x + w] += weighted
            done += len(chunk)
            if progress is not None:
                progress(done, total)
        del sections
        stop = zs[row + 1] if row + 1 < len(zs) else nz
        n = stop - z
        finished = band[:n]
        finished *= inv_z[z:stop, None, None]
        finished *= inv_yx
        write(z, finished)
        if row + 1 < len(zs):
            _shift_down(band, n)
