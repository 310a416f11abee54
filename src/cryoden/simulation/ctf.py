"""Contrast transfer function (CTF) of a transmission electron microscope.

Convention (RELION / CTFFIND, weak-phase object)::

    CTF(k) = sin( pi lambda dz k**2 - (pi / 2) Cs lambda**3 k**4 + phi_A + phi_s )
             * exp(-B k**2 / 4)

with ``k`` the spatial frequency (1/Å), ``lambda`` the relativistic electron wavelength (Å),
``dz`` the defocus in Å (**positive = underfocus**), ``Cs`` the spherical aberration (Å),
``phi_A = arctan(A / sqrt(1 - A**2))`` for an amplitude-contrast fraction ``A``, ``phi_s`` an
additional phase shift (phase plate) and ``B`` an envelope B-factor (Å²). With this sign the CTF
is ``sin(phi_A) ~ A > 0`` at ``k = 0`` and positive over the first lobe of an underfocused
image, so the CTF-filtered projection keeps the projected potential's sign at low frequency (as
RELION's projections of a positive map do). A recorded micrograph's intensity contrast is
``-2 sigma (CTF * V_z)`` (dark particles), see :func:`interaction_constant`.

Functions work on square or rectangular images in numpy's FFT layout (``rfft2`` by default).

References
----------
.. [1] A. Rohou, N. Grigorieff, "CTFFIND4: Fast and accurate defocus estimation from electron
   micrographs", J. Struct. Biol. 192, 216-221 (2015).
.. [2] S. H. W. Scheres, J. Struct. Biol. 180, 519-530 (2012) (RELION, ``ctf.h``).
.. [3] E. J. Kirkland, *Advanced Computing in Electron Microscopy*, 2nd ed., Springer (2010),
   eq. 2.5 (wavelength) and 5.6 (interaction constant).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import scipy.constants as const
import scipy.fft

from cryoden.errors import ParameterError
from cryoden.simulation.gridding import check_positive as _positive


def electron_wavelength_angstrom(voltage_kv: float) -> float:
    """Relativistic electron wavelength in Å at an accelerating voltage in kV.

    ``lambda = h / sqrt(2 m0 e V (1 + e V / (2 m0 c**2)))``: 0.02508 Å at 200 kV, 0.01969 Å at
    300 kV.

    Examples
    --------
    >>> round(electron_wavelength_angstrom(300), 5)
    0.01969
    """
    v = _positive("voltage_kv", voltage_kv) * 1e3
    m0, e, c, h = const.m_e, const.e, const.c, const.h
    wavelength_m = h / np.sqrt(2 * m0 * e * v * (1 + e * v / (2 * m0 * c**2)))
    return float(wavelength_m * 1e10)


def interaction_constant(voltage_kv: float) -> float:
    """Electron interaction constant ``sigma`` in rad/(V·Å): phase shift per projected potential.

    ``sigma = 2 pi m e lambda / h**2`` with the relativistic mass ``m``: 0.000729 at 200 kV,
    0.000653 at 300 kV (Kirkland 2010, eq. 5.6).
    """
    v = _positive("voltage_kv", voltage_kv) * 1e3
    m0, e, c, h = const.m_e, const.e, const.c, const.h
    wavelength_m = electron_wavelength_angstrom(voltage_kv) * 1e-10
    mass = m0 * (1 + e * v / (m0 * c**2))
    sigma_per_v_m = 2 * np.pi * mass * e * wavelength_m / h**2
    return float(sigma_per_v_m * 1e-10)


@dataclass(frozen=True)
class CtfParams:
    """CTF parameters (see the module docstring for the formula and sign convention).

    Attributes
    ----------
    defocus_angstrom
        Defocus in Å, positive = underfocus (typically 5,000-30,000).
    voltage_kv
        Accelerating voltage in kV.
    cs_mm
        Spherical aberration in mm (``>= 0``).
    amplitude_contrast
        Amplitude-contrast fraction in ``[0, 1)``.
    b_factor
        Envelope B-factor in Å² (``>= 0``), multiplies by ``exp(-B k**2 / 4)``.
    phase_shift_deg
        Additional phase shift in degrees (e.g. 90 for an ideal phase plate).
    """

    defocus_angstrom: float
    voltage_kv: float = 300.0
    cs_mm: float = 2.7
    amplitude_contrast: float = 0.1
    b_factor: float = 0.0
    phase_shift_deg: float = 0.0

    def __post_init__(self) -> None:
        _validate(
            defocus_angstrom=self.defocus_angstrom,
            voltage_kv=self.voltage_kv,
            cs_mm=self.cs_mm,
            amplitude_contrast=self.amplitude_contrast,
            b_factor=self.b_factor,
            phase_shift_deg=self.phase_shift_deg,
        )

    def to_dict(self) -> dict[str, float]:
        """Plain dictionary (for manifests; also the keyword arguments of :func:`apply_ctf`)."""
        return {k: float(v) for k, v in asdict(self).items()}


def _validate(
    *,
    defocus_angstrom: float,
    voltage_kv: float,
    cs_mm: float,
    amplitude_contrast: float,
    b_factor: float,
    phase_shift_deg: float,
) -> None:
    if not np.isfinite(defocus_angstrom):
        raise ParameterError(f"defocus_angstrom must be finite, got {defocus_angstrom}")
    _positive("voltage_kv", voltage_kv)
    if not np.isfinite(cs_mm) or cs_mm < 0:
        raise ParameterError(f"cs_mm must be >= 0, got {cs_mm}")
    if not 0.0 <= amplitude_contrast < 1.0:
        raise ParameterError(f"amplitude_contrast must be in [0, 1), got {amplitude_contrast}")
    if not np.isfinite(b_factor) or b_factor < 0:
        raise ParameterError(f"the CTF b_factor must be >= 0 Å², got {b_factor}")
    if not np.isfinite(phase_shift_deg):
        raise ParameterError(f"phase_shift_deg must be finite, got {phase_shift_deg}")


def _phase_offset(amplitude_contrast: float, phase_shift_deg: float) -> float:
    a = amplitude_contrast
    return float(np.arctan2(a, np.sqrt(1.0 - a * a)) + np.deg2rad(phase_shift_deg))


def ctf_1d(
    frequency_per_angstrom: np.ndarray | float,
    *,
    defocus_angstrom: float,
    voltage_kv: float = 300.0,
    cs_mm: float = 2.7,
    amplitude_contrast: float = 0.1,
    b_factor: float = 0.0,
    phase_shift_deg: float = 0.0,
) -> np.ndarray:
    """The CTF at spatial frequencies ``k`` (1/Å) (isotropic, no astigmatism)."""
    _validate(
        defocus_angstrom=defocus_angstrom,
        voltage_kv=voltage_kv,
        cs_mm=cs_mm,
        amplitude_contrast=amplitude_contrast,
        b_factor=b_factor,
        phase_shift_deg=phase_shift_deg,
    )
    lam = electron_wavelength_angstrom(voltage_kv)
    cs = cs_mm * 1e7
    k2 = np.asarray(frequency_per_angstrom, dtype=np.float64) ** 2
    phase = (
        np.pi * lam * defocus_angstrom * k2
        - 0.5 * np.pi * cs * lam**3 * k2**2
        + _phase_offset(amplitude_contrast, phase_shift_deg)
    )
    out = np.sin(phase)
    if b_factor:
        out = out * np.exp(-b_factor * k2 / 4.0)
    return out


def frequency_grid(
    shape: Sequence[int], pixel_size_angstrom: float, *, rfft: bool = True
) -> np.ndarray:
    """Spatial-frequency magnitude (1/Å) of a 2D DFT in numpy's layout (``rfft2`` or ``fft2``)."""
    p = _positive("pixel_size_angstrom", pixel_size_angstrom)
    if len(shape) != 2 or min(shape) < 1:
        raise ParameterError(f"shape must be (H, W), got {tuple(shape)}")
    h, w = int(shape[0]), int(shape[1])
    ky = np.fft.fftfreq(h, d=p)[:, None]
    kx = (np.fft.rfftfreq(w, d=p) if rfft else np.fft.fftfreq(w, d=p))[None, :]
    return np.sqrt(ky**2 + kx**2)


