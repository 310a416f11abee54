"""The resumable batch runner: bad inputs fail alone, complete outputs are skipped, stale ones
redone, a stop request ends the batch between files, output faults end it."""

from __future__ import annotations

import os

import numpy as np
import pytest

from cryoden.errors import OutputFileError
from cryoden.io import read_mrc, write_mrc
from cryoden.pipeline.batch import (
    BatchItem,
    partition_complete,
    run_batch,
    run_item,
)
from cryoden.pipeline.completion import output_key
from cryoden.pipeline.mrc_job import MrcFileJob


def _double(source, data):
    return 2 * data


def _items(inputs, out_dir, recipe):
    return [BatchItem(p, out_dir / p.name, output_key(recipe, p)) for p in inputs]


@pytest.fixture
def inputs(tmp_path, write_images):
    paths = write_images(tmp_path / "in", 4)
    bad = tmp_path / "in" / "bad.mrc"
    bad.write_bytes(paths[0].read_bytes()[:-64])  # truncated
    return [paths[0], paths[1], bad, paths[2], paths[3]]


def test_a_bad_input_fails_alone(tmp_path, inputs):
    items = _items(inputs, tmp_path / "out", {"scale": 2})
    ended = []
    report = run_batch(MrcFileJob(_double), items, on_result=ended.append)
    assert [r.status for r in ended].count("done") == 4 and len(ended) == 5
    (failed,) = report.failed
    assert failed.item.source.name == "bad.mrc"
    assert "bad.mrc" in failed.problem and "truncated" in failed.problem
    assert "\n" not in failed.problem
    assert not failed.item.output.exists()
    for item in items:
        if item is not failed.item:
            out, source = read_mrc(item.output), read_mrc(item.source)
            np.testing.assert_array_equal(out.data, 2 * source.data)
            assert out.voxel_size_angstrom == source.voxel_size_angstrom
    assert report.outputs_for(items) == [None if i is failed.item else i.output for i in items]
    assert "4 succeeded, 0 skipped" in report.summary() and "1 failed" in report.summary()


def test_a_rerun_skips_complete_outputs_and_redoes_stale_ones(tmp_path, inputs):
    good = [p for p in inputs if p.name != "bad.mrc"]
    items = _items(good, tmp_path / "out", {"scale": 2})
    run_batch(MrcFileJob(_double), items)
    written = {i.output: os.stat(i.output).st_mtime_ns for i in items}
    todo, complete = partition_complete(items)
    assert todo == [] and complete == items
    report = run_batch(MrcFileJob(_double), items)  # complete outputs found as their turn comes
    assert [r.status for r in report.results] == ["skipped"] * 4
    assert {i.output: os.stat(i.output).st_mtime_ns for i in items} == written
    # another recipe (other options, another model) makes every output stale
    tripled = _items(good, tmp_path / "out", {"scale": 3})
    todo, complete = partition_complete(tripled)
    assert todo == tripled and complete == []
    run_batch(MrcFileJob(lambda source, data: 3 * data), tripled)
    np.testing.assert_array_equal(read_mrc(tripled[0].output).data, 3 * read_mrc(good[0]).data)
    # overwrite redoes complete outputs
    assert partition_complete(tripled, overwrite=True) == (tripled, [])
    assert run_item(MrcFileJob(_double), tripled[0]).status == "skipped"
    assert run_item(MrcFileJob(_double), tripled[0], overwrite=True).status == "done"


def test_a_changed_input_is_redone(tmp_path, inputs):
    items = _items(inputs[:2], tmp_path / "out", {"scale": 2})
    run_batch(MrcFileJob(_double), items)
    write_mrc(inputs[1], np.ones((40, 48), np.float32), voxel_size_angstrom=1.5)
    fresh = _items(inputs[:2], tmp_path / "out", {"scale": 2})
    todo, complete = partition_complete(fresh)
    assert [i.source for i in todo] == [inputs[1]] and complete == [fresh[0]]


def test_a_stop_request_ends_the_batch_between_files(tmp_path, inputs):
    items = _items(inputs, tmp_path / "out", {"scale": 2})
    asked = []

    def stop() -> bool:
        asked.append(True)
        return len(asked) > 2  # after two files

    report = run_batch(MrcFileJob(_double), items, should_stop=stop)
    assert report.stopped and len(report.results) == 2
    assert [i.output.exists() for i in items] == [True, True, False, False, False]
    assert "stopped" in report.summary()


def test_an_output_fault_ends_the_batch(tmp_path, inputs):
    blocker = tmp_path / "out"
    blocker.write_text("a file where the output folder should be")
    items = _items(inputs[:2], blocker / "sub", {"scale": 2})
    with pytest.raises(OutputFileError, match="out"):
        run_batch(MrcFileJob(_double), items)


def test_float16_overflow_fails_that_file_naming_dtype(tmp_path, write_images):
    (small,) = write_images(tmp_path / "in", 1)
    big = tmp_path / "in" / "big.mrc"
    write_mrc(big, np.full((16, 16), 1e6, np.float32))
    items = _items([small, big], tmp_path / "out", {"scale": 2})
    report = run_batch(MrcFileJob(_double, dtype="float16"), items)
    (failed,) = report.failed
    assert failed.item.source == big and "dtype float16" in failed.problem
    assert read_mrc(items[0].output).data.dtype == np.float32  # read back as float32
