"""RELION STAR files of micrographs (and other per-file tables), read and written by `starfile`.

A RELION 3.1, 4 or 5 ``micrographs.star`` holds a ``data_optics`` block and a
``data_micrographs`` block; a RELION 3.0 file holds one unnamed block. Paths in it are relative
to the RELION project folder (where ``relion`` runs), so they are resolved against a
``project_dir`` (the current folder by default).

Outputs keep the whole file: every block and every column stay, the denoised file's path goes
into ``rlnMicrographName`` and the path it replaced into ``rlnMicrographNameRaw`` (RELION keeps
labels it does not know), so later jobs can use either.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import starfile

from cryoden.errors import InputFileError, ParameterError
from cryoden.io.atomic import atomic_output

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]

#: The per-micrograph block of RELION >= 3.1 files.
MICROGRAPHS_BLOCK = "micrographs"
#: The optics block of RELION >= 3.1 files.
OPTICS_BLOCK = "optics"
#: Path columns always read as text, so a name like ``0001`` is not turned into a number.
PATH_COLUMNS: tuple[str, ...] = (
    "rlnMicrographName",
    "rlnMicrographNameRaw",
    "rlnMicrographNameEven",
    "rlnMicrographNameOdd",
    "rlnMicrographMovieName",
    "rlnMicrographMetadata",
    "rlnTomoName",
    "rlnTomoReconstructedTomogram",
    "rlnTomoReconstructedTomogramHalf1",
    "rlnTomoReconstructedTomogramHalf2",
)

#: What starfile (and pandas beneath it) may raise for a file that is not a STAR file.
_PARSE_ERRORS = (ValueError, IndexError, KeyError, TypeError, UnicodeDecodeError, AttributeError)


@dataclass(frozen=True)
class MicrographsStar:
    """A STAR file as read: all its blocks, and which one holds one row per file.

    Attributes
    ----------
    path
        The STAR file.
    blocks
        Every data block as read, in file order, by block name (without ``data_``). A block of
        single values (no ``loop_``) is a one-row DataFrame here and is written back as such.
    table
        Name of the per-file block (``"micrographs"``; the single block of a RELION 3.0 file).
    simple_blocks
        Names of the blocks that were single values rather than loops.
    """

    path: Path
    blocks: dict[str, pd.DataFrame]
    table: str
    simple_blocks: frozenset[str] = field(default_factory=frozenset)

    @property
    def micrographs(self) -> pd.DataFrame:
        """The per-file table (one row per micrograph, tomogram, ...)."""
        return self.blocks[self.table]

    @property
    def optics(self) -> pd.DataFrame | None:
        """The ``data_optics`` block, or None (RELION 3.0 files have none)."""
        return self.blocks.get(OPTICS_BLOCK)

    def __len__(self) -> int:
        return len(self.micrographs)


def _read_blocks(path: Path, required: Sequence[str]) -> tuple[dict[str, pd.DataFrame], set[str]]:
    """Every block of ``path`` as a DataFrame, and the names of the single-value blocks."""
    if not path.exists():
        raise InputFileError(path, "no such file")
    if not path.is_file():
        raise InputFileError(path, "not a regular file")
    as_text = sorted(set(PATH_COLUMNS) | set(required))
    try:
        raw = starfile.read(path, always_dict=True, parse_as_string=as_text)
    except OSError as exc:
        raise InputFileError(path, f"cannot be read ({exc})") from exc
    except _PARSE_ERRORS as exc:
        raise InputFileError(path, f"not a readable STAR file ({exc})") from exc
    if not isinstance(raw, dict) or not raw:
        raise InputFileError(path, "not a STAR file (no data_ blocks found)")
    blocks: dict[str, pd.DataFrame] = {}
    simple: set[str] = set()
    for name, block in raw.items():
        if isinstance(block, pd.DataFrame):
            blocks[str(name)] = block.reset_index(drop=True)
        elif isinstance(block, dict):
            blocks[str(name)] = pd.DataFrame([block])
            simple.add(str(name))
        else:
            raise InputFileError(path, f"block data_{name} could not be parsed")
    return blocks, simple


def _pick_table(path: Path, blocks: Mapping[str, pd.DataFrame], block: str | None) -> str:
    """The name of the per-file block: ``block`` when given, else the one block that is not
    ``optics``."""
    if block is not None:
        if block not in blocks:
            have = ", ".join(f"data_{b}" for b in blocks) or "none"
            raise InputFileError(path, f"has no data_{block} block (blocks: {have})")
        return block
    candidates = [b for b in blocks if b != OPTICS_BLOCK]
    if len(candidates) != 1:
        have = ", ".join(f"data_{b}" for b in blocks) or "none"
        raise InputFileError(path, f"cannot tell which block lists the files (blocks: {have})")
    return candidates[0]


def _check_optics_groups(path: Path, table: str, blocks: Mapping[str, pd.DataFrame]) -> None:
    """Refuse a row whose ``rlnOpticsGroup`` is not defined in ``data_optics``."""
    optics = blocks.get(OPTICS_BLOCK)
    rows = blocks[table]
    if optics is None or "rlnOpticsGroup" not in rows.columns or table == OPTICS_BLOCK:
        return
    if "rlnOpticsGroup" not in optics.columns:
        raise InputFileError(path, "data_optics has no rlnOpticsGroup column")
    known = {str(v) for v in optics["rlnOpticsGroup"]}
    for i, value in enumerate(rows["rlnOpticsGroup"]):
        if str(value) not in known:
            raise InputFileError(
                path,
                f"row {i + 1} of data_{table}: rlnOpticsGroup {value} is not in data_optics "
                f"(groups: {', '.join(sorted(known))})",
            )


def read_star_table(
    path: PathLike, *, block: str | None, required: Sequence[str]
) -> MicrographsStar:
    """Read a STAR file whose ``block`` lists one file per row (micrographs, tomograms, ...).

    Parameters
    ----------
    path
        The STAR file.
    block
        Name of the per-file block without ``data_`` (``"micrographs"``, ``"global"``); None:
        the one block other than ``data_optics``.
    required
        Columns the per-file block must have.

    Raises
    ------
    InputFileError
        If the file is missing, is not a STAR file, lacks the block or a required column, or a
        row names an optics group that ``data_optics`` does not define.
    """
    file = Path(path)
    blocks, simple = _read_blocks(file, required)
    table = _pick_table(file, blocks, block)
    columns = blocks[table].columns
    for name in required:
        if name not in columns:
            raise InputFileError(
                file, f"data_{table} has no column {name} (columns: {', '.join(columns)})"
            )
    _check_optics_groups(file, table, blocks)
    return MicrographsStar(path=file, blocks=blocks, table=table, simple_blocks=frozenset(simple))


def read_micrographs_star(
    path: PathLike, *, required: Sequence[str] = ("rlnMicrographName",)
) -> MicrographsStar:
    """Read a RELION micrographs STAR file (3.0: one block; 3.1-5: optics + micrographs).

    Raises
    ------
    InputFileError
        As :func:`read_star_table`; a file with several blocks but no ``data_micrographs``
        (a particles file, for instance) is refused.
    """
    file = Path(path)
    blocks, _ = _read_blocks(file, required)
    if MICROGRAPHS_BLOCK in blocks:
        block: str | None = MICROGRAPHS_BLOCK
    elif len(blocks) == 1:
        block = next(iter(blocks))
    else:
        have = ", ".join(f"data_{b}" for b in blocks)
        raise InputFileError(file, f"has no data_micrographs block (blocks: {have})")
    return read_star_table(file, block=block, required=required)


def _project_dir(project_dir: PathLike | None) -> Path:
    return Path(os.path.abspath(project_dir if project_dir is not None else Path.cwd()))


def star_paths(
    star: MicrographsStar,
    column: str = "rlnMicrographName",
    *,
    project_dir: PathLike | None = None,
) -> list[Path]:
    """The paths in ``column`` of the per-file block, resolved against ``project_dir``.

    Relative paths are taken relative to ``project_dir`` (default: the current folder, as
    RELION runs in its project folder); absolute paths stay as written.

    Raises
    ------
    InputFileError
        Naming the STAR file: a missing column, an empty value, or a path that does not exist
        (with its row, counted from 1).
    """
    table = star.micrographs
    if column not in table.columns:
        raise InputFileError(
            star.path, f"data_{star.table} has no column {column} (columns: {', '.join(table)})"
        )
    base = _project_dir(project_dir)
    paths: list[Path] = []
    for i, value in enumerate(table[column]):
        text = "" if pd.isna(value) else str(value).strip()
        if not text:
            raise InputFileError(star.path, f"row {i + 1}: {column} is empty")
        path = Path(text)
        if not path.is_absolute():
            path = base / path
        if not path.exists():
            raise InputFileError(star.path, f"row {i + 1}: {column} '{text}' does not exist")
        paths.append(path)
    return paths


def as_written(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` when it lies under it, else absolute."""
    absolute = Path(os.path.abspath(path))
    try:
        return str(absolute.relative_to(base))
    except ValueError:
        return str(absolute)


