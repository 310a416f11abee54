"""Run the seed study: every (method, SNR) cell, resumably, then results files and the report.

:func:`run_study` simulates the clean projections once, makes each SNR's noisy images in memory,
runs every method on them and scores the denoised test images against the clean ones. Each
finished cell is stored at once under ``OUT/cells/`` (see :mod:`cryoden.benchmark.store`); a
rerun with the same ``OUT`` and settings loads the finished cells and computes only the missing
ones. At the end it writes::

    OUT/results.json    every cell's scores, the noisy baselines, settings, data split, provenance
    OUT/results.csv     one row per (method, SNR)
    OUT/montage.npz     the first test image: clean, noisy and each method's output, every SNR
    OUT/figures/*.png, OUT/report.html, OUT/report.md   (from results.json + montage.npz)
"""

from __future__ import annotations

import csv
import io
import logging
import os
import platform
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cryoden import __version__
from cryoden.benchmark.data import simulate_study_images, structure_digest
from cryoden.benchmark.methods import MethodOutput, run_method
from cryoden.benchmark.registry import get_method
from cryoden.benchmark.scoring import score_stack
from cryoden.benchmark.store import CellStore, write_json, write_npz
from cryoden.benchmark.study import PRETRAIN, StudyConfig
from cryoden.io.atomic import atomic_output, make_output_folder
from cryoden.nets.device import torch_threads

logger = logging.getLogger(__name__)

RESULTS_JSON = "results.json"
RESULTS_CSV = "results.csv"
MONTAGE_NPZ = "montage.npz"
CELLS_DIR = "cells"
WORK_DIR = ".work"
RESULTS_FORMAT = "cryoden-bench-seed"
RESULTS_VERSION = 2

#: Keys of a results row that measure time: results of the run that made it, not of its
#: settings; two runs of the same settings and seed may differ here only.
TIMING_KEYS: tuple[str, ...] = ("seconds", "wall_seconds")

CSV_COLUMNS: tuple[str, ...] = (
    "method",
    "snr",
    "psnr",
    "ssim",
    "cc",
    "psnr_noisy",
    "ssim_noisy",
    "cc_noisy",
    "frc_0.5",
    "frc_0.143",
    "resolution_0.5_angstrom",
    "resolution_0.143_angstrom",
    "seconds",
    "status",
)


@dataclass
class StudyRun:
    """What :func:`run_study` did.

    Attributes
    ----------
    out
        The output folder.
    results_path
        ``OUT/results.json``.
    computed, reused
        Cells computed by this call, and finished cells loaded from an earlier one.
    seconds
        Wall time of this call.
    report_paths
        The report files written (empty with ``report=False``).
    """

    out: Path
    results_path: Path
    computed: int
    reused: int
    seconds: float
    report_paths: dict[str, Path]


def _provenance(config: StudyConfig, elapsed: float) -> dict[str, Any]:
    import torch

    from cryoden.nets import default_device

    return {
        "cryoden_version": __version__,
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "device": str(default_device()),
        "torch_threads": config.threads,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "elapsed_seconds_this_run": round(elapsed, 2),
    }


def _data_section(config: StudyConfig, split: Any, source: str) -> dict[str, Any]:
    return {
        "structure": source,
        **split.to_dict(),
        "n_train_pairs": config.n_train,
        "n_validation_pairs": config.n_val,
        "n_calibration": config.n_calibration,
        "n_test": config.n_test,
        "image_size": config.image_size,
        "pixel_size_angstrom": config.pixel_size_angstrom,
        "noise": (
            "white Gaussian, SNR = var(clean) / var(noise) per image"
            + (
                "; an image's noise at every SNR is one field scaled (common random numbers)"
                if config.shared_noise
                else "; independent noise at every SNR"
            )
        ),
        "split_statement": (
            "Training, validation, calibration and test images are disjoint: each group has its "
            "own projection indices (so its own orientations) and noise streams; test images are "
            "never trained or calibrated on. Learned methods use only noisy images; filter "
            "parameters are chosen on the clean calibration images."
        ),
        "simulation": (
            "cryoden.simulation.simulate_images: orientation and noise streams derive from "
            "(seed, projection index)"
            + ("" if config.shared_noise else " and the SNR")
            + "; a and b are independent realisations"
        ),
    }


