"""Training images: normalised pair and single-image datasets, and patch sampling.

Datasets hold each training image ``(C, H, W)``: ``C = 2`` for Noise2Noise pairs ``(a, b)``,
``C = 1`` for single images. Images given as arrays are held as normalised float32 arrays;
images given as files (``from_files``) stay in their files, memory-mapped and normalised patch
by patch (:mod:`cryoden.training.file_images`), so that memory does not grow with their number.
Either may carry a sample mask per image (``sample_masks``): patches are then drawn only where
their centre pixel is inside the mask. :func:`sample_patches`
(:mod:`cryoden.training.patches`) draws random patches with random flips and 90° rotations.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from cryoden.errors import InputFileError, ParameterError
from cryoden.models.normalization import NormalizationSpec
from cryoden.training.file_images import pair_images, single_images
from cryoden.training.patches import PatchImage, SampleMask, patch_sources, sample_patches

__all__ = [
    "PAIR_FITS",
    "ImageDataset",
    "PairDataset",
    "PatchImage",
    "SingleDataset",
    "TrainImage",
    "patch_sources",
    "sample_patches",
]

logger = logging.getLogger(__name__)

#: A training image: a normalised float32 array ``(C, H, W)``, or a :class:`PatchImage`
#: (memory-mapped, or carrying a sample mask).
TrainImage = np.ndarray | PatchImage
#: One optional boolean mask ``(H, W)`` per image, or None for no masks.
SampleMasks = Sequence[np.ndarray | None] | None


def _as_image(array: np.ndarray, what: str, source: str | None = None) -> np.ndarray:
    """``array`` as a float32 2D image; a non-finite one is refused, naming its ``source``
    file when known (:class:`InputFileError`), else ``what`` (:class:`ParameterError`)."""
    image = np.asarray(array, dtype=np.float32)
    if image.ndim != 2:
        raise ParameterError(f"{what} must be a 2D image, got shape {image.shape}")
    if not np.isfinite(image).all():
        bad = int(image.size - np.count_nonzero(np.isfinite(image)))
        problem = f"contains NaN or infinite values ({bad} of {image.size} pixels)"
        if source is not None:
            raise InputFileError(source, problem)
        raise ParameterError(f"{what} {problem}")
    return image


def _source(sources: list[str] | None, i: int) -> str | None:
    return sources[i] if sources is not None and i < len(sources) else None


def _with_mask(image: np.ndarray, masks: SampleMasks, i: int, what: str) -> TrainImage:
    """``image`` ``(C, H, W)`` as it is, or as a :class:`PatchImage` carrying mask ``i``."""
    given = None if masks is None else masks[i]  # read once: a lazy sequence may compute it
    if given is None:
        return image
    shape = (int(image.shape[-2]), int(image.shape[-1]))
    mask = SampleMask(np.asarray(given), shape, what=f"sample mask of {what}")
    return PatchImage(list(image), mask=mask)


def _check_masks(masks: SampleMasks, n: int) -> None:
    if masks is not None and len(masks) != n:
        raise ParameterError(f"sample_masks must have one entry per image ({n}), got {len(masks)}")


class ImageDataset:
    """Normalised training images ``(C, H, W)`` and what the model file should record.

    Build one with :class:`PairDataset` or :class:`SingleDataset`.
    """

    channels: int = 1
    #: How each pair's normalisation was fitted (:data:`PAIR_FITS`); ``None`` for single images.
    fit_on: str | None = None

    def __init__(
        self,
        images: list[TrainImage],
        normalization: NormalizationSpec,
        sources: list[str] | None = None,
    ) -> None:
        self.images = images
        self.normalization = normalization
        self.sources = sources

    def __len__(self) -> int:
        return len(self.images)

    def source_of(self, i: int) -> str | None:
        """The file image ``i`` was read from, or ``None`` when the dataset does not know it."""
        return _source(self.sources, i)

    @property
    def shapes(self) -> list[tuple[int, int]]:
        """``(H, W)`` of each image."""
        return [(int(im.shape[-2]), int(im.shape[-1])) for im in self.images]

    def subset(self, indices: Sequence[int]) -> ImageDataset:
        """A dataset of the images at ``indices`` (same class and normalisation)."""
        out = object.__new__(type(self))
        ImageDataset.__init__(
            out,
            [self.images[i] for i in indices],
            self.normalization,
            None if self.sources is None else [self.sources[i] for i in indices],
        )
        out.fit_on = self.fit_on
        return out

    def summary(self) -> dict[str, Any]:
        """JSON-ready description: count, distinct shapes, channels."""
        shapes = sorted({tuple(s) for s in self.shapes})
        return {
            "n_images": len(self),
            "shapes": [list(s) for s in shapes],
            "channels": self.channels,
        }


#: How a pair's one set of normalisation parameters is fitted: ``"both"`` on the pixels of both
#: images (Noise2Noise: two noisy images), ``"a"`` on the input ``a`` alone (CARE: ``b`` clean).
PAIR_FITS: tuple[str, ...] = ("both", "a")


def _check_fit_on(fit_on: str) -> None:
    if fit_on not in PAIR_FITS:
        raise ParameterError(f"fit_on must be one of {', '.join(PAIR_FITS)}, got {fit_on!r}")


class PairDataset(ImageDataset):
    """Pairs ``(a, b)``, each normalised with one set of parameters applied to both images.

    Both images of a pair get the same center and scale, so the target stays consistent with the
    input. With ``fit_on="both"`` (Noise2Noise pairs of two noisy images) the parameters are
    fitted on the pixels of ``a`` and ``b`` together, which matches what a single noisy image
    gets at inference. With ``fit_on="a"`` (supervised pairs: ``a`` noisy, ``b`` clean) they are
    fitted on ``a`` alone: a noisy image is normalised at inference exactly as ``a`` was in
    training, so the output, mapped back, is in the noisy image's intensity scale.

    Parameters
    ----------
    pairs
        Sequence of ``(a, b)`` 2D arrays of equal shape (shapes may differ between pairs).
    normalization
        The normalisation method.
    sources
        Optional names of the pairs (file paths), kept for the model file's summary.
    fit_on
        ``"both"`` or ``"a"`` (:data:`PAIR_FITS`): what the normalisation is fitted on. A
        training scheme names the one it needs (its ``pair_fit_on``; ``"a"`` for CARE).
    sample_masks
        Optional boolean mask ``(H, W)`` (or None) per pair: patch centres are drawn only
        inside it.
    """

    channels = 2

    def __init__(
        self,
        pairs: Sequence[tuple[np.ndarray, np.ndarray]],
        *,
        normalization: NormalizationSpec | None = None,
        sources: list[str] | None = None,
        fit_on: str = "both",
        sample_masks: SampleMasks = None,
    ) -> None:
        _check_fit_on(fit_on)
        _check_masks(sample_masks, len(pairs))
        spec = normalization or NormalizationSpec()
        images: list[TrainImage] = []
        for i, (a, b) in enumerate(pairs):
            name = _source(sources, i)
            a = _as_image(a, f"pair {i} image a", None if name is None else f"{name} (a)")
            b = _as_image(b, f"pair {i} image b", None if name is None else f"{name} (b)")
            if a.shape != b.shape:
                where = f"pair {i}" if name is None else name
                raise ParameterError(f"{where}: a has shape {a.shape} but b has {b.shape}")
            norm = spec.fit(np.stack([a, b]) if fit_on == "both" else a)
            pair = np.stack([norm.apply(a), norm.apply(b)])
            images.append(_with_mask(pair, sample_masks, i, name or f"pair {i}"))
        if not images:
            raise ParameterError("no training pairs given")
        super().__init__(images, spec, sources)
        self.fit_on = fit_on

    @classmethod
    def from_files(
        cls,
        pairs: Sequence[tuple[str | os.PathLike[str], str | os.PathLike[str]]],
        *,
        normalization: NormalizationSpec | None = None,
        fit_on: str = "both",
        sample_masks: SampleMasks = None,
        scratch_dir: str | os.PathLike[str] | None = None,
    ) -> PairDataset:
        """Pairs of MRC files ``(a, b)`` of equal shape, read patch by patch from memory maps
        (:mod:`cryoden.training.file_images`); each section of a stack is one pair, and
        ``sample_masks`` has one entry per section. ``scratch_dir`` takes decompressed copies
        of gzip/bzip2 files. Sources are the ``a`` paths."""
        _check_fit_on(fit_on)
        spec = normalization or NormalizationSpec()
        images, names = pair_images(
            pairs, spec, fit_on=fit_on, sample_masks=sample_masks, scratch_dir=scratch_dir
        )
        dataset = object.__new__(cls)
        ImageDataset.__init__(dataset, list(images), spec, names)
        dataset.fit_on = fit_on
        return dataset

    @classmethod
    def from_stacks(
        cls,
        a: np.ndarray,
        b: np.ndarray,
        *,
        normalization: NormalizationSpec | None = None,
        fit_on: str = "both",
    ) -> PairDataset:
        """Pairs from two stacks ``(N, H, W)`` (or two single images)."""
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape:
            raise ParameterError(f"stack a has shape {a.shape} but stack b has {b.shape}")
        if a.ndim == 2:
            a, b = a[None], b[None]
        return cls(list(zip(a, b)), normalization=normalization, fit_on=fit_on)


class SingleDataset(ImageDataset):
    """Single noisy images (Noise2Void, Neighbor2Neighbor), each normalised on its own.

    Parameters
    ----------
    images
        Sequence of 2D arrays, or one stack ``(N, H, W)``.
    normalization
        The normalisation method.
    sources
        Optional names of the images.
    sample_masks
        Optional boolean mask ``(H, W)`` (or None) per image: patch centres are drawn only
        inside it.
    """

    channels = 1

    def __init__(
        self,
        images: Sequence[np.ndarray] | np.ndarray,
        *,
        normalization: NormalizationSpec | None = None,
        sources: list[str] | None = None,
        sample_masks: SampleMasks = None,
    ) -> None:
        _check_masks(sample_masks, len(images))
        spec = normalization or NormalizationSpec()
        arrays: list[TrainImage] = []
        for i, image in enumerate(images):
            image = _as_image(image, f"image {i}", _source(sources, i))
            normalised = spec.fit(image).apply(image)[None]
            what = _source(sources, i) or f"image {i}"
            arrays.append(_with_mask(normalised, sample_masks, i, what))
        if not arrays:
            raise ParameterError("no training images given")
        super().__init__(arrays, spec, sources)

    @classmethod
    def from_files(
        cls,
        paths: Sequence[str | os.PathLike[str]],
        *,
        normalization: NormalizationSpec | None = None,
        sample_masks: SampleMasks = None,
        scratch_dir: str | os.PathLike[str] | None = None,
    ) -> SingleDataset:
        """MRC files read patch by patch from memory maps
        (:mod:`cryoden.training.file_images`); each section of a stack or volume is one image,
        and ``sample_masks`` has one entry per section. ``scratch_dir`` takes decompressed
        copies of gzip/bzip2 files. Sources are ``path`` (``path:i`` for sections)."""
        spec = normalization or NormalizationSpec()
        images, names = single_images(
            paths, spec, sample_masks=sample_masks, scratch_dir=scratch_dir
        )
        dataset = object.__new__(cls)
        ImageDataset.__init__(dataset, list(images), spec, names)
        return dataset