def write_star_with_outputs(
    star: MicrographsStar,
    outputs: Sequence[Path | None],
    out_path: PathLike,
    *,
    column: str = "rlnMicrographName",
    raw_column: str = "rlnMicrographNameRaw",
    project_dir: PathLike | None = None,
    extra_columns: Mapping[str, Sequence[Any]] | None = None,
) -> None:
    """Write ``star`` again with ``column`` pointing at each row's output.

    Every block and every column is kept. Row ``i`` of the per-file block gets
    ``outputs[i]`` in ``column`` (relative to ``project_dir`` when it lies under it, else
    absolute) and the value it had in ``raw_column`` (replacing an existing ``raw_column``);
    rows whose output is None (failed) are dropped. ``extra_columns`` adds (or replaces) one
    value per input row, such as a quality number. The file is written atomically.

    Raises
    ------
    ParameterError
        If ``outputs`` or an extra column does not have one entry per row, or ``column`` is not
        in the table.
    OutputFileError
        If the file cannot be written.
    """
    table = star.micrographs.copy()
    n = len(table)
    if len(outputs) != n:
        raise ParameterError(f"outputs must have one entry per row ({n}), got {len(outputs)}")
    if column not in table.columns:
        raise ParameterError(f"column {column} is not in data_{star.table} of {star.path}")
    extra = dict(extra_columns or {})
    for name, values in extra.items():
        if len(values) != n:
            raise ParameterError(
                f"extra column {name} must have one value per row ({n}), got {len(values)}"
            )
    if raw_column in table.columns:
        logger.warning(
            "%s: replacing its %s column with the paths in %s", star.path, raw_column, column
        )
    base = _project_dir(project_dir)
    raw = table[column].astype(str).tolist()
    table[column] = ["" if out is None else as_written(Path(out), base) for out in outputs]
    if raw_column in table.columns:
        table[raw_column] = raw
    else:
        table.insert(table.columns.get_loc(column) + 1, raw_column, raw)
    for name, values in extra.items():
        table[name] = list(values)
    keep = [out is not None for out in outputs]
    write_star_with_table(star, table[keep].reset_index(drop=True), out_path)


def write_star_with_table(star: MicrographsStar, table: Any, out_path: PathLike) -> None:
    """Write ``star`` to ``out_path`` (atomically) with its data table replaced by ``table``;
    every other block is written as read."""
    blocks: dict[str, Any] = {}
    for name, block in star.blocks.items():
        if name == star.table:
            blocks[name] = table
        elif name in star.simple_blocks:
            blocks[name] = block.iloc[0].to_dict()
        else:
            blocks[name] = block
    with atomic_output(out_path) as tmp:
        starfile.write(blocks, tmp)
