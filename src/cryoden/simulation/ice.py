"""The vitreous ice around the particles: uneven thickness, inelastic loss, solvent contrast.

Four effects of the ice are modelled, each from the local ice thickness ``t(x)`` (Å):

* **Thickness.** The layer is thickest or thinnest along a random direction: a plane with a
  mean ``thickness_angstrom`` and a slope ``thickness_slope`` (Å of thickness per Å across the
  field), plus smooth undulations (a Gaussian random field with standard deviation
  ``roughness_angstrom`` and correlation length ``roughness_length_angstrom``), never thinner
  than :data:`MIN_THICKNESS_ANGSTROM`.
* **Inelastic scattering.** A fraction ``exp(-t / inelastic_mfp_angstrom)`` of the electrons
  stays unscattered (zero-loss). With an energy filter (the default) only those reach the
  detector, so thicker ice is darker; without one the inelastically scattered electrons arrive
  too, as a diffuse background without contrast, so thicker ice has less contrast at the same
  counts. Inelastic mean free path of vitreous ice: about 3,500 Å at 300 kV, 2,800 Å at 200 kV
  [1]_.
* **Solvent.** Ice has a mean inner potential of :data:`ICE_MEAN_INNER_POTENTIAL_V` (water's
  molecular number density times a water molecule's integrated Coulomb potential,
  :func:`water_molecule_potential`); a particle displaces it, so the particle's contrast is its
  own potential minus that of the ice it displaces [2]_ (:func:`displaced_ice_potential`, which
  lowers a protein's low-resolution contrast by about two thirds). The molecules' random
  positions add a fine texture to the projected potential (:func:`ice_texture`), with the power
  spectrum of ``rho t`` molecules per Å² whose positions are correlated as in liquid water:
  ``P(k) = rho t S(k) |F_w(k)|**2`` (V·Å)²·Å², ``F_w`` the molecule's potential form factor and
  ``S(k) = S0 + (1 - S0) (1 - exp(-(k / k_c)**n))`` a smooth stand-in for the measured
  molecular structure factor of water [3]_: low at long wavelengths (water is nearly
  incompressible: ``S0 = rho kB T kappa_T``, about 0.06 for liquid water at room temperature;
  amorphous ices are nearly hyperuniform, lower still [4]_), nearly flat well below the first
  diffraction peak and rising steeply towards it. The peak of vitreous ice lies at
  ``1 / 3.7`` 1/Å [5]_; ``k_c = 0.25`` 1/Å, just below it, with ``n = 4`` keeps ``S`` within
  a few hundredths of ``S0`` up to 0.1 1/Å. The peak itself is not modelled. The texture is
  missing where a particle displaces the ice.
* **Beam-induced motion of the water.** Under the beam, amorphous ice behaves like a fluid:
  its water molecules are displaced at random by a mean squared distance of about 1.1 Å² per
  incident e/Å² at 300 keV [5]_ (``motion_msd_a2_per_e_per_a2``, taken as a displacement in
  three dimensions: a variance of a third of it along each axis). The texture is therefore
  not frozen: its
  Fourier component at frequency ``k`` loses its memory at the rate
  ``gamma(k) = 2 pi**2 k**2 msd / 3`` per e/Å² (the self-part of the intermediate scattering
  function of a random walk), so fine texture changes from frame to frame and averages out of
  a long exposure while coarse texture stays (:func:`ice_texture_frames`, an
  Ornstein-Uhlenbeck process in dose for every Fourier component, averaged over each frame's
  exposure). This is why Thon rings of pure ice are more visible in the summed power spectra
  of single frames than in the power spectrum of the frame sum [5]_.

Not modelled: multiple elastic scattering, ice contamination, crystalline ice, carbon support,
the first diffraction peak of the ice, the motion of the particles with the ice (left to the
CTF envelope).

References
----------
.. [1] W. J. Rice et al., "Routine determination of ice thickness for cryo-EM grids",
   J. Struct. Biol. 204, 38-44 (2018).
.. [2] B. Himes, N. Grigorieff, "Cryo-TEM simulations of amorphous radiation-sensitive
   samples using multislice wave propagation", IUCrJ 8, 943-953 (2021).
.. [3] L. B. Skinner et al., "Benchmark oxygen-oxygen pair-distribution function of ambient
   water from x-ray diffraction measurements with a wide Q-range", J. Chem. Phys. 138,
   074506 (2013).
.. [4] F. Martelli, S. Torquato, N. Giovambattista, R. Car, "Large-scale structure and
   hyperuniformity of amorphous ices", Phys. Rev. Lett. 119, 136002 (2017).
.. [5] G. McMullan, K. R. Vinothkumar, R. Henderson, "Thon rings from amorphous ice and
   implications of beam-induced Brownian motion in single particle electron
   cryo-microscopy", Ultramicroscopy 158, 26-32 (2015).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import scipy.ndimage

from cryoden.errors import ParameterError
from cryoden.simulation.scattering import potential_form_factor
from cryoden.simulation.structures import Atoms

#: Molecules of water per Å³ in vitreous ice (0.94 g/cm³).
WATER_MOLECULES_PER_A3 = 0.94 * 0.60221 / 18.015
#: Thinnest ice allowed anywhere in a field, in Å.
MIN_THICKNESS_ANGSTROM = 50.0
#: Protein density in Da per Å³ (1.35 g/cm³), for a model's mean inner potential.
PROTEIN_DA_PER_A3 = 1.35 * 0.60221
#: Atomic masses (Da) of the elements of biological models; others count as carbon.
ATOMIC_MASS_DA = {"H": 1.008, "C": 12.011, "N": 14.007, "O": 15.999, "P": 30.974, "S": 32.06}
#: Width (Å, standard deviation) of the envelope of the ice that a particle's atoms displace.
DISPLACEMENT_SIGMA_ANGSTROM = 2.0


def water_molecule_potential(k_per_angstrom: np.ndarray | float = 0.0) -> np.ndarray:
    """Fourier transform of one water molecule's Coulomb potential (V·Å³) at frequency ``k``
    (1/Å), its atoms' form factors summed (the molecule is small next to the pixels)."""
    return potential_form_factor("O", k_per_angstrom) + 2 * potential_form_factor(
        "H", k_per_angstrom
    )


