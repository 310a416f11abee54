"""What the batch commands over MRC files (``denoise``, ``filter``) share: inputs expanded from
files, folders, glob patterns, one STAR file or ``.cs`` files; outputs mirroring the input
folders under OUTDIR; the output data type; the progress bar; one line per failed input; the
closing summary and exit status; the STAR file of the outputs.

Rules (stated in each command's help): the options (and the model) are checked before any work;
an input that cannot be processed is reported in one line naming it, the others are processed,
and the command ends with status 1. Outputs are float32 (MRC mode 2) unless ``--dtype float16``
(mode 12, half the bytes); an integer input (int8, int16, uint16) still comes back as floating
point, because processed values are not integers, and the command says so in one line. The voxel
size and origin are the input's; an unknown voxel size (0 or not finite in the header) stays
unknown, written as 0 (MRC's "unknown"), never as NaN, with one warning line. A rerun skips the
outputs that are already complete (made from the same input with the same model or filter and
options; ``--overwrite`` redoes them).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from cryoden.cli.common import check_output_folder, echo, err_console, flag_names, with_flags
from cryoden.cli.options import choice_option, count_option
from cryoden.errors import InputFileError, ParameterError
from cryoden.io.inputs import InputSet, expand_inputs, mirrored_outputs
from cryoden.io.mrc import WRITE_DTYPES, is_stack_path
from cryoden.io.star import write_star_with_outputs
from cryoden.pipeline.batch import BatchItem, BatchReport, ItemResult
from cryoden.pipeline.completion import output_key
from cryoden.pipeline.distributed import CLUSTERS, ClusterSpec

logger = logging.getLogger("cryoden.cli.batch")


#: IN...: the inputs of a batch command.
INPUTS = typer.Argument(
    ...,
    metavar="IN...",
    help="MRC images or stacks, folders of them, quoted glob patterns ('Movies/**/*.mrc'), one "
    "RELION STAR file or cryoSPARC .cs files.",
)
#: --dtype of the batch commands.
DTYPE = choice_option(
    "--dtype",
    "Output data type: float32 (MRC mode 2) or float16 (mode 12, half the disk; values beyond "
    "±65504 are refused) (default: float32).",
    WRITE_DTYPES,
)
#: --overwrite: redo outputs that are already complete.
OVERWRITE = typer.Option(
    False,
    "--overwrite",
    help="Redo every output, even those already complete (by default a rerun skips them).",
)


@dataclass(frozen=True)
class BatchPlan:
    """The expanded inputs, their outputs, and one item (input, output, key) per input."""

    inputs: InputSet
    outputs: tuple[Path, ...]
    items: tuple[BatchItem, ...] = ()

    def with_keys(self, recipe: dict[str, Any]) -> BatchPlan:
        """This plan with each item's key: of ``recipe`` (what decides the outputs) and the
        input (:func:`~cryoden.pipeline.completion.output_key`)."""
        items = tuple(
            BatchItem(item.path, out, output_key(recipe, item.path))
            for item, out in zip(self.inputs.items, self.outputs)
        )
        return dataclasses.replace(self, items=items)


def output_suffix(path: Path) -> str:
    """``.mrcs`` for a stack input (``.mrcs``), ``.mrc`` for anything else."""
    name = path.name.lower()
    for compressed in (".gz", ".bz2"):
        name = name.removesuffix(compressed)
    return ".mrcs" if is_stack_path(name) else ".mrc"


def plan_batch(specs: Sequence[Path], out_dir: Path, *, protected: Sequence[Path]) -> BatchPlan:
    """Expand ``specs`` and give each input its mirrored output under ``out_dir``; refuse,
    before any work, outputs that would collide, land on an input or on a ``protected`` file
    (the model), or an output folder that cannot be one. Keys come with
    :meth:`BatchPlan.with_keys`."""
    inputs = expand_inputs(specs)
    outputs = mirrored_outputs(inputs.items, out_dir, suffix_for=output_suffix)
    check_output_folder(out_dir)
    guarded = {os.path.realpath(item.path) for item in inputs.items}
    guarded |= {os.path.realpath(path) for path in protected}
    for out in outputs:
        if os.path.realpath(out) in guarded:
            raise InputFileError(out, "is an input file; cryoden never overwrites its inputs")
    return BatchPlan(inputs, tuple(outputs))


def write_outputs_star(
    plan: BatchPlan, report: BatchReport, out_dir: Path, name: str
) -> Path | None:
    """``OUTDIR/<name>`` when the inputs came from a STAR file: every block and column kept,
    ``rlnMicrographName`` pointing at each complete output (the input's path in
    ``rlnMicrographNameRaw``), failed rows left out. None when there is nothing to list."""
    star = plan.inputs.star
    outputs = report.outputs_for(plan.items)
    if star is None or not any(out is not None for out in outputs):
        return None
    rows: list[Path | None] = [None] * len(star)
    for item, out in zip(plan.inputs.items, outputs):
        if item.row is not None:
            rows[item.row] = out
    path = Path(out_dir) / name
    write_star_with_outputs(star, rows, path)
    return path


# ------------------------------------------------------------------------------ what is said


@dataclass(frozen=True)
class InputNotes:
    """What a batch says about its inputs once done: the integer modes among them, and the
    inputs without a voxel size (from the facts each item reported)."""

    integer_modes: tuple[str, ...]
    unknown_voxel_size: tuple[str, ...]
    dtype: str

    @classmethod
    def from_results(cls, results: Sequence[ItemResult], dtype: str | None) -> InputNotes:
        done = [r for r in results if r.status == "done"]
        modes = sorted({str(r.facts["integer_mode"]) for r in done if r.facts.get("integer_mode")})
        unknown = [r.item.source.name for r in done if r.facts.get("voxel_size_known") is False]
        return cls(tuple(modes), tuple(unknown), dtype or "float32")

    def log(self) -> None:
        """One info line on integer inputs, one warning line on unknown voxel sizes."""
        if self.integer_modes:
            logger.info(
                "%s input(s) written as %s: processed values are not integers (--dtype "
                "float16 halves the size)", "/".join(self.integer_modes), self.dtype,
            )  # fmt: skip
        if self.unknown_voxel_size:
            first, count = self.unknown_voxel_size[0], len(self.unknown_voxel_size)
            more = f" and {count - 1} more" if count > 1 else ""
            logger.warning(
                "%s%s: no voxel size in the header (0 or NaN); the output's stays unknown "
                "(written as 0)", first, more,
            )  # fmt: skip


class RateColumn(ProgressColumn):
    """Images per minute (per hour when slower than one a minute)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        if not speed:
            return Text("-/min", style="progress.data.speed")
        text = f"{speed * 60:.3g}/min" if speed * 60 >= 1 else f"{speed * 3600:.3g}/h"
        return Text(text, style="progress.data.speed")


