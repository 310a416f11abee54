"""The 3D path of ``cryoden denoise``: tomograms denoised by a 3D model, in bounded memory.

When the model is 3D (``network.dims == 3``), ``cryoden denoise`` runs here
(:func:`run_volumes`): every input is a volume (a 2D image or an image stack is refused in one
line), read by sections and denoised box by box into a temporary MRC file that is renamed onto
the output when complete (:class:`~cryoden.inference.volume.VolumeDenoiser`,
:class:`~cryoden.io.mrc_slabs.SlabWriter`), so a tomogram of any size fits in memory.

A RELION 5 ``tomograms.star`` as the one input denoises its rows: both half tomograms
(``rlnTomoReconstructedTomogramHalf1``/``Half2``), each denoised and the two averaged, as
cryoCARE does, when the file has them; else ``rlnTomoReconstructedTomogram``. The outputs are
``OUTDIR/<rlnTomoName>.mrc`` and ``OUTDIR/tomograms.star``, the input with
``rlnTomoReconstructedTomogramDenoised`` added. With halves, the provenance records a check
without ground truth: the FSC of the denoised even half against the raw odd half, beside the
raw halves' own FSC (:mod:`cryoden.inference.half_maps`).

The batch behaves as the 2D one (:mod:`cryoden.cli.denoise`): a bad input fails alone, in one
line, with no output; complete outputs (their header holds the run's key) are skipped on a
rerun. Volumes are denoised in this process (``--workers``/``--scheduler``/``--cluster`` are for
2D batches). A 2D model given a volume refuses it (:class:`ImagesOnly`).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryoden import __version__
from cryoden.cli.batch import batch_console, log_skipped, plan_batch
from cryoden.cli.common import flag_names, write_provenance
from cryoden.errors import CryodenError, InputFileError, ParameterError
from cryoden.inference.half_maps import half_map_fsc
from cryoden.inference.volume import VolumeDenoiser
from cryoden.io.atomic import make_output_folder
from cryoden.io.images import export_comparison
from cryoden.io.mrc_slabs import SlabWriter, VolumeReader, is_volume_path
from cryoden.io.tomograms_star import TomogramsStar, read_tomograms_star, write_tomograms_star
from cryoden.io.tomograms_star import is_tomograms_star as _is_tomograms_star
from cryoden.models import LoadedModel
from cryoden.pipeline.batch import (
    BatchItem,
    BatchReport,
    FileJob,
    ItemResult,
    partition_complete,
    run_batch,
)
from cryoden.pipeline.completion import KEY_LABEL_PREFIX, key_label, model_fingerprint, output_key

logger = logging.getLogger("cryoden.cli.denoise")

#: The STAR file of the outputs, in OUTDIR, for a ``tomograms.star`` input.
TOMOGRAMS_STAR_NAME = "tomograms.star"
#: Options of ``cryoden denoise`` that run 2D batches on other processes.
CLUSTER_OPTIONS = ("workers", "scheduler", "cluster")
#: The VolumeDenoiser's settings among the command's options.
SETTINGS = ("device", "tile", "batch", "threads", "precision", "memory_mb", "backend", "polyphase")


def is_tomograms_star_input(inputs: Sequence[Path]) -> bool:
    """Whether the inputs are one RELION 5 ``tomograms.star``."""
    return len(inputs) == 1 and _is_tomograms_star(inputs[0])


@dataclass(frozen=True)
class VolumeInput:
    """An input as read: the volume (and its other half, when halves are averaged)."""

    readers: tuple[VolumeReader, ...]


class VolumeFileJob:
    """The per-file work for a 3D model (a :class:`~cryoden.pipeline.batch.FileJob`): read a
    volume (and its partner half), check it, denoise it slab by slab into the output.

    ``compute`` only passes the opened input on: the denoising streams into the output file,
    so it happens in ``write``. With halves, ``write`` also measures the half-map check and
    reports it among the item's facts (``half_map_fsc``).
    """

    def __init__(
        self,
        denoiser: VolumeDenoiser,
        *,
        partners: Mapping[Path, Path] | None = None,
        dtype: str = "float32",
        history_label: str = "",
        protected: Sequence[Path] = (),
    ) -> None:
        self.denoiser = denoiser
        self.partners = dict(partners or {})
        self.dtype = dtype
        self.history_label = history_label
        self.protected = tuple(protected)

    def read(self, source: Path) -> VolumeInput:
        """Open the volume (and its partner), check shapes and scan for NaN or infinite
        values, section by section."""
        readers = [VolumeReader(source)]
        partner = self.partners.get(Path(source))
        if partner is not None:
            other = VolumeReader(partner)
            if other.shape != readers[0].shape:
                raise InputFileError(
                    partner, f"has shape {other.shape}, its other half {source} {readers[0].shape}"
                )
            readers.append(other)
        for reader in readers:
            reader.check_finite()
        return VolumeInput(tuple(readers))

    def compute(self, source: Path, data: VolumeInput) -> VolumeInput:
        """Nothing yet: the volume is denoised as it is written (see the class)."""
        del source
        return data

    def write(self, item: BatchItem, data: VolumeInput, result: VolumeInput) -> dict[str, Any]:
        """Denoise into ``item.output`` (atomically, key label included); return the input's
        facts (and the half-map check for halves)."""
        del result
        first = data.readers[0]
        labels = [label for label in first.labels if not label.startswith(KEY_LABEL_PREFIX)]
        labels += [self.history_label] if self.history_label else []
        make_output_folder(item.output.parent)
        protected = (*(r.path for r in data.readers), *self.protected)
        try:
            with SlabWriter(
                item.output, first.shape, voxel_size_angstrom=first.voxel_size_angstrom,
                origin_angstrom=first.origin_angstrom, labels=[*labels, key_label(item.key)],
                protected=protected, dtype=self.dtype,
            ) as writer:  # fmt: skip
                self.denoiser.denoise_files(data.readers, writer)
        except ParameterError as exc:
            if self.dtype != "float32":
                raise ParameterError(f"dtype {self.dtype}: {exc}") from None
            raise
        facts: dict[str, Any] = {"voxel_size_known": first.pixel_size_angstrom is not None}
        if len(data.readers) == 2:
            check = half_map_fsc(
                self.denoiser, data.readers[0], data.readers[1],
                pixel_size_angstrom=first.pixel_size_angstrom,
            )  # fmt: skip
            facts["half_map_fsc"] = check.summary()
        return facts


class ImagesOnly:
    """A 2D model's file job that refuses volumes (a tomogram needs a 3D model) before any
    work, in one line; every other step is the wrapped job's."""

    def __init__(self, job: FileJob, model: str) -> None:
        self.job = job
        self.model = model

    def read(self, source: Path) -> Any:
        if is_volume_path(source):
            raise InputFileError(
                source,
                f"is a 3D volume; the model {self.model} is 2D: denoise volumes with a 3D "
                "model (cryoden train on volumes), or name a stack of 2D images .mrcs",
            )
        return self.job.read(source)

    def compute(self, source: Path, data: Any) -> Any:
        return self.job.compute(source, data)

    def write(self, item: BatchItem, data: Any, result: Any) -> dict[str, Any]:
        return self.job.write(item, data, result)


