"""Screening an MRC file from ``os.stat`` and its first 1024 bytes, before any data is read.

A hostile or broken input must fail fast and in one line, never by a hang, a huge allocation or
an exception from deep inside :mod:`mrcfile`:

* only regular files are opened (a FIFO would block forever, a device never ends);
* the header's claim -- ``nx * ny * nz`` voxels of the mode's size plus the extended header --
  is checked against the file size (plain files) and against a memory budget (all files)
  before anything of that size is allocated;
* gzip/bzip2 files are judged by their decompressed header (1024 bytes read), and their data
  is decompressed with the length bounded by the header's claim.

The header is interpreted as :mod:`mrcfile` does in permissive mode: byte order from the
machine stamp (little-endian when the stamp is unknown), flipped when only the other order
gives a known mode.
"""

from __future__ import annotations

import bz2
import errno
import gzip
import io
import os
import stat
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from cryoden.errors import InputFileError

HEADER_BYTES = 1024
MAP_STAMP_OFFSET = 208
_MACHINE_STAMP_OFFSET = 212
GZIP_MAGIC = b"\x1f\x8b"
BZIP2_MAGIC = b"BZ"  # mrcfile's test: no MAP stamp and these first bytes mean compressed

#: Bytes per voxel of the modes :mod:`mrcfile` can interpret.
MODE_BYTES: dict[int, int] = {0: 1, 1: 2, 2: 4, 4: 8, 6: 2, 12: 2}
#: Real-valued modes that cryoden reads (converted to float32), with their data types.
REAL_MODES: dict[int, str] = {0: "int8", 1: "int16", 2: "float32", 6: "uint16", 12: "float16"}
#: Modes of the MRC2014 standard that cryoden refuses, with the reason.
REFUSED_MODES: dict[int, str] = {
    3: "complex int16",
    4: "complex float32",
    101: "4-bit packed data",
}
#: Share of the available memory a single read may claim when no ``max_bytes`` is given.
READ_BUDGET_FRACTION = 0.75
_CHUNK_BYTES = 1 << 22
_VOLUME_STACK_SPACE_GROUPS = range(401, 631)
_FILE_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


@dataclass(frozen=True)
class MrcHeader:
    """What the first 1024 bytes of an MRC file claim.

    Attributes
    ----------
    mode
        The MRC data mode (one of :data:`REAL_MODES`).
    shape
        ``(nz, ny, nx)`` in voxels, all >= 1.
    extended_bytes
        Length of the extended header in bytes.
    stamped
        Whether the ``MAP`` stamp is present.
    compression
        ``"gzip"``, ``"bzip2"`` or None for a plain file.
    file_bytes
        Size of the file on disk (compressed size for a compressed file).
    """

    mode: int
    shape: tuple[int, int, int]
    extended_bytes: int
    stamped: bool
    compression: str | None
    file_bytes: int

    @property
    def data_bytes(self) -> int:
        """Length of the data block in bytes, as the header announces it."""
        nz, ny, nx = self.shape
        return nz * ny * nx * MODE_BYTES[self.mode]

    @property
    def total_bytes(self) -> int:
        """Header, extended header and data block: the (decompressed) file length claimed."""
        return HEADER_BYTES + self.extended_bytes + self.data_bytes

    @property
    def memory_bytes(self) -> int:
        """Peak memory a read needs: the raw data block plus its float32 copy, and the whole
        decompressed stream for a compressed file."""
        nz, ny, nx = self.shape
        raw = self.total_bytes if self.compression else 0
        return raw + self.extended_bytes + self.data_bytes + 4 * nz * ny * nx


def available_memory_bytes() -> int | None:
    """Memory this process may still use, in bytes: the least of ``MemAvailable``, the cgroup
    limit's headroom and the address-space limit's headroom; None when none is known."""
    limits: list[int] = []
    try:
        with open("/proc/meminfo", encoding="ascii") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    limits.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = Path("/sys/fs/cgroup/memory.current").read_text().strip()
        if limit.isdigit() and used.isdigit():
            limits.append(max(int(limit) - int(used), 0))
    except OSError:
        pass
    try:
        import resource  # POSIX only

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            limits.append(max(soft - _virtual_memory_bytes(), 0))
    except (ImportError, OSError, ValueError):
        pass
    return min(limits) if limits else None


