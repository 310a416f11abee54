"""What the batch commands over MRC files (``denoise``, ``filter``) share: every input checked
before any output is written, one output per input in OUTDIR with the input's geometry, the
and the output data type.

Output rules (stated in each command's help): outputs are float32 (MRC
mode 2) unless ``--dtype float16`` (mode 12, half the bytes) is asked for; an integer input
(int8, int16, uint16) still comes back as floating point, because processed values are not
integers, and the command says so in one line. The voxel size and origin are the input's; an
unknown voxel size (0 or not finite in the header) stays unknown, written as 0 (MRC's
"unknown"), never as NaN, with one warning line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cryoden.cli.common import check_output_folder, output_paths
from cryoden.cli.options import choice_option
from cryoden.errors import ParameterError
from cryoden.io import MrcData, read_mrc, write_mrc
from cryoden.io.mrc import WRITE_DTYPES
from cryoden.io.mrc_header import REAL_MODES, MrcHeader, default_max_bytes, screen_mrc
from cryoden.io.stacks import from_images

logger = logging.getLogger("cryoden.cli.batch")

#: MRC modes that hold integers (int8, int16, uint16).
INTEGER_MODES = {mode: name for mode, name in REAL_MODES.items() if "int" in name}


#: --dtype of the batch commands.
DTYPE = choice_option(
    "--dtype",
    "Output data type: float32 (MRC mode 2) or float16 (mode 12, half the disk; values beyond "
    "±65504 are refused) (default: float32).",
    WRITE_DTYPES,
)


def plan_outputs(inputs: Sequence[Path], out_dir: Path) -> tuple[list[Path], list[MrcHeader]]:
    """The output path and the MRC header (mode, shape) of each input: refuses
    colliding or self-overwriting outputs, an output folder that cannot be one, and any bad
    header, before any data is read."""
    outputs = output_paths(inputs, out_dir)
    check_output_folder(out_dir)
    budget = default_max_bytes()
    return outputs, [screen_mrc(Path(path), budget) for path in inputs]


@dataclass(frozen=True)
class InputNotes:
    """What a batch command says about its inputs once every check has passed: the integer
    modes among them, and the inputs without a voxel size."""

    integer_modes: tuple[str, ...]
    unknown_voxel_size: tuple[str, ...]
    dtype: str

    def log(self) -> None:
        """One info line on integer inputs, one warning line on unknown voxel sizes."""
        if self.integer_modes:
            logger.info(
                "%s input(s) written as %s: processed values are not integers (--dtype "
                "float16 halves the size)", "/".join(self.integer_modes), self.dtype,
            )  # fmt: skip
        if self.unknown_voxel_size:
            first, count = self.unknown_voxel_size[0], len(self.unknown_voxel_size)
            more = f" and {count - 1} more" if count > 1 else ""
            logger.warning(
                "%s%s: no voxel size in the header (0 or NaN); the output's stays unknown "
                "(written as 0)", first, more,
            )  # fmt: skip


def check_inputs(
    inputs: Sequence[Path],
    headers: Sequence[MrcHeader],
    dtype: str | None,
    check: Callable[[Path, MrcData], Any],
) -> InputNotes:
    """Read every input and ``check(path, mrc)`` it, before any output is written; return what
    to say about them (:meth:`InputNotes.log`, once the options are checked too)."""
    unknown: list[str] = []
    for path in inputs:
        mrc = read_mrc(path)
        check(path, mrc)
        if mrc.pixel_size_angstrom is None:
            unknown.append(Path(path).name)
    integer = sorted({INTEGER_MODES[h.mode] for h in headers if h.mode in INTEGER_MODES})
    return InputNotes(tuple(integer), tuple(unknown), dtype or "float32")


def write_output(
    out: Path,
    result: np.ndarray,
    mrc: MrcData,
    *,
    protected: Sequence[Path],
    dtype: str | None,
    labels: Sequence[str] = (),
) -> None:
    """Write ``result`` (the processed images of ``mrc``) to ``out`` with the input's voxel size
    and origin, as ``dtype`` (float32 when None). Values that float16 cannot hold are refused
    (one line naming ``--dtype``), never clipped."""
    try:
        write_mrc(
            out,
            from_images(result if result.ndim == 3 else result[None], mrc),
            voxel_size_angstrom=mrc.voxel_size_angstrom,
            origin_angstrom=mrc.origin_angstrom,
            protected=protected,
            labels=labels,
            dtype=dtype or "float32",
        )
    except ParameterError as exc:
        if dtype != "float16":
            raise
        raise ParameterError(f"--dtype float16: {Path(out).name}: {exc}") from None
