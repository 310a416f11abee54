"""``cryoden inspect noise`` and ``cryoden check``: known noise recovered, estimates against the
truth, JSON schema, one-line errors without partial output, and the real particle stacks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from cryoden.io import write_mrc
from cryoden.models import ModelConfig, save_model
from cryoden.nets import NetworkConfig, build_network

A_X, A_Y = 0.2, 0.1  # three-tap kernels [a, 1, a]: lag-1 correlation 2a / (1 + 2a²)


def _rho(a: float) -> float:
    return 2 * a / (1 + 2 * a * a)


def _noise(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    white = rng.normal(size=(*shape[:-2], shape[-2] + 2, shape[-1] + 2))
    for axis, a in ((-1, A_X), (-2, A_Y)):
        taps = np.array([a, 1.0, a]) / np.sqrt(1 + 2 * a * a)
        white = ndimage.correlate1d(white, taps, axis=axis, mode="constant")
    return white[..., 1:-1, 1:-1]


@pytest.fixture
def dataset(tmp_path: Path, blob_image: np.ndarray, rng: np.random.Generator) -> dict[str, Path]:
    """Two exposures: a smooth clean image at SNR 0.1 against unit correlated noise, as even/odd
    halves in a/ and b/, the clean images in clean/ and single images (= a) in single/."""
    folders = {name: tmp_path / name for name in ("a", "b", "clean", "single")}
    for folder in folders.values():
        folder.mkdir()
    for i in range(2):
        clean = np.roll(blob_image, 17 * i, axis=1).astype(np.float64)
        clean = np.sqrt(0.1) * (clean - clean.mean()) / clean.std()
        na, nb = _noise((2, *clean.shape), rng)
        for name, image in (("a", clean + na), ("b", clean + nb), ("clean", clean),
                            ("single", clean + na)):  # fmt: skip
            write_mrc(folders[name] / f"m{i}.mrc", image.astype(np.float32), voxel_size_angstrom=2)
    return folders


def test_inspect_noise_recovers_a_known_correlation(cli, dataset, tmp_path):
    for args in (["--a", dataset["a"], "--b", dataset["b"]], [dataset["single"]]):
        result = cli("inspect", "noise", *args, "--json")
        assert result.code == 0, result.err
        report = json.loads(result.out)
        assert report["source"] == ("pairs" if "--a" in args else "single")
        assert report["autocorrelation"]["x"][0] == pytest.approx(_rho(A_X), abs=0.05)
        assert report["autocorrelation"]["y"][0] == pytest.approx(_rho(A_Y), abs=0.05)
        assert len(report["autocorrelation"]["x"]) == 3
        assert report["noise_variance"] == pytest.approx(1.0, rel=0.1)
        assert report["snr"] == pytest.approx(0.1, abs=0.05)
        assert report["verdict"] == "strong" and "--blind-spot auto" in report["advice"]
        assert [row["image"] for row in report["images"]] == [
            str(dataset["a" if "--a" in args else "single"] / f"m{i}.mrc") for i in range(2)
        ]
    plot = tmp_path / "noise.png"
    result = cli("inspect", "noise", dataset["single"], "--plot", plot)
    assert result.code == 0 and plot.read_bytes()[:4] == b"\x89PNG"
    assert "correlates 0.3" in result.out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--a", "A"], "--a and --b go together"),
        (["S", "--a", "A", "--b", "B"], "not both"),
        (["--a", "A", "--b", "A/m0.mrc"], "pair in order"),
        ([], "give IMAGES"),
    ],
)
def test_inspect_noise_bad_inputs(cli, dataset, tmp_path, args, message):
    names = {"A": dataset["a"], "B": dataset["b"], "S": dataset["single"]}
    argv = [str(names.get(a, a)).replace("A/", f"{dataset['a']}/") for a in args]
    plot = tmp_path / "never.png"
    result = cli("inspect", "noise", *argv, "--plot", plot)
    assert result.code == 1 and message in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert not plot.exists()


def _true_mse(dataset: dict[str, Path], denoise) -> float:
    from cryoden.io import read_mrc

    errors = [
        np.mean((denoise(read_mrc(dataset["a"] / f"m{i}.mrc").data)
                 - read_mrc(dataset["clean"] / f"m{i}.mrc").data) ** 2)
        for i in range(2)
    ]  # fmt: skip
    return float(np.mean(errors))


def test_check_a_filter_against_the_truth(cli, dataset):
    result = cli("check", "--filter", "gaussian", "--sigma", "2",
                 "--a", dataset["a"], "--b", dataset["b"], "--block", "16", "--json")  # fmt: skip
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["mode"] == "pairs"
    whole = report["set"]
    for key in ("noise_variance", "estimated_mse", "estimated_mse_uncertainty", "gain_db"):
        assert isinstance(whole[key], float)
        assert all(key in row for row in report["images"])
    true = _true_mse(dataset, lambda x: ndimage.gaussian_filter(x, 2.0, truncate=4.0))
    assert abs(whole["estimated_mse"] - true) < 3 * whole["estimated_mse_uncertainty"]
    assert whole["gain_db"] > 3  # a blur of a smooth image at SNR 0.1 helps
    row = report["images"][0]
    assert set(row["frc"]) == {"frequency", "raw", "denoised"}
    assert set(row["frc_0143"]) == {"raw", "denoised"}
    assert 0 < row["residual"]["variance_ratio"] < 1.2
    single = cli("check", "--filter", "gaussian", "--sigma", "2", dataset["single"], "--json")
    assert single.code == 0, single.err
    assert json.loads(single.out)["mode"] == "single"
    assert json.loads(single.out)["set"]["estimated_mse"] == pytest.approx(true, abs=0.05)


def test_check_a_model(cli, dataset, tmp_path, one_thread):
    config = NetworkConfig(base_channels=4, depth=2)
    model = save_model(tmp_path / "m.safetensors", build_network(config), ModelConfig(config))
    result = cli("check", "--model", model, "--a", dataset["a"], "--b", dataset["b"],
                 "--threads", "1", "--json")  # fmt: skip
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["set"]["n_pixels"] == 2 * 96 * 80
    assert np.isfinite(report["set"]["estimated_mse"])


def test_check_bad_inputs(cli, dataset):
    both = cli("check", "--filter", "gaussian", "--model", "m", "--a", dataset["a"],
               "--b", dataset["b"])  # fmt: skip
    assert both.code == 1 and "exactly one of --model and --filter" in both.err
    unknown = cli("check", "--filter", "nope", dataset["single"])
    assert unknown.code == 1 and "unknown filter" in unknown.err
    missing = cli("check", "--filter", "gaussian", dataset["single"] / "none.mrc")
    assert missing.code == 1 and "none.mrc" in missing.err


@pytest.mark.parametrize("name", ["relion31.mrcs", "aspire_sample.mrcs"])
def test_real_particle_noise_is_not_white(cli, shared_data, name):
    path = shared_data / "particles" / name
    if not path.is_file():
        pytest.skip(f"{path} not found")
    result = cli("inspect", "noise", path, "--json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    adjacent = max(abs(report["autocorrelation"]["x"][0]), abs(report["autocorrelation"]["y"][0]))
    assert adjacent > 0.08
