"""What the user names as inputs, expanded into the list of image files to read.

An input spec is one of:

- an MRC file (any name: its content decides whether it can be read);
- a folder: the MRC files directly in it (:data:`MRC_SUFFIXES`, also gzip/bzip2-compressed
  ``.mrc.gz``/``.mrc.bz2``), sorted by name; sub-folders are not searched (name them, or use a
  ``**`` pattern);
- a glob pattern (``"Movies/*.mrc"``, ``"Run*/**/*.mrc"``; quoted so the shell leaves it
  alone): the MRC files it matches, sorted;
- a RELION STAR file (``*.star``): the paths in one column (``rlnMicrographName`` by default),
  relative to the RELION project folder; it must be the only spec;
- a cryoSPARC ``.cs`` export: its micrograph paths (:func:`cryoden.io.cryosparc.read_cs_paths`).

Each input gets a path relative to the common parent folder of all inputs, so that outputs
mirror the input folders: ``a/x.mrc`` and ``b/x.mrc`` give ``OUT/a/x.mrc`` and ``OUT/b/x.mrc``,
and the files of one folder give plain names.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryoden.errors import InputFileError, ParameterError
from cryoden.io.cryosparc import read_cs_paths
from cryoden.io.star import MicrographsStar, read_micrographs_star, star_paths

PathLike = str | os.PathLike[str]

#: Suffixes of MRC files, compared case-insensitively; each may also end in ``.gz`` or ``.bz2``.
MRC_SUFFIXES: tuple[str, ...] = (".mrc", ".mrcs", ".map", ".st", ".ali", ".rec")
#: Compression suffixes the MRC reader decompresses.
COMPRESSED_SUFFIXES: tuple[str, ...] = (".gz", ".bz2")
STAR_SUFFIX = ".star"
CS_SUFFIX = ".cs"
_GLOB_CHARACTERS = frozenset("*?[")


@dataclass(frozen=True)
class InputItem:
    """One input file.

    Attributes
    ----------
    path
        The file to read.
    relative
        Where its output goes under the output folder (the input's folder structure below the
        common parent of all inputs), with the input's suffix.
    row
        Its row (counted from 0) in the STAR or ``.cs`` table it came from; None otherwise.
    """

    path: Path
    relative: Path
    row: int | None = None


@dataclass(frozen=True)
class InputSet:
    """The expanded inputs; ``star`` is set when they came from one STAR file (whose rows
    they follow, so that a STAR file of the outputs can be written)."""

    items: tuple[InputItem, ...]
    star: MicrographsStar | None = None

    def __len__(self) -> int:
        return len(self.items)

    @property
    def paths(self) -> list[Path]:
        """The files to read, in order."""
        return [item.path for item in self.items]


def compression_suffix(path: PathLike) -> str:
    """``".gz"`` or ``".bz2"`` when ``path``'s name ends in one, else ``""``."""
    name = Path(path).name.lower()
    return next((s for s in COMPRESSED_SUFFIXES if name.endswith(s)), "")


def mrc_suffix(path: PathLike) -> str:
    """The MRC suffix of ``path`` (lower case, compression suffix removed), or ``""``."""
    name = Path(path).name.lower()
    name = name[: len(name) - len(compression_suffix(path))]
    return next((s for s in MRC_SUFFIXES if name.endswith(s)), "")


def is_mrc_name(path: PathLike) -> bool:
    """Whether ``path``'s name ends in an MRC suffix (optionally compressed)."""
    return bool(mrc_suffix(path))


def mrc_stem(path: PathLike) -> str:
    """The file name without its MRC suffix and compression suffix (``x.mrc.gz`` -> ``x``);
    a name without an MRC suffix loses its last suffix only."""
    p = Path(path)
    name = p.name
    strip = len(compression_suffix(p)) + len(mrc_suffix(p))
    if strip:
        return name[: len(name) - strip]
    return p.stem


def _has_glob(spec: str) -> bool:
    return any(c in _GLOB_CHARACTERS for c in spec)


def _folder_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and is_mrc_name(p))
    if not files:
        raise InputFileError(
            folder, f"folder holds no MRC files ({', '.join(MRC_SUFFIXES)}; not searched below)"
        )
    return files


def _glob_files(pattern: str) -> list[Path]:
    matches = sorted(Path(m) for m in glob.glob(pattern, recursive=True))
    files = [p for p in matches if p.is_file() and is_mrc_name(p)]
    if not files:
        what = f"{len(matches)} match(es), none an MRC file" if matches else "nothing matches"
        raise InputFileError(pattern, f"{what} ({', '.join(MRC_SUFFIXES)})")
    return files


def _cs_files(path: Path, project_dir: PathLike | None) -> list[tuple[Path, int]]:
    out = []
    for row, file in enumerate(read_cs_paths(path, project_dir=project_dir)):
        if not file.exists():
            raise InputFileError(path, f"row {row + 1}: '{file}' does not exist")
        out.append((file, row))
    return out


def _expand_one(spec: str, project_dir: PathLike | None) -> list[tuple[Path, int | None]]:
    path = Path(spec)
    if path.is_dir():
        return [(p, None) for p in _folder_files(path)]
    if path.exists():
        if path.name.lower().endswith(CS_SUFFIX):
            return [(p, row) for p, row in _cs_files(path, project_dir)]
        return [(path, None)]
    if _has_glob(spec):
        return [(p, None) for p in _glob_files(spec)]
    raise InputFileError(spec, "no such file or folder")


