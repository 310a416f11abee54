"""File-backed training data: memory-mapped images give the same patches as images in memory,
hold no whole image, and sample masks confine patch centres."""

from __future__ import annotations

import gc
import gzip
import mmap
import shutil
import tracemalloc
import warnings

import mrcfile
import numpy as np
import pytest
import torch

from cryoden.errors import InputFileError, ParameterError
from cryoden.io.mrc import write_mrc
from cryoden.training import TrainConfig, train
from cryoden.training.data import PairDataset, PatchImage, SingleDataset, sample_patches
from cryoden.training.file_images import sample_rows
from cryoden.training.patches import SampleMask
from cryoden.training.splits import split_single_image, training_data

from .helpers import FAST, FAST_NET, gen


def _noisy(shape, seed):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=shape) * 3 + 100).astype(np.float32)


def _files(folder, n, shape=(40, 36), *, stack=0):
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        data = _noisy((stack, *shape) if stack else shape, i)
        path = folder / (f"s{i:03d}.mrcs" if stack else f"m{i:03d}.mrc")
        write_mrc(path, data, voxel_size_angstrom=1.0)
        paths.append(path)
    return paths


def _mapped_base(array: np.ndarray) -> object:
    """What ``array``'s memory belongs to, following views (and a buffer) to the owner."""
    base: object = array
    while isinstance(base, np.ndarray) and base.base is not None:
        base = base.base
    return base.obj if isinstance(base, memoryview) else base


def test_single_files_give_the_same_patches_as_arrays(tmp_path):
    paths = _files(tmp_path, 3)
    from_files = SingleDataset.from_files(paths)
    in_memory = SingleDataset([_noisy((40, 36), i) for i in range(3)])
    assert from_files.sources == [str(p) for p in paths]
    a = sample_patches(from_files.images, patch=16, batch=12, generator=gen(3))
    b = sample_patches(in_memory.images, patch=16, batch=12, generator=gen(3))
    assert torch.equal(a, b)


@pytest.mark.parametrize("fit_on", ["both", "a"])
def test_pair_files_give_the_same_patches_as_arrays(tmp_path, fit_on):
    a_paths, b_paths = _files(tmp_path / "a", 2), _files(tmp_path / "b", 2)
    pairs = [(_noisy((40, 36), i), _noisy((40, 36), i)) for i in range(2)]
    for (_, b), path in zip(pairs, b_paths):
        b += np.float32(0.5)  # the second image differs from the first
        write_mrc(path, b)
    from_files = PairDataset.from_files(list(zip(a_paths, b_paths)), fit_on=fit_on)
    in_memory = PairDataset(pairs, fit_on=fit_on)
    assert from_files.fit_on == fit_on and from_files.channels == 2
    a = sample_patches(from_files.images, patch=12, batch=10, generator=gen(5))
    b = sample_patches(in_memory.images, patch=12, batch=10, generator=gen(5))
    assert torch.equal(a, b)


def test_stack_sections_are_images(tmp_path):
    (path,) = _files(tmp_path, 1, stack=3)
    dataset = SingleDataset.from_files([path])
    assert len(dataset) == 3 and dataset.sources == [f"{path}:{i}" for i in range(3)]


def test_dataset_holds_memory_maps_not_arrays(tmp_path):
    """Every image reads from a memory map, and what the dataset keeps allocated does not grow
    with the files' size: a few kilobytes per image."""
    few, many = _files(tmp_path / "few", 2, (256, 256)), _files(tmp_path / "many", 16, (256, 256))
    kept = {}
    for name, paths in (("few", few), ("many", many)):
        gc.collect()
        tracemalloc.start()
        dataset = SingleDataset.from_files(paths)
        gc.collect()
        kept[name] = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        for image in dataset.images:
            assert isinstance(image, PatchImage)
            assert all(isinstance(_mapped_base(c), mmap.mmap) for c in image.channels)
        del dataset
    image_bytes = 256 * 256 * 4
    assert kept["many"] < 16 * image_bytes / 20
    assert kept["many"] - kept["few"] < 14 * image_bytes / 20


def test_training_from_files_equals_training_from_arrays(tmp_path, one_thread):
    paths = _files(tmp_path / "in", 4, (40, 40))
    config = TrainConfig(max_steps=4, **FAST)
    files = train(
        "n2v", FAST_NET, SingleDataset.from_files(paths), None, config, out=tmp_path / "f"
    )
    arrays = train(
        "n2v",
        FAST_NET,
        SingleDataset([_noisy((40, 40), i) for i in range(4)]),
        None,
        config,
        out=tmp_path / "a",
    )
    assert [r.train_loss for r in files.history] == [r.train_loss for r in arrays.history]
    assert files.best_validation_loss == arrays.best_validation_loss


def test_compressed_files_read_like_plain_ones(tmp_path):
    (path,) = _files(tmp_path, 1)
    packed = tmp_path / "m.mrc.gz"
    with open(path, "rb") as raw, gzip.open(packed, "wb") as out:
        shutil.copyfileobj(raw, out)
    plain = SingleDataset.from_files([path]).images[0]
    compressed = SingleDataset.from_files([packed], scratch_dir=tmp_path).images[0]
    assert np.array_equal(plain.load(), compressed.load())
    assert list(tmp_path.glob("cryoden-*")) == []  # the decompressed copy is unlinked


