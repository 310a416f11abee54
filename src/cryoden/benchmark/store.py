"""The resumable cell store: one finished (method, SNR) cell per pair of files.

``DIR/cells/<method>__snr<index>.json`` holds a cell's scores; ``.npz`` beside it holds its
denoised montage image and, for a learned method, ``.safetensors`` its trained model (the next
SNR's cell starts from it when the study warm-starts). Each file is written atomically (temporary file, then rename), the image
first and the scores last, so a scores file on disk always means a finished, complete cell. A
rerun loads the finished cells and computes only the missing ones.

``DIR/cells/study.json`` records the settings fingerprint of the run that made the cells; a run
with different settings refuses to mix its cells with them.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from cryoden.benchmark.study import fingerprint_hash
from cryoden.errors import InputFileError
from cryoden.io.atomic import atomic_output

logger = logging.getLogger(__name__)

STUDY_FILE = "study.json"


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float replaced by ``None`` (strict JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return json_safe(value.item())
    return value


def write_json(path: Path, payload: Any) -> None:
    """Write strict JSON (no NaN or infinity: ``null`` instead) atomically."""
    text = json.dumps(json_safe(payload), indent=1, allow_nan=False)
    with atomic_output(path) as tmp:
        tmp.write_text(text + "\n")


def write_npz(path: Path, **arrays: np.ndarray) -> None:
    """Write a compressed ``.npz`` atomically (through a file handle: no suffix games).

    Numeric and string arrays only: object arrays are refused (``allow_pickle=False``), so
    nothing written here needs unpickling to read."""
    with atomic_output(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, allow_pickle=False, **arrays)


class CellStore:
    """Finished cells of one study under ``root``.

    Parameters
    ----------
    root
        The cells folder (created if missing).
    fingerprint
        The settings fingerprint (:meth:`StudyConfig.fingerprint`). If ``root`` already holds
        cells of another fingerprint, :class:`InputFileError` is raised.
    """

    def __init__(self, root: str | os.PathLike[str], fingerprint: dict[str, Any]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.fingerprint = fingerprint
        self.key = fingerprint_hash(fingerprint)
        marker = self.root / STUDY_FILE
        if marker.exists():
            try:
                stored = json.loads(marker.read_text())
            except (OSError, ValueError) as exc:
                raise InputFileError(marker, f"unreadable study record ({exc})") from None
            if stored.get("key") != self.key:
                old = stored.get("fingerprint", {})
                changed = sorted(
                    k for k in set(old) | set(fingerprint) if old.get(k) != fingerprint.get(k)
                )
                raise InputFileError(
                    self.root.parent,
                    "holds results of a study with other settings "
                    f"({', '.join(changed) or 'unknown'} differ); use another --out or delete "
                    f"{self.root}",
                )
        else:
            write_json(marker, {"key": self.key, "fingerprint": fingerprint})

    @staticmethod
    def cell_name(method: str, snr_index: int) -> str:
        """File stem of a cell."""
        return f"{method}__snr{snr_index:02d}"

    def _paths(self, method: str, snr_index: int) -> tuple[Path, Path]:
        stem = self.cell_name(method, snr_index)
        return self.root / f"{stem}.json", self.root / f"{stem}.npz"

    def model_path(self, method: str, snr_index: int) -> Path:
        """Where a learned cell keeps its trained model (``<stem>.safetensors``)."""
        return self.root / f"{self.cell_name(method, snr_index)}.safetensors"

    def pretrain_path(self, method: str) -> Path:
        """Where ``method``'s pretrained network (the curriculum's start) is kept."""
        return self.root / f"{method}__pretrain.safetensors"

    def has(self, method: str, snr_index: int) -> bool:
        """Whether the cell is finished (its scores file exists and reads)."""
        return self.load(method, snr_index) is not None

    def load(self, method: str, snr_index: int) -> tuple[dict[str, Any], np.ndarray | None] | None:
        """A finished cell's ``(row, montage image)``, or ``None`` when it is not finished."""
        scores, image_path = self._paths(method, snr_index)
        if not scores.exists():
            return None
        try:
            row = json.loads(scores.read_text())
        except (OSError, ValueError):
            logger.warning("ignoring unreadable cell %s; it will be recomputed", scores)
            return None
        if row.get("key") != self.key:
            return None
        image = None
        if image_path.exists():
            try:
                with np.load(image_path) as data:
                    image = np.array(data["image"], dtype=np.float32)
            except (OSError, ValueError, KeyError):
                logger.warning("ignoring unreadable cell image %s", image_path)
                return None
        row = dict(row)
        row.pop("key", None)
        return row, image

    def save(
        self, method: str, snr_index: int, row: dict[str, Any], image: np.ndarray | None
    ) -> None:
        """Store a finished cell: its montage image first, then its scores (the marker)."""
        scores, image_path = self._paths(method, snr_index)
        if image is not None:
            write_npz(image_path, image=np.asarray(image, dtype=np.float32))
        write_json(scores, {**row, "key": self.key})
        logger.debug("stored cell %s", scores.name)
