"""The per-file work of the batch commands over MRC files (``denoise``, ``filter``).

:class:`MrcFileJob` reads an MRC image or stack (header screened first), checks that it is 2D
images of at least a given size, applies a function to it and writes the result: the output
gets the input's voxel size and origin, the input's header labels followed by the output's key
(the proof of completeness, :mod:`cryoden.pipeline.completion`) and a history label, in float32
(MRC mode 2) or float16 (mode 12). An unknown voxel size stays unknown (written as 0). Output
folders (the mirrored input folders) are made as the first output lands in them, so a batch
whose every input fails leaves nothing behind."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cryoden.errors import InputFileError, ParameterError
from cryoden.io import MrcData, read_mrc, write_mrc
from cryoden.io.atomic import make_output_folder
from cryoden.io.mrc import WRITE_DTYPES
from cryoden.io.mrc_header import REAL_MODES, default_max_bytes, screen_mrc
from cryoden.io.stacks import from_images
from cryoden.pipeline.batch import BatchItem
from cryoden.pipeline.completion import KEY_LABEL_PREFIX, key_label

logger = logging.getLogger(__name__)

#: Smallest image side the tiled denoiser accepts, in pixels.
MIN_SIDE_PX = 3
#: MRC modes that hold integers (int8, int16, uint16), by mode number.
INTEGER_MODES = {mode: name for mode, name in REAL_MODES.items() if "int" in name}


@dataclass(frozen=True)
class MrcInput:
    """An input as read: its data and geometry, and its MRC mode's name when it holds
    integers (None for floating-point modes)."""

    mrc: MrcData
    integer_mode: str | None


def check_images(
    path: Path, data: np.ndarray, *, min_side_px: int = MIN_SIDE_PX, verb: str = "processing"
) -> None:
    """Refuse data that is not a 2D image or a stack of them, or is under ``min_side_px``
    pixels on a side (``verb`` names the work in the message)."""
    if data.ndim not in (2, 3):
        raise InputFileError(path, f"expected a 2D image or a stack, got {data.shape}")
    height, width = data.shape[-2:]
    if min(height, width) < min_side_px:
        raise InputFileError(
            path, f"is {width}x{height} pixels; {verb} needs at least {min_side_px} per side"
        )


class MrcFileJob:
    """Read an MRC input, apply ``compute`` to its data, write the result (see the module).

    Parameters
    ----------
    compute
        ``compute(source, data) -> result``: ``data`` is the input's float32 array ``(H, W)``
        or ``(N, H, W)``; the result has the same shape. Errors about the input raise
        :class:`~cryoden.errors.InputFileError` or :class:`~cryoden.errors.ParameterError`.
    dtype
        ``"float32"`` or ``"float16"``; values float16 cannot hold fail that file, naming
        ``dtype``.
    history_label
        The header label that says what made the output (``cryoden 0.1 denoise ...``).
    protected
        Files never to be written (the model); each item's own input is always protected.
    min_side_px, verb
        Smallest side accepted, and the work's name for the message that refuses a smaller
        image (:func:`check_images`).
    """

    def __init__(
        self,
        compute: Callable[[Path, np.ndarray], np.ndarray],
        *,
        dtype: str = "float32",
        history_label: str = "",
        protected: Sequence[Path] = (),
        min_side_px: int = 1,
        verb: str = "processing",
    ) -> None:
        if dtype not in WRITE_DTYPES:
            raise ParameterError(f"dtype must be one of {', '.join(WRITE_DTYPES)}, got {dtype!r}")
        self._compute = compute
        self.dtype = dtype
        self.history_label = history_label
        self.protected = tuple(Path(p) for p in protected)
        self.min_side_px = min_side_px
        self.verb = verb
        self._budget = default_max_bytes()

    def read(self, source: Path) -> MrcInput:
        """Screen the header, read the data (finite values only) and check its shape."""
        header = screen_mrc(Path(source), self._budget)
        mrc = read_mrc(source, max_bytes=self._budget)
        check_images(Path(source), mrc.data, min_side_px=self.min_side_px, verb=self.verb)
        return MrcInput(mrc, INTEGER_MODES.get(header.mode))

    def compute(self, source: Path, data: MrcInput) -> np.ndarray:
        """The result of ``compute`` on the input's data, checked for shape."""
        result = np.asarray(self._compute(Path(source), data.mrc.data), dtype=np.float32)
        if result.shape != data.mrc.data.shape:
            raise InputFileError(
                source, f"processing gave shape {result.shape}, expected {data.mrc.data.shape}"
            )
        return result

    def write(self, item: BatchItem, data: MrcInput, result: np.ndarray) -> dict[str, Any]:
        """Write ``result`` to ``item.output`` (atomically, key label included); return the
        input's facts: ``integer_mode`` and ``voxel_size_known``."""
        mrc = data.mrc
        make_output_folder(item.output.parent)
        # the input's history (less any key it carries: that was its own maker's), this
        # output's key, and what made it last (the header keeps the last ten labels)
        labels = [label for label in mrc.labels if not label.startswith(KEY_LABEL_PREFIX)]
        labels.append(key_label(item.key))
        labels += [self.history_label] if self.history_label else []
        try:
            write_mrc(
                item.output,
                from_images(result if result.ndim == 3 else result[None], mrc),
                voxel_size_angstrom=mrc.voxel_size_angstrom,
                origin_angstrom=mrc.origin_angstrom,
                protected=(item.source, *self.protected),
                labels=labels,
                dtype=self.dtype,
            )
        except ParameterError as exc:
            if self.dtype != "float32":
                raise ParameterError(f"dtype {self.dtype}: {exc}") from None
            raise
        return {
            "integer_mode": data.integer_mode,
            "voxel_size_known": mrc.pixel_size_angstrom is not None,
        }
