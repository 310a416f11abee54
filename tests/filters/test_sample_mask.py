"""The automatic sample mask: carbon, contamination and edges out; ice and particles in."""

from __future__ import annotations

import numpy as np
import pytest

from cryoden.errors import ParameterError
from cryoden.filters.sample_mask import default_window_px, sample_mask


def _ice(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Noisy ice with faint particles: unit pixel noise plus blobs of 0.3 contrast."""
    rng = np.random.default_rng(seed)
    image = rng.normal(size=shape)
    grid = np.indices(shape).astype(np.float64)
    for _ in range(12):
        centre = [rng.uniform(8, n - 8) for n in shape]
        r2 = sum((g - c) ** 2 for g, c in zip(grid, centre))
        image += 0.3 * np.exp(-r2 / (2 * 4.0**2))
    return image


def test_clean_ice_with_particles_is_all_sample():
    mask = sample_mask(_ice((160, 160)))
    assert mask.dtype == bool and mask.shape == (160, 160)
    assert mask.all()


def test_carbon_film_and_its_edge_are_excluded():
    image = _ice((160, 160), seed=1)
    image[:, :48] += 2.0  # thicker carbon: a shifted local mean
    mask = sample_mask(image)
    assert not mask[:, :40].any()  # carbon, and the edge it smears over
    assert mask[:, 80:].all()  # ice beyond half a window from the edge


def test_contamination_blob_is_excluded_with_a_margin():
    image = _ice((160, 160), seed=2)
    yy, xx = np.mgrid[0:160, 0:160]
    blob = (yy - 50) ** 2 + (xx - 110) ** 2 < 8**2
    image[blob] -= 6.0  # a dark ice crystal
    mask = sample_mask(image)
    window = default_window_px(image.shape)
    assert not mask[blob].any()
    assert not mask[50, 110 + 8 + window // 4]  # the margin around it
    assert mask[120:, :60].all()


def test_a_noisier_region_counts_as_not_sample():
    image = _ice((160, 160), seed=3)
    image[100:, 100:] *= 3.0  # nine times the variance (e.g. a hole edge's fringes)
    mask = sample_mask(image)
    assert not mask[110:, 110:].any() and mask[:60, :60].all()


def test_volumes_work_the_same_way():
    volume = _ice((32, 48, 48), seed=4)
    volume[:, :, :12] += 2.0
    mask = sample_mask(volume, window_px=9)
    assert mask.shape == volume.shape
    assert not mask[:, :, :8].any() and mask[:, :, 24:].all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"window_px": 4}, "window_px"),
        ({"window_px": 1}, "window_px"),
        ({"threshold": 0}, "threshold"),
    ],
)
def test_bad_parameters_are_named(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        sample_mask(np.zeros((16, 16)), **kwargs)


def test_non_finite_images_are_refused():
    image = np.zeros((16, 16))
    image[3, 3] = np.nan
    with pytest.raises(ParameterError, match="NaN"):
        sample_mask(image)


def test_real_particle_images_keep_their_particles(shared_data):
    from cryoden.io import read_mrc

    path = shared_data / "particles" / "aspire_sample.mrcs"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    stack = read_mrc(path).data
    fractions = [float(sample_mask(image).mean()) for image in stack]
    assert min(fractions) > 0.95
