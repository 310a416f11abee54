"""MRC/MRCS reading and writing, thin over :mod:`mrcfile`.

Reading returns float32 data in mrcfile's axis order -- ``(H, W)`` images, ``(N, H, W)`` stacks,
``(Z, Y, X)`` volumes -- with the voxel size and origin in Å. Files are opened strictly first;
a file that mrcfile rejects only for a sloppy header (no ``MAP`` stamp, zero cell, unknown
machine stamp, as written by old Leginon or RELION versions) is re-read in permissive mode and a
``logging`` warning says so. Unusable files raise :class:`~cryoden.errors.InputFileError`.

Writing is float32 and atomic (see :mod:`cryoden.io.atomic`) and refuses to overwrite the inputs.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mrcfile
import numpy as np

from cryoden.errors import InputFileError, ParameterError
from cryoden.io.atomic import atomic_output

logger = logging.getLogger(__name__)

#: MRC modes read by :func:`read_mrc` (converted to float32): int8, int16, float32, uint16,
#: float16 (mode 12) and mrcfile's unpacked 4-bit mode 101.
READABLE_MODES: dict[int, str] = {
    0: "int8",
    1: "int16",
    2: "float32",
    6: "uint16",
    12: "float16",
    101: "4-bit",
}
#: Modes that exist in the MRC2014 standard but hold complex data, which cryoden does not read.
COMPLEX_MODES: dict[int, str] = {3: "complex int16", 4: "complex float32"}

STACK_SUFFIXES: tuple[str, ...] = (".mrcs",)
_HEADER_BYTES = 1024
_MAP_STAMP_OFFSET = 208
_COMPRESSED_MAGIC = (b"\x1f\x8b", b"BZh")  # gzip, bzip2: mrcfile.open decompresses these

PathLike = str | os.PathLike[str]
Triple = tuple[float, float, float]


@dataclass(frozen=True, eq=False)
class MrcData:
    """Data and geometry read from an MRC file.

    Attributes
    ----------
    data
        float32 array: ``(H, W)`` image, ``(N, H, W)`` stack or ``(Z, Y, X)`` volume.
    voxel_size_angstrom
        ``(x, y, z)`` voxel size in Å; 0 on an axis when the header does not give it.
    origin_angstrom
        ``(x, y, z)`` origin in Å from the header's ``origin`` field (0 when absent).
    path
        The file it was read from.
    labels
        The header's text labels (processing history), in order.
    """

    data: np.ndarray
    voxel_size_angstrom: Triple
    origin_angstrom: Triple
    path: str
    labels: tuple[str, ...] = ()

    @property
    def pixel_size_angstrom(self) -> float | None:
        """The x voxel size in Å, or None when the header does not give one."""
        size = self.voxel_size_angstrom[0]
        return float(size) if size > 0 else None


def is_stack_path(path: PathLike) -> bool:
    """True if ``path`` names an image stack by its suffix (``.mrcs``, case-insensitive)."""
    return Path(path).suffix.lower() in STACK_SUFFIXES


# --------------------------------------------------------------------------------------------
# reading


@contextmanager
def _recorded_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """Record every warning raised in the block instead of letting it escape."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with np.errstate(all="ignore"):
            yield caught


def _messages(caught: Iterable[warnings.WarningMessage]) -> list[str]:
    seen: list[str] = []
    for item in caught:
        text = str(item.message)
        if text not in seen:
            seen.append(text)
    return seen


def _finite_triple(values: Any, name: str, path: Path) -> Triple:
    """Three header floats (x, y, z); non-finite entries (from a zero cell) become 0."""
    out = [float(values[axis]) for axis in ("x", "y", "z")]
    if not all(np.isfinite(out)):
        logger.debug("%s: header %s %s is not finite; using 0 (unknown)", path, name, out)
    # The header holds float32: keep 7 significant digits so 1.1 reads back as 1.1.
    out = [float(f"{v:.7g}") if np.isfinite(v) else 0.0 for v in out]
    return (out[0], out[1], out[2])


def _check_file(path: Path) -> None:
    """Raise for a missing, unreadable, empty or too-short file."""
    if not path.exists():
        raise InputFileError(path, "file not found")
    if path.is_dir():
        raise InputFileError(path, "is a directory, not an MRC file")
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            head = handle.read(_HEADER_BYTES)
    except OSError as exc:
        raise InputFileError(path, f"cannot be read ({exc.strerror or exc})") from exc
    if size == 0:
        raise InputFileError(path, "file is empty (0 bytes)")
    if len(head) < _HEADER_BYTES and not head.startswith(_COMPRESSED_MAGIC):
        stamp = head[_MAP_STAMP_OFFSET : _MAP_STAMP_OFFSET + 4]
        if stamp == b"MAP ":
            raise InputFileError(
                path, f"truncated: {size} bytes, shorter than the 1024-byte MRC header"
            )
        raise InputFileError(
            path, f"not an MRC file ({size} bytes, shorter than the 1024-byte MRC header)"
        )
    if not head.startswith(_COMPRESSED_MAGIC):
        _screen_header(path, head, size)


