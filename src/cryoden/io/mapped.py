"""MRC files as read-only memory maps, so that training reads patches, not whole micrographs.

:func:`map_mrc` screens the file like :func:`cryoden.io.mrc.read_mrc` (regular file, known
mode, header claim within the file), reads the header with :mod:`mrcfile` (data type and byte
order) and maps the data block with :mod:`mmap`: nothing of the data is read until a slice of
it is used, and no file descriptor stays open. Pages read through the map count as resident
memory of the process until :meth:`MappedMrc.release` hands them back to the page cache.

A gzip/bzip2-compressed file cannot be mapped: it is decompressed once, in chunks, into a
temporary file in ``scratch_dir`` (the system's temporary folder by default), which is mapped
and at once unlinked, so that it disappears when the map does. It needs its decompressed size
of temporary disk space (not memory, unless that folder is a RAM file system).
"""

from __future__ import annotations

import bz2
import gzip
import logging
import mmap
import os
import tempfile
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import mrcfile
import numpy as np
from mrcfile.utils import data_dtype_from_header

from cryoden.errors import InputFileError
from cryoden.io.mrc_header import HEADER_BYTES, MrcHeader, screen_mrc

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]

_CHUNK_BYTES = 1 << 22


@dataclass(frozen=True, eq=False)
class MappedMrc:
    """An MRC file's data block as a read-only array over a memory map.

    Attributes
    ----------
    path
        The file mapped (the original name for a decompressed file).
    data
        ``(N, H, W)`` read-only array in the file's data type and byte order: the sections of a
        stack or volume, or one section for a 2D image. Slicing it reads only what is used.
    voxel_size_angstrom
        ``(x, y, z)`` in Å, 0 where the header has none.
    """

    path: Path
    data: np.ndarray
    voxel_size_angstrom: tuple[float, float, float]
    _map: mmap.mmap

    @property
    def pixel_size_angstrom(self) -> float | None:
        """The x voxel size in Å, or None when the header has none."""
        size = self.voxel_size_angstrom[0]
        return size if size > 0 else None

    def release(self) -> None:
        """Hand the pages read so far back to the page cache (they stop counting as this
        process's resident memory; reading them again costs a page-cache lookup)."""
        advice = getattr(mmap, "MADV_DONTNEED", None)
        if advice is not None:
            self._map.madvise(advice)


def _decompress_to(path: Path, header: MrcHeader, target: Path) -> None:
    """Write the first ``header.total_bytes`` of ``path``'s decompressed stream to ``target``."""
    opener = gzip.open if header.compression == "gzip" else bz2.open
    remaining = header.total_bytes
    try:
        with opener(path, "rb") as stream, open(target, "wb") as out:
            while remaining > 0:
                chunk = stream.read(min(_CHUNK_BYTES, remaining))
                if not chunk:
                    break
                out.write(chunk)
                remaining -= len(chunk)
    except (EOFError, zlib.error) as exc:
        raise InputFileError(path, f"corrupt or truncated gzip/bzip2 stream ({exc})") from None
    if remaining > 0:
        raise InputFileError(
            path,
            f"truncated: the decompressed stream holds {header.total_bytes - remaining} bytes, "
            f"header announces {header.total_bytes}",
        )


def _header_facts(path: Path, shown: Path) -> tuple[np.dtype, tuple[float, float, float]]:
    """The data type (with byte order) and voxel size from mrcfile's reading of the header."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with mrcfile.open(path, mode="r", header_only=True, permissive=True) as mrc:
                dtype = np.dtype(data_dtype_from_header(mrc.header))
                voxel = tuple(float(v) for v in mrc.voxel_size.item())
        except (ValueError, OSError) as exc:
            raise InputFileError(shown, f"not a readable MRC file ({exc})") from exc
    if caught:
        logger.warning("%s: %s", shown, "; ".join(str(w.message) for w in caught))
    finite = tuple(v if np.isfinite(v) else 0.0 for v in voxel)
    return dtype, (finite[0], finite[1], finite[2])


def _map_file(path: Path) -> mmap.mmap:
    with open(path, "rb") as handle:
        return mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)


def map_mrc(path: PathLike, *, scratch_dir: PathLike | None = None) -> MappedMrc:
    """Map an MRC image, stack or volume read-only (see the module docstring).

    Parameters
    ----------
    path
        The file (``.mrc``, ``.mrcs``, ...; gzip/bzip2-compressed files are decompressed once
        into ``scratch_dir``).
    scratch_dir
        Folder for decompressed copies (default: the system's temporary folder).

    Raises
    ------
    InputFileError
        As :func:`cryoden.io.mrc.read_mrc` for files that are missing, not regular, truncated,
        not MRC, of a refused mode or empty. Unlike ``read_mrc``, NaN values are not looked
        for here (that would read the whole file).
    """
    file = Path(path)
    header = screen_mrc(file, None)
    source = file
    if header.compression is not None:
        handle, name = tempfile.mkstemp(prefix="cryoden-", suffix=".mrc", dir=scratch_dir)
        os.close(handle)
        source = Path(name)
        logger.info(
            "%s: %s-compressed, decompressed once into a temporary file (%.0f MB)",
            file, header.compression, header.total_bytes / 1e6,
        )  # fmt: skip
    try:
        if header.compression is not None:
            _decompress_to(file, header, source)
        dtype, voxel = _header_facts(source, file)
        mapped = _map_file(source)
    finally:
        if source != file:
            source.unlink(missing_ok=True)  # the map keeps the data until it is closed
    nz, ny, nx = header.shape
    offset = HEADER_BYTES + header.extended_bytes
    data = np.frombuffer(mapped, dtype=dtype, count=nz * ny * nx, offset=offset)
    return MappedMrc(
        path=file, data=data.reshape(nz, ny, nx), voxel_size_angstrom=voxel, _map=mapped
    )