def _safe_name(text: str) -> str:
    """A tomogram name as a file name (letters, digits, ``._-``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "tomogram"


def _star_items(
    tomograms: TomogramsStar, out_dir: Path
) -> tuple[list[tuple[Path, Path]], dict[Path, Path]]:
    """``(source, output)`` per row and the partners of halved rows."""
    pairs: list[tuple[Path, Path]] = []
    partners: dict[Path, Path] = {}
    seen: set[str] = set()
    for entry in tomograms.entries:
        name = _safe_name(entry.name)
        if name in seen:
            raise InputFileError(tomograms.path, f"tomogram name {entry.name} appears twice")
        seen.add(name)
        halves = entry.halves
        source = halves[0] if halves is not None else entry.tomogram
        assert source is not None  # read_tomograms_star resolved one or the other
        if halves is not None:
            partners[source] = halves[1]
        pairs.append((source, out_dir / f"{name}.mrc"))
    return pairs, partners


def _preview(out_dir: Path, result: ItemResult) -> Path | None:
    """``OUTDIR/preview.png``: the middle section of one input beside its denoised one."""
    try:
        raw, denoised = VolumeReader(result.item.source), VolumeReader(result.item.output)
        middle = raw.shape[0] // 2
        path = out_dir / "preview.png"
        export_comparison(
            path, raw.sections(middle, middle + 1)[0], denoised.sections(middle, middle + 1)[0]
        )
    except CryodenError as exc:
        logger.warning("no preview: %s", exc)
        return None
    return path


def run_volumes(
    loaded: LoadedModel,
    options: Mapping[str, Any],
    *,
    flags: Mapping[str, str],
    should_stop: Callable[[], bool] | None = None,
) -> tuple[BatchReport, int]:
    """``cryoden denoise`` with a 3D model (see the module docstring): ``options`` are the
    command's parameters by name. Returns the report and the number of inputs."""
    given = [name for name in CLUSTER_OPTIONS if options.get(name)]
    if given:
        raise ParameterError(
            f"--{given[0]}: a 3D model denoises volumes in this process (bounded memory, "
            "--threads to use more cores)"
        )
    model, out_dir = Path(options["model"]), Path(options["out_dir"])
    dtype = options.get("dtype") or "float32"
    settings = {name: options[name] for name in SETTINGS if options.get(name) is not None}
    with flag_names(dict(flags)):
        denoiser = VolumeDenoiser(loaded, **settings)
    inputs = [Path(p) for p in options["inputs"]]
    tomograms: TomogramsStar | None = None
    partners: dict[Path, Path] = {}
    if is_tomograms_star_input(inputs):
        tomograms = read_tomograms_star(inputs[0], need="either")
        pairs, partners = _star_items(tomograms, out_dir)
    else:
        plan = plan_batch(inputs, out_dir, protected=[model])
        pairs = [(item.path, out) for item, out in zip(plan.inputs.items, plan.outputs)]
    recipe = {
        "command": "denoise", "model": model_fingerprint(model), "dims": 3, "dtype": dtype,
        "settings": {"device": str(denoiser.device), "precision": denoiser.precision,
                     **{k: v for k, v in settings.items() if k != "threads"}},
    }  # fmt: skip
    items = [
        BatchItem(source, out, output_key({**recipe, "halves": source in partners}, source))
        for source, out in pairs
    ]
    label = f"cryoden {__version__} denoise {model.name} {time.strftime('%Y-%m-%d')}"
    job = VolumeFileJob(
        denoiser, partners=partners, dtype=dtype, history_label=label, protected=(model,)
    )
    todo, complete = partition_complete(items, overwrite=bool(options.get("overwrite")))
    log_skipped(len(complete))
    with batch_console("denoise", len(todo), dict(flags)) as on_result:
        report = run_batch(job, todo, on_result=on_result, should_stop=should_stop)
    report.results[:0] = [ItemResult(item, "skipped") for item in complete]
    _finish(out_dir, items, report, options, tomograms, partners, recipe)
    return report, len(items)