#: Mean inner potential of vitreous ice in V (about 4.6).
ICE_MEAN_INNER_POTENTIAL_V = float(WATER_MOLECULES_PER_A3 * water_molecule_potential(0.0))


def protein_mean_inner_potential(atoms: Atoms) -> float:
    """Mean inner potential (V) of a model's atoms packed at protein density: their summed
    integrated potentials over the volume their mass fills at 1.35 g/cm³ (about 7 V)."""
    counts = atoms.element_counts()
    potential = sum(n * float(potential_form_factor(e, 0.0)) for e, n in counts.items())
    mass = sum(n * ATOMIC_MASS_DA.get(e, ATOMIC_MASS_DA["C"]) for e, n in counts.items())
    return float(potential / (mass / PROTEIN_DA_PER_A3))


@dataclass(frozen=True)
class IceModel:
    """The ice layer (see the module docstring).

    Attributes
    ----------
    thickness_angstrom
        Mean thickness in Å at the centre of the field (``>= 50``; typically 200-600).
    thickness_slope
        Change of thickness per Å across the field along a random direction (``>= 0``;
        typically 0.02-0.2: 20-200 Å more ice per 1,000 Å towards the hole's edge).
    roughness_angstrom
        Standard deviation in Å of the smooth undulations of the thickness (``>= 0``).
    roughness_length_angstrom
        Correlation length in Å of the undulations (``> 0``).
    inelastic_mfp_angstrom
        Inelastic mean free path of ice in Å (``> 0``; about 3,500 at 300 kV).
    energy_filter
        Zero-loss energy filtering: inelastically scattered electrons are removed.
    texture
        Add the solvent texture (:func:`ice_texture`).
    structure_factor_zero
        ``S0``, the structure factor of the ice at long wavelengths, in ``[0, 1]``.
    structure_factor_k_per_angstrom
        ``k_c`` in 1/Å, where the structure factor approaches 1 (``> 0``).
    structure_factor_exponent
        ``n``, how steeply the structure factor rises towards ``k_c`` (``> 0``; 2 rises
        gradually from zero frequency, larger values keep it flat longer).
    motion_msd_a2_per_e_per_a2
        Mean squared displacement (Å², in three dimensions) of the water molecules per e/Å² of
        exposure (``>= 0``; about 1.1 at 300 kV; 0 freezes the texture for the whole movie).
    """

    thickness_angstrom: float = 400.0
    thickness_slope: float = 0.1
    roughness_angstrom: float = 15.0
    roughness_length_angstrom: float = 800.0
    inelastic_mfp_angstrom: float = 3500.0
    energy_filter: bool = True
    texture: bool = True
    structure_factor_zero: float = 0.06
    structure_factor_k_per_angstrom: float = 0.25
    structure_factor_exponent: float = 4.0
    motion_msd_a2_per_e_per_a2: float = 1.1

    def __post_init__(self) -> None:
        checks = {
            "thickness_angstrom": (MIN_THICKNESS_ANGSTROM, 1e5),
            "thickness_slope": (0.0, 10.0),
            "roughness_angstrom": (0.0, 1e4),
            "roughness_length_angstrom": (1e-6, 1e7),
            "inelastic_mfp_angstrom": (1e-6, 1e7),
            "structure_factor_zero": (0.0, 1.0),
            "structure_factor_k_per_angstrom": (1e-6, 1e3),
            "structure_factor_exponent": (1e-3, 64.0),
            "motion_msd_a2_per_e_per_a2": (0.0, 1e3),
        }
        for name, (low, high) in checks.items():
            value = float(getattr(self, name))
            if not (np.isfinite(value) and low <= value <= high):
                raise ParameterError(f"{name} must be in [{low:g}, {high:g}], got {value}")
            object.__setattr__(self, name, value)
        object.__setattr__(self, "energy_filter", bool(self.energy_filter))
        object.__setattr__(self, "texture", bool(self.texture))

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary (for manifests), with the ice's mean inner potential."""
        return {**asdict(self), "mean_inner_potential_v": round(ICE_MEAN_INNER_POTENTIAL_V, 4)}


