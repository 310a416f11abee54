"""The study's images: clean GroEL projections and their noisy copies at each SNR.

All images come from :func:`cryoden.simulation.simulate_images` in one call, in memory: projection
``i`` has its own orientation and its own noise streams, both derived from ``(seed, i)`` (and the
SNR), so images with different indices share nothing. The indices are split into four disjoint
groups::

    train        0 ..                                n_train - 1
    validation   n_train ..                          n_train + n_val - 1
    calibration  n_train + n_val ..                  ... + n_calibration - 1
    test         n_train + n_val + n_calibration ..  ... + n_test - 1

Training and validation images are Noise2Noise pairs ``(a, b)`` (two independent noise
realisations); calibration and test images use the ``a`` realisation. Noise is white Gaussian at
the target SNR, ``var(clean) / var(noise)`` per image; with ``config.shared_noise`` (the
default) an image's noise at every SNR is one field scaled (common random numbers). A
:class:`~cryoden.benchmark.realistic.RealisticStudyConfig` gets realistic micrograph crops
instead (movie frame sums, :mod:`cryoden.benchmark.realistic`), with the same split.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cryoden.benchmark.study import StudyConfig
from cryoden.errors import InputFileError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Split:
    """Projection indices of the four disjoint groups."""

    train: tuple[int, ...]
    validation: tuple[int, ...]
    calibration: tuple[int, ...]
    test: tuple[int, ...]

    @classmethod
    def from_config(cls, config: StudyConfig) -> Split:
        """The split of a study (see the module docstring)."""
        bounds = np.cumsum([0, config.n_train, config.n_val, config.n_calibration, config.n_test])
        groups = [tuple(range(int(a), int(b))) for a, b in zip(bounds[:-1], bounds[1:])]
        return cls(*groups)

    @property
    def n_total(self) -> int:
        """Number of clean projections."""
        return len(self.train) + len(self.validation) + len(self.calibration) + len(self.test)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (index ranges as ``[first, last]``, empty as ``[]``)."""

        def span(group: tuple[int, ...]) -> list[int]:
            return [group[0], group[-1]] if group else []

        return {
            "train_indices": span(self.train),
            "validation_indices": span(self.validation),
            "calibration_indices": span(self.calibration),
            "test_indices": span(self.test),
            "disjoint": True,
        }


@dataclass
class CleanImages:
    """The clean projections of one run, by group (stacks ``(N, H, W)`` float32)."""

    train: np.ndarray
    validation: np.ndarray
    calibration: np.ndarray
    test: np.ndarray
    split: Split
    source: str


@dataclass
class SnrData:
    """Clean and noisy images of one SNR.

    Attributes
    ----------
    train_a, train_b
        The noisy training pairs (two independent noise realisations of each clean image).
    val_a, val_b
        Noisy validation pairs.
    calibration_noisy, test_noisy
        One noisy copy of each calibration and test image.
    clean
        The clean images of the run.
    """

    snr: float
    snr_index: int
    train_a: np.ndarray
    train_b: np.ndarray
    val_a: np.ndarray
    val_b: np.ndarray
    calibration_noisy: np.ndarray
    test_noisy: np.ndarray
    clean: CleanImages


def structure_digest(path: str | os.PathLike[str] | None) -> str | None:
    """SHA-256 (16 hex digits) of a structure file's bytes; ``None`` for the phantom."""
    if path is None:
        return None
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    except OSError as exc:
        raise InputFileError(path, f"cannot read the structure file ({exc.strerror})") from None


@dataclass
class StudyImages:
    """Every image of a run.

    Attributes
    ----------
    clean
        The clean projections by group.
    noisy_a, noisy_b
        ``(n_snr, n_total, H, W)``: the two noise realisations of every projection at each SNR.
    measured_snr
        ``(n_snr, n_total)``: the SNR measured on each ``a`` image.
    snr_levels
        The SNRs, in the order of the first axis.
    """

    clean: CleanImages
    noisy_a: np.ndarray
    noisy_b: np.ndarray
    measured_snr: np.ndarray
    snr_levels: tuple[float, ...]

    def at(self, snr_index: int) -> SnrData:
        """The data of one SNR."""
        split = self.clean.split
        a, b = self.noisy_a[snr_index], self.noisy_b[snr_index]

        def take(stack: np.ndarray, group: tuple[int, ...]) -> np.ndarray:
            return stack[list(group)] if group else stack[:0]

        return SnrData(
            snr=float(self.snr_levels[snr_index]),
            snr_index=int(snr_index),
            train_a=take(a, split.train),
            train_b=take(b, split.train),
            val_a=take(a, split.validation),
            val_b=take(b, split.validation),
            calibration_noisy=take(a, split.calibration),
            test_noisy=take(a, split.test),
            clean=self.clean,
        )

    def measured_test_snr(self) -> list[float]:
        """Mean measured SNR of the test images at each level."""
        test = list(self.clean.split.test)
        return [float(np.mean(self.measured_snr[s, test])) for s in range(len(self.snr_levels))]


def simulate_study_images(
    config: StudyConfig, *, progress: Callable[[int, int], None] | None = None
) -> StudyImages:
    """Simulate every image of a run with :func:`cryoden.simulation.simulate_images`.

    Parameters
    ----------
    config
        The study settings (structure or phantom, sizes, SNRs, seed).
    progress
        Called as ``progress(done, total)`` per projection.

    Raises
    ------
    InputFileError
        If ``config.structure`` is missing or not a readable model or map.
    """
    if getattr(config, "realistic", False):  # a RealisticStudyConfig: movie frame sums
        from cryoden.benchmark.realistic import simulate_realistic_images

        return simulate_realistic_images(config, progress=progress)  # type: ignore[arg-type]
    from cryoden.simulation import simulate_images

    split = Split.from_config(config)
    levels = tuple(config.snr_levels)
    images = simulate_images(
        structure=config.structure,
        phantom=None if config.structure else "groel",
        n_images=split.n_total,
        size=config.image_size,
        pixel_size_angstrom=config.pixel_size_angstrom,
        snr_levels=levels,
        seed=config.seed,
        noise_model="gaussian",
        shared_noise=config.shared_noise,
    )
    shape = (config.image_size, config.image_size)
    clean = np.empty((split.n_total, *shape), dtype=np.float32)
    noisy_a = np.empty((len(levels), split.n_total, *shape), dtype=np.float32)
    noisy_b = np.empty_like(noisy_a)
    measured = np.empty((len(levels), split.n_total))
    for image in images:
        i = image.index
        clean[i] = image.clean
        keys = list(image.pairs)
        for s, snr in enumerate(levels):
            key = min(keys, key=lambda k: abs(k - snr))
            noisy_a[s, i], noisy_b[s, i] = image.pairs[key]
            measured[s, i] = image.measured_snr[key][0]
        if progress is not None:
            progress(i + 1, split.n_total)

    def take(group: tuple[int, ...]) -> np.ndarray:
        return clean[list(group)] if group else clean[:0]

    source = str(config.structure) if config.structure else "embedded GroEL-like phantom"
    logger.info("simulated %d projections of %s at %d SNRs", split.n_total, source, len(levels))
    groups = CleanImages(
        train=take(split.train),
        validation=take(split.validation),
        calibration=take(split.calibration),
        test=take(split.test),
        split=split,
        source=source,
    )
    return StudyImages(groups, noisy_a, noisy_b, measured, levels)