def _virtual_memory_bytes() -> int:
    """This process's address-space size in bytes (0 when unknown)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def default_max_bytes() -> int | None:
    """The memory budget of one read in bytes: :data:`READ_BUDGET_FRACTION` of the available
    memory, or None (no budget) when the available memory is unknown."""
    available = available_memory_bytes()
    return None if available is None else int(available * READ_BUDGET_FRACTION)


def check_regular_file(path: Path) -> int:
    """Raise :class:`InputFileError` unless ``path`` is a non-empty regular file; return its
    size in bytes. Nothing is opened: a FIFO or a device is refused from ``os.stat`` alone."""
    try:
        info = os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InputFileError(path, "symbolic link loop; not a file") from None
        if exc.errno == errno.ENOENT and os.path.islink(path):
            raise InputFileError(path, "file not found (broken symbolic link)") from None
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            raise InputFileError(path, "file not found") from None
        raise InputFileError(path, f"cannot be read ({exc.strerror or exc})") from None
    except ValueError as exc:  # an embedded NUL byte in the name
        raise InputFileError(path, f"not a valid file name ({exc})") from None
    mode = info.st_mode
    if stat.S_ISDIR(mode):
        raise InputFileError(path, "is a directory, not an MRC file")
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _FILE_KINDS if test(mode)), "not a regular file")
        raise InputFileError(path, f"is {kind}; only regular files are read")
    if info.st_size == 0:
        raise InputFileError(path, "file is empty (0 bytes)")
    return info.st_size


def _open_regular(path: Path) -> BinaryIO:
    """Open ``path`` for reading without blocking, and check again that it is a regular file
    (it may have been swapped for a FIFO since :func:`check_regular_file`)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise InputFileError(path, f"cannot be read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise InputFileError(path, "is not a regular file; only regular files are read")
    return os.fdopen(fd, "rb")


def _decompressor(handle: BinaryIO, compression: str) -> io.BufferedIOBase:
    if compression == "gzip":
        return gzip.GzipFile(fileobj=handle, mode="rb")
    return bz2.BZ2File(handle, mode="rb")


def _stream_error(path: Path, exc: Exception) -> InputFileError:
    if isinstance(exc, EOFError):
        return InputFileError(path, "truncated gzip/bzip2 stream (it ends before its end marker)")
    return InputFileError(path, f"corrupt gzip/bzip2 stream ({exc})")


def read_decompressed(path: Path, compression: str, length: int) -> bytes:
    """The first ``length`` bytes of a gzip/bzip2 file's decompressed stream, read in chunks
    (never more than ``length`` bytes are held); raise :class:`InputFileError` if the stream is
    corrupt or shorter than ``length``."""
    parts: list[bytes] = []
    got = 0
    try:
        with _open_regular(path) as handle, _decompressor(handle, compression) as stream:
            while got < length:
                chunk = stream.read(min(_CHUNK_BYTES, length - got))
                if not chunk:
                    break
                parts.append(chunk)
                got += len(chunk)
            if got == length:
                # One more byte reaches the stream's end marker, so its checksum is verified;
                # trailing bytes beyond the claim are left unread (mrcfile ignores them too).
                stream.read(1)
    except (EOFError, OSError, zlib.error, ValueError) as exc:
        raise _stream_error(path, exc) from None
    if got < length:
        raise InputFileError(
            path, f"truncated: the decompressed stream holds {got} bytes, header announces {length}"
        )
    return b"".join(parts)


def _compression(head: bytes) -> str | None:
    """``"gzip"``/``"bzip2"`` when mrcfile would decompress the file (no MAP stamp, magic bytes)."""
    if head[MAP_STAMP_OFFSET : MAP_STAMP_OFFSET + 4] == b"MAP ":
        return None
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(BZIP2_MAGIC):
        return "bzip2"
    return None


def _read_head(path: Path) -> tuple[bytes, str | None]:
    """The first 1024 bytes of the file (decompressed for gzip/bzip2) and its compression."""
    try:
        with _open_regular(path) as handle:
            raw = handle.read(HEADER_BYTES)
    except OSError as exc:
        raise InputFileError(path, f"cannot be read ({exc.strerror or exc})") from None
    compression = _compression(raw)
    if compression is None:
        return raw, None
    try:
        with _open_regular(path) as handle, _decompressor(handle, compression) as stream:
            head = stream.read(HEADER_BYTES)
    except (EOFError, OSError, zlib.error, ValueError) as exc:
        raise _stream_error(path, exc) from None
    if len(head) < HEADER_BYTES:
        raise InputFileError(
            path,
            f"not an MRC file ({compression} stream of {len(head)} bytes, "
            "shorter than the 1024-byte MRC header)",
        )
    return head, compression


def _byte_order(head: bytes) -> str:
    """mrcfile's reading: byte order from the machine stamp, flipped when only the other order
    gives a known mode."""
    stamp = head[_MACHINE_STAMP_OFFSET : _MACHINE_STAMP_OFFSET + 2]
    order = ">" if stamp == b"\x11\x11" else "<"  # mrcfile's permissive default is little
    mode = _word(head, 3, order)
    flipped = ">" if order == "<" else "<"
    if mode not in MODE_BYTES and _word(head, 3, flipped) in MODE_BYTES:
        return flipped
    return order


def _word(head: bytes, index: int, order: str) -> int:
    """The ``index``-th 32-bit signed integer of the header."""
    return int(np.frombuffer(head, dtype=f"{order}i4", count=1, offset=4 * index)[0])


def parse_header(path: Path, head: bytes, size: int, compression: str | None) -> MrcHeader:
    """Interpret and check a 1024-byte header; raise :class:`InputFileError` for a header that
    does not describe readable real 2D/3D data in a file of ``size`` bytes."""
    stamped = head[MAP_STAMP_OFFSET : MAP_STAMP_OFFSET + 3] == b"MAP"
    order = _byte_order(head)
    nx, ny, nz, mode = (_word(head, i, order) for i in range(4))
    extended = _word(head, 23, order)
    space_group = _word(head, 22, order)
    if mode in REFUSED_MODES:
        raise InputFileError(
            path, f"MRC mode {mode} ({REFUSED_MODES[mode]}) is not supported; need real data"
        )
    if mode not in REAL_MODES:
        if stamped:
            raise InputFileError(path, f"unsupported MRC mode {mode}")
        raise InputFileError(path, "not an MRC file (no MAP stamp and no valid data mode)")
    if min(nx, ny, nz) < 0:
        what = "corrupt header" if stamped else "not an MRC file or corrupt header"
        raise InputFileError(path, f"{what}: negative dimensions (nx, ny, nz) = {(nx, ny, nz)}")
    if min(nx, ny, nz) == 0:
        raise InputFileError(path, f"image is empty (header dimensions {(nx, ny, nz)})")
    if space_group in _VOLUME_STACK_SPACE_GROUPS:
        raise InputFileError(
            path,
            f"expected a 2D image or 3D stack/volume, got a 4D volume stack "
            f"(space group {space_group})",
        )
    if extended < 0 or (compression is None and extended > size - HEADER_BYTES):
        raise InputFileError(
            path,
            f"truncated or corrupt: header announces a {extended}-byte extended header "
            f"in a {size}-byte file",
        )
    return MrcHeader(mode, (nz, ny, nx), extended, stamped, compression, size)


def check_claim(path: Path, header: MrcHeader, max_bytes: int | None) -> None:
    """Raise :class:`InputFileError` if the header claims more bytes than the file holds (plain
    files) or than the memory budget ``max_bytes`` allows (None: no budget)."""
    nz, ny, nx = header.shape
    if header.compression is None and header.total_bytes > header.file_bytes:
        what = "truncated" if header.stamped else "not an MRC file or truncated"
        raise InputFileError(
            path, f"{what}: {header.file_bytes} bytes, header announces {header.total_bytes}"
        )
    if max_bytes is not None and header.memory_bytes > max_bytes:
        raise InputFileError(
            path,
            f"header claims {nx} x {ny} x {nz} voxels of mode {header.mode}, needing "
            f"{header.memory_bytes} bytes of memory, more than the budget max_bytes={max_bytes}",
        )


def screen_mrc(path: Path, max_bytes: int | None) -> MrcHeader:
    """Check that ``path`` is a regular MRC file whose header claim fits the file and the
    memory budget ``max_bytes`` (None: no budget); return its header. Reads at most the first
    1024 (decompressed) bytes."""
    size = check_regular_file(path)
    head, compression = _read_head(path)
    if len(head) < HEADER_BYTES:
        if head[MAP_STAMP_OFFSET : MAP_STAMP_OFFSET + 4] == b"MAP ":
            raise InputFileError(
                path, f"truncated: {size} bytes, shorter than the 1024-byte MRC header"
            )
        raise InputFileError(
            path, f"not an MRC file ({size} bytes, shorter than the 1024-byte MRC header)"
        )
    header = parse_header(path, head, size, compression)
    check_claim(path, header, max_bytes)
    return header
