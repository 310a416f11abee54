"""A corpus of bad (and a few good) MRC inputs, generated in ``tmp_path`` for each test.

Every builder takes a folder, writes one input there and returns a :class:`Case`: the path to
give to the reader, whether reading must succeed (``"ok"``), must fail (``"error"``) or may do
either (``"either"``, for random bytes), and optionally a phrase the error must contain.
Nothing is committed as a data file: the corpus is rebuilt from these functions.

``pytest_generate_tests`` parametrises any test that asks for the ``fuzz_case`` fixture over
every builder, so each case is reported (and can be re-run) by name.

Longer than most modules on purpose: the corpus is one list of small builders, and it lives in
conftest.py because tests run in pytest's importlib mode, where test files cannot import a
shared helper module.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import os
import pickle
import signal
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import mrcfile
import numpy as np
import pytest

HEADER = 1024


@dataclass(frozen=True)
class Case:
    path: Path
    expect: str  # "ok", "error" or "either"
    phrase: str = ""
    shape: tuple[int, ...] | None = None  # the data shape read_mrc must give, when "ok"


# ------------------------------------------------------------------------------ raw headers


def valid_bytes(data: np.ndarray, *, stack: bool = False) -> bytes:
    """A valid MRC file of ``data`` as bytes, as mrcfile writes it."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "valid.mrc"
        with warnings.catch_warnings(), mrcfile.new(path) as mrc:
            warnings.simplefilter("ignore")  # mrcfile warns of NaN data, which some cases want
            mrc.set_data(data)
            if stack and data.ndim == 3:
                mrc.set_image_stack()
        return path.read_bytes()


def header(
    nx: int = 4,
    ny: int = 4,
    nz: int = 1,
    mode: int = 2,
    *,
    extended: int = 0,
    space_group: int = 0,
    stamped: bool = True,
    order: str = "<",
    machine_stamp: bytes | None = None,
) -> bytes:
    """A 1024-byte MRC header with the given fields (anything goes, including nonsense)."""
    words = np.zeros(256, dtype=f"{order}i4")
    words[0:4] = (nx, ny, nz, mode)
    words[7:10] = (max(nx, 0) % 2**31, max(ny, 0) % 2**31, max(nz, 0) % 2**31)
    words[16:19] = (1, 2, 3)
    words[22] = space_group
    words[23] = extended
    raw = bytearray(words.tobytes())
    cell = np.array([nx, ny, nz], dtype=f"{order}f4").tobytes()
    raw[40:52] = cell
    raw[52:64] = np.array([90, 90, 90], dtype=f"{order}f4").tobytes()
    if stamped:
        raw[208:212] = b"MAP "
    if machine_stamp is None:
        machine_stamp = b"\x44\x44\x00\x00" if order == "<" else b"\x11\x11\x00\x00"
    raw[212:216] = machine_stamp
    return bytes(raw)


def _write(folder: Path, name: str, content: bytes) -> Path:
    path = folder / name
    path.write_bytes(content)
    return path


