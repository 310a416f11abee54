"""A resumable batch of files: one output per input, bad inputs reported, never fatal.

A batch is a list of :class:`BatchItem` (input, output, key) and a :class:`FileJob` that reads
one input, computes its result and writes the output (with the key inside it,
:mod:`cryoden.pipeline.completion`). :func:`run_batch` runs it in one process:

- an output that is already complete (it holds the item's key) is skipped, unless
  ``overwrite``; partial outputs cannot exist, since every write is atomic;
- an input that cannot be processed (:data:`PER_FILE_ERRORS`: unreadable, truncated, NaN, too
  small, values the output type cannot hold) fails alone, with a one-line problem, and the
  batch goes on; a fault of the output side (:class:`~cryoden.errors.OutputFileError`: full
  disk, read-only folder) ends the batch, since every later file would meet it too;
- reading the next input and writing the previous output run in threads while the current one
  computes (PyTorch and NumPy release the GIL), so disk and compute overlap;
- ``should_stop()`` is asked between files (a RELION abort request); the batch then ends
  after the output in flight is written, and the report says it stopped.

:mod:`cryoden.pipeline.distributed` runs the same items and jobs on a Dask cluster.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from cryoden.errors import InputFileError, ParameterError
from cryoden.pipeline.completion import is_complete

logger = logging.getLogger(__name__)

Status = Literal["done", "skipped", "failed"]
#: Errors that concern one input only: the batch records them and goes on.
PER_FILE_ERRORS: tuple[type[Exception], ...] = (InputFileError, ParameterError)


@dataclass(frozen=True)
class BatchItem:
    """One file of a batch: the input, its output, and the key the output must hold."""

    source: Path
    output: Path
    key: str


@dataclass(frozen=True)
class ItemResult:
    """What became of one item: ``status`` (done, skipped as complete, failed), the one-line
    ``problem`` of a failure, the seconds it took, and ``facts`` the job reported about the
    input (JSON-ready; for MRC jobs its integer mode and whether its voxel size is known)."""

    item: BatchItem
    status: Status
    problem: str = ""
    seconds: float = 0.0
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass
class BatchReport:
    """The results of a batch, in the order they finished, and whether it stopped early."""

    results: list[ItemResult] = field(default_factory=list)
    stopped: bool = False

    def count(self, status: Status) -> int:
        """How many items ended with ``status``."""
        return sum(result.status == status for result in self.results)

    @property
    def failed(self) -> list[ItemResult]:
        """The failed items."""
        return [result for result in self.results if result.status == "failed"]

    def outputs_for(self, items: Sequence[BatchItem]) -> list[Path | None]:
        """Each item's output if it is complete (done or skipped), else None (failed, or not
        reached before a stop): the outputs a STAR file of the batch lists."""
        ok = {r.item.output for r in self.results if r.status in ("done", "skipped")}
        return [item.output if item.output in ok else None for item in items]

    def summary(self) -> str:
        """One line: how many succeeded, were skipped and failed, of how many."""
        done, skipped, failed = (self.count(s) for s in ("done", "skipped", "failed"))
        text = f"{done} succeeded, {skipped} skipped (already complete), {failed} failed"
        return text + (" before the batch was stopped" if self.stopped else "")


class FileJob(Protocol):
    """The per-file work of a batch, in three steps so that a runner can overlap them."""

    def read(self, source: Path) -> Any:
        """Read and check one input."""

    def compute(self, source: Path, data: Any) -> Any:
        """The result for one input (``data`` as :meth:`read` returned it)."""

    def write(self, item: BatchItem, data: Any, result: Any) -> dict[str, Any]:
        """Write ``result`` to ``item.output`` atomically, with ``item.key`` inside; return
        facts about the input worth reporting (JSON-ready)."""


def describe_failure(source: Path, exc: Exception) -> str:
    """One line naming ``source`` and the problem (an input error names its file already)."""
    text = str(exc)
    if isinstance(exc, InputFileError) and exc.path == str(source):
        return text
    return f"{source}: {text}"


def partition_complete(
    items: Sequence[BatchItem], *, overwrite: bool = False
) -> tuple[list[BatchItem], list[BatchItem]]:
    """Split ``items`` into those still to do and those whose output is already complete
    (none with ``overwrite``). Reads only the outputs' headers."""
    if overwrite:
        return list(items), []
    todo: list[BatchItem] = []
    complete: list[BatchItem] = []
    for item in items:
        (complete if is_complete(item.output, item.key) else todo).append(item)
    return todo, complete


