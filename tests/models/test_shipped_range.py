"""The trained range of a shipped model: parsing, what lies outside it, volumes, the rough SNR."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cryoden.errors import ParameterError
from cryoden.models.trained_range import (
    SNR_MARGIN,
    TrainedRange,
    check_input,
    looks_like_volume,
    snr_from_denoised,
)

RANGE = TrainedRange(pixel_size_angstrom=(0.6, 2.5), snr=(0.01, 0.5))


def test_round_trip_and_validation():
    assert TrainedRange.from_dict(RANGE.to_dict()) == RANGE
    for bad in (
        {"pixel_size_angstrom": [2.5, 0.6], "snr": [0.01, 0.5]},
        {"pixel_size_angstrom": [0.6], "snr": [0.01, 0.5]},
        {"pixel_size_angstrom": [0.6, 2.5], "snr": ["a", 0.5]},
        {"pixel_size_angstrom": [0.6, 2.5], "snr": [0.01, 0.5], "dims": 4},
        [0.6, 2.5],
    ):
        with pytest.raises(ParameterError):
            TrainedRange.from_dict(bad)


def test_inside_the_range_nothing_is_found():
    assert check_input(RANGE, pixel_size_angstrom=1.1, snr_estimate=0.1) == []
    assert check_input(RANGE, pixel_size_angstrom=2.5, snr_estimate=0.5 * SNR_MARGIN) == []


@pytest.mark.parametrize("pixel", [0.3, 3.2])
def test_a_pixel_size_outside_is_named_with_the_range(pixel):
    (finding,) = check_input(RANGE, pixel_size_angstrom=pixel)
    assert finding.kind == "pixel_size" and not finding.fatal
    assert f"{pixel:.3g} Å" in finding.message and "0.6-2.5 Å" in finding.message


def test_an_unknown_pixel_size_is_noted_not_judged():
    (finding,) = check_input(RANGE, pixel_size_angstrom=None)
    assert finding.kind == "pixel_size_unknown" and not finding.fatal


@pytest.mark.parametrize(
    ("snr", "side"), [(0.001, "noisier"), (5.0, "cleaner"), (math.inf, "cleaner")]
)
def test_a_noise_level_far_outside_is_named(snr, side):
    (finding,) = check_input(RANGE, pixel_size_angstrom=1.0, snr_estimate=snr)
    assert finding.kind == "snr" and side in finding.message and "0.01-0.5" in finding.message


def test_a_volume_is_the_one_fatal_finding():
    findings = check_input(RANGE, pixel_size_angstrom=9.0, is_volume=True, snr_estimate=9.0)
    assert [(f.kind, f.fatal) for f in findings] == [("volume", True)]
    volumes = TrainedRange(pixel_size_angstrom=(1, 2), snr=(0.1, 1), dims=3)
    assert check_input(volumes, pixel_size_angstrom=1.5, is_volume=True) == []


def test_volume_or_stack_from_name_and_voxel_size():
    assert looks_like_volume("map.mrc", 100, (2.7, 2.7, 2.7))
    assert not looks_like_volume("particles.mrcs", 100, (2.7, 2.7, 2.7))  # a stack by name
    assert not looks_like_volume("tilts.mrc", 4, (0.0, 0.0, 0.0))  # no z voxel size: a stack
    assert not looks_like_volume("movie.mrc", 40, (1.0, 1.0, 0.0))
    assert not looks_like_volume("micrograph.mrc", 1, (1.0, 1.0, 1.0))  # one section


def test_snr_from_a_perfect_denoiser_is_the_true_snr(rng):
    clean = np.sin(np.linspace(0, 12, 128))[None] * np.cos(np.linspace(0, 9, 128))[:, None]
    noise = rng.normal(size=clean.shape)
    noise *= math.sqrt(clean.var() / 0.1) / noise.std()
    assert snr_from_denoised(clean + noise, clean) == pytest.approx(0.1, rel=0.05)
    assert snr_from_denoised(clean, clean) == math.inf
    with pytest.raises(ParameterError):
        snr_from_denoised(clean, clean[:10])
