"""Fixtures of the training tests."""

from __future__ import annotations

import numpy as np
import pytest

from .helpers import noisy_shapes_images


@pytest.fixture(scope="module")
def noisy_shapes() -> tuple[np.ndarray, np.ndarray]:
    """Five clean 64 x 64 shape images (four to train on, one held out) and noisy versions."""
    return noisy_shapes_images()


@pytest.fixture(scope="module")
def pairs():
    """Eight small noisy pairs of blob images (modules may define their own ``pairs``)."""
    from cryoden.training import PairDataset

    from .helpers import blob_images, noisy_pairs

    return PairDataset(noisy_pairs(blob_images(8, 32), snr=0.5))
