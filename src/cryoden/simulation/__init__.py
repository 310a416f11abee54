"""Simulated cryo-EM images: projections of atomic models or maps, CTF, noise, datasets.

Modules: :mod:`~cryoden.simulation.structures` (PDB/mmCIF via gemmi),
:mod:`~cryoden.simulation.scattering` (electron scattering factors, Peng et al. 1996),
:mod:`~cryoden.simulation.projection` (projected Coulomb potential of atoms and maps),
:mod:`~cryoden.simulation.orientations` (uniform rotations), :mod:`~cryoden.simulation.ctf`,
:mod:`~cryoden.simulation.phantoms` (the embedded GroEL-like phantom),
:mod:`~cryoden.simulation.fields` (particle placement) and
:mod:`~cryoden.simulation.datasets` (clean + Noise2Noise pairs on disk or in memory).
"""

from cryoden.simulation.ctf import (
    CtfParams,
    apply_ctf,
    ctf_1d,
    ctf_2d,
    ctf_zero_frequencies,
    electron_wavelength_angstrom,
    interaction_constant,
)
from cryoden.simulation.datasets import (
    NoiseLevel,
    ParticlePose,
    SimulatedImage,
    dose_dirname,
    simulate_dataset,
    simulate_images,
    snr_dirname,
)
from cryoden.simulation.fields import place_particles
from cryoden.simulation.orientations import (
    matrices_to_quaternions,
    quaternions_to_matrices,
    random_quaternions,
    random_rotations,
)
from cryoden.simulation.phantoms import PHANTOMS, get_phantom, groel_phantom
from cryoden.simulation.projection import (
    AtomProjector,
    MapProjector,
    atoms_to_map,
    project_atoms,
    project_map,
)
from cryoden.simulation.scattering import electron_scattering_factor, potential_form_factor
from cryoden.simulation.structures import Atoms, read_atoms

__all__ = [
    "PHANTOMS",
    "AtomProjector",
    "Atoms",
    "CtfParams",
    "MapProjector",
    "NoiseLevel",
    "ParticlePose",
    "SimulatedImage",
    "apply_ctf",
    "atoms_to_map",
    "ctf_1d",
    "ctf_2d",
    "ctf_zero_frequencies",
    "dose_dirname",
    "electron_scattering_factor",
    "electron_wavelength_angstrom",
    "get_phantom",
    "groel_phantom",
    "interaction_constant",
    "matrices_to_quaternions",
    "place_particles",
    "potential_form_factor",
    "project_atoms",
    "project_map",
    "quaternions_to_matrices",
    "random_quaternions",
    "random_rotations",
    "read_atoms",
    "simulate_dataset",
    "simulate_images",
    "snr_dirname",
]
