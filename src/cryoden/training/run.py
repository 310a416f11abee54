# Over ~450 lines on purpose: TrainingRun keeps the state one resumable run shares (network,
# optimiser, generators, best weights, run state); split, that state would have to be passed around.
"""One training run's moving parts: the network, Adam, the sampling generator, the fixed
validation patches, the best weights and the resumable :class:`RunState`.

:class:`TrainingRun` reads as the loop's vocabulary: :meth:`~TrainingRun.step`,
:meth:`~TrainingRun.validate`, :meth:`~TrainingRun.keep_best`, the schedule and stopping
updates, the checkpoint; :func:`cryoden.training.loop.train` drives it epoch by epoch.
"""

from __future__ import annotations

import collections
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cryoden.errors import DegenerateModelError, ParameterError
from cryoden.models import ModelConfig, NormalizationSpec, remove_model, save_model
from cryoden.nets.blocks import scale_output
from cryoden.nets.config import NetworkConfig
from cryoden.nets.registry import build_network
from cryoden.training.checkpoint import (
    EpochRecord,
    RunState,
    has_checkpoint,
    read_checkpoint,
    write_checkpoint,
)
from cryoden.training.config import TrainConfig
from cryoden.training.data import patch_sources, sample_patches
from cryoden.training.diagnosis import run_warnings
from cryoden.training.guard import MIN_JUDGED_STEPS, GuardReport, check_model, degenerate_path
from cryoden.training.schemes import Scheme
from cryoden.training.splits import TrainingData
from cryoden.training.volumes import VolumeTrainingData

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]

#: Offset of the validation generator's seed from the run's seed (an unrelated stream).
_VALIDATION_SEED_OFFSET = 1_000_003
#: A step whose loss is not finite, or this many times the median loss of the session's last
#: :data:`DIVERGENCE_WINDOW` steps, has diverged (an explosion, not batch-to-batch noise).
DIVERGENCE_RATIO = 1000.0
DIVERGENCE_WINDOW = 100
#: Restarts after a divergence before the run gives up.
MAX_DIVERGENCE_RESTARTS = 3


class _Diverged(Exception):
    """A step's loss exploded (:data:`DIVERGENCE_RATIO`) or was not finite."""

    def __init__(self, loss: float) -> None:
        super().__init__(loss)
        self.loss = loss


def _evaluate(
    scheme: Scheme,
    network: nn.Module,
    patches: torch.Tensor,
    batch: int,
    device: torch.device,
    memory_format: torch.memory_format,
) -> float:
    """Mean validation loss of ``patches`` (eval mode, no gradient; train mode afterwards)."""
    network.eval()
    total = 0.0
    with torch.no_grad():
        for start in range(0, patches.shape[0], batch):
            chunk = patches[start : start + batch].to(device)
            chunk = chunk.contiguous(memory_format=memory_format)
            total += float(scheme.validation_loss(network, chunk)) * chunk.shape[0]
    network.train()
    return total / patches.shape[0]


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _weights_copy(network: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in network.state_dict().items()}


