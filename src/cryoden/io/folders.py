"""Collecting training images from folders and files of MRC images.

Images whose headers give different pixel sizes are used, with a warning that names two of
them: pixel sizes in headers are often placeholders (0 or 1 Å), and a denoiser learns noise in
pixels, so a mixed set can be what the user means; the warning makes a mistake visible.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cryoden.errors import InputFileError
from cryoden.io.inputs import MRC_SUFFIXES, is_mrc_name
from cryoden.io.mapped import MappedMrc
from cryoden.io.mrc import MrcData, read_mrc
from cryoden.io.stacks import as_images

logger = logging.getLogger(__name__)

#: Relative difference above which two pixel sizes count as different.
PIXEL_SIZE_TOLERANCE = 1e-3


class PixelSizes:
    """Remembers the first file's pixel size and warns once about a file that differs."""

    def __init__(self) -> None:
        self.first: tuple[str, float] | None = None
        self.warned = False

    def see(self, mrc: MrcData | MappedMrc) -> None:
        """Note ``mrc``'s pixel size (an unknown one is skipped)."""
        size = mrc.pixel_size_angstrom
        if size is None or self.warned:
            return
        if self.first is None:
            self.first = (str(mrc.path), size)
            return
        path, reference = self.first
        if abs(size - reference) > PIXEL_SIZE_TOLERANCE * reference:
            self.warned = True
            logger.warning(
                "training images have different pixel sizes: %s has %.4g Å, %s has %.4g Å",
                path, reference, str(mrc.path), size,
            )  # fmt: skip


def list_mrc_files(location: Path) -> list[Path]:
    """MRC files in a folder (sorted by name), or the file itself."""
    location = Path(location)
    if location.is_dir():
        files = sorted(p for p in location.iterdir() if p.is_file() and is_mrc_name(p))
        if not files:
            raise InputFileError(location, f"folder holds no MRC files ({', '.join(MRC_SUFFIXES)})")
        return files
    if not location.exists():
        raise InputFileError(location, "no such file or folder")
    return [location]


def read_images(locations: Sequence[Path]) -> tuple[list[np.ndarray], list[str]]:
    """Every 2D image in the given folders/files (stacks give one image per section)."""
    images: list[np.ndarray] = []
    names: list[str] = []
    sizes = PixelSizes()
    for location in locations:
        for path in list_mrc_files(location):
            mrc = read_mrc(path)
            sizes.see(mrc)
            stack = as_images(mrc)
            images.extend(stack)
            names.extend(
                [str(path)] if len(stack) == 1 else [f"{path}:{i}" for i in range(len(stack))]
            )
    return images, names


def read_pairs(a_dir: Path, b_dir: Path) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[str]]:
    """Noise2Noise pairs: files of the same name in folder ``a`` and folder ``b``."""
    a_files = {p.name: p for p in list_mrc_files(a_dir)}
    b_files = {p.name: p for p in list_mrc_files(b_dir)}
    unpaired = sorted(set(a_files) ^ set(b_files))
    if unpaired:
        first = unpaired[0]
        where, other = (a_dir, b_dir) if first in a_files else (b_dir, a_dir)
        counts = f"{a_dir} has {len(a_files)} images, {b_dir} has {len(b_files)}"
        more = f"; {len(unpaired) - 1} more unpaired" if len(unpaired) > 1 else ""
        raise InputFileError(
            Path(where) / first,
            f"has no partner of the same name in {other} ({counts}{more})",
        )
    sizes = PixelSizes()
    pairs: list[tuple[np.ndarray, np.ndarray]] = []
    names: list[str] = []
    for name in sorted(a_files):
        a_mrc, b_mrc = read_mrc(a_files[name]), read_mrc(b_files[name])
        sizes.see(a_mrc)
        sizes.see(b_mrc)
        a, b = as_images(a_mrc), as_images(b_mrc)
        if a.shape != b.shape:
            raise InputFileError(
                b_files[name],
                f"shape {b.shape} does not match its partner {a_files[name]} {a.shape}",
            )
        pairs.extend(zip(a, b))
        names.extend([name] if len(a) == 1 else [f"{name}:{i}" for i in range(len(a))])
    return pairs, names