def ctf_2d(
    shape: Sequence[int],
    *,
    pixel_size_angstrom: float,
    defocus_angstrom: float,
    voltage_kv: float = 300.0,
    cs_mm: float = 2.7,
    amplitude_contrast: float = 0.1,
    b_factor: float = 0.0,
    phase_shift_deg: float = 0.0,
    rfft: bool = True,
    fftshift: bool = False,
) -> np.ndarray:
    """The CTF on the 2D DFT grid of an ``(H, W)`` image.

    Parameters
    ----------
    shape
        ``(H, W)`` of the image (odd sizes allowed).
    pixel_size_angstrom
        Pixel size in Å.
    defocus_angstrom
        Defocus in Å, positive = underfocus.
    voltage_kv
        Accelerating voltage in kV.
    cs_mm
        Spherical aberration in mm.
    amplitude_contrast
        Amplitude-contrast fraction in ``[0, 1)``.
    b_factor
        Envelope B-factor in Å².
    phase_shift_deg
        Additional phase shift in degrees.
    rfft
        ``(H, W // 2 + 1)`` layout of :func:`numpy.fft.rfft2` (default), else ``(H, W)`` of
        :func:`numpy.fft.fft2`.
    fftshift
        Put the zero frequency at the centre (only with ``rfft=False``).

    Returns
    -------
    numpy.ndarray
        float64 CTF values in ``[-1, 1]``.
    """
    if fftshift and rfft:
        raise ParameterError("fftshift=True needs rfft=False (full layout)")
    k = frequency_grid(shape, pixel_size_angstrom, rfft=rfft)
    out = ctf_1d(
        k,
        defocus_angstrom=defocus_angstrom,
        voltage_kv=voltage_kv,
        cs_mm=cs_mm,
        amplitude_contrast=amplitude_contrast,
        b_factor=b_factor,
        phase_shift_deg=phase_shift_deg,
    )
    return np.fft.fftshift(out) if fftshift else out


