"""A training whose loss explodes goes back to its best weights at half the learning rate, and
gives up with a clear error when it keeps exploding."""

from __future__ import annotations

import math

import pytest
import torch

from cryoden.errors import ParameterError
from cryoden.models import load_model
from cryoden.training.loop import TrainConfig, train
from cryoden.training.noise2noise import Noise2Noise
from cryoden.training.run import MAX_DIVERGENCE_RESTARTS

from .helpers import FAST, FAST_NET


class _Exploding(Noise2Noise):
    """Noise2Noise whose loss is multiplied by ``factor`` on the calls listed in ``calls``
    (counted from 1), as when the weights blow up."""

    def __init__(self, calls: set[int] | None = None, *, from_call: int | None = None) -> None:
        super().__init__()
        self.calls, self.from_call, self.count = calls or set(), from_call, 0

    def loss(self, network, batch, *, generator):
        self.count += 1
        loss = super().loss(network, batch, generator=generator)
        explodes = self.count in self.calls or (
            self.from_call is not None and self.count >= self.from_call
        )
        return loss * 1e6 if explodes else loss


def _config(**changes) -> TrainConfig:
    return TrainConfig(**{**FAST, "max_steps": 24, "lr_schedule": "constant", **changes})


def test_an_exploded_step_restarts_from_the_best_weights_at_half_the_rate(pairs, tmp_path):
    config = _config()
    result = train(
        _Exploding({14}), FAST_NET, pairs, None, config, out=tmp_path / "m", device="cpu"
    )
    assert result.steps == 24  # the exploded step is not counted: the budget is kept
    assert any("diverged at epoch 4" in w for w in result.warnings)
    rates = [r.learning_rate for r in result.history]
    assert rates[:3] == [pytest.approx(config.learning_rate)] * 3
    assert rates[3:] == [pytest.approx(config.learning_rate / 2)] * (len(rates) - 3)
    assert result.history[3].steps == FAST["steps_per_epoch"] - 1  # one step spent exploding
    assert all(math.isfinite(loss) for loss in result.train_losses)
    loaded = load_model(tmp_path / "m")
    assert all(torch.isfinite(t).all() for t in loaded.network.state_dict().values())


def test_a_run_without_explosion_is_unchanged_by_the_check(pairs, tmp_path):
    plain = train("n2n", FAST_NET, pairs, None, _config(), out=tmp_path / "a", device="cpu")
    watched = train(
        _Exploding(), FAST_NET, pairs, None, _config(), out=tmp_path / "b", device="cpu"
    )
    assert plain.train_losses == watched.train_losses
    assert not any("diverged" in w for w in watched.warnings)


def test_a_run_that_keeps_exploding_ends_in_one_clear_error(pairs, tmp_path):
    with pytest.raises(
        ParameterError, match=f"diverged .* after {MAX_DIVERGENCE_RESTARTS} restarts"
    ):
        train(_Exploding(from_call=14), FAST_NET, pairs, None, _config(), out=tmp_path / "m",
              device="cpu")  # fmt: skip
