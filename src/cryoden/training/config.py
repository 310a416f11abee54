"""Training hyper-parameters: :class:`TrainConfig`, validated; its field defaults are cryoden's
training defaults (the command line and the benchmarks take them from here)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from cryoden.errors import ParameterError
from cryoden.training.losses import check_loss

#: Learning-rate schedules :class:`TrainConfig` accepts.
LR_SCHEDULES: tuple[str, ...] = ("cosine", "plateau", "constant")


def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ParameterError(f"{name} must be a positive integer, got {value!r}")


def _positive_finite(value: object) -> bool:
    """Whether ``value`` is a real number, finite and above 0 (NaN and booleans are not)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value) and value > 0


def _check_fraction(name: str, value: object, *, closed_high: bool) -> None:
    """``value`` in ``[0, 1]`` (``closed_high``) or ``[0, 1)``."""
    ok = (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and 0.0 <= value
        and (value <= 1.0 if closed_high else value < 1.0)
    )
    if not ok:
        bound = "[0, 1]" if closed_high else "[0, 1)"
        raise ParameterError(f"{name} must be in {bound}, got {value!r}")


@dataclass(frozen=True)
class TrainConfig:
    """Training hyper-parameters.

    Parameters
    ----------
    epochs
        Maximum number of epochs (the budget when ``max_steps`` is ``None``).
    max_steps
        The budget in optimiser steps; ``None`` budgets by ``epochs``. When given, the run
        takes exactly this many steps (``ceil(max_steps / steps_per_epoch)`` epochs, the last
        one possibly partial) unless ``max_minutes`` or early stopping ends it first, and
        ``epochs`` is not used. A step budget makes a seeded run the same on any machine: the
        cosine schedule then follows the steps alone, never the clock.
    max_minutes
        Wall-clock limit of the run in minutes (summed over resumed sessions; validation and
        checkpoints included), checked between steps; ``None`` for none. The run then ends
        gracefully: the partial epoch is validated and the best weights are saved.
    patch
        Patch side in pixels.
    batch_size
        Patches per step.
    steps_per_epoch
        Optimiser steps per epoch.
    learning_rate
        Adam's initial learning rate.
    lr_schedule
        ``"cosine"`` (decay to ``min_lr_fraction * learning_rate`` over the run: by steps; with
        an epoch budget and ``max_minutes``, by time when the time cap comes first), ``"plateau"`` (multiply by
        ``plateau_factor`` after ``plateau_patience`` epochs without a better validation
        loss) or ``"constant"``.
    min_lr_fraction
        Final learning rate of the cosine schedule, relative to ``learning_rate``.
    plateau_patience, plateau_factor
        Reduce-on-plateau settings (epochs, and the factor in (0, 1)).
    loss
        ``"l2"`` or ``"l1"`` (used when the scheme is given by name).
    validation_fraction
        Fraction of whole images held out for validation when no validation images are given;
        0 holds out none (the training loss then stands in for the validation loss).
    validation_patches
        Number of fixed validation patches (drawn once with a fixed generator).
    early_stopping_patience
        Stop after this many epochs without a better validation loss; ``None`` (or no
        validation images) never stops early.
    seed
        Seeds weight initialisation, patch sampling, scheme randomness and the split.
    threads
        CPU threads for torch during training (restored afterwards); ``None`` keeps the current
        setting.
    """

    epochs: int = 100
    max_steps: int | None = None
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
        for name in (
            "epochs", "patch", "batch_size", "steps_per_epoch", "validation_patches",
            "plateau_patience",
        ):  # fmt: skip
            _check_positive_int(name, getattr(self, name))
        for name in ("threads", "early_stopping_patience", "max_steps"):
            if getattr(self, name) is not None:
                _check_positive_int(name, getattr(self, name))
        if self.max_minutes is not None and not _positive_finite(self.max_minutes):
            raise ParameterError(
                f"max_minutes must be a positive finite number, got {self.max_minutes!r}"
            )
        if not _positive_finite(self.learning_rate):
            raise ParameterError(
                f"learning_rate must be a positive finite number, got {self.learning_rate!r}"
            )
        if self.lr_schedule not in LR_SCHEDULES:
            raise ParameterError(
                f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}"
            )
        _check_fraction("min_lr_fraction", self.min_lr_fraction, closed_high=True)
        if not _positive_finite(self.plateau_factor) or not self.plateau_factor < 1.0:
            raise ParameterError(f"plateau_factor must be in (0, 1), got {self.plateau_factor}")
        check_loss(self.loss)
        _check_fraction("validation_fraction", self.validation_fraction, closed_high=False)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ParameterError(f"seed must be a non-negative integer, got {self.seed!r}")

    def lr_factor(
        self, global_step: int, elapsed_seconds: float, *, plateau_scale: float = 1.0
    ) -> float:
        """The learning rate relative to ``learning_rate`` after ``global_step`` steps and
        ``elapsed_seconds`` of the run (``plateau_scale``: the reductions on plateaus so far)."""
        if self.lr_schedule == "constant":
            return 1.0
        if self.lr_schedule == "plateau":
            return plateau_scale
        progress = global_step / self.total_steps
        if self.max_minutes is not None and self.max_steps is None:
            progress = max(progress, elapsed_seconds / (60.0 * self.max_minutes))
        progress = min(progress, 1.0)
        low = self.min_lr_fraction
        return low + (1.0 - low) * 0.5 * (1.0 + math.cos(math.pi * progress))

    @property
    def total_steps(self) -> int:
        """The planned optimiser steps: ``max_steps``, or ``epochs * steps_per_epoch``."""
        if self.max_steps is not None:
            return self.max_steps
        return self.epochs * self.steps_per_epoch

    @property
    def total_epochs(self) -> int:
        """The planned epochs: ``ceil(max_steps / steps_per_epoch)``, or ``epochs``."""
        if self.max_steps is not None:
            return -(-self.max_steps // self.steps_per_epoch)
        return self.epochs

    @property
    def budget(self) -> str:
        """What ends a run that nothing stops first: ``"steps"`` or ``"epochs"``."""
        return "epochs" if self.max_steps is None else "steps"

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
