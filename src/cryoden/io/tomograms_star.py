"""RELION 5 ``tomograms.star``: which tomograms (and half tomograms) to train on or denoise.

RELION 5's reconstruction job writes a ``tomograms.star`` whose ``data_global`` block has one
row per tomogram: ``rlnTomoName``, the reconstructed tomogram ``rlnTomoReconstructedTomogram``
and, when half tomograms were made (for denoising), ``rlnTomoReconstructedTomogramHalf1`` and
``rlnTomoReconstructedTomogramHalf2``, with many other columns (tilt series, pixel size, ...).
Paths are relative to the RELION project folder, so they are resolved against a ``project_dir``
(the current folder by default).

Training Noise2Noise takes the halves; denoising takes the halves (denoised and averaged) or the
tomogram. The output file is the input with one column added,
``rlnTomoReconstructedTomogramDenoised``, pointing at each denoised tomogram; every other block
and column stays as it was. Files are read and written with :mod:`starfile`
(:func:`cryoden.io.star.read_star_table`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import starfile

from cryoden.errors import InputFileError, ParameterError
from cryoden.io.star import (
    MicrographsStar,
    as_written,
    read_star_table,
    star_paths,
    write_star_with_table,
)

PathLike = str | os.PathLike[str]

#: The per-tomogram block of a RELION 5 ``tomograms.star``.
GLOBAL_BLOCK = "global"
TOMOGRAM_COLUMN = "rlnTomoReconstructedTomogram"
HALF1_COLUMN = "rlnTomoReconstructedTomogramHalf1"
HALF2_COLUMN = "rlnTomoReconstructedTomogramHalf2"
#: The column cryoden adds: the denoised tomogram of each row.
DENOISED_COLUMN = "rlnTomoReconstructedTomogramDenoised"
NAME_COLUMN = "rlnTomoName"

#: What a caller needs from the file: ``"halves"`` (Noise2Noise training), ``"tomogram"``
#: (single-volume training), ``"either"`` (denoising: the halves when both are there, else the
#: tomogram).
Need = Literal["halves", "tomogram", "either"]


@dataclass(frozen=True)
class TomogramEntry:
    """One row: the tomogram's name and its files (None where the file has no such column)."""

    name: str
    tomogram: Path | None
    half1: Path | None
    half2: Path | None

    @property
    def halves(self) -> tuple[Path, Path] | None:
        """Both halves, or None."""
        if self.half1 is None or self.half2 is None:
            return None
        return self.half1, self.half2


@dataclass(frozen=True)
class TomogramsStar:
    """A ``tomograms.star`` as read: the whole file and its rows' tomograms."""

    star: MicrographsStar
    entries: tuple[TomogramEntry, ...]

    @property
    def path(self) -> Path:
        """The STAR file."""
        return self.star.path


def is_tomograms_star(path: PathLike) -> bool:
    """Whether ``path`` names a STAR file with a tomogram or half-tomogram column (read whole:
    these files are small)."""
    if Path(path).suffix.lower() != ".star" or not Path(path).is_file():
        return False
    try:
        star = read_star_table(path, block=_block(path), required=())
    except InputFileError:
        return False
    columns = set(star.micrographs.columns)
    return bool(columns & {TOMOGRAM_COLUMN, HALF1_COLUMN, HALF2_COLUMN})


def _block(path: PathLike) -> str | None:
    """``global`` when the file has that block, else None (the one non-optics block)."""
    try:
        names = starfile.read(path, always_dict=True).keys()
    except (OSError, ValueError, IndexError, KeyError, TypeError, UnicodeDecodeError):
        return None  # read_star_table reports an unreadable file in one line
    return GLOBAL_BLOCK if GLOBAL_BLOCK in names else None


def read_tomograms_star(
    path: PathLike, *, need: Need = "either", project_dir: PathLike | None = None
) -> TomogramsStar:
    """Read a ``tomograms.star`` and resolve the files ``need`` asks for.

    Raises
    ------
    InputFileError
        One line naming the STAR file: not a STAR file, no ``data_global`` (or single) block,
        a missing column (``need="halves"``: both halves; ``"tomogram"``: the tomogram;
        ``"either"``: the tomogram or both halves), an empty value, or a file that does not
        exist (with its row).
    """
    if need not in ("halves", "tomogram", "either"):
        raise ParameterError(f"need must be halves, tomogram or either, got {need!r}")
    required = {"halves": (HALF1_COLUMN, HALF2_COLUMN), "tomogram": (TOMOGRAM_COLUMN,)}
    star = read_star_table(path, block=_block(path), required=required.get(need, ()))
    columns = set(star.micrographs.columns)
    has_halves = {HALF1_COLUMN, HALF2_COLUMN} <= columns
    if need == "either" and not has_halves and TOMOGRAM_COLUMN not in columns:
        raise InputFileError(
            star.path,
            f"data_{star.table} has neither {TOMOGRAM_COLUMN} nor both {HALF1_COLUMN} and "
            f"{HALF2_COLUMN}",
        )
    use_halves = need == "halves" or (need == "either" and has_halves)
    use_tomogram = need == "tomogram" or (need == "either" and not has_halves)
    if len(star.micrographs) == 0:
        raise InputFileError(star.path, f"data_{star.table} lists no tomograms")

    def resolved(column: str, wanted: bool) -> list[Path | None]:
        if not wanted:
            return [None] * len(star.micrographs)
        return list(star_paths(star, column, project_dir=project_dir))

    tomograms = resolved(TOMOGRAM_COLUMN, use_tomogram)
    half1 = resolved(HALF1_COLUMN, use_halves)
    half2 = resolved(HALF2_COLUMN, use_halves)
    names = (
        [str(v) for v in star.micrographs[NAME_COLUMN]]
        if NAME_COLUMN in columns
        else [f"tomogram {i + 1}" for i in range(len(star.micrographs))]
    )
    entries = tuple(
        TomogramEntry(name, tomo, h1, h2)
        for name, tomo, h1, h2 in zip(names, tomograms, half1, half2)
    )
    return TomogramsStar(star=star, entries=entries)


def write_tomograms_star(
    tomograms: TomogramsStar,
    denoised: Sequence[PathLike | None],
    out_path: PathLike,
    *,
    project_dir: PathLike | None = None,
) -> None:
    """Write the STAR file again with :data:`DENOISED_COLUMN` set to each row's denoised
    tomogram (relative to ``project_dir`` when under it); rows without one (None: failed) are
    left out; every other block and column kept. Written atomically.

    Raises
    ------
    ParameterError
        If ``denoised`` does not have one path per row.
    OutputFileError
        If the file cannot be written.
    """
    star = tomograms.star
    table = star.micrographs.copy()
    if len(denoised) != len(table):
        raise ParameterError(
            f"denoised must have one path per row ({len(table)}), got {len(denoised)}"
        )
    base = Path(os.path.abspath(project_dir if project_dir is not None else Path.cwd()))
    table[DENOISED_COLUMN] = ["" if p is None else as_written(Path(p), base) for p in denoised]
    kept = table[[p is not None for p in denoised]].reset_index(drop=True)
    write_star_with_table(star, kept, out_path)