def _screen_header(path: Path, head: bytes, size: int) -> None:
    """Reject obvious non-MRC files before mrcfile sees them.

    Only the mode (word 4) and extended-header size (word 24) are looked at, in both byte
    orders; mrcfile does the real parsing. This spares mrcfile's permissive mode from
    allocating an "extended header" of gigabytes for, say, a text file.
    """
    known = set(READABLE_MODES) | set(COMPLEX_MODES)
    for order in ("<", ">"):
        mode = int(np.frombuffer(head, dtype=f"{order}i4", count=1, offset=12)[0])
        extended = int(np.frombuffer(head, dtype=f"{order}i4", count=1, offset=92)[0])
        if mode in known:
            if not 0 <= extended <= size - _HEADER_BYTES:
                raise InputFileError(
                    path,
                    f"truncated or corrupt: header announces a {extended}-byte extended header "
                    f"in a {size}-byte file",
                )
            return
    if head[_MAP_STAMP_OFFSET : _MAP_STAMP_OFFSET + 4] == b"MAP ":
        mode = int(np.frombuffer(head, dtype="<i4", count=1, offset=12)[0])
        raise InputFileError(path, f"unsupported MRC mode {mode}")
    raise InputFileError(path, "not an MRC file (no MAP stamp and no valid data mode)")


def _header_is_plausible(header: Any) -> bool:
    """Whether a permissively read header could describe real MRC data."""
    mode = int(header.mode)
    dims = (int(header.nx), int(header.ny), int(header.nz))
    return (mode in READABLE_MODES or mode in COMPLEX_MODES) and all(d >= 0 for d in dims)


def _diagnose_unreadable(header: Any, problems: list[str]) -> str:
    """Why a permissively opened file has no data: not an MRC file, or truncated."""
    if header is None or not _header_is_plausible(header):
        return f"not an MRC file ({problems[0] if problems else 'invalid header'})"
    stamped = bytes(header.map) == b"MAP "
    for problem in problems:
        if "bytes" in problem and ("limit" in problem or "could only" in problem):
            # Without the stamp a short data block may as well mean a file of another format.
            return f"{'truncated' if stamped else 'not an MRC file or truncated'} ({problem})"
    return f"data block cannot be read ({'; '.join(problems) or 'unknown reason'})"


def _labels(mrc: Any) -> tuple[str, ...]:
    """The header's text labels (at most 10 of 80 characters), tolerating sloppy headers."""
    try:
        return tuple(str(label).strip() for label in mrc.get_labels() if str(label).strip())
    except (ValueError, UnicodeDecodeError, AttributeError):
        return ()


def _load(path: Path) -> tuple[np.ndarray, Triple, Triple, tuple[str, ...]]:
    """Open strictly, falling back to permissive mode; return data, voxel size, origin."""
    strict_error = ""
    with _recorded_warnings() as caught:
        try:
            with mrcfile.open(path, mode="r", permissive=False) as mrc:
                data = np.array(mrc.data, dtype=np.float32)
                voxel = _finite_triple(mrc.voxel_size, "voxel size", path)
                origin = _finite_triple(mrc.header.origin, "origin", path)
                labels = _labels(mrc)
        except ValueError as exc:
            strict_error = str(exc)
        except OSError as exc:
            raise InputFileError(path, f"cannot be read ({exc})") from exc
    if not strict_error:
        notes = _messages(caught)
        if notes:
            logger.warning("%s: %s", path, "; ".join(notes))
        return data, voxel, origin, labels

    with _recorded_warnings() as caught:
        try:
            with mrcfile.open(path, mode="r", permissive=True) as mrc:
                if mrc.data is None:
                    raise InputFileError(path, _diagnose_unreadable(mrc.header, _messages(caught)))
                data = np.array(mrc.data, dtype=np.float32)
                voxel = _finite_triple(mrc.voxel_size, "voxel size", path)
                origin = _finite_triple(mrc.header.origin, "origin", path)
                labels = _labels(mrc)
        except ValueError as exc:
            raise InputFileError(path, f"not a readable MRC file ({exc})") from exc
        except OSError as exc:
            raise InputFileError(path, f"cannot be read ({exc})") from exc
    logger.warning(
        "%s: non-standard MRC header, read in permissive mode (%s)",
        path,
        "; ".join(_messages(caught)) or strict_error,
    )
    return data, voxel, origin, labels


