"""The state of a training run and its checkpoint on disk, so that a run can resume exactly.

A checkpoint directory holds ``checkpoint-<epoch>.safetensors`` (the current weights, the best
weights, Adam's moment tensors and the RNG states) and ``checkpoint.json`` (the epoch, the
history, the schedule and early-stopping state, the optimiser's hyper-parameters and the run's
identity: scheme, network and scheme options). Both are written atomically; no pickle is written
or read. A checkpoint resumes only a run of the same identity.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from cryoden.errors import InputFileError, ParameterError
from cryoden.io.atomic import atomic_output
from cryoden.models import SCHEME_ALIASES, check_safetensors, read_tensors
from cryoden.nets.config import NetworkConfig

CHECKPOINT_JSON = "checkpoint.json"
CHECKPOINT_FORMAT = 1
_FORMAT_NAME = "cryoden-checkpoint"
#: Identity fields a resumed run must share with the checkpoint.
IDENTITY_KEYS: tuple[str, ...] = ("scheme", "network")


@dataclass
class EpochRecord:
    """One epoch of the history (losses are means over the epoch's steps; ``seconds`` is the
    epoch's wall-clock time)."""

    epoch: int
    train_loss: float
    validation_loss: float | None
    learning_rate: float
    steps: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return dataclasses.asdict(self)


@dataclass
class RunState:
    """Everything besides tensors that a checkpoint restores."""

    epoch: int = 0
    global_step: int = 0
    elapsed_seconds: float = 0.0
    history: list[EpochRecord] = field(default_factory=list)
    best_loss: float = math.inf
    best_epoch: int = 0
    epochs_without_improvement: int = 0
    plateau_best: float = math.inf
    plateau_bad: int = 0
    lr_scale: float = 1.0
    #: Restarts from diverged trainings; each halves the learning rate.
    divergence_restarts: int = 0
    stopped: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (infinite losses stay ``Infinity``)."""
        data = dataclasses.asdict(self)
        data["history"] = [r.to_dict() for r in self.history]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunState:
        """The state :meth:`to_dict` wrote."""
        raw = dict(data)
        raw["history"] = [EpochRecord(**r) for r in raw.get("history", [])]
        return cls(**raw)


def default_checkpoint_dir(out: str | os.PathLike[str]) -> Path:
    """Checkpoints beside a model: ``<out>/checkpoint`` for a directory model,
    ``<name>.checkpoint`` beside a ``.safetensors`` model file."""
    out = Path(out)
    if out.suffix.lower() == ".safetensors":
        return out.with_name(out.stem + ".checkpoint")
    return out / "checkpoint"


def has_checkpoint(directory: str | os.PathLike[str]) -> bool:
    """Whether ``directory`` holds a checkpoint to resume from."""
    return (Path(directory) / CHECKPOINT_JSON).is_file()


def _cpu_copy(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.detach().cpu().contiguous().clone()


def _checkpoint_tensors(
    network: nn.Module,
    best_weights: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors to save, and the optimiser's JSON part (param groups, scalar state)."""
    tensors = {f"model/{k}": _cpu_copy(v) for k, v in network.state_dict().items()}
    tensors.update({f"best/{k}": _cpu_copy(v) for k, v in best_weights.items()})
    optim = optimizer.state_dict()
    scalars: dict[str, dict[str, Any]] = {}
    for index, values in optim["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim/{index}/{name}"] = _cpu_copy(value)
            else:
                scalars.setdefault(str(index), {})[name] = value
    tensors["rng/generator"] = generator.get_state().clone()
    tensors["rng/torch"] = torch.get_rng_state().clone()
    if torch.cuda.is_available():
        tensors["rng/cuda"] = torch.cuda.get_rng_state().clone()
    return tensors, {"param_groups": optim["param_groups"], "scalars": scalars}


def write_checkpoint(
    directory: Path,
    *,
    state: RunState,
    network: nn.Module,
    best_weights: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    identity: dict[str, Any],
) -> None:
    """Save the run after ``state.epoch`` into ``directory`` (created), replacing the previous
    checkpoint: the weights file first, then the JSON that names it, then the old weights file
    is removed, so an interruption at any point leaves a complete checkpoint."""
    directory.mkdir(parents=True, exist_ok=True)
    tensors, optimizer_record = _checkpoint_tensors(network, best_weights, optimizer, generator)
    weights_name = f"checkpoint-{state.epoch:04d}.safetensors"
    with atomic_output(directory / weights_name) as tmp:
        save_file(tensors, str(tmp))
    record = {
        "format": _FORMAT_NAME,
        "format_version": CHECKPOINT_FORMAT,
        "weights_file": weights_name,
        "identity": identity,
        "state": state.to_dict(),
        "optimizer": optimizer_record,
    }
    with atomic_output(directory / CHECKPOINT_JSON) as tmp:
        tmp.write_text(json.dumps(record, indent=1, allow_nan=True))
    for old in directory.glob("checkpoint-*.safetensors"):
        if old.name != weights_name:
            old.unlink(missing_ok=True)


def _read_record(directory: Path, identity: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint's JSON, checked for format and identity."""
    json_path = directory / CHECKPOINT_JSON
    try:
        record = json.loads(json_path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputFileError(json_path, f"unreadable checkpoint ({err})") from None
    if not isinstance(record, dict) or record.get("format") != _FORMAT_NAME:
        raise InputFileError(json_path, "not a cryoden checkpoint")
    if record.get("format_version", 0) > CHECKPOINT_FORMAT:
        raise InputFileError(json_path, "checkpoint written by a newer cryoden")
    for key in IDENTITY_KEYS:
        if _canonical(key, record["identity"].get(key)) != _canonical(key, identity[key]):
            raise ParameterError(
                f"cannot resume: the checkpoint in {directory} was made with {key} "
                f"{record['identity'].get(key)}, not {identity[key]}"
            )
    return record


def _canonical(key: str, value: Any) -> Any:
    """An identity field in its current form: a network config is read through
    :class:`NetworkConfig` (which drops keys that older files wrote at their only value) and a
    scheme through the model files' aliases, so checkpoints of older versions still resume."""
    if key == "network" and isinstance(value, dict):
        try:
            return NetworkConfig.from_dict(value).to_dict()
        except ParameterError:
            return value
    if key == "scheme" and isinstance(value, str):
        return SCHEME_ALIASES.get(value, value)
    return value


def _prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def _optimizer_state(tensors: dict[str, torch.Tensor], record: dict[str, Any]) -> dict[str, Any]:
    """The optimiser state dict rebuilt from the tensors and the JSON record."""
    state: dict[int, dict[str, Any]] = {}
    for key, value in _prefixed(tensors, "optim/").items():
        index, name = key.split("/", 1)
        state.setdefault(int(index), {})[name] = value
    for index, values in record["scalars"].items():
        state.setdefault(int(index), {}).update(values)
    groups = record["param_groups"]
    for group in groups:
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
    return {"state": state, "param_groups": groups}


def read_checkpoint(
    directory: Path,
    *,
    network: nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    identity: dict[str, Any],
) -> tuple[RunState, dict[str, torch.Tensor]]:
    """Restore a run from ``directory``: load the network's and the optimiser's state and the
    RNG states in place; return the run state and the best weights.

    Raises
    ------
    InputFileError
        For a missing, unreadable or foreign checkpoint, or one from a newer cryoden.
    ParameterError
        When the checkpoint was made with another scheme or network.
    """
    record = _read_record(directory, identity)
    weights_path = directory / record["weights_file"]
    header = check_safetensors(weights_path)
    tensors = read_tensors(weights_path, header.tensors, finite=False)
    network.load_state_dict(_prefixed(tensors, "model/"))
    optimizer.load_state_dict(_optimizer_state(tensors, record["optimizer"]))
    generator.set_state(tensors["rng/generator"])
    torch.set_rng_state(tensors["rng/torch"])
    if "rng/cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng/cuda"])
    return RunState.from_dict(record["state"]), _prefixed(tensors, "best/")
