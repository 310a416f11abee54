"""PNG/TIFF previews and atomic output."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
import tifffile
from PIL import Image

from cryoden.errors import OutputFileError, ParameterError
from cryoden.io import atomic_output, export_preview, to_uint8


@pytest.mark.parametrize("name", ["preview.png", "preview.tif", "preview.tiff"])
def test_preview_is_8_bit_with_percentile_contrast(tmp_path, rng, name):
    image = rng.normal(size=(31, 20)).astype(np.float32)
    path = tmp_path / name
    export_preview(path, image)
    if name.endswith(".png"):
        with Image.open(path) as png:
            assert png.mode == "L"
            pixels = np.asarray(png)
    else:
        pixels = tifffile.imread(path)
    assert pixels.dtype == np.uint8 and pixels.shape == image.shape
    assert pixels.min() == 0 and pixels.max() == 255
    # the brightest pixel of the image is white, the darkest black (clipped at the percentiles)
    assert pixels.flat[np.argmax(image)] == 255 and pixels.flat[np.argmin(image)] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_to_uint8_is_monotone_and_handles_constant_and_nan():
    ramp = np.linspace(-3, 5, 40).reshape(5, 8)
    out = to_uint8(ramp, low_percentile=0, high_percentile=100)
    assert out[0, 0] == 0 and out[-1, -1] == 255
    assert np.all(np.diff(out.ravel().astype(int)) >= 0)
    assert not to_uint8(np.full((4, 4), 7.0)).any()
    with_nan = ramp.copy()
    with_nan[0, 1] = np.nan
    assert to_uint8(with_nan)[0, 1] == 0


def test_preview_rejects_bad_arguments(tmp_path):
    image = np.zeros((4, 4), dtype=np.float32)
    with pytest.raises(ParameterError, match=r"\.jpg"):
        export_preview(tmp_path / "a.jpg", image)
    with pytest.raises(ParameterError, match=r"\(2, 4, 4\)"):
        export_preview(tmp_path / "a.png", np.zeros((2, 4, 4)))
    with pytest.raises(ParameterError, match="percentiles"):
        export_preview(tmp_path / "a.png", image, low_percentile=90, high_percentile=10)
    assert list(tmp_path.iterdir()) == []


def test_atomic_output_renames_only_on_success(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_output(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
    with atomic_output(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_atomic_output_uses_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_output(tmp_path / "out.bin") as tmp:
            tmp.write_bytes(b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out.bin").stat().st_mode) == 0o644


def test_atomic_output_needs_an_existing_folder(tmp_path):
    with (
        pytest.raises(OutputFileError, match="does not exist"),
        atomic_output(tmp_path / "x" / "y"),
    ):
        pass
