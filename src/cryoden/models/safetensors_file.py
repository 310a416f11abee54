"""Reading safetensors files that may be hostile: screen the header before anything else.

A safetensors file is an 8-byte little-endian header length, a JSON header (tensor names with
their dtype, shape and byte range, and a ``__metadata__`` object of strings) and the tensor
bytes. Model files and checkpoints are untrusted input, so :func:`read_header` checks the
claimed header length against the file's size and :data:`MAX_HEADER_BYTES` *before* reading the
header, parses it as strict JSON and checks every tensor's byte range against the file and
against its dtype and shape. Only then are tensors read (:func:`read_tensors`), and nothing is
allocated beyond what the file holds. Pickles (``torch.save``'s legacy format) and zips
(``torch.save``'s default format) are recognised from their first bytes and refused; nothing is
ever unpickled.
"""

from __future__ import annotations

import json
import math
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from cryoden.errors import InputFileError

#: The largest header read. A model file's header lists a few dozen tensors and the model's
#: JSON config; a checkpoint's adds the optimiser's tensors. A few MiB is already generous.
MAX_HEADER_BYTES = 16 * 1024 * 1024

#: Bytes per element of each safetensors dtype.
DTYPE_BYTES: dict[str, int] = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2,
    "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
}  # fmt: skip
#: The dtypes network weights may have (converted to the network's own on loading).
FLOAT_DTYPES: frozenset[str] = frozenset({"F16", "BF16", "F32", "F64"})

_PICKLE_OR_ZIP = "cryoden model files are safetensors + JSON and pickles are never loaded"


@dataclass(frozen=True)
class TensorEntry:
    """One tensor of a safetensors header: its dtype name, shape and byte count."""

    dtype: str
    shape: tuple[int, ...]
    nbytes: int


@dataclass(frozen=True)
class SafetensorsHeader:
    """A screened safetensors header: tensors by name and the string metadata."""

    tensors: dict[str, TensorEntry] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)


def _open_regular(path: Path) -> tuple[int, bytes]:
    """The file's size and first 9 bytes; only a regular file is opened (a FIFO would hang)."""
    try:
        info = os.stat(path)
    except OSError as err:
        raise InputFileError(path, f"cannot read: {err.strerror or err}") from None
    if not stat.S_ISREG(info.st_mode):
        raise InputFileError(path, "is not a regular file")
    try:
        with open(path, "rb") as fh:
            return info.st_size, fh.read(9)
    except OSError as err:
        raise InputFileError(path, f"cannot read: {err.strerror or err}") from None


def _refuse_foreign(path: Path, head: bytes) -> None:
    """Name what a file that is not safetensors is, where its first bytes tell."""
    if head[:1] == b"\x80":
        raise InputFileError(path, f"is a pickle (e.g. torch.save) file; {_PICKLE_OR_ZIP}")
    if head[:4] == b"PK\x03\x04":
        raise InputFileError(path, f"is a zip (e.g. torch.save) file; {_PICKLE_OR_ZIP}")
    if len(head) < 9:
        raise InputFileError(path, "is empty or truncated: not a safetensors file")


def _entry(path: Path, name: str, raw: object, data_bytes: int) -> TensorEntry:
    """One header entry, checked: a known dtype, a shape of non-negative integers and a byte
    range inside the file whose length matches the dtype and shape."""
    if not isinstance(raw, dict):
        raise InputFileError(path, f"safetensors header entry {name!r} is not an object")
    dtype, shape, offsets = raw.get("dtype"), raw.get("shape"), raw.get("data_offsets")
    if dtype not in DTYPE_BYTES:
        raise InputFileError(path, f"tensor {name!r} has an unknown dtype {dtype!r}")
    dims = _non_negative_ints(shape)
    byte_range = _non_negative_ints(offsets)
    if dims is None or byte_range is None or len(byte_range) != 2:
        raise InputFileError(path, f"tensor {name!r} has a malformed shape or byte range")
    begin, end = byte_range
    nbytes = math.prod(dims) * DTYPE_BYTES[dtype]
    if not begin <= end <= data_bytes or end - begin != nbytes:
        raise InputFileError(
            path,
            f"tensor {name!r} claims bytes {begin}..{end} for shape {dims} "
            f"{dtype}, which the file's {data_bytes} data bytes do not hold",
        )
    return TensorEntry(dtype=dtype, shape=dims, nbytes=nbytes)


def _non_negative_ints(value: object) -> tuple[int, ...] | None:
    """``value`` as a tuple of non-negative integers if it is a JSON list of them, else None."""
    if not isinstance(value, list):
        return None
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value):
        return None
    return tuple(value)


def read_header(path: str | os.PathLike[str]) -> SafetensorsHeader:
    """Screen and parse a safetensors file's header without reading any tensor.

    The claimed header length is checked against the file's size and :data:`MAX_HEADER_BYTES`
    before the header is read.

    Raises
    ------
    InputFileError
        For a pickle, a zip (``torch.save``), a file that is not regular, a header length the
        file cannot hold, a header that is not a JSON object, a tensor whose bytes lie outside
        the file or do not match its dtype and shape, or metadata that is not strings.
    """
    path = Path(path)
    size, head = _open_regular(path)
    header_len = int.from_bytes(head[:8], "little")
    if not (2 <= header_len <= MAX_HEADER_BYTES and 8 + header_len <= size and head[8:] == b"{"):
        _refuse_foreign(path, head)
        if 2 <= header_len <= MAX_HEADER_BYTES and 8 + header_len <= size:
            raise InputFileError(
                path, "is not a safetensors file (its header is not a JSON object)"
            )
        raise InputFileError(
            path,
            f"is not a safetensors file (it claims a header of {header_len} bytes; the file "
            f"has {size} bytes and headers are at most {MAX_HEADER_BYTES})",
        )
    try:
        with open(path, "rb") as fh:
            fh.seek(8)
            text = fh.read(header_len)
        data = json.loads(text.decode("utf-8"))
    except OSError as err:
        raise InputFileError(path, f"cannot read: {err.strerror or err}") from None
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InputFileError(path, "is not a safetensors file (its header is not JSON)") from None
    if not isinstance(data, dict):
        raise InputFileError(path, "is not a safetensors file (its header is not a JSON object)")
    metadata = data.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise InputFileError(path, "safetensors metadata must map strings to strings")
    data_bytes = size - 8 - header_len
    tensors = {name: _entry(path, name, raw, data_bytes) for name, raw in data.items()}
    return SafetensorsHeader(tensors=tensors, metadata=metadata)


def check_safetensors(path: str | os.PathLike[str]) -> SafetensorsHeader:
    """Refuse any file that is not safetensors, from its first bytes and its header, without
    unpickling; return the screened header (:func:`read_header`)."""
    return read_header(path)


def read_tensors(
    path: str | os.PathLike[str], names: Iterable[str], *, finite: bool = True
) -> dict[str, torch.Tensor]:
    """Read the named tensors of a file whose header :func:`read_header` accepted.

    With ``finite``, a floating-point tensor holding NaN or infinity is refused, naming it.
    """
    path = Path(path)
    tensors: dict[str, torch.Tensor] = {}
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            for name in names:
                tensors[name] = fh.get_tensor(name)
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        problem = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputFileError(path, f"unreadable safetensors file: {problem}") from None
    if finite:
        for name, value in tensors.items():
            if value.is_floating_point() and not bool(torch.isfinite(value).all()):
                raise InputFileError(path, f"weight {name} holds NaN or infinite values")
    return tensors
