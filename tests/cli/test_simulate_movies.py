"""`cryoden simulate --movies`: the files it says it writes, and one-line refusals."""

from __future__ import annotations

import json

import mrcfile
import numpy as np
import pytest
import tifffile

from cryoden.cli.simulate_movies import FLAGS
from cryoden.movies.frames import movie_info
from cryoden.simulation.detector import DetectorModel
from cryoden.simulation.drift import DriftModel
from cryoden.simulation.ice import IceModel
from cryoden.simulation.movie_config import MovieConfig

SMALL = ["--size", "48", "--pixel-size", "10", "--frames", "4", "--n-images", "2"]


@pytest.mark.parametrize("movie_format", ["mrc", "tiff"])
def test_writes_movies_clean_sums_and_manifest(cli, tmp_path, movie_format):
    out = tmp_path / "movies"
    result = cli("simulate", "--movies", "--out", out, *SMALL, "--seed", "3",
                 "--movie-format", movie_format)  # fmt: skip
    assert result.code == 0, result.err
    assert "2 movie(s) of 4 frames" in result.out
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "cryoden-simulated-movies"
    assert manifest["parameters"]["n_frames"] == 4
    assert manifest["parameters"]["seed"] == 3
    assert len(manifest["movies"]) == 2
    seeds = {movie["seed"] for movie in manifest["movies"]}
    assert len(seeds) == 2
    for movie in manifest["movies"]:
        path = out / movie["movie"]
        assert path.suffix == (".tiff" if movie_format == "tiff" else ".mrc")
        n, shape, _ = movie_info(path)
        assert (n, shape) == (4, (48, 48))
        if movie_format == "tiff":
            frames = tifffile.imread(path)
        else:
            with mrcfile.open(path) as mrc:
                frames = mrc.data.copy()
                assert mrc.voxel_size.x == pytest.approx(10.0)
        assert frames.dtype == np.uint16
        with mrcfile.open(out / movie["clean"]) as mrc:
            clean = mrc.data.copy()
        # the clean micrograph is the expected sum: its mean is the frames' summed mean
        assert clean.mean() == pytest.approx(frames.sum(axis=0).mean(), rel=0.05)
        assert len(movie["frame_shifts_px"]) == 4
        assert movie["ctf"]["defocus_u_angstrom"] > 0
    assert (out / "cryoden_provenance.json").is_file()


def test_movies_are_reproducible_from_the_seed(cli, tmp_path):
    for name in ("a", "b"):
        assert cli("simulate", "--movies", "--out", tmp_path / name, *SMALL).code == 0
    with (
        mrcfile.open(tmp_path / "a/movies/0001.mrc") as a,
        mrcfile.open(tmp_path / "b/movies/0001.mrc") as b,
    ):
        np.testing.assert_array_equal(a.data, b.data)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--movies", "--snr", "0.1"], "--snr is for noisy image pairs, not with --movies"),
        (["--movies", "--frames", "1"], "--frames must be"),
        (["--movies", "--dose-per-frame", "0"], "--dose-per-frame must be"),
        (["--movies", "--ctf-defocus", "3000"], "--ctf-defocus must exceed --defocus-spread"),
        (["--movies", "--movie-format", "gif"], "--movie-format must be one of mrc, tiff"),
        (["--movies", "--add-structure", "x.pdb"], "--add-structure needs --structure"),
        (["--movies", "--structure", "missing.pdb"], "missing.pdb"),
        (["--snr", "0.1", "--frames", "4"], "--frames needs --movies"),
    ],
)
def test_bad_options_fail_in_one_line_and_write_nothing(cli, tmp_path, args, message):
    out = tmp_path / "o"
    result = cli("simulate", "--out", out, "--size", "48", "--pixel-size", "10", *args)
    assert result.code != 0
    text = (result.out + result.err).strip()
    assert message in text
    assert len(text.splitlines()) == 1
    assert not out.exists()


def test_every_flag_names_a_library_parameter():
    names = {f for f in MovieConfig.__dataclass_fields__}
    for model in (IceModel, DetectorModel, DriftModel):
        names |= set(model.__dataclass_fields__)
    assert set(FLAGS) <= names
