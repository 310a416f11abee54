"""The 3D blind spot for correlated tomogram noise: the structured box is strict, the noise
correlation of single volumes is measured per axis, and ``auto`` follows the measured shape."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage
import torch

from cryoden.errors import ParameterError
from cryoden.training.blind_spot import PIXEL, BlindSpot, choose_blind_spot, parse_blind_spot
from cryoden.training.blind_spot_3d import (
    blind_spot_mask_3d,
    measure_volume_noise_correlation,
    measure_volume_snr,
    resolve_volume_blind_spot,
    structured_blind_mask_3d,
    structured_cell_size_3d,
)
from cryoden.training.noise2void import VOLUME_N2V_MIN_SNR, Noise2Void, volume_variant

pytestmark = pytest.mark.usefixtures("one_thread")


def correlated_noise(shape, *, z: float, x: float, seed: int) -> np.ndarray:
    """Gaussian noise whose lag-1 correlation is ``z`` along z and ``x`` along x (a two-tap
    filter ``[1, t]`` per axis gives ``t / (1 + t²)``), white along y."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=shape)

    def tap(r: float) -> float:  # the t with t / (1 + t²) = r, |t| <= 1
        return 0.0 if r == 0 else (1 - np.sqrt(1 - 4 * r * r)) / (2 * r)

    for axis, r in ((0, z), (2, x)):
        kernel = np.array([1.0, tap(r)]).reshape([-1 if a == axis else 1 for a in range(3)])
        noise = scipy.ndimage.convolve(noise, kernel, mode="wrap")
    return noise.astype(np.float32)


