"""The blind spot: parsing, the choice from the measured noise, structured masking geometry,
pixel-shuffle down-sampling, and what a model file records."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cryoden.errors import ParameterError
from cryoden.inference.denoise import Denoiser
from cryoden.models import load_model
from cryoden.nets.polyphase import split_polyphase
from cryoden.noise.correlated import correlated_gaussian_noise
from cryoden.training import TrainConfig, train
from cryoden.training.blind_spot import (
    PIXEL,
    BlindSpot,
    choose_blind_spot,
    measure_noise_correlation,
    noise_check,
    parse_blind_spot,
    pd_merge,
    pd_split,
    structured_blind_mask,
    structured_cell_size,
)
from cryoden.training.data import SingleDataset
from cryoden.training.masking import blind_spot_mask, mask_cell_size
from cryoden.training.noise2void import Noise2Void

from .helpers import FAST, FAST_NET, blob_images, gen, shapes_image, train_tiny

pytestmark = pytest.mark.usefixtures("one_thread")


def _noisy(clean: list[np.ndarray], correlation, *, sigma: float = 0.6, seed: int = 0):
    rng = np.random.default_rng(seed)
    return [
        (c + correlated_gaussian_noise(c.shape, correlation, rng=rng, sigma=sigma)).astype(
            np.float32
        )
        for c in clean
    ]


# --- writing and reading a blind spot ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "spot"),
    [
        ("pixel", PIXEL),
        ("structured:1,0", BlindSpot("structured", radius_x=1, radius_y=0)),
        ("Structured:2,3", BlindSpot("structured", radius_x=2, radius_y=3)),
        ("pd:2", BlindSpot("pd", stride=2)),
        ("auto", None),
    ],
)
def test_blind_spots_parse_and_write_back(text, spot):
    parsed = parse_blind_spot(text)
    assert parsed == spot
    if spot is not None:
        assert parse_blind_spot(spot.spec) == spot


@pytest.mark.parametrize(
    "text",
    ["", "pixels", "structured", "structured:1", "structured:a,b", "structured:0,0",
     "structured:4,1", "structured:-1,1", "pd", "pd:3", "pd:1", "pd:x", "auto:1", "pixel:2"],
)  # fmt: skip
def test_bad_blind_spots_are_refused_in_one_line(text):
    with pytest.raises(ParameterError, match="blind_spot") as info:
        parse_blind_spot(text)
    assert "\n" not in str(info.value)


def test_the_radii_are_per_axis_in_array_order():
    spot = parse_blind_spot("structured:2,1")
    assert spot is not None and spot.radius == (1, 2)  # (y, x)
    assert "5 x 3" in spot.describe()


# --- the choice --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("correlation", "expected"),
    [
        ({"x": [0.01, -0.02, 0.0], "y": [0.03, 0.0, 0.01]}, "pixel"),
        ({"x": [-0.04, 0.0, 0.0], "y": [0.049, 0.0, 0.0]}, "pixel"),
        ({"x": [0.4, 0.04, 0.0], "y": [0.4, 0.04, 0.0]}, "structured:2,2"),  # one lag + margin
        ({"x": [0.5, 0.07, 0.0], "y": [0.5, 0.07, 0.0]}, "structured:3,3"),
        ({"x": [0.09, 0.0, 0.0], "y": [0.17, 0.02, 0.0]}, "structured:2,2"),
        ({"x": [0.02, 0.0, 0.0], "y": [0.3, 0.06, 0.0]}, "structured:0,3"),
        ({"x": [0.3, 0.0, 0.0], "y": [0.0, 0.3, 0.0]}, "structured:2,0"),  # lag 1 first
        ({"x": [0.9, 0.8, 0.7, 0.6], "y": [0.0]}, "structured:3,0"),  # at most MAX_RADIUS
        ({"x": [-0.3, 0.0, 0.0], "y": [0.0, 0.0, 0.0]}, "structured:2,0"),  # sign ignored
    ],
)
def test_the_choice_follows_the_measured_shape(correlation, expected):
    assert choose_blind_spot(correlation).spec == expected


def test_the_choice_checks_its_input():
    with pytest.raises(ParameterError, match="lags along y"):
        choose_blind_spot({"x": [0.1]})
    with pytest.raises(ParameterError, match="threshold"):
        choose_blind_spot({"x": [0.1], "y": [0.1]}, threshold=0.0)


def test_white_noise_gets_the_plain_blind_spot_and_correlated_noise_its_own_shape():
    clean = blob_images(6, 96)
    white = Noise2Void.for_images(_noisy(clean, 0.0))
    assert white.blind_spot == PIXEL
    assert max(abs(v) for v in white.noise_correlation["x"] + white.noise_correlation["y"]) < 0.05
    along_y = Noise2Void.for_images(_noisy(clean, (0.35, 0.0)))
    assert along_y.blind_spot.spec == "structured:0,2"
    assert along_y.noise_correlation["y"][0] == pytest.approx(0.35, abs=0.04)


def test_measuring_reads_dataset_arrays_and_refuses_tiny_images():
    noisy = _noisy(blob_images(3, 64), 0.3)
    from_arrays = measure_noise_correlation(noisy)
    masks = [np.ones((64, 64), bool)] * 3  # file-backed and masked images hold their channels
    for dataset in (SingleDataset(noisy), SingleDataset(noisy, sample_masks=masks)):
        measured = measure_noise_correlation(dataset.images)
        for axis in ("x", "y"):
            assert measured[axis] == pytest.approx(from_arrays[axis], abs=2e-3)
    with pytest.raises(ParameterError, match="at least 16 pixels"):
        measure_noise_correlation([np.zeros((8, 8), np.float32)])


# --- structured masking --------------------------------------------------------------------------


def test_the_blind_box_is_the_mask_grown_per_axis():
    mask = torch.zeros(1, 1, 9, 11, dtype=torch.bool)
    mask[0, 0, 4, 5] = True
    mask[0, 0, 0, 0] = True
    blind = structured_blind_mask(mask, (1, 2))[0, 0]
    expected = torch.zeros(9, 11, dtype=torch.bool)
    expected[3:6, 3:8] = True
    expected[0:2, 0:3] = True  # clipped at the border
    assert torch.equal(blind, expected)


@pytest.mark.parametrize("radius", [(1, 1), (0, 2), (2, 1)])
def test_no_pixel_of_a_box_reaches_the_input(radius):
    images = torch.randn(2, 1, 40, 36, requires_grad=True)
    masked = blind_spot_mask(images, mask_fraction=0.04, generator=gen(3), blind_radius=radius)
    blind = structured_blind_mask(masked.mask, radius)
    changed = masked.inputs.detach() != images.detach()
    assert not (changed & ~blind).any()  # only blind pixels are replaced
    assert changed[blind].float().mean() > 0.9  # and (almost) all of them are
    weights = torch.randn_like(images)
    (masked.inputs * weights).sum().backward()
    assert images.grad is not None
    assert torch.all(images.grad[blind] == 0)  # no blind pixel's value is in any input
    assert (images.grad[~blind] != 0).float().mean() > 0.5


@pytest.mark.parametrize("radius", [(1, 1), (2, 2), (0, 1)])
def test_structured_cells_keep_the_boxes_to_a_quarter_of_the_image(radius):
    cell = max(mask_cell_size(0.04), structured_cell_size(radius))
    masked = blind_spot_mask(
        torch.zeros(4, 1, 60, 60), mask_fraction=0.04, generator=gen(1), blind_radius=radius
    )
    count = int(masked.mask.sum())
    assert 4 * (60 // cell) ** 2 <= count <= 4 * (-(-60 // cell)) ** 2  # one per cell
    blind = structured_blind_mask(masked.mask, radius)
    assert float(blind.float().mean()) <= 0.3


def test_pixel_blind_spot_is_unchanged_by_the_radius_parameter():
    images = torch.randn(2, 1, 32, 32)
    plain = blind_spot_mask(images, mask_fraction=0.04, generator=gen(5))
    zero = blind_spot_mask(images, mask_fraction=0.04, generator=gen(5), blind_radius=(0, 0))
    assert torch.equal(plain.inputs, zero.inputs) and torch.equal(plain.mask, zero.mask)


# --- pixel-shuffle down-sampling -----------------------------------------------------------------


@pytest.mark.parametrize("stride", [2, 3, 4])
def test_pd_round_trip_is_the_identity(stride):
    x = torch.randn(3, 2, 12 * stride // 2, 6 * stride)
    sub = pd_split(x, stride)
    assert sub.shape == (3 * stride**2, 2, x.shape[-2] // stride, x.shape[-1] // stride)
    assert torch.equal(pd_merge(sub, stride), x)
    # sub-image k of image b holds the pixels (s i + dy, s j + dx), k = s dy + dx
    assert torch.equal(sub[stride**2 + stride + 1, 0], x[1, 0, 1::stride, 1::stride])


def test_pd_split_orders_sub_images_as_the_denoiser_does():
    x = torch.randn(2, 1, 16, 20)
    assert torch.equal(pd_split(x, 2), split_polyphase(x))
    with pytest.raises(ParameterError, match="multiples of stride"):
        pd_split(torch.zeros(1, 1, 9, 8), 2)


def test_pd_training_masks_sub_images_and_applies_the_model_polyphase():
    scheme = Noise2Void(blind_spot="pd:2")
    batch = torch.randn(3, 1, 33, 32)
    assert scheme.training_view(batch).shape == (12, 1, 16, 16)
    network = torch.nn.Conv2d(1, 1, 3, padding=1)
    assert torch.isfinite(scheme.loss(network, batch, generator=gen(0)))
    out = scheme.apply_model(network, torch.randn(2, 1, 20, 24))
    assert out.shape == (2, 1, 20, 24)


# --- the scheme and its model file ---------------------------------------------------------------


def test_the_scheme_records_its_choice_and_refuses_unresolved_auto():
    correlation = {"x": [0.3, 0.01, 0.0], "y": [0.1, 0.0, 0.0]}
    scheme = Noise2Void(blind_spot="structured:1,1", noise_correlation=correlation)
    assert scheme.scheme_options() == {
        "blind_spot": "structured:1,1",
        "noise_correlation": correlation,
    }
    assert Noise2Void().scheme_options() == {"blind_spot": "pixel"}
    with pytest.raises(ParameterError, match="for_images"):
        Noise2Void(blind_spot="auto")


@pytest.mark.parametrize(("spot", "polyphase"), [("structured:2,0", False), ("pd:2", True)])
def test_model_file_records_the_blind_spot_and_inference_applies_it(tmp_path, spot, polyphase):
    noisy = _noisy(blob_images(4, 48), (0.2, 0.4))
    scheme = Noise2Void.for_images(noisy, blind_spot=spot)
    config = TrainConfig(max_steps=4, **FAST)
    result = train(scheme, FAST_NET, SingleDataset(noisy), None, config, out=tmp_path / "m")
    model = load_model(result.model_path)
    options = model.config.scheme_options
    assert options["blind_spot"] == spot
    assert options["noise_correlation"] == scheme.noise_correlation
    assert options["noise_correlation"]["x"][0] == pytest.approx(0.4, abs=0.05)
    denoiser = Denoiser(model, backend="torch", precision="fp32")
    assert denoiser.polyphase is polyphase
    assert denoiser(noisy[0]).shape == noisy[0].shape


def test_white_noise_trains_exactly_as_plain_noise2void(tmp_path):
    noisy = _noisy(blob_images(4, 48), 0.0)
    config = TrainConfig(max_steps=6, **FAST)
    auto = Noise2Void.for_images(noisy)
    assert auto.blind_spot == PIXEL
    a = train(auto, FAST_NET, SingleDataset(noisy), None, config, out=tmp_path / "auto")
    b = train(Noise2Void(), FAST_NET, SingleDataset(noisy), None, config, out=tmp_path / "plain")
    for key, value in a.network.state_dict().items():
        assert torch.equal(value, b.network.state_dict()[key]), key


def test_structured_masking_does_not_copy_correlated_noise():
    rng = np.random.default_rng(10)
    clean = np.stack([shapes_image(rng) for _ in range(5)])
    noisy = np.stack(_noisy(list(clean), 0.5, sigma=0.5, seed=3))
    errors = {}
    for spot in ("pixel", "structured:1,1"):
        out, _ = train_tiny(Noise2Void(blind_spot=spot), noisy, steps=80)
        errors[spot] = float(np.mean((out - clean[-1]) ** 2))
    noisy_error = float(np.mean((noisy[-1] - clean[-1]) ** 2))
    assert errors["structured:1,1"] < 0.6 * errors["pixel"]
    assert errors["structured:1,1"] < 0.5 * noisy_error


def test_the_noise_check_warns_only_about_correlated_noise(caplog):
    clean = blob_images(4, 96)
    with caplog.at_level("WARNING", logger="cryoden.training.blind_spot"):
        white = noise_check(_noisy(clean, 0.0), "Neighbor2Neighbor")
    assert not caplog.records and max(abs(v) for v in white["x"] + white["y"]) < 0.05
    with caplog.at_level("WARNING", logger="cryoden.training.blind_spot"):
        correlated = noise_check(_noisy(clean, (0.0, 0.3)), "Neighbor2Neighbor")
    assert correlated["x"][0] == pytest.approx(0.3, abs=0.04)
    assert any("Neighbor2Neighbor" in r.getMessage() for r in caplog.records)
