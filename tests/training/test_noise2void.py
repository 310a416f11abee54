"""Noise2Void / N2V2: stratified masking, strict blind spot, training, checkerboard diagnostic
(Neighbor2Neighbor with polyphase inference is held to the same checkerboard test)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from cryoden.errors import ParameterError
from cryoden.inference.denoise import Denoiser
from cryoden.metrics.high_frequency import (
    high_frequency_masks,
    high_frequency_power,
    high_frequency_power_ratio,
)
from cryoden.models import load_model
from cryoden.nets.config import NetworkConfig
from cryoden.training import TrainConfig, train
from cryoden.training.data import SingleDataset
from cryoden.training.masking import blind_spot_mask, mask_cell_size, stratified_coordinates
from cryoden.training.neighbor2neighbor import Neighbor2Neighbor
from cryoden.training.noise2void import (
    N2V2,
    N2V2_NETWORK_TWEAKS,
    Noise2Void,
    n2v2_network_config,
)
from cryoden.training.schemes import SCHEMES, Scheme, make_scheme

from .helpers import TINY, gen, shapes_image, tiny_network, train_tiny

pytestmark = pytest.mark.usefixtures("one_thread")


def _masked_positions(mask: torch.Tensor) -> list[tuple[int, int, int, int]]:
    return [tuple(int(v) for v in row) for row in mask.nonzero().tolist()]


# --- stratified masking ------------------------------------------------------------------


@pytest.mark.parametrize(("fraction", "cell"), [(0.002, 22), (1 / 64, 8), (0.04, 5), (0.25, 2)])
def test_mask_cell_size_gives_the_fraction(fraction, cell):
    assert mask_cell_size(fraction) == cell
    assert 1 / cell**2 == pytest.approx(fraction, rel=0.1)


@pytest.mark.parametrize("fraction", [0.0, -0.1, 0.3, float("nan")])
def test_mask_fraction_out_of_range_raises(fraction):
    with pytest.raises(ParameterError, match="mask_fraction"):
        mask_cell_size(fraction)


def test_exactly_one_masked_pixel_per_cell():
    cell = mask_cell_size(0.002)
    images = torch.randn(3, 1, 3 * cell, 2 * cell)
    masked = blind_spot_mask(images, mask_fraction=0.002, generator=gen(1))
    cells = masked.mask.reshape(3, 1, 3, cell, 2, cell).sum(dim=(3, 5))
    assert torch.equal(cells, torch.ones_like(cells))
    assert masked.mask.float().mean().item() == pytest.approx(1 / cell**2)


def test_every_pixel_equally_likely_with_partial_cells():
    # 20 x 20 with cells of 8: the last row and column of cells are cut to 4 pixels.
    draws = 4000
    b, c, y, x = stratified_coordinates((draws, 1, 20, 20), cell=8, generator=gen(2))
    counts = torch.zeros(20, 20)
    counts.index_put_((y, x), torch.ones_like(y, dtype=torch.float32), accumulate=True)
    frequency = counts / draws
    assert frequency.mean().item() == pytest.approx(1 / 64, rel=0.05)
    # Binomial(4000, 1/64): sd ~ 7.8 counts on a mean of 62.5; 6 sd bounds every pixel.
    assert (counts - draws / 64).abs().max().item() < 6 * (draws / 64) ** 0.5
    # At most one per cell of each image.
    cell_id = (y // 8) * 3 + (x // 8)
    assert len(set(zip(b.tolist(), cell_id.tolist()))) == len(b)


@pytest.mark.parametrize("replacement", ["random", "median"])
def test_only_masked_pixels_change(replacement):
    images = torch.randn(4, 1, 24, 24)
    masked = blind_spot_mask(
        images, mask_fraction=1 / 16, replacement=replacement, generator=gen(3)
    )
    assert torch.equal(masked.inputs[~masked.mask], images[~masked.mask])
    assert (masked.inputs[masked.mask] != images[masked.mask]).all()


def test_random_replacement_comes_from_the_window_never_the_centre_nor_a_masked_pixel():
    size = 16
    # Unique values identify where each replacement came from.
    images = torch.arange(2 * size * size, dtype=torch.float32).reshape(2, 1, size, size)
    offsets: set[tuple[int, int]] = set()
    for seed in range(40):
        masked = blind_spot_mask(images, mask_fraction=1 / 16, generator=gen(seed))
        for b, c, y, x in _masked_positions(masked.mask):
            source = int(masked.inputs[b, c, y, x].item()) - b * size * size
            sy, sx = divmod(source, size)
            assert (sy, sx) != (y, x)
            assert max(abs(sy - y), abs(sx - x)) <= 2
            assert not masked.mask[b, c, sy, sx]
            if 2 <= y < size - 2 and 2 <= x < size - 2:
                offsets.add((sy - y, sx - x))
    # Every one of the 24 neighbours of the 5 x 5 window is used, the centre never.
    assert offsets == {(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)} - {(0, 0)}


def test_median_replacement_is_the_median_of_the_unmasked_neighbours():
    rng = np.random.default_rng(4)
    images = torch.from_numpy(rng.normal(size=(2, 1, 20, 20)).astype(np.float32))
    masked = blind_spot_mask(images, mask_fraction=1 / 9, replacement="median", generator=gen(5))
    padded = np.pad(images.numpy(), ((0, 0), (0, 0), (2, 2), (2, 2)), mode="reflect")
    padded_mask = np.pad(masked.mask.numpy(), ((0, 0), (0, 0), (2, 2), (2, 2)), mode="reflect")
    for b, c, y, x in _masked_positions(masked.mask):
        window = padded[b, c, y : y + 5, x : x + 5].copy()
        excluded = padded_mask[b, c, y : y + 5, x : x + 5].copy()
        excluded[2, 2] = True  # the centre
        candidates = np.sort(window[~excluded])
        lower_median = candidates[(len(candidates) - 1) // 2]
        assert masked.inputs[b, c, y, x].item() == pytest.approx(float(lower_median))
        # A centre value far outside the neighbourhood would drag a median that included it.
        assert masked.inputs[b, c, y, x].item() != images[b, c, y, x].item()


def test_masking_is_reproducible_and_leaves_the_input_alone():
    images = torch.randn(2, 1, 32, 32)
    before = images.clone()
    first = blind_spot_mask(images, mask_fraction=0.04, generator=gen(6))
    second = blind_spot_mask(images, mask_fraction=0.04, generator=gen(6))
    assert torch.equal(first.inputs, second.inputs)
    assert torch.equal(first.mask, second.mask)
    assert torch.equal(images, before)


def test_bad_masking_parameters_raise():
    with pytest.raises(ParameterError, match="neighborhood"):
        Noise2Void(neighborhood=4)
    with pytest.raises(ParameterError, match="replacement"):
        Noise2Void(replacement="mean")
    with pytest.raises(ParameterError, match="loss"):
        Noise2Void(loss="huber")
    with pytest.raises(ParameterError, match=r"\(B, C, H, W\)"):
        blind_spot_mask(torch.zeros(8, 8), mask_fraction=0.04, generator=gen())


# --- the blind spot ----------------------------------------------------------------------


@pytest.mark.parametrize("replacement", ["random", "median"])
def test_prediction_at_a_masked_pixel_ignores_its_own_value(replacement):
    """Same generator, masked pixels set to wild values: same input, same prediction."""
    network = tiny_network(n2v2_network_config(TINY)).eval()
    scheme = Noise2Void(mask_fraction=1 / 9, replacement=replacement)
    images = torch.randn(2, 1, 24, 24)
    first = scheme.mask(images, generator=gen(7))
    wild = images.clone()
    wild[first.mask] = torch.where(torch.rand(int(first.mask.sum())) < 0.5, 1e4, -1e4)
    second = scheme.mask(wild, generator=gen(7))
    assert torch.equal(first.mask, second.mask)
    assert torch.equal(first.inputs, second.inputs)
    with torch.no_grad():
        assert torch.equal(network(first.inputs), network(second.inputs))
        # The losses differ, through the targets only.
        loss_1 = scheme.loss(network, images, generator=gen(7))
        loss_2 = scheme.loss(network, wild, generator=gen(7))
        prediction = network(first.inputs)
        expected_2 = (prediction - wild)[first.mask].square().mean()
    assert loss_1 != loss_2
    assert loss_2.item() == pytest.approx(expected_2.item(), rel=1e-5)


@pytest.mark.parametrize("replacement", ["random", "median"])
@pytest.mark.parametrize("config", [TINY, n2v2_network_config(TINY)], ids=["unet", "n2v2-unet"])
def test_gradient_of_masked_predictions_wrt_masked_values_is_zero(replacement, config):
    """d(prediction at masked pixels)/d(noisy value at masked pixels) = 0, even for a dense mask
    where masked pixels are each other's neighbours."""
    network = tiny_network(config)
    images = torch.randn(2, 1, 20, 20, requires_grad=True)
    masked = blind_spot_mask(images, mask_fraction=1 / 4, replacement=replacement, generator=gen(8))
    prediction = network(masked.inputs)
    prediction[masked.mask].sum().backward()
    assert images.grad is not None
    assert images.grad[masked.mask].abs().max().item() == 0.0
    # ... while the neighbourhood does feed the prediction.
    assert images.grad[~masked.mask].abs().max().item() > 0.0


