"""Collecting training images from folders and files of MRC images."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cryoden.errors import InputFileError
from cryoden.io.mrc import read_mrc
from cryoden.io.stacks import as_images

MRC_SUFFIXES = (".mrc", ".mrcs", ".map")


def list_mrc_files(location: Path) -> list[Path]:
    """MRC files in a folder (sorted by name), or the file itself."""
    location = Path(location)
    if location.is_dir():
        files = sorted(p for p in location.iterdir() if p.suffix.lower() in MRC_SUFFIXES)
        if not files:
            raise InputFileError(location, "folder holds no .mrc/.mrcs files")
        return files
    if not location.exists():
        raise InputFileError(location, "no such file or folder")
    return [location]


def read_images(locations: Sequence[Path]) -> tuple[list[np.ndarray], list[str]]:
    """Every 2D image in the given folders/files (stacks give one image per section)."""
    images: list[np.ndarray] = []
    names: list[str] = []
    for location in locations:
        for path in list_mrc_files(location):
            stack = as_images(read_mrc(path))
            images.extend(stack)
            names.extend(
                [str(path)] if len(stack) == 1 else [f"{path}:{i}" for i in range(len(stack))]
            )
    return images, names


def read_pairs(a_dir: Path, b_dir: Path) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[str]]:
    """Noise2Noise pairs: files of the same name in folder ``a`` and folder ``b``."""
    a_files = {p.name: p for p in list_mrc_files(a_dir)}
    b_files = {p.name: p for p in list_mrc_files(b_dir)}
    missing = sorted(set(a_files) ^ set(b_files))
    if missing:
        where = a_dir if missing[0] not in a_files else b_dir
        other = b_dir if where == a_dir else a_dir
        raise InputFileError(
            Path(where) / missing[0], f"has no partner of the same name in {other}"
        )
    pairs: list[tuple[np.ndarray, np.ndarray]] = []
    names: list[str] = []
    for name in sorted(a_files):
        a = as_images(read_mrc(a_files[name]))
        b = as_images(read_mrc(b_files[name]))
        if a.shape != b.shape:
            raise InputFileError(
                b_files[name],
                f"shape {b.shape} does not match its partner {a_files[name]} {a.shape}",
            )
        pairs.extend(zip(a, b))
        names.extend([name] if len(a) == 1 else [f"{name}:{i}" for i in range(len(a))])
    return pairs, names
