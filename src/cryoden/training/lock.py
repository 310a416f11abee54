"""One training run per output: an exclusive lock beside the model path.

Two runs writing the same model file and checkpoint would interleave their epochs; the second
one is refused at once instead. The lock is :func:`fcntl.flock` on a hidden lock file beside
the output (``.<name>.train.lock``), taken without blocking; the kernel releases it when the
process ends, however it ends (``kill -9`` included), so a crash never leaves a stale lock. The
lock file holds the owner's process id, for the message. Where ``fcntl`` is missing (Windows),
no lock is taken.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from cryoden.errors import CryodenError, OutputFileError
from cryoden.io.atomic import make_output_folder

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]  # no flock on this platform; the lock is skipped


class OutputBusyError(OutputFileError):
    """Another process is training into the same output."""

    def __init__(self, out: str | os.PathLike[str], pid: str) -> None:
        self.path = str(out)
        self.problem = f"another cryoden train is writing to it (pid {pid})"
        CryodenError.__init__(self, f"another cryoden train is writing to {out} (pid {pid})")


#: Outputs this process holds the lock of (a nested :func:`output_lock` is a no-op).
_HELD: set[str] = set()


def lock_path(out: str | os.PathLike[str]) -> Path:
    """The lock file of the model path ``out``: ``.<name>.train.lock`` beside it."""
    out = Path(out)
    return out.parent / f".{out.name}.train.lock"


def _owner(handle: int) -> str:
    try:
        text = os.pread(handle, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return "unknown"
    return text if text.isdigit() else "unknown"


@contextlib.contextmanager
def output_lock(out: str | os.PathLike[str]) -> Iterator[None]:
    """Hold the exclusive training lock of the model path ``out`` for the block.

    Raises
    ------
    OutputBusyError
        When another process holds it: "another cryoden train is writing to OUT (pid N)".
    OutputFileError
        When the lock file cannot be created.
    """
    out = Path(out)
    key = os.path.realpath(out)
    if fcntl is None or key in _HELD:
        yield
        return
    path = lock_path(out)
    make_output_folder(path.parent)
    try:
        handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise OutputFileError(path, f"cannot create the training lock: {exc.strerror}") from None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputBusyError(out, _owner(handle)) from None
        os.ftruncate(handle, 0)
        os.pwrite(handle, f"{os.getpid()}\n".encode("ascii"), 0)
        _HELD.add(key)
        try:
            yield
        finally:
            _HELD.discard(key)
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        os.close(handle)