def _quiet() -> bool:
    return logging.getLogger("cryoden").getEffectiveLevel() > logging.INFO


def _error_line(text: str) -> str:
    return f"cryoden: error: {' '.join(text.split())}"


@contextmanager
def batch_console(
    description: str, total: int, flags: dict[str, str]
) -> Iterator[Callable[[ItemResult], None]]:
    """Yield the ``on_result`` callback of a batch: a failed input is one error line (its
    parameters reworded as ``flags``), a finished one advances a rich progress bar (done,
    rate, elapsed, time left) on a terminal, coarse log lines elsewhere, nothing with
    ``--quiet``. Failures do not advance the bar, so a batch of one bad file says one line."""
    state = {"ended": 0, "logged": -1}
    interactive = err_console.is_terminal or os.environ.get("CRYODEN_PROGRESS") == "1"
    log = logging.getLogger("cryoden.cli")

    def plain(text: str) -> None:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()

    if _quiet() or not interactive:

        def on_result(result: ItemResult) -> None:
            state["ended"] += 1
            if result.status == "failed":
                plain(_error_line(with_flags(result.problem, flags)))
                return
            tenth = 10 * state["ended"] // max(total, 1)
            if tenth != state["logged"] or state["ended"] == total:
                state["logged"] = tenth
                log.info("%s: %d/%d", description, state["ended"], total)

        yield on_result
        return
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console, transient=False) as bar:
        task = bar.add_task(description, total=total)

        def on_result_bar(result: ItemResult) -> None:
            state["ended"] += 1
            if result.status == "failed":  # printed above the bar, never wrapped
                line = _error_line(with_flags(result.problem, flags))
                bar.console.print(line, markup=False, highlight=False, soft_wrap=True)
                return
            bar.update(task, completed=state["ended"])

        yield on_result_bar


