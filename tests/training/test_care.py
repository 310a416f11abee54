"""CARE: supervised training on (noisy, clean) pairs, in the noisy image's intensity scale."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cryoden.errors import ParameterError
from cryoden.models import load_model
from cryoden.nets import NetworkConfig
from cryoden.training import SCHEMES, PairDataset, TrainConfig, default_network, make_scheme, train
from cryoden.training.care import CARE

from .helpers import blob_images, gen, tiny_network


@pytest.fixture(scope="module")
def data() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """16 clean blob images and noisy versions (variance SNR 0.5)."""
    clean = blob_images(16, 48, seed=5)
    rng = np.random.default_rng(6)
    sigma = float(np.sqrt(np.var(np.stack(clean)) / 0.5))
    noisy = [(c + rng.normal(0, sigma, c.shape)).astype(np.float32) for c in clean]
    return noisy, clean


def test_care_is_a_registered_pair_scheme():
    scheme = make_scheme("care", loss="l1")
    assert SCHEMES["care"] is CARE and scheme.channels == 2 and scheme.loss_kind == "l1"
    assert default_network("care") == default_network("n2n")


def test_care_loss_maps_the_noisy_channel_to_the_clean_one():
    network = tiny_network()
    batch = torch.randn(2, 2, 16, 16, generator=gen(0))
    with torch.no_grad():
        expected = torch.mean((network(batch[:, :1]) - batch[:, 1:]) ** 2)
        assert torch.allclose(CARE().loss(network, batch, generator=gen(1)), expected)
        assert torch.allclose(CARE().validation_loss(network, batch), expected)


def test_pairs_fitted_on_the_input_alone(data):
    noisy, clean = data
    both, on_a = (
        PairDataset([(noisy[0], clean[0])]),
        PairDataset([(noisy[0], clean[0])], fit_on="a"),
    )
    norm = on_a.normalization.fit(noisy[0])
    assert np.allclose(on_a.images[0][0], norm.apply(noisy[0]))
    assert np.allclose(on_a.images[0][1], norm.apply(clean[0]))
    assert not np.allclose(both.images[0][1], on_a.images[0][1])
    assert on_a.subset([0]).fit_on == "a" and both.fit_on == "both"
    with pytest.raises(ParameterError, match="fit_on"):
        PairDataset([(noisy[0], clean[0])], fit_on="b")


def test_care_refuses_pairs_normalised_as_noise2noise_pairs(data, tmp_path):
    noisy, clean = data
    with pytest.raises(ParameterError, match="fit_on='a'"):
        train("care", NetworkConfig(depth=2, base_channels=4), PairDataset(list(zip(noisy, clean))),
              None, TrainConfig(max_steps=1, patch=32), out=tmp_path / "m")  # fmt: skip


def _denoise(path, noisy: list[np.ndarray]) -> list[np.ndarray]:
    """Apply a model as the denoiser does: normalise each image alone, map the output back."""
    model = load_model(path)
    outputs = []
    for image in noisy:
        norm = model.config.normalization.fit(image)
        with torch.no_grad():
            out = model.network(torch.from_numpy(norm.apply(image))[None, None])[0, 0].numpy()
        outputs.append(norm.invert(out))
    return outputs


def test_care_output_is_in_the_input_scale(data, tmp_path):
    """On held-out images the CARE model's output is an unbiased estimate of the clean image:
    regressing the clean pixels on the output gives a slope near 1 and the means agree. The
    same pairs trained as Noise2Noise (normalised as two noisy images, directions swapped) come
    out further from the clean images."""
    noisy, clean = data
    pairs = list(zip(noisy[:12], clean[:12]))
    net = NetworkConfig(depth=2, base_channels=8)
    config = TrainConfig(
        max_steps=150, patch=32, batch_size=8, steps_per_epoch=25, learning_rate=3e-3,
        validation_patches=16, threads=1, seed=0,
    )  # fmt: skip
    train("care", net, PairDataset(pairs, fit_on="a"), None, config, out=tmp_path / "care")
    train("n2n", net, PairDataset(pairs), None, config, out=tmp_path / "n2n")
    target = np.concatenate([c.ravel() for c in clean[12:]])
    care = np.concatenate([o.ravel() for o in _denoise(tmp_path / "care", noisy[12:])])
    n2n = np.concatenate([o.ravel() for o in _denoise(tmp_path / "n2n", noisy[12:])])
    slope = np.polyfit(care, target, 1)[0]
    assert abs(slope - 1.0) < 0.1
    assert abs(care.mean() - target.mean()) < 0.05 * target.std()
    assert np.mean((care - target) ** 2) < np.mean((n2n - target) ** 2)
    record = load_model(tmp_path / "care").config
    assert record.scheme == "care" and record.training["pair_normalization_fitted_on"] == "a"
