"""The models shipped with cryoden: their names, one-line descriptions, cards and folders.

A shipped model is a folder of package data, ``cryoden/models/shipped/<name>/``, holding the
usual model files (``config.json`` + ``weights.safetensors``, read by
:func:`~cryoden.models.files.load_model`: safetensors and JSON only, nothing executed) and
``card.json``: what it was trained on, its trained range (:class:`TrainedRange`), the command that
trained it, where not to trust it, and the SHA-256 of each model file.

Names are a fixed table (:data:`SHIPPED_MODELS`): a name resolves only to its own folder inside
the package, never to a path built from user text, and the folder's files are checked against
the card's digests before use, so an altered or damaged installed copy is refused in one line.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryoden.errors import InputFileError, ParameterError
from cryoden.models.files import CONFIG_NAME, WEIGHTS_NAME
from cryoden.models.safetensors_file import MAX_HEADER_BYTES
from cryoden.models.trained_range import TrainedRange

logger = logging.getLogger(__name__)

#: Where the shipped models' folders are (package data).
SHIPPED_DIR = Path(__file__).resolve().parent / "shipped"
CARD_NAME = "card.json"
#: The files of a shipped model whose SHA-256 the card records.
CHECKED_FILES: tuple[str, ...] = (CONFIG_NAME, WEIGHTS_NAME)

#: The shipped models: name -> one-line description.
SHIPPED_MODELS: dict[str, str] = {
    "general": "Noise2Noise U-Net trained on simulated micrographs of many structures and "
    "shapes: denoises 2D micrographs and particle images with no training",
}
#: The model ``cryoden denoise`` uses when none is named.
DEFAULT_MODEL = "general"


@dataclass(frozen=True)
class ShippedModel:
    """A shipped model: its name, description, folder and card (the parsed ``card.json``)."""

    name: str
    description: str
    folder: Path
    card: dict[str, Any]

    @property
    def trained_range(self) -> TrainedRange:
        """The range its training data spanned (from the card)."""
        try:
            return TrainedRange.from_dict(self.card.get("trained_range"))
        except ParameterError as err:
            raise InputFileError(self.folder / CARD_NAME, str(err)) from None


def shipped_names() -> tuple[str, ...]:
    """The shipped models' names, in table order."""
    return tuple(SHIPPED_MODELS)


def is_shipped_name(text: str | os.PathLike[str]) -> bool:
    """Whether ``text`` is exactly a shipped model's name (case and spelling exact)."""
    return isinstance(text, str) and text in SHIPPED_MODELS


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _inside(folder: Path, path: Path) -> bool:
    return Path(os.path.realpath(path)).parent == Path(os.path.realpath(folder))


def _folder(name: str) -> Path:
    """The folder of shipped model ``name``: a direct child of :data:`SHIPPED_DIR`, not a
    symbolic link leading elsewhere."""
    folder = SHIPPED_DIR / name
    if not folder.is_dir():
        raise InputFileError(folder, f"the shipped model {name!r} is missing; reinstall cryoden")
    if not _inside(SHIPPED_DIR, folder):
        raise InputFileError(folder, "leads out of cryoden's shipped models folder; refused")
    return folder


def read_card(folder: Path) -> dict[str, Any]:
    """A shipped model's ``card.json`` (a JSON object of bounded size, inside ``folder``)."""
    path = folder / CARD_NAME
    if not path.is_file() or not _inside(folder, path):
        raise InputFileError(path, "missing or not a regular file in the model folder")
    if path.stat().st_size > MAX_HEADER_BYTES:
        raise InputFileError(path, "too large to be a model card")
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as err:
        raise InputFileError(path, f"not a readable JSON model card ({err})") from None
    if not isinstance(card, dict):
        raise InputFileError(path, "a model card must be a JSON object")
    return card


def verify_files(folder: Path, card: dict[str, Any]) -> None:
    """Check each model file of ``folder`` against the SHA-256 its card records.

    Raises
    ------
    InputFileError
        A file missing, outside the folder, or whose bytes differ from the card's digest.
    """
    recorded = card.get("files")
    if not isinstance(recorded, dict):
        raise InputFileError(folder / CARD_NAME, "records no file digests ('files')")
    for name in CHECKED_FILES:
        path = folder / name
        if not path.is_file() or not _inside(folder, path):
            raise InputFileError(path, "missing or not a regular file in the model folder")
        expected = recorded.get(name)
        if not isinstance(expected, str) or file_sha256(path) != expected.lower():
            raise InputFileError(
                path,
                "differs from the shipped model (its SHA-256 is not the one card.json "
                "records): the installed copy is damaged or altered; reinstall cryoden",
            )


def shipped_model(name: str) -> ShippedModel:
    """The shipped model ``name``, its files checked against its card.

    Raises
    ------
    ParameterError
        ``name`` is not a shipped model's name (the message lists them).
    InputFileError
        Its folder, card or files are missing, lead elsewhere, or were altered.
    """
    if not is_shipped_name(name):
        raise ParameterError(
            f"no shipped model is called {name!r}; shipped: {', '.join(SHIPPED_MODELS)}"
        )
    folder = _folder(name)
    card = read_card(folder)
    verify_files(folder, card)
    return ShippedModel(name=name, description=SHIPPED_MODELS[name], folder=folder, card=card)


def list_shipped() -> list[ShippedModel]:
    """Every shipped model (each checked, as :func:`shipped_model` does)."""
    return [shipped_model(name) for name in SHIPPED_MODELS]


def resolve_model(name_or_path: str | os.PathLike[str]) -> Path:
    """The model folder or file that ``name_or_path`` stands for.

    A shipped model's exact name (``"general"``) resolves to its folder in the package, checked
    against its card; anything else is a path, returned as given (:func:`load_model` checks it).
    A name wins over a folder of the same name in the working directory (logged: give
    ``general/config.json`` for that folder).

    Raises
    ------
    InputFileError
        A shipped model's files were altered, or a bare word that is neither a shipped model's
        name nor an existing path.
    """
    text = os.fspath(name_or_path)
    if text in SHIPPED_MODELS:
        if Path(text).exists():
            logger.warning(
                "%r names cryoden's shipped model; for the folder %s here, give %s",
                text, text, Path(text) / CONFIG_NAME,
            )  # fmt: skip
        return shipped_model(text).folder
    path = Path(text)
    if not path.exists() and os.sep not in text and "." not in text:
        raise InputFileError(
            path,
            "no such model file or directory, and no shipped model has that name (shipped: "
            f"{', '.join(SHIPPED_MODELS)})",
        )
    return path


def shipped_model_at(path: str | os.PathLike[str]) -> ShippedModel | None:
    """The shipped model whose folder ``path`` is (symbolic links resolved), else ``None``."""
    real = Path(os.path.realpath(path))
    if real.name == CONFIG_NAME:
        real = real.parent
    for name in SHIPPED_MODELS:
        if real == Path(os.path.realpath(SHIPPED_DIR / name)):
            return shipped_model(name)
    return None
