"""Training on volumes: Noise2Noise and Noise2Void in 3D denoise, patches come from inside the
sample, the 3D blind spot is strict, and bad inputs are refused in one line."""

from __future__ import annotations

import mrcfile
import numpy as np
import pytest
import torch

from cryoden.errors import InputFileError, ParameterError
from cryoden.io import write_mrc
from cryoden.nets import NetworkConfig
from cryoden.training import TrainConfig, train
from cryoden.training.blind_spot_3d import blind_spot_mask_3d, mask_cell_size_3d
from cryoden.training.network_choice_3d import candidate_networks, denoise_whole
from cryoden.training.volume_regions import SamplingRegion, local_variance_cells, variance_mask
from cryoden.training.volumes import VolumePairDataset, VolumeSingleDataset

pytestmark = pytest.mark.usefixtures("one_thread")

NET_3D = NetworkConfig(dims=3, base_channels=4, depth=2)
RECIPE = {
    "patch": 16,
    "batch_size": 4,
    "steps_per_epoch": 10,
    "validation_patches": 8,
    "threads": 1,
    "seed": 3,
}


def blob_volume(shape: tuple[int, int, int], n: int, *, seed: int) -> np.ndarray:
    """A clean volume of ``n`` smooth blobs on a zero background."""
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.mgrid[: shape[0], : shape[1], : shape[2]].astype(np.float64)
    volume = np.zeros(shape)
    for _ in range(n):
        cz, cy, cx = rng.uniform(3, np.array(shape) - 3)
        r = rng.uniform(2.0, 4.0)
        volume += rng.uniform(0.5, 1.5) * np.exp(
            -((zz - cz) ** 2 + (yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r)
        )
    return volume.astype(np.float32)


@pytest.fixture(scope="module")
def halves():
    """A clean 32 x 48 x 48 volume and two independent noisy halves (SNR 0.5)."""
    clean = blob_volume((32, 48, 48), 30, seed=0)
    rng = np.random.default_rng(1)
    sigma = float(np.sqrt(clean.var() / 0.5))
    even, odd = (clean + rng.normal(0, sigma, clean.shape).astype(np.float32) for _ in range(2))
    return clean, even, odd


def _mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a - b) ** 2))


def test_noise2noise_on_volumes_lowers_the_error(halves, tmp_path):
    clean, even, odd = halves
    data = VolumePairDataset([(even, odd)], mask="none", edge_fraction=0.0)
    config = TrainConfig(max_steps=40, learning_rate=3e-3, **RECIPE)
    result = train("n2n", NET_3D, data, None, config, out=tmp_path / "n2n.safetensors")
    assert result.model_config.network.dims == 3
    denoised = denoise_whole(result.network, data.normalization, even)
    assert _mse(denoised, clean) < 0.6 * _mse(even, clean)


def test_noise2void_on_volumes_lowers_the_error(halves, tmp_path):
    clean, even, _ = halves
    data = VolumeSingleDataset([even], mask="none", edge_fraction=0.0)
    config = TrainConfig(max_steps=40, learning_rate=3e-3, **RECIPE)
    result = train("n2v", NET_3D, data, None, config, out=tmp_path / "n2v.safetensors")
    denoised = denoise_whole(result.network, data.normalization, even)
    assert _mse(denoised, clean) < 0.6 * _mse(even, clean)


def test_the_3d_blind_spot_is_strict_and_stratified():
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(2, 1, 12, 13, 14, requires_grad=True)
    inputs, mask = blind_spot_mask_3d(images, mask_fraction=0.04, generator=generator)
    cell = mask_cell_size_3d(0.04)
    assert cell == 3
    expected = 2 * 4 * 5 * 5  # one per cell, cells wholly inside and partial ones
    assert expected * 0.6 < int(mask.sum()) <= expected
    # nothing of a masked voxel reaches the inputs: not itself, not as another's replacement
    weights = torch.randn(inputs.shape)
    (grad,) = torch.autograd.grad((inputs * weights).sum(), images)
    assert torch.all(grad[mask] == 0)
    assert torch.all(inputs[~mask] == images[~mask])
    with pytest.raises(ParameterError, match="Z, Y, X"):
        blind_spot_mask_3d(torch.zeros(1, 1, 8, 8), mask_fraction=0.04, generator=generator)


def test_auto_mask_keeps_the_specimen_slab_and_drops_the_vacuum():
    rng = np.random.default_rng(2)
    shape = (64, 48, 48)
    volume = rng.normal(0, 1.0, shape).astype(np.float32)
    volume[24:40] += 4 * blob_volume((16, 48, 48), 40, seed=3)  # a specimen slab in z

    def read(start: int, stop: int) -> np.ndarray:
        return volume[start:stop]

    cells = variance_mask(local_variance_cells(read, shape, cell_px=8))
    kept_z = np.flatnonzero(cells.any(axis=(1, 2)))
    assert set(kept_z) <= {2, 3, 4, 5}  # cells of 8 sections: the slab is sections 24-39
    assert cells[3:5].mean() > 0.5
    # a volume of specimen throughout keeps every cell
    uniform = rng.normal(size=shape).astype(np.float32)
    assert variance_mask(local_variance_cells(lambda a, b: uniform[a:b], shape)).all()


