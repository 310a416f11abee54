"""Where training patches may come from in a tomogram: inside the sample, off its edges.

A tomogram holds more than the specimen: vacuum (or bare ice) above and below the specimen
slab, and, near the reconstruction's lateral edges, back-projection artefacts where the field
of view at high tilt did not cover the volume. A denoiser trained on patches of those learns
textures it will never need. A :class:`SamplingRegion` says where patches may lie in one volume:

- **bounds**: a box the whole patch must lie in. By default :data:`EDGE_FRACTION` of each axis
  is cut off at each end (the reconstruction's edges); a slab ``z_range`` narrows z further.
- **cells**: a coarse boolean mask over cells of :data:`CELL_PX` voxels per side; the patch's
  centre must lie in an allowed cell. The cells come from a user's mask (a cell is allowed when
  at least half its voxels are), or, with ``mask="auto"``, from the local variance
  (:func:`local_variance_cells`): the variance, within each cell, of the means of
  :data:`BIN_PX`-voxel blocks. Block means keep the structure and average the noise down, so the
  specimen's cells stand above the vacuum's; cells are split into two classes by Otsu's
  threshold on the log variance, and the low class is dropped only when it is clearly lower
  (:data:`MIN_CONTRAST` in variance), so a volume that is specimen throughout keeps every cell.

For validation a region is split along its longer in-plane axis (:meth:`SamplingRegion.split`):
training patches lie wholly before the cut, validation patches wholly after it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from skimage.filters import threshold_otsu

from cryoden.errors import ParameterError

logger = logging.getLogger(__name__)

#: Side (voxels) of the cells of a sampling mask.
CELL_PX = 16
#: Side (voxels) of the blocks whose means the local variance is taken over.
BIN_PX = 4
#: Share of each axis cut off at each end: the reconstruction's edges.
EDGE_FRACTION = 0.05
#: The low-variance cells are dropped only when the two classes' mean variances differ by at
#: least this factor.
MIN_CONTRAST = 2.0

#: Returns z-sections ``start:stop`` of a volume as float32.
ReadSections = Callable[[int, int], np.ndarray]


def local_variance_cells(
    read: ReadSections, shape: tuple[int, int, int], *, cell_px: int = CELL_PX
) -> np.ndarray:
    """The variance of :data:`BIN_PX`-block means within each ``cell_px`` cell of a volume.

    The volume is read ``cell_px`` sections at a time (``read(start, stop)``), so memory stays
    bounded. Partial cells at the far ends use the voxels they have. Returns float64
    ``(ceil(Z / c), ceil(Y / c), ceil(X / c))``.
    """
    nz, ny, nx = shape
    b = min(BIN_PX, cell_px)
    per_cell = max(1, cell_px // b)
    cells = (-(-nz // cell_px), -(-ny // cell_px), -(-nx // cell_px))
    out = np.zeros(cells)
    for k in range(cells[0]):
        slab = read(k * cell_px, min(nz, (k + 1) * cell_px)).astype(np.float64)
        # block means over b voxels per axis (partial blocks at the far ends dropped; a
        # dimension shorter than a block is kept whole)
        dz, dy, dx = (max(1, s // b) * min(b, s) for s in slab.shape)
        part = slab[:dz, :dy, :dx]
        bz, by, bx = (max(1, s // b) for s in slab.shape)
        means = part.reshape(bz, dz // bz, by, dy // by, bx, dx // bx).mean(axis=(1, 3, 5))
        for i in range(cells[1]):
            for j in range(cells[2]):
                block = means[
                    :, i * per_cell : (i + 1) * per_cell, j * per_cell : (j + 1) * per_cell
                ]
                out[k, i, j] = float(block.var()) if block.size > 1 else 0.0
    return out


def variance_mask(variances: np.ndarray) -> np.ndarray:
    """Cells of high local variance (the specimen), as the module docstring explains: Otsu's
    threshold on the log variance, applied only when the classes differ by
    :data:`MIN_CONTRAST`."""
    values = np.log(np.maximum(variances, 1e-30))
    keep = np.ones(variances.shape, dtype=bool)
    if values.size < 2 or np.ptp(values) == 0:
        return keep
    threshold = float(threshold_otsu(values.ravel()))
    high, low = variances[values > threshold], variances[values <= threshold]
    if high.size == 0 or low.size == 0 or high.mean() < MIN_CONTRAST * low.mean():
        return keep
    return values > threshold


def mask_cells(mask: np.ndarray, *, cell_px: int = CELL_PX) -> np.ndarray:
    """A voxel mask ``(Z, Y, X)`` as cells: a cell is allowed when at least half its voxels
    (of those inside the volume) are."""
    nz, ny, nx = mask.shape
    cells = (-(-nz // cell_px), -(-ny // cell_px), -(-nx // cell_px))
    out = np.zeros(cells, dtype=bool)
    for k in range(cells[0]):
        slab = np.asarray(mask[k * cell_px : (k + 1) * cell_px], dtype=bool)
        for i in range(cells[1]):
            for j in range(cells[2]):
                block = slab[:, i * cell_px : (i + 1) * cell_px, j * cell_px : (j + 1) * cell_px]
                out[k, i, j] = block.mean() >= 0.5
    return out


@dataclass(frozen=True)
class SamplingRegion:
    """Where patches may lie in a volume of ``shape``: ``bounds`` ``((z0, z1), (y0, y1),
    (x0, x1))`` the whole patch lies in, and allowed ``cells`` (``cell_px`` voxels per side)
    its centre lies in."""

    shape: tuple[int, int, int]
    bounds: tuple[tuple[int, int], tuple[int, int], tuple[int, int]]
    cells: np.ndarray
    cell_px: int = CELL_PX

    @classmethod
    def build(
        cls,
        shape: tuple[int, int, int],
        cells: np.ndarray | None = None,
        *,
        z_range: tuple[int, int] | None = None,
        edge_fraction: float = EDGE_FRACTION,
        cell_px: int = CELL_PX,
    ) -> SamplingRegion:
        """A region of a volume of ``shape``: the edges cut off, z limited to ``z_range``
        (a slab, ``[z0, z1)``), centres in ``cells`` (all cells when None)."""
        if not 0.0 <= edge_fraction < 0.5:
            raise ParameterError(f"edge_fraction must be in [0, 0.5), got {edge_fraction}")
        bounds = [(int(edge_fraction * s), s - int(edge_fraction * s)) for s in shape]
        if z_range is not None:
            z0, z1 = (int(v) for v in z_range)
            if not 0 <= z0 < z1 <= shape[0]:
                raise ParameterError(
                    f"z_range must be [z0, z1) within 0..{shape[0]}, got {tuple(z_range)}"
                )
            bounds[0] = (max(bounds[0][0], z0), min(bounds[0][1], z1))
        n_cells = tuple(-(-s // cell_px) for s in shape)
        if cells is None:
            cells = np.ones(n_cells, dtype=bool)
        elif cells.shape != n_cells:
            raise ParameterError(f"cells must have shape {n_cells}, got {cells.shape}")
        (z0, z1), (y0, y1), (x0, x1) = bounds
        volume = (int(shape[0]), int(shape[1]), int(shape[2]))
        return cls(volume, ((z0, z1), (y0, y1), (x0, x1)), np.asarray(cells, dtype=bool), cell_px)

    def allowed_cells(self, patch: int) -> np.ndarray:
        """Indices ``(n, 3)`` of the allowed cells whose centre range meets the positions a
        ``patch``-sized patch within the bounds can have its centre at."""
        half = patch // 2
        index = np.argwhere(self.cells)
        if index.size == 0:
            return index
        low = index * self.cell_px
        high = np.minimum(low + self.cell_px, np.array(self.shape))  # exclusive
        keep = np.ones(len(index), dtype=bool)
        for axis, (lo, hi) in enumerate(self.bounds):
            first, last = lo + half, hi - patch + half  # centre range, inclusive
            keep &= (high[:, axis] > first) & (low[:, axis] <= last)
        return index[keep]

    def fits(self, patch: int) -> bool:
        """Whether a ``patch``-sized patch has room and an allowed centre."""
        room = all(hi - lo >= patch for lo, hi in self.bounds)
        return room and len(self.allowed_cells(patch)) > 0

    def draw(self, n: int, patch: int, generator: torch.Generator) -> np.ndarray:
        """``n`` patch corners ``(n, 3)`` (z, y, x): an allowed cell uniformly at random, a
        uniform centre in it, clamped so that the patch lies within the bounds."""
        cells = self.allowed_cells(patch)
        if len(cells) == 0:
            raise ParameterError(f"no room for a {patch}-voxel patch in the sampling region")
        pick = torch.randint(0, len(cells), (n,), generator=generator).numpy()
        offsets = torch.rand(n, 3, generator=generator, dtype=torch.float64).numpy()
        low = cells[pick] * self.cell_px
        size = np.minimum(low + self.cell_px, np.array(self.shape)) - low
        centres = low + np.minimum((offsets * size).astype(np.int64), size - 1)
        corners = centres - patch // 2
        for axis, (lo, hi) in enumerate(self.bounds):
            corners[:, axis] = np.clip(corners[:, axis], lo, hi - patch)
        return corners

    def split(
        self, validation_fraction: float, patch: int
    ) -> tuple[SamplingRegion, SamplingRegion | None]:
        """A training and a validation region that share no voxel: the last
        ``validation_fraction`` (at least ``patch`` voxels) of the longer in-plane axis is for
        validation. ``None`` for validation when the region cannot spare it and keep room for
        training."""
        axis = (
            1
            if self.bounds[1][1] - self.bounds[1][0] >= self.bounds[2][1] - self.bounds[2][0]
            else 2
        )
        lo, hi = self.bounds[axis]
        n_val = max(patch, round((hi - lo) * validation_fraction))
        cut = hi - n_val
        if validation_fraction <= 0 or cut - lo < patch:
            return self, None
        bounds = list(self.bounds)
        bounds[axis] = (lo, cut)
        train = SamplingRegion(self.shape, tuple(bounds), self.cells, self.cell_px)  # type: ignore[arg-type]
        bounds[axis] = (cut, hi)
        validation = SamplingRegion(self.shape, tuple(bounds), self.cells, self.cell_px)  # type: ignore[arg-type]
        if not train.fits(patch) or not validation.fits(patch):
            return self, None
        return train, validation

    def summary(self) -> dict[str, object]:
        """JSON-ready facts: bounds and the share of allowed cells."""
        return {
            "bounds_zyx": [list(b) for b in self.bounds],
            "cells_allowed": round(float(self.cells.mean()), 4),
        }