def run_item(job: FileJob, item: BatchItem, *, overwrite: bool = False) -> ItemResult:
    """Process one item start to end (read, compute, write): skipped when its output is
    complete (unless ``overwrite``), failed with its problem on a :data:`PER_FILE_ERRORS`."""
    start = time.perf_counter()
    if not overwrite and is_complete(item.output, item.key):
        return ItemResult(item, "skipped")
    try:
        data = job.read(item.source)
        result = job.compute(item.source, data)
        facts = job.write(item, data, result)
    except PER_FILE_ERRORS as exc:
        return ItemResult(item, "failed", describe_failure(item.source, exc))
    return ItemResult(item, "done", seconds=time.perf_counter() - start, facts=dict(facts))


@dataclass
class _InFlight:
    """An item whose output is being written, and when its processing started."""

    item: BatchItem
    write: Future[dict[str, Any]]
    start: float


def run_batch(
    job: FileJob,
    items: Sequence[BatchItem],
    *,
    overwrite: bool = False,
    on_result: Callable[[ItemResult], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> BatchReport:
    """Run ``job`` over ``items`` in this process (see the module docstring).

    ``on_result(result)`` is called as each item ends; ``progress(done, total)``
    counts ended items. Returns the :class:`BatchReport`; raises only what is not about one
    input (an :class:`~cryoden.errors.OutputFileError`, a bug).
    """
    report = BatchReport()
    total = len(items)

    def finish(result: ItemResult) -> None:
        report.results.append(result)
        if result.status == "failed":
            logger.debug("failed: %s", result.problem)
        if on_result is not None:
            on_result(result)
        if progress is not None:
            progress(len(report.results), total)

    def read(item: BatchItem) -> Any:
        if not overwrite and is_complete(item.output, item.key):
            return _COMPLETE
        return job.read(item.source)

    def settle(flight: _InFlight | None) -> None:
        if flight is None:
            return
        try:
            facts = flight.write.result()
        except PER_FILE_ERRORS as exc:
            finish(ItemResult(flight.item, "failed", describe_failure(flight.item.source, exc)))
            return
        seconds = time.perf_counter() - flight.start
        finish(ItemResult(flight.item, "done", seconds=seconds, facts=dict(facts)))

    if not items:
        return report
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="cryoden-io") as pool:
        next_read: Future[Any] = pool.submit(read, items[0])
        flight: _InFlight | None = None
        try:
            for i, item in enumerate(items):
                if should_stop is not None and should_stop():
                    report.stopped = True
                    break
                start = time.perf_counter()
                current = next_read
                if i + 1 < total:
                    next_read = pool.submit(read, items[i + 1])
                try:
                    data = current.result()
                    if data is _COMPLETE:
                        finish(ItemResult(item, "skipped"))
                        continue
                    result = job.compute(item.source, data)
                except PER_FILE_ERRORS as exc:
                    finish(ItemResult(item, "failed", describe_failure(item.source, exc)))
                    continue
                previous, flight = flight, None
                settle(previous)
                flight = _InFlight(item, pool.submit(job.write, item, data, result), start)
                del data, result
        except BaseException:
            next_read.cancel()
            if flight is not None:  # let the output in flight land (it is complete)
                with contextlib.suppress(Exception):
                    flight.write.result()
            raise
        next_read.cancel()
        settle(flight)
    return report


class _Complete:
    """Marks an item found complete when its turn came (another process wrote it)."""


_COMPLETE = _Complete()
