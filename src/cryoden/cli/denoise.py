"""Denoise MRC images with a trained model; outputs mirror the inputs under OUTDIR.

Example::

    cryoden denoise micrographs/*.mrc -o denoised/
    cryoden denoise --model model/ micrographs/*.mrc -o denoised/
    cryoden denoise -m n2v.safetensors 'Movies/**/*.mrc' -o out/ --device cuda --tile 1024
    cryoden denoise -m model/ CtfFind/job003/micrographs_ctf.star -o denoised/ --dtype float16
    cryoden denoise -m model/ micrographs/ -o denoised/ --workers 4
    cryoden denoise -m model/ mics.star -o out/ --cluster slurm --jobs 8 --cores 4 --memory 16GB

Without ``--model``, cryoden's shipped general model denoises (``cryoden models info general``;
inputs outside its trained pixel sizes or noise levels get a warning, 3D volumes are refused);
``--model`` takes a model folder or file, or a shipped model's name.

Inputs are MRC files, folders of them, quoted glob patterns, one RELION STAR file (paths in
rlnMicrographName, relative to the RELION project folder, the current one) or cryoSPARC .cs
files. Each output is OUTDIR/<the input's path below the inputs' common folder>, named like the
input with .mrc (.mrcs for stacks), in the input's intensity scale. A STAR input also gives
OUTDIR/micrographs_denoised.star: the input STAR with every block and column, rlnMicrographName
pointing at the denoised files and the raw paths in rlnMicrographNameRaw.

Outputs are float32 (MRC mode 2), or float16 (mode 12, half the disk) with ``--dtype float16``;
an integer input (int8, int16, uint16) comes back as floating point too, since denoised values
are not integers. Each output keeps its input's voxel size and origin; an unknown voxel size
(0 or NaN in the header) stays unknown, written as 0, with a warning. ``OUTDIR/preview.png``
shows the first input denoised in this run raw beside denoised, on the same grey scale
(``--no-preview``: none).

The options and the model are checked before any work. An input that cannot be denoised
(unreadable, truncated, NaN values, too small) is reported in one line naming it; the others
are denoised, and the command ends with status 1 and a summary of how many succeeded, were
skipped and failed. Every output is written atomically and records the model's hash and the
options in its header, so an interrupted batch is finished by running the same command again:
complete outputs are skipped, outputs of another model, other options or a changed input are
redone (``--overwrite``: all). Inputs are never overwritten.

The model is loaded once per process; images are denoised tile by tile with overlapping,
smoothly blended tiles (no seams), so any size fits in memory. ``--workers N`` denoises on N
local worker processes, ``--scheduler`` on a running Dask cluster, ``--cluster`` on workers
started as batch jobs (dask-jobqueue); each worker loads the model once, writes its outputs
to the shared file system, and gives the same result as one process with the same --threads.
The folder's ``cryoden_provenance.json`` keeps earlier runs' records under ``earlier_runs``.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from cryoden import __version__
from cryoden.cli.batch import (
    CLUSTER,
    CORES,
    DTYPE,
    INPUTS,
    JOBS,
    MEMORY,
    OVERWRITE,
    QUEUE,
    SCHEDULER,
    WALLTIME,
    WORKERS,
    BatchPlan,
    InputNotes,
    batch_console,
    cluster_spec,
    log_skipped,
    plan_batch,
    summarize,
    write_outputs_star,
)
from cryoden.cli.common import flag_names, write_provenance
from cryoden.cli.denoise_volume import ImagesOnly, run_volumes
from cryoden.cli.model_choice import check_range, choose_model
from cryoden.cli.options import (
    DEVICE,
    OUTPUT_DIR,
    THREADS,
    choice_option,
    count_option,
    no_preview_option,
    number_option,
    side_option,
)
from cryoden.cli.previews import write_preview
from cryoden.errors import CryodenError
from cryoden.inference.denoise import BACKENDS, PRECISIONS, Denoiser
from cryoden.io import read_mrc
from cryoden.models import load_model
from cryoden.pipeline.batch import (
    BatchItem,
    BatchReport,
    FileJob,
    ItemResult,
    partition_complete,
    run_batch,
)
from cryoden.pipeline.denoise_job import DenoiseRecipe
from cryoden.pipeline.distributed import ClusterSpec, dask_client, run_distributed

#: The STAR file of the outputs, in OUTDIR, when the input is a STAR file.
STAR_NAME = "micrographs_denoised.star"
#: The Denoiser's parameters and the flags that set them.
FLAGS = {
    "device": "--device",
    "tile": "--tile",
    "batch": "--batch",
    "threads": "--threads",
    "precision": "--precision",
    "memory_mb": "--memory-mb",
    "backend": "--backend",
    "dtype": "--dtype",
}
#: The Denoiser's own defaults, shown in --help (the option itself defaults to None).
_DEFAULTS = {name: param.default for name, param in inspect.signature(Denoiser).parameters.items()}


def command(
    inputs: list[Path] = INPUTS,
    model: Path = typer.Option(
        None, "--model", "-m", metavar="MODEL", show_default=False,
        help="Model folder or file, or a shipped model's name (default: general, shipped).",
    ),
    out_dir: Path = OUTPUT_DIR,
    device: str = DEVICE,
    tile: int = side_option("--tile", "Tile side in pixels (default: from memory)."),
    batch: int = count_option("--batch", "Tiles per forward pass."),
    threads: int = THREADS,
    precision: str = choice_option(
        "--precision",
        "auto (bf16 where the device has it natively), fp32, bf16 "
        f"(default: {_DEFAULTS['precision']}).",
        PRECISIONS,
    ),
    memory_mb: float = number_option(
        "--memory-mb",
        "Activation memory budget per batch of tiles (MiB), > 0.",
        above=0,
        maximum=2.0**40,
    ),
    polyphase: bool = typer.Option(
        None,
        "--polyphase/--no-polyphase",
        help="Denoise the 2x2 sub-images at half size and merge them (default: for "
        "Neighbor2Neighbor models only, which learned at half size).",
        show_default=False,
    ),
    backend: str = choice_option(
        "--backend",
        "auto (ONNX Runtime for fp32 on the CPU when installed, else PyTorch), torch, "
        "onnxruntime (fp32 CPU only; pip install 'cryoden\\[onnx]') "
        f"(default: {_DEFAULTS['backend']}).",
        BACKENDS,
    ),
    dtype: str = DTYPE,
    no_preview: bool = no_preview_option("the first input beside its denoised version"),
    overwrite: bool = OVERWRITE,
    workers: int = WORKERS,
    scheduler: str = SCHEDULER,
    cluster: str = CLUSTER,
    jobs: int = JOBS,
    cores: int = CORES,
    memory: str = MEMORY,
    queue: str = QUEUE,
    walltime: str = WALLTIME,
) -> None:
    """Denoise MRC images with a trained model; outputs mirror the inputs under OUTDIR."""
    report, total = run(**locals())
    code = summarize("denoise", report, total, out_dir)
    if code:
        raise typer.Exit(code)


def make_job(recipe: DenoiseRecipe, denoiser: Denoiser | None = None) -> FileJob:
    """The per-file work of ``cryoden denoise`` for one model: read an MRC input, denoise it,
    write the output (key included). Every process builds its job here (this process, and
    each Dask worker once), so a kind of model that needs other per-file work is dispatched
    here. ``denoiser``: one already made from ``recipe`` in this process. A 2D model refuses
    3D volumes (:class:`~cryoden.cli.denoise_volume.ImagesOnly`); 3D models run in
    :func:`~cryoden.cli.denoise_volume.run_volumes`."""
    return ImagesOnly(recipe.build(denoiser), Path(recipe.model_path).name)


def run(
    *,
    should_stop: Callable[[], bool] | None = None,
    star_name: str = STAR_NAME,
    **options: Any,
) -> tuple[BatchReport, int]:
    """Run ``cryoden denoise`` with ``options`` (the command's parameters by name): check the
    options and the model, plan the outputs, denoise what is not complete, write the STAR
    file, preview and provenance. Returns the report (the skipped outputs first) and the
    number of inputs. ``should_stop()`` is asked between files (a RELION abort)."""
    o = dict(options)
    spec = cluster_spec(
        workers=o["workers"], scheduler=o["scheduler"], cluster=o["cluster"], jobs=o["jobs"],
        cores=o["cores"], memory=o["memory"], queue=o["queue"], walltime=o["walltime"],
        threads=o["threads"],
    )  # fmt: skip
    given = {name: o[name] for name in ("device", "tile", "batch", "threads", "precision",
             "memory_mb", "backend", "polyphase") if o[name] is not None}  # fmt: skip
    model, out_dir, dtype = choose_model(o["model"]), Path(o["out_dir"]), o["dtype"] or "float32"
    o["model"] = model  # the provenance records the folder a shipped model's name stands for
    label = f"cryoden {__version__} denoise {model.name} {time.strftime('%Y-%m-%d')}"
    loaded = load_model(model)
    if loaded.config.network.dims == 3:  # tomograms: the 3D path, slab by slab
        return run_volumes(loaded, o, flags=FLAGS, should_stop=should_stop)
    with flag_names(FLAGS):
        recipe = DenoiseRecipe.for_model(loaded, settings=given, dtype=dtype, history_label=label)
    plan = plan_batch(o["inputs"], out_dir, protected=[model])
    with flag_names(FLAGS):
        denoiser = recipe.denoiser(loaded)
    del loaded
    resolved = recipe.resolved(denoiser)
    plan = plan.with_keys(resolved.key_recipe())
    check_range(model, denoiser, [item.source for item in plan.items])  # shipped models only
    todo, complete = partition_complete(plan.items, overwrite=o["overwrite"])
    log_skipped(len(complete))
    with batch_console("denoise", len(todo), FLAGS) as on_result:
        if spec is None:
            job = make_job(resolved, denoiser)
            report = run_batch(job, todo, on_result=on_result, should_stop=should_stop)
        else:
            pinned = recipe.resolved(denoiser, pin_memory=True)
            del denoiser  # each worker makes its own
            report = _run_on_cluster(spec, pinned, todo, on_result, should_stop)
    report.results[:0] = [ItemResult(item, "skipped") for item in complete]
    _finish(plan, report, o, resolved, star_name)
    return report, len(plan.items)


def _run_on_cluster(
    spec: ClusterSpec,
    recipe: DenoiseRecipe,
    todo: list[BatchItem],
    on_result: Callable[[ItemResult], None],
    should_stop: Callable[[], bool] | None,
) -> BatchReport:
    """Denoise ``todo`` on the Dask cluster of ``spec``. ``recipe`` has this machine's choices
    fixed (:meth:`DenoiseRecipe.resolved`); each worker runs ``spec``'s threads unless
    --threads is given, so its outputs equal this process's with as many threads."""
    settings = dict(recipe.settings)
    settings["threads"] = settings.get("threads") or spec.threads_per_worker
    worker_recipe = dataclasses.replace(recipe, settings=settings)
    cache_key = hashlib.sha256(
        json.dumps(dataclasses.asdict(worker_recipe), sort_keys=True, default=str).encode()
    ).hexdigest()
    factory = functools.partial(make_job, worker_recipe)
    with dask_client(spec) as client:
        return run_distributed(
            client, factory, cache_key, todo, on_result=on_result, should_stop=should_stop
        )


def _finish(
    plan: BatchPlan,
    report: BatchReport,
    options: dict[str, Any],
    recipe: DenoiseRecipe,
    star_name: str,
) -> None:
    """After the batch: the STAR file of the outputs, the preview, the notes on the inputs and
    the provenance record; nothing when no output is complete (every input failed)."""
    out_dir = Path(options["out_dir"])
    if not any(r.status in ("done", "skipped") for r in report.results):
        return
    star = write_outputs_star(plan, report, out_dir, star_name)
    done = [r for r in report.results if r.status == "done"]
    preview = None
    if done and not options["no_preview"]:
        preview = _preview(out_dir, done[0])
    InputNotes.from_results(report.results, options["dtype"]).log()
    write_provenance(
        out_dir,
        "denoise",
        {"model": options["model"], "model_sha256": recipe.model_hash,
         "inputs": [item.source for item in plan.items],
         "outputs": [item.output for item in plan.items],
         "star": star, "settings": recipe.settings, "dtype": recipe.dtype,
         "device": recipe.settings.get("device"), "precision": recipe.settings.get("precision"),
         "backend": recipe.settings.get("backend"), "preview": preview,
         "stopped": report.stopped,
         "seconds": {str(r.item.source): round(r.seconds, 3) for r in done},
         "skipped": [r.item.source for r in report.results if r.status == "skipped"],
         "failed": {str(r.item.source): r.problem for r in report.failed}},
    )  # fmt: skip


def _preview(out_dir: Path, result: ItemResult) -> Path | None:
    """The preview of one denoised input (raw beside denoised); None if either cannot be read
    again (the outputs are written; a preview is never fatal)."""
    try:
        raw, denoised = read_mrc(result.item.source), read_mrc(result.item.output)
    except CryodenError:
        return None
    return write_preview(out_dir, raw.data, denoised.data)
