"""Batches on Dask: a real local cluster of two worker processes gives the same outputs as one
process, survives a worker killed mid-batch, and keeps the resume rules; the batch-system job
script is what dask-jobqueue would submit.

One cluster (two processes, one thread each, no dashboard) serves the module: starting one
takes seconds.
"""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import cloudpickle
import dask
import numpy as np
import pytest

from cryoden.errors import ParameterError
from cryoden.io import read_mrc
from cryoden.models import load_model
from cryoden.pipeline.batch import BatchItem, run_batch
from cryoden.pipeline.completion import output_key
from cryoden.pipeline.denoise_job import DenoiseRecipe
from cryoden.pipeline.distributed import (
    CLUSTERS,
    ClusterSpec,
    dask_client,
    make_jobqueue_cluster,
    run_distributed,
)

pytestmark = pytest.mark.slow

# Workers unpickle this module's classes by value (tests are not importable by name there);
# Dask pickles an object by value when its class comes from such a module.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def client():
    with dask_client(ClusterSpec(workers=2, threads_per_worker=1)) as client:
        client.wait_for_workers(2, timeout=120)
        yield client


@pytest.fixture
def recipe(tiny_model) -> DenoiseRecipe:
    """The recipe a worker gets: every choice fixed, one thread."""
    loaded = load_model(tiny_model)
    base = DenoiseRecipe.for_model(loaded, settings={"threads": 1})
    return base.resolved(base.denoiser(loaded), pin_memory=True)


def _items(inputs: list[Path], out_dir: Path, recipe: DenoiseRecipe) -> list[BatchItem]:
    key = recipe.key_recipe()
    return [BatchItem(p, out_dir / p.name, output_key(key, p)) for p in inputs]


@dataclass(frozen=True)
class Factory:
    """Builds the recipe's job (``marker``: the job that kills its worker once)."""

    recipe: DenoiseRecipe
    marker: Path | None = None

    def __call__(self):
        if self.marker is None:
            return self.recipe.build()
        return _KillsItsWorkerOnce(self.recipe, self.marker)


def test_two_workers_give_what_one_process_gives(client, tmp_path, write_images, recipe):
    inputs = write_images(tmp_path / "in", 5, shape=(36, 44))
    bad = tmp_path / "in" / "bad.mrc"
    bad.write_bytes(b"not an image" * 100)
    single = _items(inputs, tmp_path / "single", recipe)
    run_batch(recipe.build(), single)
    items = _items([*inputs, bad], tmp_path / "dask", recipe)
    factory = Factory(recipe)
    report = run_distributed(client, factory, "test-recipe", items)
    assert report.count("done") == 5 and [r.item.source for r in report.failed] == [bad]
    assert "bad.mrc" in report.failed[0].problem
    for one, other in zip(single, items):
        np.testing.assert_array_equal(read_mrc(one.output).data, read_mrc(other.output).data)
    # a rerun on the cluster skips every complete output, whichever worker wrote it
    again = run_distributed(client, factory, "test-recipe", items)
    assert again.count("skipped") == 5 and again.count("failed") == 1


class _KillsItsWorkerOnce:
    """The recipe's job, except that the first compute anywhere kills its own worker process
    (``kill -9``), as an out-of-memory kill would; a marker file makes it once only."""

    def __init__(self, recipe: DenoiseRecipe, marker: Path) -> None:
        self.job, self.marker = recipe.build(), marker

    def read(self, source):
        return self.job.read(source)

    def compute(self, source, data):
        try:
            fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return self.job.compute(source, data)
        os.close(fd)
        os.kill(os.getpid(), signal.SIGKILL)
        raise AssertionError("unreachable")

    def write(self, item, data, result):
        return self.job.write(item, data, result)


def test_a_killed_worker_does_not_lose_the_batch(client, tmp_path, write_images, recipe):
    inputs = write_images(tmp_path / "in", 4, shape=(32, 32))
    reference = _items(inputs, tmp_path / "single", recipe)
    run_batch(recipe.build(), reference)
    marker = tmp_path / "killed-once"
    items = _items(inputs, tmp_path / "dask", recipe)
    factory = Factory(recipe, marker)
    report = run_distributed(client, factory, f"killer-{tmp_path.name}", items)
    assert marker.exists()  # a worker did die
    assert report.count("done") == 4 and not report.failed
    for one, other in zip(reference, items):
        np.testing.assert_array_equal(read_mrc(one.output).data, read_mrc(other.output).data)
    client.wait_for_workers(2, timeout=120)  # the nanny brings the worker back


def test_a_stop_request_submits_nothing_more(client, tmp_path, write_images, recipe):
    inputs = write_images(tmp_path / "in", 3, shape=(32, 32))
    items = _items(inputs, tmp_path / "dask", recipe)
    report = run_distributed(
        client, Factory(recipe), "test-recipe", items, should_stop=lambda: True
    )
    assert report.stopped and report.results == []
    assert not (tmp_path / "dask").exists()


@pytest.fixture
def free_dashboard_port():
    """The facility's jobqueue settings apply; here, a scheduler web page on any free port."""
    options = {"dashboard_address": ":0"}
    with dask.config.set({f"jobqueue.{k}.scheduler-options": options for k in CLUSTERS}):
        yield


@pytest.mark.usefixtures("free_dashboard_port")
def test_job_script_of_a_batch_system():
    spec = ClusterSpec(cluster="slurm", jobs=2, cores=4, memory="16GB", queue="gpu",
                       walltime="02:00:00")  # fmt: skip
    with make_jobqueue_cluster(spec) as cluster:
        script = cluster.job_script()
    assert "#SBATCH -p gpu" in script and "#SBATCH -t 02:00:00" in script
    assert "--cpus-per-task=4" in script and "#SBATCH -J cryoden" in script
    # one single-threaded worker per core
    assert "--nworkers 4" in script and "--nthreads 1" in script
    pbs = ClusterSpec(cluster="pbs", cores=2, memory="8GiB", threads_per_worker=2)
    with make_jobqueue_cluster(pbs) as cluster:
        script = cluster.job_script()
    assert "ncpus=2" in script and "--nthreads 2" in script


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({}, "exactly one of"),
        ({"workers": 2, "scheduler": "tcp://h:1"}, "exactly one of"),
        ({"workers": 0}, "workers"),
        ({"scheduler": "localhost"}, "scheduler"),
        ({"cluster": "condor", "memory": "1GB"}, "cluster"),
        ({"cluster": "slurm"}, "memory"),
        ({"cluster": "slurm", "memory": "lots"}, "memory"),
        ({"cluster": "slurm", "memory": "1GB", "walltime": "soon"}, "walltime"),
        ({"cluster": "slurm", "memory": "1GB", "cores": 1, "threads_per_worker": 2}, "cores"),
        ({"workers": 2, "queue": "gpu"}, "cluster only"),
    ],
)
def test_cluster_spec_names_the_bad_setting(fields, needle):
    with pytest.raises(ParameterError, match=needle):
        ClusterSpec(**fields)
