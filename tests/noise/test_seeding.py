"""Per-image generators: reproducible, independent of order and of each other."""

from __future__ import annotations

import numpy as np
import pytest

from cryoden.noise import add_gaussian_noise, image_rng, image_seed


def test_same_seed_and_index_give_the_same_stream():
    np.testing.assert_array_equal(image_rng(7, 3).normal(size=50), image_rng(7, 3).normal(size=50))
    assert image_seed(7, 3) == image_seed(7, 3)
    assert 0 <= image_seed(7, 3) < 2**63


def test_noise_does_not_depend_on_order_or_batching(blob_image):
    indices = list(range(6))
    forward = {i: add_gaussian_noise(blob_image, 0.1, rng=image_rng(11, i)) for i in indices}
    backward = {i: add_gaussian_noise(blob_image, 0.1, rng=image_rng(11, i)) for i in indices[::-1]}
    for i in indices:
        np.testing.assert_array_equal(forward[i], backward[i])
    # a worker that draws something else first for another image does not disturb image 4
    other = image_rng(11, 2)
    other.normal(size=1000)
    np.testing.assert_array_equal(
        add_gaussian_noise(blob_image, 0.1, rng=image_rng(11, 4)), forward[4]
    )


def test_streams_differ_between_images_and_seeds():
    draws = {(s, i): image_rng(s, i).normal(size=4096) for s in (0, 1) for i in range(4)}
    keys = list(draws)
    for a in range(len(keys)):
        for b in range(a + 1, len(keys)):
            x, y = draws[keys[a]], draws[keys[b]]
            assert not np.array_equal(x, y)
            assert abs(np.corrcoef(x, y)[0, 1]) < 4 / np.sqrt(4096)  # 4 sigma
    assert len({image_seed(s, i) for s in range(3) for i in range(50)}) == 150


def test_negative_seed_or_index_is_rejected():
    with pytest.raises(ValueError):
        image_rng(-1, 0)
    with pytest.raises(ValueError):
        image_rng(0, -1)
