"""Neighbor2Neighbor: neighbour sub-sampling, the regulariser, training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cryoden.errors import ParameterError
from cryoden.inference.denoise import Denoiser
from cryoden.metrics.high_frequency import high_frequency_power_ratio
from cryoden.models import load_model
from cryoden.nets.config import NetworkConfig
from cryoden.nets.polyphase import cell_mean_polyphase, merge_polyphase, split_polyphase
from cryoden.training import TrainConfig, train
from cryoden.training.data import SingleDataset
from cryoden.training.neighbor2neighbor import (
    INPUT_IMAGES,
    NEIGHBOUR_PAIRS,
    Neighbor2Neighbor,
    cell_mean_subsample,
    draw_neighbour_pairs,
    fit_output_affine,
    neighbour_subsample,
    subsample,
)
from cryoden.training.schemes import SCHEMES, Scheme, make_scheme

from .helpers import TINY, gen, tiny_network, train_tiny

pytestmark = pytest.mark.usefixtures("one_thread")


# --- sub-sampling ------------------------------------------------------------------------


@pytest.mark.parametrize(("height", "width"), [(32, 32), (33, 31), (2, 6)])
def test_subsamples_are_half_size(height, width):
    g1, g2 = neighbour_subsample(torch.randn(3, 1, height, width), generator=gen())
    assert g1.shape == g2.shape == (3, 1, height // 2, width // 2)


def test_g1_and_g2_take_different_adjacent_pixels_of_each_cell():
    height, width = 12, 10
    # Unique values tell which pixel each sub-sample took.
    images = torch.arange(2 * height * width, dtype=torch.float32).reshape(2, 1, height, width)
    g1, g2 = neighbour_subsample(images, generator=gen(1))
    for b in range(2):
        for i in range(height // 2):
            for j in range(width // 2):
                y1, x1 = divmod(int(g1[b, 0, i, j]) - b * height * width, width)
                y2, x2 = divmod(int(g2[b, 0, i, j]) - b * height * width, width)
                assert (y1 // 2, x1 // 2) == (y2 // 2, x2 // 2) == (i, j)  # same cell
                assert abs(y1 - y2) + abs(x1 - x2) == 1  # different, edge neighbours


def test_all_eight_neighbour_pairs_are_drawn_about_equally():
    k1, k2 = draw_neighbour_pairs((16, 1, 32, 32), generator=gen(2))
    counts = torch.bincount((k1 * 4 + k2).flatten(), minlength=16)
    drawn = {(a, b) for a in range(4) for b in range(4) if counts[a * 4 + b] > 0}
    assert drawn == set(NEIGHBOUR_PAIRS)
    expected = k1.numel() / 8
    used = counts[counts > 0].float()
    assert ((used - expected).abs() < 6 * expected**0.5).all()


def test_subsampling_is_reproducible_and_shared_by_channels():
    images = torch.randn(2, 3, 16, 16)
    k1, k2 = draw_neighbour_pairs(tuple(images.shape), generator=gen(3))
    again = draw_neighbour_pairs(tuple(images.shape), generator=gen(3))
    assert torch.equal(k1, again[0]) and torch.equal(k2, again[1])
    g1 = subsample(images, k1)
    for c in range(3):
        assert torch.equal(g1[:, c : c + 1], subsample(images[:, c : c + 1], k1))


def test_too_small_images_raise():
    with pytest.raises(ParameterError, match="2 x 2"):
        draw_neighbour_pairs((1, 1, 1, 8), generator=gen())


# --- the loss ----------------------------------------------------------------------------


@pytest.mark.parametrize("input_image", INPUT_IMAGES)
def test_regulariser_vanishes_for_the_identity(input_image):
    scheme = Neighbor2Neighbor(reference="full", input_image=input_image)
    batch = torch.randn(4, 1, 16, 16)
    reconstruction, regulariser = scheme.terms(nn.Identity(), batch, generator=gen(4))
    g1, g2 = neighbour_subsample(batch, generator=gen(4), input_image=input_image)
    assert regulariser.item() == 0.0
    assert reconstruction.item() == pytest.approx((g1 - g2).square().mean().item())


def test_cell_mean_input_is_blind_to_the_target_pixel():
    """The cell-mean input at every cell does not depend on the pixel its target g2 takes, so
    g2's noise is independent of the network's input, as Noise2Noise training needs; it is the
    mean of the cell's three other pixels."""
    batch = torch.randn(2, 1, 8, 8, requires_grad=True)
    k1, k2 = draw_neighbour_pairs(tuple(batch.shape), generator=gen(3))
    g1 = cell_mean_subsample(batch, k2)
    g1.sum().backward()  # each pixel's weight in the input: 0 for targets, 1/3 for the rest
    targets = torch.zeros(2, 1, 8, 8, dtype=torch.bool)
    for b in range(2):
        for cy in range(4):
            for cx in range(4):
                k = int(k2[b, 0, cy, cx])
                targets[b, 0, 2 * cy + k // 2, 2 * cx + k % 2] = True
    assert torch.equal(subsample(targets.float(), k2), torch.ones(2, 1, 4, 4))
    assert (batch.grad[targets] == 0).all()
    torch.testing.assert_close(batch.grad[~targets], torch.full((96,), 1 / 3))
    batch = batch.detach()
    cell = batch[0, 0, :2, :2].flatten()
    expected = (cell.sum() - cell[int(k2[0, 0, 0, 0])]) / 3
    assert g1[0, 0, 0, 0].item() == pytest.approx(expected.item(), rel=1e-6)
    # and its noise variance is a third of a pixel's
    noise = torch.randn(64, 1, 32, 32, generator=gen(5))
    k1, k2 = draw_neighbour_pairs(tuple(noise.shape), generator=gen(6))
    assert cell_mean_subsample(noise, k2).var().item() == pytest.approx(1 / 3, rel=0.03)


def test_regulariser_of_a_pixelwise_network_measures_its_distance_from_the_identity():
    """A pixel-wise map commutes with sub-sampling, so the regulariser reduces to
    mean((f(g2) - g2)**2): it penalises what the network changes, not the neighbours' gap."""
    torch.manual_seed(5)
    network = nn.Conv2d(1, 1, 1)
    scheme = Neighbor2Neighbor(reference="full", input_image="neighbour")
    batch = torch.randn(4, 1, 16, 16)
    with torch.no_grad():
        _, regulariser = scheme.terms(network, batch, generator=gen(6))
        _, g2 = neighbour_subsample(batch, generator=gen(6))
        expected = (network(g2) - g2).square().mean()
    assert regulariser.item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize("input_image", INPUT_IMAGES)
def test_polyphase_reference_is_the_merged_sub_image_prediction(input_image):
    """With the default reference, g1(f(y)) - g2(f(y)) uses f applied as inference does:
    to the four sub-images (or, for the cell-mean input, their cell means), merged; for the
    identity, the half-band filtered patch (of the cell means)."""
    batch = torch.randn(4, 1, 16, 16)
    scheme = Neighbor2Neighbor(input_image=input_image)
    _, regulariser = scheme.terms(nn.Identity(), batch, generator=gen(4))
    g1, g2 = neighbour_subsample(batch, generator=gen(4), input_image=input_image)
    quarters = split_polyphase(batch)
    if input_image == "cell-mean":
        quarters = cell_mean_polyphase(quarters)
    reference = merge_polyphase(quarters, (16, 16))
    r1, r2 = neighbour_subsample(reference, generator=gen(4), input_image=input_image)
    expected = (g1 - g2 - (r1 - r2)).square().mean()
    assert regulariser.item() == pytest.approx(expected.item(), rel=1e-5)
    assert regulariser.item() > 0.0


class _GradientRecorder(nn.Module):
    """Identity-like network that records whether each call builds a graph."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))
        self.grad_enabled: list[tuple[tuple[int, ...], bool]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.grad_enabled.append((tuple(x.shape), torch.is_grad_enabled()))
        return self.scale * x


def test_full_image_prediction_is_made_without_gradient():
    network = _GradientRecorder()
    scheme = Neighbor2Neighbor(gamma=2.0, reference="full")
    loss = scheme.loss(network, torch.randn(2, 1, 8, 8), generator=gen())
    assert network.grad_enabled == [((2, 1, 4, 4), True), ((2, 1, 8, 8), False)]
    loss.backward()
    assert network.scale.grad is not None
    # the default reference: the four polyphase sub-images of each patch, without gradient
    network = _GradientRecorder()
    Neighbor2Neighbor(gamma=2.0).loss(network, torch.randn(2, 1, 8, 8), generator=gen())
    assert network.grad_enabled == [((2, 1, 4, 4), True), ((8, 1, 4, 4), False)]
    # without the regulariser the full-size pass is skipped
    network = _GradientRecorder()
    reconstruction, regulariser = Neighbor2Neighbor(gamma=0.0).terms(
        network, torch.randn(2, 1, 8, 8), generator=gen()
    )
    assert network.grad_enabled == [((2, 1, 4, 4), True)] and regulariser.item() == 0.0


def test_loss_combines_the_terms_with_gamma_and_validation_is_deterministic():
    network = tiny_network().eval()
    batch = torch.randn(4, 1, 32, 32)
    with torch.no_grad():
        reconstruction, regulariser = Neighbor2Neighbor().terms(network, batch, generator=gen(7))
        loss = Neighbor2Neighbor(gamma=0.5).loss(network, batch, generator=gen(7))
        assert loss.item() == pytest.approx((reconstruction + 0.5 * regulariser).item())
        first = Neighbor2Neighbor().validation_loss(network, batch)
        torch.manual_seed(99)
        assert torch.equal(first, Neighbor2Neighbor().validation_loss(network, batch))


def test_bad_parameters_raise():
    with pytest.raises(ParameterError, match="gamma"):
        Neighbor2Neighbor(gamma=-1.0)
    with pytest.raises(ParameterError, match="loss"):
        Neighbor2Neighbor(loss="huber")
    with pytest.raises(ParameterError, match="reference"):
        Neighbor2Neighbor(reference="half")
    with pytest.raises(ParameterError, match="input_image"):
        Neighbor2Neighbor(input_image="cell")
    with pytest.raises(ParameterError, match="reference"):
        Neighbor2Neighbor(reference="mirrored")


def test_registered_and_follows_the_protocol():
    assert SCHEMES["ne2ne"] is Neighbor2Neighbor
    scheme = make_scheme("ne2ne", loss="l1")
    assert isinstance(scheme, Scheme)
    assert (scheme.name, scheme.channels, scheme.loss_kind, scheme.gamma) == ("ne2ne", 1, "l1", 2.0)
    assert scheme.scheme_options() == {"input_image": "cell-mean"}


# --- training ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(noisy_shapes) -> tuple[np.ndarray, list[float]]:
    """Train a tiny U-Net for 60 steps; the denoised held-out image and the step losses."""
    return train_tiny(Neighbor2Neighbor(), noisy_shapes[1])


def test_loss_is_finite_and_decreases(trained):
    _, losses = trained
    assert np.isfinite(losses).all()
    assert np.mean(losses[-10:]) < 0.8 * np.mean(losses[:10])


def test_training_lowers_the_error_against_the_clean_image(noisy_shapes, trained):
    clean, noisy = noisy_shapes
    denoised, _ = trained
    mse_noisy = float(np.mean((noisy[-1] - clean[-1]) ** 2))
    mse_denoised = float(np.mean((denoised - clean[-1]) ** 2))
    assert mse_denoised < 0.3 * mse_noisy, (mse_denoised, mse_noisy)


def test_no_excess_high_frequencies_in_the_denoised_output(noisy_shapes, trained):
    clean, noisy = noisy_shapes
    assert high_frequency_power_ratio(noisy[-1], clean[-1]) > 2.0
    assert high_frequency_power_ratio(trained[0], clean[-1]) <= 1.1


def test_train_loop_model_file_and_denoiser(noisy_shapes, tmp_path):
    """The generic loop trains the registered scheme by name; the model file it writes is
    applied by the Denoiser like any other (no scheme state needed at inference)."""
    _, noisy = noisy_shapes
    config = TrainConfig(
        epochs=1, steps_per_epoch=3, patch=32, batch_size=4, validation_patches=4, seed=3
    )
    out = tmp_path / "ne2ne.safetensors"
    result = train(
        "ne2ne", TINY, SingleDataset(noisy[:4]), SingleDataset(noisy[4:]), config, out=out
    )
    assert np.isfinite(result.train_losses).all()
    model = load_model(out)
    assert model.config.scheme == "ne2ne"
    assert model.config.scheme_options == {"input_image": "cell-mean"}
    calibration = model.config.training["output_calibration"]
    assert np.isfinite([calibration["scale"], calibration["offset"]]).all()
    denoised = Denoiser(model, device="cpu", threads=1)(noisy[-1])
    assert denoised.shape == noisy[-1].shape and denoised.dtype == np.float32
    assert np.isfinite(denoised).all()


def _train_two_steps(noisy: np.ndarray, tmp_path, scheme: Neighbor2Neighbor):
    """Train ``TINY`` for two steps on four of the images (the fifth validates); the model."""
    config = TrainConfig(
        epochs=1, steps_per_epoch=2, patch=32, batch_size=4, validation_patches=4, seed=3
    )
    out = tmp_path / "model.safetensors"
    train(scheme, TINY, SingleDataset(noisy[:4]), SingleDataset(noisy[4:]), config, out=out)
    return load_model(out)


@pytest.mark.parametrize("input_image", INPUT_IMAGES)
def test_denoiser_shows_the_network_what_it_was_trained_on(noisy_shapes, tmp_path, input_image):
    """The model file records the input image; the denoiser's polyphase prediction feeds the
    network the sub-images' cell means (cell-mean) or the sub-images (neighbour), then merges.
    A model file without the record is applied the paper's way."""
    model = _train_two_steps(noisy_shapes[1], tmp_path, Neighbor2Neighbor(input_image=input_image))
    assert model.config.scheme_options == {"input_image": input_image}
    denoiser = Denoiser(model, device="cpu", precision="fp32", backend="torch", threads=1)
    assert denoiser.polyphase and denoiser.polyphase_input == input_image
    tiles = torch.randn(2, 1, 32, 32, generator=gen(8))
    quarters = split_polyphase(tiles)
    if input_image == "cell-mean":
        quarters = cell_mean_polyphase(quarters)
    with torch.no_grad():
        expected = merge_polyphase(model.network.float()(quarters), (32, 32))
    torch.testing.assert_close(denoiser.predict_polyphase(tiles), expected, rtol=1e-5, atol=1e-5)
    model.config.scheme_options = {}
    assert Denoiser(model, device="cpu", threads=1).polyphase_input == "neighbour"
    model.config.scheme_options = {"input_image": "cell"}
    with pytest.raises(ParameterError, match="input_image"):
        Denoiser(model, device="cpu", threads=1)


def test_output_fit_is_the_least_squares_slope_of_the_neighbour():
    """Patches of a constant signal (variance 1 across patches) plus white noise (variance 1):
    a network passing g1 through unchanged is twice too strong, and the fit says so (a ≈ 0.5,
    the signal's share of g1's variance); folding the fit into the head removes the bias."""
    gen = torch.Generator().manual_seed(0)
    patches = torch.randn(256, 1, 1, 1, generator=gen) + torch.randn(256, 1, 16, 16, generator=gen)
    identity = nn.Conv2d(1, 1, 1)
    with torch.no_grad():
        identity.weight.fill_(1.0)
        identity.bias.zero_()
    a, c = fit_output_affine(identity, patches, generator=torch.Generator().manual_seed(1))
    assert a == pytest.approx(0.5, abs=0.05) and abs(c) < 0.05
    # the cell-mean input carries a third of the noise: a ≈ 1 / (1 + 1/3)
    a, c = fit_output_affine(
        identity, patches, generator=torch.Generator().manual_seed(1), input_image="cell-mean"
    )
    assert a == pytest.approx(0.75, abs=0.05) and abs(c) < 0.05


def test_scale_output_folds_an_affine_map_into_the_last_layer():
    from cryoden.nets.blocks import scale_output

    x = torch.randn(2, 1, 32, 32)
    for config in (TINY, NetworkConfig(base_channels=4, depth=2, space_to_depth=2)):
        network = tiny_network(config).eval()
        with torch.no_grad():
            before = network(x)
            scale_output(network, 0.8, 0.25)
            torch.testing.assert_close(network(x), 0.8 * before + 0.25, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="head"):
        scale_output(nn.Identity(), 1, 0)


def test_calibration_can_be_switched_off(noisy_shapes, tmp_path):
    model = _train_two_steps(noisy_shapes[1], tmp_path, Neighbor2Neighbor(calibrate=False))
    assert "output_calibration" not in model.config.training