def _image(shape: tuple[int, ...] = (5, 7), seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


# ------------------------------------------------------------------------------ builders

Builder = Callable[[Path], Case]
BUILDERS: dict[str, Builder] = {}


def builder(name: str) -> Callable[[Builder], Builder]:
    def register(func: Builder) -> Builder:
        assert name not in BUILDERS, name
        BUILDERS[name] = func
        return func

    return register


def _add(name: str, func: Builder) -> None:
    assert name not in BUILDERS, name
    BUILDERS[name] = func


@builder("valid_5x7")
def _valid(folder: Path) -> Case:
    return Case(_write(folder, "valid.mrc", valid_bytes(_image())), "ok", shape=(5, 7))


_VALID_LENGTH = len(valid_bytes(_image()))
for _length in sorted(
    {
        0,
        1,
        2,
        3,
        4,
        11,
        12,
        16,
        92,
        100,
        207,
        208,
        211,
        212,
        216,
        512,
        1000,
        1023,
        1024,
        1025,
        1028,
        1100,
        _VALID_LENGTH - 4,
        _VALID_LENGTH - 1,
    }
):

    def _truncated(folder: Path, length: int = _length) -> Case:
        raw = valid_bytes(_image())[:length]
        phrase = "empty" if length == 0 else ""
        return Case(_write(folder, f"truncated_{length}.mrc", raw), "error", phrase)

    _add(f"truncated_at_{_length}", _truncated)


for _seed in range(12):

    def _random(folder: Path, seed: int = _seed) -> Case:
        rng = np.random.default_rng(seed)
        size = int(rng.choice([5, 700, 1024, 1500, 5000]))
        return Case(_write(folder, f"random_{seed}.mrc", rng.bytes(size)), "either")

    _add(f"random_bytes_{_seed}", _random)

    def _random_mode2(folder: Path, seed: int = _seed) -> Case:
        """Random bytes whose mode word says float32: the dimensions are random int32s."""
        rng = np.random.default_rng(100 + seed)
        raw = bytearray(rng.bytes(int(rng.choice([1024, 1100, 4096]))))
        raw[12:16] = np.int32(2).tobytes()
        return Case(_write(folder, f"random_mode2_{seed}.mrc", bytes(raw)), "either")

    _add(f"random_bytes_mode2_{_seed}", _random_mode2)


_MODE_DTYPES = {0: np.int8, 1: np.int16, 2: np.float32, 6: np.uint16, 12: np.float16}
_MODE_BYTES = {0: 1, 1: 2, 2: 4, 3: 4, 4: 8, 6: 2, 12: 2}
for _mode in (-(2**31), -1, 0, 1, 2, 3, 4, 5, 6, 7, 9, 12, 13, 16, 100, 101, 102, 2**16, 2**31 - 1):

    def _mode_case(folder: Path, mode: int = _mode) -> Case:
        data = bytes(4 * 4 * _MODE_BYTES.get(mode, 4))
        content = header(4, 4, 1, mode) + data
        expect = "ok" if mode in _MODE_DTYPES else "error"
        return Case(_write(folder, f"mode_{mode}.mrc", content), expect, shape=(4, 4))

    _add(f"mode_{_mode}", _mode_case)

    def _mode_no_stamp(folder: Path, mode: int = _mode) -> Case:
        data = bytes(4 * 4 * _MODE_BYTES.get(mode, 4))
        content = header(4, 4, 1, mode, stamped=False, machine_stamp=b"\0\0\0\0") + data
        expect = "ok" if mode in _MODE_DTYPES else "error"
        return Case(_write(folder, f"mode_{mode}_nostamp.mrc", content), expect, shape=(4, 4))

    _add(f"mode_{_mode}_without_stamp", _mode_no_stamp)

_DIMS = {
    "zero_nx": (0, 4, 1, "empty"),
    "zero_ny": (4, 0, 1, "empty"),
    "zero_nz": (4, 4, 0, "empty"),
    "negative_nx": (-4, 4, 1, "negative"),
    "negative_nz": (4, 4, -1, "negative"),
    "most_negative": (-(2**31), -(2**31), -(2**31), "negative"),
    "huge_60000_square": (60000, 60000, 1, "truncated"),
    "huge_int32_max_cube": (2**31 - 1, 2**31 - 1, 2**31 - 1, "truncated"),
    "huge_nx_only": (2**31 - 1, 1, 1, "truncated"),
    "overflowing_product": (2**16, 2**16, 2**16, "truncated"),
}
for _name, (_nx, _ny, _nz, _phrase) in _DIMS.items():

    def _dims(
        folder: Path,
        nx: int = _nx,
        ny: int = _ny,
        nz: int = _nz,
        phrase: str = _phrase,
        name: str = _name,
    ) -> Case:
        content = header(nx, ny, nz, 2) + bytes(64)
        return Case(_write(folder, f"dims_{name}.mrc", content), "error", phrase)

    _add(f"dims_{_name}", _dims)


@builder("header_only_60000_square")
def _header_only(folder: Path) -> Case:
    return Case(_write(folder, "claim.mrc", header(60000, 60000, 1, 2)), "error", "truncated")


for _ext, _phrase in (
    (2**31 - 1, "extended header"),
    (10_000, "extended header"),
    (-5, "extended header"),
    (-(2**31), "extended header"),
):

    def _extended(folder: Path, ext: int = _ext, phrase: str = _phrase) -> Case:
        content = header(4, 4, 1, 2, extended=ext) + bytes(64)
        return Case(_write(folder, f"extended_{ext}.mrc", content), "error", phrase)

    _add(f"extended_header_{_ext}", _extended)


@builder("extended_header_fits")
def _extended_fits(folder: Path) -> Case:
    content = header(4, 4, 1, 2, extended=80) + bytes(80) + np.ones(16, "<f4").tobytes()
    return Case(_write(folder, "extended_ok.mrc", content), "ok", shape=(4, 4))


@builder("volume_stack_space_group_401")
def _volume_stack(folder: Path) -> Case:
    raw = bytearray(header(4, 4, 4, 2, space_group=401) + bytes(256))
    raw[36:40] = np.int32(0).tobytes()  # mz = 0: mrcfile would divide by it
    return Case(_write(folder, "volstack.mrc", bytes(raw)), "error", "4D")


for _label, _value in (("nan", np.nan), ("inf", np.inf), ("minus_inf", -np.inf)):

    def _nonfinite(folder: Path, value: float = _value, label: str = _label) -> Case:
        data = _image()
        data[2, 3] = value
        return Case(_write(folder, f"{label}.mrc", valid_bytes(data)), "error", "NaN or infinite")

    _add(f"data_{_label}", _nonfinite)


@builder("data_all_nan")
def _all_nan(folder: Path) -> Case:
    content = header(4, 4, 1, 2) + np.full(16, np.nan, "<f4").tobytes()
    return Case(_write(folder, "allnan.mrc", content), "error", "NaN or infinite")


@builder("float16_inf")
def _f16_inf(folder: Path) -> Case:
    content = header(4, 4, 1, 12) + np.full(16, np.inf, "<f2").tobytes()
    return Case(_write(folder, "f16inf.mrc", content), "error", "NaN or infinite")


@builder("constant_image")
def _constant(folder: Path) -> Case:
    data = np.full((6, 6), 3.5, np.float32)
    return Case(_write(folder, "constant.mrc", valid_bytes(data)), "ok", shape=(6, 6))


for _shape in ((1, 1), (1, 7), (7, 1), (3, 5), (2, 3, 5), (1, 1, 1)):

    def _odd(folder: Path, shape: tuple[int, ...] = _shape) -> Case:
        name = "x".join(map(str, shape))
        return Case(
            _write(folder, f"odd_{name}.mrc", valid_bytes(_image(shape))), "ok", shape=shape
        )

    _add(f"shape_{'x'.join(map(str, _shape))}", _odd)


for _dtype in (np.float16, np.int8, np.uint16, np.int16, np.uint8):

    def _typed(folder: Path, dtype: type = _dtype) -> Case:
        data = (np.arange(35).reshape(5, 7) % 50).astype(dtype)
        name = np.dtype(dtype).name
        return Case(_write(folder, f"{name}.mrc", valid_bytes(data)), "ok", shape=(5, 7))

    _add(f"dtype_{np.dtype(_dtype).name}", _typed)


@builder("big_endian_float32")
def _big_endian(folder: Path) -> Case:
    content = header(7, 5, 1, 2, order=">") + _image().astype(">f4").tobytes()
    return Case(_write(folder, "big.mrc", content), "ok", shape=(5, 7))


@builder("big_endian_wrong_machine_stamp")
def _big_endian_bad_stamp(folder: Path) -> Case:
    content = header(7, 5, 1, 1, order=">", machine_stamp=b"\x44\x44\0\0")
    content += np.arange(35, dtype=">i2").tobytes()
    return Case(_write(folder, "bigstamp.mrc", content), "ok", shape=(5, 7))


@builder("stack_mrcs")
def _stack(folder: Path) -> Case:
    raw = valid_bytes(_image((3, 5, 7)), stack=True)
    return Case(_write(folder, "stack.mrcs", raw), "ok", shape=(3, 5, 7))


@builder("stack_of_one_mrcs")
def _stack_one(folder: Path) -> Case:
    raw = valid_bytes(_image((1, 5, 7)), stack=True)
    return Case(_write(folder, "one.mrcs", raw), "ok", shape=(1, 5, 7))


@builder("larger_than_claimed")
def _larger(folder: Path) -> Case:
    raw = valid_bytes(_image()) + bytes(100)
    return Case(_write(folder, "larger.mrc", raw), "ok", shape=(5, 7))


# ------------------------------------------------------------------------------ compressed

_COMPRESSORS = {"gz": gzip.compress, "bz2": bz2.compress}
for _suffix, _compress in _COMPRESSORS.items():

    def _comp_valid(folder: Path, suffix: str = _suffix, compress: Callable = _compress) -> Case:
        raw = compress(valid_bytes(_image()))
        return Case(_write(folder, f"valid.mrc.{suffix}", raw), "ok", shape=(5, 7))

    _add(f"{_suffix}_valid", _comp_valid)

    for _cut in (1, 4, 8, 30, 200, 0.5, 0.1):

        def _comp_trunc(
            folder: Path, suffix: str = _suffix, compress: Callable = _compress, cut: float = _cut
        ) -> Case:
            raw = compress(valid_bytes(_image((40, 40))))
            keep = int(len(raw) * cut) if isinstance(cut, float) else len(raw) - cut
            return Case(_write(folder, f"trunc_{cut}.mrc.{suffix}", raw[:keep]), "error")

        _add(f"{_suffix}_truncated_{_cut}", _comp_trunc)

    def _comp_huge(folder: Path, suffix: str = _suffix, compress: Callable = _compress) -> Case:
        raw = compress(header(60000, 60000, 1, 2))
        return Case(_write(folder, f"claim.mrc.{suffix}", raw), "error")

    _add(f"{_suffix}_header_claims_60000_square", _comp_huge)

    def _comp_cube(folder: Path, suffix: str = _suffix, compress: Callable = _compress) -> Case:
        raw = compress(header(2**31 - 1, 2**31 - 1, 2**31 - 1, 2))
        return Case(_write(folder, f"cube.mrc.{suffix}", raw), "error", "budget")

    _add(f"{_suffix}_header_claims_int32_cube", _comp_cube)

    def _comp_short(folder: Path, suffix: str = _suffix, compress: Callable = _compress) -> Case:
        raw = compress(header(40, 40, 1, 2) + bytes(100))  # complete stream, too little data
        return Case(_write(folder, f"short.mrc.{suffix}", raw), "error", "truncated")

    _add(f"{_suffix}_stream_shorter_than_claim", _comp_short)

    def _comp_tiny(folder: Path, suffix: str = _suffix, compress: Callable = _compress) -> Case:
        raw = compress(b"hello")
        return Case(_write(folder, f"tiny.mrc.{suffix}", raw), "error", "not an MRC file")

    _add(f"{_suffix}_stream_of_5_bytes", _comp_tiny)

    def _comp_nan(folder: Path, suffix: str = _suffix, compress: Callable = _compress) -> Case:
        raw = compress(header(4, 4, 1, 2) + np.full(16, np.nan, "<f4").tobytes())
        return Case(_write(folder, f"nan.mrc.{suffix}", raw), "error", "NaN")

    _add(f"{_suffix}_nan_data", _comp_nan)


@builder("gzip_magic_then_garbage")
def _gzip_garbage(folder: Path) -> Case:
    raw = b"\x1f\x8b" + np.random.default_rng(5).bytes(2000)
    return Case(_write(folder, "garbage.mrc.gz", raw), "error", "gzip/bzip2")


@builder("bzip2_magic_then_garbage")
def _bzip_garbage(folder: Path) -> Case:
    raw = b"BZh9" + np.random.default_rng(6).bytes(2000)
    return Case(_write(folder, "garbage.mrc.bz2", raw), "error", "gzip/bzip2")


@builder("gzip_bad_checksum")
def _gzip_crc(folder: Path) -> Case:
    raw = bytearray(gzip.compress(valid_bytes(_image())))
    raw[-8] ^= 0xFF  # the CRC32 of the trailer
    return Case(_write(folder, "crc.mrc.gz", bytes(raw)), "error", "gzip/bzip2")


# ------------------------------------------------------------------------------ not files


@builder("directory")
def _directory(folder: Path) -> Case:
    path = folder / "folder.mrc"
    path.mkdir()
    return Case(path, "error", "directory")


@builder("fifo")
def _fifo(folder: Path) -> Case:
    path = folder / "pipe.mrc"
    os.mkfifo(path)
    return Case(path, "error", "FIFO")


@builder("socket")
def _socket(folder: Path) -> Case:
    import socket

    path = folder / "sock.mrc"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(os.fspath(path))
    server.close()  # the socket file stays in the folder
    return Case(path, "error", "socket")


@builder("device_null_link")
def _dev_null(folder: Path) -> Case:
    path = folder / "null.mrc"
    path.symlink_to("/dev/null")
    return Case(path, "error", "character device")


@builder("device_zero_link")
def _dev_zero(folder: Path) -> Case:
    path = folder / "zero.mrc"
    path.symlink_to("/dev/zero")
    return Case(path, "error", "character device")


@builder("symlink_loop")
def _loop(folder: Path) -> Case:
    (folder / "a.mrc").symlink_to(folder / "b.mrc")
    (folder / "b.mrc").symlink_to(folder / "a.mrc")
    return Case(folder / "a.mrc", "error", "symbolic link loop")


@builder("symlink_to_itself")
def _self_loop(folder: Path) -> Case:
    (folder / "self.mrc").symlink_to(folder / "self.mrc")
    return Case(folder / "self.mrc", "error", "symbolic link loop")


@builder("broken_symlink")
def _broken(folder: Path) -> Case:
    (folder / "broken.mrc").symlink_to(folder / "nowhere.mrc")
    return Case(folder / "broken.mrc", "error", "not found")


@builder("symlink_to_valid")
def _good_link(folder: Path) -> Case:
    target = _write(folder, "real.mrc", valid_bytes(_image()))
    (folder / "link.mrc").symlink_to(target)
    return Case(folder / "link.mrc", "ok", shape=(5, 7))


@builder("missing_file")
def _missing(folder: Path) -> Case:
    return Case(folder / "missing.mrc", "error", "file not found")


@builder("path_under_a_file")
def _under_file(folder: Path) -> Case:
    _write(folder, "plain.txt", b"x")
    return Case(folder / "plain.txt" / "inner.mrc", "error", "not found")


@builder("newline_in_name")
def _newline(folder: Path) -> Case:
    return Case(_write(folder, "bad\nname.mrc", b"not an mrc"), "error", "not an MRC file")


@builder("text_file")
def _text(folder: Path) -> Case:
    content = ("this is a text file, not an MRC image\n" * 40).encode()
    return Case(_write(folder, "text.mrc", content), "error", "not an MRC file")


class _Trap:
    """Unpickling this creates the folder ``sentinel``: proof that something unpickled it."""

    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self) -> tuple:
        return (os.mkdir, (os.fspath(self.sentinel),))


