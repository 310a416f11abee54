"""The filter registry: names, documented parameters, errors."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from cryoden.errors import ParameterError
from cryoden.filters import FILTER_PARAMETERS, FILTERS, apply_filter, lowpass, wiener_local

EXAMPLE_PARAMS = {
    "mean": {"size": 3},
    "median": {"size": 3},
    "gaussian": {"sigma_px": 1.0},
    "lowpass": {"cutoff_nyquist": 0.05},
    "highpass": {"cutoff_nyquist": 0.5, "edge": "soft"},
    "bandpass": {"low_nyquist": 0.1, "high_nyquist": 0.5},
    "wiener": {"size": 5},
    "wiener-fourier": {},
}


def test_registry_names():
    assert set(FILTERS) == set(EXAMPLE_PARAMS)
    assert FILTERS["wiener"] is wiener_local


@pytest.mark.parametrize("name", sorted(EXAMPLE_PARAMS))
def test_each_filter_runs_and_documents_exactly_its_parameters(name, rng):
    image = rng.normal(size=(25, 32)).astype(np.float32)
    out = apply_filter(name, image, **EXAMPLE_PARAMS[name])
    assert out.dtype == np.float32 and out.shape == image.shape
    signature = inspect.signature(FILTERS[name])
    keyword_only = {
        p.name for p in signature.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY
    }
    assert keyword_only == set(FILTER_PARAMETERS[name])


def test_apply_filter_equals_the_direct_call(rng):
    image = rng.normal(size=(20, 20)).astype(np.float32)
    np.testing.assert_array_equal(
        apply_filter("LowPass", image, cutoff_nyquist=0.3), lowpass(image, cutoff_nyquist=0.3)
    )
    np.testing.assert_array_equal(
        apply_filter("wiener_fourier", image), apply_filter("wiener-fourier", image)
    )


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ParameterError) as info:
        apply_filter("bm4d", np.zeros((4, 4), np.float32))
    message = str(info.value)
    assert "bm4d" in message and all(name in message for name in FILTERS)


def test_unknown_and_missing_parameters():
    image = np.zeros((8, 8), np.float32)
    with pytest.raises(ParameterError, match="does not accept sigma_px; accepted: size"):
        apply_filter("mean", image, sigma_px=2)
    with pytest.raises(ParameterError, match="needs cutoff_nyquist"):
        apply_filter("lowpass", image)
