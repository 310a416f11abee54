"""The volume denoiser: tiling invisible in 3D, halves averaged, file to file in bounded memory,
bad inputs refused, and the half-map check."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import torch
from torch import nn

from cryoden.errors import InputFileError, ParameterError
from cryoden.inference.half_maps import half_map_fsc, half_map_fsc_arrays, soft_box_window
from cryoden.inference.tiling_3d import predict_tiled_volume
from cryoden.inference.volume import VolumeDenoiser
from cryoden.io import write_mrc
from cryoden.io.mrc_slabs import ArrayVolume, SlabWriter, VolumeReader
from cryoden.models import LoadedModel, ModelConfig
from cryoden.nets import NetworkConfig, build_network
from cryoden.nets.analysis import receptive_field

pytestmark = pytest.mark.usefixtures("one_thread")

CONFIG = NetworkConfig(dims=3, base_channels=4, depth=2)
#: One level: a receptive field small enough for boxes that hold several fields.
SHALLOW = NetworkConfig(dims=3, base_channels=4, depth=1)


class _PlusInput(nn.Module):
    """``x + network(x)`` with a zero head: the identity, with the network's config."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network
        self.config = network.config

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.network(x)


def _model(config: NetworkConfig = CONFIG, *, identity: bool = False) -> LoadedModel:
    torch.manual_seed(3)
    net = build_network(config).eval()
    if identity:
        nn.init.zeros_(net.head.weight)
        nn.init.zeros_(net.head.bias)
        net = _PlusInput(net).eval()
    return LoadedModel(network=net, config=ModelConfig(network=config), path="memory.safetensors")


def _whole(model: LoadedModel, volume: np.ndarray, denoiser: VolumeDenoiser) -> np.ndarray:
    """The network on the whole volume at once, normalised as the denoiser normalises."""
    norm = denoiser.normalization([ArrayVolume(volume)])
    with torch.no_grad():
        out = model.network(torch.from_numpy(norm.apply(volume))[None, None])[0, 0]
    return norm.invert(out.numpy())


def test_the_identity_model_keeps_the_volume_and_its_scale(rng):
    volume = (rng.normal(size=(11, 20, 23)) * 40 + 300).astype(np.float32)
    out = VolumeDenoiser(_model(identity=True), device="cpu", precision="fp32", tile=16)(volume)
    assert out.dtype == np.float32 and out.shape == volume.shape
    np.testing.assert_allclose(out, volume, rtol=1e-6, atol=1e-3)


@pytest.mark.parametrize("shape", [(61, 75, 83), (5, 7, 9)])
def test_tiled_equals_whole_volume_in_fp32(rng, shape):
    """Margins of the whole receptive field: tiled equals whole to float rounding, for odd
    sizes and for a volume smaller than a box on every axis."""
    model = _model(SHALLOW)
    volume = rng.normal(size=shape).astype(np.float32)
    denoiser = VolumeDenoiser(model, device="cpu", precision="fp32")
    whole = _whole(model, volume, denoiser)
    norm = denoiser.normalization([ArrayVolume(volume)])
    out = np.empty_like(volume)

    def keep(start: int, sections: np.ndarray) -> None:
        out[start : start + sections.shape[0]] = norm.invert(sections)

    margin = receptive_field(SHALLOW) // 2
    predict_tiled_volume(
        denoiser.predict_normalized, lambda i: norm.apply(volume[i])[None], volume.shape,
        keep, tile=tuple(min(52, n) for n in shape), overlap=2 * margin + 4, batch=3, align=2,
        margin=margin,
    )  # fmt: skip
    assert np.abs(out - whole).max() <= 1e-5 * np.abs(whole).max()


def test_default_plan_tiles_are_invisible_in_fp32_and_bf16(rng):
    model = _model(SHALLOW)
    volume = rng.normal(size=(70, 80, 90)).astype(np.float32)
    for precision, tolerance in (("fp32", 1e-4), ("bf16", 2**-6)):
        whole = VolumeDenoiser(model, device="cpu", precision=precision, tile=(70, 80, 90))
        denoiser = VolumeDenoiser(model, device="cpu", precision=precision, tile=56, batch=3)
        plan = denoiser.plan(volume.shape)
        assert plan.tile == (56, 56, 56) and plan.margin == denoiser.margin
        reference, tiled = whole(volume), denoiser(volume)
        assert np.abs(tiled - reference).max() <= tolerance * np.abs(reference).max(), precision


