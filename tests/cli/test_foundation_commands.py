"""noise, filter and evaluate on real files, and their answers to bad input."""

from __future__ import annotations

import json

import mrcfile
import numpy as np
import pytest

from cryoden.io import read_mrc, write_mrc
from cryoden.metrics import frc


@pytest.fixture
def clean_file(tmp_path, blob_image):
    path = tmp_path / "clean.mrc"
    write_mrc(path, blob_image, voxel_size_angstrom=1.7, origin_angstrom=(3.0, 4.0, 0.0))
    return path


def _one_error_line(result, *needles):
    assert result.code != 0
    lines = [line for line in result.err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.err
    assert "Traceback" not in result.err
    for needle in needles:
        assert needle in lines[0], lines[0]


def _one_failed_input(result, *needles):
    """A batch with one bad input among good ones: status 1, exactly one error line (naming
    the file and the problem) among the log lines, no traceback, and a summary on stdout."""
    assert result.code == 1, result.err
    assert "Traceback" not in result.err + result.out
    errors = [line for line in result.err.splitlines() if line.startswith("cryoden: error: ")]
    assert len(errors) == 1, result.err
    for needle in needles:
        assert needle in errors[0], errors[0]
    assert "1 failed" in result.out


def test_noise_command_hits_the_snr_and_keeps_the_header(cli, tmp_path, clean_file):
    out = tmp_path / "noisy.mrc"
    result = cli("noise", clean_file, "-o", out, "--snr", "0.5", "--seed", "3")
    assert result.code == 0, result.err
    noisy = read_mrc(out)
    clean = read_mrc(clean_file)
    assert noisy.voxel_size_angstrom == clean.voxel_size_angstrom
    assert noisy.origin_angstrom == clean.origin_angstrom
    snr = np.var(clean.data) / np.var(noisy.data - clean.data)
    assert snr == pytest.approx(0.5, rel=0.1)
    again = tmp_path / "again.mrc"
    cli("noise", clean_file, "-o", again, "--snr", "0.5", "--seed", "3")
    assert np.array_equal(read_mrc(again).data, noisy.data)


def test_noise_refuses_to_overwrite_its_input(cli, clean_file):
    before = clean_file.read_bytes()
    result = cli("noise", clean_file, "-o", clean_file, "--snr", "0.1")
    _one_error_line(result, "clean.mrc")
    assert clean_file.read_bytes() == before


def test_filter_writes_basename_outputs_that_are_lowpassed(cli, tmp_path, clean_file):
    out_dir = tmp_path / "filtered"
    result = cli("filter", "lowpass", clean_file, "-o", out_dir, "--cutoff", "0.2")
    assert result.code == 0, result.err
    out = read_mrc(out_dir / "clean.mrc")
    assert out.voxel_size_angstrom == read_mrc(clean_file).voxel_size_angstrom
    spectrum = np.abs(np.fft.fft2(out.data))
    fy = np.abs(np.fft.fftfreq(out.data.shape[0]))[:, None] * 2
    fx = np.abs(np.fft.fftfreq(out.data.shape[1]))[None, :] * 2
    assert spectrum[np.hypot(fy, fx) > 0.25].max() < 1e-3 * spectrum.max()
    assert (out_dir / "cryoden_provenance.json").exists()


@pytest.mark.parametrize("name", ["mean", "median", "gaussian", "highpass", "bandpass", "wiener"])
def test_every_filter_runs(cli, tmp_path, clean_file, name):
    args = {
        "highpass": ["--cutoff", "0.1"],
        "bandpass": ["--low-cutoff", "0.05", "--cutoff", "0.5"],
    }
    result = cli("filter", name, clean_file, "-o", tmp_path / name, *args.get(name, []))
    assert result.code == 0, result.err
    assert read_mrc(tmp_path / name / "clean.mrc").data.dtype == np.float32


def test_evaluate_json_schema(cli, tmp_path, clean_file, blob_image):
    noisy = tmp_path / "noisy.mrc"
    write_mrc(
        noisy,
        blob_image + np.random.default_rng(0).normal(0, 0.2, blob_image.shape).astype(np.float32),
    )
    result = cli("evaluate", "--reference", clean_file, clean_file, noisy, "--json")
    assert result.code == 0, result.err
    rows = json.loads(result.out)
    assert [r["image"] for r in rows] == [str(clean_file), str(noisy)]
    perfect, scored = rows
    assert perfect["cc"] == pytest.approx(1.0)
    assert perfect["psnr"] == "inf"  # strict JSON has no Infinity
    assert "Infinity" not in result.out and "NaN" not in result.out
    assert set(scored) == {"image", "cc", "psnr", "ssim", "frc", "frc_resolution"}
    assert set(scored["frc_resolution"]) == {"0.5", "0.143"}
    assert len(scored["frc"]["frequency"]) == len(scored["frc"]["correlation"])
    assert 0 < scored["frc"]["frequency"][-1] <= 1.0 + 1e-9
    expected = frc(blob_image, read_mrc(noisy).data)
    np.testing.assert_allclose(scored["frc"]["correlation"], expected.correlation, atol=1e-9)
    table = cli("evaluate", "--reference", clean_file, noisy)
    assert table.code == 0 and "PSNR" in table.out


# --- bad input: one line naming the file and the problem, non-zero exit, no partial output ---


def test_missing_file(cli, tmp_path):
    out_dir = tmp_path / "out"
    result = cli("filter", "mean", tmp_path / "absent.mrc", "-o", out_dir)
    _one_error_line(result, "absent.mrc", "no such file")
    assert not any(out_dir.glob("*.mrc")) if out_dir.exists() else True


def test_truncated_file(cli, tmp_path, clean_file):
    cut = tmp_path / "cut.mrc"
    cut.write_bytes(clean_file.read_bytes()[:-500])
    result = cli("filter", "mean", clean_file, cut, "-o", tmp_path / "out")
    _one_failed_input(result, "cut.mrc", "truncated")
    assert (tmp_path / "out" / "clean.mrc").exists()  # the good input is filtered
    assert not (tmp_path / "out" / "cut.mrc").exists()


def test_non_mrc_file(cli, tmp_path):
    text = tmp_path / "notes.mrc"
    text.write_text("this is not an image\n" * 100)
    result = cli("noise", text, "-o", tmp_path / "n.mrc", "--snr", "0.1")
    _one_error_line(result, "notes.mrc", "not an MRC file")
    assert not (tmp_path / "n.mrc").exists()


def test_empty_image(cli, tmp_path):
    empty = tmp_path / "empty.mrc"
    with mrcfile.new(empty) as mrc:
        mrc.set_data(np.zeros((0, 0), np.float32))
    result = cli("evaluate", "--reference", empty, empty)
    _one_error_line(result, "empty.mrc", "empty")


def test_nan_image(cli, tmp_path):
    nan = tmp_path / "nan.mrc"
    with mrcfile.new(nan) as mrc:
        mrc.set_data(np.full((16, 16), np.nan, np.float32))
    result = cli("filter", "gaussian", nan, "-o", tmp_path / "out")
    _one_error_line(result, "nan.mrc", "NaN")
    assert not (tmp_path / "out" / "nan.mrc").exists()


def test_mismatched_shapes(cli, tmp_path, clean_file):
    other = tmp_path / "other.mrc"
    write_mrc(other, np.ones((32, 32), np.float32))
    result = cli("evaluate", "--reference", clean_file, other, "--json")
    _one_error_line(result, "other.mrc", "does not match")
    assert result.out == ""


def test_unknown_filter(cli, tmp_path, clean_file):
    result = cli("filter", "bilateral", clean_file, "-o", tmp_path / "out")
    _one_error_line(result, "bilateral", "unknown filter")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("cutoff", ["0", "1.5", "-0.2"])
def test_cutoff_outside_nyquist_range(cli, tmp_path, clean_file, cutoff):
    result = cli("filter", "lowpass", clean_file, "-o", tmp_path / "out", "--cutoff", cutoff)
    _one_error_line(result, "cutoff", "(0, 1]")
    assert not (tmp_path / "out" / "clean.mrc").exists()
