"""Simulated tomograms: the crowded slab, the noisy halves, seeds and the dataset on disk."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cryoden.errors import InputFileError, ParameterError
from cryoden.io import read_mrc, write_mrc
from cryoden.simulation.orientations import random_rotations
from cryoden.simulation.projection_atoms import atoms_to_map
from cryoden.simulation.sources import Source, load_source
from cryoden.simulation.structures import Atoms
from cryoden.simulation.tomo_config import TomogramConfig
from cryoden.simulation.tomo_dataset import (
    TomogramSimulator,
    noise_level,
    simulate_tomogram_dataset,
)
from cryoden.simulation.tomogram import ParticleRenderer, place_in_slab

VOXEL = 4.0
SHAPE = (16, 8, 32)


def tiny_atoms() -> Atoms:
    """Three unequal clumps of carbon atoms (an asymmetric particle of radius ~ 12 Å)."""
    rng = np.random.default_rng(5)
    clumps = [((0, 0, 0), 4.0, 120), ((8, 3, 0), 3.0, 60), ((-2, -7, 5), 2.5, 40)]
    coords = np.concatenate([rng.normal(c, s, size=(n, 3)) for c, s, n in clumps])
    return Atoms(coords, np.full(len(coords), "C"), source="test:clumps")


def tiny_source() -> Source:
    atoms = tiny_atoms()
    return Source({"kind": "test"}, radius_angstrom=atoms.radius_angstrom(), atoms=atoms)


def tiny_config(**changes) -> TomogramConfig:
    settings = {
        "shape_zyx": SHAPE,
        "voxel_size_angstrom": VOXEL,
        "n_particles": 3,
        "tilt_min_deg": -60.0,
        "tilt_max_deg": 60.0,
        "tilt_step_deg": 6.0,
        "snr": 0.5,
        "seed": 2,
    }
    return TomogramConfig(**(settings | changes))


def test_particles_stay_in_the_slab_and_apart():
    rng = np.random.default_rng(0)
    radii = np.full(30, 10.0)
    centres, kept = place_in_slab(
        radii,
        shape_zyx=(20, 40, 40),
        voxel_size_angstrom=4.0,
        slab_thickness_angstrom=60.0,
        rng=rng,
        min_separation=0.9,
    )
    assert 5 <= len(kept) <= 30 and centres.shape == (len(kept), 3)
    assert np.abs(centres[:, 2]).max() <= 30.0 - 10.0
    distance = np.sqrt(((centres[:, None] - centres[None]) ** 2).sum(-1))
    assert distance[np.triu_indices(len(kept), 1)].min() >= 0.9 * 20.0


def test_slab_thinner_than_a_particle_is_refused():
    with pytest.raises(ParameterError, match="slab_thickness_angstrom"):
        place_in_slab(
            [30.0],
            shape_zyx=(20, 40, 40),
            voxel_size_angstrom=4.0,
            slab_thickness_angstrom=40.0,
            rng=np.random.default_rng(0),
        )


def test_a_rotated_map_matches_the_rotated_atoms():
    """Maps are resampled, atoms gridded directly: the same rotation gives the same particle."""
    atoms = tiny_atoms()
    fine = 2.0
    volume = atoms_to_map(atoms, voxel_size_angstrom=fine, shape=32)
    map_source = Source({}, radius_angstrom=atoms.radius_angstrom(), volume=volume,
                        voxel_size_angstrom=fine)  # fmt: skip
    atom_source = Source({}, radius_angstrom=atoms.radius_angstrom(), atoms=atoms)
    rotation = random_rotations(1, rng=np.random.default_rng(1))[0]
    offset = np.array([0.3, -0.2, 0.1])
    from_map = ParticleRenderer(map_source, VOXEL).render(rotation, offset)
    from_atoms = ParticleRenderer(atom_source, VOXEL).render(rotation, offset)
    assert from_map.shape == from_atoms.shape
    assert np.corrcoef(from_map.ravel(), from_atoms.ravel())[0, 1] > 0.9
    unrotated = ParticleRenderer(atom_source, VOXEL).render(np.eye(3), offset)
    assert np.corrcoef(unrotated.ravel(), from_atoms.ravel())[0, 1] < 0.8


def test_noise_free_tomogram_correlates_with_the_specimen():
    simulator = TomogramSimulator(tiny_config(), [tiny_source()])
    volume, particles = simulator.specimen(0)
    assert len(particles) == 3 and volume.shape == SHAPE
    clean = simulator.clean(0)
    assert np.corrcoef(clean.clean.ravel(), volume.ravel())[0, 1] > 0.6


def test_even_and_odd_noise_is_independent():
    simulator = TomogramSimulator(tiny_config(snr=0.2), [tiny_source()])
    tomogram = simulator.simulate(0)
    even_noise = (tomogram.even - tomogram.clean).ravel()
    odd_noise = (tomogram.odd - tomogram.clean).ravel()
    assert abs(np.corrcoef(even_noise, odd_noise)[0, 1]) < 0.05
    noise = (tomogram.tilts["even"] - tomogram.tilts["clean"]).ravel()
    assert (
        abs(
            np.corrcoef(noise, tomogram.tilts["odd"].ravel() - tomogram.tilts["clean"].ravel())[
                0, 1
            ]
        )
        < 0.05
    )
    assert tomogram.measured_snr["tilts_even"] == pytest.approx(0.2, rel=0.1)
    # reconstruction from independent halves: the noise averages, the signal does not
    mean = 0.5 * (tomogram.even + tomogram.odd)
    assert np.var(mean - tomogram.clean) < 0.6 * np.var(tomogram.even - tomogram.clean)


def test_seeds_are_reproducible_and_tomograms_differ():
    config = tiny_config()
    first = TomogramSimulator(config, [tiny_source()]).simulate(1)
    again = TomogramSimulator(config, [tiny_source()]).simulate(1)
    np.testing.assert_array_equal(first.even, again.even)
    np.testing.assert_array_equal(first.clean, again.clean)
    other = TomogramSimulator(config, [tiny_source()]).simulate(2)
    assert not np.array_equal(other.clean, first.clean)
    reseeded = TomogramSimulator(config.replace(seed=3), [tiny_source()]).simulate(1)
    assert not np.array_equal(reseeded.even, first.even)


def test_shared_noise_differs_between_snrs_only_in_scale():
    simulator = TomogramSimulator(tiny_config(), [tiny_source()])
    clean = simulator.clean(0)
    low = noise_level(tiny_config(snr=0.1))
    high = noise_level(tiny_config(snr=0.4))
    a = simulator.noisy_tilts(clean, "even", low, shared=True) - clean.tilts
    b = simulator.noisy_tilts(clean, "even", high, shared=True) - clean.tilts
    np.testing.assert_allclose(a, 2.0 * b, rtol=1e-4, atol=1e-4 * np.abs(a).max())


def test_poisson_halves_share_the_dose():
    config = tiny_config(snr=None, dose_e_per_a2=80.0)
    simulator = TomogramSimulator(config, [tiny_source()])
    tomogram = simulator.simulate(0)
    n_tilts = len(config.angles_deg)
    counts_per_pixel = 80.0 / (2 * n_tilts) * VOXEL**2
    noise = tomogram.tilts["even"] - tomogram.tilts["clean"]
    # contrast read back from counts: noise variance ~ (1 + contrast) / expected counts
    assert np.var(noise) == pytest.approx(1.0 / counts_per_pixel, rel=0.15)
    assert abs(float(noise.mean())) < 0.05


def test_config_errors_name_the_field():
    with pytest.raises(ParameterError, match="snr"):
        tiny_config(snr=-1)
    with pytest.raises(ParameterError, match="not both"):
        tiny_config(dose_e_per_a2=10.0)
    with pytest.raises(ParameterError, match="shape_zyx"):
        tiny_config(shape_zyx=(4, 8, 8))
    with pytest.raises(ParameterError, match="slab_thickness_angstrom"):
        tiny_config(slab_thickness_angstrom=1000.0)
    with pytest.raises(ParameterError, match="filter_name"):
        tiny_config(filter_name="box")
    with pytest.raises(ParameterError, match="noise level"):
        noise_level(tiny_config(snr=None))


def test_dataset_on_disk(tmp_path):
    atoms = tiny_atoms()
    structure = tmp_path / "particle.mrc"
    write_mrc(structure, atoms_to_map(atoms, voxel_size_angstrom=2.0, shape=32),
              voxel_size_angstrom=2.0)  # fmt: skip
    config = tiny_config(structures=(str(structure),), n_tomograms=2, first_index=5)
    out = tmp_path / "tomos"
    manifest = simulate_tomogram_dataset(out, config, write_tilts=True)
    for half in ("clean", "even", "odd"):
        volume = read_mrc(out / half / "0006.mrc")
        assert volume.data.shape == SHAPE
        assert volume.voxel_size_angstrom == pytest.approx((VOXEL,) * 3)
        tilts = read_mrc(out / "tilts" / half / "0005.mrcs")
        assert tilts.data.shape == (len(config.angles_deg), SHAPE[1], SHAPE[2])
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk == json.loads(json.dumps(manifest))
    assert [t["index"] for t in on_disk["tomograms"]] == [5, 6]
    assert on_disk["sources"][0]["kind"] == "map"
    assert len(on_disk["tilt_angles_deg"]) == len(config.angles_deg)
    with pytest.raises(InputFileError, match="already holds"):
        simulate_tomogram_dataset(out, config)


def test_a_dose_needs_atoms_not_a_map(tmp_path):
    structure = tmp_path / "particle.mrc"
    write_mrc(structure, atoms_to_map(tiny_atoms(), voxel_size_angstrom=2.0, shape=32),
              voxel_size_angstrom=2.0)  # fmt: skip
    config = tiny_config(structures=(str(structure),), snr=None, dose_e_per_a2=50.0)
    with pytest.raises(ParameterError, match="atomic models"):
        TomogramSimulator(config, [load_source(structure, None)])