def test_structured_3d_boxes_are_strict_and_only_their_centres_are_scored():
    generator = torch.Generator().manual_seed(0)
    volumes = torch.randn(2, 1, 20, 18, 22, requires_grad=True)
    radius = (2, 0, 3)
    inputs, mask = blind_spot_mask_3d(
        volumes, mask_fraction=0.04, generator=generator, blind_radius=radius
    )
    boxes = structured_blind_mask_3d(mask, radius)
    cell = structured_cell_size_3d(radius)
    assert 5 * 1 * 7 / cell**3 <= 1 / 8  # the boxes hide at most an eighth of the voxels
    assert cell >= 4 and int(mask.sum()) <= 2 * np.prod([-(-s // cell) for s in (20, 18, 22)])
    assert int(boxes.sum()) > int(mask.sum()) > 0
    # no voxel of any box reaches the inputs: not itself, not as a replacement elsewhere
    (grad,) = torch.autograd.grad((inputs * torch.randn(inputs.shape)).sum(), volumes)
    assert torch.all(grad[boxes] == 0)
    assert torch.all(inputs[~boxes] == volumes[~boxes])
    # one box is (2 rz + 1) x (2 ry + 1) x (2 rx + 1) voxels around its centre
    single = torch.zeros(1, 1, 9, 9, 9, dtype=torch.bool)
    single[0, 0, 4, 4, 4] = True
    box = structured_blind_mask_3d(single, radius)[0, 0]
    assert box.nonzero().amin(0).tolist() == [2, 4, 1]
    assert box.nonzero().amax(0).tolist() == [6, 4, 7]
    assert int(box.sum()) == 5 * 1 * 7

def test_the_noise_correlation_of_single_volumes_is_measured_per_axis():
    shape = (48, 64, 64)
    noise = correlated_noise(shape, z=0.35, x=-0.2, seed=1)
    zz, yy, xx = np.mgrid[: shape[0], : shape[1], : shape[2]]
    signal = 0.3 * np.exp(-((zz - 24) ** 2 + (yy - 30) ** 2 + (xx - 34) ** 2) / 200.0)
    measured = measure_volume_noise_correlation([noise + signal.astype(np.float32)])
    assert set(measured) == {"x", "y", "z"}
    assert abs(measured["z"][0] - 0.35) < 0.05
    assert abs(measured["x"][0] + 0.2) < 0.05
    assert abs(measured["y"][0]) < 0.05
    assert choose_blind_spot(measured) == BlindSpot("structured", radius_x=2, radius_z=2)
    chosen, recorded = resolve_volume_blind_spot("auto", [noise])  # volumes: no margin
    assert chosen == BlindSpot("structured", radius_x=1, radius_z=1) and set(recorded) == set("xyz")
    white = np.random.default_rng(2).normal(size=shape).astype(np.float32)
    assert choose_blind_spot(measure_volume_noise_correlation([white])) == PIXEL
    with pytest.raises(ParameterError, match="at least 16 voxels"):
        measure_volume_noise_correlation([white[:8]])


def test_3d_blind_spots_are_written_read_and_refused_where_they_do_not_apply():
    spot = parse_blind_spot("structured:3,0,2")
    assert spot.radius_3d == (2, 0, 3) and spot.spec == "structured:3,0,2"
    assert "7 x 1 x 5 voxels" in spot.describe()
    assert parse_blind_spot("structured:1,1").radius_3d == (0, 1, 1)
    with pytest.raises(ParameterError, match="for volumes"):
        _ = spot.radius  # a 2D batch cannot take a z radius
    with pytest.raises(ParameterError, match="blind_spot must be"):
        parse_blind_spot("structured:1,2,3,4")
    volume = np.random.default_rng(3).normal(size=(24, 24, 24)).astype(np.float32)
    with pytest.raises(ParameterError, match="for 2D images"):
        resolve_volume_blind_spot("pd:2", [volume])


def test_noise2void_for_volumes_chooses_and_records_the_box():
    noise = correlated_noise((32, 48, 48), z=0.4, x=0.0, seed=4)
    scheme = Noise2Void.for_volumes([noise])
    assert scheme.blind_spot.radius_3d[0] >= 1 and scheme.blind_spot.radius_3d[2] == 0
    options = scheme.scheme_options()
    assert options["blind_spot"] == scheme.blind_spot.spec
    assert set(options["noise_correlation"]) == {"x", "y", "z"}
    given = Noise2Void.for_volumes([noise], blind_spot="pixel")
    assert given.blind_spot == PIXEL
    generator = torch.Generator().manual_seed(1)
    batch = torch.randn(2, 1, 16, 16, 16)
    masked = scheme.mask(batch, generator=generator)
    assert masked.inputs.shape == batch.shape and int(masked.mask.sum()) > 0


def smooth_signal(shape, *, variance: float, seed: int) -> np.ndarray:
    """A smooth random volume (no power near Nyquist) of the given variance."""
    field = scipy.ndimage.gaussian_filter(np.random.default_rng(seed).normal(size=shape), 3.0)
    return (field * np.sqrt(variance / field.var())).astype(np.float32)


@pytest.mark.parametrize("snr", [0.05, 0.2, 1.0])
def test_the_voxel_snr_of_single_volumes_is_measured(snr):
    shape = (40, 64, 64)
    signal = smooth_signal(shape, variance=snr, seed=5)
    noise = correlated_noise(shape, z=0.35, x=-0.2, seed=6)
    measured = measure_volume_snr([signal + noise / noise.std()])
    # the central sections hold a little less than the whole volume's signal variance
    assert snr * 0.7 < measured < snr * 1.1 + 0.01
    with pytest.raises(ParameterError, match="no power in the noise band"):
        measure_volume_snr([np.ones(shape, np.float32)])


def test_volumes_train_n2v2_when_noisy_and_n2v_when_clean():
    shape = (40, 64, 64)
    noise = correlated_noise(shape, z=0.35, x=-0.2, seed=7)
    low = smooth_signal(shape, variance=VOLUME_N2V_MIN_SNR / 4, seed=8) + noise
    high = smooth_signal(shape, variance=VOLUME_N2V_MIN_SNR * 4, seed=8) + noise
    assert volume_variant([low])[0] == "n2v2"
    variant, snr = volume_variant([high])
    assert variant == "n2v" and snr >= VOLUME_N2V_MIN_SNR
