"""The CTF of an astigmatic objective lens (defocus that depends on the direction).

Same formula and sign convention as :mod:`cryoden.simulation.ctf` (positive defocus =
underfocus), with the defocus at azimuth ``alpha`` of the spatial frequency (CTFFIND4 / RELION)::

    dz(alpha) = ((dU + dV) + (dU - dV) cos(2 (alpha - alpha_ast))) / 2

``dU`` along the direction ``alpha_ast`` (``astigmatism_angle_deg``, counter-clockwise from the
x axis, the image's column axis) and ``dV`` perpendicular to it. With ``dU == dV`` it equals
:func:`cryoden.simulation.ctf.ctf_2d`. Typical astigmatism ``|dU - dV|``: 100-1,000 Å after
correction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from cryoden.errors import ParameterError
from cryoden.simulation.ctf import CtfParams, electron_wavelength_angstrom


@dataclass(frozen=True)
class AstigmaticCtf:
    """CTF parameters with astigmatism.

    Attributes
    ----------
    defocus_u_angstrom, defocus_v_angstrom
        Defocus in Å along ``astigmatism_angle_deg`` and perpendicular to it (underfocus > 0).
    astigmatism_angle_deg
        Direction of ``defocus_u_angstrom`` in degrees from the x axis.
    voltage_kv, cs_mm, amplitude_contrast, b_factor, phase_shift_deg
        As in :class:`cryoden.simulation.ctf.CtfParams` (``b_factor`` the envelope in Å²).
    """

    defocus_u_angstrom: float
    defocus_v_angstrom: float
    astigmatism_angle_deg: float = 0.0
    voltage_kv: float = 300.0
    cs_mm: float = 2.7
    amplitude_contrast: float = 0.1
    b_factor: float = 0.0
    phase_shift_deg: float = 0.0

    def __post_init__(self) -> None:
        for name in ("defocus_u_angstrom", "defocus_v_angstrom", "astigmatism_angle_deg"):
            value = float(getattr(self, name))
            if not np.isfinite(value):
                raise ParameterError(f"{name} must be finite, got {value}")
            object.__setattr__(self, name, value)
        # the optics are checked by CtfParams (one place for those rules)
        self.isotropic(self.mean_defocus_angstrom)

    @property
    def mean_defocus_angstrom(self) -> float:
        """``(dU + dV) / 2`` in Å."""
        return 0.5 * (self.defocus_u_angstrom + self.defocus_v_angstrom)

    def isotropic(self, defocus_angstrom: float) -> CtfParams:
        """The same optics without astigmatism at ``defocus_angstrom``."""
        return CtfParams(
            defocus_angstrom=defocus_angstrom,
            voltage_kv=self.voltage_kv,
            cs_mm=self.cs_mm,
            amplitude_contrast=self.amplitude_contrast,
            b_factor=self.b_factor,
            phase_shift_deg=self.phase_shift_deg,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary (for manifests)."""
        return {k: float(v) for k, v in asdict(self).items()}


def astigmatic_ctf_2d(
    shape: Sequence[int], ctf: AstigmaticCtf, *, pixel_size_angstrom: float
) -> np.ndarray:
    """The CTF on the ``rfft2`` grid of an ``(H, W)`` image (float64 in ``[-1, 1]``)."""
    p = float(pixel_size_angstrom)
    if not (np.isfinite(p) and p > 0):
        raise ParameterError(f"pixel_size_angstrom must be > 0, got {pixel_size_angstrom}")
    h, w = int(shape[0]), int(shape[1])
    ky = np.fft.fftfreq(h, d=p)[:, None]
    kx = np.fft.rfftfreq(w, d=p)[None, :]
    k2 = ky**2 + kx**2
    alpha = np.arctan2(ky, kx)
    du, dv = ctf.defocus_u_angstrom, ctf.defocus_v_angstrom
    defocus = 0.5 * (
        (du + dv) + (du - dv) * np.cos(2.0 * (alpha - np.deg2rad(ctf.astigmatism_angle_deg)))
    )
    lam = electron_wavelength_angstrom(ctf.voltage_kv)
    a = ctf.amplitude_contrast
    offset = np.arctan2(a, np.sqrt(1.0 - a * a)) + np.deg2rad(ctf.phase_shift_deg)
    cs = ctf.cs_mm * 1e7
    phase = np.pi * lam * defocus * k2 - 0.5 * np.pi * cs * lam**3 * k2**2 + offset
    out = np.sin(phase)
    if ctf.b_factor:
        out = out * np.exp(-ctf.b_factor * k2 / 4.0)
    return out


def delocalisation_angstrom(ctf: AstigmaticCtf, *, pixel_size_angstrom: float) -> float:
    """How far (Å) the CTF spreads a point at the Nyquist frequency: ``lambda dz k + Cs
    lambda**3 k**3`` at the larger defocus, ``k = 1 / (2 p)``; a field needs this margin so
    that a cyclic CTF filter does not wrap its edges into the image."""
    lam = electron_wavelength_angstrom(ctf.voltage_kv)
    k = 1.0 / (2.0 * float(pixel_size_angstrom))
    dz = max(abs(ctf.defocus_u_angstrom), abs(ctf.defocus_v_angstrom))
    return float(lam * dz * k + ctf.cs_mm * 1e7 * lam**3 * k**3)
