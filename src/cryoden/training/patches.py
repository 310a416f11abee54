"""Random training patches, from images in memory or read patch by patch from mapped files.

:func:`sample_patches` draws a batch: an image with probability proportional to its area, a
uniformly random position, one of the 8 symmetries of the square. Images are normalised arrays
``(C, H, W)`` (or tensors) in memory, or :class:`PatchImage` objects, which cut each patch on
demand: from a normalised array, or from memory-mapped files (:func:`cryoden.io.mapped.map_mrc`)
normalised patch by patch, so that training on hundreds of micrographs never holds one whole.

A :class:`PatchImage` may carry a sample mask (:class:`SampleMask`): patch positions are then
drawn uniformly among those whose centre pixel ``(y + patch // 2, x + patch // 2)`` is inside
the mask, and the image is picked in proportion to its area times the share of positions its
mask allows. Masks are stored as packed bits (one eighth of a boolean array).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from cryoden.errors import InputFileError, ParameterError
from cryoden.io.mapped import MappedMrc
from cryoden.models.normalization import RobustNormalization

#: Rows unpacked at a time when counting a mask's allowed positions (bounds the temporary).
_MASK_BLOCK_ROWS = 256


class SampleMask:
    """Where patch centres may lie in one image: a boolean ``(H, W)`` mask as packed bits."""

    def __init__(self, mask: np.ndarray, shape: tuple[int, int], *, what: str = "mask") -> None:
        array = np.asarray(mask)
        if array.shape != tuple(shape):
            raise ParameterError(f"{what} has shape {array.shape}, the image {tuple(shape)}")
        if array.dtype != np.bool_:
            raise ParameterError(f"{what} must be boolean, got {array.dtype}")
        self.shape = (int(shape[0]), int(shape[1]))
        self.packed = np.packbits(array, axis=-1)
        self._counts: dict[int, np.ndarray] = {}

    def unpack(self, rows: slice = slice(None)) -> np.ndarray:
        """The boolean mask (of ``rows``)."""
        bits = np.unpackbits(self.packed[rows], axis=-1, count=self.shape[1])
        return bits.astype(bool)

    def crop(self, rows: slice, cols: slice) -> SampleMask:
        """The mask of a region of the image."""
        part = self.unpack(rows)[:, cols]
        return SampleMask(part, (part.shape[0], part.shape[1]))

    def _centre_range(self, patch: int) -> tuple[int, int, int, int]:
        """First and last allowed centre row and column (inclusive) for ``patch``."""
        h, w = self.shape
        half = patch // 2
        return half, h - patch + half, half, w - patch + half

    def row_counts(self, patch: int) -> np.ndarray:
        """Cumulative counts of allowed centres, row by row of the allowed centre rows."""
        if patch not in self._counts:
            y0, y1, x0, x1 = self._centre_range(patch)
            counts = []
            for start in range(y0, y1 + 1, _MASK_BLOCK_ROWS):
                block = self.unpack(slice(start, min(start + _MASK_BLOCK_ROWS, y1 + 1)))
                counts.append(block[:, x0 : x1 + 1].sum(axis=1))
            joined = np.concatenate(counts) if counts else np.zeros(0, np.int64)
            self._counts[patch] = np.cumsum(joined, dtype=np.int64)
        return self._counts[patch]

    def allowed(self, patch: int) -> int:
        """How many top-left positions of a ``patch``-sized patch have their centre inside."""
        counts = self.row_counts(patch)
        return int(counts[-1]) if counts.size else 0

    def position(self, u: float, patch: int) -> tuple[int, int]:
        """The top-left corner ``(y, x)`` of the allowed position at quantile ``u`` in [0, 1)
        (positions ordered row by row)."""
        counts = self.row_counts(patch)
        total = int(counts[-1])
        k = min(int(u * total), total - 1)
        row = int(np.searchsorted(counts, k, side="right"))
        before = int(counts[row - 1]) if row > 0 else 0
        y0, _, x0, x1 = self._centre_range(patch)
        inside = np.flatnonzero(self.unpack(slice(y0 + row, y0 + row + 1))[0, x0 : x1 + 1])
        half = patch // 2
        return y0 + row - half, x0 + int(inside[k - before]) - half


class PatchImage:
    """One training image ``(C, H, W)`` that hands out patches, with an optional sample mask.

    Parameters
    ----------
    channels
        ``C`` 2D arrays ``(H, W)`` of equal shape: normalised float32 arrays in memory, or
        read-only views over memory maps in the file's data type.
    normalization
        Applied to every patch cut (float64 arithmetic, then float32, as
        :meth:`RobustNormalization.apply` does for a whole image); None when ``channels`` are
        normalised already.
    mask
        Where patch centres may lie, or None for anywhere.
    maps
        The memory maps the channels read from, released after each batch.
    source
        The file the image comes from (named when a patch holds NaN or infinite values).
    """

    ndim = 3

    def __init__(
        self,
        channels: Sequence[np.ndarray],
        *,
        normalization: RobustNormalization | None = None,
        mask: SampleMask | None = None,
        maps: Sequence[MappedMrc] = (),
        source: str | None = None,
    ) -> None:
        self.channels = tuple(channels)
        shapes = {tuple(c.shape) for c in self.channels}
        if len(shapes) != 1 or len(next(iter(shapes))) != 2:
            raise ParameterError(f"channels must be 2D arrays of one shape, got {sorted(shapes)}")
        self.normalization = normalization
        self.mask = mask
        self.maps = tuple(maps)
        self.source = source

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(C, H, W)``."""
        h, w = self.channels[0].shape
        return len(self.channels), int(h), int(w)

    def _normalised(self, part: np.ndarray) -> np.ndarray:
        if self.normalization is None:
            return np.array(part, dtype=np.float32)
        return self.normalization.apply(part)

    def patch(self, y: int, x: int, size: int) -> np.ndarray:
        """The normalised ``(C, size, size)`` float32 patch at top-left ``(y, x)``.

        Raises
        ------
        InputFileError
            If the patch holds NaN or infinite values (file-backed images are only sampled
            for them when built), naming :attr:`source`.
        """
        out = np.stack([self._normalised(c[y : y + size, x : x + size]) for c in self.channels])
        if not np.isfinite(out).all():
            problem = f"contains NaN or infinite values (in the {size}-pixel patch at y={y}, x={x})"
            raise InputFileError(self.source or "training image", problem)
        return out

    def load(self) -> np.ndarray:
        """The whole normalised image ``(C, H, W)`` (reads every pixel: for small images)."""
        return np.stack([self._normalised(c) for c in self.channels])

    def crop(self, rows: slice, cols: slice) -> PatchImage:
        """The image of a region (views, nothing read), with its mask cropped alike."""
        return PatchImage(
            [c[rows, cols] for c in self.channels],
            normalization=self.normalization,
            mask=None if self.mask is None else self.mask.crop(rows, cols),
            maps=self.maps,
            source=self.source,
        )

    def release(self) -> None:
        """Hand the mapped pages read so far back to the page cache."""
        for mapped in self.maps:
            mapped.release()


