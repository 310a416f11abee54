"""Step budgets, what a run records about itself, and its warnings."""

from __future__ import annotations

import logging
import math

import pytest
import torch

from cryoden.errors import ParameterError
from cryoden.models import load_model
from cryoden.training import TrainConfig, train
from cryoden.training.splits import training_data

from .helpers import FAST, FAST_NET, Interrupt


def _weights(path) -> dict[str, torch.Tensor]:
    return load_model(path).network.state_dict()


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_max_steps_takes_exactly_that_many_steps(pairs, tmp_path):
    seen: list[tuple[int, int]] = []
    config = TrainConfig(max_steps=10, epochs=1, **FAST)  # epochs does not count
    result = train(
        "n2n", FAST_NET, pairs, None, config, out=tmp_path / "m", device="cpu",
        progress=lambda done, total: seen.append((done, total)),
    )  # fmt: skip
    assert result.steps == 10 and result.stopped == "steps"
    assert result.epochs == math.ceil(10 / 4) == len(result.history)
    assert [r.steps for r in result.history] == [4, 4, 2]  # the last epoch is partial
    assert seen == [(i, 10) for i in range(1, 11)]  # the progress bar's real total
    assert config.total_steps == 10 and config.total_epochs == 3


def test_the_model_file_records_the_run(pairs, tmp_path):
    result = train(
        "n2n", FAST_NET, pairs, None, TrainConfig(max_steps=6, **FAST), out=tmp_path / "m",
        device="cpu",
    )  # fmt: skip
    record = load_model(tmp_path / "m").config.training
    assert (record["steps"], record["planned_steps"], record["epochs"]) == (6, 6, 2)
    assert record["stopped"] == "steps" and record["threads"] == 1
    assert record["wall_seconds"] > 0 and result.wall_seconds == record["wall_seconds"]
    assert record["best_validation_loss"] == result.best_validation_loss
    assert record["baseline_validation_loss"] > 0
    assert record["guard"]["patches"] == "validation"
    assert record["validation"] == "1 held-out image(s)"
    assert record["train_config"]["max_steps"] == 6


def test_cosine_schedule_decays_over_the_step_budget(pairs, tmp_path):
    config = TrainConfig(max_steps=9, min_lr_fraction=0.1, **FAST)
    result = train("n2n", FAST_NET, pairs, None, config, out=tmp_path / "m", device="cpu")
    # the rate of the last step (step 8 of 9) is near the floor, not mid-way as over 100 epochs
    last = result.history[-1].learning_rate / config.learning_rate
    assert last == pytest.approx(config.lr_factor(8, 0.0))
    assert last < 0.15


def test_a_step_budget_is_deterministic_and_resumable(pairs, tmp_path):
    config = TrainConfig(max_steps=10, **FAST)
    whole = train("n2n", FAST_NET, pairs, None, config, out=tmp_path / "whole", device="cpu")
    torch.manual_seed(99)  # the caller's random state plays no part
    train("n2n", FAST_NET, pairs, None, config, out=tmp_path / "again", device="cpu")
    assert _same(_weights(tmp_path / "whole"), _weights(tmp_path / "again"))

    def interrupt(done: int, total: int) -> None:
        if done > 5:  # in epoch 2: the checkpoint of epoch 1 remains
            raise Interrupt

    with pytest.raises(Interrupt):
        train("n2n", FAST_NET, pairs, None, config, out=tmp_path / "cut", progress=interrupt)
    resumed = train("n2n", FAST_NET, pairs, None, config, out=tmp_path / "cut", resume=True)
    assert resumed.steps == 10 and resumed.stopped == "steps"
    assert resumed.train_losses == whole.train_losses
    assert _same(_weights(tmp_path / "whole"), _weights(tmp_path / "cut"))


def test_max_steps_must_be_a_positive_integer():
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ParameterError, match="max_steps"):
            TrainConfig(max_steps=bad)
    assert TrainConfig(max_steps=5).budget == "steps" and TrainConfig().budget == "epochs"


def test_a_time_cap_far_short_of_the_plan_warns(pairs, tmp_path, caplog):
    config = TrainConfig(max_steps=100_000, max_minutes=0.005, **FAST)
    with caplog.at_level(logging.WARNING, logger="cryoden.training"):
        result = train("n2n", FAST_NET, pairs, None, config, out=tmp_path / "m", device="cpu")
    assert result.stopped == "max_minutes" and result.steps < 100_000
    shortfall = [w for w in result.warnings if "time cap" in w]
    assert len(shortfall) == 1
    assert f"after {result.steps} of 100000 planned steps" in shortfall[0]
    assert "max_minutes" in shortfall[0] and "max_steps" in shortfall[0]
    assert "1 torch thread on" in shortfall[0]
    assert shortfall[0] in caplog.messages
    assert load_model(tmp_path / "m").config.training["warnings"] == result.warnings


def test_a_run_that_never_improves_on_its_first_epoch_warns(pairs, tmp_path):
    config = TrainConfig(
        epochs=3, learning_rate=1e-12, lr_schedule="constant", **{**FAST, "seed": 3}
    )
    result = train("n2n", FAST_NET, pairs, None, config, out=tmp_path / "m", device="cpu")
    assert result.best_epoch == 1  # a vanishing rate leaves the weights where they were
    assert any("never improved on the first epoch" in w for w in result.warnings)
    fine = train(
        "n2n", FAST_NET, pairs, None, TrainConfig(max_steps=12, learning_rate=3e-3, **FAST),
        out=tmp_path / "f", device="cpu",
    )  # fmt: skip
    assert fine.best_epoch > 1
    assert not any("never improved" in w for w in fine.warnings)


def test_the_log_and_the_record_say_which_validation(pairs, caplog):
    with caplog.at_level(logging.INFO, logger="cryoden.training"):
        split = training_data(pairs, None, validation_fraction=0.25, seed=0)
        given = training_data(pairs.subset([0, 1]), pairs.subset([2]), validation_fraction=0.1,
                              seed=0)  # fmt: skip
        none = training_data(pairs, None, validation_fraction=0.0, seed=0)
    assert split.summary["validation"] == "2 held-out image(s)"
    assert given.summary["validation"] == "1 given image(s)"
    assert none.summary["validation"] == "none"
    assert "validation: 2 held-out image(s)" in caplog.messages
    assert "validation: 1 given image(s)" in caplog.messages
    assert any(m.startswith("validation: none") for m in caplog.messages)
