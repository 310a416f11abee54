"""Elastic electron scattering factors of neutral atoms and the Coulomb potential they imply.

The electron scattering factor of a neutral atom is parametrised as a sum of five Gaussians
(Peng et al. 1996, the fit for ``0 <= s <= 2`` 1/Å that International Tables Vol. C reprints
as Table 4.3.2.2)::

    f_e(s) = sum_i a_i exp(-b_i s**2)          [Å],  s = sin(theta) / lambda = q / 2

where ``q`` is the spatial frequency in 1/Å. The atom's electrostatic potential is its inverse
Fourier transform times ``h**2 / (2 pi m0 e)`` (= 47.8776 V·Å², non-relativistic electron
mass, since ``f_e`` is tabulated that way)::

    V(r) = 47.8776 * sum_i a_i (4 pi / b_i)**1.5 exp(-4 pi**2 r**2 / b_i)      [V]

so that the 3D Fourier transform of one atom's potential at frequency ``q`` is
``47.8776 * f_e(q / 2)`` in V·Å³, and by the projection-slice theorem this is also the 2D
Fourier transform of the atom's *projected* potential (potential integrated along the beam,
V·Å) at the in-plane frequency ``q``. A Debye-Waller (B) factor multiplies by
``exp(-B s**2) = exp(-B q**2 / 4)``, i.e. adds ``B`` to every ``b_i``.

References
----------
.. [1] L.-M. Peng, G. Ren, S. L. Dudarev, M. J. Whelan, "Robust parameterization of elastic and
   absorptive electron atomic scattering factors", Acta Cryst. A52, 257-276 (1996).
.. [2] International Tables for Crystallography Vol. C (2006), Table 4.3.2.2, "Elastic atomic
   scattering factors of electrons for neutral atoms and s up to 2.0 Å⁻¹" (gemmi's ``c4322``).
.. [3] E. J. Kirkland, *Advanced Computing in Electron Microscopy*, 2nd ed., Springer (2010).
.. [4] B. Himes, N. Grigorieff, "Cryo-TEM simulations of amorphous radiation-sensitive
   samples using multislice wave propagation", IUCrJ 8, 943-953 (2021).
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.constants as const

logger = logging.getLogger(__name__)

#: ``h**2 / (2 pi m0 e)`` in V·Å²: converts a scattering factor (Å) and a frequency volume
#: (1/Å³) into a potential (V). About 47.8776 (Kirkland's ``2 pi a0 e``).
POTENTIAL_PREFACTOR_V_A2: float = float(const.h**2 / (2.0 * np.pi * const.m_e * const.e) * 1e20)

#: Element that stands in for elements without tabulated parameters.
FALLBACK_ELEMENT = "C"

# Peng et al. (1996), elastic, neutral atoms, fit range 0 <= s <= 2 1/Å (ITC Vol. C Table
# 4.3.2.2). Each entry: ((a1..a5) in Å, (b1..b5) in Å²). Checked against gemmi's ``c4322``
# table by the test suite.
_PENG_1996: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "H": ((0.0349, 0.1201, 0.1970, 0.0573, 0.1195), (0.5347, 3.5867, 12.3471, 18.9525, 38.6269)),
    "C": ((0.0893, 0.2563, 0.7570, 1.0487, 0.3575), (0.2465, 1.7100, 6.4094, 18.6113, 50.2523)),
    "N": ((0.1022, 0.3219, 0.7982, 0.8197, 0.1715), (0.2451, 1.7481, 6.1925, 17.3894, 48.1431)),
    "O": ((0.0974, 0.2921, 0.6910, 0.6990, 0.2039), (0.2067, 1.3815, 4.6943, 12.7105, 32.4726)),
    "Na": (
        (0.2142, 0.6853, 0.7692, 1.6589, 1.4482),
        (0.3334, 2.3446, 10.0830, 48.3037, 138.2700),
    ),
    "Mg": (
        (0.2314, 0.6866, 0.9677, 2.1882, 1.1339),
        (0.3278, 2.2720, 10.9241, 39.2898, 101.9748),
    ),
    "P": ((0.2548, 0.6106, 1.4541, 2.3204, 0.8477), (0.2908, 1.8740, 8.5176, 24.3434, 63.2996)),
    "S": ((0.2497, 0.5628, 1.3899, 2.1865, 0.7715), (0.2681, 1.6711, 7.0267, 19.5377, 50.3888)),
    "Cl": ((0.2443, 0.5397, 1.3919, 2.0197, 0.6621), (0.2468, 1.5242, 6.1537, 16.6687, 42.3086)),
    "K": (
        (0.4115, 1.4031, 2.2784, 2.6742, 2.2162),
        (0.3703, 3.3874, 13.1029, 68.9592, 194.4329),
    ),
    "Ca": (
        (0.4054, 1.3880, 2.1602, 3.7532, 2.2063),
        (0.3499, 3.0991, 11.9608, 53.9353, 142.3892),
    ),
    "Fe": ((0.3946, 1.2725, 1.7031, 2.3140, 1.4795), (0.2717, 2.0443, 7.6007, 29.9714, 86.2265)),
    "Zn": ((0.4288, 1.2646, 1.4472, 1.8294, 1.0934), (0.2593, 1.7998, 6.7500, 25.5860, 73.5284)),
    "Se": ((0.4477, 1.1678, 1.5843, 2.8087, 1.1956), (0.2405, 1.5442, 6.3231, 19.4610, 52.0233)),
}

#: Elements with tabulated parameters.
KNOWN_ELEMENTS: tuple[str, ...] = tuple(_PENG_1996)


def normalize_element(symbol: str) -> str:
    """Canonical capitalisation of an element symbol (``"MG"`` -> ``"Mg"``)."""
    symbol = symbol.strip()
    return symbol[:1].upper() + symbol[1:].lower()


def has_parameters(element: str) -> bool:
    """Whether ``element`` has tabulated scattering-factor parameters."""
    return normalize_element(element) in _PENG_1996


def scattering_parameters(element: str) -> tuple[np.ndarray, np.ndarray]:
    """The five-Gaussian parameters ``(a, b)`` of ``element`` (a in Å, b in Å²).

    Elements without parameters fall back to carbon, with a logged warning.
    """
    key = normalize_element(element)
    if key not in _PENG_1996:
        logger.warning(
            "no electron scattering factor for element %r; using %s's",
            element,
            FALLBACK_ELEMENT,
        )
        key = FALLBACK_ELEMENT
    a, b = _PENG_1996[key]
    return np.array(a, dtype=np.float64), np.array(b, dtype=np.float64)


def electron_scattering_factor(element: str, s_per_angstrom: np.ndarray | float) -> np.ndarray:
    """Elastic electron scattering factor ``f_e(s)`` in Å.

    Parameters
    ----------
    element
        Element symbol (``"C"``, ``"Mg"``); unknown elements use carbon (logged warning).
    s_per_angstrom
        ``s = sin(theta) / lambda`` in 1/Å, i.e. half the spatial frequency ``q``.

    Returns
    -------
    numpy.ndarray
        ``f_e(s)`` in Å, same shape as ``s_per_angstrom``.

    References
    ----------
    Peng et al., Acta Cryst. A52, 257-276 (1996).
    """
    a, b = scattering_parameters(element)
    s2 = np.asarray(s_per_angstrom, dtype=np.float64) ** 2
    return np.sum(a * np.exp(-b * s2[..., None]), axis=-1)


def potential_form_factor(
    element: str, q_per_angstrom: np.ndarray | float, *, b_factor: float = 0.0
) -> np.ndarray:
    """Fourier transform of one atom's Coulomb potential at spatial frequency ``q``.

    ``47.8776 * f_e(q / 2) * exp(-B q**2 / 4)`` in V·Å³. By the projection-slice theorem this
    is also the 2D Fourier transform of the atom's projected potential (V·Å) at in-plane
    frequency ``q``.

    Parameters
    ----------
    element
        Element symbol; unknown elements use carbon (logged warning).
    q_per_angstrom
        Spatial frequency magnitude in 1/Å (``q = 2 sin(theta) / lambda``).
    b_factor
        Isotropic Debye-Waller factor in Å² (``>= 0``).
    """
    a, b = scattering_parameters(element)
    q2 = np.asarray(q_per_angstrom, dtype=np.float64) ** 2
    total = np.sum(a * np.exp(-(b + b_factor) * q2[..., None] / 4.0), axis=-1)
    return POTENTIAL_PREFACTOR_V_A2 * total


def projected_potential_radial(
    element: str, r_angstrom: np.ndarray | float, *, b_factor: float = 0.0
) -> np.ndarray:
    """Projected potential of one atom at distance ``r`` (Å) from it, in V·Å (analytic).

    ``47.8776 * sum_i a_i (4 pi / (b_i + B)) exp(-4 pi**2 r**2 / (b_i + B))``: the 3D Gaussians
    integrated along the beam.
    """
    a, b = scattering_parameters(element)
    bb = b + b_factor
    r2 = np.asarray(r_angstrom, dtype=np.float64) ** 2
    terms = a * (4.0 * np.pi / bb) * np.exp(-4.0 * np.pi**2 * r2[..., None] / bb)
    return POTENTIAL_PREFACTOR_V_A2 * np.sum(terms, axis=-1)