@pytest.mark.parametrize("replacement", ["random", "median"])
def test_blind_spot_holds_in_tiny_images(replacement):
    """3 x 3 images with half their pixels masked: mirrored windows shrink to a few pixels."""
    images = torch.randn(16, 1, 3, 3, requires_grad=True)
    masked = blind_spot_mask(images, mask_fraction=0.25, replacement=replacement, generator=gen(13))
    assert torch.isfinite(masked.inputs).all()
    masked.inputs[masked.mask].sum().backward()
    assert images.grad is not None
    assert images.grad[masked.mask].abs().max().item() == 0.0


def test_loss_is_the_mean_over_masked_pixels_only():
    network = tiny_network().eval()
    scheme = Noise2Void(mask_fraction=0.04, loss="l1")
    images = torch.randn(3, 1, 32, 32)
    with torch.no_grad():
        loss = scheme.loss(network, images, generator=gen(9))
        masked = scheme.mask(images, generator=gen(9))
        expected = (network(masked.inputs) - images)[masked.mask].abs().mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_validation_loss_is_deterministic():
    network = tiny_network().eval()
    scheme = Noise2Void()
    images = torch.randn(4, 1, 32, 32)
    with torch.no_grad():
        first = scheme.validation_loss(network, images)
        torch.manual_seed(123)  # the global RNG plays no part
        second = scheme.validation_loss(network, images)
    assert torch.equal(first, second)


