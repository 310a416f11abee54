"""The generic training loop shared by all training schemes.

:func:`train` samples random patches, asks the scheme for a loss and steps Adam; after each
epoch it evaluates fixed validation patches, keeps the best-validation weights as a model file
at ``out`` and writes a resumable checkpoint (:mod:`cryoden.training.checkpoint`). It stops at
whichever comes first of its budget (``max_steps`` optimiser steps, else ``epochs``), the time
cap and early stopping. After the run it warns when the run fell far short of its plan or never
improved on its first epoch (:mod:`cryoden.training.diagnosis`), and refuses to save a
degenerate model (:mod:`cryoden.training.guard`). A run holds an
exclusive lock on ``out`` (:mod:`cryoden.training.lock`): a second run into the same output is
refused, not interleaved.

The run changes no global torch setting for its caller: the global random generator, the thread
count and the deterministic-algorithms mode are restored when :func:`train` returns.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cryoden.errors import ParameterError
from cryoden.models import ModelConfig, NormalizationSpec
from cryoden.nets.config import NetworkConfig
from cryoden.nets.device import default_device
from cryoden.nets.registry import build_network
from cryoden.training.checkpoint import EpochRecord, default_checkpoint_dir
from cryoden.training.config import TrainConfig
from cryoden.training.data import ImageDataset
from cryoden.training.lock import output_lock
from cryoden.training.run import ProgressCallback, TrainingRun
from cryoden.training.schemes import Scheme, make_scheme
from cryoden.training.splits import TrainingData, check_patch_fits, training_data
from cryoden.training.volumes import VolumeDataset, check_dims, volume_training_data

__all__ = ["EpochRecord", "TrainConfig", "TrainResult", "default_checkpoint_dir", "train"]


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
        What ended the run: its budget (``"steps"`` for ``max_steps``, ``"epochs"``), the time
        cap (``"max_minutes"``) or ``"early_stopping"``.
    steps, epochs
        Optimiser steps and epochs taken (resumed sessions included; the last epoch of a step
        budget or of a time-capped run may be partial).
    wall_seconds
        Wall-clock seconds of the run (resumed sessions included).
    warnings
        The run's warnings, also logged: far short of its plan, never better than the first
        epoch, a model too short-trained for the degenerate-solution guard to pass.
    degenerate
        Why the guard found the model degenerate, when the run was too short to judge it (a
        longer run raises :class:`~cryoden.errors.DegenerateModelError` instead); else ``None``.
    """

    network: nn.Module
    model_config: ModelConfig
    model_path: Path
    history: list[EpochRecord] = field(default_factory=list)
    best_epoch: int = 0
    best_validation_loss: float | None = None
    stopped: str = "epochs"
    steps: int = 0
    epochs: int = 0
    wall_seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    degenerate: str | None = None

    @property
    def train_losses(self) -> list[float]:
        """Training loss per epoch."""
        return [r.train_loss for r in self.history]

    @property
    def validation_losses(self) -> list[float | None]:
        """Validation loss per epoch."""
        return [r.validation_loss for r in self.history]


def _check_fit(
    scheme: Scheme, network_config: NetworkConfig, data: TrainingData, config: TrainConfig
) -> None:
    """Refuse images the scheme or the patch size cannot use, and networks the loop cannot
    train (one input and one output channel)."""
    for im in data.train + data.validation:
        if im.shape[0] != scheme.channels:
            raise ParameterError(
                f"scheme {scheme.name} needs {scheme.channels}-channel images, got {im.shape[0]}"
            )
        if min(im.shape[-2:]) < config.patch:
            raise ParameterError(
                f"patch size {config.patch} is larger than an image of "
                f"{im.shape[-2]}×{im.shape[-1]}; use a smaller patch"
            )
    fit_on = getattr(scheme, "pair_fit_on", None)
    if fit_on is not None and data.pair_fit_on not in (None, fit_on):
        raise ParameterError(
            f"scheme {scheme.name} needs pairs normalised on "
            f"{'the input a alone' if fit_on == 'a' else 'both images'}; build the pair "
            f"dataset with fit_on={fit_on!r}"
        )
    if network_config.in_channels != 1 or network_config.out_channels != 1:
        raise ParameterError("training needs a network with one input and one output channel")
    check_dims(scheme.name, scheme.channels, network_config.dims, data)  # 2D images, 3D volumes


def _execute(run: TrainingRun, *, resume: bool, fine_tuning: bool) -> TrainResult:
    """Resume if asked, then train epoch by epoch until a limit stops the run."""
    if resume:
        run.resume()
    best_network = build_network(run.network_config)
    run.check_limits()
    run.start_clock()
    if fine_tuning and run.val_patches is not None and run.state.epoch == 0:
        run.evaluate_initial_weights(best_network)
    while run.state.stopped is None:
        if run.out_of_time():
            run.state.stopped = "max_minutes"
            break
        if not run.epoch(best_network):
            break
    final_config = run.finish(best_network)
    state = run.state
    return TrainResult(
        network=best_network,
        model_config=final_config,
        model_path=run.out,
        history=list(state.history),
        best_epoch=state.best_epoch,
        best_validation_loss=state.best_loss if math.isfinite(state.best_loss) else None,
        stopped=state.stopped or "max_minutes",
        steps=state.global_step,
        epochs=state.epoch,
        wall_seconds=float(final_config.training["wall_seconds"]),
        warnings=list(run.warnings),
        degenerate=run.degenerate,
    )


