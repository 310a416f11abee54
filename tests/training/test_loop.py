"""The generic training loop: resume, determinism, stopping rules, and that it denoises."""

from __future__ import annotations

import json
import logging
import stat

import numpy as np
import pytest
import torch

from cryoden.errors import ParameterError
from cryoden.models import load_model
from cryoden.nets import NetworkConfig
from cryoden.nets.registry import build_network
from cryoden.training.data import PairDataset, SingleDataset
from cryoden.training.loop import TrainConfig, default_checkpoint_dir, train

from .helpers import FAST, FAST_NET, Interrupt, blob_images, noisy_pairs, umask


def _interrupt_after(steps: int):
    def progress(done: int, total: int) -> None:
        if done > steps:
            raise Interrupt

    return progress


def _weights(path) -> dict[str, torch.Tensor]:
    return load_model(path).network.state_dict()


def test_resumed_run_repeats_the_uninterrupted_run(pairs, tmp_path):
    config = TrainConfig(epochs=3, **FAST)
    whole = train("n2n", FAST_NET, pairs, None, config, out=tmp_path / "whole", device="cpu")
    with pytest.raises(Interrupt):  # dies during epoch 2: the checkpoint of epoch 1 remains
        train(
            "n2n", FAST_NET, pairs, None, config, out=tmp_path / "cut", device="cpu",
            progress=_interrupt_after(FAST["steps_per_epoch"] + 1),
        )  # fmt: skip
    record = json.loads((tmp_path / "cut" / "checkpoint" / "checkpoint.json").read_text())
    assert record["state"]["epoch"] == 1
    resumed = train(
        "n2n", FAST_NET, pairs, None, config, out=tmp_path / "cut", device="cpu", resume=True
    )
    assert [r.epoch for r in resumed.history] == [1, 2, 3]
    assert resumed.train_losses == whole.train_losses
    assert resumed.validation_losses == whole.validation_losses
    a, b = _weights(tmp_path / "whole"), _weights(tmp_path / "cut")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_with_more_epochs_continues_the_run(pairs, tmp_path):
    config = TrainConfig(epochs=2, lr_schedule="constant", **FAST)
    whole = train("n2n", FAST_NET, pairs, None, config, out=tmp_path / "w.safetensors", device="cpu")
    first = dataclass_replace(config, epochs=1)
    out = tmp_path / "r.safetensors"
    train("n2n", FAST_NET, pairs, None, first, out=out, device="cpu")
    assert default_checkpoint_dir(out) == tmp_path / "r.checkpoint"
    resumed = train("n2n", FAST_NET, pairs, None, config, out=out, device="cpu", resume=True)
    assert resumed.train_losses == whole.train_losses
    assert resumed.validation_losses == whole.validation_losses


def dataclass_replace(config: TrainConfig, **changes) -> TrainConfig:
    return TrainConfig.from_dict({**config.to_dict(), **changes})


def test_same_seed_same_run_and_logs(pairs, tmp_path, caplog):
    config = TrainConfig(epochs=2, **FAST)
    with caplog.at_level(logging.INFO, logger="cryoden.training"):
        first = train("n2n", FAST_NET, pairs, None, config, out=tmp_path / "a", device="cpu")
    assert sum(m.startswith("epoch ") and "validation loss" in m for m in caplog.messages) == 2
    torch.manual_seed(12345)  # the caller's global random state plays no part
    second = train("n2n", FAST_NET, pairs, None, config, out=tmp_path / "b", device="cpu")
    assert first.train_losses == second.train_losses
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)
    other = train(
        "n2n", FAST_NET, pairs, None, dataclass_replace(config, seed=8), out=tmp_path / "c",
        device="cpu",
    )  # fmt: skip
    assert other.train_losses != first.train_losses


def test_train_leaves_the_global_torch_state_as_it_found_it(pairs, tmp_path):
    """The run's seeding, thread count and deterministic mode do not leak to the caller."""
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        torch.manual_seed(2024)
        before = torch.get_rng_state()
        config = TrainConfig(epochs=1, **FAST)  # threads=1 during the run
        train("n2n", FAST_NET, pairs, None, config, out=tmp_path / "m", device="cpu")
        assert torch.equal(torch.get_rng_state(), before)
        assert torch.get_num_threads() == 2
        assert not torch.are_deterministic_algorithms_enabled()
    finally:
        torch.set_num_threads(previous_threads)


