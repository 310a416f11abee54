"""MRC/MRCS reading and writing, thin over :mod:`mrcfile`.

Reading returns float32 data in mrcfile's axis order -- ``(H, W)`` images, ``(N, H, W)`` stacks,
``(Z, Y, X)`` volumes -- with the voxel size and origin in Å. Files are opened strictly first;
a file that mrcfile rejects only for a sloppy header (no ``MAP`` stamp, zero cell, unknown
machine stamp, as written by old Leginon or RELION versions) is re-read in permissive mode and a
``logging`` warning says so. Unusable files raise :class:`~cryoden.errors.InputFileError`. Before
mrcfile sees a file, :mod:`cryoden.io.mrc_header` screens it: only regular files, and a header
whose claimed data size fits the file and a memory budget (``max_bytes``).

Writing is float32 and atomic (see :mod:`cryoden.io.atomic`) and refuses to overwrite the inputs.
"""

from __future__ import annotations

import io
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
from mrcfile.mrcfile import MrcFile
from mrcfile.mrcinterpreter import MrcInterpreter

from cryoden.errors import InputFileError, ParameterError
from cryoden.io.atomic import atomic_output
from cryoden.io.mrc_header import (
    REAL_MODES,
    MrcHeader,
    default_max_bytes,
    read_decompressed,
    screen_mrc,
)

logger = logging.getLogger(__name__)

#: MRC modes read by :func:`read_mrc` (converted to float32): int8, int16, float32, uint16 and
#: float16 (mode 12).
READABLE_MODES: dict[int, str] = REAL_MODES
#: Modes that exist in the MRC2014 standard but hold complex data, which cryoden does not read.
COMPLEX_MODES: dict[int, str] = {3: "complex int16", 4: "complex float32"}

STACK_SUFFIXES: tuple[str, ...] = (".mrcs",)
#: Data types :func:`write_mrc` writes: float32 (mode 2) and float16 (mode 12).
WRITE_DTYPES: tuple[str, ...] = ("float32", "float16")
#: Largest finite float16 value.
FLOAT16_MAX = float(np.finfo(np.float16).max)

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


def _diagnose_unreadable(problems: list[str]) -> str:
    """Why a permissively opened file (whose header passed the screen) has no data."""
    return f"data block cannot be read ({'; '.join(problems) or 'unknown reason'})"


def _labels(mrc: Any) -> tuple[str, ...]:
    """The header's text labels (at most 10 of 80 characters), tolerating sloppy headers."""
    try:
        return tuple(str(label).strip() for label in mrc.get_labels() if str(label).strip())
    except (ValueError, UnicodeDecodeError, AttributeError):
        return ()


#: What mrcfile (and numpy beneath it) may raise for a file that passed the header screen but
#: still cannot be read: bad values, a file changed or failing while read.
_READ_ERRORS = (ValueError, OSError, EOFError, ArithmeticError, IndexError, TypeError, KeyError)


def _open(path: Path, raw: bytes | None, *, permissive: bool) -> Any:
    """An open mrcfile object: the plain file itself, or the decompressed bytes ``raw``."""
    if raw is not None:
        return MrcInterpreter(iostream=io.BytesIO(raw), permissive=permissive)
    return MrcFile(path, mode="r", permissive=permissive)


def _read_open(path: Path, mrc: Any) -> tuple[np.ndarray, Triple, Triple, tuple[str, ...]]:
    data = np.array(mrc.data, dtype=np.float32)
    voxel = _finite_triple(mrc.voxel_size, "voxel size", path)
    origin = _finite_triple(mrc.header.origin, "origin", path)
    return data, voxel, origin, _labels(mrc)


def _load(path: Path, header: MrcHeader) -> tuple[np.ndarray, Triple, Triple, tuple[str, ...]]:
    """Open strictly, falling back to permissive mode; return data, voxel size, origin, labels.

    A compressed file is decompressed once, bounded by the header's claim, and parsed from
    memory; a plain file is read by mrcfile directly.
    """
    raw = None
    if header.compression is not None:
        raw = read_decompressed(path, header.compression, header.total_bytes)
    strict_error = ""
    with _recorded_warnings() as caught:
        try:
            with _open(path, raw, permissive=False) as mrc:
                loaded = _read_open(path, mrc)
        except ValueError as exc:
            strict_error = str(exc)
        except _READ_ERRORS as exc:
            raise InputFileError(path, f"cannot be read ({exc})") from exc
    if not strict_error:
        notes = _messages(caught)
        if notes:
            logger.warning("%s: %s", path, "; ".join(notes))
        return loaded

    with _recorded_warnings() as caught:
        try:
            with _open(path, raw, permissive=True) as mrc:
                if mrc.data is None:
                    raise InputFileError(path, _diagnose_unreadable(_messages(caught)))
                loaded = _read_open(path, mrc)
        except ValueError as exc:
            raise InputFileError(path, f"not a readable MRC file ({exc})") from exc
        except _READ_ERRORS as exc:
            raise InputFileError(path, f"cannot be read ({exc})") from exc
    logger.warning(
        "%s: non-standard MRC header, read in permissive mode (%s)",
        path,
        "; ".join(_messages(caught)) or strict_error,
    )
    return loaded