def _common_parent(paths: Sequence[Path]) -> Path:
    parents = [os.path.abspath(p.parent) for p in paths]
    return Path(os.path.commonpath(parents))


def expand_inputs(
    specs: Sequence[PathLike],
    *,
    column: str = "rlnMicrographName",
    project_dir: PathLike | None = None,
) -> InputSet:
    """Expand input specs (files, folders, glob patterns, a STAR file, ``.cs`` files).

    Parameters
    ----------
    specs
        What the user named, in order (see the module docstring for each kind).
    column
        The STAR column holding the file paths.
    project_dir
        The folder relative STAR and ``.cs`` paths start from (default: the current folder).

    Returns
    -------
    InputSet
        The files in spec order (each spec's files sorted), each with its path relative to
        the common parent folder of all files; ``star`` when the one spec was a STAR file.

    Raises
    ------
    ParameterError
        If no spec is given, a STAR file is mixed with other specs, or a file is named twice.
    InputFileError
        Naming the spec: no such file, folder or match, a folder without MRC files, a STAR or
        ``.cs`` file that cannot be read or names a missing file.
    """
    texts = [os.fspath(s) for s in specs]
    if not texts:
        raise ParameterError("no inputs given")
    stars = [t for t in texts if t.lower().endswith(STAR_SUFFIX)]
    star: MicrographsStar | None = None
    found: list[tuple[Path, int | None, str]] = []
    if stars:
        if len(texts) > 1:
            raise ParameterError(
                f"a STAR file ({stars[0]}) must be the only input, got {len(texts)} inputs"
            )
        star = read_micrographs_star(texts[0], required=(column,))
        paths = star_paths(star, column, project_dir=project_dir)
        found = [(p, row, texts[0]) for row, p in enumerate(paths)]
    else:
        for spec in texts:
            found.extend((p, row, spec) for p, row in _expand_one(spec, project_dir))
    seen: dict[str, str] = {}
    for path, row, spec in found:
        key = os.path.abspath(path)
        if key in seen:
            where = f"row {row + 1} of {spec}" if row is not None else spec
            raise ParameterError(f"input {path} is named twice (by {seen[key]} and {where})")
        seen[key] = spec if row is None else f"row {row + 1} of {spec}"
    parent = _common_parent([p for p, _, _ in found])
    items = tuple(
        InputItem(path=p, relative=Path(os.path.abspath(p)).relative_to(parent), row=row)
        for p, row, _ in found
    )
    return InputSet(items=items, star=star)


def mirrored_outputs(
    items: Sequence[InputItem], out_dir: PathLike, *, suffix_for: Callable[[Path], str]
) -> list[Path]:
    """Output paths ``out_dir / item.relative`` with the suffix replaced by
    ``suffix_for(item.path)`` (the MRC and compression suffixes both go: ``x.mrc.gz`` ->
    ``x.mrc``).

    Raises
    ------
    ParameterError
        If two inputs map to the same output (naming both).
    """
    base = Path(out_dir)
    outputs: list[Path] = []
    owner: dict[Path, Path] = {}
    for item in items:
        out = base / item.relative.parent / (mrc_stem(item.relative) + suffix_for(item.path))
        if out in owner:
            raise ParameterError(
                f"inputs {owner[out]} and {item.path} would both be written to {out}"
            )
        owner[out] = item.path
        outputs.append(out)
    return outputs


def pair_inputs(a: InputSet, b: InputSet, *, a_name: str, b_name: str) -> list[tuple[Path, Path]]:
    """Pairs of files of the same relative path (for folders: the same name) in ``a`` and
    ``b``, in ``a``'s order; ``a_name`` and ``b_name`` say what the two sides are called.

    Raises
    ------
    InputFileError
        Naming the first file without a partner, with both counts.
    """
    a_files = {item.relative: item.path for item in a.items}
    b_files = {item.relative: item.path for item in b.items}
    unpaired = [r for r in a_files if r not in b_files] + [r for r in b_files if r not in a_files]
    if unpaired:
        first = unpaired[0]
        path, other = (a_files[first], b_name) if first in a_files else (b_files[first], a_name)
        counts = f"{a_name} has {len(a_files)} images, {b_name} has {len(b_files)}"
        more = f"; {len(unpaired) - 1} more unpaired" if len(unpaired) > 1 else ""
        raise InputFileError(path, f"has no partner named {first} in {other} ({counts}{more})")
    return [(path, b_files[relative]) for relative, path in a_files.items()]


def spread_indices(count: int, n: int | None) -> list[int]:
    """``n`` indices evenly spread over ``range(count)``, deterministic (all when ``n`` is None
    or at least ``count``).

    Index ``i`` is ``((2 i + 1) count) // (2 n)``: the middle of the ``i``-th of ``n`` equal
    runs, so the subset covers the whole acquisition (micrographs are usually listed in
    acquisition order), not its start.
    """
    if n is None or n >= count:
        return list(range(count))
    if n < 1:
        raise ParameterError(f"max_micrographs must be at least 1, got {n}")
    return [((2 * i + 1) * count) // (2 * n) for i in range(n)]
