"""Output-side faults: every writer ends in a one-line OutputFileError and leaves nothing behind.

A read-only file system, a full disk or a denied permission cannot be made for real in a test
run as root, so they are simulated by making the system call raise the error it would raise.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

import mrcfile.mrcfile
import numpy as np
import pytest
from PIL import Image

import cryoden.io.atomic as atomic_module
from cryoden.errors import CryodenError, OutputFileError
from cryoden.io import atomic_output, export_preview, write_mrc
from cryoden.io.atomic import make_output_folder

_IMAGE = np.arange(48, dtype=np.float32).reshape(6, 8)


def _write_mrc(path: Path) -> None:
    write_mrc(path, _IMAGE, voxel_size_angstrom=1.5)


def _write_png(path: Path) -> None:
    export_preview(path, _IMAGE)


def _write_tiff(path: Path) -> None:
    export_preview(path, _IMAGE)


def _write_text(path: Path) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text("hello\n")


WRITERS = {
    "mrc": (_write_mrc, "out.mrc"),
    "png": (_write_png, "out.png"),
    "tiff": (_write_tiff, "out.tif"),
    "text": (_write_text, "out.txt"),
}


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _expect_output_error(write, path: Path, *phrases: str) -> str:
    with pytest.raises(OutputFileError) as info:
        write(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    for phrase in phrases:
        assert phrase in message, message
    assert isinstance(info.value, CryodenError)
    return message


@pytest.fixture(params=sorted(WRITERS))
def writer(request):
    return WRITERS[request.param]


# ------------------------------------------------------------------------------ bad folders


def test_output_folder_is_a_file(tmp_path, writer):
    write, name = writer
    blocker = tmp_path / "folder"
    blocker.write_text("I am a file")
    _expect_output_error(write, blocker / name, "is a file")
    assert _listing(tmp_path) == ["folder"] and blocker.read_text() == "I am a file"


def test_output_folder_lies_under_a_file(tmp_path, writer):
    write, name = writer
    blocker = tmp_path / "folder"
    blocker.write_text("I am a file")
    _expect_output_error(write, blocker / "sub" / "deeper" / name, "lies under the file")
    assert _listing(tmp_path) == ["folder"]


def test_output_folder_missing(tmp_path, writer):
    write, name = writer
    _expect_output_error(write, tmp_path / "missing" / name, "does not exist")
    assert _listing(tmp_path) == []


def test_output_is_a_directory(tmp_path, writer):
    write, name = writer
    (tmp_path / name).mkdir()
    _expect_output_error(write, tmp_path / name, "is a directory")
    assert _listing(tmp_path) == [name] and (tmp_path / name).is_dir()


def test_output_folder_is_a_symlink_loop(tmp_path, writer):
    write, name = writer
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    _expect_output_error(write, tmp_path / "loop" / name, "symbolic link loop")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder(tmp_path, writer):
    write, name = writer
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        _expect_output_error(write, folder / name, "permission denied")
        assert _listing(folder) == []
    finally:
        folder.chmod(0o755)


# ------------------------------------------------------------------------------ simulated faults


def _raiser(code: int, *, filename: object = None):
    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code), *([filename] if filename is not None else []))

    return fail


_FAULTS = {
    "mkstemp_read_only_fs": ("mkstemp", errno.EROFS, "cannot write: read-only file system"),
    "mkstemp_permission": ("mkstemp", errno.EACCES, "cannot write: permission denied"),
    "fsync_disk_full": ("fsync", errno.ENOSPC, "cannot write: no space left on device"),
    "fsync_quota": ("fsync", errno.EDQUOT, "cannot write: disk quota exceeded"),
    "chmod_read_only_fs": ("chmod", errno.EROFS, "cannot write: read-only file system"),
    "replace_permission": ("replace", errno.EACCES, "cannot write: permission denied"),
    "replace_io_error": ("replace", errno.EIO, "cannot write: input/output error"),
}


@pytest.mark.parametrize("fault", sorted(_FAULTS))
@pytest.mark.parametrize("existing", [False, True])
def test_simulated_faults_leave_no_file(tmp_path, monkeypatch, writer, fault, existing):
    write, name = writer
    target = tmp_path / name
    if existing:
        target.write_bytes(b"old content")
    where, code, phrase = _FAULTS[fault]
    if where == "mkstemp":
        monkeypatch.setattr(tempfile, "mkstemp", _raiser(code, filename=str(tmp_path)))
    else:
        monkeypatch.setattr(atomic_module.os, where, _raiser(code))
    _expect_output_error(write, target, phrase)
    monkeypatch.undo()
    assert _listing(tmp_path) == ([name] if existing else [])
    if existing:
        assert target.read_bytes() == b"old content"


def test_disk_full_inside_mrcfile_flush(tmp_path, monkeypatch):
    """The tester's case: ENOSPC raised by mrcfile while it flushes the data."""
    original = mrcfile.mrcfile.MrcFile.flush

    def full_disk(self):
        original(self)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(mrcfile.mrcfile.MrcFile, "flush", full_disk)
    target = tmp_path / "out.mrc"
    _expect_output_error(_write_mrc, target, "no space left on device")
    monkeypatch.undo()
    assert _listing(tmp_path) == []


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_disk_full_while_writing_a_preview(tmp_path, monkeypatch, suffix):
    def half_then_full(*args, **kwargs):
        Path(args[1]).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    if suffix == ".png":
        monkeypatch.setattr(Image.Image, "save", lambda self, fp, **kw: half_then_full(self, fp))
    else:
        import tifffile

        monkeypatch.setattr(tifffile, "imwrite", lambda fp, *a, **kw: half_then_full(None, fp))
    target = tmp_path / f"out{suffix}"
    _expect_output_error(_write_png, target, "no space left on device")
    assert _listing(tmp_path) == []


def test_oserror_about_another_file_is_not_reworded(tmp_path):
    """An input that fails inside the block keeps its own OSError (it is not an output fault)."""
    missing = tmp_path / "input.bin"
    with pytest.raises(FileNotFoundError), atomic_output(tmp_path / "out.bin") as tmp:
        tmp.write_bytes(missing.read_bytes())
    assert _listing(tmp_path) == []


def test_temporary_file_that_cannot_be_removed_is_reported_not_raised(tmp_path, monkeypatch):
    """On a file system that turned read-only the clean-up fails too; the write error wins."""
    monkeypatch.setattr(atomic_module.os, "fsync", _raiser(errno.EROFS))
    monkeypatch.setattr(Path, "unlink", _raiser(errno.EROFS))
    with pytest.raises(OutputFileError, match="read-only file system"):
        _write_text(tmp_path / "out.txt")


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002, 0o027])
def test_umask_still_applies(tmp_path, writer, mask):
    write, name = writer
    old = os.umask(mask)
    try:
        write(tmp_path / name)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~mask
    assert _listing(tmp_path) == [name]


def test_make_output_folder(tmp_path, monkeypatch):
    made = make_output_folder(tmp_path / "a" / "b")
    assert made.is_dir() and make_output_folder(made) == made
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputFileError, match="output folder is a file"):
        make_output_folder(tmp_path / "file")
    with pytest.raises(OutputFileError, match="lies under the file"):
        make_output_folder(tmp_path / "file" / "sub")
    monkeypatch.setattr(Path, "mkdir", _raiser(errno.EROFS))
    with pytest.raises(OutputFileError, match="cannot create the output folder: read-only"):
        make_output_folder(tmp_path / "new")