def test_model_file_and_checkpoint_get_the_umask_permissions(pairs, tmp_path):
    """Outputs are written 0o666 less the umask (here 0o644), not a temporary file's 0o600."""
    with umask(0o022):
        train("n2n", FAST_NET, pairs, None, TrainConfig(epochs=1, **FAST), out=tmp_path / "m")
    files = [*(tmp_path / "m").glob("*.*"), *(tmp_path / "m" / "checkpoint").iterdir()]
    names = sorted(f.name for f in files)
    assert names == ["checkpoint-0001.safetensors", "checkpoint.json", "config.json",
                     "weights.safetensors"]  # fmt: skip
    for file in files:
        assert stat.S_IMODE(file.stat().st_mode) == 0o644, file


def test_model_file_holds_the_best_weights_and_a_summary(pairs, tmp_path):
    config = TrainConfig(epochs=3, **FAST)
    result = train(
        "n2n", FAST_NET, pairs, None, config, out=tmp_path / "m", device="cpu",
        data_summary={"a": "/data/a", "b": "/data/b"},
    )  # fmt: skip
    losses = result.validation_losses
    assert result.best_epoch == 1 + int(np.argmin(losses))
    assert result.best_validation_loss == min(losses)
    loaded = load_model(tmp_path / "m")
    saved = loaded.network.state_dict()
    assert all(torch.equal(saved[k], v) for k, v in result.network.state_dict().items())
    summary = loaded.config.training
    assert summary["n_train_images"] == 7 and summary["n_validation_images"] == 1
    assert summary["shapes"] == [[32, 32]]
    assert summary["epochs"] == 3 and summary["stopped"] == "epochs"
    assert summary["data"] == {"a": "/data/a", "b": "/data/b"}
    assert summary["final_validation_loss"] == losses[-1]
    assert loaded.config.scheme == "n2n"
    assert loaded.config.normalization == pairs.normalization


def test_early_stopping(pairs, tmp_path):
    # a learning rate of ~0 never improves after the first epoch
    config = TrainConfig(
        epochs=20, learning_rate=1e-12, lr_schedule="constant", early_stopping_patience=2, **FAST
    )
    result = train("n2n", FAST_NET, pairs, None, config, out=tmp_path / "m", device="cpu")
    assert result.stopped == "early_stopping"
    assert len(result.history) < 20
    assert (tmp_path / "m" / "weights.safetensors").is_file()


def test_time_limit_ends_gracefully_with_a_model(pairs, tmp_path):
    config = TrainConfig(epochs=1000, max_minutes=0.02, **FAST)
    result = train("n2n", FAST_NET, pairs, None, config, out=tmp_path / "m", device="cpu")
    assert result.stopped == "max_minutes"
    assert 1 <= len(result.history) < 1000
    assert load_model(tmp_path / "m").config.training["stopped"] == "max_minutes"


def test_explicit_validation_and_none(pairs, tmp_path):
    config = TrainConfig(epochs=1, **FAST)
    result = train("n2n", FAST_NET, pairs.subset(range(6)), pairs.subset([6, 7]), config,
                   out=tmp_path / "a", device="cpu")  # fmt: skip
    assert load_model(tmp_path / "a").config.training["n_validation_images"] == 2
    assert result.validation_losses[0] is not None
    without = train("n2n", FAST_NET, pairs, [], config, out=tmp_path / "b", device="cpu")
    assert without.validation_losses == [None]
    assert without.best_validation_loss == without.train_losses[0]


def test_scheme_and_data_must_match(tmp_path):
    singles = SingleDataset(blob_images(3, 32))
    with pytest.raises(ParameterError, match="2-channel"):
        train("n2n", FAST_NET, singles, None, TrainConfig(epochs=1, **FAST), out=tmp_path / "m")
    with pytest.raises(ParameterError, match="patch size"):
        pairs = PairDataset(noisy_pairs(blob_images(3, 16), snr=1.0))
        train("n2n", FAST_NET, pairs, None, TrainConfig(epochs=1, **FAST), out=tmp_path / "m")