def _budget(max_bytes: int | None) -> int | None:
    """``max_bytes`` checked, or the default budget when None."""
    if max_bytes is None:
        return default_max_bytes()
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, (int, np.integer)) or max_bytes < 1:
        raise ParameterError(
            f"max_bytes must be a positive whole number of bytes, got {max_bytes!r}"
        )
    return int(max_bytes)


def read_mrc(path: PathLike, *, max_bytes: int | None = None) -> MrcData:
    """Read an MRC image, stack or volume as float32.

    Parameters
    ----------
    path
        An ``.mrc``/``.mrcs``/``.map`` file (gzip/bzip2-compressed files work too). Modes 0
        (int8), 1 (int16), 2 (float32), 6 (uint16) and 12 (float16) are converted to float32.
    max_bytes
        Memory budget of the read in bytes: a header whose data (raw plus its float32 copy)
        would need more is refused before anything is allocated. None: a share
        (:data:`~cryoden.io.mrc_header.READ_BUDGET_FRACTION`) of the available memory.

    Returns
    -------
    MrcData
        ``data`` is ``(H, W)`` for a single image, ``(N, H, W)`` for a stack (a ``.mrcs`` file
        always gives a stack, even of one image) and ``(Z, Y, X)`` for a volume; voxel size
        ``(x, y, z)`` and origin ``(x, y, z)`` in Å, 0 where the header has none.

    Raises
    ------
    InputFileError
        If the file is missing, not a regular file (folder, FIFO, device, symbolic link loop),
        empty, truncated (including a truncated gzip/bzip2 stream), not an MRC file, holds
        complex or 4D data, an empty image, more data than ``max_bytes``, or any NaN or
        infinite value.
    ParameterError
        If ``max_bytes`` is not a positive integer.

    Notes
    -----
    The header is screened first (:func:`cryoden.io.mrc_header.screen_mrc`): its claimed size
    must fit the file and the budget. Headers that mrcfile rejects in strict mode (no ``MAP``
    stamp, unknown machine stamp, zero cell) are then read again in mrcfile's permissive mode;
    a ``logging`` warning names the problems.
    """
    file = Path(path)
    header = screen_mrc(file, _budget(max_bytes))
    data, voxel, origin, labels = _load(file, header)
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
        if not isinstance(value, Iterable):
            items = [float(value)] * 3
        elif np.ndim(np.asarray(value)) > 0:
            items = [float(v) for v in value]
        else:  # a 0-d numpy array is Iterable yet holds one number
            items = [float(np.asarray(value))] * 3
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
    dtype: str = "float32",
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
    dtype
        ``"float32"`` (mode 2) or ``"float16"`` (mode 12, half the bytes); values beyond
        float16's range (:data:`FLOAT16_MAX`) are refused with a :class:`ParameterError`.

    Raises
    ------
    InputFileError
        If ``path`` is one of ``protected``.
    OutputFileError
        If the folder does not exist or is a file, or the file system refuses the write (full,
        read-only, permission denied).
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
    if dtype not in WRITE_DTYPES:
        raise ParameterError(f"dtype must be one of {', '.join(WRITE_DTYPES)}, got {dtype!r}")
    if dtype == "float16" and array.size and float(np.max(np.abs(array))) > FLOAT16_MAX:
        raise ParameterError(
            f"values up to {float(np.max(np.abs(array))):.6g} overflow float16 (largest "
            f"{FLOAT16_MAX:g}); write float32 instead"
        )
    voxel = _as_triple(voxel_size_angstrom, "voxel_size_angstrom", positive=True)
    origin = _as_triple(origin_angstrom, "origin_angstrom", positive=False)
    with atomic_output(path) as tmp:
        _write_mrc_file(
            tmp,
            array.astype(np.dtype(dtype), copy=False),
            voxel,
            origin,
            stack=is_stack_path(path),
            labels=labels,
        )


def probe_mrc(path: PathLike, *, max_bytes: int | None = None) -> tuple[int, ...]:
    """Check an MRC file from its header and size alone; return its data shape ``(nz, ny, nx)``.

    Cheap (no data is read), for checking a whole batch of inputs before writing any output.
    A compressed file's header is decompressed, but not its data: whether the stream holds all
    the data it announces is known only when :func:`read_mrc` reads it.

    Parameters
    ----------
    path
        The MRC file.
    max_bytes
        Memory budget in bytes, as for :func:`read_mrc`.

    Raises
    ------
    InputFileError
        If the file is missing, not a regular file, empty, not MRC, of an unsupported mode,
        shorter than its header announces (truncated) or larger than ``max_bytes`` allows.
    """
    file = Path(path)
    return screen_mrc(file, _budget(max_bytes)).shape
