"""The degenerate-solution guard: inverted and constant models are caught, learning ones pass."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from cryoden.errors import CryodenError, DegenerateModelError
from cryoden.models import load_model
from cryoden.nets import NetworkConfig
from cryoden.nets.blocks import scale_output
from cryoden.training import Noise2Noise, PairDataset, SingleDataset, TrainConfig, train
from cryoden.training.data import sample_patches
from cryoden.training.guard import (
    MIN_JUDGED_STEPS,
    PatchMean,
    check_model,
    degenerate_path,
    gaussian_lowpass,
    verdict,
)
from cryoden.training.losses import regression_loss
from cryoden.training.neighbor2neighbor import Neighbor2Neighbor

from .helpers import blob_images, noisy_pairs

NET = NetworkConfig(depth=2, base_channels=4)
FAST = {"patch": 24, "batch_size": 4, "steps_per_epoch": 20, "validation_patches": 8,
        "threads": 1, "seed": 7}  # fmt: skip


class Inverting(Noise2Noise):
    """A broken scheme: it trains the network to put out the negative of the other image."""

    def loss(self, network, batch, *, generator):
        return regression_loss(network(batch[:, 0:1]), -batch[:, 1:2])


class Constant(Noise2Noise):
    """A broken scheme: it trains the network towards a constant image."""

    def loss(self, network, batch, *, generator):
        return regression_loss(network(batch[:, 0:1]), torch.full_like(batch[:, 1:2], 2.0))


class ConstantNetwork(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full_like(x, 0.7)


@pytest.fixture(scope="module")
def pairs() -> PairDataset:
    return PairDataset(noisy_pairs(blob_images(8, 32), snr=0.5))


@pytest.fixture(scope="module")
def trained(pairs, tmp_path_factory) -> tuple[nn.Module, torch.Tensor]:
    """A network trained for 80 steps of Noise2Noise, and fixed held-out patches."""
    out = tmp_path_factory.mktemp("guard") / "m"
    result = train("n2n", NET, pairs.subset(range(7)), [], TrainConfig(max_steps=80, **FAST),
                   out=out, device="cpu")  # fmt: skip
    patches = sample_patches(pairs.images[7:], patch=24, batch=16, generator=torch.Generator())
    return result.network, patches


def test_lowpass_keeps_a_constant_and_smooths_noise():
    flat = torch.full((1, 1, 16, 16), 3.0)
    assert torch.allclose(gaussian_lowpass(flat), flat)
    noise = torch.randn(2, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    assert float(gaussian_lowpass(noise).var()) < 0.1 * float(noise.var())


def test_a_learning_model_passes(trained):
    network, patches = trained
    report = check_model(Noise2Noise(), network, patches)
    assert report.degenerate is None
    assert report.validation_loss < report.baseline_loss
    assert report.lowpass_correlation > 0.5


def test_an_inverted_model_is_degenerate(trained):
    network, patches = trained
    inverted = copy.deepcopy(network)
    scale_output(inverted, -1.0, 0.0)
    report = check_model(Noise2Noise(), inverted, patches)
    assert report.lowpass_correlation < 0 and report.degenerate is not None
    # caught by the correlation alone, whatever the loss says
    assert "anti-correlated" in verdict(0.5, 1.0, report.lowpass_correlation)


def test_a_constant_model_is_degenerate(trained):
    _, patches = trained
    report = check_model(Noise2Noise(), ConstantNetwork(), patches)
    assert report.validation_loss > report.baseline_loss
    assert "worse than predicting each patch's mean" in report.degenerate
    assert "does not follow its input" in verdict(0.5, 1.0, 0.0)
    # the mean predictor itself matches the baseline: no better, but not worse either
    mean = check_model(Noise2Noise(), PatchMean(), patches)
    assert mean.validation_loss == pytest.approx(mean.baseline_loss)


def test_train_refuses_to_save_a_degenerate_model(pairs, tmp_path):
    out = tmp_path / "m"
    config = TrainConfig(max_steps=MIN_JUDGED_STEPS, **FAST)
    with pytest.raises(DegenerateModelError) as caught:
        train(Inverting(), NET, pairs, None, config, out=out, device="cpu")
    message = str(caught.value)
    assert isinstance(caught.value, CryodenError) and "\n" not in message
    assert "anti-correlated" in message or "worse than predicting" in message
    assert "more steps, a lower learning rate, another seed, or Noise2Noise pairs" in message
    assert not (out / "weights.safetensors").exists() and not (out / "config.json").exists()
    kept = degenerate_path(out)
    assert kept == tmp_path / "m.degenerate" and caught.value.kept == str(kept)
    assert load_model(kept).config.training["guard"]["degenerate"] is not None


def test_a_single_file_degenerate_model_is_kept_beside(pairs, tmp_path, monkeypatch):
    monkeypatch.setattr("cryoden.training.run.MIN_JUDGED_STEPS", 20)
    out = tmp_path / "m.safetensors"
    with pytest.raises(DegenerateModelError, match="worse than predicting"):
        train(Constant(), NET, pairs, None, TrainConfig(max_steps=40, **FAST), out=out)
    assert not out.exists()
    assert degenerate_path(out) == tmp_path / "m.degenerate.safetensors"
    assert degenerate_path(out).is_file()


def test_a_run_too_short_to_judge_warns_and_keeps_the_model(pairs, tmp_path):
    out = tmp_path / "m"
    result = train(Inverting(), NET, pairs, None, TrainConfig(max_steps=20, **FAST), out=out)
    assert result.degenerate is not None
    assert any("not a denoiser yet" in w for w in result.warnings)
    assert (out / "weights.safetensors").is_file()


def test_a_negative_output_calibration_is_not_applied(tmp_path):
    class Flipping(Neighbor2Neighbor):
        def output_calibration(self, network, patches):
            return -0.5, 0.0

    rng = np.random.default_rng(0)
    images = SingleDataset([c + rng.normal(0, 0.3, c.shape) for c in blob_images(4, 32)])
    config = TrainConfig(max_steps=4, **{**FAST, "steps_per_epoch": 2})
    result = train(Flipping(), NET, images, None, config, out=tmp_path / "m", device="cpu")
    assert any("not positive: not applied" in w for w in result.warnings)
    assert "output_calibration" not in result.model_config.training
