"""`cryoden simulate --tomogram`: the layout on disk, reproducibility and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cryoden.cli.simulate_tomogram import FLAGS, TOMOGRAM_OPTIONS
from cryoden.io import read_mrc, write_mrc
from cryoden.simulation.projection_atoms import atoms_to_map
from cryoden.simulation.structures import Atoms
from cryoden.simulation.tomo_config import TomogramConfig


@pytest.fixture
def small_map(tmp_path):
    """A small three-clump particle as an MRC map (radius ~ 12 Å), so runs stay tiny."""
    rng = np.random.default_rng(5)
    clumps = [((0, 0, 0), 4.0, 120), ((8, 3, 0), 3.0, 60), ((-2, -7, 5), 2.5, 40)]
    coords = np.concatenate([rng.normal(c, s, size=(n, 3)) for c, s, n in clumps])
    volume = atoms_to_map(Atoms(coords, np.full(len(coords), "C")), voxel_size_angstrom=2.0,
                          shape=32)  # fmt: skip
    path = tmp_path / "particle.mrc"
    write_mrc(path, volume, voxel_size_angstrom=2.0)
    return path


TINY = ["--size", "24", "--thickness", "12", "--pixel-size", "4", "--tilt-step", "10",
        "--particles", "3"]  # fmt: skip


def test_writes_clean_even_odd_and_a_manifest(cli, tmp_path, small_map):
    out = tmp_path / "tomos"
    args = ["simulate", "--tomogram", "--out", out, "--structure", small_map, "--snr", "0.3",
            "--n-images", "2", "--seed", "4", "--write-tilts", *TINY]  # fmt: skip
    result = cli(*args)
    assert result.code == 0, result.err
    assert "2 tomogram(s)" in result.out
    for folder in ("clean", "even", "odd"):
        volume = read_mrc(out / folder / "0001.mrc")
        assert volume.data.shape == (12, 24, 24)
        assert volume.voxel_size_angstrom == pytest.approx((4.0, 4.0, 4.0))
        assert (out / "tilts" / folder / "0001.mrcs").is_file()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "cryoden-simulated-tomograms"
    assert manifest["parameters"]["snr"] == 0.3 and manifest["parameters"]["seed"] == 4
    assert manifest["tilt_angles_deg"][0] == -60.0 and manifest["tilt_angles_deg"][-1] == 60.0
    assert len(manifest["tomograms"]) == 2
    assert (out / "cryoden_provenance.json").is_file()
    # the same seed again: the same tomograms
    again = tmp_path / "again"
    assert cli(*[again if a == out else a for a in args]).code == 0
    for folder in ("clean", "even", "odd"):
        np.testing.assert_array_equal(
            read_mrc(out / folder / "0000.mrc").data, read_mrc(again / folder / "0000.mrc").data
        )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tomogram", "--snr", "0.1,0.2"], "--snr takes one number with --tomogram"),
        (["--tomogram", "--snr", "0.1", "--ctf-defocus", "1e4"], "--ctf-defocus is not used"),
        (["--tomogram", "--snr-sweep"], "--snr-sweep is not used with --tomogram"),
        (["--tomogram"], "give --snr or --dose"),
        (["--snr", "0.1", "--thickness", "16"], "--thickness needs --tomogram"),
        (["--tomogram", "--snr", "0.1", "--slab-thickness", "1e5"], "--slab-thickness"),
        (["--tomogram", "--snr", "0.1", "--structures", "missing.pdb"], "missing.pdb"),
        (["--tomogram", "--snr", "0.1", "--tilt-range", "95"], "--tilt-range must be in"),
        (["--tomogram", "--snr", "0.1", "--size", "32", "--thickness", "8"], "ice slab"),
    ],
)
def test_bad_options_fail_in_one_line_without_output(cli, tmp_path, args, message):
    out = tmp_path / "o"
    result = cli("simulate", "--out", out, *args)
    assert result.code != 0
    assert message in result.err and len(result.err.strip().splitlines()) == 1
    assert not out.exists()


def test_every_mapped_parameter_exists():
    assert set(FLAGS) <= set(TomogramConfig.__dataclass_fields__)
    assert "tomogram" in TOMOGRAM_OPTIONS


def test_help_lists_the_tomogram_options_with_an_example(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    result = cli("simulate", "--help")
    assert result.code == 0, result.err
    lines = [line.strip() for line in result.out.splitlines()]
    assert any(line.startswith("cryoden simulate --tomogram ") for line in lines)
    for flag in ("--tomogram", "--thickness", "--tilt-range", "--tilt-step", "--write-tilts"):
        assert flag in result.out
