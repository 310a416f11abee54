"""``cryoden train n2v --blind-spot / --mask`` and ``cryoden models info`` on tiny data."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from cryoden.cli.main import main
from cryoden.cli.sample_masks import source_files
from cryoden.io import write_mrc
from cryoden.models import load_model
from cryoden.noise.correlated import correlated_gaussian_noise

from .helpers import blob_images

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = ("--base-channels", "4", "--depth", "2", "--patch", "24", "--batch", "2", "--steps", "2",
        "--threads", "1", "--no-preview")  # fmt: skip


def _cli(capsys, monkeypatch, *args):
    monkeypatch.setattr(sys, "argv", ["cryoden", *map(str, args)])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_line(code, err, *needles):
    """Exit status 1, no traceback, and one error line holding every needle."""
    errors = [line for line in err.splitlines() if line.startswith("cryoden: error: ")]
    assert code == 1 and len(errors) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in errors[0], errors[0]


def _write_images(folder, carbon: bool):
    """Three 64 x 64 noisy images whose noise correlates along x only (0.3); with ``carbon``,
    a thick strip of "carbon" on the left of each."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i, clean in enumerate(blob_images(3, 64, seed=2)):
        noisy = clean + correlated_gaussian_noise((64, 64), (0.0, 0.3), rng=rng, sigma=0.5)
        if carbon:
            noisy[:, :16] += 3.0
        write_mrc(folder / f"im{i}.mrc", noisy.astype(np.float32), voxel_size_angstrom=2.0)
    return folder


@pytest.fixture
def images(tmp_path):
    return _write_images(tmp_path / "images", carbon=False)


@pytest.fixture
def carbon_images(tmp_path):
    return _write_images(tmp_path / "carbon_images", carbon=True)


def test_default_blind_spot_follows_the_noise_and_models_info_shows_it(
    capsys, monkeypatch, tmp_path, images
):
    out = tmp_path / "model"
    code, _, err = _cli(
        capsys, monkeypatch, "train", "n2v", "--images", images, "--out", out, *TINY
    )
    assert code == 0, err
    options = load_model(out).config.scheme_options
    assert options["blind_spot"] == "structured:2,0"  # correlated along x only
    assert options["noise_correlation"]["x"][0] > 0.2 > abs(options["noise_correlation"]["y"][0])
    log = json.loads((out / "training_log.json").read_text())
    assert log["parameters"]["blind_spot"] == "structured:2,0"
    code, text, err = _cli(capsys, monkeypatch, "models", "info", out)
    assert code == 0, err
    assert "blind spot:       structured:2,0 (5 x 1 pixels" in text
    assert "noise:            correlation x 0." in text
    code, text, _ = _cli(capsys, monkeypatch, "models", "info", out, "--json")
    assert json.loads(text)["scheme_options"]["blind_spot"] == "structured:2,0"


def test_a_blind_spot_given_by_hand_is_kept(capsys, monkeypatch, tmp_path, images):
    out = tmp_path / "model"
    code, _, err = _cli(
        capsys, monkeypatch, "train", "n2v", "--images", images, "--out", out,
        "--blind-spot", "pd:2", *TINY,
    )  # fmt: skip
    assert code == 0, err
    assert load_model(out).config.scheme_options["blind_spot"] == "pd:2"


@pytest.mark.parametrize("value", ["structured:9,9", "cross", "pd:5"])
def test_a_bad_blind_spot_fails_in_one_line_before_training(
    capsys, monkeypatch, tmp_path, images, value
):
    out = tmp_path / "model"
    code, _, err = _cli(
        capsys, monkeypatch, "train", "n2v", "--images", images, "--out", out,
        "--blind-spot", value, *TINY,
    )  # fmt: skip
    _one_line(code, err, "--blind-spot")
    assert not out.exists()


def test_mask_auto_leaves_the_carbon_out(capsys, monkeypatch, tmp_path, carbon_images):
    out = tmp_path / "model"
    code, _, err = _cli(
        capsys, monkeypatch, "train", "n2v", "--images", carbon_images, "--out", out,
        "--mask", "auto",
        *TINY,
    )  # fmt: skip
    assert code == 0, err
    data = load_model(out).config.training["data"]
    assert data["mask"] == "auto"
    assert 0.3 < data["mask_sample_fraction"] < 0.8


def test_mask_files_one_for_all_or_one_per_image(capsys, monkeypatch, tmp_path, images):
    one = np.zeros((64, 64), np.float32)
    one[:, 20:] = 1.0
    write_mrc(tmp_path / "one.mrc", one)
    write_mrc(tmp_path / "each.mrcs", np.stack([one, one, np.ones_like(one)]))
    for mask, fraction in (("one.mrc", 44 / 64), ("each.mrcs", (2 * 44 / 64 + 1) / 3)):
        out = tmp_path / f"model_{mask}"
        code, _, err = _cli(
            capsys, monkeypatch, "train", "ne2ne", "--images", images, "--out", out,
            "--mask", tmp_path / mask, *TINY,
        )  # fmt: skip
        assert code == 0, err
        data = load_model(out).config.training["data"]
        assert data["mask_sample_fraction"] == pytest.approx(fraction, abs=1e-3)


@pytest.mark.parametrize(
    ("mask", "needle"),
    [
        (np.ones((32, 64), np.float32), "training image 0"),  # wrong size
        (np.ones((2, 64, 64), np.float32), "one per training image (3)"),  # wrong count
        (np.zeros((64, 64), np.float32), "no pixel as sample"),
    ],
)
def test_mask_files_that_do_not_fit_fail_in_one_line(
    capsys, monkeypatch, tmp_path, images, mask, needle
):
    path = tmp_path / ("mask.mrcs" if mask.ndim == 3 else "mask.mrc")
    write_mrc(path, mask)
    out = tmp_path / "model"
    code, _, err = _cli(
        capsys, monkeypatch, "train", "n2v", "--images", images, "--out", out, "--mask", path,
        *TINY,
    )  # fmt: skip
    _one_line(code, err, path.name, needle)
    assert not out.exists()


def test_source_files_group_the_sections_of_a_stack(tmp_path):
    stack = tmp_path / "s.mrcs"
    stack.write_bytes(b"")
    names = [str(tmp_path / "a.mrc"), f"{stack}:0", f"{stack}:1", str(tmp_path / "b.mrc")]
    assert source_files(names) == [str(tmp_path / "a.mrc"), str(stack), str(tmp_path / "b.mrc")]


def test_ne2ne_records_the_noise_and_warns_when_it_is_correlated(
    capsys, monkeypatch, tmp_path, images
):
    out = tmp_path / "model"
    code, _, err = _cli(
        capsys, monkeypatch, "train", "ne2ne", "--images", images, "--out", out, *TINY
    )
    assert code == 0, err
    assert "Neighbor2Neighbor assumes pixel-independent noise" in " ".join(err.split())
    model = load_model(out)
    assert model.config.scheme_options == {"input_image": "cell-mean"}
    assert model.config.training["data"]["noise_correlation"]["x"][0] > 0.2
    code, text, err = _cli(capsys, monkeypatch, "models", "info", out)
    assert code == 0 and "noise:            correlation x 0." in text, err
