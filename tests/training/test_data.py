"""Datasets, splits and patch sampling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cryoden.errors import ParameterError
from cryoden.training.data import PairDataset, SingleDataset, sample_patches
from cryoden.training.splits import split_indices


def test_pair_normalisation_is_shared_within_a_pair(rng):
    a = (rng.normal(size=(20, 24)) * 5 + 10).astype(np.float32)
    b = (rng.normal(size=(20, 24)) * 5 + 10).astype(np.float32)
    ds = PairDataset([(a, b)])
    na, nb = ds.images[0]
    # one affine map for both images: the map from a to na also sends b to nb
    scale = (a[0, 0] - a[1, 1]) / (na[0, 0] - na[1, 1])
    center = a[0, 0] - na[0, 0] * scale
    np.testing.assert_allclose(nb * scale + center, b, rtol=1e-4, atol=1e-3)
    assert ds.channels == 2 and ds.images[0].shape == (2, 20, 24)


def test_pair_shape_mismatch_and_nan_are_refused():
    with pytest.raises(ParameterError, match="shape"):
        PairDataset([(np.zeros((4, 4)), np.zeros((4, 5)))])
    bad = np.zeros((4, 4), dtype=np.float32)
    bad[0, 0] = np.nan
    with pytest.raises(ParameterError, match="NaN"):
        SingleDataset([bad])


def test_single_dataset_and_stacks(rng):
    stack = rng.normal(size=(3, 10, 12)).astype(np.float32)
    ds = SingleDataset(stack)
    assert len(ds) == 3 and ds.images[0].shape == (1, 10, 12)
    pairs = PairDataset.from_stacks(stack, stack + 1)
    assert len(pairs) == 3
    assert pairs.subset([2, 0]).shapes == [(10, 12), (10, 12)]
    assert pairs.summary() == {"n_images": 3, "shapes": [[10, 12]], "channels": 2}


def test_split_holds_out_whole_images_reproducibly():
    train, val = split_indices(48, 0.1, seed=3)
    assert len(val) == 5 and len(train) == 43
    assert sorted(train + val) == list(range(48))
    assert split_indices(48, 0.1, seed=3) == (train, val)
    assert split_indices(5, 0.0, seed=0) == ([0, 1, 2, 3, 4], [])
    assert len(split_indices(2, 0.1, seed=0)[1]) == 1
    with pytest.raises(ParameterError):
        split_indices(1, 0.5, seed=0)


def test_sample_patches_shape_and_reproducibility(rng):
    images = [rng.normal(size=(2, 20, 30)).astype(np.float32) for _ in range(3)]
    a = sample_patches(images, patch=8, batch=5, generator=torch.Generator().manual_seed(1))
    b = sample_patches(images, patch=8, batch=5, generator=torch.Generator().manual_seed(1))
    assert a.shape == (5, 2, 8, 8) and a.dtype == torch.float32
    assert torch.equal(a, b)


def test_sample_patches_transforms_all_channels_alike(rng):
    image = rng.normal(size=(1, 16, 16)).astype(np.float32)
    pair = np.concatenate([image, 2 * image])
    patches = sample_patches([pair], patch=6, batch=64, generator=torch.Generator())
    assert torch.allclose(patches[:, 1], 2 * patches[:, 0])


def test_sample_patches_uses_all_eight_symmetries():
    # an asymmetric image filling the whole patch: every symmetry gives a distinct patch
    image = np.arange(16, dtype=np.float32).reshape(1, 4, 4)
    patches = sample_patches([image], patch=4, batch=200, generator=torch.Generator())
    distinct = {tuple(p.flatten().tolist()) for p in patches}
    assert len(distinct) == 8


def test_patch_larger_than_image_is_refused():
    with pytest.raises(ParameterError, match="patch size"):
        sample_patches([np.zeros((1, 8, 8))], patch=9, batch=1, generator=torch.Generator())