def _check_complex(path: Path) -> None:
    """Reject complex modes before converting (float32 conversion would drop the imaginary)."""
    with _recorded_warnings():
        try:
            with mrcfile.open(path, mode="r", permissive=True, header_only=True) as mrc:
                mode = int(mrc.header.mode)
        except (ValueError, OSError):
            return
    if mode in COMPLEX_MODES:
        raise InputFileError(
            path, f"MRC mode {mode} ({COMPLEX_MODES[mode]}) is not supported; need real data"
        )


def read_mrc(path: PathLike) -> MrcData:
    """Read an MRC image, stack or volume as float32.

    Parameters
    ----------
    path
        An ``.mrc``/``.mrcs``/``.map`` file (gzip/bzip2-compressed files work too). Modes 0
        (int8), 1 (int16), 2 (float32), 6 (uint16) and 12 (float16) are converted to float32.

    Returns
    -------
    MrcData
        ``data`` is ``(H, W)`` for a single image, ``(N, H, W)`` for a stack (a ``.mrcs`` file
        always gives a stack, even of one image) and ``(Z, Y, X)`` for a volume; voxel size
        ``(x, y, z)`` and origin ``(x, y, z)`` in Å, 0 where the header has none.

    Raises
    ------
    InputFileError
        If the file is missing, empty, truncated, not an MRC file, holds complex or 4D data, an
        empty image, or any NaN or infinite value.

    Notes
    -----
    Headers that mrcfile rejects in strict mode (no ``MAP`` stamp, unknown machine stamp, zero
    cell) are read again with ``mrcfile.open(..., permissive=True)``; a ``logging`` warning names
    the problems. If the permissive read still gives no data the file is truncated or not MRC.
    """
    file = Path(path)
    _check_file(file)
    _check_complex(file)
    data, voxel, origin, labels = _load(file)
    if data.ndim not in (2, 3):
        raise InputFileError(
            file, f"expected a 2D image or 3D stack/volume, got shape {data.shape}"
        )
    if data.size == 0:
        raise InputFileError(file, f"image is empty (shape {data.shape})")
    finite = np.isfinite(data)
    if not finite.all():
        bad = int(data.size - np.count_nonzero(finite))
        raise InputFileError(file, f"contains NaN or infinite values ({bad} of {data.size} voxels)")
    if data.ndim == 2 and is_stack_path(file):
        data = data[np.newaxis]
    logger.debug("read %s: shape %s, voxel size %s Å", file, data.shape, voxel)
    return MrcData(
        data=data, voxel_size_angstrom=voxel, origin_angstrom=origin, path=str(file), labels=labels
    )


# --------------------------------------------------------------------------------------------
# writing


def _as_triple(value: float | Iterable[float] | None, name: str, *, positive: bool) -> Triple:
    if value is None:
        return (0.0, 0.0, 0.0)
    try:
        if isinstance(value, Iterable) and np.ndim(value) > 0:
            items = [float(v) for v in value]
        else:
            items = [float(value)] * 3
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a number or (x, y, z) in Å, got {value!r}") from None
    if len(items) != 3:
        raise ParameterError(f"{name} must be a number or (x, y, z), got {value!r}")
    for item in items:
        if not np.isfinite(item) or (positive and item < 0):
            need = "finite and >= 0" if positive else "finite"
            raise ParameterError(f"{name} must be {need} (Å), got {value!r}")
    return (items[0], items[1], items[2])


def _same_file(a: str, b: str) -> bool:
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_not_protected(path: PathLike, protected: Iterable[PathLike]) -> None:
    """Raise :class:`InputFileError` if ``path`` resolves to any of the ``protected`` paths."""
    target = os.fspath(path)
    for item in protected:
        if _same_file(target, os.fspath(item)):
            raise InputFileError(target, f"refusing to overwrite the input file {os.fspath(item)}")