def test_the_plan_bounds_the_held_sections_and_covers_axes_evenly():
    denoiser = VolumeDenoiser(_model(), device="cpu", precision="bf16", slab_memory_mb=1024)
    plan = denoiser.plan((300, 1024, 1024), channels=2)
    tz, ty, tx = plan.tile
    assert tz < 300 and (2 + 1) * 4 * tz * 1024 * 1024 <= 1024 * 2**20  # halves, accumulator
    assert plan.overlap < min(plan.tile) // 2
    stride = ty - plan.overlap
    n = -(-(1024 - plan.overlap) // stride)
    assert n * ty - (n - 1) * plan.overlap < 1024 + ty  # little repeated work
    assert all(side % CONFIG.size_multiple == 0 for side in plan.tile)


def test_halves_are_denoised_each_and_averaged(rng):
    model = _model()
    even = rng.normal(size=(12, 18, 20)).astype(np.float32)
    odd = rng.normal(size=(12, 18, 20)).astype(np.float32)
    denoiser = VolumeDenoiser(model, device="cpu", precision="fp32")
    both = denoiser([even, odd])
    shared = denoiser.normalization([ArrayVolume(even), ArrayVolume(odd)])
    each = [denoiser(v, normalization=shared) for v in (even, odd)]
    np.testing.assert_allclose(both, 0.5 * (each[0] + each[1]), rtol=1e-5, atol=1e-5)


def test_file_to_file_matches_memory_and_holds_no_volume_sized_array(rng, tmp_path):
    model = _model(NetworkConfig(dims=3, base_channels=2, depth=1))
    volume = rng.normal(size=(128, 96, 96)).astype(np.float32) * 5 + 2
    write_mrc(tmp_path / "in.mrc", volume, voxel_size_angstrom=(2.0, 2.0, 2.0))
    denoiser = VolumeDenoiser(model, device="cpu", precision="fp32", tile=(8, 48, 48))
    expected = denoiser(volume)
    reader = VolumeReader(tmp_path / "in.mrc")
    normalization = denoiser.normalization([reader])  # a bounded sample, fitted beforehand
    tracemalloc.start()
    with SlabWriter(tmp_path / "out.mrc", reader.shape, voxel_size_angstrom=2.0) as writer:
        denoiser.denoise_files([reader], writer, normalization=normalization)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # a few copies of one row of boxes (8 of 128 sections), never the volume (input or output)
    assert peak < 0.4 * volume.nbytes
    written = VolumeReader(tmp_path / "out.mrc")
    np.testing.assert_allclose(written.sections(0, 128), expected, rtol=1e-6, atol=1e-6)
    assert written.voxel_size_angstrom == (2.0, 2.0, 2.0)


def test_predict_tiled_volume_is_exact_for_the_identity_at_any_layout(rng):
    volume = rng.normal(size=(13, 10, 17)).astype(np.float32)
    out = np.full_like(volume, np.nan)

    def keep(start: int, sections: np.ndarray) -> None:
        out[start : start + sections.shape[0]] = sections

    predict_tiled_volume(
        lambda x: x[:, :1] * 2.0, lambda i: volume[None, i], volume.shape, keep,
        tile=(6, 8, 7), overlap=2, batch=4,
    )  # fmt: skip
    np.testing.assert_allclose(out, 2.0 * volume, rtol=1e-6)


def test_bad_inputs_are_refused_in_one_line(rng, tmp_path):
    model = _model()
    denoiser = VolumeDenoiser(model, device="cpu", precision="fp32")
    with pytest.raises(ParameterError, match="expected a volume"):
        denoiser(rng.normal(size=(16, 16)).astype(np.float32))
    with pytest.raises(ParameterError, match="halves differ in shape"):
        denoiser([np.zeros((8, 8, 8), np.float32), np.zeros((8, 8, 9), np.float32)])
    bad = rng.normal(size=(8, 8, 8)).astype(np.float32)
    bad[3, 2, 1] = np.nan
    with pytest.raises(ParameterError, match="NaN"):
        denoiser(bad)
    flat = LoadedModel(
        network=build_network(NetworkConfig(base_channels=4, depth=2)),
        config=ModelConfig(network=NetworkConfig(base_channels=4, depth=2)), path="flat",
    )  # fmt: skip
    with pytest.raises(ParameterError, match="is a 2D model"):
        VolumeDenoiser(flat)
    for options, needle in (({"tile": 0}, "tile"), ({"precision": "fp8"}, "precision")):
        with pytest.raises(ParameterError, match=needle):
            VolumeDenoiser(model, **options)
    image = tmp_path / "image.mrc"
    write_mrc(image, np.zeros((16, 16), np.float32))
    with pytest.raises(InputFileError, match="is a 2D image"):
        VolumeReader(image)


def test_a_failed_write_leaves_no_output(rng, tmp_path):
    model = _model()
    volume = rng.normal(size=(16, 16, 16)).astype(np.float32)
    volume[12, 3, 3] = np.inf  # found only when that row of boxes is read
    write_mrc(tmp_path / "in.mrc", np.nan_to_num(volume, posinf=0.0))
    denoiser = VolumeDenoiser(model, device="cpu", precision="fp32", tile=8, overlap=2)
    with pytest.raises(ParameterError), SlabWriter(tmp_path / "out.mrc", volume.shape) as out:
        denoiser.denoise_volumes([ArrayVolume(volume)], out.write)
    assert list(tmp_path.iterdir()) == [tmp_path / "in.mrc"]


def test_half_map_check_of_the_identity_equals_the_raw_halves(rng):
    clean = np.cumsum(np.cumsum(rng.normal(size=(24, 24, 24)), axis=1), axis=2)
    even = (clean + 3 * rng.normal(size=clean.shape)).astype(np.float32)
    odd = (clean + 3 * rng.normal(size=clean.shape)).astype(np.float32)
    denoiser = VolumeDenoiser(_model(identity=True), device="cpu", precision="fp32")
    check = half_map_fsc(denoiser, ArrayVolume(even), ArrayVolume(odd), box_px=16)
    np.testing.assert_allclose(check.denoised.correlation, check.raw.correlation, atol=1e-5)
    summary = check.summary()
    assert summary["box_zyx"] == [[4, 20], [4, 20], [4, 20]]
    # the clean volume itself, as "denoised even", correlates better with the odd half
    raw, ideal = half_map_fsc_arrays(clean, even, odd)
    assert ideal.correlation[1:6].mean() > raw.correlation[1:6].mean()


def test_soft_box_window_falls_to_zero_at_the_faces():
    window = soft_box_window((16, 16, 16))
    assert window[8, 8, 8] == 1.0 and window.min() > 0
    assert window[0].max() < window[1].max() < window[2].max() == 1.0


def test_the_image_denoiser_refuses_a_3d_model():
    from cryoden.inference import Denoiser

    with pytest.raises(ParameterError, match="is a 3D model"):
        Denoiser(_model())
