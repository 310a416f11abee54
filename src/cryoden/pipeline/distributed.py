"""A batch on a Dask cluster: one task per file, the model loaded once per worker.

Three kinds of cluster (:class:`ClusterSpec`): a local cluster of worker processes on this
machine (``workers``), a running scheduler (``scheduler``, ``tcp://host:port``), or workers
started as batch jobs through dask-jobqueue (``cluster``: slurm, pbs, sge or lsf, with ``jobs``
jobs of ``cores`` cores and ``memory`` each; the facility's ``jobqueue.yaml`` fills in what is
not given). Workers run one thread each by default.

:func:`run_distributed` submits one task per item (a rolling window of about twice the
cluster's threads, so a stop request takes effect between files and a huge batch does not
flood the scheduler). Each task builds the per-file job from a picklable ``factory`` once per
worker process (:func:`worker_job`, a cache keyed by the recipe's hash, such as the model's
fingerprint and options), checks the output's key, and writes the output straight to the shared
file system through the atomic writer, so the rules of :mod:`cryoden.pipeline.batch` hold
across workers: complete outputs are skipped, a bad input fails alone, nothing partial ever
carries an output's name. A worker that dies has its tasks rerun elsewhere by the scheduler
(a file whose task kills ``distributed.scheduler.allowed-failures`` workers fails, named);
an exception in a task is retried ``retries`` times.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import cloudpickle  # type: ignore[import-untyped]  # a dependency of dask, without type stubs

from cryoden.errors import ParameterError
from cryoden.pipeline.batch import BatchItem, BatchReport, FileJob, ItemResult, run_item

logger = logging.getLogger(__name__)

#: Batch systems dask-jobqueue can start workers on, and its cluster class for each.
CLUSTERS: dict[str, str] = {
    "slurm": "SLURMCluster",
    "pbs": "PBSCluster",
    "sge": "SGECluster",
    "lsf": "LSFCluster",
}
#: Seconds between checks for finished tasks and stop requests.
POLL_SECONDS = 0.1
#: Seconds to wait for a running scheduler to answer.
CONNECT_TIMEOUT_S = 30
_MEMORY = re.compile(r"^\s*\d+(\.\d+)?\s*([KMGT]i?B)\s*$", re.IGNORECASE)
_WALLTIME = re.compile(r"^(\d+-)?\d+(:\d{2}){0,2}$")


@dataclass(frozen=True)
class ClusterSpec:
    """Where a batch runs: exactly one of ``workers`` (local processes), ``scheduler`` (an
    address) or ``cluster`` (a batch system, with ``jobs``, ``cores``, ``memory`` per job and
    optional ``queue`` and ``walltime``). ``threads_per_worker`` threads per worker process;
    on a batch system each job runs ``cores // threads_per_worker`` worker processes."""

    workers: int | None = None
    scheduler: str | None = None
    cluster: str | None = None
    jobs: int = 1
    cores: int = 1
    memory: str | None = None
    queue: str | None = None
    walltime: str | None = None
    threads_per_worker: int = 1

    def __post_init__(self) -> None:
        chosen = [n for n in ("workers", "scheduler", "cluster") if getattr(self, n) is not None]
        if len(chosen) != 1:
            raise ParameterError(
                "give exactly one of workers, scheduler and cluster"
                + (f", got {' and '.join(chosen)}" if chosen else "")
            )
        for name in ("workers", "jobs", "cores", "threads_per_worker"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ParameterError(f"{name} must be a positive integer, got {value!r}")
        if self.scheduler is not None and "://" not in self.scheduler:
            raise ParameterError(
                f"scheduler must be an address such as tcp://host:8786, got {self.scheduler!r}"
            )
        if self.cluster is not None:
            if self.cluster not in CLUSTERS:
                raise ParameterError(
                    f"cluster must be one of {', '.join(CLUSTERS)}, got {self.cluster!r}"
                )
            if self.memory is None or not _MEMORY.match(self.memory):
                raise ParameterError(
                    f"memory must be given per job, such as 16GB or 8GiB, got {self.memory!r}"
                )
            if self.walltime is not None and not _WALLTIME.match(self.walltime):
                raise ParameterError(
                    f"walltime must be [D-]HH:MM:SS, HH:MM or minutes, got {self.walltime!r}"
                )
            if self.threads_per_worker > self.cores:
                raise ParameterError(
                    f"cores ({self.cores}) must be at least threads_per_worker "
                    f"({self.threads_per_worker})"
                )
        elif any(v is not None for v in (self.memory, self.queue, self.walltime)):
            raise ParameterError("memory, queue and walltime apply to a cluster only")

    @property
    def processes_per_job(self) -> int:
        """Worker processes per batch job (each of ``threads_per_worker`` threads)."""
        return max(1, self.cores // self.threads_per_worker)


def make_jobqueue_cluster(spec: ClusterSpec) -> Any:
    """The dask-jobqueue cluster of ``spec`` (no job is submitted until it is scaled; its
    ``job_script()`` shows what would be). Only the given settings are passed, so the
    facility's ``jobqueue.yaml`` supplies the rest."""
    import dask_jobqueue

    if spec.cluster is None:
        raise ParameterError("cluster is not set")
    cls = getattr(dask_jobqueue, CLUSTERS[spec.cluster])
    options: dict[str, Any] = {
        "cores": spec.cores,
        "processes": spec.processes_per_job,
        "memory": spec.memory,
        "job_name": "cryoden",
    }
    if spec.queue is not None:
        options["queue"] = spec.queue
    if spec.walltime is not None:
        options["walltime"] = spec.walltime
    return cls(**options)


@contextmanager
def dask_client(spec: ClusterSpec) -> Iterator[Any]:
    """A :class:`distributed.Client` on the cluster ``spec`` describes; a cluster started here
    (local processes, or batch jobs) is shut down on exit."""
    from distributed import Client, LocalCluster

    if spec.scheduler is not None:
        try:
            client = Client(spec.scheduler, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as exc:
            raise ParameterError(f"scheduler {spec.scheduler}: cannot connect ({exc})") from None
        with client:
            yield client
        return
    if spec.cluster is not None:
        cluster = make_jobqueue_cluster(spec)
        cluster.scale(jobs=spec.jobs)
        logger.info("asked %s for %d job(s):\n%s", spec.cluster, spec.jobs, cluster.job_script())
    else:
        cluster = LocalCluster(
            n_workers=spec.workers,
            threads_per_worker=spec.threads_per_worker,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
    with cluster, Client(cluster) as client:
        yield client


# ------------------------------------------------------------------------------ worker side

#: The jobs this worker process has built, by recipe hash (one model load per process).
_JOBS: dict[str, FileJob] = {}
_JOBS_LOCK = threading.Lock()


def worker_job(cache_key: str, factory: Callable[[], FileJob]) -> FileJob:
    """This process's job for ``cache_key``, built by ``factory()`` the first time."""
    with _JOBS_LOCK:
        job = _JOBS.get(cache_key)
        if job is None:
            job = _JOBS[cache_key] = factory()
        return job


def run_task(cache_key: str, factory: bytes, item: BatchItem, overwrite: bool) -> ItemResult:
    """One Dask task: ``item`` processed by this worker's job (skipped if complete); the job
    is built from ``factory`` (a cloudpickled callable) the first time only."""
    job = worker_job(cache_key, lambda: cloudpickle.loads(factory)())
    return run_item(job, item, overwrite=overwrite)


# ------------------------------------------------------------------------------ client side


def _window(client: Any) -> int:
    """How many tasks to keep submitted: twice the cluster's threads, at least 4."""
    try:
        threads = sum(client.nthreads().values())
    except (OSError, TimeoutError, AttributeError):
        threads = 0
    return max(4, 2 * threads)


def _killed(item: BatchItem, exc: BaseException) -> ItemResult:
    return ItemResult(
        item, "failed", f"{item.source}: its task ended the worker processes that ran it ({exc})"
    )


def run_distributed(
    client: Any,
    factory: Callable[[], FileJob],
    cache_key: str,
    items: Sequence[BatchItem],
    *,
    overwrite: bool = False,
    on_result: Callable[[ItemResult], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    retries: int = 2,
) -> BatchReport:
    """Run ``items`` on ``client``'s cluster (see the module docstring); the same report,
    callbacks and stop rule as :func:`cryoden.pipeline.batch.run_batch`.

    ``factory`` must be picklable by cloudpickle (a :func:`functools.partial` of a function on
    plain data, say) and build the same job in every process; it is pickled once.
    An exception from a task that is not about its input (the model cannot be loaded on a
    worker) is raised here after ``retries`` retries.
    """
    from distributed import KilledWorker

    payload = cloudpickle.dumps(factory)  # once, not per task; honours pickle-by-value modules
    report = BatchReport()
    total = len(items)
    waiting = list(enumerate(items))[::-1]
    running: dict[Any, BatchItem] = {}
    try:
        while waiting or running:
            if should_stop is not None and not report.stopped and should_stop():
                report.stopped = True
                waiting.clear()
            window = _window(client) if waiting else 0
            while waiting and len(running) < window:
                _, item = waiting.pop()
                future = client.submit(
                    run_task, cache_key, payload, item, overwrite, pure=False, retries=retries
                )
                running[future] = item
            finished = [f for f in running if f.done()]
            if not finished:
                time.sleep(POLL_SECONDS)
                continue
            for future in finished:
                item = running.pop(future)
                try:
                    result = future.result()
                except KilledWorker as exc:
                    result = _killed(item, exc)
                report.results.append(result)
                if on_result is not None:
                    on_result(result)
                if progress is not None:
                    progress(len(report.results), total)
    finally:
        if running:
            client.cancel(list(running))
    return report
