"""Training and validation sets from training images: whole images held out, or a region of a
lone image; the checks every training run makes on them first, and what the model file records.

:func:`training_data` is what :func:`cryoden.training.loop.train` calls on its 2D inputs; the
volume counterpart is :func:`cryoden.training.volumes.volume_training_data`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cryoden.errors import InputFileError, ParameterError
from cryoden.models.normalization import NormalizationSpec
from cryoden.training.data import ImageDataset, PatchImage, TrainImage

__all__ = [
    "TrainingData",
    "check_patch_fits",
    "split_indices",
    "split_single_image",
    "training_data",
]

logger = logging.getLogger(__name__)


def split_indices(n: int, validation_fraction: float, *, seed: int) -> tuple[list[int], list[int]]:
    """Split ``n`` whole images into training and validation indices.

    ``round(n * validation_fraction)`` images (at least 1 when the fraction is positive, and
    always leaving one for training) are held out, chosen by a permutation seeded with
    ``seed``. Returns sorted index lists ``(train, validation)``.
    """
    if not 0.0 <= validation_fraction < 1.0:
        raise ParameterError(f"validation fraction must be in [0, 1), got {validation_fraction}")
    n_val = 0 if validation_fraction == 0 else max(1, round(n * validation_fraction))
    n_val = min(n_val, n - 1)
    if validation_fraction > 0 and n_val < 1:
        raise ParameterError(
            f"a validation split needs at least 2 images, got {n}; use validation fraction 0"
        )
    order = np.random.default_rng(seed).permutation(n)
    return sorted(int(i) for i in order[n_val:]), sorted(int(i) for i in order[:n_val])


@dataclass
class TrainingData:
    """The images of a training run and what the model file records about them.

    Attributes
    ----------
    train, validation
        ``(C, H, W)`` float32 arrays or :class:`PatchImage` objects (``validation`` may be
        empty).
    summary
        JSON-ready facts: channels and sources (for a dataset), image counts and shapes.
    normalization
        The dataset's normalisation, or ``None`` when arrays were given.
    pair_fit_on
        What the pair dataset's normalisation was fitted on (:data:`PAIR_FITS`), or ``None``
        (single images, or arrays).
    """

    train: list[TrainImage]
    validation: list[TrainImage]
    summary: dict[str, Any]
    normalization: NormalizationSpec | None
    pair_fit_on: str | None = None


def _as_arrays(images: ImageDataset | Sequence[TrainImage]) -> list[TrainImage]:
    if isinstance(images, ImageDataset):
        return list(images.images)
    return [im if isinstance(im, PatchImage) else np.asarray(im, dtype=np.float32) for im in images]


def check_patch_fits(images: ImageDataset | Sequence[TrainImage], patch: int) -> None:
    """Refuse, before training, an image smaller than the patch, naming its source file when
    the dataset knows it."""
    arrays = _as_arrays(images)
    for i, im in enumerate(arrays):
        if min(im.shape[-2:]) < patch:
            name = images.source_of(i) if isinstance(images, ImageDataset) else None
            problem = (
                f"image of {im.shape[-2]}×{im.shape[-1]} pixels is smaller than the patch "
                f"size {patch}; use a smaller patch"
            )
            if name is not None:
                raise InputFileError(name, problem)
            raise ParameterError(f"training image {i}: {problem}")


def split_single_image(
    image: TrainImage, validation_fraction: float, patch: int | None
) -> tuple[list[TrainImage], list[TrainImage]]:
    """Hold out a region of a lone training image for validation.

    The last ``validation_fraction`` of the image along its longer side (at least ``patch``
    pixels) is the validation image and the rest the training image, so validation patches
    never overlap training pixels. When the image cannot spare a region of ``patch`` pixels
    and keep ``patch`` for training, nothing is held out (the training loss stands in for the
    validation loss, and there is no early stopping). Either way, the log says which.
    """
    axis = -2 if image.shape[-2] >= image.shape[-1] else -1
    length = int(image.shape[axis])
    need = patch or 1
    n_val = max(need, round(length * validation_fraction))
    if length - n_val < need:
        logger.warning(
            "one training image of %d×%d pixels: too small to hold out a validation region of "
            "%d pixels; no validation (the training loss picks the best epoch, no early "
            "stopping)",
            image.shape[-2], image.shape[-1], need,
        )  # fmt: skip
        return [image], []
    cut = length - n_val
    whole = slice(None)
    train_region = (slice(None, cut), whole) if axis == -2 else (whole, slice(None, cut))
    val_region = (slice(cut, None), whole) if axis == -2 else (whole, slice(cut, None))
    logger.info(
        "one training image: its last %d %s (%.0f%%) are held out for validation",
        n_val, "rows" if axis == -2 else "columns", 100.0 * n_val / length,
    )  # fmt: skip
    if isinstance(image, PatchImage):
        return [image.crop(*train_region)], [image.crop(*val_region)]
    return (
        [np.ascontiguousarray(image[:, train_region[0], train_region[1]])],
        [np.ascontiguousarray(image[:, val_region[0], val_region[1]])],
    )


def _log_validation(which: str) -> None:
    if which == "none":
        logger.info("validation: none (the training loss picks the best epoch; no early stopping)")
    else:
        logger.info("validation: %s", which)


def training_data(
    train_images: ImageDataset | Sequence[TrainImage],
    val_images: ImageDataset | Sequence[TrainImage] | None,
    *,
    validation_fraction: float,
    seed: int,
    patch: int | None = None,
) -> TrainingData:
    """The training and validation arrays, checked to be ``(C, H, W)``, with their summary.

    Without ``val_images``, ``validation_fraction`` of the whole training images are held out
    (:func:`split_indices` with ``seed``); a single training image gives up a region instead
    (:func:`split_single_image`, at least ``patch`` pixels wide).

    Raises
    ------
    ParameterError
        For images that are not ``(C, H, W)``, or no training images.
    """
    summary: dict[str, Any] = {}
    if isinstance(train_images, ImageDataset):
        summary["channels"] = train_images.channels
        if train_images.fit_on is not None:
            summary["pair_normalization_fitted_on"] = train_images.fit_on
        if train_images.sources is not None:
            summary["sources"] = list(train_images.sources)
    train_list = _as_arrays(train_images)
    for im in train_list:
        if im.ndim != 3:
            raise ParameterError(f"training images must be (C, H, W), got shape {im.shape}")
    if val_images is None and len(train_list) == 1 and validation_fraction > 0:
        train_list, val_list = split_single_image(train_list[0], validation_fraction, patch)
        summary["validation"] = "held-out region of the one image" if val_list else "none"
    elif val_images is None:
        train_idx, val_idx = split_indices(len(train_list), validation_fraction, seed=seed)
        val_list = [train_list[i] for i in val_idx]
        train_list = [train_list[i] for i in train_idx]
        summary["validation"] = f"{len(val_list)} held-out image(s)" if val_list else "none"
        _log_validation(summary["validation"])
    else:
        val_list = _as_arrays(val_images)
        summary["validation"] = f"{len(val_list)} given image(s)" if val_list else "none"
        _log_validation(summary["validation"])
    for name, images in (("training", train_list), ("validation", val_list)):
        for im in images:
            if im.ndim != 3:
                raise ParameterError(f"{name} images must be (C, H, W), got shape {im.shape}")
    if not train_list:
        raise ParameterError("no training images")
    shapes = sorted({tuple(int(s) for s in im.shape[-2:]) for im in train_list + val_list})
    summary.update(
        {
            "n_train_images": len(train_list),
            "n_validation_images": len(val_list),
            "shapes": [list(s) for s in shapes],
        }
    )
    spec = getattr(train_images, "normalization", None)
    return TrainingData(train_list, val_list, summary, spec, getattr(train_images, "fit_on", None))
