"""Simulated cryo-EM images: projections of atomic models or maps, CTF, noise, datasets.

Modules: :mod:`~cryoden.simulation.structures` (PDB/mmCIF via gemmi),
:mod:`~cryoden.simulation.scattering` (electron scattering factors, Peng et al. 1996),
:mod:`~cryoden.simulation.gridding` (the cubic B-spline gridding kernel),
:mod:`~cryoden.simulation.projection_atoms` (projected Coulomb potential of atomic models),
:mod:`~cryoden.simulation.projection_maps` (Fourier-slice projections of maps),
:mod:`~cryoden.simulation.orientations` (uniform rotations), :mod:`~cryoden.simulation.ctf`,
:mod:`~cryoden.simulation.phantoms` (the embedded GroEL-like phantom),
:mod:`~cryoden.simulation.fields` (particle placement),
:mod:`~cryoden.simulation.config` (:class:`SimulationConfig`, the settings of a run),
:mod:`~cryoden.simulation.sources` (phantom, model or map to project),
:mod:`~cryoden.simulation.simulator` (clean images), :mod:`~cryoden.simulation.noise_streams`
(noise levels, seeding, noisy pairs), :mod:`~cryoden.simulation.layout` (folders and manifest)
and :mod:`~cryoden.simulation.datasets` (:func:`simulate_images` in memory,
:func:`simulate_dataset` on disk).
"""

from cryoden.simulation.config import SimulationConfig
from cryoden.simulation.ctf import (
    CtfParams,
    apply_ctf,
    ctf_1d,
    ctf_2d,
    ctf_zero_frequencies,
    electron_wavelength_angstrom,
    interaction_constant,
)
from cryoden.simulation.datasets import simulate_dataset, simulate_images
from cryoden.simulation.fields import place_particles
from cryoden.simulation.layout import dose_dirname, snr_dirname
from cryoden.simulation.noise_streams import NoiseLevel
from cryoden.simulation.orientations import (
    matrices_to_quaternions,
    quaternions_to_matrices,
    random_quaternions,
    random_rotations,
)
from cryoden.simulation.phantoms import PHANTOMS, get_phantom, groel_phantom
from cryoden.simulation.projection_atoms import AtomProjector, atoms_to_map, project_atoms
from cryoden.simulation.projection_maps import MapProjector, project_map
from cryoden.simulation.scattering import electron_scattering_factor, potential_form_factor
from cryoden.simulation.simulator import ParticlePose, SimulatedImage
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
    "SimulationConfig",
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