# --- the scheme, N2V2 and the registry ---------------------------------------------------


def test_schemes_are_registered_and_follow_the_protocol():
    assert SCHEMES["n2v"] is Noise2Void
    assert SCHEMES["n2v2"] is N2V2
    for name in ("n2v", "n2v2"):
        scheme = make_scheme(name, loss="l1")
        assert isinstance(scheme, Scheme)
        assert scheme.name == name
        assert scheme.channels == 1
        assert scheme.loss_kind == "l1"


def test_n2v2_defaults_and_network_tweaks():
    plain, n2v2 = Noise2Void(), N2V2()
    assert (plain.name, plain.replacement, plain.network_tweaks) == ("n2v", "random", {})
    assert (n2v2.name, n2v2.replacement) == ("n2v2", "median")
    assert n2v2.network_tweaks == N2V2_NETWORK_TWEAKS == {"blurpool": True, "top_skip": False}
    assert N2V2(replacement="random").replacement == "random"
    config = n2v2_network_config(NetworkConfig(base_channels=8, depth=3))
    assert (config.blurpool, config.top_skip, config.base_channels) == (True, False, 8)
    assert n2v2_network_config().blurpool
    with pytest.raises(ParameterError, match="top_skip"):
        n2v2_network_config(NetworkConfig(arch="seed4"))


def test_n2v2_warns_once_about_a_plain_network(caplog):
    scheme = N2V2()
    images = torch.randn(2, 1, 32, 32)
    with caplog.at_level(logging.WARNING, logger="cryoden.training.noise2void"):
        scheme.loss(tiny_network(), images, generator=gen())
        scheme.loss(tiny_network(), images, generator=gen())
    assert len([r for r in caplog.records if "N2V2 expects" in r.message]) == 1
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="cryoden.training.noise2void"):
        N2V2().loss(tiny_network(n2v2_network_config(TINY)), images, generator=gen())
    assert not caplog.records


# --- training ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def denoised(noisy_shapes) -> dict[str, np.ndarray]:
    _, noisy = noisy_shapes
    return {
        "n2v": train_tiny(Noise2Void(mask_fraction=1 / 16), noisy)[0],
        "n2v2": train_tiny(N2V2(mask_fraction=1 / 16), noisy, config=n2v2_network_config(TINY))[0],
        "ne2ne": train_tiny(Neighbor2Neighbor(), noisy, polyphase=True)[0],
    }


