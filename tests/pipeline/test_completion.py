"""Keys: an output is complete exactly when it holds the key of its input and recipe."""

from __future__ import annotations

import os
import shutil

import mrcfile
import numpy as np

from cryoden.io import write_mrc
from cryoden.pipeline.batch import BatchItem
from cryoden.pipeline.completion import (
    KEY_HEX_DIGITS,
    is_complete,
    model_fingerprint,
    output_key,
    recorded_keys,
)
from cryoden.pipeline.mrc_job import MrcFileJob

RECIPE = {"command": "test", "scale": 2.0}


def _double(source, data):
    return 2 * data


def _write_output(tmp_path, source, recipe=RECIPE):
    item = BatchItem(source, tmp_path / "out" / source.name, output_key(recipe, source))
    job = MrcFileJob(_double, history_label="test")
    data = job.read(source)
    job.write(item, data, job.compute(source, data))
    return item


def test_key_depends_on_the_recipe_and_the_input(tmp_path, write_images):
    (source,) = write_images(tmp_path / "in", 1)
    key = output_key(RECIPE, source)
    assert len(key) == KEY_HEX_DIGITS and key == output_key(dict(RECIPE), source)
    assert output_key({**RECIPE, "scale": 3.0}, source) != key
    stat = os.stat(source)
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # the input rewritten
    assert output_key(RECIPE, source) != key


def test_an_output_carries_its_own_key(tmp_path, write_images):
    (source,) = write_images(tmp_path / "in", 1)
    item = _write_output(tmp_path, source)
    assert recorded_keys(item.output) == (item.key,)
    assert is_complete(item.output, item.key)
    assert not is_complete(item.output, output_key({**RECIPE, "scale": 3.0}, source))
    assert not is_complete(tmp_path / "missing.mrc", item.key)


def test_a_cut_or_foreign_file_is_not_complete(tmp_path, write_images):
    (source,) = write_images(tmp_path / "in", 1)
    item = _write_output(tmp_path, source)
    raw = item.output.read_bytes()
    cut = tmp_path / "cut.mrc"
    cut.write_bytes(raw[:-10])  # as a copy interrupted half way would leave it
    assert not is_complete(cut, item.key)
    foreign = tmp_path / "foreign.mrc"
    write_mrc(foreign, np.zeros((4, 4), np.float32), labels=[f"cryoden-key {item.key}x"])
    assert not is_complete(foreign, item.key)


def test_the_key_survives_an_input_with_ten_labels(tmp_path):
    """The header holds ten labels: the input's history is cut, never the key."""
    source = tmp_path / "labelled.mrc"
    old_key = "0" * KEY_HEX_DIGITS
    labels = [f"step {i}" for i in range(9)] + [f"cryoden-key {old_key}"]
    write_mrc(source, np.ones((8, 8), np.float32), labels=labels)
    item = _write_output(tmp_path, source)
    assert recorded_keys(item.output) == (item.key,)  # the input's own key is not carried over
    with mrcfile.open(item.output, header_only=True) as mrc:
        assert int(mrc.header.nlabl) == 10


def test_model_fingerprint_follows_the_weights_not_the_copy(tmp_path, tiny_model):
    copy = tmp_path / "copy.safetensors"
    shutil.copyfile(tiny_model, copy)
    assert model_fingerprint(copy) == model_fingerprint(tiny_model)
    raw = bytearray(copy.read_bytes())
    raw[-1] ^= 1  # one bit of one weight
    copy.write_bytes(bytes(raw))
    assert model_fingerprint(copy) != model_fingerprint(tiny_model)
