"""A direct electron detector in counting mode: its MTF, DQE and the counts of one frame.

Model
-----
Each electron that reaches the detector is counted with probability ``detection_efficiency``
(missed events, coincidence loss at moderate dose rates) and is recorded in the pixel where its
event was localised: the pixel it landed in, displaced by a random localisation error with a
Gaussian spread of ``psf_sigma_px`` pixels. The count of a pixel integrates the electron flux
over the pixel's area. So the expected counts of a frame are the electron flux (electrons per
pixel) times the efficiency, blurred by the point spread function, and the counts themselves
are Poisson: thinning and independently displacing the events of a Poisson process leaves a
Poisson process. The consequences, on frequencies ``f`` in Nyquist units (1 = Nyquist):

* modulation transfer function ``MTF(f) = sinc(f_x / 2) sinc(f_y / 2) exp(-2 pi^2 sigma^2
  (f_x^2 + f_y^2) / 4)`` (``sinc(x) = sin(pi x) / (pi x)``, the pixel aperture's transfer
  ``sinc(pi f / 2)`` with ``f`` in Nyquist units, ``sigma = psf_sigma_px``): 1 at zero
  frequency, ``2 / pi ~ 0.64`` from the aperture alone at Nyquist on an axis;
* noise power spectrum flat (Poisson noise is white): the count of each pixel is independent
  of its neighbours' counts;
* detective quantum efficiency ``DQE(f) = detection_efficiency * MTF(f)**2``.

Typical values: counting cameras (Gatan K2/K3, Falcon 4) have DQE(0) about 0.7-0.9 and an MTF
at Nyquist of about 0.5-0.65 in counting mode (``psf_sigma_px`` about 0.1-0.3), at doses of a
few electrons per pixel per second where coincidence loss is small. Not modelled: coincidence
loss that depends on the local dose rate, super-resolution sampling, the noise shaping that
makes real counting cameras' noise power fall slightly towards Nyquist, hot or dead pixels and
gain variations (simulated frames are gain-normalised).

References
----------
.. [1] G. McMullan, A. R. Faruqi, D. Clare, R. Henderson, "Comparison of optimal performance at
   300 keV of three direct electron detectors for use in low dose electron microscopy",
   Ultramicroscopy 147, 156-163 (2014).
.. [2] X. Li et al., "Electron counting and beam-induced motion correction enable near-atomic-
   resolution single-particle cryo-EM", Nat. Methods 10, 584-590 (2013).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from cryoden.errors import ParameterError


def frequency_nyquist_axes(shape: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """``(f_y (H, 1), f_x (1, W//2+1))`` frequencies in Nyquist units of an ``rfft2`` layout."""
    h, w = int(shape[0]), int(shape[1])
    return 2.0 * np.fft.fftfreq(h)[:, None], 2.0 * np.fft.rfftfreq(w)[None, :]


@dataclass(frozen=True)
class DetectorModel:
    """A counting detector (see the module docstring for the model).

    Attributes
    ----------
    detection_efficiency
        Fraction of the electrons that are counted, in ``(0, 1]``; the DQE at zero frequency
        (typically 0.7-0.9).
    psf_sigma_px
        Standard deviation in pixels of the Gaussian error with which an event is localised
        (``>= 0``; typically 0.1-0.3 for counting cameras).
    pixel_aperture
        Integrate the flux over each pixel's area (the ``sinc`` factor of the MTF); ``False``
        samples it at the pixel centres.
    """

    detection_efficiency: float = 0.8
    psf_sigma_px: float = 0.2
    pixel_aperture: bool = True

    def __post_init__(self) -> None:
        e = float(self.detection_efficiency)
        if not (np.isfinite(e) and 0.0 < e <= 1.0):
            raise ParameterError(f"detection_efficiency must be in (0, 1], got {e}")
        s = float(self.psf_sigma_px)
        if not (np.isfinite(s) and 0.0 <= s <= 5.0):
            raise ParameterError(f"psf_sigma_px must be in [0, 5] pixels, got {s}")
        object.__setattr__(self, "detection_efficiency", e)
        object.__setattr__(self, "psf_sigma_px", s)
        object.__setattr__(self, "pixel_aperture", bool(self.pixel_aperture))

    def mtf(self, shape: Sequence[int]) -> np.ndarray:
        """The MTF on the ``rfft2`` grid of an ``(H, W)`` image, float64 in ``[0, 1]``.

        The aperture's ``sinc`` is separable (a square pixel); the localisation blur is
        isotropic. With frequencies ``f`` in Nyquist units, a frequency of ``f / 2`` cycles per
        pixel has the Gaussian transfer ``exp(-2 pi^2 sigma^2 (f / 2)**2)``.
        """
        fy, fx = frequency_nyquist_axes(shape)
        out = np.exp(-0.5 * np.pi**2 * self.psf_sigma_px**2 * (fy**2 + fx**2))
        if self.pixel_aperture:
            out = out * np.sinc(fy / 2.0) * np.sinc(fx / 2.0)
        return out

    def mtf_radial(self, frequency_nyquist: np.ndarray | float) -> np.ndarray:
        """The MTF along an image axis at frequencies in Nyquist units (for plots and docs)."""
        f = np.asarray(frequency_nyquist, dtype=np.float64)
        out = np.exp(-0.5 * np.pi**2 * self.psf_sigma_px**2 * f**2)
        return out * np.sinc(f / 2.0) if self.pixel_aperture else out

    def dqe_radial(self, frequency_nyquist: np.ndarray | float) -> np.ndarray:
        """``DQE(f) = detection_efficiency * MTF(f)**2`` along an image axis."""
        return self.detection_efficiency * self.mtf_radial(frequency_nyquist) ** 2

    def expected_counts(self, flux_electrons_per_px: np.ndarray) -> np.ndarray:
        """Expected counts per pixel of a frame from its electron flux (electrons per pixel):
        the flux times the efficiency, blurred by the MTF (cyclic), clipped at 0 (float64)."""
        flux = np.asarray(flux_electrons_per_px, dtype=np.float64)
        spectrum = np.fft.rfft2(flux) * self.mtf(flux.shape)
        blurred = np.fft.irfft2(spectrum, s=flux.shape)
        return np.clip(self.detection_efficiency * blurred, 0.0, None)

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary (for manifests), with the MTF and DQE at Nyquist on an axis."""
        return {
            **asdict(self),
            "mtf_at_nyquist": round(float(self.mtf_radial(1.0)), 6),
            "dqe_at_zero": self.detection_efficiency,
            "dqe_at_nyquist": round(float(self.dqe_radial(1.0)), 6),
        }


def count_frame(expected_counts: np.ndarray, *, rng: np.random.Generator) -> np.ndarray:
    """Poisson counts of one frame from its expected counts per pixel (``uint16``).

    Raises
    ------
    ParameterError
        If an expected count is negative, not finite, or so large that a count would not fit
        in 16 bits (a frame of a counting camera holds a few counts per pixel).
    """
    lam = np.asarray(expected_counts, dtype=np.float64)
    if not np.all(np.isfinite(lam)) or lam.min(initial=0.0) < 0:
        raise ParameterError("expected_counts must be finite and >= 0")
    if lam.max(initial=0.0) > 10000:
        raise ParameterError(
            f"expected_counts reaches {lam.max():.0f} per pixel in one frame; a counting "
            "detector records a few: lower the dose per frame"
        )
    return rng.poisson(lam).astype(np.uint16)
