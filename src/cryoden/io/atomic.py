"""Atomic file output: write to a temporary file beside the target, then rename it into place.

A reader (or a crashed run) never sees a half-written output: either the old file (or nothing)
is at the target path, or the complete new one. The temporary file lives in the target's own
directory so that :func:`os.replace` is an atomic rename on the same file system.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from cryoden.errors import InputFileError

logger = logging.getLogger(__name__)

#: Suffix of the temporary files; it never matches an output pattern such as ``*.mrc``.
TEMP_SUFFIX = ".tmp"


def _current_umask() -> int:
    """The process umask, read without changing it where the platform allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # no way to read it without setting it elsewhere
    os.umask(mask)
    return mask


def _remove_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` when the block succeeds.

    The temporary file is created (empty) in the target's directory, named
    ``.<name>.<random>.tmp``. If the block raises, the temporary file is removed, the exception
    propagates, and ``path`` is left untouched (an existing file keeps its old content). On
    success the file is flushed to disk, given the usual permissions (``0o666`` less the umask,
    rather than ``mkstemp``'s ``0o600``) and moved onto ``path`` with :func:`os.replace`.

    Parameters
    ----------
    path
        The final output path. Its directory must exist.

    Yields
    ------
    pathlib.Path
        The temporary path to write to (it may be overwritten or reopened freely).

    Raises
    ------
    InputFileError
        If the target's directory does not exist or the target is a directory.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
    >>> with atomic_output(target) as tmp:
    ...     _ = tmp.write_text("done")
    >>> target.read_text()
    'done'
    """
    target = Path(path)
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise InputFileError(target, f"output folder {str(parent)!r} does not exist")
    if target.is_dir():
        raise InputFileError(target, "is a directory, not a file")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX, dir=parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_current_umask())
        os.replace(tmp, target)
    except BaseException:
        _remove_quietly(tmp)
        raise
    logger.debug("wrote %s", target)
