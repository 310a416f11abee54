# Over ~450 lines on purpose: every kind of study method (filters, calibrated filters, learned
# schemes, BM3D) has its small runner here, next to the one dispatch table that names them.
"""The study's methods: how each one turns the noisy test images of one SNR into denoised ones.

A runner takes the :class:`~cryoden.benchmark.data.SnrData` of one SNR and the study config and
returns a :class:`MethodOutput`: the denoised test stack, the parameters it used, and the wall
time spent (training or calibration plus inference, in seconds).

Each method's record (:mod:`cryoden.benchmark.registry`) names its runner in :data:`RUNNERS` and
holds that runner's settings.

Filters and their parameters
----------------------------
A ``fixed`` filter applies its record's ``fixed`` arguments (the study's low-pass cutoffs, hard
edge). A ``calibrated`` filter has one parameter that is *chosen on the calibration images*
(clean + noisy projections at the same SNR that are never tested on): the value of its record's
``grid`` with the highest mean PSNR against the clean calibration images. This uses clean data,
an oracle that real data lacks; it is the best case for the filters.

Learned methods
---------------
Each learned (method, SNR) cell trains a network with :func:`cryoden.training.loop.train`
for exactly ``config.train_steps`` optimiser steps, ``cold_start_factor`` times as many from
random weights (no wall-clock limit, no early stopping: the numbers depend on the settings and
seed only), with ``config.threads`` torch threads, on that
SNR's training data only: Noise2Noise on the ``n_train`` pairs, Noise2Void and
Neighbor2Neighbor on the ``2 n_train`` single noisy images of the same pairs (the same noisy
data), and the supervised reference on the same ``2 n_train`` noisy images, each paired with its
clean image as target. With ``config.warm_start`` (the default) the network starts from the same
method's model of the next lower SNR (a curriculum, as one fine-tunes a model on new data;
:attr:`~cryoden.benchmark.study.StudyConfig.snr_order`); the lowest SNR starts from a network
pretrained from random weights on the highest SNR's training data. Otherwise every cell
starts from random weights. The trainer's best-validation network, with the model config it
saves, is applied to the test images with :class:`cryoden.inference.Denoiser` (per-image robust
normalisation, output mapped back to the input's scale). Only the supervised reference sees a
clean image. The network is the scheme's default (:func:`cryoden.training.defaults.default_network`)
with the record's ``network_options`` on top, ``config.base_channels`` wide for the seed
networks and ``config.unet_base_channels`` for the U-Nets.

A cell whose training ends with a degenerate model (:class:`cryoden.errors.DegenerateModelError`:
no better than predicting the mean, or anti-correlated with its input) is not scored: its
output is marked ``degenerate`` with the trainer's reason, its metrics stay empty, and the study
goes on (the next SNR's cell then starts from random weights).

The module is longer than most because it is the study's whole protocol, filters and learned
methods, in one place; the runners share :class:`MethodOutput` and the calibration helpers.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cryoden.benchmark.data import SnrData
from cryoden.benchmark.registry import StudyMethod, get_method, learned_index
from cryoden.benchmark.study import StudyConfig, cell_train_config
from cryoden.errors import DegenerateModelError, InputFileError, ParameterError
from cryoden.filters import apply_filter
from cryoden.inference import Denoiser
from cryoden.io.atomic import atomic_output
from cryoden.metrics import psnr
from cryoden.models import LoadedModel, load_model
from cryoden.nets import NetworkConfig
from cryoden.training import (
    ImageDataset,
    PairDataset,
    SingleDataset,
    TrainConfig,
    default_network,
    make_scheme,
    train,
)

logger = logging.getLogger(__name__)


@dataclass
class MethodOutput:
    """What one method did at one SNR.

    Attributes
    ----------
    denoised
        ``(n_test, H, W)`` float32, in the order of the test images; ``None`` for a cell
        without a result (``status`` ``"degenerate"``).
    parameters
        JSON-ready parameters used (chosen or fixed), with how they were chosen.
    seconds
        Wall time: training (or calibration) plus inference on the test images.
    status
        ``"ok"``, or ``"degenerate"`` when training ended with a degenerate model (not scored).
    reason
        Why the cell has no result (the trainer's message), else ``None``.
    training
        A learned cell's training outcome (steps and epochs taken, why it stopped, wall time,
        threads, warnings): results of the run, not settings; empty for filters.
    """

    denoised: np.ndarray | None
    parameters: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    status: str = "ok"
    reason: str | None = None
    training: dict[str, Any] = field(default_factory=dict)

    def timed_from(self, start: float) -> MethodOutput:
        """Set :attr:`seconds` to the time since ``start`` (``time.perf_counter()``)."""
        self.seconds = float(time.perf_counter() - start)
        return self


#: A runner: ``runner(data, config, method, workdir) -> MethodOutput``.
Runner = Callable[[SnrData, StudyConfig, StudyMethod, Path | None], MethodOutput]

#: Fixed validation patches per epoch (few: validation costs time on top of the steps).
VALIDATION_PATCHES = 16

#: The training settings a learned cell records among its parameters.
_RECORDED_SETTINGS: tuple[str, ...] = (
    "max_steps", "patch", "batch_size", "steps_per_epoch", "learning_rate", "seed", "threads"
)  # fmt: skip

#: Offset of the training seeds' derivation (``image_seed(seed, offset + ...)``).
_TRAIN_STREAM = 2_000_000


def _apply_all(name: str, stack: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    return np.stack([apply_filter(name, image, **params) for image in stack]).astype(np.float32)


def _mean_psnr(clean: np.ndarray, images: np.ndarray) -> float:
    return float(np.mean([psnr(c, d) for c, d in zip(clean, images)]))


def calibrate(
    apply: Callable[[np.ndarray, Any], np.ndarray],
    values: tuple[Any, ...],
    clean: np.ndarray,
    noisy: np.ndarray,
) -> tuple[Any, dict[str, float]]:
    """The grid value whose output has the highest mean PSNR against the clean images.

    Parameters
    ----------
    apply
        ``apply(stack, value) -> stack``: the filter with one parameter set to ``value``.
    values
        The grid.
    clean, noisy
        Calibration stacks ``(N, H, W)``.

    Returns
    -------
    tuple
        The best value and the mean PSNR of every grid value (keys are ``str(value)``).
    """
    scores = {str(v): _mean_psnr(clean, apply(noisy, v)) for v in values}
    best = max(values, key=lambda v: scores[str(v)])
    return best, scores


def run_fixed_filter(
    data: SnrData, config: StudyConfig, method: StudyMethod, workdir: Path | None = None
) -> MethodOutput:
    """A filter with the record's ``fixed`` arguments (the study's low-pass cutoffs)."""
    params: dict[str, Any] = dict(method.fixed)
    start = time.perf_counter()
    out = _apply_all(str(method.filter), data.test_noisy, params)
    params["chosen_on"] = "fixed (the study's value)"
    return MethodOutput(out, params).timed_from(start)


def run_calibrated_filter(
    data: SnrData, config: StudyConfig, method: StudyMethod, workdir: Path | None = None
) -> MethodOutput:
    """A filter whose ``parameter`` is chosen on the calibration images among ``grid``."""
    name, parameter, fixed = str(method.filter), str(method.parameter), dict(method.fixed)
    start = time.perf_counter()

    def apply(stack: np.ndarray, value: Any) -> np.ndarray:
        return _apply_all(name, stack, {parameter: value, **fixed})

    best, scores = calibrate(apply, method.grid, data.clean.calibration, data.calibration_noisy)
    out = apply(data.test_noisy, best)
    params = {
        "filter": name,
        parameter: best,
        **fixed,
        "chosen_on": "calibration images (max mean PSNR vs clean)",
        "grid_psnr": {k: round(v, 4) for k, v in scores.items()},
    }
    return MethodOutput(out, params).timed_from(start)


def estimate_noise_sigma(image: np.ndarray) -> float:
    """Robust white-noise standard deviation from neighbour differences (MAD, no clean data)."""
    diff = np.diff(np.asarray(image, dtype=np.float64), axis=1).ravel() / np.sqrt(2.0)
    return float(1.4826 * np.median(np.abs(diff - np.median(diff))))


def run_bm3d(
    data: SnrData, config: StudyConfig, method: StudyMethod, workdir: Path | None = None
) -> MethodOutput:
    """BM3D (optional ``bm3d`` package), its noise sigma (the record's ``grid`` times a robust
    per-image noise estimate) chosen on the calibration images.

    Raises
    ------
    ParameterError
        If the ``bm3d`` package is not installed.
    """
    try:
        import bm3d
    except ImportError:
        raise ParameterError(
            "bm3d needs the optional bm3d package (pip install 'cryoden[bm3d]')"
        ) from None
    start = time.perf_counter()

    def apply(stack: np.ndarray, factor: float) -> np.ndarray:
        out = [
            np.asarray(
                bm3d.bm3d(image.astype(np.float64), sigma_psd=factor * estimate_noise_sigma(image)),
                dtype=np.float32,
            ).reshape(image.shape)
            for image in stack
        ]
        return np.stack(out)

    best, scores = calibrate(apply, method.grid, data.clean.calibration, data.calibration_noisy)
    out = apply(data.test_noisy, best)
    params = {
        str(method.parameter): best,
        "sigma": "factor x per-image MAD noise estimate",
        "chosen_on": "calibration images (max mean PSNR vs clean)",
        "grid_psnr": {k: round(v, 4) for k, v in scores.items()},
    }
    return MethodOutput(out, params).timed_from(start)


# --- learned methods ---------------------------------------------------------------------


def network_config_for(method: StudyMethod, config: StudyConfig) -> NetworkConfig:
    """The network a learned method trains: the scheme's default network
    (:func:`cryoden.training.default_network`: N2V2's blur-pool U-Net without top skip, for
    instance) with the record's ``network_options`` and the study's width for the architecture."""
    width = config.unet_base_channels if method.arch == "unet" else config.base_channels
    return default_network(
        str(method.scheme), str(method.arch), base_channels=width, **method.network_options
    )


def make_study_scheme(method: StudyMethod) -> Any:
    """The training scheme of a learned method, built with the record's ``scheme_options``."""
    return make_scheme(str(method.scheme), **method.scheme_options)


