"""Filters by name, for the CLI and the benchmark: ``apply_filter("lowpass", image,
cutoff_nyquist=0.05)``.

Each entry of :data:`FILTERS` is a function ``f(image, **params) -> image`` (2D float32 in and
out); :data:`FILTER_PARAMETERS` documents the parameters each one accepts, with units.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from cryoden.errors import ParameterError
from cryoden.filters.fourier import bandpass, highpass, lowpass, wiener_fourier
from cryoden.filters.spatial import gaussian_filter, mean_filter, median_filter, wiener_local

FilterFunction = Callable[..., np.ndarray]

#: Name -> filter function. ``wiener`` is the adaptive local (real-space) Wiener filter.
FILTERS: dict[str, FilterFunction] = {
    "mean": mean_filter,
    "median": median_filter,
    "gaussian": gaussian_filter,
    "lowpass": lowpass,
    "highpass": highpass,
    "bandpass": bandpass,
    "wiener": wiener_local,
    "wiener-fourier": wiener_fourier,
}

_EDGE = 'edge: "hard" (default) or "soft" (raised-cosine)'
_WIDTH = "width_nyquist: soft-edge width, Nyquist units (default 0.05)"

#: Name -> {parameter: description with units and default}. Parameters without a default are
#: required.
FILTER_PARAMETERS: dict[str, dict[str, str]] = {
    "mean": {"size": "window side, odd number of pixels (default 3)"},
    "median": {"size": "window side, odd number of pixels (default 3)"},
    "gaussian": {"sigma_px": "standard deviation in pixels, >= 0 (default 1.0)"},
    "lowpass": {
        "cutoff_nyquist": "highest frequency kept, (0, 1] Nyquist units (required)",
        "edge": _EDGE,
        "width_nyquist": _WIDTH,
    },
    "highpass": {
        "cutoff_nyquist": "lowest frequency kept, (0, 1] Nyquist units (required)",
        "edge": _EDGE,
        "width_nyquist": _WIDTH,
    },
    "bandpass": {
        "low_nyquist": "lowest frequency kept, [0, high) Nyquist units (required)",
        "high_nyquist": "highest frequency kept, (0, 1] Nyquist units (required)",
        "edge": _EDGE,
        "width_nyquist": _WIDTH,
    },
    "wiener": {
        "size": "window side, odd number of pixels (default 5)",
        "noise_variance": "noise variance, image units squared (default: estimated)",
    },
    "wiener-fourier": {
        "noise_psd": "white-noise variance per pixel (default: estimated from f >= 0.9 Nyquist)",
        "radial": "radially average the power spectrum first (default true)",
    },
}


def _normalise(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def get_filter(name: str) -> FilterFunction:
    """The filter function called ``name`` (case-insensitive; ``_`` and ``-`` are the same).

    Raises
    ------
    ParameterError
        For an unknown name; the message lists the known ones.
    """
    key = _normalise(name)
    if key not in FILTERS:
        raise ParameterError(f"unknown filter {name!r}; known filters: {', '.join(FILTERS)}")
    return FILTERS[key]


def apply_filter(name: str, image: np.ndarray, **params: Any) -> np.ndarray:
    """Apply the filter called ``name`` to a 2D image.

    Parameters
    ----------
    name
        One of :data:`FILTERS`: mean, median, gaussian, lowpass, highpass, bandpass, wiener,
        wiener-fourier.
    image
        2D image ``(H, W)``.
    **params
        The filter's parameters, see :data:`FILTER_PARAMETERS`.

    Returns
    -------
    numpy.ndarray
        float32 ``(H, W)``.

    Raises
    ------
    ParameterError
        For an unknown filter name, a parameter the filter does not accept, a missing required
        parameter, or a parameter value out of range.

    Examples
    --------
    >>> import numpy as np
    >>> out = apply_filter("gaussian", np.zeros((8, 9), dtype=np.float32), sigma_px=2.0)
    >>> out.shape, out.dtype
    ((8, 9), dtype('float32'))
    """
    key = _normalise(name)
    function = get_filter(name)
    accepted = FILTER_PARAMETERS[key]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ParameterError(
            f"filter {key!r} does not accept {', '.join(unknown)}; accepted: {', '.join(accepted)}"
        )
    missing = [p for p, text in accepted.items() if "(required)" in text and p not in params]
    if missing:
        raise ParameterError(f"filter {key!r} needs {', '.join(missing)}")
    return function(image, **params)
