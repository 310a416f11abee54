"""Reproducible per-image random generators.

A run is seeded once; each image ``index`` then gets its own generator derived from
``(seed, index)`` with :class:`numpy.random.SeedSequence`, so an image's noise does not depend
on how images are batched, ordered or split across workers (as in ASPIRE and cryojax).
"""

from __future__ import annotations

import numpy as np


def image_seed_sequence(seed: int, index: int) -> np.random.SeedSequence:
    """The seed sequence of image ``index`` in a run seeded with ``seed``."""
    if seed < 0 or index < 0:
        raise ValueError(f"seed and index must be non-negative, got seed={seed}, index={index}")
    return np.random.SeedSequence(entropy=int(seed), spawn_key=(int(index),))


def image_rng(seed: int, index: int) -> np.random.Generator:
    """A generator for image ``index`` of a run seeded with ``seed``.

    Examples
    --------
    >>> a = image_rng(7, 3).normal(size=2)
    >>> b = image_rng(7, 3).normal(size=2)
    >>> bool((a == b).all())
    True
    """
    return np.random.Generator(np.random.PCG64(image_seed_sequence(seed, index)))


def image_seed(seed: int, index: int) -> int:
    """A 63-bit integer seed for image ``index`` (for manifests and torch generators)."""
    return int(
        image_seed_sequence(seed, index).generate_state(1, dtype=np.uint64)[0] >> np.uint64(1)
    )
