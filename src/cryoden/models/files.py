"""Model files on disk: network weights (safetensors) plus the JSON model config.

Two layouts hold the same content:

- a directory with ``config.json`` and ``weights.safetensors``;
- one ``.safetensors`` file whose metadata key ``cryoden_config`` holds the JSON config.

Loading checks the file's first bytes before anything else: a pickle (``torch.save``'s legacy
format), a zip (``torch.save``'s default format) or anything else that is not safetensors is
refused with :class:`~cryoden.errors.InputFileError`. Nothing is ever unpickled. Each file is
written with :func:`cryoden.io.atomic.atomic_output`, so a reader never sees half a model.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from cryoden.errors import CryodenError, InputFileError, ParameterError
from cryoden.io.atomic import atomic_output
from cryoden.models.config import ModelConfig
from cryoden.nets.registry import build_network

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "weights.safetensors"
METADATA_KEY = "cryoden_config"
_MAX_HEADER = 100 * 1024 * 1024


@dataclass
class LoadedModel:
    """A network with its weights loaded (CPU, eval mode) and its config."""

    network: nn.Module
    config: ModelConfig
    path: str

    def describe(self) -> dict[str, Any]:
        """JSON-ready summary for ``cryoden models info``: config plus size, cost, field."""
        from cryoden.nets.analysis import count_parameters, flops_per_pixel, receptive_field

        return {
            "path": self.path,
            **self.config.to_dict(),
            "parameters": count_parameters(self.network),
            "flops_per_pixel": flops_per_pixel(self.network),
            "receptive_field_px": receptive_field(self.config.network),
        }


def is_single_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names the single-file layout (it ends in ``.safetensors``)."""
    return str(path).lower().endswith(".safetensors")


def _state_dict(network: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in network.state_dict().items()}


def save_model(path: str | os.PathLike[str], network: nn.Module, model_config: ModelConfig) -> Path:
    """Write a model file: a ``.safetensors`` file, or else a directory.

    Parameters
    ----------
    path
        Ending in ``.safetensors``: one file with the config in its metadata. Otherwise a
        directory (created) with ``config.json`` and ``weights.safetensors``.
    network
        The network; its ``state_dict`` is saved as float tensors.
    model_config
        The config to store.

    Returns
    -------
    Path
        ``path``. Each file is written atomically, with the umask's permissions.
    """
    path = Path(path)
    tensors = _state_dict(network)
    text = json.dumps(model_config.to_dict(), indent=2, sort_keys=True)
    if is_single_file(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(path) as tmp:
            save_file(tensors, str(tmp), metadata={METADATA_KEY: text, "format": "pt"})
        return path
    path.mkdir(parents=True, exist_ok=True)
    with atomic_output(path / WEIGHTS_NAME) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt"})
    with atomic_output(path / CONFIG_NAME) as tmp:
        tmp.write_text(text + "\n")
    return path


def check_safetensors(path: str | os.PathLike[str]) -> None:
    """Refuse any file that is not safetensors, from its first bytes, without unpickling.

    Raises
    ------
    InputFileError
        For a pickle, a zip (``torch.save``), a truncated or otherwise foreign file.
    """
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            head = fh.read(9)
    except OSError as err:
        raise InputFileError(path, f"cannot read: {err.strerror or err}") from None
    if len(head) >= 9:
        header_len = int.from_bytes(head[:8], "little")
        if 2 <= header_len <= _MAX_HEADER and head[8:9] == b"{" and size >= 8 + header_len:
            return  # a safetensors layout; safe_open validates the rest
    if head[:1] == b"\x80":
        raise InputFileError(
            path,
            "is a pickle (e.g. torch.save) file; cryoden model files are safetensors + JSON "
            "and pickles are never loaded",
        )
    if head[:4] == b"PK\x03\x04":
        raise InputFileError(
            path,
            "is a zip (e.g. torch.save) file; cryoden model files are safetensors + JSON and "
            "pickles are never loaded",
        )
    if len(head) < 9:
        raise InputFileError(path, "is empty or truncated: not a safetensors file")
    raise InputFileError(path, "is not a safetensors file (or is truncated)")


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    check_safetensors(path)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            metadata = fh.metadata() or {}
            tensors = {key: fh.get_tensor(key) for key in fh.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        problem = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputFileError(path, f"unreadable safetensors file: {problem}") from None
    return tensors, metadata


def _parse_config(path: Path, text: str) -> ModelConfig:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputFileError(path, f"the model config is not valid JSON ({err})") from None
    try:
        return ModelConfig.from_dict(data)
    except (ParameterError, TypeError) as err:
        raise InputFileError(path, f"invalid model config: {err}") from None


def _short_list(names: list[str]) -> str:
    shown = ", ".join(names[:5])
    return shown + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def _load_weights(path: Path, network: nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    expected = network.state_dict()
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing:
        raise InputFileError(
            path, f"missing weights for this network: {_short_list(missing)} ({len(missing)})"
        )
    if extra:
        raise InputFileError(
            path, f"unexpected weights for this network: {_short_list(extra)} ({len(extra)})"
        )
    for key, value in expected.items():
        if tuple(tensors[key].shape) != tuple(value.shape):
            raise InputFileError(
                path,
                f"weight {key} has shape {tuple(tensors[key].shape)} but the network "
                f"expects {tuple(value.shape)}",
            )
    network.load_state_dict({k: v.to(expected[k].dtype) for k, v in tensors.items()}, strict=True)


def load_model(path: str | os.PathLike[str]) -> LoadedModel:
    """Load a model file (directory or single ``.safetensors`` file).

    The network is rebuilt from the config, its weights loaded (missing, extra or misshapen
    weights are errors), and it is returned on the CPU in eval mode.

    Raises
    ------
    InputFileError
        Missing path, a pickle/zip/foreign file, corrupt JSON, invalid config, unknown
        architecture, weights that do not fit.
    """
    path = Path(path)
    if path.is_file() and path.name == CONFIG_NAME:
        path = path.parent
    if path.is_dir():
        config_path, weights_path = path / CONFIG_NAME, path / WEIGHTS_NAME
        for needed in (config_path, weights_path):
            if not needed.is_file():
                raise InputFileError(
                    path, f"not a cryoden model directory: {needed.name} is missing"
                )
        try:
            text = config_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise InputFileError(config_path, f"cannot read the model config: {err}") from None
        config = _parse_config(config_path, text)
        tensors, _ = _read_safetensors(weights_path)
        source = weights_path
    elif path.is_file():
        tensors, metadata = _read_safetensors(path)
        if METADATA_KEY not in metadata:
            raise InputFileError(
                path, f"safetensors file without a cryoden config (metadata key {METADATA_KEY})"
            )
        config = _parse_config(path, metadata[METADATA_KEY])
        source = path
    else:
        raise InputFileError(path, "no such model file or directory")
    try:
        network = build_network(config.network)
    except CryodenError as err:
        raise InputFileError(path, f"invalid model config: {err}") from None
    _load_weights(source, network, tensors)
    network.eval()
    return LoadedModel(network=network, config=config, path=str(path))
