"""The tomography study's methods and scores: 3D filters chosen by an oracle, 3D Noise2Noise and
Noise2Void, and PSNR / CC / FSC against the clean reconstruction.

* **Filters** (``gaussian``: :func:`gaussian_3d`; ``lowpass``: :func:`lowpass_3d`): the
  parameter is the one of a fixed grid that gives the best mean PSNR *on the test tomograms
  against their clean reconstructions* (an oracle real data lacks: the best these filters can
  do, the bar the learned methods must beat).
* **Learned** (``n2n``: pairs of even/odd half tomograms; ``n2v``: every half as a single
  volume: the variant chosen from the training tomograms' measured voxel SNR and the blind
  spot from their measured noise correlation, as ``cryoden train n2v`` does for volumes): a 3D
  U-Net trained for a fixed number of optimiser steps (:func:`cryoden.training.train` on
  :class:`~cryoden.training.volumes.VolumePairDataset` /
  :class:`~cryoden.training.volumes.VolumeSingleDataset`), then applied to the test halves by
  :class:`~cryoden.inference.volume.VolumeDenoiser`.

Every method denoises the *even* half of each test tomogram; scores compare with the clean
reconstruction (same missing wedge), averaged over the test tomograms.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.fft
import scipy.ndimage
import torch

from cryoden.errors import DegenerateModelError, ParameterError
from cryoden.inference.volume import VolumeDenoiser
from cryoden.metrics import cross_correlation, psnr
from cryoden.metrics.fourier import FourierCorrelation, fsc, resolution_crossing
from cryoden.models import LoadedModel
from cryoden.nets.config import NetworkConfig
from cryoden.training import TrainConfig, train
from cryoden.training.noise2void import Noise2Void, volume_scheme
from cryoden.training.volumes import VolumePairDataset, VolumeSingleDataset

logger = logging.getLogger(__name__)

#: Learned methods: name -> training scheme.
LEARNED: dict[str, str] = {"n2n": "n2n", "n2v": "n2v"}
#: Filters: name -> the parameter the oracle chooses.
FILTER_PARAMETERS: dict[str, str] = {"gaussian": "sigma_px", "lowpass": "cutoff_nyquist"}
#: All methods, in drawing order.
TOMO_METHODS: tuple[str, ...] = (*LEARNED, *FILTER_PARAMETERS)
#: FSC thresholds scored.
FSC_THRESHOLDS: tuple[float, ...] = (0.5, 0.143)


def gaussian_3d(volume: np.ndarray, *, sigma_px: float) -> np.ndarray:
    """Isotropic 3D Gaussian filter of standard deviation ``sigma_px`` voxels (reflected
    edges)."""
    if not sigma_px > 0:
        raise ParameterError(f"sigma_px must be > 0 voxels, got {sigma_px}")
    out = scipy.ndimage.gaussian_filter(volume.astype(np.float64), sigma_px, mode="reflect")
    return out.astype(np.float32)


def lowpass_3d(volume: np.ndarray, *, cutoff_nyquist: float) -> np.ndarray:
    """Ideal 3D low-pass: every frequency above ``cutoff_nyquist`` (Nyquist units, spherical)
    removed."""
    if not 0 < cutoff_nyquist <= 1:
        raise ParameterError(f"cutoff_nyquist must be in (0, 1], got {cutoff_nyquist}")
    spectrum = scipy.fft.rfftn(volume.astype(np.float64))
    kz = np.fft.fftfreq(volume.shape[0])[:, None, None]
    ky = np.fft.fftfreq(volume.shape[1])[None, :, None]
    kx = np.fft.rfftfreq(volume.shape[2])[None, None, :]
    spectrum[2.0 * np.sqrt(kz**2 + ky**2 + kx**2) > cutoff_nyquist] = 0.0
    return scipy.fft.irfftn(spectrum, s=volume.shape).astype(np.float32)


def apply_filter(name: str, volume: np.ndarray, value: float) -> np.ndarray:
    """Filter ``name`` (:data:`FILTER_PARAMETERS`) with its parameter at ``value``."""
    if name == "gaussian":
        return gaussian_3d(volume, sigma_px=value)
    if name == "lowpass":
        return lowpass_3d(volume, cutoff_nyquist=value)
    raise ParameterError(f"unknown filter {name!r}; known: {', '.join(FILTER_PARAMETERS)}")


def mean_psnr(clean: Sequence[np.ndarray], volumes: Sequence[np.ndarray]) -> float:
    """Mean PSNR (dB) of ``volumes`` against ``clean`` (data range of each clean volume)."""
    return float(np.mean([psnr(c, v) for c, v in zip(clean, volumes, strict=True)]))


def oracle_filter(
    name: str,
    noisy: Sequence[np.ndarray],
    clean: Sequence[np.ndarray],
    grid: Sequence[float],
) -> tuple[list[np.ndarray], dict[str, Any]]:
    """The filter's outputs at the grid value with the best mean PSNR against ``clean``, and
    the choice (``parameter``, ``value``, the PSNR of every grid value)."""
    if not grid:
        raise ParameterError(f"the {name} filter needs at least one parameter value")
    scores = []
    best_outputs: list[np.ndarray] = []
    for value in grid:
        outputs = [apply_filter(name, v, float(value)) for v in noisy]
        scores.append(mean_psnr(clean, outputs))
        if scores[-1] >= max(scores):
            best_outputs = outputs
    best = int(np.argmax(scores))
    choice = {
        "parameter": FILTER_PARAMETERS[name],
        "value": float(grid[best]),
        "grid": [float(g) for g in grid],
        "grid_psnr": [round(s, 4) for s in scores],
        "chosen_on": "the clean test tomograms (oracle)",
    }
    if best in (0, len(grid) - 1) and len(grid) > 1:
        logger.warning("%s: the best %s is at the end of its grid", name, choice["parameter"])
    return best_outputs, choice


def score_volumes(
    clean: Sequence[np.ndarray], volumes: Sequence[np.ndarray], *, voxel_size_angstrom: float
) -> dict[str, Any]:
    """PSNR, CC and FSC of ``volumes`` against ``clean``, averaged over the tomograms."""
    curves = [fsc(c, v, pixel_size_angstrom=voxel_size_angstrom) for c, v in zip(clean, volumes)]
    mean = FourierCorrelation(
        frequency_nyquist=curves[0].frequency_nyquist,
        correlation=np.mean([c.correlation for c in curves], axis=0),
        n_per_shell=curves[0].n_per_shell,
        pixel_size_angstrom=voxel_size_angstrom,
    )
    return {
        "psnr": mean_psnr(clean, volumes),
        "cc": float(np.mean([cross_correlation(c, v) for c, v in zip(clean, volumes)])),
        "fsc": {
            "frequency_nyquist": np.round(mean.frequency_nyquist, 6).tolist(),
            "correlation": np.round(mean.correlation, 6).tolist(),
        },
        "fsc_resolution": {str(t): resolution_crossing(mean, t) for t in FSC_THRESHOLDS},
    }


def training_sets(
    method: str, pairs: Sequence[tuple[np.ndarray, np.ndarray]]
) -> VolumePairDataset | VolumeSingleDataset:
    """Noise2Noise trains on the (even, odd) pairs; Noise2Void on every half alone."""
    if method == "n2n":
        return VolumePairDataset(list(pairs))
    if method == "n2v":
        return VolumeSingleDataset([v for pair in pairs for v in pair])
    raise ParameterError(f"unknown learned method {method!r}; known: {', '.join(LEARNED)}")


def learned_scheme(
    method: str,
    pairs: Sequence[tuple[np.ndarray, np.ndarray]],
    network: NetworkConfig,
    *,
    loss: str = "l2",
) -> tuple[Noise2Void | str, NetworkConfig, dict[str, Any]]:
    """The scheme and network ``method`` trains on these halves, and a record of the choice.

    Noise2Noise takes ``network`` as given. Noise2Void makes the choices ``cryoden train n2v``
    makes for volumes: the variant from the halves' measured voxel SNR
    (:func:`~cryoden.training.noise2void.volume_scheme`; N2V2's network tweaks where it is
    N2V2) and the blind spot from their measured noise correlation."""
    if method != "n2v":
        return LEARNED[method], network, {"scheme": LEARNED[method]}
    scheme, snr = volume_scheme([v for pair in pairs for v in pair], loss=loss)
    network = network.replace(**scheme.network_tweaks)
    return scheme, network, {
        "scheme": scheme.name,
        "volume_snr": None if snr is None else round(snr, 4),
        "blind_spot": scheme.blind_spot.spec,
        "noise_correlation": scheme.noise_correlation,
        "network": network.to_dict(),
    }


def train_learned(
    method: str,
    pairs: Sequence[tuple[np.ndarray, np.ndarray]],
    network: NetworkConfig,
    train_config: TrainConfig,
    *,
    out: Path,
    initial_weights: Mapping[str, torch.Tensor] | None = None,
    setup: tuple[Noise2Void | str, NetworkConfig, dict[str, Any]] | None = None,
) -> tuple[LoadedModel | None, dict[str, Any]]:
    """Train ``method`` on the training halves; the model (None when degenerate) and a
    record of the training. The scheme and network are ``setup`` when given (from
    :func:`learned_scheme`), else chosen by it from ``network``, the base one."""
    start = time.perf_counter()
    if setup is None:
        setup = learned_scheme(method, pairs, network, loss=train_config.loss)
    scheme, network, choice = setup
    record: dict[str, Any] = {
        "steps_planned": train_config.max_steps,
        "initialised_from": "random weights" if initial_weights is None else "previous SNR",
        **choice,
    }
    try:
        result = train(
            scheme,
            network,
            training_sets(method, pairs),
            None,
            train_config,
            out=out,
            initial_weights=initial_weights,
        )
    except DegenerateModelError as exc:
        logger.warning("%s: degenerate model, not scored (%s)", method, exc)
        record |= {"status": "degenerate", "reason": str(exc)}
        record["wall_seconds"] = round(time.perf_counter() - start, 3)
        return None, record
    record |= {
        "status": "ok",
        "steps": int(result.steps),
        "epochs": int(result.epochs),
        "best_epoch": int(result.best_epoch),
        "best_validation_loss": result.best_validation_loss,
        "warnings": list(result.warnings),
        "wall_seconds": round(float(result.wall_seconds), 3),
    }
    return LoadedModel(result.network, result.model_config, str(out)), record


def denoise_volumes(
    model: LoadedModel, volumes: Sequence[np.ndarray], *, threads: int | None
) -> list[np.ndarray]:
    """Each volume denoised by ``model`` (tiled, normalised per volume, back to its scale)."""
    denoiser = VolumeDenoiser(model, threads=threads, device="cpu")
    return [np.asarray(denoiser(v), dtype=np.float32) for v in volumes]
