"""Model files on disk: network weights (safetensors) plus the JSON model config.

Two layouts hold the same content:

- a directory with ``config.json`` and ``weights.safetensors``;
- one ``.safetensors`` file whose metadata key ``cryoden_config`` holds the JSON config.

Loading screens the file before anything else (:mod:`cryoden.models.safetensors_file`): a pickle
(``torch.save``'s legacy format), a zip (``torch.save``'s default format), a header longer than
the file or than any model's, a header that is not JSON: each is refused with
:class:`~cryoden.errors.InputFileError`, and nothing is ever unpickled. The config is validated
(its sizes are capped, :class:`~cryoden.nets.config.NetworkConfig`) before the network is built,
the weights' names, shapes and dtypes are checked against the network before any is read, and
weights holding NaN or infinity are refused. A model folder's files must lie in the folder. Each file is
written with :func:`cryoden.io.atomic.atomic_output`, so a reader never sees half a model.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from cryoden.errors import CryodenError, InputFileError, ParameterError
from cryoden.io.atomic import atomic_output
from cryoden.models.config import ModelConfig
from cryoden.models.safetensors_file import (
    FLOAT_DTYPES,
    MAX_HEADER_BYTES,
    SafetensorsHeader,
    read_header,
    read_tensors,
)
from cryoden.nets.registry import build_network

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "weights.safetensors"
METADATA_KEY = "cryoden_config"


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


def remove_model(path: str | os.PathLike[str]) -> None:
    """Remove the model file at ``path`` (the ``.safetensors`` file, or the folder's
    ``config.json`` and ``weights.safetensors``, then the folder if nothing else is in it);
    what is not there is skipped."""
    path = Path(path)
    files = [path] if is_single_file(path) else [path / CONFIG_NAME, path / WEIGHTS_NAME]
    for file in files:
        file.unlink(missing_ok=True)
    if not is_single_file(path) and path.is_dir() and not any(path.iterdir()):
        path.rmdir()


def _parse_config(path: Path, text: str) -> ModelConfig:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputFileError(path, f"the model config is not valid JSON ({err})") from None
    try:
        return ModelConfig.from_dict(data)
    except (ParameterError, TypeError, ValueError, RecursionError) as err:
        raise InputFileError(path, f"invalid model config: {err}") from None


def _short_list(names: list[str]) -> str:
    shown = ", ".join(names[:5])
    return shown + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def _check_header(path: Path, network: nn.Module, header: SafetensorsHeader) -> None:
    """Refuse a weights header that does not fit the network (missing, extra, misshapen or
    non-float tensors) before any tensor is read."""
    expected = network.state_dict()
    missing = sorted(set(expected) - set(header.tensors))
    extra = sorted(set(header.tensors) - set(expected))
    if missing:
        raise InputFileError(
            path, f"missing weights for this network: {_short_list(missing)} ({len(missing)})"
        )
    if extra:
        raise InputFileError(
            path, f"unexpected weights for this network: {_short_list(extra)} ({len(extra)})"
        )
    for key, value in expected.items():
        entry = header.tensors[key]
        if entry.shape != tuple(value.shape):
            raise InputFileError(
                path,
                f"weight {key} has shape {entry.shape} but the network expects "
                f"{tuple(value.shape)}",
            )
        if entry.dtype not in FLOAT_DTYPES:
            raise InputFileError(
                path, f"weight {key} has dtype {entry.dtype}; model weights are floating point"
            )


def _load_weights(path: Path, network: nn.Module, header: SafetensorsHeader) -> None:
    """Check the header against the network, then read the weights (NaN or infinity is
    refused: a non-finite weight makes every output pixel NaN) and load them."""
    _check_header(path, network, header)
    expected = network.state_dict()
    tensors = read_tensors(path, expected)
    network.load_state_dict({k: v.to(expected[k].dtype) for k, v in tensors.items()}, strict=True)


def _inside(folder: Path, file: Path) -> bool:
    """Whether ``file``, symbolic links resolved, lies in ``folder`` (links resolved too)."""
    return Path(os.path.realpath(file)).parent == Path(os.path.realpath(folder))


def _read_config_text(path: Path) -> str:
    """A model folder's config.json, refused when larger than any model config could be."""
    try:
        size = os.stat(path).st_size
        if size > MAX_HEADER_BYTES:
            raise InputFileError(path, f"model config of {size} bytes is too large to be one")
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except (OSError, UnicodeDecodeError) as err:
        raise InputFileError(path, f"cannot read the model config: {err}") from None


def _directory_parts(path: Path) -> tuple[ModelConfig, Path]:
    """The config and the weights path of a model folder; each must be a regular file inside
    the folder (a symbolic link leading out of it is refused)."""
    config_path, weights_path = path / CONFIG_NAME, path / WEIGHTS_NAME
    for needed in (config_path, weights_path):
        if not needed.exists():
            raise InputFileError(path, f"not a cryoden model directory: {needed.name} is missing")
        if not _inside(path, needed):
            raise InputFileError(
                needed, "is a symbolic link leading out of the model folder; refused"
            )
        if not needed.is_file():
            raise InputFileError(needed, "is not a regular file")
    return _parse_config(config_path, _read_config_text(config_path)), weights_path


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
        config, source = _directory_parts(path)
        header = read_header(source)
    elif path.exists():
        header = read_header(path)  # refuses a FIFO, a device, a pickle, a zip
        if METADATA_KEY not in header.metadata:
            raise InputFileError(
                path, f"safetensors file without a cryoden config (metadata key {METADATA_KEY})"
            )
        config = _parse_config(path, header.metadata[METADATA_KEY])
        source = path
    else:
        raise InputFileError(path, "no such model file or directory")
    try:
        network = build_network(config.network)  # sizes capped by NetworkConfig
    except CryodenError as err:
        raise InputFileError(path, f"invalid model config: {err}") from None
    _load_weights(source, network, header)
    network.eval()
    return LoadedModel(network=network, config=config, path=str(path))
