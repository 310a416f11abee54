"""Run the tomography study: simulate, denoise with every method at every SNR, score, report.

:func:`run_tomo_study` writes into ``out``:

* ``results.json``: the settings, the data (structures, indices, particles, measured SNRs), the
  noisy input's scores and one row per (method, SNR) with PSNR, CC, FSC curve and crossings,
  the filters' chosen parameters and the trainings' records, and provenance;
* ``montage.npz``: central slices (``xy`` at ``z = Z // 2``, ``xz`` at ``y = Y // 2``) of the
  first test tomogram: clean, noisy (even half) and each method at each SNR;
* the report (:func:`cryoden.benchmark.tomo_report.write_tomo_report`).

A run is not resumable: it is sized to finish in one go (see the presets).
"""

from __future__ import annotations

import logging
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cryoden import __version__
from cryoden.benchmark.store import write_json, write_npz
from cryoden.benchmark.study import cell_train_config
from cryoden.benchmark.tomo import TomoStudyConfig
from cryoden.benchmark.tomo_data import TomoSet, simulate_set, study_configs
from cryoden.benchmark.tomo_methods import (
    FILTER_PARAMETERS,
    LEARNED,
    denoise_volumes,
    learned_scheme,
    oracle_filter,
    score_volumes,
    train_learned,
)
from cryoden.benchmark.tomo_report import write_tomo_report
from cryoden.io.atomic import make_output_folder
from cryoden.models import LoadedModel
from cryoden.nets.analysis import count_parameters, flops_per_pixel
from cryoden.nets.registry import build_network
from cryoden.simulation.tomo_dataset import TomogramSimulator
from cryoden.training import TrainConfig

logger = logging.getLogger(__name__)

RESULTS = "results.json"
MONTAGE = "montage.npz"
#: Stream of the trainings' seeds (apart from the tomograms' streams).
_TRAIN_STREAM = 5_000_000


@dataclass
class TomoStudyRun:
    """What :func:`run_tomo_study` did: the results and where the report is."""

    results: dict[str, Any]
    seconds: float
    report_paths: dict[str, Path] = field(default_factory=dict)