def test_train_config_validation():
    with pytest.raises(ParameterError, match="lr_schedule"):
        TrainConfig(lr_schedule="step")
    with pytest.raises(ParameterError, match="loss"):
        TrainConfig(loss="huber")
    with pytest.raises(ParameterError, match="epochs"):
        TrainConfig(epochs=0)
    with pytest.raises(ParameterError, match="unknown"):
        TrainConfig.from_dict({"epochs": 2, "momentum": 0.9})
    assert TrainConfig.from_dict(TrainConfig().to_dict()) == TrainConfig()


def test_training_lowers_the_error(tmp_path):
    """A few seconds of Noise2Noise on tiny pairs: the output is closer to the clean images."""
    clean = blob_images(20, 48, seed=11)
    pairs = noisy_pairs(clean, snr=0.3, seed=12)
    train_set = PairDataset(pairs[:16])
    config = TrainConfig(
        epochs=4, patch=32, batch_size=8, steps_per_epoch=20, learning_rate=3e-3,
        validation_patches=16, threads=1, seed=0,
    )  # fmt: skip
    net = NetworkConfig(depth=2, base_channels=8)
    result = train("n2n", net, train_set, None, config, out=tmp_path / "m", device="cpu")
    assert result.validation_losses[-1] < result.validation_losses[0]
    model = load_model(tmp_path / "m")
    spec = model.config.normalization
    noisy_err, denoised_err = [], []
    for (a, _), c in zip(pairs[16:], clean[16:]):
        norm = spec.fit(a)
        with torch.no_grad():
            out = model.network(torch.from_numpy(norm.apply(a))[None, None])[0, 0].numpy()
        denoised_err.append(np.mean((norm.invert(out) - c) ** 2))
        noisy_err.append(np.mean((a - c) ** 2))
    assert np.mean(denoised_err) < 0.5 * np.mean(noisy_err)


def test_initial_weights_start_the_run_from_a_model(pairs, tmp_path):
    """Fine-tuning: with a vanishing learning rate the run ends where its initial weights were."""
    first = train("n2n", FAST_NET, pairs, None, TrainConfig(epochs=2, **FAST), out=tmp_path / "a")
    start = _weights(tmp_path / "a")
    config = TrainConfig(epochs=1, **{**FAST, "seed": 99}, learning_rate=1e-12)
    tuned = train(
        "n2n", FAST_NET, pairs, None, config, out=tmp_path / "b", device="cpu", initial_weights=start
    )
    end = tuned.network.state_dict()
    assert all(torch.allclose(end[k], start[k], atol=1e-6) for k in start)
    # from random weights the same run starts far higher than where the first run ended
    fresh = train("n2n", FAST_NET, pairs, None, config, out=tmp_path / "c", device="cpu")
    assert tuned.train_losses[0] < fresh.train_losses[0]
    assert tuned.train_losses[0] == pytest.approx(first.train_losses[-1], rel=0.5)


def test_initial_weights_must_fit_the_network(pairs, tmp_path):
    start = build_network(NetworkConfig(depth=3, base_channels=4)).state_dict()
    with pytest.raises(ParameterError, match="do not fit the unet network"):
        train(
            "n2n", FAST_NET, pairs, None, TrainConfig(epochs=1, **FAST), out=tmp_path / "m",
            initial_weights=start,
        )  # fmt: skip


def test_fine_tuning_never_ends_worse_than_its_start(pairs, tmp_path):
    """The initial weights are the epoch-0 candidate: a run that only makes things worse (a
    far too large learning rate) gives back the initial weights."""
    train("n2n", FAST_NET, pairs, None, TrainConfig(epochs=3, **FAST), out=tmp_path / "a")
    start = _weights(tmp_path / "a")
    config = TrainConfig(epochs=2, **{**FAST, "seed": 5}, learning_rate=0.5)
    result = train(
        "n2n", FAST_NET, pairs, None, config, out=tmp_path / "b", device="cpu", initial_weights=start
    )
    assert result.best_epoch == 0
    end = _weights(tmp_path / "b")
    assert all(torch.equal(end[k], start[k]) for k in start)