@pytest.mark.slow
@pytest.mark.parametrize("name", ["n2v", "n2v2", "ne2ne"])
def test_training_lowers_the_error_against_the_clean_image(noisy_shapes, denoised, name):
    clean, noisy = noisy_shapes
    mse_noisy = float(np.mean((noisy[-1] - clean[-1]) ** 2))
    mse_denoised = float(np.mean((denoised[name] - clean[-1]) ** 2))
    assert np.isfinite(denoised[name]).all()
    assert mse_denoised < 0.3 * mse_noisy, (mse_denoised, mse_noisy)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["n2v", "n2v2", "ne2ne"])
def test_no_checkerboard_in_the_denoised_output(noisy_shapes, denoised, name):
    clean, noisy = noisy_shapes
    # The measure does see excess high frequencies: the noisy input has far too much.
    assert high_frequency_power_ratio(noisy[-1], clean[-1]) > 2.0
    assert high_frequency_power_ratio(denoised[name], clean[-1]) <= 1.1


# --- the high-frequency diagnostic -------------------------------------------------------


def test_high_frequency_masks_hold_the_shell_and_the_nyquist_lines():
    shell, nyquist = high_frequency_masks((16, 12))
    assert nyquist[8, :].all() and nyquist[:, 6].all()  # Nyquist row and column
    assert nyquist.sum() == 16 + 12 - 1
    assert shell[8, 0] and shell[0, 6]  # f = 1 on the axes
    assert not shell[8, 6]  # the corner, f = sqrt(2), is outside the shell...
    assert not shell[0, 0] and not shell[2, 3] and not nyquist[2, 3]
    _, odd = high_frequency_masks((15, 15))
    assert odd[7, :].all() and odd[8, :].all() and odd[:, 7].all()


def test_high_frequency_power_ratio_flags_a_checkerboard():
    rng = np.random.default_rng(12)
    clean = shapes_image(rng)
    assert high_frequency_power_ratio(clean, clean) == pytest.approx(1.0)
    yy, xx = np.mgrid[0:64, 0:64]
    # ...where a checkerboard puts all its power: the shell alone would not see it.
    checkerboard = 0.05 * clean.std() * (-1.0) ** (yy + xx)
    assert high_frequency_power_ratio(clean + checkerboard, clean) > 1.5
    assert high_frequency_power_ratio(clean + checkerboard, clean, band=(0.9, 1.0)) == (
        pytest.approx(
            high_frequency_power(clean + checkerboard)[1] / high_frequency_power(clean)[1]
        )
    )
    smoothed = (clean + np.roll(clean, 1, 0) + np.roll(clean, 1, 1) + np.roll(clean, 1, (0, 1))) / 4
    assert high_frequency_power_ratio(smoothed, clean) < 0.5
    # Power is measured after removing the mean: an offset changes nothing.
    assert high_frequency_power(clean + 3.0) == pytest.approx(high_frequency_power(clean))


def test_high_frequency_power_ratio_errors():
    with pytest.raises(ParameterError, match="shape"):
        high_frequency_power_ratio(np.zeros((8, 8)), np.zeros((8, 9)))
    with pytest.raises(ParameterError, match="no power"):
        high_frequency_power_ratio(np.ones((8, 8)), np.zeros((8, 8)))
    with pytest.raises(ParameterError, match="band"):
        high_frequency_masks((8, 8), band=(0.9, 0.5))


def test_train_loop_model_file_and_denoiser(noisy_shapes, tmp_path):
    """The generic loop trains N2V2 by name on its network; the model file it writes is applied
    by the Denoiser like any other (no scheme state needed at inference)."""
    _, noisy = noisy_shapes
    config = TrainConfig(
        epochs=1, steps_per_epoch=3, patch=32, batch_size=4, validation_patches=4, seed=3
    )
    network_config = n2v2_network_config(TINY)
    out = tmp_path / "n2v2"
    result = train(
        "n2v2", network_config, SingleDataset(noisy[:4]), SingleDataset(noisy[4:]), config, out=out
    )
    assert np.isfinite(result.train_losses).all()
    assert np.isfinite(result.validation_losses).all()
    model = load_model(out)
    assert model.config.scheme == "n2v2"
    assert model.config.network == network_config
    denoised = Denoiser(model, device="cpu", threads=1)(noisy[-1])
    assert denoised.shape == noisy[-1].shape and denoised.dtype == np.float32
    assert np.isfinite(denoised).all()