def central_slices(volume: np.ndarray) -> dict[str, np.ndarray]:
    """The ``xy`` slice at ``z = Z // 2`` and the ``xz`` slice at ``y = Y // 2``."""
    return {
        "xy": np.asarray(volume[volume.shape[0] // 2], dtype=np.float32),
        "xz": np.asarray(volume[:, volume.shape[1] // 2], dtype=np.float32),
    }


def train_config(
    config: TomoStudyConfig, method: str, snr_index: int, *, warm: bool
) -> TrainConfig:
    """The recipe of one learned cell (:func:`~cryoden.benchmark.study.cell_train_config`)."""
    stream = _TRAIN_STREAM + 100 * snr_index + list(LEARNED).index(method)
    return cell_train_config(config, stream=stream, warm=warm)


def _row(method: str, snr: float, scores: dict[str, Any], start: float, **extra: Any) -> dict:
    return {
        "method": method,
        "snr": snr,
        **scores,
        **extra,
        "seconds": round(time.perf_counter() - start, 3),
    }


def _run_filters(
    config: TomoStudyConfig,
    test: TomoSet,
    snr: float,
    noisy: list[np.ndarray],
    montage: dict[str, np.ndarray],
) -> list[dict[str, Any]]:
    grids = {"gaussian": config.gaussian_sigmas_px, "lowpass": config.lowpass_cutoffs}
    rows = []
    for name in FILTER_PARAMETERS:
        if name not in config.methods:
            continue
        start = time.perf_counter()
        outputs, choice = oracle_filter(name, noisy, test.clean, grids[name])
        scores = score_volumes(test.clean, outputs, voxel_size_angstrom=config.voxel_size_angstrom)
        rows.append(_row(name, snr, scores, start, parameter=choice, status="ok"))
        for key, image in central_slices(outputs[0]).items():
            montage[f"{name}/{snr:.4f}/{key}"] = image
    return rows


def _run_learned(
    config: TomoStudyConfig,
    train_set: TomoSet,
    test: TomoSet,
    montage: dict[str, np.ndarray],
    workdir: Path,
    progress: Callable[[], None],
) -> list[dict[str, Any]]:
    rows = []
    for method in config.learned_methods:
        base = config.network(method)
        previous: LoadedModel | None = None
        for position, snr in enumerate(config.snr_order):
            start = time.perf_counter()
            pairs = train_set.halves(snr)
            setup = learned_scheme(method, pairs, base)
            # warm-started from the previous SNR's model where the network is the same
            warm = previous is not None and previous.config.network == setup[1]
            recipe = train_config(config, method, position, warm=warm)
            initial = previous.network.state_dict() if previous is not None and warm else None
            model, record = train_learned(
                method,
                pairs,
                base,
                recipe,
                out=workdir / f"{method}-{snr:.4f}.safetensors",
                initial_weights=initial,
                setup=setup,
            )
            if model is None:
                rows.append(_row(method, snr, {}, start, training=record, status="degenerate"))
                progress()
                continue
            previous = model
            noisy = [even for even, _ in test.halves(snr)]
            denoised = denoise_volumes(model, noisy, threads=config.threads)
            scores = score_volumes(
                test.clean, denoised, voxel_size_angstrom=config.voxel_size_angstrom
            )
            rows.append(_row(method, snr, scores, start, training=record, status="ok"))
            for key, image in central_slices(denoised[0]).items():
                montage[f"{method}/{snr:.4f}/{key}"] = image
            logger.info("%s at SNR %g: PSNR %.2f dB", method, snr, scores["psnr"])
            progress()
    return rows


def _network_record(config: TomoStudyConfig, method: str = "n2n") -> dict[str, Any]:
    network = config.network(method)
    return {
        "config": network.to_dict(),
        "flops_per_voxel": float(flops_per_pixel(network)),
        "parameters": int(count_parameters(build_network(network))),
    }


def simulate_sets(
    config: TomoStudyConfig, *, progress: Callable[[], None] | None = None
) -> tuple[TomoSet, TomoSet, np.ndarray]:
    """The study's training and test tomograms (see :mod:`cryoden.benchmark.tomo_data`) and
    the tilt angles; the structures are read and checked first."""
    train_cfg, test_cfg = study_configs(
        config.tomogram_config(),
        config.train_structures,
        config.test_structures,
        n_train=config.n_train,
        n_test=config.n_test,
    )
    train_sim, test_sim = TomogramSimulator(train_cfg), TomogramSimulator(test_cfg)

    def tick(done: int, total: int) -> None:
        if progress is not None:
            progress()

    train_set = simulate_set(train_cfg, "train", simulator=train_sim, progress=tick)
    test_set = simulate_set(test_cfg, "test", simulator=test_sim, progress=tick)
    return train_set, test_set, train_sim.angles_deg


def run_tomo_study(
    config: TomoStudyConfig,
    out: str | Path,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> TomoStudyRun:
    """Run the study ``config`` describes into ``out`` (see the module docstring).

    The structures are read before anything is written, so a bad file fails in one line with
    nothing left behind.
    """
    begin = time.perf_counter()
    for structures in (config.train_structures, config.test_structures):
        TomogramSimulator(config.tomogram_config().replace(structures=structures))
    out = make_output_folder(Path(out))
    n_cells = len(config.methods) * len(config.snr_levels)
    total = config.n_train + config.n_test + n_cells
    state = {"done": 0}

    def step() -> None:
        state["done"] += 1
        if progress is not None:
            progress(state["done"], total)

    train_set, test_set, angles = simulate_sets(config, progress=step)
    montage: dict[str, np.ndarray] = {}
    for key, image in central_slices(test_set.clean[0]).items():
        montage[f"clean/{key}"] = image
    noisy_rows, rows = [], []
    for snr in config.snr_levels:
        noisy = [even for even, _ in test_set.halves(snr)]
        scores = score_volumes(
            test_set.clean, noisy, voxel_size_angstrom=config.voxel_size_angstrom
        )
        noisy_rows.append({"snr": snr, "tomogram_snr": test_set.measured_snr(snr), **scores})
        for key, image in central_slices(noisy[0]).items():
            montage[f"noisy/{snr:.4f}/{key}"] = image
        filter_rows = _run_filters(config, test_set, snr, noisy, montage)
        rows += filter_rows
        for _ in filter_rows:
            step()
    with tempfile.TemporaryDirectory(prefix="cryoden-tomo-") as tmp:
        rows += _run_learned(config, train_set, test_set, montage, Path(tmp), step)
    seconds = time.perf_counter() - begin
    results = {
        "kind": "cryoden-tomo-study",
        "config": config.to_dict(),
        "snr_levels": list(config.snr_levels),
        "methods": list(config.methods),
        "network": _network_record(config),
        "networks": {m: _network_record(config, m) for m in config.learned_methods},
        "data": {
            "train": train_set.describe(),
            "test": test_set.describe(),
            "tilt_angles_deg": angles.tolist(),
            "input": "the even half of each test tomogram",
            "reference": "the reconstruction of the noise-free tilt series",
        },
        "noisy": noisy_rows,
        "results": rows,
        "provenance": {
            "cryoden_version": __version__,
            "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "host": platform.node(),
            "threads": config.threads,
            "seconds": round(seconds, 1),
        },
    }
    write_json(out / RESULTS, results)
    write_npz(out / MONTAGE, **{k.replace("/", "__"): v for k, v in montage.items()})
    paths = write_tomo_report(out / RESULTS, montage_path=out / MONTAGE)
    logger.info("tomography study: %d rows in %.0f s, report at %s", len(rows), seconds, out)
    return TomoStudyRun(results, seconds, paths)
