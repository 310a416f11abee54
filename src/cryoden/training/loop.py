"""The generic training loop shared by all training schemes.

:func:`train` samples random patches, asks the scheme for a loss, steps Adam, evaluates fixed
validation patches after each epoch, keeps the best-validation weights as a model file at
``out``, writes a resumable checkpoint each epoch and stops at whichever comes first of the
epoch count, the time limit and early stopping.

Checkpoints are a ``checkpoint-<epoch>.safetensors`` file (weights, best weights, Adam's
moment tensors, RNG states) and a ``checkpoint.json`` (epoch, history, schedule and
early-stopping state, optimiser hyper-parameters); no pickle is written or read.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from cryoden.errors import InputFileError, ParameterError
from cryoden.models.modelfile import ModelConfig, check_safetensors, save_model
from cryoden.models.normalization import NormalizationSpec
from cryoden.nets.blocks import scale_output
from cryoden.nets.config import NetworkConfig
from cryoden.nets.device import default_device
from cryoden.nets.registry import build_network
from cryoden.training.data import ImageDataset, sample_patches, split_indices
from cryoden.training.losses import check_loss
from cryoden.training.schemes import Scheme, make_scheme

logger = logging.getLogger(__name__)

LR_SCHEDULES: tuple[str, ...] = ("cosine", "plateau", "constant")
CHECKPOINT_JSON = "checkpoint.json"
CHECKPOINT_FORMAT = 1

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class TrainConfig:
    """Training hyper-parameters.

    Parameters
    ----------
    epochs
        Maximum number of epochs.
    max_minutes
        Wall-clock limit of the run (summed over resumed sessions; validation and checkpoints
        included), checked between steps; ``None`` for none. The run then ends gracefully:
        the partial epoch is validated and the best weights are saved.
    patch
        Patch side in pixels.
    batch_size
        Patches per step.
    steps_per_epoch
        Optimiser steps per epoch.
    learning_rate
        Adam's initial learning rate.
    lr_schedule
        ``"cosine"`` (decay to ``min_lr_fraction * learning_rate`` over the run: by steps, or
        by time when ``max_minutes`` is reached first), ``"plateau"`` (multiply by
        ``plateau_factor`` after ``plateau_patience`` epochs without a better validation
        loss) or ``"constant"``.
    min_lr_fraction
        Final learning rate of the cosine schedule, relative to ``learning_rate``.
    plateau_patience, plateau_factor
        Reduce-on-plateau settings.
    loss
        ``"l2"`` or ``"l1"`` (used when the scheme is given by name).
    validation_fraction
        Fraction of whole images held out for validation when no validation images are given.
    validation_patches
        Number of fixed validation patches (drawn once with a fixed generator).
    early_stopping_patience
        Stop after this many epochs without a better validation loss; ``None`` (or no
        validation images) never stops early.
    seed
        Seeds weight initialisation, patch sampling, scheme randomness and the split.
    threads
        CPU threads for torch (``torch.set_num_threads``) during training; ``None`` keeps the
        current setting.
    """

    epochs: int = 100
    max_minutes: float | None = None
    patch: int = 64
    batch_size: int = 16
    steps_per_epoch: int = 50
    learning_rate: float = 1e-3
    lr_schedule: str = "cosine"
    min_lr_fraction: float = 0.01
    plateau_patience: int = 5
    plateau_factor: float = 0.5
    loss: str = "l2"
    validation_fraction: float = 0.1
    validation_patches: int = 64
    early_stopping_patience: int | None = 20
    seed: int = 0
    threads: int | None = None

    def __post_init__(self) -> None:
        def positive_int(name: str, value: object) -> None:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ParameterError(f"{name} must be a positive integer, got {value!r}")

        for name in ("epochs", "patch", "batch_size", "steps_per_epoch", "validation_patches"):
            positive_int(name, getattr(self, name))
        positive_int("plateau_patience", self.plateau_patience)
        if self.threads is not None:
            positive_int("threads", self.threads)
        if self.early_stopping_patience is not None:
            positive_int("early_stopping_patience", self.early_stopping_patience)
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ParameterError(f"max_minutes must be positive, got {self.max_minutes}")
        if not (isinstance(self.learning_rate, (int, float)) and self.learning_rate > 0):
            raise ParameterError(f"learning_rate must be positive, got {self.learning_rate!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ParameterError(
                f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}"
            )
        if not 0.0 <= self.min_lr_fraction <= 1.0:
            raise ParameterError(f"min_lr_fraction must be in [0, 1], got {self.min_lr_fraction}")
        if not 0.0 < self.plateau_factor < 1.0:
            raise ParameterError(f"plateau_factor must be in (0, 1), got {self.plateau_factor}")
        check_loss(self.loss)
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ParameterError(
                f"validation_fraction must be in [0, 1), got {self.validation_fraction}"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ParameterError(f"seed must be a non-negative integer, got {self.seed!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build and validate; unknown fields raise ParameterError."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ParameterError(f"unknown training option(s) {', '.join(unknown)}")
        return cls(**data)


@dataclass
class EpochRecord:
    """One epoch of the history."""

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
class TrainResult:
    """What :func:`train` returns.

    Attributes
    ----------
    network
        The network with the best weights loaded (CPU, eval mode).
    model_config
        The config stored in the model file.
    model_path
        Where the model file is (``out``).
    history
        One :class:`EpochRecord` per epoch run (resumed epochs included).
    best_epoch, best_validation_loss
        The epoch whose weights are kept, and its validation loss (its training loss when
        there is no validation set).
    stopped
        ``"epochs"``, ``"max_minutes"`` or ``"early_stopping"``.
    """

    network: nn.Module
    model_config: ModelConfig
    model_path: Path
    history: list[EpochRecord] = field(default_factory=list)
    best_epoch: int = 0
    best_validation_loss: float | None = None
    stopped: str = "epochs"

    @property
    def train_losses(self) -> list[float]:
        """Training loss per epoch."""
        return [r.train_loss for r in self.history]

    @property
    def validation_losses(self) -> list[float | None]:
        """Validation loss per epoch."""
        return [r.validation_loss for r in self.history]


@dataclass
class _State:
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
    stopped: str | None = None


def default_checkpoint_dir(out: str | os.PathLike[str]) -> Path:
    """Checkpoints beside a model: ``<out>/checkpoint`` for a directory model,
    ``<name>.checkpoint`` beside a ``.safetensors`` model file."""
    out = Path(out)
    if out.suffix.lower() == ".safetensors":
        return out.with_name(out.stem + ".checkpoint")
    return out / "checkpoint"


def _resolve_datasets(
    train_images: ImageDataset | Sequence[np.ndarray],
    val_images: ImageDataset | Sequence[np.ndarray] | None,
    config: TrainConfig,
) -> tuple[list[np.ndarray], list[np.ndarray], dict[str, Any], NormalizationSpec | None]:
    spec = getattr(train_images, "normalization", None)
    if isinstance(train_images, ImageDataset):
        summary: dict[str, Any] = {"channels": train_images.channels}
        if train_images.sources is not None:
            summary["sources"] = list(train_images.sources)
        train_list = list(train_images.images)
    else:
        train_list = [np.asarray(im, dtype=np.float32) for im in train_images]
        summary = {}
    if val_images is None:
        train_idx, val_idx = split_indices(
            len(train_list), config.validation_fraction, seed=config.seed
        )
        val_list = [train_list[i] for i in val_idx]
        train_list = [train_list[i] for i in train_idx]
    elif isinstance(val_images, ImageDataset):
        val_list = list(val_images.images)
    else:
        val_list = [np.asarray(im, dtype=np.float32) for im in val_images]
    for name, images in (("training", train_list), ("validation", val_list)):
        for im in images:
            if im.ndim != 3:
                raise ParameterError(f"{name} images must be (C, H, W), got shape {im.shape}")
    if not train_list:
        raise ParameterError("no training images")
    shapes = sorted({tuple(int(s) for s in im.shape[-2:]) for im in train_list + val_list})
    summary.update(
        {
            "n_train_images": len(train_list),
            "n_validation_images": len(val_list),
            "shapes": [list(s) for s in shapes],
        }
    )
    return train_list, val_list, summary, spec


def _lr_factor(config: TrainConfig, state: _State, total_steps: int, elapsed: float) -> float:
    if config.lr_schedule == "constant":
        return 1.0
    if config.lr_schedule == "plateau":
        return state.lr_scale
    progress = state.global_step / total_steps
    if config.max_minutes is not None:
        progress = max(progress, elapsed / (60.0 * config.max_minutes))
    progress = min(progress, 1.0)
    low = config.min_lr_fraction
    return low + (1.0 - low) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _evaluate(
    scheme: Scheme,
    network: nn.Module,
    patches: torch.Tensor,
    batch: int,
    device: torch.device,
    memory_format: torch.memory_format,
) -> float:
    network.eval()
    total = 0.0
    with torch.no_grad():
        for start in range(0, patches.shape[0], batch):
            chunk = patches[start : start + batch].to(device)
            chunk = chunk.contiguous(memory_format=memory_format)
            total += float(scheme.validation_loss(network, chunk)) * chunk.shape[0]
    network.train()
    return total / patches.shape[0]


# --- checkpoints -------------------------------------------------------------------------


def _write_checkpoint(
    directory: Path,
    *,
    state: _State,
    network: nn.Module,
    best_weights: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    identity: dict[str, Any],
) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    for key, value in network.state_dict().items():
        tensors[f"model/{key}"] = value.detach().cpu().contiguous().clone()
    for key, value in best_weights.items():
        tensors[f"best/{key}"] = value.contiguous().clone()
    optim = optimizer.state_dict()
    scalars: dict[str, dict[str, Any]] = {}
    for index, values in optim["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim/{index}/{name}"] = value.detach().cpu().contiguous().clone()
            else:
                scalars.setdefault(str(index), {})[name] = value
    tensors["rng/generator"] = generator.get_state().clone()
    tensors["rng/torch"] = torch.get_rng_state().clone()
    if torch.cuda.is_available():
        tensors["rng/cuda"] = torch.cuda.get_rng_state().clone()
    weights_name = f"checkpoint-{state.epoch:04d}.safetensors"
    fd, tmp = tempfile.mkstemp(prefix=".ckpt.", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        save_file(tensors, tmp)
        os.replace(tmp, directory / weights_name)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    record = {
        "format": "cryoden-checkpoint",
        "format_version": CHECKPOINT_FORMAT,
        "weights_file": weights_name,
        "identity": identity,
        "state": {
            **{k: v for k, v in dataclasses.asdict(state).items() if k != "history"},
            "history": [r.to_dict() for r in state.history],
        },
        "optimizer": {"param_groups": optim["param_groups"], "scalars": scalars},
    }
    text = json.dumps(record, indent=1, allow_nan=True)
    fd, tmp = tempfile.mkstemp(prefix=".ckpt.", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        Path(tmp).write_text(text)
        os.replace(tmp, directory / CHECKPOINT_JSON)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    for old in directory.glob("checkpoint-*.safetensors"):
        if old.name != weights_name:
            old.unlink(missing_ok=True)


def _read_checkpoint(
    directory: Path,
    *,
    network: nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    identity: dict[str, Any],
) -> tuple[_State, dict[str, torch.Tensor]]:
    json_path = directory / CHECKPOINT_JSON
    try:
        record = json.loads(json_path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputFileError(json_path, f"unreadable checkpoint ({err})") from None
    if record.get("format") != "cryoden-checkpoint":
        raise InputFileError(json_path, "not a cryoden checkpoint")
    if record.get("format_version", 0) > CHECKPOINT_FORMAT:
        raise InputFileError(json_path, "checkpoint written by a newer cryoden")
    for key in ("scheme", "network"):
        if record["identity"].get(key) != identity[key]:
            raise ParameterError(
                f"cannot resume: the checkpoint in {directory} was made with {key} "
                f"{record['identity'].get(key)}, not {identity[key]}"
            )
    weights_path = directory / record["weights_file"]
    check_safetensors(weights_path)
    tensors = load_file(str(weights_path))
    network.load_state_dict(
        {k[len("model/") :]: v for k, v in tensors.items() if k.startswith("model/")}
    )
    best = {k[len("best/") :]: v for k, v in tensors.items() if k.startswith("best/")}
    optim_state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optim/"):
            _, index, name = key.split("/", 2)
            optim_state.setdefault(int(index), {})[name] = value
    for index, values in record["optimizer"]["scalars"].items():
        optim_state.setdefault(int(index), {}).update(values)
    groups = record["optimizer"]["param_groups"]
    for group in groups:
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
    optimizer.load_state_dict({"state": optim_state, "param_groups": groups})
    generator.set_state(tensors["rng/generator"])
    torch.set_rng_state(tensors["rng/torch"])
    if "rng/cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng/cuda"])
    raw = dict(record["state"])
    raw["history"] = [EpochRecord(**r) for r in raw["history"]]
    return _State(**raw), best


# --- the loop ----------------------------------------------------------------------------


def train(
    scheme: Scheme | str,
    network_config: NetworkConfig,
    train_images: ImageDataset | Sequence[np.ndarray],
    val_images: ImageDataset | Sequence[np.ndarray] | None,
    train_config: TrainConfig,
    *,
    out: str | os.PathLike[str],
    resume: bool = False,
    progress: ProgressCallback | None = None,
    data_summary: dict[str, Any] | None = None,
    normalization: NormalizationSpec | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    device: str | torch.device | None = None,
    initial_weights: Mapping[str, torch.Tensor] | None = None,
) -> TrainResult:
    """Train a network with a training scheme; keep the best weights as a model file.

    Parameters
    ----------
    scheme
        A scheme object (see :mod:`cryoden.training.schemes`) or a registered name, built with
        ``loss=train_config.loss``.
    network_config
        The network to train.
    train_images
        A :class:`~cryoden.training.data.PairDataset` / ``SingleDataset``, or normalised arrays
        ``(C, H, W)`` with ``C = scheme.channels``.
    val_images
        Validation images of the same kind, or ``None`` to hold out
        ``train_config.validation_fraction`` of the training images (whole images, seeded
        split). With no validation images at all, the training loss stands in for it.
    train_config
        Hyper-parameters.
    out
        Model path written by :func:`~cryoden.models.modelfile.save_model` (``.safetensors``
        file or directory) each time the validation loss improves, and at the end: there is
        always a usable model holding the best weights.
    resume
        Continue the run saved in the checkpoint directory (same losses as an uninterrupted
        run with the same seed). Without a checkpoint, start afresh (with a warning).
    progress
        Called as ``progress(steps_done, steps_total)`` after each step.
    data_summary
        Extra JSON-ready facts for the model file's training summary (e.g. source dirs).
    normalization
        The normalisation the images were prepared with, when arrays are passed (a dataset
        carries its own); recorded in the model file.
    checkpoint_dir
        Where checkpoints go; by default :func:`default_checkpoint_dir` of ``out``.
    device
        Training device; by default :func:`~cryoden.nets.device.default_device`.
    initial_weights
        Start from these weights (a state dict of a network built from ``network_config``, e.g.
        :attr:`LoadedModel.network`'s) instead of a random initialisation: fine-tuning. With
        validation images, the initial weights are the first candidate for the best model
        (epoch 0), so the result is never worse than the start on the validation loss. A
        checkpoint loaded with ``resume`` takes precedence.

    Returns
    -------
    TrainResult
        The best network, its config, the path and the per-epoch history.

    Notes
    -----
    Runs are reproducible for a given seed, device and thread count: the seed initialises the
    weights (``torch.manual_seed``) and a :class:`torch.Generator` that draws every patch and
    every random choice of the scheme; deterministic algorithms are requested on the CPU. With
    ``max_minutes`` the stopping point (and the cosine schedule, when time runs ahead of
    steps) depends on the machine's speed.
    """
    config = train_config
    if isinstance(scheme, str):
        scheme = make_scheme(scheme, loss=config.loss)
    train_list, val_list, summary, dataset_spec = _resolve_datasets(
        train_images, val_images, config
    )
    spec = dataset_spec or normalization or NormalizationSpec()
    for im in train_list + val_list:
        if im.shape[0] != scheme.channels:
            raise ParameterError(
                f"scheme {scheme.name} needs {scheme.channels}-channel images, got {im.shape[0]}"
            )
        if min(im.shape[-2:]) < config.patch:
            raise ParameterError(
                f"patch size {config.patch} is larger than an image of "
                f"{im.shape[-2]}×{im.shape[-1]}; use a smaller patch"
            )
    if network_config.in_channels != 1 or network_config.out_channels != 1:
        raise ParameterError("training needs a network with one input and one output channel")
    out = Path(out)
    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir is not None else default_checkpoint_dir(out)
    dev = torch.device(device) if device is not None else default_device()
    identity = {"scheme": scheme.name, "network": network_config.to_dict()}
    options_of = getattr(scheme, "scheme_options", None)
    if options_of is not None:  # a checkpoint resumes only the same kind of training
        identity["scheme_options"] = dict(options_of())
    if data_summary:
        summary["data"] = data_summary

    previous_threads = torch.get_num_threads()
    previous_deterministic = torch.are_deterministic_algorithms_enabled()
    previous_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    if dev.type == "cpu":  # cheap on the CPU; on CUDA some backward passes have no such mode
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        return _run(
            scheme, network_config, config, spec, train_list, val_list, summary, identity,
            out=out, ckpt_dir=ckpt_dir, device=dev, resume=resume, progress=progress,
            initial_weights=initial_weights,
        )  # fmt: skip
    finally:
        torch.set_num_threads(previous_threads)
        torch.use_deterministic_algorithms(previous_deterministic, warn_only=previous_warn_only)


def _run(
    scheme: Scheme,
    network_config: NetworkConfig,
    config: TrainConfig,
    spec: NormalizationSpec,
    train_list: list[np.ndarray],
    val_list: list[np.ndarray],
    summary: dict[str, Any],
    identity: dict[str, Any],
    *,
    out: Path,
    ckpt_dir: Path,
    device: torch.device,
    resume: bool,
    progress: ProgressCallback | None,
    initial_weights: Mapping[str, torch.Tensor] | None = None,
) -> TrainResult:
    torch.manual_seed(config.seed)
    # channels-last convolutions are markedly faster on CPU (oneDNN) and on CUDA
    memory_format = (
        torch.channels_last if device.type in ("cpu", "cuda") else torch.contiguous_format
    )
    network = build_network(network_config)
    if initial_weights is not None:
        try:
            network.load_state_dict(dict(initial_weights))
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise ParameterError(
                f"the initial weights do not fit the {network_config.arch} network ({first})"
            ) from None
    network = network.to(device=device, memory_format=memory_format)
    network.train()
    optimizer = torch.optim.Adam(network.parameters(), lr=config.learning_rate)
    generator = torch.Generator().manual_seed(config.seed)
    train_tensors = [torch.from_numpy(np.ascontiguousarray(im)) for im in train_list]
    val_patches = None
    if val_list:
        val_generator = torch.Generator().manual_seed(config.seed + 1_000_003)
        val_patches = sample_patches(
            val_list, patch=config.patch, batch=config.validation_patches, generator=val_generator
        )
    best_weights = {k: v.detach().cpu().clone() for k, v in network.state_dict().items()}
    state = _State()
    if resume:
        if (ckpt_dir / CHECKPOINT_JSON).is_file():
            state, best = _read_checkpoint(
                ckpt_dir, network=network, optimizer=optimizer, generator=generator,
                identity=identity,
            )  # fmt: skip
            best_weights = best or best_weights
            state.stopped = None  # the limits of this call decide again
            logger.info("resuming from %s after epoch %d", ckpt_dir, state.epoch)
        else:
            logger.warning("no checkpoint in %s: starting a new run", ckpt_dir)

    scheme_options = dict(identity.get("scheme_options", {}))
    total_steps = config.epochs * config.steps_per_epoch
    deadline = None if config.max_minutes is None else 60.0 * config.max_minutes

    def model_config() -> ModelConfig:
        training = dict(summary)
        training.update(
            {
                "epochs": state.epoch,
                "best_epoch": state.best_epoch,
                "best_validation_loss": None if not val_list else _finite(state.best_loss),
                "final_train_loss": state.history[-1].train_loss if state.history else None,
                "final_validation_loss": (
                    state.history[-1].validation_loss if state.history else None
                ),
                "stopped": state.stopped,
                "train_config": config.to_dict(),
                "history": [r.to_dict() for r in state.history],
            }
        )
        return ModelConfig(
            network=network_config, normalization=spec, scheme=scheme.name, training=training,
            scheme_options=scheme_options,
        )  # fmt: skip

    best_network = build_network(network_config)
    if state.epoch >= config.epochs:
        state.stopped = "epochs"
    elif (
        config.early_stopping_patience is not None
        and val_patches is not None
        and state.epochs_without_improvement >= config.early_stopping_patience
    ):
        state.stopped = "early_stopping"
    session_start, elapsed_before = time.perf_counter(), state.elapsed_seconds

    def elapsed() -> float:  # wall-clock seconds of the run, earlier sessions included
        return elapsed_before + time.perf_counter() - session_start

    if initial_weights is not None and val_patches is not None and state.epoch == 0:
        # Fine-tuning never ends worse than it started: the initial weights are the first
        # candidate for the best model (epoch 0), judged on the same validation patches.
        state.best_loss = _evaluate(
            scheme, network, val_patches, config.batch_size, device, memory_format
        )
        state.best_epoch = 0
        best_network.load_state_dict(best_weights)
        save_model(out, best_network, model_config())
        logger.info("initial weights: validation loss %.6g", state.best_loss)

    while state.stopped is None:
        if deadline is not None and elapsed() >= deadline:
            state.stopped = "max_minutes"
            break
        epoch = state.epoch + 1
        step_losses: list[float] = []
        epoch_start = time.perf_counter()
        lr = config.learning_rate
        for _ in range(config.steps_per_epoch):
            now = elapsed()
            if deadline is not None and now >= deadline:
                state.stopped = "max_minutes"
                break
            lr = config.learning_rate * _lr_factor(config, state, total_steps, now)
            for group in optimizer.param_groups:
                group["lr"] = lr
            batch = sample_patches(
                train_tensors, patch=config.patch, batch=config.batch_size, generator=generator
            )
            batch = batch.to(device).contiguous(memory_format=memory_format)
            loss = scheme.loss(network, batch, generator=generator)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            value = float(loss.detach())
            if not math.isfinite(value):
                raise ParameterError(
                    f"training diverged at epoch {epoch} (loss {value}); lower the learning rate"
                )
            step_losses.append(value)
            state.global_step += 1
            if progress is not None:
                progress(min(state.global_step, total_steps), total_steps)
        if not step_losses:
            break
        train_loss = float(np.mean(step_losses))
        val_loss = None
        if val_patches is not None:
            val_loss = _evaluate(
                scheme, network, val_patches, config.batch_size, device, memory_format
            )
        seconds = time.perf_counter() - epoch_start
        state.epoch = epoch
        state.history.append(
            EpochRecord(epoch, train_loss, val_loss, lr, len(step_losses), seconds)
        )
        logger.info(
            "epoch %d/%d: train loss %.6g, validation loss %s, lr %.3g, %.1f s",
            epoch, config.epochs, train_loss,
            "n/a" if val_loss is None else f"{val_loss:.6g}", lr, seconds,
        )  # fmt: skip
        monitored = val_loss if val_loss is not None else train_loss
        if monitored < state.best_loss:
            state.best_loss = monitored
            state.best_epoch = epoch
            state.epochs_without_improvement = 0
            best_weights = {k: v.detach().cpu().clone() for k, v in network.state_dict().items()}
            best_network.load_state_dict(best_weights)
            save_model(out, best_network, model_config())
        else:
            state.epochs_without_improvement += 1
        if monitored < state.plateau_best * (1.0 - 1e-4):
            state.plateau_best = monitored
            state.plateau_bad = 0
        else:
            state.plateau_bad += 1
            if config.lr_schedule == "plateau" and state.plateau_bad > config.plateau_patience:
                state.lr_scale *= config.plateau_factor
                state.plateau_bad = 0
                logger.info("validation loss on a plateau: learning rate x%g", state.lr_scale)
        if (
            config.early_stopping_patience is not None
            and val_loss is not None
            and state.epochs_without_improvement >= config.early_stopping_patience
        ):
            state.stopped = "early_stopping"
            logger.info(
                "early stopping: no better validation loss for %d epochs",
                state.epochs_without_improvement,
            )
        if state.stopped is None and epoch >= config.epochs:
            state.stopped = "epochs"
        state.elapsed_seconds = elapsed()
        _write_checkpoint(
            ckpt_dir, state=state, network=network, best_weights=best_weights,
            optimizer=optimizer, generator=generator, identity=identity,
        )  # fmt: skip

    if state.stopped is None:
        state.stopped = "max_minutes"
    best_network.load_state_dict(best_weights)
    best_network.eval()
    calibration = getattr(scheme, "output_calibration", None)
    if calibration is not None and val_patches is not None and not network_config.residual:
        fitted = calibration(best_network, val_patches)
        if fitted is not None:
            scale, offset = fitted
            scale_output(best_network, scale, offset)
            summary["output_calibration"] = {
                "scale": scale,
                "offset": offset,
                "fitted_on": "validation patches (least squares, see the scheme)",
            }
            logger.info("output calibrated: x %.4f %+.4f", scale, offset)
    final_config = model_config()
    save_model(out, best_network, final_config)
    logger.info(
        "training stopped (%s) after %d epochs; best epoch %d; model at %s",
        state.stopped, state.epoch, state.best_epoch, out,
    )  # fmt: skip
    return TrainResult(
        network=best_network,
        model_config=final_config,
        model_path=out,
        history=list(state.history),
        best_epoch=state.best_epoch,
        best_validation_loss=_finite(state.best_loss),
        stopped=state.stopped,
    )


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