def summarize(command: str, report: BatchReport, total: int, out_dir: Path) -> int:
    """Print the closing summary on stdout and return the exit status: 1 when an input failed
    (or the batch was stopped before its end), else 0."""
    echo(f"{command}: {report.summary()}, of {total} file(s), into {out_dir}")
    return 1 if report.failed or report.stopped else 0


def log_skipped(count: int) -> None:
    """Say how many outputs were already complete and are skipped."""
    if count:
        logger.info(
            "%d output(s) already complete (same input, model or filter, options): skipped; "
            "--overwrite redoes them", count,
        )  # fmt: skip


# ------------------------------------------------------------------------------ clusters

#: The cluster options' parameters (:class:`~cryoden.pipeline.distributed.ClusterSpec`) and
#: their flags.
CLUSTER_FLAGS = {
    "workers": "--workers",
    "scheduler": "--scheduler",
    "cluster": "--cluster",
    "jobs": "--jobs",
    "cores": "--cores",
    "memory": "--memory",
    "queue": "--queue",
    "walltime": "--walltime",
    "threads_per_worker": "--threads",
}
WORKERS = count_option(
    "--workers",
    "Run on a local Dask cluster of this many worker processes (one thread each, or --threads).",
)
SCHEDULER = typer.Option(
    None,
    "--scheduler",
    metavar="ADDRESS",
    help="Run on a running Dask cluster: its scheduler's address (tcp://host:8786).",
)
CLUSTER = choice_option(
    "--cluster",
    "Start Dask workers as batch jobs (dask-jobqueue): slurm, pbs, sge or lsf; with --jobs, "
    "--cores, --memory and optionally --queue, --walltime.",
    tuple(CLUSTERS),
)
JOBS = count_option("--jobs", "Batch jobs to start with --cluster (default: 1).")
CORES = count_option(
    "--cores", "Cores per batch job with --cluster; one worker per core (default: 1)."
)
MEMORY = typer.Option(
    None, "--memory", metavar="SIZE", help="Memory per batch job with --cluster (16GB, 8GiB)."
)
QUEUE = typer.Option(None, "--queue", help="Queue or partition for --cluster jobs.")
WALLTIME = typer.Option(
    None, "--walltime", metavar="D-HH:MM:SS", help="Wall-time limit of each --cluster job."
)


def cluster_spec(
    *,
    workers: int | None,
    scheduler: str | None,
    cluster: str | None,
    jobs: int | None,
    cores: int | None,
    memory: str | None,
    queue: str | None,
    walltime: str | None,
    threads: int | None,
) -> ClusterSpec | None:
    """The Dask cluster the options ask for, or None (run in this process); errors name the
    flags."""
    if workers is None and scheduler is None and cluster is None:
        extra = [CLUSTER_FLAGS[n] for n, v in (("jobs", jobs), ("cores", cores),
                 ("memory", memory), ("queue", queue), ("walltime", walltime)) if v is not None]  # fmt: skip
        if extra:
            raise ParameterError(f"{', '.join(extra)} apply to --cluster only")
        return None
    with flag_names(CLUSTER_FLAGS):
        return ClusterSpec(
            workers=workers,
            scheduler=scheduler,
            cluster=cluster,
            jobs=jobs or 1,
            cores=cores or 1,
            memory=memory,
            queue=queue,
            walltime=walltime,
            threads_per_worker=threads or 1,
        )