def test_nan_in_a_file_names_it(tmp_path):
    data = _noisy((40, 36), 0)
    data[5, 5] = np.nan
    path = tmp_path / "bad.mrc"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mrcfile warns about the NaN written on purpose
        with mrcfile.new(path, overwrite=True) as mrc:
            mrc.set_data(data)
    with pytest.raises(InputFileError, match="bad.mrc: contains NaN"):
        SingleDataset.from_files([path])


def test_file_masks_and_a_lone_file_split(tmp_path):
    (a,), (b,) = _files(tmp_path / "a", 1, (64, 32)), _files(tmp_path / "b", 1, (64, 32))
    mask = np.zeros((64, 32), bool)
    mask[:8, :] = True
    dataset = PairDataset.from_files([(a, b)], sample_masks=[mask])
    data = training_data(dataset, None, validation_fraction=0.25, seed=0, patch=8)
    (train_part,), (val_part,) = data.train, data.validation
    assert isinstance(train_part, PatchImage) and train_part.shape == (2, 48, 32)
    assert val_part.shape == (2, 16, 32) and not val_part.mask.unpack().any()
    patches = sample_patches(data.train, patch=8, batch=6, generator=gen(2))
    assert patches.shape == (6, 2, 8, 8)
    with pytest.raises(ParameterError, match="one entry per image"):
        SingleDataset.from_files([a, b], sample_masks=[mask])


def test_sample_rows_bound_the_fit():
    assert list(sample_rows(10, 10, 100)) == list(range(10))
    rows = sample_rows(4096, 4096, 1 << 20)
    assert rows[0] == 0 and rows[-1] == 4095 and len(rows) * 4096 <= (1 << 20) + 4096


def _coordinates(shape) -> np.ndarray:
    """An image whose pixel value is its own flat index."""
    return np.arange(shape[0] * shape[1], dtype=np.float32).reshape(shape)


def test_patch_centres_lie_inside_the_mask():
    shape, patch = (40, 30), 7  # an odd patch keeps its centre under every symmetry
    mask = np.zeros(shape, bool)
    mask[10:14, 20:25] = True
    mask[30, 5] = True
    image = PatchImage([_coordinates(shape)], mask=SampleMask(mask, shape))
    patches = sample_patches([image], patch=patch, batch=200, generator=gen(0))
    centres = patches[:, 0, patch // 2, patch // 2].numpy().astype(int)
    ys, xs = np.divmod(centres, shape[1])
    assert mask[ys, xs].all()
    assert len(set(centres.tolist())) == int(mask.sum())  # every allowed centre is drawn


def test_masked_datasets_draw_inside_their_masks():
    shape, patch = (32, 32), 5
    mask = np.zeros(shape, bool)
    mask[20:24, 8:12] = True
    empty = np.zeros(shape, bool)
    # image 0: coordinates, masked; image 1: noise under an empty mask, never to be picked
    dataset = SingleDataset([_coordinates(shape), _noisy(shape, 1)], sample_masks=[mask, empty])
    data = training_data(dataset, [], validation_fraction=0, seed=0)
    patches = sample_patches(data.train, patch=patch, batch=64, generator=gen(1))
    norm = dataset.normalization.fit(_coordinates(shape))
    centres = norm.invert(patches[:, 0, patch // 2, patch // 2].numpy())
    assert np.abs(centres - np.round(centres)).max() < 0.05  # all from image 0
    ys, xs = np.divmod(np.round(centres).astype(int), shape[1])
    assert mask[ys, xs].all() and len(set(zip(ys, xs))) > 8


def test_masks_are_checked_and_cropped():
    shape = (20, 20)
    with pytest.raises(ParameterError, match="sample mask of image 0 has shape"):
        SingleDataset([_noisy(shape, 0)], sample_masks=[np.ones((10, 10), bool)])
    with pytest.raises(ParameterError, match="must be boolean"):
        SingleDataset([_noisy(shape, 0)], sample_masks=[np.ones(shape)])
    with pytest.raises(ParameterError, match="one entry per image"):
        SingleDataset([_noisy(shape, 0)], sample_masks=[None, None])
    nothing = PatchImage([_noisy(shape, 0)], mask=SampleMask(np.zeros(shape, bool), shape))
    with pytest.raises(ParameterError, match="leave no room"):
        sample_patches([nothing], patch=5, batch=2, generator=gen(0))
    mask = np.zeros((60, 20), bool)
    mask[50:, :] = True
    image = PatchImage([_noisy((60, 20), 0)], mask=SampleMask(mask, (60, 20)))
    train_part, val_part = split_single_image(image, 0.25, 8)
    assert train_part[0].shape == (1, 45, 20) and val_part[0].shape == (1, 15, 20)
    assert not train_part[0].mask.unpack().any() and val_part[0].mask.unpack()[5:].all()


def test_same_seed_same_masked_patches():
    shape = (48, 48)
    mask = np.zeros(shape, bool)
    mask[::3, ::2] = True
    image = PatchImage([_noisy(shape, 0)], mask=SampleMask(mask, shape))
    first = sample_patches([image], patch=9, batch=8, generator=gen(4))
    assert torch.equal(first, sample_patches([image], patch=9, batch=8, generator=gen(4)))
    assert not torch.equal(first, sample_patches([image], patch=9, batch=8, generator=gen(5)))
