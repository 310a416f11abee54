"""MRC volumes read and written a slab of sections at a time, so memory stays bounded.

A tomogram can be larger than the memory a program should take. :class:`VolumeReader` reads
any range of z-sections (``(Z, Y, X)``, mrcfile's order) straight from the file, without
loading the volume, and offers a read-only memory map (:attr:`VolumeReader.memmap`, through
``mrcfile.mmap``) for random access such as training patches. :class:`SlabWriter` writes an
output volume slab by slab into a temporary MRC file laid out by ``mrcfile.new_mmap`` (header,
then a data block of the final size) and renames it onto the output only when every section is
written, through :func:`cryoden.io.atomic.atomic_output`: a failed run leaves no partial file.

Sections are read and written with positioned file I/O rather than through the map, so the
pages of a large volume are not held in the process's resident memory after use. The header is
screened first (:func:`cryoden.io.mrc_header.screen_mrc`): a broken or hostile file fails in one
line. Compressed (gzip/bzip2) volumes cannot be read in part; they are read whole, within
:func:`~cryoden.io.mrc_header.default_max_bytes`.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Any

import mrcfile
import numpy as np
from mrcfile import utils as mrc_utils

from cryoden.errors import InputFileError, ParameterError
from cryoden.io.atomic import atomic_output
from cryoden.io.mrc import FLOAT16_MAX, WRITE_DTYPES, check_not_protected, is_stack_path, read_mrc
from cryoden.io.mrc_header import HEADER_BYTES, screen_mrc

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]
Triple = tuple[float, float, float]
ProgressCallback = Callable[[int, int], None]

#: Sections are read and checked in slabs of at most this many voxels.
SLAB_VOXELS = 1 << 24
#: Voxels in the regular sample that volume statistics (normalisation) are fitted on.
SAMPLE_VOXELS = 1 << 22
#: z-sections the voxel sample is spread over (fewer for thinner volumes).
SAMPLE_SECTIONS = 32
#: MRC mode of each output data type.
_MODES = {"float32": 2, "float16": 12}


def is_volume_path(path: PathLike) -> bool:
    """Whether ``path`` holds a volume (a tomogram, a map) rather than an image or a stack.

    A volume has more than one section, is not named as a stack (``.mrcs``), and its header
    says so: space group 1 (MRC2014's mark of a volume, which mrcfile and cryoden write), or,
    for writers that leave the space group at 0, a ``z`` voxel size equal to the ``x`` one
    (image stacks such as frame stacks have none along ``z``). Only the header is read
    (screened first, so a broken file raises :class:`InputFileError`).
    """
    file = Path(path)
    header = screen_mrc(file, None)
    if header.shape[0] < 2 or is_stack_path(file):
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with mrcfile.open(file, header_only=True, permissive=True) as mrc:
                space_group = int(mrc.header.ispg)
                x, _, z = (float(v) for v in mrc.voxel_size.tolist())
        except (ValueError, OSError) as exc:
            raise InputFileError(file, f"cannot be read ({exc})") from None
    if space_group == 1:
        return True
    return bool(x > 0 and z > 0 and abs(z - x) <= 1e-3 * x)


def _labels(header: Any) -> tuple[str, ...]:
    count = max(0, min(int(header.nlabl), len(header.label)))
    labels = (bytes(header.label[i]).decode("ascii", "replace").strip() for i in range(count))
    return tuple(label for label in labels if label)


def _triple(values: Any, path: Path, what: str) -> Triple:
    items = tuple(float(v) for v in values)
    if not all(np.isfinite(items)):
        logger.warning("%s: %s is not finite in the header; read as 0 (unknown)", path, what)
        items = tuple(v if np.isfinite(v) else 0.0 for v in items)
    return (items[0], items[1], items[2])


class VolumeReader:
    """An MRC volume read by sections, never whole (compressed files excepted).

    Parameters
    ----------
    path
        An MRC file holding a volume ``(Z, Y, X)``.

    Attributes
    ----------
    shape
        ``(Z, Y, X)`` in voxels.
    voxel_size_angstrom, origin_angstrom
        ``(x, y, z)`` in Å from the header (0 when unknown).
    labels
        The header's text labels.

    Raises
    ------
    InputFileError
        For a missing, broken or truncated file, a 2D image or an image stack (``.mrcs``).
    """

    def __init__(self, path: PathLike) -> None:
        self.path = Path(path)
        header = screen_mrc(self.path, None)
        if header.shape[0] == 1 or is_stack_path(self.path):
            stack = is_stack_path(self.path)
            kind = "an image stack (.mrcs)" if stack else "a 2D image"
            shape = header.shape if stack else header.shape[1:]
            raise InputFileError(self.path, f"is {kind} of shape {shape}, not a volume (Z, Y, X)")
        self.shape: tuple[int, int, int] = header.shape
        self._memmap: np.memmap | None = None
        self._array: np.ndarray | None = None
        if header.compression is not None:  # a compressed stream cannot be read in part
            mrc = read_mrc(self.path)
            self._array = mrc.data
            self.voxel_size_angstrom: Triple = mrc.voxel_size_angstrom
            self.origin_angstrom: Triple = mrc.origin_angstrom
            self.labels = mrc.labels
            self._dtype = np.dtype(np.float32)
            self._offset = 0
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # io.mrc reports sloppy headers; sections need none
            try:
                with mrcfile.open(self.path, header_only=True, permissive=True) as mrc:
                    head = mrc.header
                    self._dtype = mrc_utils.data_dtype_from_header(head)
                    self._offset = HEADER_BYTES + int(head.nsymbt)
                    voxel = _triple(mrc.voxel_size.tolist(), self.path, "voxel size")
                    origin = _triple(head.origin.tolist(), self.path, "origin")
                    self.labels = _labels(head)
            except (ValueError, OSError) as exc:
                raise InputFileError(self.path, f"cannot be read ({exc})") from None
        self.voxel_size_angstrom = voxel
        self.origin_angstrom = origin

    @property
    def pixel_size_angstrom(self) -> float | None:
        """The x voxel size in Å, or None when unknown."""
        size = self.voxel_size_angstrom[0]
        return float(size) if size > 0 else None

    @property
    def memmap(self) -> np.ndarray:
        """The volume as a read-only array ``(Z, Y, X)`` in the file's data type, memory-mapped
        (``mrcfile.mmap``) for random access; in memory for a compressed file."""
        if self._array is not None:
            return self._array
        if self._memmap is None:
            self._memmap = np.memmap(
                self.path, dtype=self._dtype, mode="r", offset=self._offset, shape=self.shape
            )
        return self._memmap

    def sections(self, start: int, stop: int) -> np.ndarray:
        """z-sections ``start:stop`` as a new float32 array ``(stop - start, Y, X)``."""
        nz, ny, nx = self.shape
        if not 0 <= start < stop <= nz:
            raise ParameterError(f"sections {start}:{stop} outside a volume of {nz} sections")
        if self._array is not None:
            return np.array(self._array[start:stop], dtype=np.float32)
        count = (stop - start) * ny * nx
        offset = self._offset + start * ny * nx * self._dtype.itemsize
        try:
            with open(self.path, "rb") as handle:
                raw = np.fromfile(handle, dtype=self._dtype, count=count, offset=offset)
        except OSError as exc:
            raise InputFileError(self.path, f"cannot be read ({exc})") from None
        if raw.size != count:
            raise InputFileError(self.path, f"truncated: section {start} onwards cannot be read")
        return raw.astype(np.float32, copy=False).reshape(stop - start, ny, nx)

    def take_sections(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """The z-sections at ``indices`` (any order, repeats allowed) as float32
        ``(len(indices), Y, X)``; each contiguous run is read once."""
        index = np.asarray(indices, dtype=np.int64)
        if index.size == 0:
            raise ParameterError("no sections asked for")
        low, high = int(index.min()), int(index.max()) + 1
        return self.sections(low, high)[index - low]

    def slabs(self, max_voxels: int = SLAB_VOXELS) -> Iterator[tuple[int, np.ndarray]]:
        """``(start, sections)`` for consecutive slabs of at most ``max_voxels`` voxels (at
        least one section each)."""
        nz, ny, nx = self.shape
        step = max(1, max_voxels // (ny * nx))
        for start in range(0, nz, step):
            yield start, self.sections(start, min(nz, start + step))

    def check_finite(self, *, progress: ProgressCallback | None = None) -> None:
        """Raise :class:`InputFileError` if any voxel is NaN or infinite (read slab by slab)."""
        nz = self.shape[0]
        for start, slab in self.slabs():
            finite = np.isfinite(slab)
            if not finite.all():
                bad = int(slab.size - np.count_nonzero(finite))
                section = start + int(np.argwhere(~finite)[0, 0])
                raise InputFileError(
                    self.path,
                    f"contains NaN or infinite values ({bad} voxels in sections {start}-"
                    f"{start + slab.shape[0] - 1}, the first in section {section})",
                )
            if progress is not None:
                progress(min(nz, start + slab.shape[0]), nz)

    def voxel_sample(self, max_voxels: int = SAMPLE_VOXELS) -> np.ndarray:
        """A regular sample of the volume's voxels (see :func:`voxel_sample`)."""
        return voxel_sample(self, max_voxels)

    def close(self) -> None:
        """Drop the memory map, if one was made."""
        self._memmap = None


class ArrayVolume:
    """A volume held in memory with :class:`VolumeReader`'s interface (``shape``,
    ``sections``, ``take_sections``, ``voxel_sample``), so in-memory and on-disk volumes take
    the same path.

    Raises
    ------
    ParameterError
        If ``array`` is not a 3D real array.
    """

    def __init__(self, array: np.ndarray, name: str = "volume") -> None:
        data = np.asarray(array)
        if data.ndim != 3 or data.size == 0 or np.iscomplexobj(data):
            raise ParameterError(f"{name} must be a real volume (Z, Y, X), got shape {data.shape}")
        self.array = data
        self.name = name
        self.shape: tuple[int, int, int] = (
            int(data.shape[0]), int(data.shape[1]), int(data.shape[2]),
        )  # fmt: skip
        self.memmap = data

    def sections(self, start: int, stop: int) -> np.ndarray:
        """z-sections ``start:stop`` as a float32 array (a copy)."""
        return np.array(self.array[start:stop], dtype=np.float32)

    def take_sections(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """The z-sections at ``indices`` as float32 ``(len(indices), Y, X)``."""
        return np.asarray(self.array[np.asarray(indices, dtype=np.int64)], dtype=np.float32)

    def voxel_sample(self, max_voxels: int = SAMPLE_VOXELS) -> np.ndarray:
        """A regular sample of the volume's voxels (see :func:`voxel_sample`)."""
        return voxel_sample(self, max_voxels)


def voxel_sample(volume: VolumeReader | ArrayVolume, max_voxels: int = SAMPLE_VOXELS) -> np.ndarray:
    """A regular sample of at most about ``max_voxels`` voxels of ``volume`` (float32, flat):
    up to :data:`SAMPLE_SECTIONS` evenly spaced z-sections, each subsampled on a regular grid.

    Deterministic, and it reads only those sections: enough voxels to fix percentiles
    (normalisation) closely at a bounded cost for any volume size.
    """
    nz, ny, nx = volume.shape
    n_sections = min(nz, SAMPLE_SECTIONS)
    chosen = np.unique(np.linspace(0, nz - 1, n_sections).round().astype(int))
    per_section = max(1, max_voxels // chosen.size)
    step = max(1, int(np.ceil(np.sqrt(ny * nx / per_section))))
    parts = [volume.sections(int(z), int(z) + 1)[0, ::step, ::step].ravel() for z in chosen]
    return np.concatenate(parts)


class SlabWriter:
    """Write a volume ``(Z, Y, X)`` slab by slab into a new MRC file, atomically.

    Used as a context manager: the file appears under ``path`` only when the block ends without
    an error and every section was written; otherwise the temporary file is removed.

    Parameters
    ----------
    path
        The output file.
    shape
        ``(Z, Y, X)`` of the volume.
    voxel_size_angstrom, origin_angstrom
        Geometry for the header (``(x, y, z)`` in Å, or one number for the voxel size).
    labels
        Header labels (the last 10 are kept).
    protected
        Paths the output must not overwrite (the inputs).
    dtype
        ``"float32"`` (mode 2) or ``"float16"`` (mode 12).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "vol.mrc"
    >>> with SlabWriter(target, (4, 3, 2)) as out:
    ...     out.write(0, np.zeros((2, 3, 2), np.float32))
    ...     out.write(2, np.ones((2, 3, 2), np.float32))
    >>> float(VolumeReader(target).sections(0, 4).sum())
    12.0
    """

    def __init__(
        self,
        path: PathLike,
        shape: tuple[int, int, int],
        *,
        voxel_size_angstrom: float | Iterable[float] | None = None,
        origin_angstrom: Iterable[float] | None = None,
        labels: Sequence[str] = (),
        protected: Iterable[PathLike] = (),
        dtype: str = "float32",
    ) -> None:
        if dtype not in WRITE_DTYPES:
            raise ParameterError(f"dtype must be one of {', '.join(WRITE_DTYPES)}, got {dtype!r}")
        if len(shape) != 3 or min(shape) < 1:
            raise ParameterError(f"a volume's shape must be (Z, Y, X) >= 1, got {shape}")
        check_not_protected(path, protected)
        self.path = Path(path)
        self.shape = (int(shape[0]), int(shape[1]), int(shape[2]))
        self.dtype = np.dtype(dtype)
        self._voxel = voxel_size_angstrom
        self._origin = origin_angstrom
        self._labels = list(labels)[-10:]
        self._written = np.zeros(self.shape[0], dtype=bool)
        self._stats = np.array([np.inf, -np.inf, 0.0, 0.0])  # min, max, sum, sum of squares
        self._stack = ExitStack()
        self._tmp: Path | None = None
        self._offset = 0

    def __enter__(self) -> SlabWriter:
        self._tmp = self._stack.enter_context(atomic_output(self.path))
        try:
            with mrcfile.new_mmap(
                self._tmp, self.shape, mrc_mode=_MODES[self.dtype.name], overwrite=True
            ) as mrc:
                mrc.set_volume()
                if self._voxel is not None:
                    mrc.voxel_size = self._voxel
                if self._origin is not None:
                    origin = tuple(float(v) for v in self._origin)
                    mrc.header.origin.x, mrc.header.origin.y, mrc.header.origin.z = origin
                if self._labels:
                    mrc.header.label[:] = b""
                    mrc.header.nlabl = 0
                    for label in self._labels:
                        mrc.add_label(label.encode("ascii", "replace").decode()[:80])
                self._offset = HEADER_BYTES + int(mrc.header.nsymbt)
        except BaseException:
            self._stack.close()
            raise
        return self

    def write(self, start: int, sections: np.ndarray) -> None:
        """Write ``sections`` ``(n, Y, X)`` at z-sections ``start .. start + n - 1``.

        Raises
        ------
        ParameterError
            For a wrong shape, NaN or infinite values, or values float16 cannot hold.
        """
        if self._tmp is None:
            raise ParameterError("SlabWriter.write needs the writer's with-block")
        data = np.asarray(sections)
        nz, ny, nx = self.shape
        if data.ndim != 3 or data.shape[1:] != (ny, nx) or not 0 <= start <= nz - data.shape[0]:
            raise ParameterError(
                f"sections of shape {data.shape} at {start} do not fit a volume of {self.shape}"
            )
        if not np.isfinite(data).all():
            raise ParameterError("the volume contains NaN or infinite values; not writing it")
        if self.dtype == np.float16 and data.size and float(np.abs(data).max()) > FLOAT16_MAX:
            raise ParameterError(
                f"values up to {float(np.abs(data).max()):.6g} overflow float16 (largest "
                f"{FLOAT16_MAX:g}); write float32 instead"
            )
        out = np.ascontiguousarray(data, dtype=self.dtype)  # native order, as mrcfile writes
        for section in out:  # float64 statistics, one section's temporary at a time
            values = section.astype(np.float64)
            self._stats[0] = min(self._stats[0], float(values.min()))
            self._stats[1] = max(self._stats[1], float(values.max()))
            self._stats[2] += float(values.sum())
            values *= values
            self._stats[3] += float(values.sum())
        offset = self._offset + start * ny * nx * self.dtype.itemsize
        with open(self._tmp, "r+b") as handle:
            handle.seek(offset)
            out.tofile(handle)  # straight from the array: no copy of the sections
        self._written[start : start + data.shape[0]] = True

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        if kind is None:
            try:
                missing = np.flatnonzero(~self._written)
                if missing.size:
                    raise ParameterError(
                        f"{self.path}: sections from {int(missing[0])} on were never written"
                    )
                self._write_statistics()
            except BaseException as exc:  # the temporary file goes, the error propagates
                self._stack.__exit__(type(exc), exc, exc.__traceback__)
                raise
        return self._stack.__exit__(kind, value, traceback)

    def _write_statistics(self) -> None:
        """Minimum, maximum, mean and RMS deviation into the header (MRC2014 fields)."""
        assert self._tmp is not None
        n = float(np.prod(self.shape))
        low, high, total, squares = (float(v) for v in self._stats)
        mean = total / n
        rms = float(np.sqrt(max(squares / n - mean * mean, 0.0)))
        with mrcfile.mmap(self._tmp, mode="r+") as mrc:
            mrc.header.dmin, mrc.header.dmax, mrc.header.dmean = low, high, mean
            mrc.header.rms = rms
