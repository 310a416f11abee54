"""Choosing the default 3D network: candidates, and their quality per FLOP on held-out volumes.

A tomogram has ~10^8 voxels, so a 3D network's cost per voxel decides whether denoising runs in
seconds or hours on a CPU. :data:`CANDIDATES_3D` lists small 3D U-Nets: depth, width, and the
space-to-depth layout (2×2×2 voxel blocks as channels at half size: an eighth of the voxels at
the first level, wider convolutions). :func:`compare_networks_3d` trains each candidate with
the same scheme, recipe and seed on the same training volumes, denoises held-out volumes the
candidates never saw, and scores each by its PSNR gain over the noisy input against the clean
volume, per GFLOP per voxel. Benchmarks (``cryoden bench tomo``) run it on simulated
tomograms; the choice is :data:`cryoden.training.defaults.DEFAULT_UNET_3D`.

The held-out volumes are denoised whole (one forward pass each), normalised as the volume
denoiser normalises (:func:`cryoden.io.mrc_slabs.voxel_sample`), so keep them small.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cryoden.errors import ParameterError
from cryoden.io.mrc_slabs import ArrayVolume
from cryoden.metrics.image import psnr
from cryoden.models.normalization import NormalizationSpec
from cryoden.nets.analysis import count_parameters, flops_per_pixel
from cryoden.nets.config import NetworkConfig
from cryoden.training.config import TrainConfig
from cryoden.training.defaults import DEFAULT_UNET_3D
from cryoden.training.loop import train
from cryoden.training.noise2void import N2V2_NETWORK_TWEAKS
from cryoden.training.volumes import VolumeDataset

logger = logging.getLogger(__name__)

#: The compared 3D U-Nets by name (``NetworkConfig`` fields besides ``dims=3``).
CANDIDATES_3D: dict[str, dict[str, Any]] = {
    "b4-d2": {"base_channels": 4, "depth": 2, "space_to_depth": 1},
    "b8-d2": {"base_channels": 8, "depth": 2, "space_to_depth": 1},
    "b8-d3": {"base_channels": 8, "depth": 3, "space_to_depth": 1},
    "s2d-b8-d3": {"base_channels": 8, "depth": 3, "space_to_depth": 2},
    "s2d-b16-d2": {"base_channels": 16, "depth": 2, "space_to_depth": 2},
    "s2d-b16-d3": {"base_channels": 16, "depth": 3, "space_to_depth": 2},
    "s2d-b24-d3": {"base_channels": 24, "depth": 3, "space_to_depth": 2},
}
#: Schemes whose masking works voxel by voxel: space-to-depth (which packs neighbours into
#: channels) would let the network see the masked voxel's neighbours as the voxel itself.
BLIND_SPOT_SCHEMES: tuple[str, ...] = ("n2v", "n2v2")


def candidate_networks(scheme: str, names: Sequence[str] | None = None) -> dict[str, NetworkConfig]:
    """The candidates ``scheme`` can train (no space-to-depth for blind-spot schemes, N2V2's
    tweaks for ``n2v2``), by name; ``names`` picks some.

    Raises
    ------
    ParameterError
        For an unknown scheme or candidate name.
    """
    if scheme not in DEFAULT_UNET_3D:
        raise ParameterError(
            f"unknown volume training scheme {scheme!r}; known: {', '.join(DEFAULT_UNET_3D)}"
        )
    chosen = list(CANDIDATES_3D) if names is None else list(names)
    unknown = [n for n in chosen if n not in CANDIDATES_3D]
    if unknown:
        raise ParameterError(
            f"unknown 3D candidate(s) {', '.join(unknown)}; known: {', '.join(CANDIDATES_3D)}"
        )
    out = {}
    for name in chosen:
        fields = dict(CANDIDATES_3D[name])
        if scheme in BLIND_SPOT_SCHEMES:
            if fields["space_to_depth"] != 1:
                continue
            if scheme == "n2v2":
                fields.update(N2V2_NETWORK_TWEAKS)
        out[name] = NetworkConfig(dims=3, **fields)
    return out


@dataclass(frozen=True)
class CandidateScore:
    """One candidate's cost and quality.

    Attributes
    ----------
    name, network
        The candidate and its config (JSON-ready dict).
    flops_per_voxel, parameters
        Cost (:func:`cryoden.nets.analysis.flops_per_pixel`) and size.
    psnr_noisy_db, psnr_denoised_db
        Mean PSNR (dB) of the held-out noisy and denoised volumes against the clean ones.
    gain_db_per_gflop
        ``(psnr_denoised_db - psnr_noisy_db)`` per GFLOP per voxel.
    steps
        Optimiser steps the candidate trained for.
    """

    name: str
    network: dict[str, Any]
    flops_per_voxel: float
    parameters: int
    psnr_noisy_db: float
    psnr_denoised_db: float
    gain_db_per_gflop: float
    steps: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def denoise_whole(
    network: nn.Module, normalization: NormalizationSpec, volume: np.ndarray
) -> np.ndarray:
    """``volume`` denoised by one forward pass of ``network`` (CPU), normalised on its voxel
    sample as the volume denoiser does, and mapped back to its scale."""
    norm = normalization.fit(ArrayVolume(volume).voxel_sample())
    x = torch.from_numpy(norm.apply(volume))[None, None]
    network.eval()
    with torch.inference_mode():
        y = network(x)[0, 0].numpy()
    return norm.invert(y)


def compare_networks_3d(
    scheme: str,
    train_volumes: VolumeDataset,
    held_out: Sequence[tuple[np.ndarray, np.ndarray]],
    train_config: TrainConfig,
    *,
    candidates: Mapping[str, NetworkConfig] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[CandidateScore]:
    """Train each candidate on ``train_volumes`` and score it on ``held_out`` ``(noisy,
    clean)`` volumes (see the module docstring); best gain per GFLOP first.

    Parameters
    ----------
    scheme
        ``"n2n"``, ``"care"``, ``"n2v"`` or ``"n2v2"``.
    train_volumes
        The training volumes (pairs for ``n2n``/``care``).
    held_out
        Noisy volumes and their clean references, from structures and seeds the training
        volumes do not hold.
    train_config
        The recipe every candidate trains with (a step budget makes the comparison fair).
    candidates
        Networks by name; default :func:`candidate_networks` of ``scheme``.
    out_dir
        Where the candidates' model files go (a temporary folder, removed, when None).
    progress
        Called as ``progress(candidates_done, candidates_total)``.

    Raises
    ------
    ParameterError
        For no held-out volumes or a candidate that is not 3D.
    """
    if not held_out:
        raise ParameterError("held_out needs at least one (noisy, clean) volume pair")
    chosen = dict(candidates) if candidates is not None else candidate_networks(scheme)
    for name, config in chosen.items():
        if config.dims != 3:
            raise ParameterError(f"candidate {name} is not a 3D network (dims={config.dims})")
    noisy_psnr = float(np.mean([psnr(clean, noisy) for noisy, clean in held_out]))
    scores = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(out_dir) if out_dir is not None else Path(scratch)
        for i, (name, config) in enumerate(chosen.items()):
            result = train(
                scheme, config, train_volumes, None, train_config,
                out=folder / f"{name}.safetensors",
            )  # fmt: skip
            denoised = [
                psnr(clean, denoise_whole(result.network, train_volumes.normalization, noisy))
                for noisy, clean in held_out
            ]
            flops = flops_per_pixel(config)
            gain = float(np.mean(denoised)) - noisy_psnr
            scores.append(
                CandidateScore(
                    name=name,
                    network=config.to_dict(),
                    flops_per_voxel=flops,
                    parameters=count_parameters(result.network),
                    psnr_noisy_db=noisy_psnr,
                    psnr_denoised_db=float(np.mean(denoised)),
                    gain_db_per_gflop=gain / (flops / 1e9),
                    steps=result.steps,
                )  # fmt: skip
            )
            logger.info(
                "%s: %.0f FLOP/voxel, PSNR %.2f -> %.2f dB", name, flops, noisy_psnr,
                float(np.mean(denoised)),
            )  # fmt: skip
            if progress is not None:
                progress(i + 1, len(chosen))
    return sorted(scores, key=lambda s: s.gain_db_per_gflop, reverse=True)