def csv_text(rows: list[dict[str, Any]]) -> str:
    """The CSV table of result rows (see :data:`CSV_COLUMNS`)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        res = row.get("frc_resolution") or {}
        ang = row.get("frc_resolution_angstrom") or {}
        values = [
            row["method"],
            row["snr"],
            row.get("psnr"),
            row.get("ssim"),
            row.get("cc"),
            row.get("psnr_noisy"),
            row.get("ssim_noisy"),
            row.get("cc_noisy"),
            res.get("0.5"),
            res.get("0.143"),
            ang.get("0.5"),
            ang.get("0.143"),
            row.get("seconds"),
            row.get("status", "ok"),
        ]
        writer.writerow(
            ["" if v is None else (f"{v:.6g}" if isinstance(v, float) else v) for v in values]
        )
    return buffer.getvalue()


#: The score keys of a row (null in a cell without a result).
SCORE_KEYS: tuple[str, ...] = (
    "psnr", "ssim", "cc", "frc", "frc_resolution", "frc_resolution_angstrom"
)  # fmt: skip


def cell_row(
    method: str,
    snr: float,
    snr_index: int,
    output: MethodOutput,
    clean: np.ndarray,
    noisy: dict[str, Any],
    pixel_size_angstrom: float,
) -> dict[str, Any]:
    """The ``results.json`` row of one finished cell.

    A cell without a result (``output.status`` not ``"ok"``, e.g. a degenerate model) keeps its
    status and reason and null scores, so no table or figure shows a number for it.
    """
    if output.status == "ok" and output.denoised is not None:
        scores = score_stack(clean, output.denoised, pixel_size_angstrom=pixel_size_angstrom)
    else:
        scores = dict.fromkeys(SCORE_KEYS)
    row: dict[str, Any] = {
        "method": method,
        "snr": snr,
        "snr_index": snr_index,
        "status": output.status,
        **scores,
        "psnr_noisy": noisy["psnr"],
        "ssim_noisy": noisy["ssim"],
        "cc_noisy": noisy["cc"],
        "seconds": round(output.seconds, 3),
        "parameters": output.parameters,
    }
    if output.reason is not None:
        row["reason"] = output.reason
    if output.training:
        row["training"] = output.training
    return row


def _warm_start_model(
    store: CellStore,
    config: StudyConfig,
    method: str,
    s: int,
    pretrain: Callable[[str, Path], None],
) -> Path | None:
    """The model the learned cell of ``method`` at SNR index ``s`` starts from
    (:meth:`StudyConfig.warm_start_source`): the next lower SNR's, or for the first cell the
    pretrained network (trained by ``pretrain(method, path)`` when not yet kept); ``None``
    without warm starts."""
    source = config.warm_start_source(s)
    if source is None:
        return None
    if source == PRETRAIN:
        path = store.pretrain_path(method)
        if not path.is_file():
            pretrain(method, path)
        if not path.is_file():  # the pretraining ended degenerate: no model was kept
            logger.warning(
                "%s: the pretraining kept no model; the first cell starts from random weights",
                method,
            )
            return None
        return path
    assert isinstance(source, int)
    path = store.model_path(method, source)
    if not path.is_file():
        logger.warning(
            "%s at SNR index %d: no model of the next lower SNR in %s; starting from random "
            "weights",
            method, s, store.root,
        )  # fmt: skip
        return None
    return path


def run_study(
    config: StudyConfig,
    out: str | Path,
    *,
    progress: Callable[[int, int], None] | None = None,
    report: bool = True,
) -> StudyRun:
    """Run (or resume) the seed study into ``out``.

    Parameters
    ----------
    config
        The study settings (see :func:`cryoden.benchmark.study.preset`).
    out
        Output folder (created). Finished cells of an earlier run with the same settings are
        reused; a folder holding cells of other settings raises ``InputFileError``.
    progress
        Called as ``progress(cells_done, cells_total)`` after each cell (reused ones included).
    report
        Also write the figures, ``report.html`` and ``report.md``.

    Returns
    -------
    StudyRun
        Paths and counts.
    """
    start = time.perf_counter()
    out = Path(out)
    # Simulate first: a bad structure file fails before anything is written.
    images = simulate_study_images(config)
    clean = images.clean
    make_output_folder(out)
    store = CellStore(out / CELLS_DIR, config.fingerprint(structure_digest(config.structure)))
    work = out / WORK_DIR
    work.mkdir(exist_ok=True)
    methods = list(config.methods)
    total = len(methods) * len(config.snr_levels)
    done = computed = reused = 0
    rows: list[dict[str, Any]] = []
    noisy_rows: list[dict[str, Any]] = [{} for _ in config.snr_levels]
    shape = clean.test.shape[1:]
    montage_noisy = np.zeros((len(config.snr_levels), *shape), dtype=np.float32)
    montage_denoised = np.full((len(methods), len(config.snr_levels), *shape), np.nan, np.float32)
    if progress is not None:
        progress(0, total)
    px = config.pixel_size_angstrom
    def pretrain(method: str, path: Path) -> None:
        """Train ``method`` from random weights on the highest SNR's data into ``path``."""
        logger.info("%s: pretraining on the highest SNR's training data", method)
        run_method(
            method, images.at(config.pretrain_index), config, workdir=work, model_out=path
        )

    with torch_threads(config.threads):
        # cells run in the curriculum's order, from the lowest SNR up (config.snr_order)
        for s in config.snr_order:
            snr = config.snr_levels[s]
            data = images.at(s)
            noisy = score_stack(clean.test, data.test_noisy, pixel_size_angstrom=px)
            noisy_rows[s] = {"snr": snr, **noisy}
            montage_noisy[s] = data.test_noisy[0]
            for m, method in enumerate(methods):
                cached = store.load(method, s)
                if cached is None:
                    logger.debug("%s at SNR %.4f ...", method, snr)
                    learned = get_method(method).learned
                    output = run_method(
                        method,
                        data,
                        config,
                        workdir=work,
                        init_model=(
                            _warm_start_model(store, config, method, s, pretrain)
                            if learned
                            else None
                        ),
                        model_out=store.model_path(method, s) if learned else None,
                    )
                    row = cell_row(method, snr, s, output, clean.test, noisy, px)
                    image = None if output.denoised is None else output.denoised[0]
                    store.save(method, s, row, image)
                    computed += 1
                    if output.status == "ok":
                        logger.info(
                            "%s at SNR %.4f: PSNR %.2f dB (noisy %.2f), CC %.3f, %.1f s",
                            method, snr, row["psnr"], noisy["psnr"], row["cc"], output.seconds,
                        )  # fmt: skip
                else:
                    row, image = cached
                    reused += 1
                rows.append(row)
                if image is not None:
                    montage_denoised[m, s] = image
                done += 1
                if progress is not None:
                    progress(done, total)
    shutil.rmtree(work, ignore_errors=True)
    # results.json lists the cells by SNR (ascending index), methods in drawing order
    rows.sort(key=lambda r: (r["snr_index"], methods.index(r["method"])))

    elapsed = time.perf_counter() - start
    results = {
        "format": RESULTS_FORMAT,
        "format_version": RESULTS_VERSION,
        "snr_levels": list(config.snr_levels),
        "methods": methods,
        "results": rows,
        "noisy": noisy_rows,
        "config": {
            **config.to_dict(),
            "method_descriptions": {m: get_method(m).description for m in methods},
            "metrics": (
                "means over the test images of PSNR (dB, data range of the clean image), SSIM "
                "(Gaussian window) and Pearson CC against the clean image; FRC averaged ring by "
                "ring, crossings of 0.5 and 0.143 in Nyquist units (1 = Nyquist); seconds = "
                "training or calibration + inference wall time of the cell (a result of the run, "
                "like a learned cell's training record: steps and epochs taken, wall seconds); "
                "status = ok, or degenerate (training ended with a degenerate model: no scores)"
            ),
        },
        "data": {
            **_data_section(config, clean.split, clean.source),
            "measured_test_snr": [round(v, 5) for v in images.measured_test_snr()],
        },
        "provenance": {
            **_provenance(config, elapsed),
            "cells_computed_this_run": computed,
            "cells_reused_this_run": reused,
        },
    }
    results_path = out / RESULTS_JSON
    write_json(results_path, results)
    with atomic_output(out / RESULTS_CSV) as tmp:
        tmp.write_text(csv_text(rows))
    write_npz(
        out / MONTAGE_NPZ,
        clean=clean.test[0],
        noisy=montage_noisy,
        denoised=montage_denoised,
        methods=np.array(methods),
        snr_levels=np.array(config.snr_levels),
    )
    report_paths: dict[str, Path] = {}
    if report:
        from cryoden.benchmark.report import write_report

        report_paths = write_report(results_path)
    logger.info("study finished: %d cells computed, %d reused, %.0f s", computed, reused, elapsed)
    return StudyRun(out, results_path, computed, reused, time.perf_counter() - start, report_paths)