def test_patches_stay_inside_the_region_and_validation_shares_no_voxel():
    shape = (40, 60, 50)
    region = SamplingRegion.build(shape, edge_fraction=0.1)
    assert region.bounds == ((4, 36), (6, 54), (5, 45))
    generator = torch.Generator().manual_seed(1)
    corners = region.draw(500, 12, generator)
    for axis, (lo, hi) in enumerate(region.bounds):
        assert corners[:, axis].min() >= lo and corners[:, axis].max() + 12 <= hi
    train_part, held = region.split(0.25, 12)
    assert held is not None
    assert train_part.bounds[1][1] <= held.bounds[1][0]  # split along y, the longer in-plane
    assert train_part.bounds[0] == held.bounds[0] and train_part.bounds[2] == held.bounds[2]


def test_pair_patches_are_flipped_alike_and_drawn_reproducibly():
    volume = np.random.default_rng(4).normal(size=(24, 30, 28)).astype(np.float32)
    data = VolumePairDataset([(volume, volume + 1.0)], mask="none", edge_fraction=0.0)
    run = data.training_data(None, validation_fraction=0.0, patch=10)
    first = run.sample(patch=10, batch=16, generator=torch.Generator().manual_seed(5))
    again = run.sample(patch=10, batch=16, generator=torch.Generator().manual_seed(5))
    assert first.shape == (16, 2, 10, 10, 10) and torch.equal(first, again)
    difference = first[:, 1] - first[:, 0]  # one normalisation for both: a constant offset
    assert torch.allclose(difference, difference.flatten()[0].expand_as(difference), atol=1e-5)


def test_bad_volumes_are_refused_in_one_line(tmp_path):
    good = np.random.default_rng(5).normal(size=(16, 20, 20)).astype(np.float32)
    write_mrc(tmp_path / "even.mrc", good)
    write_mrc(tmp_path / "odd.mrc", good[:, :, :18])
    with pytest.raises(InputFileError, match=r"odd\.mrc: has shape \(16, 20, 18\)"):
        VolumePairDataset([(tmp_path / "even.mrc", tmp_path / "odd.mrc")], mask="none")
    bad = good.copy()
    bad[9, 4, 4] = np.nan
    with pytest.warns(RuntimeWarning, match="NaN"), mrcfile.new(tmp_path / "nan.mrc") as mrc:
        mrc.set_data(bad)
    with pytest.raises(InputFileError, match=r"nan\.mrc: contains NaN or infinite values"):
        VolumeSingleDataset([tmp_path / "nan.mrc"], mask="none")
    with pytest.raises(InputFileError, match="no room for 18-voxel patches"):
        VolumeSingleDataset([tmp_path / "even.mrc"]).check_patch(18)


def test_networks_and_schemes_must_fit_volumes(tmp_path):
    volume = np.random.default_rng(6).normal(size=(20, 24, 24)).astype(np.float32)
    singles = VolumeSingleDataset([volume], mask="none", edge_fraction=0.0)
    pairs = VolumePairDataset([(volume, volume)], mask="none", edge_fraction=0.0)
    config = TrainConfig(max_steps=1, **RECIPE)
    cases = [
        ("n2v", NetworkConfig(base_channels=4, depth=2), singles, "2D network cannot train"),
        ("ne2ne", NET_3D, singles, "does not train on volumes"),
        ("n2v", NET_3D, pairs, "needs single volumes"),
        ("n2n", NET_3D, singles, "needs pairs of volumes"),
    ]
    for scheme, network, data, needle in cases:
        with pytest.raises(ParameterError, match=needle):
            train(scheme, network, data, None, config, out=tmp_path / "m.safetensors")
    assert not (tmp_path / "m.safetensors").exists()
    with pytest.raises(ParameterError, match="3D network cannot train on 2D images"):
        train("n2v", NET_3D, [volume[:1]], None, config, out=tmp_path / "m.safetensors")


def test_candidates_are_3d_and_blind_spot_schemes_skip_space_to_depth():
    pairs, blind = candidate_networks("n2n"), candidate_networks("n2v2")
    assert all(c.dims == 3 for c in pairs.values()) and len(pairs) > len(blind)
    assert all(c.space_to_depth == 1 and c.blurpool and not c.top_skip for c in blind.values())
    with pytest.raises(ParameterError, match="unknown 3D candidate"):
        candidate_networks("n2n", ["huge"])