def train_config_for(
    method: StudyMethod, data: SnrData, config: StudyConfig, *, warm: bool = False
) -> TrainConfig:
    """The training hyper-parameters of one learned cell
    (:func:`~cryoden.benchmark.study.cell_train_config`), validated on fixed patches of the
    validation images."""
    stream = _TRAIN_STREAM + 100 * data.snr_index + learned_index(method.name)
    return cell_train_config(
        config, stream=stream, warm=warm,
        validation_fraction=0.0, validation_patches=VALIDATION_PATCHES,
    )  # fmt: skip


def training_data(
    method: StudyMethod, data: SnrData
) -> tuple[ImageDataset, ImageDataset | list[Any]]:
    """Training and validation datasets of a learned method at one SNR.

    Noise2Noise gets the pairs; the single-image schemes get both images of every pair as
    single images (the same noisy data); the supervised reference gets both images of every
    pair, each with its clean image as target.
    """
    if method.trains_on_clean:
        clean = data.clean
        # normalisation fitted on the noisy image alone, as at inference (the scheme's pair_fit_on)
        fit_on = str(getattr(make_study_scheme(method), "pair_fit_on", "a"))
        noisy = [*data.train_a, *data.train_b]
        train: ImageDataset = PairDataset(
            list(zip(noisy, [*clean.train, *clean.train])), fit_on=fit_on
        )
        val: ImageDataset | list[Any] = (
            PairDataset(
                list(zip([*data.val_a, *data.val_b], [*clean.validation, *clean.validation])),
                fit_on=fit_on,
            )
            if len(data.val_a)
            else []
        )
        return train, val
    if method.trains_on_pairs:
        train = PairDataset(list(zip(data.train_a, data.train_b)))
        val = PairDataset(list(zip(data.val_a, data.val_b))) if len(data.val_a) else []
    else:
        train = SingleDataset([*data.train_a, *data.train_b])
        val = SingleDataset([*data.val_a, *data.val_b]) if len(data.val_a) else []
    return train, val