def apply_ctf(
    image: np.ndarray,
    *,
    pixel_size_angstrom: float,
    defocus_angstrom: float,
    voltage_kv: float = 300.0,
    cs_mm: float = 2.7,
    amplitude_contrast: float = 0.1,
    b_factor: float = 0.0,
    phase_shift_deg: float = 0.0,
    pad_factor: float = 1.0,
) -> np.ndarray:
    """Filter an image by the CTF (multiplication of its Fourier transform).

    Parameters
    ----------
    image
        ``(H, W)`` image (e.g. a projected potential).
    pixel_size_angstrom, defocus_angstrom, voltage_kv, cs_mm, amplitude_contrast, b_factor
        See :func:`ctf_2d`.
    phase_shift_deg
        See :func:`ctf_2d`.
    pad_factor
        Zero-pad the image to ``pad_factor`` times its size (centred) before filtering and
        crop back, so the CTF's delocalisation does not wrap around the edges (``>= 1``; 2 is
        right for particles on an empty background).

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` float32 filtered image.
    """
    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 2:
        raise ParameterError(f"apply_ctf needs a 2D image, got shape {img.shape}")
    if not np.isfinite(pad_factor) or pad_factor < 1:
        raise ParameterError(f"pad_factor must be >= 1, got {pad_factor}")
    h, w = img.shape
    ph, pw = int(np.ceil(h * pad_factor)), int(np.ceil(w * pad_factor))
    y0, x0 = (ph - h) // 2, (pw - w) // 2
    padded = np.zeros((ph, pw))
    padded[y0 : y0 + h, x0 : x0 + w] = img
    ctf = ctf_2d(
        (ph, pw),
        pixel_size_angstrom=pixel_size_angstrom,
        defocus_angstrom=defocus_angstrom,
        voltage_kv=voltage_kv,
        cs_mm=cs_mm,
        amplitude_contrast=amplitude_contrast,
        b_factor=b_factor,
        phase_shift_deg=phase_shift_deg,
    )
    filtered = scipy.fft.irfft2(scipy.fft.rfft2(padded) * ctf, s=(ph, pw))
    return filtered[y0 : y0 + h, x0 : x0 + w].astype(np.float32)


def ctf_zero_frequencies(
    *,
    defocus_angstrom: float,
    max_frequency_per_angstrom: float,
    voltage_kv: float = 300.0,
    cs_mm: float = 2.7,
    amplitude_contrast: float = 0.1,
    phase_shift_deg: float = 0.0,
) -> np.ndarray:
    """Analytic zeros of the CTF up to a maximum spatial frequency, sorted, in 1/Å.

    The zeros solve ``pi lambda dz x - (pi/2) Cs lambda**3 x**2 + phi = n pi`` for
    ``x = k**2`` and every integer ``n`` reached on ``(0, k_max**2]`` (both roots of the
    quadratic, so zeros past the Scherzer-like turning point are included too).

    Examples
    --------
    >>> z = ctf_zero_frequencies(defocus_angstrom=10000, max_frequency_per_angstrom=0.1,
    ...                          cs_mm=0.0, amplitude_contrast=0.0)
    >>> bool(abs(z[0] - 1 / (0.019687 * 10000) ** 0.5) < 1e-4)  # k1 = 1 / sqrt(lambda dz)
    True
    """
    _validate(
        defocus_angstrom=defocus_angstrom,
        voltage_kv=voltage_kv,
        cs_mm=cs_mm,
        amplitude_contrast=amplitude_contrast,
        b_factor=0.0,
        phase_shift_deg=phase_shift_deg,
    )
    k_max = _positive("max_frequency_per_angstrom", max_frequency_per_angstrom)
    lam = electron_wavelength_angstrom(voltage_kv)
    a2 = -0.5 * np.pi * cs_mm * 1e7 * lam**3  # coefficient of x**2
    a1 = np.pi * lam * defocus_angstrom  # coefficient of x
    a0 = _phase_offset(amplitude_contrast, phase_shift_deg)
    x_max = k_max**2

    def phase(x: float) -> float:
        return a2 * x * x + a1 * x + a0

    candidates = [0.0, x_max]
    if a2 != 0.0 and 0.0 < -a1 / (2 * a2) < x_max:
        candidates.append(-a1 / (2 * a2))
    values = [phase(x) for x in candidates]
    n_low = int(np.ceil(min(values) / np.pi))
    n_high = int(np.floor(max(values) / np.pi))
    roots: list[float] = []
    for n in range(n_low, n_high + 1):
        c = a0 - n * np.pi
        if a2 == 0.0:
            xs = [-c / a1] if a1 != 0.0 else []
        else:
            disc = a1 * a1 - 4 * a2 * c
            if disc < 0:
                continue
            sq = np.sqrt(disc)
            xs = [(-a1 - sq) / (2 * a2), (-a1 + sq) / (2 * a2)]
        roots.extend(x for x in xs if 0.0 < x <= x_max)
    return np.sqrt(np.unique(np.round(roots, 15)))