def patch_sources(images: Sequence[Any]) -> list[torch.Tensor | PatchImage]:
    """What :func:`sample_patches` draws from for each image: a :class:`PatchImage` as it is,
    an array as a tensor sharing its memory (converted once, not at every batch)."""
    return [
        im if isinstance(im, PatchImage) else torch.from_numpy(np.ascontiguousarray(im))
        for im in images
    ]


def _weight(source: torch.Tensor | PatchImage, patch: int) -> float:
    """An image's chance of being picked: its area, times the share of patch positions its
    sample mask allows."""
    h, w = int(source.shape[-2]), int(source.shape[-1])
    mask = source.mask if isinstance(source, PatchImage) else None
    if mask is None:
        return float(h * w)
    return float(h * w) * mask.allowed(patch) / float((h - patch + 1) * (w - patch + 1))


def sample_patches(
    images: Sequence[np.ndarray | torch.Tensor | PatchImage],
    *,
    patch: int,
    batch: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """Draw ``batch`` random ``patch × patch`` patches with random flips and 90° rotations.

    An image is picked with probability proportional to its area (times the share of
    positions its sample mask allows), then a uniformly random allowed position, then one of
    the 8 symmetries of the square, applied identically to all channels.

    Parameters
    ----------
    images
        Arrays or tensors ``(C, H, W)``, or :class:`PatchImage` objects (all with the same
        ``C``), each at least ``patch`` on both sides.
    patch
        Patch side in pixels.
    batch
        Number of patches.
    generator
        CPU torch generator; the draw depends on nothing else.

    Returns
    -------
    torch.Tensor
        ``(batch, C, patch, patch)`` float32 on the CPU.

    Raises
    ------
    ParameterError
        For no images, a shape that is not ``(C, H, W)``, an image smaller than the patch, or
        sample masks that leave no allowed position.
    """
    if not images:
        raise ParameterError("no images to sample patches from")
    sources: list[torch.Tensor | PatchImage] = [
        im if isinstance(im, PatchImage) else torch.as_tensor(np.asarray(im, dtype=np.float32))
        for im in images
    ]
    for s in sources:
        if len(s.shape) != 3:
            raise ParameterError(f"images must be (C, H, W), got shape {tuple(s.shape)}")
        if s.shape[-2] < patch or s.shape[-1] < patch:
            raise ParameterError(
                f"patch size {patch} is larger than an image of {s.shape[-2]}×{s.shape[-1]}"
            )
    weights = [_weight(s, patch) for s in sources]
    if not any(w > 0 for w in weights):
        raise ParameterError(
            f"the sample masks leave no room for the centre of a {patch}-pixel patch"
        )
    areas = torch.tensor(weights, dtype=torch.float64)
    which = torch.multinomial(areas, batch, replacement=True, generator=generator)
    draws = torch.rand(batch, 3, generator=generator, dtype=torch.float64)
    out = torch.empty(batch, sources[0].shape[0], patch, patch, dtype=torch.float32)
    touched: dict[int, PatchImage] = {}
    for i in range(batch):
        s = sources[int(which[i])]
        h, w = int(s.shape[-2]), int(s.shape[-1])
        mask = s.mask if isinstance(s, PatchImage) else None
        if mask is None:
            y = min(int(draws[i, 0] * (h - patch + 1)), h - patch)
            x = min(int(draws[i, 1] * (w - patch + 1)), w - patch)
        else:
            y, x = mask.position(float(draws[i, 0]), patch)
        sym = min(int(draws[i, 2] * 8), 7)
        if isinstance(s, PatchImage):
            p = torch.from_numpy(s.patch(y, x, patch))
            touched[id(s)] = s
        else:
            p = s[:, y : y + patch, x : x + patch]
        if sym >= 4:
            p = torch.flip(p, dims=(-1,))
        out[i] = torch.rot90(p, k=sym % 4, dims=(-2, -1))
    for image in touched.values():
        image.release()
    return out