class TrainingRun:
    """One training run: the network, Adam, the sampling generator, the fixed validation
    patches, the best weights so far and the :class:`RunState` a checkpoint restores.

    :meth:`epoch` runs the steps of one epoch (:meth:`step`), then :meth:`validate`,
    :meth:`keep_best`, the schedule and stopping updates and the checkpoint.
    """

    def __init__(
        self,
        scheme: Scheme,
        network_config: NetworkConfig,
        config: TrainConfig,
        data: TrainingData,
        *,
        normalization: NormalizationSpec,
        identity: dict[str, Any],
        out: Path,
        checkpoint_dir: Path,
        device: torch.device,
        progress: ProgressCallback | None,
        initial_weights: Mapping[str, torch.Tensor] | None,
    ) -> None:
        self.scheme, self.network_config, self.config = scheme, network_config, config
        self.normalization, self.identity = normalization, identity
        self.summary = dict(data.summary)
        self.out, self.checkpoint_dir, self.device = out, checkpoint_dir, device
        self.progress = progress
        # channels-last convolutions are markedly faster on CPU (oneDNN) and on CUDA
        channels_last = torch.channels_last if network_config.dims == 2 else torch.channels_last_3d
        self.memory_format = (
            channels_last if device.type in ("cpu", "cuda") else torch.contiguous_format
        )
        torch.manual_seed(config.seed)  # weight initialisation (the global RNG is forked)
        self.network = self._build_network(initial_weights)
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=config.learning_rate)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.train_tensors = patch_sources(data.train)  # file-backed images stay in files
        # volumes: patches are cut from the memory-mapped tomograms' sampling regions
        self.volumes = data if isinstance(data, VolumeTrainingData) else None
        self.val_patches: torch.Tensor | None = None
        if data.validation or (self.volumes is not None and self.volumes.has_validation):
            val_generator = torch.Generator().manual_seed(config.seed + _VALIDATION_SEED_OFFSET)
            self.val_patches = self._patches(
                data.validation, config.validation_patches, val_generator, validation=True
            )
        self.best_weights = _weights_copy(self.network)
        self.state = RunState()
        #: torch's CPU thread count during the run (recorded in the model file).
        self.threads = torch.get_num_threads()
        self.warnings: list[str] = []
        self.guard: dict[str, Any] | None = None  # the guard's findings, once judged
        self.degenerate: str | None = None
        self._elapsed_before = 0.0
        self._session_start = time.perf_counter()
        #: the session's last step losses, for the divergence check
        self._recent_losses: collections.deque[float] = collections.deque(maxlen=DIVERGENCE_WINDOW)

    def _patches(
        self,
        images: Sequence[Any],
        batch: int,
        generator: torch.Generator,
        *,
        validation: bool = False,
    ) -> torch.Tensor:
        """A batch of random patches of ``images`` (for volumes: of the training, or with
        ``validation`` the validation, sampling regions)."""
        if self.volumes is not None:
            return self.volumes.sample(
                patch=self.config.patch, batch=batch, generator=generator, validation=validation
            )
        return sample_patches(images, patch=self.config.patch, batch=batch, generator=generator)

    def _build_network(self, initial_weights: Mapping[str, torch.Tensor] | None) -> nn.Module:
        network = build_network(self.network_config)
        if initial_weights is not None:
            try:
                network.load_state_dict(dict(initial_weights))
            except RuntimeError as exc:
                first = str(exc).strip().splitlines()[0]
                raise ParameterError(
                    f"the initial weights do not fit the {self.network_config.arch} network "
                    f"({first})"
                ) from None
        # Module.to takes memory_format (documented); torch's overloads omit it.
        network = network.to(  # type: ignore[call-overload]
            device=self.device, memory_format=self.memory_format
        )
        network.train()
        return network

    # -- time and limits

    def elapsed(self) -> float:
        """Wall-clock seconds of the run, earlier sessions included."""
        return self._elapsed_before + time.perf_counter() - self._session_start

    def start_clock(self) -> None:
        """Start this session's clock on top of the resumed run's time."""
        self._elapsed_before = self.state.elapsed_seconds
        self._session_start = time.perf_counter()

    def out_of_time(self) -> bool:
        if self.config.max_minutes is None:
            return False
        return self.elapsed() >= 60.0 * self.config.max_minutes

    def _early_stopping_due(self) -> bool:
        patience = self.config.early_stopping_patience
        return (
            patience is not None
            and self.val_patches is not None
            and self.state.epochs_without_improvement >= patience
        )

    def budget_spent(self) -> bool:
        """Whether the run has taken its planned steps (step budget) or epochs."""
        if self.config.max_steps is not None:
            return self.state.global_step >= self.config.max_steps
        return self.state.epoch >= self.config.epochs

    def check_limits(self) -> None:
        """Mark a resumed run that already reached its budget or its early stop as stopped."""
        if self.budget_spent():
            self.state.stopped = self.config.budget
        elif self._early_stopping_due():
            self.state.stopped = "early_stopping"

    # -- resume and the model file

    def resume(self) -> None:
        """Continue from the checkpoint, if there is one (else warn and start afresh)."""
        if not has_checkpoint(self.checkpoint_dir):
            logger.warning("no checkpoint in %s: starting a new run", self.checkpoint_dir)
            return
        self.state, best = read_checkpoint(
            self.checkpoint_dir, network=self.network, optimizer=self.optimizer,
            generator=self.generator, identity=self.identity,
        )  # fmt: skip
        self.best_weights = best or self.best_weights
        self.state.stopped = None  # the limits of this call decide again
        logger.info("resuming from %s after epoch %d", self.checkpoint_dir, self.state.epoch)

    def model_config(self) -> ModelConfig:
        """The model file's config for the run as it stands."""
        state, history = self.state, self.state.history
        training = dict(self.summary)
        training.update(
            {
                "steps": state.global_step,
                "planned_steps": self.config.total_steps,
                "epochs": state.epoch,
                "best_epoch": state.best_epoch,
                "best_validation_loss": (
                    None if self.val_patches is None else _finite(state.best_loss)
                ),
                "final_train_loss": history[-1].train_loss if history else None,
                "final_validation_loss": history[-1].validation_loss if history else None,
                "stopped": state.stopped,
                "threads": self.threads,
                "wall_seconds": round(self.elapsed(), 3),
                "baseline_validation_loss": (
                    None if self.guard is None else self.guard["baseline_loss"]
                ),
                "guard": self.guard,
                "warnings": list(self.warnings),
                "train_config": self.config.to_dict(),
                "history": [r.to_dict() for r in history],
            }
        )
        return ModelConfig(
            network=self.network_config, normalization=self.normalization,
            scheme=self.scheme.name, training=training,
            scheme_options=dict(self.identity.get("scheme_options", {})),
        )  # fmt: skip

    def save_best(self, best_network: nn.Module) -> None:
        """Write the best weights so far as the model file."""
        best_network.load_state_dict(self.best_weights)
        save_model(self.out, best_network, self.model_config())

    def validate(self) -> float | None:
        """Validation loss of the fixed patches; ``None`` without validation images."""
        if self.val_patches is None:
            return None
        return _evaluate(
            self.scheme, self.network, self.val_patches, self.config.batch_size, self.device,
            self.memory_format,
        )  # fmt: skip

    def evaluate_initial_weights(self, best_network: nn.Module) -> None:
        """Fine-tuning never ends worse than it started: the initial weights are the first
        candidate for the best model (epoch 0), judged on the same validation patches."""
        loss = self.validate()
        assert loss is not None  # train() calls this only when there are validation patches
        self.state.best_loss = loss
        self.state.best_epoch = 0
        self.save_best(best_network)
        logger.info("initial weights: validation loss %.6g", self.state.best_loss)

    # -- one step, one epoch

    def step(self) -> float:
        """One optimiser step on a fresh batch of patches; returns its loss."""
        config = self.config
        state = self.state
        lr = (
            config.learning_rate
            * 0.5**state.divergence_restarts
            * config.lr_factor(state.global_step, self.elapsed(), plateau_scale=state.lr_scale)
        )
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        batch = self._patches(self.train_tensors, config.batch_size, self.generator)
        batch = batch.to(self.device).contiguous(memory_format=self.memory_format)
        loss = self.scheme.loss(self.network, batch, generator=self.generator)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        value = float(loss.detach())
        if not math.isfinite(value) or (
            len(self._recent_losses) >= 10
            and value > DIVERGENCE_RATIO * float(np.median(self._recent_losses))
        ):
            raise _Diverged(value)
        self._recent_losses.append(value)
        self.state.global_step += 1
        if self.progress is not None:
            total = self.config.total_steps
            self.progress(min(self.state.global_step, total), total)
        return value

    def restart_after_divergence(self, epoch: int, loss: float) -> None:
        """Go back to the best weights so far with a fresh optimiser at half the learning rate,
        and warn; after :data:`MAX_DIVERGENCE_RESTARTS` restarts, give up.

        Raises
        ------
        ParameterError
            When the run has diverged once more than it may restart.
        """
        state = self.state
        if state.divergence_restarts >= MAX_DIVERGENCE_RESTARTS:
            raise ParameterError(
                f"training diverged at epoch {epoch} (loss {loss:.3g}) after "
                f"{state.divergence_restarts} restarts at lower learning rates; lower "
                "learning_rate"
            )
        state.divergence_restarts += 1
        self.network.load_state_dict(self.best_weights)
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=self.config.learning_rate)
        self.warn(
            f"training diverged at epoch {epoch} (loss {loss:.3g}): restarted from epoch "
            f"{state.best_epoch}'s weights at {0.5**state.divergence_restarts:g} times the learning "
            "rate; a lower learning rate may train better"
        )

    def _current_lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def epoch(self, best_network: nn.Module) -> bool:
        """Run one epoch: steps (until the time limit), validation, best weights, schedule,
        stopping and the checkpoint. ``False`` when time ran out before its first step."""
        epoch = self.state.epoch + 1
        start = time.perf_counter()
        losses: list[float] = []
        lr = self.config.learning_rate
        steps = self.config.steps_per_epoch
        if self.config.max_steps is not None:  # the last epoch of a step budget may be partial
            steps = min(steps, self.config.max_steps - self.state.global_step)
        for _ in range(steps):
            if self.out_of_time():
                self.state.stopped = "max_minutes"
                break
            try:
                losses.append(self.step())
            except _Diverged as diverged:
                self.restart_after_divergence(epoch, diverged.loss)
                continue
            lr = self._current_lr()
        if not losses:
            return False
        train_loss = float(np.mean(losses))
        val_loss = self.validate()
        seconds = time.perf_counter() - start
        self.state.epoch = epoch
        self.state.history.append(
            EpochRecord(epoch, train_loss, val_loss, lr, len(losses), seconds)
        )
        logger.info(
            "epoch %d/%d: train loss %.6g, validation loss %s, lr %.3g, %.1f s",
            epoch, max(epoch, self.config.total_epochs), train_loss,  # a restart adds a partial epoch
            "n/a" if val_loss is None else f"{val_loss:.6g}", lr, seconds,
        )  # fmt: skip
        monitored = val_loss if val_loss is not None else train_loss
        self.keep_best(monitored, best_network)
        self.update_plateau(monitored)
        self.update_stopping(val_loss)
        self.state.elapsed_seconds = self.elapsed()
        write_checkpoint(
            self.checkpoint_dir, state=self.state, network=self.network,
            best_weights=self.best_weights, optimizer=self.optimizer, generator=self.generator,
            identity=self.identity,
        )  # fmt: skip
        return True

    def keep_best(self, monitored: float, best_network: nn.Module) -> None:
        """On a better monitored loss, keep the weights and write the model file."""
        state = self.state
        if monitored < state.best_loss:
            state.best_loss = monitored
            state.best_epoch = state.epoch
            state.epochs_without_improvement = 0
            self.best_weights = _weights_copy(self.network)
            self.save_best(best_network)
        else:
            state.epochs_without_improvement += 1

    def update_plateau(self, monitored: float) -> None:
        """Track the plateau; with the ``"plateau"`` schedule, lower the learning rate."""
        state, config = self.state, self.config
        if monitored < state.plateau_best * (1.0 - 1e-4):
            state.plateau_best = monitored
            state.plateau_bad = 0
            return
        state.plateau_bad += 1
        if config.lr_schedule == "plateau" and state.plateau_bad > config.plateau_patience:
            state.lr_scale *= config.plateau_factor
            state.plateau_bad = 0
            logger.info("validation loss on a plateau: learning rate x%g", state.lr_scale)

    def update_stopping(self, val_loss: float | None) -> None:
        """Stop early on no better validation loss for the patience, or at the last epoch."""
        state, patience = self.state, self.config.early_stopping_patience
        if (
            patience is not None
            and val_loss is not None
            and state.epochs_without_improvement >= patience
        ):
            state.stopped = "early_stopping"
            logger.info(
                "early stopping: no better validation loss for %d epochs",
                state.epochs_without_improvement,
            )
        if state.stopped is None and self.budget_spent():
            state.stopped = self.config.budget

    # -- the end

    def calibrate(self, best_network: nn.Module) -> None:
        """Fold the scheme's output calibration, if it has one, into the best network."""
        calibration = getattr(self.scheme, "output_calibration", None)
        if calibration is None or self.val_patches is None:
            return
        fitted = calibration(best_network, self.val_patches)
        if fitted is None:
            return
        scale, offset = fitted
        if not scale > 0:  # folding it in would invert (or flatten) the output
            self.warn(f"the output calibration's scale {scale:.4g} is not positive: not applied")
            return
        scale_output(best_network, scale, offset)
        self.summary["output_calibration"] = {
            "scale": scale,
            "offset": offset,
            "fitted_on": "validation patches (least squares, see the scheme)",
        }
        logger.info("output calibrated: x %.4f %+.4f", scale, offset)

    def warn(self, message: str) -> None:
        """Log a warning about the run and keep it for :attr:`TrainResult.warnings`."""
        logger.warning("%s", message)
        self.warnings.append(message)

    def judge(self, best_network: nn.Module) -> GuardReport:
        """Run the degenerate-solution guard (:mod:`cryoden.training.guard`) on the final
        network, on the validation patches (else fixed patches of the training images); a
        finding on a run too short to judge (:data:`MIN_JUDGED_STEPS`) becomes a warning."""
        patches, which = self.val_patches, "validation"
        if patches is None:
            generator = torch.Generator().manual_seed(self.config.seed + _VALIDATION_SEED_OFFSET)
            patches = self._patches(self.train_tensors, self.config.validation_patches, generator)
            which = "training"
        report = check_model(self.scheme, best_network, patches, batch=self.config.batch_size)
        self.guard = {**report.to_dict(), "patches": which}
        logger.info(
            "guard on %s patches: loss %.6g vs %.6g predicting each patch's mean; output "
            "correlation with the input's low-pass %.3f",
            which, report.validation_loss, report.baseline_loss, report.lowpass_correlation,
        )  # fmt: skip
        if report.degenerate is not None and self.state.global_step < MIN_JUDGED_STEPS:
            self.warn(
                f"the model is not a denoiser yet: {report.degenerate}; after "
                f"{self.state.global_step} steps that is expected: train longer (max_steps)"
            )
        return report

    def finish(self, best_network: nn.Module) -> ModelConfig:
        """Load the best weights into ``best_network`` (eval mode), calibrate, judge it, and
        write the final model file; return its config.

        Raises
        ------
        DegenerateModelError
            When the guard finds the model degenerate after at least :data:`MIN_JUDGED_STEPS`
            steps: the model file at ``out`` is removed and the model kept at
            :func:`degenerate_path` instead.
        """
        state = self.state
        if state.stopped is None:
            state.stopped = "max_minutes"
        best_network.load_state_dict(self.best_weights)
        best_network.eval()
        self.calibrate(best_network)
        for message in run_warnings(
            state, self.config, threads=self.threads, validated=self.val_patches is not None
        ):
            self.warn(message)
        report = self.judge(best_network)
        self.degenerate = report.degenerate
        final_config = self.model_config()
        if report.degenerate is not None and state.global_step >= MIN_JUDGED_STEPS:
            kept = degenerate_path(self.out)
            save_model(kept, best_network, final_config)
            remove_model(self.out)
            raise DegenerateModelError(self.out, report.degenerate, kept)
        save_model(self.out, best_network, final_config)
        logger.info(
            "training stopped (%s) after %d steps, %d epochs; best epoch %d; model at %s",
            state.stopped, state.global_step, state.epoch, state.best_epoch, self.out,
        )  # fmt: skip
        return final_config