def _finish(
    out_dir: Path,
    items: Sequence[BatchItem],
    report: BatchReport,
    options: Mapping[str, Any],
    tomograms: TomogramsStar | None,
    partners: Mapping[Path, Path],
    recipe: Mapping[str, Any],
) -> None:
    """The STAR file of the outputs, the preview and the provenance (nothing when no output
    is complete)."""
    if not any(r.status in ("done", "skipped") for r in report.results):
        return
    star = None
    outputs = report.outputs_for(items)
    if tomograms is not None:
        star = out_dir / TOMOGRAMS_STAR_NAME
        write_tomograms_star(tomograms, outputs, star)
    done = [r for r in report.results if r.status == "done"]
    preview = _preview(out_dir, done[0]) if done and not options.get("no_preview") else None
    write_provenance(
        out_dir,
        "denoise",
        {"model": options["model"], "model_sha256": recipe["model"], "dims": 3,
         "inputs": [item.source for item in items], "outputs": [item.output for item in items],
         "halves": {str(a): str(b) for a, b in partners.items()}, "star": star,
         "settings": recipe["settings"], "dtype": recipe["dtype"], "preview": preview,
         "stopped": report.stopped,
         "seconds": {str(r.item.source): round(r.seconds, 3) for r in done},
         "half_map_fsc": {str(r.item.source): r.facts["half_map_fsc"] for r in done
                          if "half_map_fsc" in r.facts},
         "skipped": [r.item.source for r in report.results if r.status == "skipped"],
         "failed": {str(r.item.source): r.problem for r in report.failed}},
    )  # fmt: skip
