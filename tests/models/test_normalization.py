"""Robust per-image normalisation."""

from __future__ import annotations

import numpy as np
import pytest

from cryoden.errors import ParameterError
from cryoden.models.normalization import NormalizationSpec, RobustNormalization


def test_round_trip(rng):
    image = (rng.normal(size=(40, 33)) * 7.0 + 120.0).astype(np.float32)
    norm = NormalizationSpec().fit(image)
    normalised = norm.apply(image)
    assert abs(float(np.median(normalised))) < 1e-5
    assert 0.9 < float(normalised.std()) < 1.1  # the percentile scale of a Gaussian is its std
    np.testing.assert_allclose(norm.invert(normalised), image, rtol=1e-6, atol=1e-4)


def test_hot_pixels_barely_move_the_parameters(rng):
    image = rng.normal(size=(64, 64)).astype(np.float32)
    hot = image.copy()
    hot[rng.integers(0, 64, 6), rng.integers(0, 64, 6)] = 1e6
    clean_fit, hot_fit = NormalizationSpec().fit(image), NormalizationSpec().fit(hot)
    assert abs(hot_fit.center - clean_fit.center) < 0.01
    assert abs(hot_fit.scale / clean_fit.scale - 1.0) < 0.05
    # and the clip keeps the network input bounded
    assert float(np.abs(hot_fit.apply(hot)).max()) <= 50.0


def test_flat_image_gets_a_usable_scale():
    flat = np.full((8, 8), 3.0, dtype=np.float32)
    norm = RobustNormalization.fit(flat)
    assert norm.scale == 1.0
    np.testing.assert_array_equal(norm.apply(flat), 0.0)


def test_mostly_flat_image_falls_back_to_std():
    image = np.zeros((100, 100), dtype=np.float32)
    image[0, :5] = 1.0  # fewer than 0.5% of the pixels differ
    norm = RobustNormalization.fit(image)
    assert norm.scale == pytest.approx(float(image.std()))


def test_spec_round_trip_and_validation():
    spec = NormalizationSpec(clip=None, low_percentile=1.0)
    assert NormalizationSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ParameterError, match="normalisation"):
        NormalizationSpec(method="zscore")
    with pytest.raises(ParameterError, match="percentiles"):
        NormalizationSpec(low_percentile=60.0)
    with pytest.raises(ParameterError, match="unknown"):
        NormalizationSpec.from_dict({"method": "per-image-robust", "gamma": 1})
    parameters = RobustNormalization(1.0, 2.0, 3.0)
    assert RobustNormalization.from_dict(parameters.to_dict()) == parameters
