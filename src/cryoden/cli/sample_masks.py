"""``cryoden train --mask``: which parts of the training images patches may be drawn from.

``--mask auto`` computes a sample mask for every training image from its local intensity
statistics (:func:`cryoden.filters.sample_mask.sample_mask`: carbon, contamination, hole edges
and gold out); ``--mask FILE.mrc`` reads one: a 2D mask used for every image (all of its shape),
or a stack with one mask per training image, in the order the images are read (each section of
a stack is one image). Nonzero mask values are sample. Patch centres are then drawn only on the
sample (:class:`cryoden.training.data.SingleDataset`'s ``sample_masks``). ``--mask none`` (as
without the option) draws them anywhere.

The masks are made one image at a time, as the dataset asks for them, and kept packed, so that
memory does not grow with the number of micrographs.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, overload

import numpy as np

from cryoden.errors import InputFileError, ParameterError
from cryoden.filters.sample_mask import sample_mask
from cryoden.io import read_mrc
from cryoden.training.data import ImageDataset, SingleDataset

logger = logging.getLogger("cryoden.cli.train")

#: The ``--mask`` value that computes the masks from the images.
AUTO = "auto"
#: The ``--mask`` value for no mask (patches from anywhere, as without the option).
NONE = "none"

_SECTION = re.compile(r"^(?P<path>.+):(?P<index>\d+)$")


def _image_pixels(image: Any) -> np.ndarray:
    """The 2D pixels of a training image (a ``(1, H, W)`` array or a file-backed image)."""
    channels = getattr(image, "channels", None)
    view = channels[0] if channels is not None else np.asarray(image)[0]
    return np.asarray(view, dtype=np.float32)


class _Masks(Sequence[np.ndarray]):
    """One boolean mask per training image, made on demand by :meth:`_mask`; the sample
    fraction of each mask made is kept in ``fractions``."""

    fractions: list[float]

    def _mask(self, index: int) -> np.ndarray:
        raise NotImplementedError

    @overload
    def __getitem__(self, index: int) -> np.ndarray: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[np.ndarray]: ...
    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return self._mask(index)


class _AutoMasks(_Masks):
    """One :func:`~cryoden.filters.sample_mask.sample_mask` per image, computed on demand."""

    def __init__(self, dataset: ImageDataset) -> None:
        self.dataset = dataset
        self.fractions = []

    def __len__(self) -> int:
        return len(self.dataset)

    def _mask(self, index: int) -> np.ndarray:
        mask = sample_mask(_image_pixels(self.dataset.images[index]))
        self.fractions.append(float(mask.mean()))
        return mask


class _FileMasks(_Masks):
    """Masks read from one MRC file: one for all images, or one per image."""

    def __init__(self, path: Path, shapes: list[tuple[int, int]]) -> None:
        data = read_mrc(path).data
        if data.ndim == 2:
            data = data[None]
        if data.ndim != 3 or data.shape[0] not in (1, len(shapes)):
            raise InputFileError(
                path,
                f"a mask file holds one 2D mask for all images or one per training image "
                f"({len(shapes)}), got shape {data.shape}",
            )
        self.path, self.data, self.shapes = path, data, shapes
        self.fractions = []

    def __len__(self) -> int:
        return len(self.shapes)

    def _mask(self, index: int) -> np.ndarray:
        mask = self.data[0 if self.data.shape[0] == 1 else index] != 0
        if tuple(mask.shape) != tuple(self.shapes[index]):
            raise InputFileError(
                self.path,
                f"mask {index} is {mask.shape[1]}x{mask.shape[0]} pixels, training image "
                f"{index} {self.shapes[index][1]}x{self.shapes[index][0]}",
            )
        if not mask.any():
            raise InputFileError(self.path, f"mask {index} marks no pixel as sample")
        self.fractions.append(float(mask.mean()))
        return mask


def source_files(sources: Sequence[str]) -> list[str]:
    """The files of a file-backed dataset's image names (``path``, or ``path:i`` for the
    sections of a stack), each once, in order."""
    files: list[str] = []
    for name in sources:
        match = _SECTION.match(name)
        path = match.group("path") if match and not Path(name).exists() else name
        if not files or files[-1] != path:
            files.append(path)
    return files


def masked_dataset(dataset: ImageDataset, mask: str | Path) -> tuple[ImageDataset, dict[str, Any]]:
    """``dataset`` (single images read from files) again, with a sample mask per image from
    ``mask`` (``"auto"`` or an MRC file), and what the training record says about it.

    Raises
    ------
    InputFileError
        For a mask file that cannot be read, or whose masks do not fit the images.
    ParameterError
        For a dataset that was not read from files.
    """
    if dataset.sources is None or not isinstance(dataset, SingleDataset):
        raise ParameterError("--mask needs training images read from files")
    masks: _AutoMasks | _FileMasks
    if str(mask) == AUTO:
        masks = _AutoMasks(dataset)
    else:
        masks = _FileMasks(Path(mask), list(dataset.shapes))
    files = source_files(dataset.sources)
    masked = SingleDataset.from_files(
        files, normalization=dataset.normalization, sample_masks=masks
    )
    fractions = masks.fractions
    logger.info(
        "--mask %s: %.1f%% of the training pixels are sample (least %.1f%% in one image)",
        mask, 100.0 * float(np.mean(fractions)), 100.0 * min(fractions),
    )  # fmt: skip
    record = {
        "mask": str(mask),
        "mask_sample_fraction": round(float(np.mean(fractions)), 4),
    }
    return masked, record


def with_sample_masks(inputs: Any, mask: str | Path | None) -> Any:
    """The training inputs (:class:`cryoden.cli.train_inputs.TrainInputs`) with sample masks
    from ``--mask`` (unchanged when it is not given or ``none``)."""
    if mask is None or str(mask) == NONE:
        return inputs
    dataset, record = masked_dataset(inputs.dataset, mask)
    return replace(inputs, dataset=dataset, summary={**inputs.summary, **record})