@contextlib.contextmanager
def _scoped_torch_state(threads: int | None, device: torch.device) -> Iterator[None]:
    """Fork torch's global random generators (the CPU's and every CUDA device's, all of which
    ``torch.manual_seed`` seeds), set the thread count and, on the CPU, deterministic
    algorithms; all restored on exit."""
    previous_threads = torch.get_num_threads()
    previous_deterministic = torch.are_deterministic_algorithms_enabled()
    previous_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    cuda_devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=cuda_devices):
        try:
            if threads is not None:
                torch.set_num_threads(threads)
            if device.type == "cpu":  # cheap on the CPU; on CUDA some backward passes lack it
                torch.use_deterministic_algorithms(True, warn_only=True)
            yield
        finally:
            torch.set_num_threads(previous_threads)
            torch.use_deterministic_algorithms(previous_deterministic, warn_only=previous_warn_only)


def train(
    scheme: Scheme | str,
    network_config: NetworkConfig,
    train_images: ImageDataset | Sequence[np.ndarray] | VolumeDataset,
    val_images: ImageDataset | Sequence[np.ndarray] | VolumeDataset | None,
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
        ``(C, H, W)`` with ``C = scheme.channels``; or volumes, a
        :class:`~cryoden.training.volumes.VolumePairDataset` / ``VolumeSingleDataset``, for
        a 3D network (``network_config.dims == 3``).
    val_images
        Validation images of the same kind, or ``None`` to hold out
        ``train_config.validation_fraction`` of the training images (whole images, seeded
        split). With no validation images at all, the training loss stands in for it.
    train_config
        Hyper-parameters.
    out
        Model path written by :func:`~cryoden.models.save_model` (``.safetensors`` file or
        directory) each time the validation loss improves, and at the end: there is always a
        usable model holding the best weights.
    resume
        Continue the run saved in the checkpoint directory (same losses as an uninterrupted
        run with the same seed). Without a checkpoint, start afresh (with a warning).
    progress
        Called as ``progress(steps_done, steps_total)`` after each step; ``steps_total`` is the
        planned steps (:attr:`TrainConfig.total_steps`).
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
        The best network, its config, the path, the per-epoch history, the steps taken and
        the run's warnings.

    Raises
    ------
    DegenerateModelError
        When the final model is no better than predicting each patch's mean, or its output
        anti-correlates with its input's low-pass (:mod:`cryoden.training.guard`), after a run
        long enough to judge: the model is then kept at
        :func:`~cryoden.training.guard.degenerate_path` of ``out``, not at ``out``.

    Notes
    -----
    Runs are reproducible for a given seed, device and thread count: the seed initialises the
    weights and a :class:`torch.Generator` that draws every patch and every random choice of
    the scheme; deterministic algorithms are requested on the CPU. The weights are initialised
    inside a fork of torch's global random generator, so the caller's random state is the same
    after the call. With ``max_steps`` the run is the same on any machine of the same kind
    (bitwise on the same hardware and thread count) unless ``max_minutes`` cuts it short; with
    an epoch budget and ``max_minutes``, the stopping point and the cosine schedule (when time
    runs ahead of steps) depend on the machine's speed.
    """
    config = train_config
    if isinstance(scheme, str):
        scheme = make_scheme(scheme, loss=config.loss)
    data: TrainingData
    if isinstance(train_images, VolumeDataset):  # tomograms: patches from memory maps
        data = volume_training_data(
            train_images, val_images, validation_fraction=config.validation_fraction,
            patch=config.patch,
        )  # fmt: skip
    else:
        if isinstance(val_images, VolumeDataset):
            raise ParameterError("validation volumes need training volumes")
        check_patch_fits(train_images, config.patch)
        data = training_data(
            train_images, val_images, validation_fraction=config.validation_fraction,
            seed=config.seed, patch=config.patch,
        )  # fmt: skip
    _check_fit(scheme, network_config, data, config)
    if data_summary:
        data.summary["data"] = data_summary
    out = Path(out)
    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir is not None else default_checkpoint_dir(out)
    dev = torch.device(device) if device is not None else default_device()
    identity: dict[str, Any] = {"scheme": scheme.name, "network": network_config.to_dict()}
    options_of = getattr(scheme, "scheme_options", None)
    if options_of is not None:  # recorded in the model file and the checkpoint
        identity["scheme_options"] = dict(options_of())
    with output_lock(out), _scoped_torch_state(config.threads, dev):
        run = TrainingRun(
            scheme, network_config, config, data,
            normalization=data.normalization or normalization or NormalizationSpec(),
            identity=identity, out=out, checkpoint_dir=ckpt_dir, device=dev, progress=progress,
            initial_weights=initial_weights,
        )  # fmt: skip
        return _execute(run, resume=resume, fine_tuning=initial_weights is not None)