def thickness_map(
    shape: tuple[int, int],
    model: IceModel,
    *,
    pixel_size_angstrom: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Ice thickness in Å at every pixel of an ``(H, W)`` field (float64)."""
    h, w = shape
    p = float(pixel_size_angstrom)
    angle = rng.uniform(0.0, 2.0 * np.pi)
    y = (np.arange(h) - (h - 1) / 2.0)[:, None] * p
    x = (np.arange(w) - (w - 1) / 2.0)[None, :] * p
    plane = model.thickness_angstrom + model.thickness_slope * (
        np.sin(angle) * y + np.cos(angle) * x
    )
    white = rng.standard_normal((h, w))
    if model.roughness_angstrom > 0:
        sigma_px = model.roughness_length_angstrom / p
        smooth = scipy.ndimage.gaussian_filter(white, sigma_px, mode="wrap")
        smooth -= smooth.mean()
        std = float(smooth.std())
        if std > 0:
            plane = plane + model.roughness_angstrom * smooth / std
    return np.maximum(plane, MIN_THICKNESS_ANGSTROM)


def zero_loss_fraction(thickness_angstrom: np.ndarray, model: IceModel) -> np.ndarray:
    """Fraction of electrons not scattered inelastically: ``exp(-t / mfp)``."""
    return np.exp(-np.asarray(thickness_angstrom, dtype=np.float64) / model.inelastic_mfp_angstrom)


def detected_intensity(
    contrast: np.ndarray, thickness_angstrom: np.ndarray, model: IceModel
) -> np.ndarray:
    """Electron intensity at the detector per incident electron from the weak-phase contrast
    ``c`` (``1 + c`` in vacuum): ``T (1 + c)`` with the zero-loss fraction ``T`` under an
    energy filter, ``T (1 + c) + (1 - T)`` without one (clipped at 0)."""
    zero_loss = zero_loss_fraction(thickness_angstrom, model)
    elastic = zero_loss * np.clip(1.0 + np.asarray(contrast, dtype=np.float64), 0.0, None)
    return elastic if model.energy_filter else elastic + (1.0 - zero_loss)


def displaced_ice_potential(
    particle_potential: np.ndarray,
    *,
    pixel_size_angstrom: float,
    protein_potential_v: float,
) -> tuple[np.ndarray, np.ndarray]:
    """``(potential, thickness)``: the projected potential (V·Å) and thickness (Å) of the ice
    that particles displace, from their projected potential (V·Å).

    The displaced thickness is the particles' projected potential smoothed over
    :data:`DISPLACEMENT_SIGMA_ANGSTROM` divided by the protein's mean inner potential
    ``protein_potential_v`` (:func:`protein_mean_inner_potential`); the ice it displaces has
    :data:`ICE_MEAN_INNER_POTENTIAL_V`.
    """
    if not (np.isfinite(protein_potential_v) and protein_potential_v > 0):
        raise ParameterError(f"protein_potential_v must be > 0 V, got {protein_potential_v}")
    sigma_px = DISPLACEMENT_SIGMA_ANGSTROM / float(pixel_size_angstrom)
    smooth = scipy.ndimage.gaussian_filter(
        np.asarray(particle_potential, dtype=np.float64), sigma_px, mode="wrap"
    )
    thickness = np.clip(smooth, 0.0, None) / protein_potential_v
    return ICE_MEAN_INNER_POTENTIAL_V * thickness, thickness


def structure_factor(k_per_angstrom: np.ndarray, model: IceModel) -> np.ndarray:
    """The ice's structure factor ``S(k)`` (see the module docstring)."""
    s0 = model.structure_factor_zero
    k = np.asarray(k_per_angstrom, dtype=np.float64) / model.structure_factor_k_per_angstrom
    return s0 + (1.0 - s0) * (1.0 - np.exp(-(k**model.structure_factor_exponent)))


def texture_decorrelation_rate(k_per_angstrom: np.ndarray | float, model: IceModel) -> np.ndarray:
    """Rate (per e/Å² of exposure) at which the texture's Fourier component at frequency ``k``
    (1/Å) forgets its past: ``2 pi**2 k**2 msd / 3`` (see the module docstring)."""
    k = np.asarray(k_per_angstrom, dtype=np.float64)
    return 2.0 * np.pi**2 * k**2 * model.motion_msd_a2_per_e_per_a2 / 3.0


def _frequency_grid(shape: tuple[int, int], pixel_size_angstrom: float) -> np.ndarray:
    """``|k|`` in 1/Å on the ``rfft2`` grid of an ``(H, W)`` image."""
    h, w = shape
    ky = np.fft.fftfreq(h, d=pixel_size_angstrom)[:, None]
    kx = np.fft.rfftfreq(w, d=pixel_size_angstrom)[None, :]
    return np.sqrt(ky**2 + kx**2)


def _texture_amplitude(shape: tuple[int, int], model: IceModel, p: float) -> np.ndarray:
    """Filter on the ``rfft2`` grid turning the spectrum of unit-variance white noise into that
    of the texture of 1 Å of ice: each DFT bin carries ``P(k) / p**2``; no mean (k = 0)."""
    k = _frequency_grid(shape, p)
    power = WATER_MOLECULES_PER_A3 * structure_factor(k, model) * water_molecule_potential(k) ** 2
    amplitude = np.sqrt(power) / p
    amplitude[0, 0] = 0.0
    return amplitude


def _local_thickness(
    thickness_angstrom: np.ndarray, displaced_thickness_angstrom: np.ndarray | None
) -> np.ndarray:
    t = np.asarray(thickness_angstrom, dtype=np.float64)
    if displaced_thickness_angstrom is not None:
        t = np.clip(t - displaced_thickness_angstrom, 0.0, None)
    return t


def ice_texture(
    thickness_angstrom: np.ndarray,
    model: IceModel,
    *,
    pixel_size_angstrom: float,
    rng: np.random.Generator,
    displaced_thickness_angstrom: np.ndarray | None = None,
) -> np.ndarray:
    """Zero-mean projected-potential fluctuations (V·Å) of the ice's water molecules at one
    instant.

    A Gaussian random field with the power spectrum ``rho t S(k) |F_w(k)|**2`` (see the module
    docstring), made for unit thickness and scaled by ``sqrt`` of the local thickness of ice
    (less what particles displace, ``displaced_thickness_angstrom``).
    """
    t = _local_thickness(thickness_angstrom, displaced_thickness_angstrom)
    shape = (t.shape[0], t.shape[1])
    amplitude = _texture_amplitude(shape, model, float(pixel_size_angstrom))
    field = np.fft.irfft2(np.fft.rfft2(rng.standard_normal(shape)) * amplitude, s=shape)
    return field * np.sqrt(t)


def ice_texture_frames(
    thickness_angstrom: np.ndarray,
    model: IceModel,
    *,
    pixel_size_angstrom: float,
    dose_per_frame_e_per_a2: float,
    n_frames: int,
    rng: np.random.Generator,
    motion_rng: np.random.Generator,
    displaced_thickness_angstrom: np.ndarray | None = None,
    substeps: int = 4,
) -> Iterator[np.ndarray]:
    """The texture (V·Å) seen by each frame of a movie, its water molecules moving under the
    beam (see the module docstring).

    Every Fourier component of the texture follows an Ornstein-Uhlenbeck process in dose with
    the stationary spectrum of :func:`ice_texture` and the rate
    :func:`texture_decorrelation_rate`; a frame sees its mean over ``substeps`` instants of its
    exposure. The start is drawn from ``rng`` exactly as :func:`ice_texture` draws it (so
    without motion every frame sees that texture); the motion draws from ``motion_rng``.
    """
    if dose_per_frame_e_per_a2 <= 0:
        raise ParameterError(f"dose_per_frame_e_per_a2 must be > 0, got {dose_per_frame_e_per_a2}")
    if substeps < 1:
        raise ParameterError(f"substeps must be >= 1, got {substeps}")
    t = _local_thickness(thickness_angstrom, displaced_thickness_angstrom)
    shape = (t.shape[0], t.shape[1])
    p = float(pixel_size_angstrom)
    amplitude = _texture_amplitude(shape, model, p)
    scale = np.sqrt(t)
    state = np.fft.rfft2(rng.standard_normal(shape))
    rate = texture_decorrelation_rate(_frequency_grid(shape, p), model)
    if not rate.any():
        frozen = np.fft.irfft2(state * amplitude, s=shape) * scale
        for _ in range(n_frames):
            yield frozen
        return
    keep = np.exp(-rate * dose_per_frame_e_per_a2 / substeps)
    renew = np.sqrt(1.0 - keep**2)
    for f in range(n_frames):
        mean = np.zeros_like(state)
        for j in range(substeps):
            if f or j:
                state = keep * state + renew * np.fft.rfft2(motion_rng.standard_normal(shape))
            mean += state
        yield np.fft.irfft2(mean * (amplitude / substeps), s=shape) * scale