def predict(model: LoadedModel, images: np.ndarray, *, threads: int | None = None) -> np.ndarray:
    """Denoise a stack with :class:`cryoden.inference.Denoiser` (each image normalised on its
    own, predicted, mapped back to its scale), with ``threads`` torch threads."""
    return np.asarray(Denoiser(model, threads=threads)(images), dtype=np.float32)


def run_learned(
    data: SnrData,
    config: StudyConfig,
    method: StudyMethod,
    workdir: Path | None = None,
    *,
    init_model: Path | None = None,
    model_out: Path | None = None,
) -> MethodOutput:
    """Train a learned method on this SNR's training data for ``config.train_steps`` steps,
    then denoise the test images.

    Parameters
    ----------
    init_model
        A model file of the same method (the curriculum's previous step) to start from; ``None`` starts
        from random weights.
    model_out
        Where to keep the trained model file; ``None`` writes it to a temporary folder under
        ``workdir`` and removes it afterwards. A degenerate model is not kept.

    Returns
    -------
    MethodOutput
        The denoised test images, or status ``"degenerate"`` with the trainer's reason and no
        images when training ended with a degenerate model.

    Raises
    ------
    InputFileError
        If ``init_model``'s network differs from the one this method trains.
    """
    start = time.perf_counter()
    train_set, val_set = training_data(method, data)
    network_config = network_config_for(method, config)
    train_config = train_config_for(method, data, config, warm=init_model is not None)
    initial = None
    if init_model is not None:
        loaded = load_model(init_model)
        if loaded.config.network != network_config:
            raise InputFileError(init_model, f"its network differs from {method.name}'s")
        initial = loaded.network.state_dict()
    params: dict[str, Any] = {
        "scheme": method.scheme,
        "network": network_config.to_dict(),
        "initialised_from": (
            "random weights"
            if init_model is None
            else f"the model {init_model.name} (the curriculum's previous step)"
        ),
        "train": {k: v for k, v in train_config.to_dict().items() if k in _RECORDED_SETTINGS},
        "chosen_on": (
            "clean training targets (an oracle real data lacks; fixed training recipe)"
            if method.trains_on_clean
            else "nothing (no clean data; fixed training recipe)"
        ),
    }
    with tempfile.TemporaryDirectory(prefix=f"{method.name}-", dir=workdir) as tmp:
        model_path = Path(tmp) / "model.safetensors"
        try:
            result = train(
                make_study_scheme(method),
                network_config,
                train_set,
                val_set,
                train_config,
                out=model_path,
                initial_weights=initial,
            )
        except DegenerateModelError as exc:
            logger.warning(
                "%s at SNR %.4g: degenerate model, not scored (%s)", method.name, data.snr, exc
            )
            output = MethodOutput(None, params, status="degenerate", reason=exc.reason)
            output.training = {
                "threads": config.threads,
                "wall_seconds": round(time.perf_counter() - start, 3),
            }
            return output.timed_from(start)
        # The trainer's best network and the config it saved with it, as load_model gives them.
        model = LoadedModel(result.network, result.model_config, str(model_path))
        denoised = predict(model, data.test_noisy, threads=config.threads)
        if model_out is not None:
            with atomic_output(model_out) as kept:
                shutil.copyfile(model_path, kept)
    history = result.history
    training = {
        "steps": int(result.steps),
        "epochs": int(result.epochs),
        "best_epoch": result.best_epoch,
        "stopped": result.stopped,
        "final_train_loss": history[-1].train_loss if history else None,
        "best_validation_loss": result.best_validation_loss,
        "threads": config.threads,
        "warnings": list(result.warnings),
        # set when the run was too short for the guard to judge (it raises otherwise)
        "degenerate": result.degenerate,
        "wall_seconds": round(float(result.wall_seconds), 3),
    }
    if result.warnings:
        logger.warning("%s at SNR %.4g: %s", method.name, data.snr, "; ".join(result.warnings))
    output = MethodOutput(denoised, params, training=training)
    return output.timed_from(start)


#: The runners named by the records' ``runner`` field.
RUNNERS: dict[str, Runner] = {
    "fixed-filter": run_fixed_filter,
    "calibrated-filter": run_calibrated_filter,
    "bm3d": run_bm3d,
    "learned": run_learned,
}


def run_method(
    method: str,
    data: SnrData,
    config: StudyConfig,
    *,
    workdir: Path | None = None,
    init_model: Path | None = None,
    model_out: Path | None = None,
) -> MethodOutput:
    """Run one (method, SNR) cell: denoise ``data.test_noisy`` with the method named ``method``.

    ``init_model`` and ``model_out`` apply to learned methods only (see :func:`run_learned`).
    """
    record = get_method(method)
    if record.learned:
        output = run_learned(
            data, config, record, workdir, init_model=init_model, model_out=model_out
        )
    else:
        output = RUNNERS[record.runner](data, config, record, workdir)
    if output.denoised is not None and output.denoised.shape != data.test_noisy.shape:
        raise RuntimeError(
            f"{method} returned shape {output.denoised.shape}, expected {data.test_noisy.shape}"
        )
    return output
