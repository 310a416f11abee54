"""What makes a batch output complete: a key written into the output itself.

Each output of a batch gets a *key*, a short hash of everything that decides its content: the
recipe (the model file's hash and the options that change the result, or a filter and its
parameters) and the input file as it was (its size and modification time). The key is written
as one MRC header label (``cryoden-key <32 hex digits>``) in the same atomic write as the data
(:func:`cryoden.io.atomic.atomic_output`), so a file under its final name carries its own proof
of what made it: a rerun skips an output whose label holds the key it would write, and redoes
one that is missing, unreadable, from another model or other options, or from an input that
has changed since. No second file has to be kept in step with the output.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryoden.errors import CryodenError
from cryoden.io.mrc_header import HEADER_BYTES, screen_mrc

#: The label that holds an output's key, followed by the key itself.
KEY_LABEL_PREFIX = "cryoden-key "
#: Hex digits of a key (128 bits: collisions are out of the question for a batch).
KEY_HEX_DIGITS = 32
#: Where the ten 80-character text labels of an MRC header start, and their count and width.
_LABELS_OFFSET, _LABEL_COUNT, _LABEL_WIDTH = 224, 10, 80
_CHUNK_BYTES = 1 << 20


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file's bytes, as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def model_fingerprint(path: str | os.PathLike[str]) -> str:
    """A hash of a model file's weights and config (hex): of the one ``.safetensors`` file
    (whose metadata holds the config), or of a model folder's ``config.json`` and
    ``weights.safetensors`` together. Two copies of one model give the same fingerprint."""
    model = Path(path)
    if model.is_dir():
        digest = hashlib.sha256()
        for name in ("config.json", "weights.safetensors"):
            digest.update(name.encode())
            digest.update(bytes.fromhex(file_sha256(model / name)))
        return digest.hexdigest()
    return file_sha256(model)


def input_stamp(path: str | os.PathLike[str]) -> dict[str, int]:
    """What identifies an input's content cheaply: its size (bytes) and modification time
    (ns). A replaced or rewritten input changes it; reading the input does not."""
    info = os.stat(path)
    return {"size": int(info.st_size), "mtime_ns": int(info.st_mtime_ns)}


def output_key(recipe: Mapping[str, Any], source: str | os.PathLike[str]) -> str:
    """The key of the output made from ``source`` by ``recipe`` (JSON-ready: what decides the
    result, such as the model's fingerprint and the options): :data:`KEY_HEX_DIGITS` hex
    digits. A missing ``source`` gets a key of the recipe alone (its processing will fail)."""
    try:
        stamp: dict[str, int] | None = input_stamp(source)
    except OSError:
        stamp = None
    text = json.dumps({"recipe": recipe, "input": stamp}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:KEY_HEX_DIGITS]


def key_label(key: str) -> str:
    """The header label that records ``key`` in an output."""
    return f"{KEY_LABEL_PREFIX}{key}"


def recorded_keys(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """The keys recorded in the header labels of the MRC file ``path``; empty when the file is
    missing, is no complete MRC file (its size short of its header's claim) or has none."""
    file = Path(path)
    try:
        screen_mrc(file, None)
        with open(file, "rb") as handle:
            head = handle.read(HEADER_BYTES)
    except (CryodenError, OSError):
        return ()
    keys = []
    for i in range(_LABEL_COUNT):
        start = _LABELS_OFFSET + i * _LABEL_WIDTH
        raw = head[start : start + _LABEL_WIDTH].split(b"\0", 1)[0]
        label = raw.decode("ascii", "replace").strip()
        if label.startswith(KEY_LABEL_PREFIX):
            keys.append(label[len(KEY_LABEL_PREFIX) :].strip())
    return tuple(keys)


def is_complete(path: str | os.PathLike[str], key: str) -> bool:
    """Whether ``path`` is a complete output made with ``key`` (see the module docstring)."""
    return key in recorded_keys(path)
