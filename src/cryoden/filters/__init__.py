"""Classical filters: real-space (mean, median, Gaussian, local Wiener) and Fourier
(low/high/band-pass, Fourier Wiener); frequencies in Nyquist units."""

from cryoden.filters.fourier import (
    apply_fourier_gain,
    bandpass,
    bandpass_gain,
    estimate_white_noise_power,
    highpass,
    highpass_gain,
    lowpass,
    lowpass_gain,
    radial_average,
    radial_frequency_nyquist,
    wiener_fourier,
)
from cryoden.filters.registry import (
    FILTER_PARAMETERS,
    FILTERS,
    apply_filter,
    check_filter_parameters,
    get_filter,
)
from cryoden.filters.spatial import gaussian_filter, mean_filter, median_filter, wiener_local

__all__ = [
    "FILTERS",
    "FILTER_PARAMETERS",
    "apply_filter",
    "apply_fourier_gain",
    "check_filter_parameters",
    "bandpass",
    "bandpass_gain",
    "estimate_white_noise_power",
    "gaussian_filter",
    "get_filter",
    "highpass",
    "highpass_gain",
    "lowpass",
    "lowpass_gain",
    "mean_filter",
    "median_filter",
    "radial_average",
    "radial_frequency_nyquist",
    "wiener_fourier",
    "wiener_local",
]
