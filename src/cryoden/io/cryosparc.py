"""Micrograph paths from a cryoSPARC exposure export (``.cs`` file).

A cryoSPARC ``.cs`` file (format 1) is a NumPy structured array saved with ``numpy.save``: one
row per exposure, with fields such as ``micrograph_blob/path`` (the motion-corrected,
dose-weighted micrograph), ``micrograph_blob_non_dw/path`` and ``movie_blob/path``. Paths are
relative to the cryoSPARC project folder. The file is read with ``allow_pickle=False``: a file
whose array holds Python objects (which only unpickling could read) is refused, never loaded,
as is cryoSPARC's newer compressed format (``\\x94CSDAT``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from cryoden.errors import InputFileError

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]

#: Path fields tried in order when none is named: dose-weighted micrograph, then the
#: non-dose-weighted one, then the movie.
PATH_FIELDS: tuple[str, ...] = (
    "micrograph_blob/path",
    "micrograph_blob_non_dw/path",
    "movie_blob/path",
)
#: Magic bytes of the formats: NumPy's ``.npy`` (cryoSPARC format 1) and the compressed stream.
NUMPY_MAGIC = b"\x93NUMPY"
CSDAT_MAGIC = b"\x94CSDAT"

#: Header fields of a ``.npy`` file: version (1, 0), (2, 0) or (3, 0) readers.
_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


def _array_dtype(path: Path) -> np.dtype:
    """The dtype a ``.npy``-format file announces, checked before its data is read."""
    with open(path, "rb") as handle:
        head = handle.read(len(NUMPY_MAGIC))
        if head.startswith(CSDAT_MAGIC):
            raise InputFileError(
                path,
                "is in cryoSPARC's compressed .cs format, which cryoden cannot read; export "
                "the exposures as a STAR file (cryoSPARC 'Export' / csparc2star) or save them "
                "in the NumPy format",
            )
        if head != NUMPY_MAGIC:
            raise InputFileError(path, "not a cryoSPARC .cs array (no NumPy array header)")
        handle.seek(0)
        try:
            version = np.lib.format.read_magic(handle)
            reader = _HEADER_READERS.get(version, np.lib.format.read_array_header_2_0)
            _shape, _fortran, dtype = reader(handle)
        except (ValueError, OSError, SyntaxError) as exc:
            raise InputFileError(path, f"not a cryoSPARC .cs array ({exc})") from exc
    return np.dtype(dtype)


def _load(path: Path) -> np.ndarray:
    if not path.exists():
        raise InputFileError(path, "no such file")
    if not path.is_file():
        raise InputFileError(path, "not a regular file")
    try:
        dtype = _array_dtype(path)
    except OSError as exc:
        raise InputFileError(path, f"cannot be read ({exc})") from exc
    if dtype.hasobject:
        raise InputFileError(
            path,
            "holds Python objects (a pickled or newer cryoSPARC array), which cryoden never "
            "unpickles; export the exposures as a STAR file instead",
        )
    if dtype.names is None:
        raise InputFileError(path, f"not a cryoSPARC .cs table (a plain {dtype} array)")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InputFileError(path, f"cannot be read as a .cs array ({exc})") from exc
    return np.atleast_1d(array)


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace").rstrip("\x00")
    return str(value)


def read_cs_paths(
    path: PathLike, *, field: str | None = None, project_dir: PathLike | None = None
) -> list[Path]:
    """The file paths of a cryoSPARC exposure/micrograph ``.cs`` export, one per row.

    Parameters
    ----------
    path
        The ``.cs`` file (NumPy structured array).
    field
        The path field; None: the first of :data:`PATH_FIELDS` present.
    project_dir
        The cryoSPARC project folder the paths are relative to (default: the current folder).
        A leading ``>`` (cryoSPARC's mark for imported files) is dropped; absolute paths stay.

    Returns
    -------
    list of Path
        In row order. Their existence is not checked here.

    Raises
    ------
    InputFileError
        If the file is not a NumPy structured array, holds Python objects (never unpickled),
        lacks the path field (the fields present are listed), or a row's path is empty.
    """
    file = Path(path)
    array = _load(file)
    names = tuple(array.dtype.names or ())
    if field is None:
        chosen = next((f for f in PATH_FIELDS if f in names), None)
        if chosen is None:
            raise InputFileError(
                file,
                f"has no path field ({', '.join(PATH_FIELDS)}); fields: {', '.join(names)}",
            )
    elif field not in names:
        raise InputFileError(file, f"has no field {field}; fields: {', '.join(names)}")
    else:
        chosen = field
    base = Path(os.path.abspath(project_dir if project_dir is not None else Path.cwd()))
    paths: list[Path] = []
    for i, value in enumerate(array[chosen]):
        text = _text(value).strip().lstrip(">")
        if not text:
            raise InputFileError(file, f"row {i + 1}: {chosen} is empty")
        p = Path(text)
        paths.append(p if p.is_absolute() else base / p)
    logger.debug("%s: %d paths from %s", file, len(paths), chosen)
    return paths