for _protocol in (2, 4, 5):

    def _pickle(folder: Path, protocol: int = _protocol) -> Case:
        trap = [_Trap(folder / "UNPICKLED"), np.zeros(400, np.float32)]
        raw = pickle.dumps(trap, protocol=protocol)
        return Case(_write(folder, f"model_p{protocol}.mrc", raw), "error")

    _add(f"pickle_protocol_{_protocol}", _pickle)


# ------------------------------------------------------------------------------ fixtures


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "fuzz_case" in metafunc.fixturenames:
        metafunc.parametrize("fuzz_case", sorted(BUILDERS), indirect=True)


@pytest.fixture
def fuzz_case(request: pytest.FixtureRequest, tmp_path: Path) -> Case:
    folder = tmp_path / "corpus"
    folder.mkdir()
    return BUILDERS[request.param](folder)


class CaseTimeout(BaseException):
    """Raised by the alarm: a read took far longer than any tiny input should (a hang)."""


@contextlib.contextmanager
def alarm(seconds: float) -> Iterator[None]:
    """Interrupt the block with :class:`CaseTimeout` after ``seconds`` (a guard against hangs,
    such as a FIFO opened for reading; not a speed test)."""

    def ring(signum: int, frame: object) -> None:
        raise CaseTimeout(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def corpus_builders() -> dict[str, Builder]:
    """Every corpus builder by name (tests cannot import conftest.py)."""
    return BUILDERS


@pytest.fixture
def hang_guard() -> Callable[[float], contextlib.AbstractContextManager[None]]:
    return alarm
