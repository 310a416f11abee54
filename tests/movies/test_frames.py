"""Even/odd frame sums and global drift correction on synthetic movies."""

from __future__ import annotations

import mrcfile
import numpy as np
import pytest
import tifffile

from cryoden.errors import InputFileError
from cryoden.movies import estimate_global_drift, even_odd_sums, shift_image


def _specimen(size: int = 128) -> np.ndarray:
    rng = np.random.default_rng(0)
    img = np.zeros((size, size))
    yy, xx = np.mgrid[0:size, 0:size]
    for _ in range(25):
        cy, cx = rng.uniform(10, size - 10, 2)
        img += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * rng.uniform(2, 5) ** 2))
    return img


def _movie(shifts: np.ndarray, dose: float = 20.0, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = _specimen()
    frames = [shift_image(base, tuple(s)) for s in shifts]
    return np.stack([rng.poisson(dose * (1 + np.clip(f, 0, None))) for f in frames]).astype(
        np.float32
    )


def test_shift_image_round_trip():
    img = _specimen().astype(np.float32)
    back = shift_image(shift_image(img, (2.5, -1.25)), (-2.5, 1.25))
    np.testing.assert_allclose(back, img, atol=1e-4)


def test_drift_is_recovered_to_subpixel_precision():
    true = np.cumsum(np.full((10, 2), [0.7, -0.4]), axis=0)
    true -= true.mean(axis=0)
    movie = _movie(true)
    est = estimate_global_drift(movie)
    assert np.abs(est - true).max() < 0.3


def test_even_odd_sums_are_the_frame_sums(tmp_path):
    movie = _movie(np.zeros((6, 2)))
    path = tmp_path / "movie.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(movie)
        mrc.voxel_size = 1.1
    sums = even_odd_sums(path)
    np.testing.assert_allclose(sums.even, movie[0::2].sum(axis=0), rtol=1e-6)
    np.testing.assert_allclose(sums.odd, movie[1::2].sum(axis=0), rtol=1e-6)
    assert sums.n_frames == 6
    assert sums.pixel_size_angstrom == pytest.approx(1.1, rel=1e-5)


def test_even_odd_noise_is_independent_and_signal_shared(tmp_path):
    movie = _movie(np.zeros((20, 2)), dose=5.0)
    path = tmp_path / "movie.tif"
    tifffile.imwrite(path, movie)
    sums = even_odd_sums(path)
    signal = _specimen()
    ne = sums.even - sums.even.mean()
    no = sums.odd - sums.odd.mean()
    # Both correlate with the specimen; their noise parts do not correlate with each other.
    assert np.corrcoef(ne.ravel(), signal.ravel())[0, 1] > 0.3
    resid_e = ne - np.polyfit(signal.ravel(), ne.ravel(), 1)[0] * (signal - signal.mean())
    resid_o = no - np.polyfit(signal.ravel(), no.ravel(), 1)[0] * (signal - signal.mean())
    assert abs(np.corrcoef(resid_e.ravel(), resid_o.ravel())[0, 1]) < 0.05


def test_alignment_sharpens_a_drifting_movie(tmp_path):
    true = np.cumsum(np.full((8, 2), [1.5, 1.0]), axis=0)
    true -= true.mean(axis=0)
    movie = _movie(true, dose=50.0)
    path = tmp_path / "drift.mrcs"
    with mrcfile.new(path) as mrc:
        mrc.set_data(movie)
    raw = even_odd_sums(path)
    aligned = even_odd_sums(path, align=True)
    signal = _specimen()

    def cc(x: np.ndarray) -> float:
        return float(np.corrcoef(x.ravel(), signal.ravel())[0, 1])

    assert cc(aligned.even + aligned.odd) > cc(raw.even + raw.odd) + 0.05
    assert np.abs(aligned.shifts_px - true).max() < 0.5


def test_gain_is_applied(tmp_path):
    movie = np.ones((4, 32, 32), np.float32)
    path = tmp_path / "flat.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(movie)
    gain = np.full((32, 32), 2.0, np.float32)
    sums = even_odd_sums(path, gain=gain)
    np.testing.assert_allclose(sums.even, 4.0)


def test_single_frame_and_missing_movies_are_refused(tmp_path):
    path = tmp_path / "one.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(np.ones((16, 16), np.float32))
    with pytest.raises(InputFileError, match="one.mrc.*at least 2 frames"):
        even_odd_sums(path)
    with pytest.raises(InputFileError, match="nope.tiff"):
        even_odd_sums(tmp_path / "nope.tiff")
