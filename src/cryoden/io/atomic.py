"""Atomic file output: write to a temporary file beside the target, then rename it into place.

A reader (or a crashed run) never sees a half-written output: either the old file (or nothing)
is at the target path, or the complete new one. The temporary file lives in the target's own
directory so that :func:`os.replace` is an atomic rename on the same file system.

File-system faults while writing (full disk, read-only file system, no permission, an output
folder that is a file) become one-line :class:`~cryoden.errors.OutputFileError` messages.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from cryoden.errors import OutputFileError

logger = logging.getLogger(__name__)

#: Suffix of the temporary files; it never matches an output pattern such as ``*.mrc``.
TEMP_SUFFIX = ".tmp"

#: Plain words for the errors a write can meet; others use the system's own text.
_WRITE_PROBLEMS: dict[int, str] = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied (operation not permitted)",
    errno.EFBIG: "file too large for the file system",
    errno.EIO: "input/output error on the device",
    errno.ENAMETOOLONG: "file name too long",
    errno.ELOOP: "symbolic link loop in the output path",
}


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
    """Remove ``path`` if it exists; a failure (read-only file system) is logged, not raised."""
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        logger.warning("could not remove the temporary file %s (%s)", path, exc.strerror or exc)


def _problem(exc: OSError) -> str:
    return _WRITE_PROBLEMS.get(exc.errno or -1) or exc.strerror or str(exc) or type(exc).__name__


def write_problem(exc: OSError) -> str:
    """One line saying why a write failed, from the :class:`OSError` it raised."""
    return f"cannot write: {_problem(exc)}"


def _first_file_above(folder: Path) -> Path | None:
    """The nearest existing ancestor of ``folder`` (itself included) that is not a folder."""
    for candidate in (folder, *folder.parents):
        try:
            mode = os.stat(candidate).st_mode
        except OSError:
            continue
        return None if stat.S_ISDIR(mode) else candidate
    return None


def check_output_path(path: str | os.PathLike[str]) -> None:
    """Raise :class:`OutputFileError` unless ``path`` could be created as a file.

    The folder must exist and be a folder, and ``path`` itself must not be a folder. Whether
    the folder is writable is left to the write itself (root may write where modes say no).
    """
    target = Path(path)
    parent = target.parent if str(target.parent) else Path(".")
    try:
        parent_mode = os.stat(parent).st_mode
    except OSError as exc:
        blocker = _first_file_above(parent)
        if blocker is not None:
            where = "is a file" if blocker == parent else f"lies under the file {str(blocker)!r}"
            raise OutputFileError(target, f"output folder {str(parent)!r} {where}") from None
        if exc.errno == errno.ENOENT:
            raise OutputFileError(target, f"output folder {str(parent)!r} does not exist") from None
        raise OutputFileError(target, f"output folder {str(parent)!r}: {_problem(exc)}") from None
    if not stat.S_ISDIR(parent_mode):
        raise OutputFileError(target, f"output folder {str(parent)!r} is a file")
    with contextlib.suppress(OSError):
        if stat.S_ISDIR(os.stat(target).st_mode):
            raise OutputFileError(target, "is a directory, not a file")


def make_output_folder(folder: str | os.PathLike[str]) -> Path:
    """Create ``folder`` (and its parents) if needed; return it as a :class:`~pathlib.Path`.

    Raises
    ------
    OutputFileError
        If ``folder`` or one of its parents is a file, or the file system refuses (read-only,
        permission denied).
    """
    path = Path(folder)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        blocker = _first_file_above(path)
        if blocker is not None:
            where = "is a file" if blocker == path else f"lies under the file {str(blocker)!r}"
            raise OutputFileError(path, f"output folder {where}") from None
        raise OutputFileError(path, f"cannot create the output folder: {_problem(exc)}") from None
    return path


def _concerns_other_file(exc: OSError, paths: tuple[Path, ...]) -> bool:
    """Whether ``exc`` names a file other than the output (say, an input read in the block)."""
    names = [n for n in (exc.filename, exc.filename2) if isinstance(n, (str, os.PathLike))]
    if not names:
        return False
    ours = {os.path.abspath(p) for p in paths}
    return any(os.path.abspath(n) not in ours for n in names)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` when the block succeeds.

    The temporary file is created (empty) in the target's directory, named
    ``.<name>.<random>.tmp``. If the block raises, the temporary file is removed, the exception
    propagates, and ``path`` is left untouched (an existing file keeps its old content). On
    success the file is flushed to disk, given the usual permissions (``0o666`` less the umask,
    rather than ``mkstemp``'s ``0o600``) and moved onto ``path`` with :func:`os.replace`.

    An :class:`OSError` met while creating, writing (in the block), flushing or renaming the
    output -- full disk, read-only file system, permission denied -- is raised as
    :class:`~cryoden.errors.OutputFileError`, after the temporary file is removed. An
    ``OSError`` that names another file (an input read inside the block) propagates unchanged.

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
    OutputFileError
        If the target's folder does not exist or is a file, the target is a directory, or the
        file system refuses the write.

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
    check_output_path(target)
    parent = target.parent if str(target.parent) else Path(".")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX, dir=parent)
        os.close(fd)
    except OSError as exc:
        raise OutputFileError(target, write_problem(exc)) from exc
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_current_umask())
        os.replace(tmp, target)
    except OSError as exc:
        _remove_quietly(tmp)
        if _concerns_other_file(exc, (tmp, target)):
            raise
        raise OutputFileError(target, write_problem(exc)) from exc
    except BaseException:
        _remove_quietly(tmp)
        raise
    logger.debug("wrote %s", target)
