"""Fourier-space filters: low-, high- and band-pass with hard or raised-cosine edges, and a
Fourier Wiener filter with an estimated white-noise power.

Frequencies are in Nyquist units (0 = DC, 1 = Nyquist = 0.5 cycles/pixel), measured on each axis
separately: for an ``(H, W)`` image the coefficient ``(ky, kx)`` has frequency
``sqrt((2 ky / H)**2 + (2 kx / W)**2)`` (numpy's ``fftfreq * 2``), so a cutoff means the same
physical resolution along y and x even for a non-square image. The corners of the spectrum
reach ``sqrt(2)``. Transforms are real (``rfft2``) in float64; results are float32.

Edge conventions: the pass band is kept intact and the soft (raised-cosine) transition lies in the
stop band. A low-pass at ``c`` has gain 1 for ``f <= c`` and falls to 0 at ``f = c + width``;
a high-pass at ``c`` has gain 1 for ``f >= c`` and rises from 0 at ``f = c - width`` (the width
is shortened to ``c`` so that a high-pass never lets the DC term through).
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import scipy.fft

from cryoden.errors import ParameterError
from cryoden.filters._checks import as_image

logger = logging.getLogger(__name__)

Edge = Literal["hard", "soft"]
EDGES: tuple[str, ...] = ("hard", "soft")

#: Frequencies (Nyquist units) at or above which the spectrum is taken as pure noise when the
#: Fourier Wiener filter estimates the noise power: the outermost shell and the corners.
NOISE_SHELL_NYQUIST = 0.9


# --------------------------------------------------------------------------------------------
# frequency grids and gain profiles


def radial_frequency_nyquist(shape: tuple[int, int]) -> np.ndarray:
    """Radial frequency in Nyquist units of each ``rfft2`` coefficient of an ``(H, W)`` image.

    Parameters
    ----------
    shape
        Image shape ``(H, W)``.

    Returns
    -------
    numpy.ndarray
        float64 ``(H, W // 2 + 1)``: ``sqrt(fy**2 + fx**2)`` with ``fy = 2 * fftfreq(H)`` and
        ``fx = 2 * rfftfreq(W)``; 0 at DC, 1 at Nyquist on an axis, up to about ``sqrt(2)`` in the
        corners.

    Examples
    --------
    >>> f = radial_frequency_nyquist((4, 4))
    >>> f.shape, float(f[0, 0]), float(f[0, 2]), float(f[2, 0])
    ((4, 3), 0.0, 1.0, 1.0)
    """
    if len(shape) != 2 or min(shape) < 1:
        raise ParameterError(f"shape must be (H, W) with H, W >= 1, got {tuple(shape)}")
    height, width = int(shape[0]), int(shape[1])
    fy = 2.0 * np.fft.fftfreq(height)
    fx = 2.0 * np.fft.rfftfreq(width)
    return np.sqrt(fy[:, np.newaxis] ** 2 + fx[np.newaxis, :] ** 2)


def _check_cutoff(name: str, value: float) -> float:
    try:
        cutoff = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be in (0, 1] (Nyquist units), got {value!r}") from None
    if not np.isfinite(cutoff) or not 0.0 < cutoff <= 1.0:
        raise ParameterError(f"{name} must be in (0, 1] (Nyquist units), got {value!r}")
    return cutoff


def _check_edge(edge: str, width_nyquist: float) -> float:
    if edge not in EDGES:
        raise ParameterError(f"edge must be one of {', '.join(EDGES)}, got {edge!r}")
    try:
        width = float(width_nyquist)
    except (TypeError, ValueError):
        width = float("nan")
    if edge == "soft" and (not np.isfinite(width) or width <= 0):
        raise ParameterError(f"width_nyquist must be > 0 (Nyquist units), got {width_nyquist!r}")
    return width


def _falling_cosine(frequency: np.ndarray, start: float, width: float) -> np.ndarray:
    """1 below ``start``, 0 above ``start + width``, a raised-cosine half period between."""
    t = np.clip((frequency - start) / width, 0.0, 1.0)
    return 0.5 * (1.0 + np.cos(np.pi * t))


def lowpass_gain(
    frequency: np.ndarray,
    cutoff_nyquist: float,
    *,
    edge: Edge = "hard",
    width_nyquist: float = 0.05,
) -> np.ndarray:
    """Gain of the low-pass filter at the given frequencies (Nyquist units).

    Hard: 1 for ``f <= cutoff``, else 0. Soft: 1 for ``f <= cutoff``, a raised cosine down to 0
    at ``cutoff + width_nyquist``.
    """
    cutoff = _check_cutoff("cutoff_nyquist", cutoff_nyquist)
    width = _check_edge(edge, width_nyquist)
    f = np.asarray(frequency, dtype=np.float64)
    if edge == "hard":
        return (f <= cutoff).astype(np.float64)
    return _falling_cosine(f, cutoff, width)


def highpass_gain(
    frequency: np.ndarray,
    cutoff_nyquist: float,
    *,
    edge: Edge = "hard",
    width_nyquist: float = 0.05,
) -> np.ndarray:
    """Gain of the high-pass filter at the given frequencies (Nyquist units).

    Hard: 1 for ``f >= cutoff``, else 0. Soft: 0 up to ``cutoff - w``, a raised cosine up to 1 at
    ``cutoff``, with ``w = min(width_nyquist, cutoff)`` so the DC term is always removed.
    """
    cutoff = _check_cutoff("cutoff_nyquist", cutoff_nyquist)
    width = _check_edge(edge, width_nyquist)
    f = np.asarray(frequency, dtype=np.float64)
    if edge == "hard":
        return (f >= cutoff).astype(np.float64)
    width = min(width, cutoff)
    return 1.0 - _falling_cosine(f, cutoff - width, width)


def bandpass_gain(
    frequency: np.ndarray,
    low_nyquist: float,
    high_nyquist: float,
    *,
    edge: Edge = "hard",
    width_nyquist: float = 0.05,
) -> np.ndarray:
    """Gain of the band-pass filter: the high-pass at ``low_nyquist`` times the low-pass at
    ``high_nyquist``. ``low_nyquist = 0`` keeps DC (a pure low-pass)."""
    low, high = _check_band(low_nyquist, high_nyquist)
    lowpass = lowpass_gain(frequency, high, edge=edge, width_nyquist=width_nyquist)
    if low == 0.0:
        return lowpass
    return highpass_gain(frequency, low, edge=edge, width_nyquist=width_nyquist) * lowpass


def _check_band(low_nyquist: float, high_nyquist: float) -> tuple[float, float]:
    high = _check_cutoff("high_nyquist", high_nyquist)
    try:
        low = float(low_nyquist)
    except (TypeError, ValueError):
        low = float("nan")
    if not np.isfinite(low) or not 0.0 <= low < high:
        raise ParameterError(
            f"low_nyquist must be in [0, high_nyquist) = [0, {high:g}) (Nyquist units), "
            f"got {low_nyquist!r}"
        )
    return low, high


def apply_fourier_gain(image: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """Multiply the ``rfft2`` of a 2D image by ``gain`` (``(H, W // 2 + 1)``), transform back.

    A gain that depends only on ``|fy|`` and ``fx`` (like every radial gain here) keeps the
    spectrum Hermitian, so the result is the real filtered image. Returns float32 ``(H, W)``.
    """
    img = as_image(image)
    spectrum = scipy.fft.rfft2(img.astype(np.float64))
    if gain.shape != spectrum.shape:
        raise ParameterError(f"gain shape {gain.shape} does not match rfft2 shape {spectrum.shape}")
    out = scipy.fft.irfft2(spectrum * gain, s=img.shape)
    return out.astype(np.float32)


# --------------------------------------------------------------------------------------------
# filters


def lowpass(
    image: np.ndarray,
    *,
    cutoff_nyquist: float,
    edge: Edge = "hard",
    width_nyquist: float = 0.05,
) -> np.ndarray:
    """Fourier low-pass filter.

    Parameters
    ----------
    image
        2D image ``(H, W)``, any size.
    cutoff_nyquist
        Highest frequency kept, in (0, 1] Nyquist units (with pixel size ``p`` Å, the
        resolution kept is ``2 p / cutoff_nyquist`` Å). A cutoff below the first Fourier pixel
        (``2 / max(H, W)``) keeps only the mean (DC term).
    edge
        ``"hard"`` (a sharp box, rings around edges) or ``"soft"`` (raised-cosine fall-off).
    width_nyquist
        Width of the soft fall-off beyond the cutoff, Nyquist units (ignored for hard edges).

    Returns
    -------
    numpy.ndarray
        float32 ``(H, W)``.

    Raises
    ------
    ParameterError
        If the cutoff is outside (0, 1], the edge unknown or the width not positive.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.random.default_rng(0).normal(size=(31, 40)).astype(np.float32)
    >>> out = lowpass(img, cutoff_nyquist=0.001)  # keeps only the mean
    >>> bool(np.allclose(out, img.mean(), atol=1e-5)), out.dtype
    (True, dtype('float32'))
    """
    img = as_image(image)
    gain = lowpass_gain(
        radial_frequency_nyquist(img.shape), cutoff_nyquist, edge=edge, width_nyquist=width_nyquist
    )
    return apply_fourier_gain(img, gain)


def highpass(
    image: np.ndarray,
    *,
    cutoff_nyquist: float,
    edge: Edge = "hard",
    width_nyquist: float = 0.05,
) -> np.ndarray:
    """Fourier high-pass filter: removes frequencies below ``cutoff_nyquist`` (and the mean).

    Parameters
    ----------
    image
        2D image ``(H, W)``, any size.
    cutoff_nyquist
        Lowest frequency kept, in (0, 1] Nyquist units.
    edge
        ``"hard"`` or ``"soft"`` (raised-cosine rise below the cutoff).
    width_nyquist
        Width of the soft rise, Nyquist units (at most the cutoff; ignored for hard edges).

    Returns
    -------
    numpy.ndarray
        float32 ``(H, W)`` with zero mean.

    Raises
    ------
    ParameterError
        If the cutoff is outside (0, 1], the edge unknown or the width not positive.
    """
    img = as_image(image)
    gain = highpass_gain(
        radial_frequency_nyquist(img.shape), cutoff_nyquist, edge=edge, width_nyquist=width_nyquist
    )
    return apply_fourier_gain(img, gain)


def bandpass(
    image: np.ndarray,
    *,
    low_nyquist: float,
    high_nyquist: float,
    edge: Edge = "hard",
    width_nyquist: float = 0.05,
) -> np.ndarray:
    """Fourier band-pass filter keeping ``low_nyquist <= f <= high_nyquist``.

    Parameters
    ----------
    image
        2D image ``(H, W)``, any size.
    low_nyquist
        Lowest frequency kept, in [0, high_nyquist) Nyquist units; 0 keeps the mean.
    high_nyquist
        Highest frequency kept, in (0, 1] Nyquist units.
    edge
        ``"hard"`` or ``"soft"``; soft edges fall off outside the band.
    width_nyquist
        Width of each soft edge, Nyquist units (ignored for hard edges).

    Returns
    -------
    numpy.ndarray
        float32 ``(H, W)``.

    Raises
    ------
    ParameterError
        If the limits are outside their ranges or not ordered, the edge unknown or the width not
        positive.
    """
    img = as_image(image)
    gain = bandpass_gain(
        radial_frequency_nyquist(img.shape),
        low_nyquist,
        high_nyquist,
        edge=edge,
        width_nyquist=width_nyquist,
    )
    return apply_fourier_gain(img, gain)


def _shell_index(frequency: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Shell of each coefficient: shells one Fourier pixel (of the smaller side) wide."""
    step = 2.0 / min(shape)
    return np.rint(frequency / step).astype(np.int64)


def _rfft_weights(shape: tuple[int, int]) -> np.ndarray:
    """How many coefficients of the full ``fft2`` each ``rfft2`` column stands for (1 or 2)."""
    width = shape[1]
    weights = np.full(width // 2 + 1, 2.0)
    weights[0] = 1.0
    if width % 2 == 0:
        weights[-1] = 1.0
    return np.broadcast_to(weights, (shape[0], width // 2 + 1))


def radial_average(values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Average ``rfft2``-layout values over shells one Fourier pixel wide; same layout back.

    Each coefficient is weighted by the number of full-``fft2`` coefficients it represents, so
    the average is that of the full spectrum.
    """
    frequency = radial_frequency_nyquist(shape)
    index = _shell_index(frequency, shape)
    weights = _rfft_weights(shape)
    totals = np.bincount(index.ravel(), weights=(values * weights).ravel())
    counts = np.bincount(index.ravel(), weights=weights.ravel())
    means = np.divide(totals, counts, out=np.zeros_like(totals), where=counts > 0)
    return means[index]


def estimate_white_noise_power(image: np.ndarray) -> float:
    """White-noise variance per pixel estimated from the outer spectrum.

    The mean power (orthonormal FFT) of the coefficients at ``f >= 0.9`` Nyquist -- the outermost
    shell and the corners -- where a cryo-EM image holds little signal after the CTF and
    detector envelopes. For white noise of variance ``s**2`` this is ``s**2`` (unbiased); any
    signal left there makes it an overestimate.

    Parameters
    ----------
    image
        2D image ``(H, W)``.

    Returns
    -------
    float
        Noise variance in the image's units squared (the flat noise PSD, orthonormal FFT).
    """
    img = as_image(image)
    spectrum = scipy.fft.rfft2(img.astype(np.float64), norm="ortho")
    frequency = radial_frequency_nyquist(img.shape)
    outer = frequency >= NOISE_SHELL_NYQUIST
    if not outer.any():  # a 1-pixel-wide image: only DC
        return 0.0
    weights = _rfft_weights(img.shape)[outer]
    power = np.abs(spectrum[outer]) ** 2
    return float(np.sum(power * weights) / np.sum(weights))


def wiener_fourier(
    image: np.ndarray,
    *,
    noise_psd: float | np.ndarray | None = None,
    radial: bool = True,
) -> np.ndarray:
    """Fourier Wiener filter ``H(f) = max(P(f) - N(f), 0) / P(f)``.

    ``P`` is the image's power spectrum (radially averaged when ``radial``) and ``N`` the noise
    power spectrum; with signal power ``S = P - N`` this is the Wiener gain ``S / (S + N)``.

    Parameters
    ----------
    image
        2D image ``(H, W)``.
    noise_psd
        Noise power spectral density with an orthonormal FFT, i.e. in units of pixel variance:
        white noise of variance ``s**2`` has ``noise_psd = s**2``. A number (white noise) or an
        array broadcastable to the ``rfft2`` layout ``(H, W // 2 + 1)``. None estimates white
        noise from the outer spectrum (:func:`estimate_white_noise_power`).
    radial
        Average the image power over shells one Fourier pixel wide before forming the gain
        (a smooth, isotropic gain); False uses each coefficient's own power.

    Returns
    -------
    numpy.ndarray
        float32 ``(H, W)``.

    Raises
    ------
    ParameterError
        If ``noise_psd`` is negative, not finite or of the wrong shape.
    """
    img = as_image(image)
    spectrum = scipy.fft.rfft2(img.astype(np.float64), norm="ortho")
    if noise_psd is None:
        noise = np.asarray(estimate_white_noise_power(img))
        logger.debug("wiener_fourier: estimated white-noise variance %.4g", float(noise))
    else:
        noise = np.asarray(noise_psd, dtype=np.float64)
        if not np.all(np.isfinite(noise)) or np.any(noise < 0):
            raise ParameterError("noise_psd must be finite and >= 0")
        try:
            np.broadcast_shapes(noise.shape, spectrum.shape)
        except ValueError:
            raise ParameterError(
                f"noise_psd shape {noise.shape} does not broadcast to the rfft2 shape "
                f"{spectrum.shape}"
            ) from None
    power = np.abs(spectrum) ** 2
    if radial:
        power = radial_average(power, img.shape)
    gain = np.divide(
        np.clip(power - noise, 0.0, None), power, out=np.zeros_like(power), where=power > 0
    )
    out = scipy.fft.irfft2(spectrum * gain, s=img.shape, norm="ortho")
    return out.astype(np.float32)
