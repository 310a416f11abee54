"""Electron scattering factors: table values, units and the analytic potential of one atom."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from cryoden.simulation.projection_atoms import project_atoms
from cryoden.simulation.scattering import (
    KNOWN_ELEMENTS,
    POTENTIAL_PREFACTOR_V_A2,
    electron_scattering_factor,
    potential_form_factor,
    projected_potential_radial,
    scattering_parameters,
)
from cryoden.simulation.structures import Atoms


def test_table_matches_gemmi_c4322():
    gemmi = pytest.importorskip("gemmi")
    for element in KNOWN_ELEMENTS:
        a, b = scattering_parameters(element)
        ref = gemmi.Element(element).c4322
        np.testing.assert_allclose(a, list(ref.a), rtol=1e-6, err_msg=element)
        np.testing.assert_allclose(b, list(ref.b), rtol=1e-6, err_msg=element)
        s = np.array([0.0, 0.3, 1.0])
        np.testing.assert_allclose(
            electron_scattering_factor(element, s),
            [ref.calculate_sf(float(x * x)) for x in s],
            rtol=1e-5,
        )


def test_potential_prefactor_is_h2_over_2pi_m_e():
    # Kirkland's 2 pi a0 e = 47.878 V·Å²
    assert POTENTIAL_PREFACTOR_V_A2 == pytest.approx(47.8776, abs=1e-3)


def test_unknown_element_falls_back_to_carbon_with_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="cryoden.simulation.scattering"):
        f_x = electron_scattering_factor("Xx", 0.0)
    assert f_x == pytest.approx(electron_scattering_factor("C", 0.0))
    assert "Xx" in caplog.text


def test_single_atom_projection_matches_analytic_projected_potential():
    # With B = 150 Å² the atom is band-limited at 1 Å pixels, so the image must equal the
    # analytic projected potential (3D Gaussians integrated along z) sampled at pixel centres.
    b_factor = 150.0
    atoms = Atoms(np.array([[0.3, -0.2, 5.0]]), np.array(["O"]))
    image = project_atoms(
        atoms,
        np.eye(3),
        size=33,
        pixel_size_angstrom=1.0,
        b_factor=b_factor,
        center_angstrom=[0.0, 0.0, 0.0],
        zero_background=False,
    )
    yy, xx = np.mgrid[0:33, 0:33] - 16
    expected = projected_potential_radial("O", np.hypot(xx - 0.3, yy + 0.2), b_factor=b_factor)
    np.testing.assert_allclose(image, expected, atol=1e-3 * expected.max())


def test_image_integral_equals_forward_scattering():
    # sum(image) * p**2 = sum over atoms of 47.88 f_e(0) (V·Å³): the DC term is exact
    rng = np.random.default_rng(0)
    elements = np.array(["C", "N", "O", "S", "P", "Fe"] * 5)
    atoms = Atoms(rng.uniform(-10, 10, size=(30, 3)), elements)
    p = 1.3
    image = project_atoms(atoms, np.eye(3), size=48, pixel_size_angstrom=p, zero_background=False)
    expected = sum(float(potential_form_factor(e, 0.0)) for e in elements)
    assert image.sum() * p**2 == pytest.approx(expected, rel=1e-5)
