"""Filters by name, for the CLI and the benchmark: ``apply_filter("lowpass", image,
cutoff_nyquist=0.05)``.

Each entry of :data:`FILTERS` is a function ``f(image, **params) -> image`` (2D float32 in and
out); :data:`FILTER_PARAMETERS` documents the parameters each one accepts, with units.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from cryoden.errors import ParameterError
from cryoden.filters._checks import (
    check_kernel,
    check_nonnegative,
    check_odd_size,
    gaussian_kernel_side,
)
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
    key = _checked_name(name, params)
    return FILTERS[key](image, **params)


def _checked_name(name: str, params: dict[str, Any]) -> str:
    """The registry key of filter ``name``, after checking that it accepts ``params``' names
    and that none of its required parameters is missing."""
    key = _normalise(name)
    get_filter(name)
    accepted = FILTER_PARAMETERS[key]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ParameterError(
            f"filter {key!r} does not accept {', '.join(unknown)}; accepted: {', '.join(accepted)}"
        )
    missing = [p for p, text in accepted.items() if "(required)" in text and p not in params]
    if missing:
        raise ParameterError(f"filter {key!r} needs {', '.join(missing)}")
    return key


#: The filters with a real-space kernel, and the parameter that sets its size.
_KERNEL_PARAMETER = {"mean": "size", "median": "size", "wiener": "size", "gaussian": "sigma_px"}


def check_filter_parameters(name: str, image_shape: tuple[int, ...], **params: Any) -> None:
    """Raise what :func:`apply_filter` would raise about ``params`` for an image of
    ``image_shape`` ``(..., H, W)``, without filtering anything (cheap, whatever the sizes).

    Used to check a whole batch before any work: besides each parameter's range, a kernel
    larger than the image (more taps along an axis than the image has pixels, such as
    ``sigma_px=1e9``) is refused.

    Raises
    ------
    ParameterError
        As :func:`apply_filter`.

    Examples
    --------
    >>> check_filter_parameters("gaussian", (64, 64), sigma_px=2.0)
    >>> check_filter_parameters("gaussian", (64, 64), sigma_px=1e9)
    Traceback (most recent call last):
    ...
    cryoden.errors.ParameterError: sigma_px=1000000000.0 gives a kernel of 8000000001 pixels, larger than a 64x64 image allows (4096)
    """  # noqa: E501
    key = _checked_name(name, params)
    function = FILTERS[key]
    kernel_parameter = _KERNEL_PARAMETER.get(key)
    if kernel_parameter is None:  # Fourier filters: checks independent of the image's size
        function(np.zeros((8, 8), np.float32), **params)
        return
    default = inspect.signature(function).parameters[kernel_parameter].default
    value = params.get(kernel_parameter, default)
    if kernel_parameter == "size":
        side = check_odd_size("size", value)
    else:
        side = gaussian_kernel_side(check_nonnegative("sigma_px", value))
    check_kernel(kernel_parameter, value, side, image_shape)
    if params.get("noise_variance") is not None:
        check_nonnegative("noise_variance", params["noise_variance"])
