"""Every input in the corpus (see conftest.py) through ``read_mrc`` and ``probe_mrc``.

The property: the reader returns finite float32 data of the expected shape, or raises a
:class:`~cryoden.errors.CryodenError` whose message is one line naming the file -- never another
exception, never a hang, never a huge allocation, and the input is left as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import mrcfile.mrcinterpreter
import numpy as np
import pytest

from cryoden.errors import CryodenError, InputFileError, one_line
from cryoden.io import probe_mrc, read_mrc

#: Far above anything a tiny corpus file needs (all are under 64 KiB), far below a huge claim.
_MAX_READ_BYTES = 1 << 24
_CASE_SECONDS = 10.0


def _fingerprint(folder: Path) -> dict[str, str]:
    """Name -> kind and content hash of everything in ``folder`` (links are not followed)."""
    out = {}
    for entry in sorted(folder.iterdir()):
        mode = entry.lstat().st_mode
        if stat.S_ISREG(mode):
            out[entry.name] = hashlib.sha256(entry.read_bytes()).hexdigest()
        elif stat.S_ISLNK(mode):
            out[entry.name] = "link -> " + os.readlink(entry)
        else:
            out[entry.name] = f"mode {stat.S_IFMT(mode):o}"
    return out


@pytest.fixture
def no_huge_reads(monkeypatch):
    """Fail the test if mrcfile is ever asked to read (allocate) more than a tiny file holds."""
    original = mrcfile.mrcinterpreter.MrcInterpreter._read_bytearray_from_stream

    def guarded(self, number_of_bytes):
        assert int(number_of_bytes) <= _MAX_READ_BYTES, f"allocating {number_of_bytes} bytes"
        return original(self, number_of_bytes)

    monkeypatch.setattr(
        mrcfile.mrcinterpreter.MrcInterpreter, "_read_bytearray_from_stream", guarded
    )


@pytest.fixture
def no_unpickling(monkeypatch):
    """Fail the test if anything unpickles."""

    def refuse(*args, **kwargs):
        raise AssertionError("something tried to unpickle an input")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)


def _check_error(exc: BaseException, path: Path) -> str:
    assert isinstance(exc, CryodenError), f"{type(exc).__name__}: {exc}"
    message = str(exc)
    assert "\n" not in message and "\r" not in message
    assert one_line(os.fspath(path)) in message
    return message


def test_reader_answers_every_case_cleanly(fuzz_case, hang_guard, no_huge_reads, no_unpickling):
    case = fuzz_case
    folder = case.path.parent if case.path.parent.is_dir() else case.path.parent.parent
    before = _fingerprint(folder)
    for reader in (probe_mrc, read_mrc):
        try:
            with hang_guard(_CASE_SECONDS):
                result = reader(case.path)
        except Exception as exc:  # the property under test: only CryodenError escapes
            message = _check_error(exc, case.path)
            assert case.expect != "ok", message
            assert isinstance(exc, InputFileError), message
            if case.phrase and reader is read_mrc:
                assert case.phrase in message, message
            continue
        if reader is probe_mrc:
            assert isinstance(result, tuple) and all(n >= 1 for n in result)
            continue
        assert case.expect != "error", f"read {case.path.name} without complaint"
        assert result.data.dtype == np.float32 and result.data.ndim in (2, 3)
        assert np.isfinite(result.data).all() and result.data.size > 0
        if case.shape is not None:
            assert result.data.shape == case.shape
    assert _fingerprint(folder) == before
    assert not (folder / "UNPICKLED").exists()


def test_probe_and_read_agree_on_plain_files(fuzz_case, hang_guard):
    """A plain file that probe_mrc accepts has the data read_mrc reads (or read_mrc says why not:
    NaN values, which only the data shows)."""
    case = fuzz_case
    try:
        with hang_guard(_CASE_SECONDS):
            shape = probe_mrc(case.path)
    except CryodenError:
        return
    if case.path.name.endswith((".gz", ".bz2")):
        return  # probe_mrc checks only a compressed file's header
    try:
        data = read_mrc(case.path).data
    except InputFileError as exc:
        assert "NaN or infinite" in str(exc)
        return
    assert int(np.prod(shape)) == data.size


# ------------------------------------------------------------------------------ memory bound

_SUBPROCESS = textwrap.dedent(
    """
    import json, resource, sys
    from cryoden.errors import CryodenError
    from cryoden.io import probe_mrc, read_mrc

    def vm_bytes():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * resource.getpagesize()

    # Address space: what the interpreter holds now plus 512 MiB; a huge allocation fails.
    limit = vm_bytes() + (512 << 20)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    out = []
    for path in sys.argv[1:]:
        for reader in (probe_mrc, read_mrc):
            try:
                reader(path)
                out.append({"path": path, "type": "ok", "message": ""})
            except CryodenError as exc:
                out.append({"path": path, "type": type(exc).__name__, "message": str(exc)})
            except BaseException as exc:
                out.append({"path": path, "type": type(exc).__name__, "message": repr(exc)})
    print(json.dumps(out))
    """
)

_HUGE = (
    "dims_huge_60000_square",
    "dims_huge_int32_max_cube",
    "dims_overflowing_product",
    "header_only_60000_square",
    "gz_header_claims_60000_square",
    "bz2_header_claims_60000_square",
    "gz_header_claims_int32_cube",
    "random_bytes_mode2_0",
    "random_bytes_mode2_1",
    "extended_header_2147483647",
)


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs /proc")
def test_huge_claims_in_a_memory_limited_process(tmp_path, corpus_builders):
    """With the default budget and 512 MiB of address space to spare, every huge claim ends in
    a one-line InputFileError (not MemoryError, OverflowError or a killed process)."""
    builders = corpus_builders
    paths = []
    for name in _HUGE:
        folder = tmp_path / name
        folder.mkdir()
        paths.append(os.fspath(builders[name](folder).path))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    done = subprocess.run(
        [sys.executable, "-c", _SUBPROCESS, *paths],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(done.stdout)
    assert len(results) == 2 * len(paths)
    for item in results:
        assert item["type"] == "InputFileError", item
        assert item["path"] in item["message"] and "\n" not in item["message"]
