"""Warnings about how a training run went: far short of its plan, or never better than its
first epoch. Each function returns the warning's one-line text, or ``None``; the loop logs it
and lists it in :attr:`cryoden.training.TrainResult.warnings`.

Messages name parameters (``max_minutes``, ``max_steps``, ``learning_rate``), as library
messages do.
"""

from __future__ import annotations

import os

from cryoden.training.checkpoint import EpochRecord, RunState
from cryoden.training.config import TrainConfig

#: A run stopped by the time cap before this fraction of its planned steps is far short.
SHORTFALL_FRACTION = 0.5


def cpu_facts(threads: int) -> str:
    """``"4 torch threads on 8 CPUs (load average 6.1)"``: what the run had to work with (the
    load average where the system reports one)."""
    text = f"{threads} torch thread{'s' if threads != 1 else ''} on {os.cpu_count() or '?'} CPUs"
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # not on every platform
        return text
    return f"{text} (load average {load:.1f})"


def shortfall_warning(
    *,
    stopped: str,
    steps: int,
    planned_steps: int,
    epochs: int,
    planned_epochs: int,
    max_minutes: float | None,
    threads: int,
) -> str | None:
    """The warning for a run the time cap stopped before ``SHORTFALL_FRACTION`` of its
    planned steps, or ``None``."""
    if stopped != "max_minutes" or steps >= SHORTFALL_FRACTION * planned_steps:
        return None
    return (
        f"training stopped at the time cap (max_minutes={max_minutes:g}) after {steps} of "
        f"{planned_steps} planned steps ({epochs} of {planned_epochs} epochs) with "
        f"{cpu_facts(threads)}: the model is undertrained; raise max_minutes or budget the run "
        "in steps (max_steps), and free the CPU of other work"
    )


def no_improvement_warning(history: list[EpochRecord], best_epoch: int) -> str | None:
    """The warning for a run whose validation loss never improved on its first epoch's (or, in
    fine-tuning, on the initial weights'), or ``None``. Needs two epochs and a validation
    loss."""
    if len(history) < 2 or history[0].validation_loss is None or best_epoch > 1:
        return None
    if best_epoch == 0:
        return (
            f"the validation loss never improved on the initial weights' in {len(history)} "
            "epochs: the initial model is kept; try a lower learning_rate"
        )
    return (
        f"the validation loss never improved on the first epoch's "
        f"({history[0].validation_loss:.6g}) in {len(history)} epochs: try a lower "
        "learning_rate, another seed or more training data"
    )


def run_warnings(
    state: RunState, config: TrainConfig, *, threads: int, validated: bool
) -> list[str]:
    """The warnings about a finished run (``validated``: it had validation patches)."""
    shortfall = shortfall_warning(
        stopped=state.stopped or "max_minutes", steps=state.global_step,
        planned_steps=config.total_steps, epochs=state.epoch,
        planned_epochs=config.total_epochs, max_minutes=config.max_minutes, threads=threads,
    )  # fmt: skip
    stalled = no_improvement_warning(state.history, state.best_epoch) if validated else None
    return [m for m in (shortfall, stalled) if m is not None]
