"""Diagnostics of trained denoisers: excess high-frequency power (checkerboard artefacts).

Blind-spot networks (Noise2Void) with strided down- and up-sampling can leave a checkerboard in
their output (Höck et al., N2V2, 2022): a pattern of period 2 pixels whose power sits on the
Nyquist row and column of the spectrum, corners included (radius up to sqrt(2) in Nyquist units),
where a radial shell alone would miss or dilute it. A good denoiser's output has no more power at
the highest frequencies than the clean image.
"""

from __future__ import annotations

import numpy as np

from cryoden.errors import ParameterError


def high_frequency_masks(
    shape: tuple[int, int], *, band: tuple[float, float] = (0.9, 1.0)
) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks, in :func:`numpy.fft.fft2` layout, of the highest frequencies.

    Parameters
    ----------
    shape
        ``(H, W)``, both at least 2.
    band
        Radial limits ``(low, high)`` in Nyquist units, ``0 <= low < high``.

    Returns
    -------
    tuple of numpy.ndarray
        ``(shell, nyquist)``: the radial shell ``low <= f <= high``, and the outermost row and
        column of the spectrum (the Nyquist row and column for even sizes, corners included).
    """
    low, high = band
    if not 0.0 <= low < high:
        raise ParameterError(f"band must satisfy 0 <= low < high, got {band}")
    height, width = shape
    if height < 2 or width < 2:
        raise ParameterError(f"images must be at least 2 x 2, got {shape}")
    ky = np.round(np.fft.fftfreq(height) * height)
    kx = np.round(np.fft.fftfreq(width) * width)
    radius = np.hypot(2.0 * ky[:, None] / height, 2.0 * kx[None, :] / width)
    shell = (radius >= low) & (radius <= high)
    nyquist = (np.abs(ky) == height // 2)[:, None] | (np.abs(kx) == width // 2)[None, :]
    return shell, nyquist


def high_frequency_power(
    image: np.ndarray, *, band: tuple[float, float] = (0.9, 1.0)
) -> tuple[float, float]:
    """Mean power ``|FFT|**2 / (H * W)`` of an image in the masks of :func:`high_frequency_masks`.

    Returns
    -------
    tuple of float
        ``(shell, nyquist)`` mean powers; the mean is removed first (it has no effect on either).
    """
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2:
        raise ParameterError(f"expected a 2D image, got shape {image.shape}")
    power = np.abs(np.fft.fft2(image - image.mean())) ** 2 / image.size
    shell, nyquist = high_frequency_masks(image.shape, band=band)
    return float(power[shell].mean()), float(power[nyquist].mean())


def high_frequency_power_ratio(
    denoised: np.ndarray, clean: np.ndarray, *, band: tuple[float, float] = (0.9, 1.0)
) -> float:
    """Excess power of a denoised image at the highest frequencies, relative to the clean image.

    The ratio of the denoised to the clean image's mean power is taken in the radial shell
    ``band`` and on the Nyquist row and column (see :func:`high_frequency_masks`); the larger of
    the two is returned. Above 1, the output holds more high-frequency power than the truth:
    residual noise or a checkerboard artefact.

    Parameters
    ----------
    denoised, clean
        2D images of the same shape.
    band
        Radial band in Nyquist units (default 0.9-1.0).

    Returns
    -------
    float
        ``max(shell ratio, Nyquist ratio)``.

    Raises
    ------
    ParameterError
        If the shapes differ or the clean image has no power in the shell or on the Nyquist lines.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> clean = rng.normal(size=(32, 32))
    >>> round(high_frequency_power_ratio(clean, clean), 6)
    1.0
    >>> yy, xx = np.mgrid[0:32, 0:32]
    >>> high_frequency_power_ratio(clean + 0.3 * (-1.0) ** (yy + xx), clean) > 1.1
    True
    """
    if np.shape(denoised) != np.shape(clean):
        raise ParameterError(
            f"denoised and clean images differ in shape: {np.shape(denoised)} vs {np.shape(clean)}"
        )
    reference = high_frequency_power(clean, band=band)
    if not all(value > 0.0 for value in reference):
        raise ParameterError("the clean image has no power at the highest frequencies")
    measured = high_frequency_power(denoised, band=band)
    return max(m / r for m, r in zip(measured, reference))
