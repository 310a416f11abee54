"""The tomography study's data: simulated training and test tomograms at every SNR.

Each tomogram (:mod:`cryoden.simulation.tomo_dataset`) is simulated once: its clean
reconstruction and the reconstructions of one unit-variance noise field per half (even, odd).
Weighted back-projection is linear, so the halves at an SNR ``s`` are
``clean + sigma(s) * noise`` with ``sigma(s) = sqrt(var(clean tilt series) / s)``: exactly the
reconstructions of the tilt series with shared noise
(:meth:`~cryoden.simulation.tomo_dataset.TomogramSimulator.noisy_tilts` with ``shared=True``),
at three reconstructions per tomogram whatever the number of SNRs. Levels then differ only in
the noise's scale (common random numbers), so a change between two SNRs is due to the SNR.

Training and test tomograms never share a structure or a random stream: training tomograms
are indices ``0 .. n_train - 1`` of the training structures, test tomograms indices from
:data:`TEST_FIRST_INDEX` of the test structures.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cryoden.noise.models import noise_sigma_for_snr
from cryoden.simulation.tomo_config import TomogramConfig
from cryoden.simulation.tomo_dataset import HALVES, TomogramSimulator

logger = logging.getLogger(__name__)

#: Index of the first test tomogram: its random streams are never those of a training one.
TEST_FIRST_INDEX = 10_000


@dataclass
class TomoSet:
    """Tomograms of one role (``"train"`` or ``"test"``), ready to be given noise at any SNR.

    Attributes
    ----------
    clean
        The clean reconstructions ``(Z, Y, X)``.
    noise
        Per tomogram, the reconstructions of the even and odd halves' unit noise.
    sigma_at_snr1
        Per tomogram, the noise standard deviation of its tilt series at SNR 1.
    """

    role: str
    config: TomogramConfig
    sources: list[dict[str, Any]]
    indices: list[int]
    clean: list[np.ndarray] = field(default_factory=list)
    noise: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    sigma_at_snr1: list[float] = field(default_factory=list)
    particles: list[int] = field(default_factory=list)

    def halves(self, snr: float) -> list[tuple[np.ndarray, np.ndarray]]:
        """The ``(even, odd)`` half tomograms at ``snr`` (tilt-image SNR)."""
        out = []
        for clean, (even, odd), sigma in zip(self.clean, self.noise, self.sigma_at_snr1):
            scale = np.float32(sigma / math.sqrt(snr))
            out.append((clean + scale * even, clean + scale * odd))
        return out

    def measured_snr(self, snr: float) -> float:
        """Mean over the tomograms of the even half's SNR in the reconstruction."""
        values = [
            float(np.var(c)) / float(np.var(np.float32(s / math.sqrt(snr)) * n[0]))
            for c, n, s in zip(self.clean, self.noise, self.sigma_at_snr1)
        ]
        return float(np.mean(values))

    def noise_correlation(self, max_lag: int = 3) -> dict[str, list[float]]:
        """The correlation of the reconstructed noise (the first tomogram's even half) between
        voxels ``1 .. max_lag`` apart along each axis: WBP correlates it along ``x`` and ``z``
        (ramp filter and back-projection), not along the tilt axis ``y``."""
        return noise_autocorrelation(self.noise[0][0], max_lag=max_lag) if self.noise else {}

    def describe(self) -> dict[str, Any]:
        """What the set holds, for ``results.json``."""
        return {
            "role": self.role,
            "sources": self.sources,
            "indices": list(self.indices),
            "seed": self.config.seed,
            "particles": list(self.particles),
            "shape_zyx": list(self.config.shape_zyx),
            "voxel_size_angstrom": self.config.voxel_size_angstrom,
            "noise_correlation": self.noise_correlation(),
        }


def noise_autocorrelation(noise: np.ndarray, *, max_lag: int = 3) -> dict[str, list[float]]:
    """Normalised autocorrelation of a zero-mean noise volume ``(Z, Y, X)`` at lags ``1 ..
    max_lag`` voxels along ``x``, ``y`` and ``z`` (the interior, ``max_lag`` voxels off each
    face)."""
    volume = np.asarray(noise, dtype=np.float64)
    volume = volume - volume.mean()
    m = int(max_lag)
    inner = tuple(slice(m, s - m) for s in volume.shape)
    core = volume[inner]
    variance = float((core * core).mean())
    out: dict[str, list[float]] = {}
    for name, axis in (("x", 2), ("y", 1), ("z", 0)):
        values = []
        for lag in range(1, m + 1):
            shifted = list(inner)
            shifted[axis] = slice(m + lag, volume.shape[axis] - m + lag)
            values.append(round(float((core * volume[tuple(shifted)]).mean()) / variance, 4))
        out[name] = values
    return out


def simulate_set(
    config: TomogramConfig,
    role: str,
    *,
    simulator: TomogramSimulator | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> TomoSet:
    """Simulate ``config.n_tomograms`` tomograms from index ``config.first_index``: the clean
    reconstruction and each half's unit-noise reconstruction (see the module notes)."""
    simulator = simulator or TomogramSimulator(config)
    indices = list(range(config.first_index, config.first_index + config.n_tomograms))
    result = TomoSet(role, config, [s.description for s in simulator.sources], indices)
    for done, index in enumerate(indices, start=1):
        clean = simulator.clean(index)
        halves = tuple(
            simulator.reconstruct(simulator.unit_noise(index, half, clean.tilts.shape))
            for half in HALVES
        )
        result.clean.append(clean.clean)
        result.noise.append((halves[0], halves[1]))
        result.sigma_at_snr1.append(noise_sigma_for_snr(clean.tilts, 1.0))
        result.particles.append(len(clean.particles))
        logger.info("%s tomogram %d: %d particles", role, index, len(clean.particles))
        if progress is not None:
            progress(done, len(indices))
    return result


def study_configs(
    base: TomogramConfig,
    train_structures: Sequence[str],
    test_structures: Sequence[str],
    *,
    n_train: int,
    n_test: int,
) -> tuple[TomogramConfig, TomogramConfig]:
    """The training and test :class:`TomogramConfig` of a study (no noise level: the study
    adds its own)."""
    train = base.replace(
        structures=tuple(train_structures), n_tomograms=n_train, first_index=0, snr=None
    )
    test = base.replace(
        structures=tuple(test_structures),
        n_tomograms=n_test,
        first_index=TEST_FIRST_INDEX,
        snr=None,
    )
    return train, test
