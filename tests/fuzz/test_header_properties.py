"""Property-based tests: arbitrary MRC headers (and data lengths, byte orders, compression).

Whatever the 1024 bytes say, ``read_mrc`` and ``probe_mrc`` either give finite float32 data of
the announced shape or raise a one-line :class:`~cryoden.errors.CryodenError` naming the file,
without allocating what a header merely claims.
"""

from __future__ import annotations

import bz2
import gzip
import os
import tempfile
from pathlib import Path

import mrcfile.mrcinterpreter
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from cryoden.errors import CryodenError, InputFileError, one_line
from cryoden.io import probe_mrc, read_mrc

_INT32 = st.integers(-(2**31), 2**31 - 1)
_REAL_MODES = {0: "i1", 1: "i2", 2: "f4", 6: "u2", 12: "f2"}
_WILD_DIM = st.one_of(st.integers(-3, 9), st.sampled_from([60000, 2**31 - 1]), _INT32)
_WILD_MODE = st.one_of(st.sampled_from([0, 1, 2, -1, 3, 4, 5, 6, 12, 101, 2**24]), _INT32)
_SETTINGS = settings(
    max_examples=150,
    deadline=None,  # no timing: the machine is shared
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@st.composite
def mrc_files(draw: st.DrawFn) -> tuple[bytes, str]:
    """(file content, suffix): a header with drawn fields, then a drawn amount of data.

    Most drawn files are plausible (small dimensions, a real mode, the right amount of data,
    perhaps then truncated or with a wrong machine stamp); the rest have wild header fields.
    """
    order = draw(st.sampled_from(["<", ">"]))
    plausible = draw(st.integers(0, 9)) < 6
    if plausible:
        dims = [draw(st.integers(1, 9)) for _ in range(3)]
        mode = draw(st.sampled_from(sorted(_REAL_MODES)))
        space_group = draw(st.sampled_from([0, 1]))
        extended = draw(st.sampled_from([0, 0, 80]))
    else:
        dims = [draw(_WILD_DIM) for _ in range(3)]
        mode = draw(_WILD_MODE)
        space_group = draw(st.one_of(st.sampled_from([0, 1, 401]), _INT32))
        extended = draw(st.one_of(st.sampled_from([0, 80]), st.integers(-100, 5000), _INT32))
    words = np.zeros(256, dtype=f"{order}i4")
    words[0:4] = [*dims, mode]
    words[22:24] = [space_group, extended]
    head = bytearray(words.tobytes())
    if draw(st.integers(0, 3)) > 0:
        head[208:212] = b"MAP "
    head[212:216] = draw(
        st.sampled_from(
            [b"\x44\x44\0\0", b"\x44\x41\0\0", b"\x11\x11\0\0", b"\0\0\0\0"]
            if not plausible
            else [b"\x11\x11\0\0" if order == ">" else b"\x44\x44\0\0"] * 3 + [b"\0\0\0\0"]
        )
    )
    if draw(st.integers(0, 5)) == 0:  # random bytes in the cell, origin and statistics fields
        head[28:92] = draw(st.binary(min_size=64, max_size=64))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    if plausible:
        voxels = int(np.prod(dims))
        values = rng.normal(0, 20, voxels) if draw(st.booleans()) else np.full(voxels, 7.0)
        body = bytes(extended) + values.astype(f"{order}{_REAL_MODES[mode]}").tobytes()
    else:
        body = rng.bytes(draw(st.integers(0, 600)))
    content = bytes(head) + body
    suffix = draw(st.sampled_from([".mrc", ".mrc", ".mrcs", ".mrc.gz", ".mrc.bz2"]))
    if suffix.endswith(".gz"):
        content = gzip.compress(content)
    elif suffix.endswith(".bz2"):
        content = bz2.compress(content)
    if draw(st.integers(0, 4)) == 0:  # sometimes truncate the file
        content = content[: draw(st.integers(0, len(content)))]
    return content, suffix


@pytest.fixture
def small_reads_only(monkeypatch):
    original = mrcfile.mrcinterpreter.MrcInterpreter._read_bytearray_from_stream

    def guarded(self, number_of_bytes):
        assert int(number_of_bytes) <= 1 << 24, f"allocating {number_of_bytes} bytes"
        return original(self, number_of_bytes)

    monkeypatch.setattr(
        mrcfile.mrcinterpreter.MrcInterpreter, "_read_bytearray_from_stream", guarded
    )


@_SETTINGS
@given(mrc_files())
def test_any_header_gives_data_or_one_line_error(small_reads_only, drawn):
    content, suffix = drawn
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / f"drawn{suffix}"
        path.write_bytes(content)
        shapes = {}
        for reader in (probe_mrc, read_mrc):
            try:
                result = reader(path)
            except CryodenError as exc:
                message = str(exc)
                assert isinstance(exc, InputFileError)
                assert "\n" not in message and one_line(os.fspath(path)) in message
                event(f"{reader.__name__}: {exc.problem.split(' ')[0]}")
                continue
            event(f"{reader.__name__}: ok")
            if reader is probe_mrc:
                shapes["probe"] = result
            else:
                data = result.data
                assert data.dtype == np.float32 and data.ndim in (2, 3)
                assert data.size > 0 and np.isfinite(data).all()
                assert "probe" in shapes, "read_mrc accepted a file probe_mrc refused"
                assert data.size == int(np.prod(shapes["probe"]))
        assert path.read_bytes() == content
        assert sorted(p.name for p in Path(scratch).iterdir()) == [path.name]


@_SETTINGS
@given(st.binary(min_size=0, max_size=3000))
def test_any_bytes_give_data_or_one_line_error(small_reads_only, content):
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "bytes.mrc"
        path.write_bytes(content)
        for reader in (probe_mrc, read_mrc):
            try:
                reader(path)
            except CryodenError as exc:
                assert "\n" not in str(exc) and os.fspath(path) in str(exc)
        assert path.read_bytes() == content
