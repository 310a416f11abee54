"""Training images that stay in their files: memory-mapped, normalised from a sample of rows.

Each file is mapped (:func:`cryoden.io.mapped.map_mrc`); each section of it (one for a 2D
micrograph, ``N`` for a stack or volume) becomes one :class:`~cryoden.training.patches.PatchImage`
that cuts and normalises patches on demand. The per-image normalisation
(:class:`~cryoden.models.normalization.NormalizationSpec`) is fitted on a sample of pixels:
every row of an image of at most :data:`FIT_SAMPLE_PIXELS` pixels (the same numbers as an image
read whole), else that many pixels in evenly spaced whole rows. Only the sampled rows are
checked for NaN or infinite values; the rest is read when patches are cut. Memory then holds
a few kilobytes per image, whatever the number and size of the files.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cryoden.errors import InputFileError, ParameterError
from cryoden.io.folders import PixelSizes
from cryoden.io.mapped import MappedMrc, map_mrc
from cryoden.models.normalization import NormalizationSpec
from cryoden.training.patches import PatchImage, SampleMask

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]
MaskList = Sequence[np.ndarray | None] | None

#: Pixels of an image the normalisation is fitted on (whole rows, evenly spaced).
FIT_SAMPLE_PIXELS = 1 << 20


def sample_rows(height: int, width: int, max_pixels: int = FIT_SAMPLE_PIXELS) -> np.ndarray:
    """Indices of the rows a ``height × width`` image is sampled on: all when it has at most
    ``max_pixels`` pixels, else ``ceil(max_pixels / width)`` evenly spaced rows."""
    if height * width <= max_pixels:
        return np.arange(height)
    n = min(height, -(-max_pixels // width))
    return np.unique(np.linspace(0, height - 1, n).round().astype(np.int64))


def _sample(view: np.ndarray, source: str) -> np.ndarray:
    """The sampled rows of a mapped 2D image, refused when any is NaN or infinite."""
    rows = np.asarray(view[sample_rows(*view.shape)])
    finite = np.isfinite(rows)
    if not finite.all():
        bad = int(rows.size - np.count_nonzero(finite))
        raise InputFileError(
            source, f"contains NaN or infinite values ({bad} of {rows.size} sampled pixels)"
        )
    return rows


def _name(path: Path, index: int, sections: int) -> str:
    return str(path) if sections == 1 else f"{path}:{index}"


def _mask(masks: MaskList, i: int, shape: tuple[int, int], name: str) -> SampleMask | None:
    mask = None if masks is None else masks[i]  # read once: a lazy sequence may compute it
    if mask is None:
        return None
    return SampleMask(np.asarray(mask), shape, what=f"sample mask of {name}")


def _check_mask_count(masks: MaskList, n: int) -> None:
    if masks is not None and len(masks) != n:
        raise ParameterError(f"sample_masks must have one entry per image ({n}), got {len(masks)}")


def _map(path: PathLike, scratch_dir: PathLike | None, sizes: PixelSizes) -> MappedMrc:
    mapped = map_mrc(path, scratch_dir=scratch_dir)
    sizes.see(mapped)
    return mapped


def single_images(
    paths: Sequence[PathLike],
    spec: NormalizationSpec,
    *,
    sample_masks: MaskList = None,
    scratch_dir: PathLike | None = None,
) -> tuple[list[PatchImage], list[str]]:
    """One :class:`PatchImage` per section of each file, each normalised on its own sample;
    with their names (``path``, or ``path:i`` for the sections of a stack)."""
    sizes = PixelSizes()
    images: list[PatchImage] = []
    names: list[str] = []
    mapped_files = [_map(p, scratch_dir, sizes) for p in paths]
    _check_mask_count(sample_masks, sum(int(m.data.shape[0]) for m in mapped_files))
    for mapped in mapped_files:
        sections = int(mapped.data.shape[0])
        for k in range(sections):
            name = _name(mapped.path, k, sections)
            view = mapped.data[k]
            norm = spec.fit(_sample(view, name))
            mask = _mask(sample_masks, len(images), view.shape, name)
            images.append(
                PatchImage([view], normalization=norm, mask=mask, maps=(mapped,), source=name)
            )
            names.append(name)
        mapped.release()
    if not images:
        raise ParameterError("no training images given")
    logger.debug("%d training images from %d files, read patch by patch", len(images), len(paths))
    return images, names


def pair_images(
    pairs: Sequence[tuple[PathLike, PathLike]],
    spec: NormalizationSpec,
    *,
    fit_on: str,
    sample_masks: MaskList = None,
    scratch_dir: PathLike | None = None,
) -> tuple[list[PatchImage], list[str]]:
    """One two-channel :class:`PatchImage` per section of each pair of files ``(a, b)``, both
    channels normalised with one set of parameters fitted on the samples of ``a`` and ``b``
    (``fit_on="both"``) or of ``a`` alone (``"a"``); named after ``a``."""
    sizes = PixelSizes()
    mapped_pairs = [(_map(a, scratch_dir, sizes), _map(b, scratch_dir, sizes)) for a, b in pairs]
    for a, b in mapped_pairs:
        if a.data.shape != b.data.shape:
            raise InputFileError(
                b.path, f"shape {b.data.shape} does not match its partner {a.path} {a.data.shape}"
            )
    _check_mask_count(sample_masks, sum(int(a.data.shape[0]) for a, _ in mapped_pairs))
    images: list[PatchImage] = []
    names: list[str] = []
    for a, b in mapped_pairs:
        sections = int(a.data.shape[0])
        for k in range(sections):
            name = _name(a.path, k, sections)
            a_rows = _sample(a.data[k], f"{name} (a)")
            b_rows = _sample(b.data[k], f"{_name(b.path, k, sections)} (b)")
            norm = spec.fit(np.stack([a_rows, b_rows]) if fit_on == "both" else a_rows)
            mask = _mask(sample_masks, len(images), a.data[k].shape, name)
            images.append(
                PatchImage(
                    [a.data[k], b.data[k]], normalization=norm, mask=mask, maps=(a, b), source=name
                )
            )
            names.append(name)
        a.release()
        b.release()
    if not images:
        raise ParameterError("no training pairs given")
    logger.debug(
        "%d training pairs from %d file pairs, read patch by patch", len(images), len(pairs)
    )
    return images, names


def centre_crop(path: PathLike, side_px: int) -> np.ndarray:
    """The centre ``side_px × side_px`` of a file's first section as float32 (raw values), read
    from its map: what a preview shows without reading the whole micrograph."""
    mapped = map_mrc(path)
    image = mapped.data[0]
    h, w = image.shape
    top, left = max((h - side_px) // 2, 0), max((w - side_px) // 2, 0)
    crop = np.array(image[top : top + side_px, left : left + side_px], dtype=np.float32)
    mapped.release()
    return crop
