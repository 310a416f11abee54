"""The movie-path benchmark's texture oracle (benchmarks/bench_movies_path.py): it is the
Wiener estimate of a Gaussian texture, so its error matches the Wiener bound and is below both
the texture's variance and the noise's."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    return importlib.import_module("bench_movies_path")


def _smooth_field(rng, shape, sigma_px):
    from scipy.ndimage import gaussian_filter

    field = gaussian_filter(rng.normal(size=shape), sigma_px, mode="wrap")
    return field / field.std()


def test_without_texture_it_returns_the_rest(bench):
    rng = np.random.default_rng(0)
    base = 10 + _smooth_field(rng, (64, 64), 4)
    even, odd = base / 2 + rng.normal(size=base.shape), base / 2 + rng.normal(size=base.shape)
    out = bench.texture_oracle(base, base, even, odd)
    # no texture: every frequency but the mean is filtered away from the residual
    assert np.allclose(out - base, (even + odd - base).mean(), atol=1e-9)


def test_its_error_is_the_wiener_bound_of_a_gaussian_texture(bench):
    rng = np.random.default_rng(1)
    shape = (256, 256)
    base = 100 + 3 * _smooth_field(rng, shape, 8)
    texture = 0.8 * _smooth_field(rng, shape, 1.0)
    clean = base + texture
    noise_even, noise_odd = rng.normal(size=shape), rng.normal(size=shape)
    even, odd = clean / 2 + noise_even, clean / 2 + noise_odd
    out = bench.texture_oracle(clean, base, even, odd)
    error = float(np.mean((out - clean) ** 2))
    # the bound, from the true spectra: sum over frequencies of S N / (S + N)
    sigma = 1.0
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(256), np.fft.fftfreq(256), indexing="ij"))
    s_texture = np.exp(-((2 * np.pi * k * sigma) ** 2))  # the blurred white field's spectrum
    s_texture *= 0.8**2 / s_texture.mean()
    s_noise = 2.0  # var(noise_even + noise_odd), white
    bound = float(np.mean(s_texture * s_noise / (s_texture + s_noise)))
    assert error == pytest.approx(bound, rel=0.1)
    assert error < 0.8**2 and error < s_noise