def _write_mrc_file(
    tmp: Path,
    data: np.ndarray,
    voxel: Triple,
    origin: Triple,
    *,
    stack: bool,
    labels: Sequence[str] = (),
) -> None:
    """Write ``data`` with its geometry and labels to ``tmp`` (an existing temporary file)."""
    with mrcfile.new(tmp, overwrite=True) as mrc:
        if labels:  # replace mrcfile's own "Created by" label with the given history
            mrc.header.label[:] = b""
            mrc.header.nlabl = 0
            for label in list(labels)[-10:]:  # the header holds 10; keep the most recent
                mrc.add_label(label.encode("ascii", "replace").decode()[:80])
        mrc.set_data(data)
        if data.ndim == 3:
            if stack:
                mrc.set_image_stack()
            else:
                mrc.set_volume()
        mrc.voxel_size = voxel
        mrc.header.origin.x, mrc.header.origin.y, mrc.header.origin.z = origin


def write_mrc(
    path: PathLike,
    data: np.ndarray,
    *,
    voxel_size_angstrom: float | Iterable[float] | None = None,
    origin_angstrom: Iterable[float] | None = None,
    protected: Iterable[PathLike] = (),
    labels: Sequence[str] = (),
) -> None:
    """Write an image, stack or volume as a float32 (mode 2) MRC file, atomically.

    Parameters
    ----------
    path
        Output file. A ``.mrcs`` suffix marks 3D data as an image stack (space group 0);
        otherwise 3D data is written as a volume (space group 1).
    data
        ``(H, W)``, ``(N, H, W)`` or ``(Z, Y, X)`` real array, converted to float32.
    voxel_size_angstrom
        Voxel size in Å, one number or ``(x, y, z)``; None writes 0 (unknown).
    origin_angstrom
        Origin ``(x, y, z)`` in Å; None writes ``(0, 0, 0)``.
    protected
        Paths that must not be overwritten (the inputs). Symbolic links and other aliases of
        the same file are recognised.
    labels
        Header text labels (processing history; ASCII, 80 characters each). The header holds
        10: when more are given, the last 10 are kept.

    Raises
    ------
    InputFileError
        If ``path`` is one of ``protected`` or its folder does not exist.
    ParameterError
        If ``data`` is not 2D or 3D finite real data, or a geometry value is invalid.

    Notes
    -----
    The file is written to a temporary file in the same folder and moved onto ``path`` with
    :func:`os.replace` only when complete; on any error the temporary file is removed and an
    existing ``path`` is left as it was.
    """
    check_not_protected(path, protected)
    array = np.asarray(data)
    if array.ndim not in (2, 3):
        raise ParameterError(f"MRC data must be 2D or 3D, got shape {array.shape}")
    if np.iscomplexobj(array):
        raise ParameterError("MRC data must be real, got complex values")
    if np.issubdtype(array.dtype, np.number) and not np.isfinite(array).all():
        raise ParameterError("MRC data contains NaN or infinite values; not writing it")
    voxel = _as_triple(voxel_size_angstrom, "voxel_size_angstrom", positive=True)
    origin = _as_triple(origin_angstrom, "origin_angstrom", positive=False)
    with atomic_output(path) as tmp:
        _write_mrc_file(
            tmp,
            array.astype(np.float32, copy=False),
            voxel,
            origin,
            stack=is_stack_path(path),
            labels=labels,
        )


_MODE_BYTES = {0: 1, 1: 2, 2: 4, 6: 2, 12: 2}


def probe_mrc(path: PathLike) -> tuple[int, ...]:
    """Check an MRC file from its header and size alone; return its data shape ``(nz, ny, nx)``.

    Cheap (no data is read), for checking a whole batch of inputs before writing any output.
    Compressed files are checked only as far as their header goes.

    Raises
    ------
    InputFileError
        If the file is missing, empty, not MRC, of an unsupported mode, or shorter than its
        header announces (truncated).
    """
    file = Path(path)
    _check_file(file)
    _check_complex(file)
    with _recorded_warnings():
        try:
            with mrcfile.open(file, mode="r", permissive=True, header_only=True) as mrc:
                header = mrc.header
                mode = int(header.mode)
                shape = (int(header.nz), int(header.ny), int(header.nx))
                extended = int(header.nsymbt)
        except (ValueError, OSError) as exc:
            raise InputFileError(file, f"not a readable MRC file ({exc})") from exc
    if mode not in _MODE_BYTES:
        raise InputFileError(file, f"unsupported MRC mode {mode}")
    if min(shape) < 1:
        raise InputFileError(file, f"image is empty (header dimensions {shape[::-1]})")
    with open(file, "rb") as handle:
        compressed = handle.read(3).startswith(_COMPRESSED_MAGIC)
    expected = _HEADER_BYTES + extended + int(np.prod(shape)) * _MODE_BYTES[mode]
    size = file.stat().st_size
    if not compressed and size < expected:
        raise InputFileError(file, f"truncated: {size} bytes, header announces {expected}")
    return shape
