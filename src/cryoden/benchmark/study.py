"""The seed study's settings: which methods, which SNRs, how big, how long.

A :class:`StudyConfig` holds every setting that shapes the numbers of a run (image size, data
split sizes, training budget, threads, seed). Three presets exist: ``tiny`` (a few SNRs and a
token training budget, to test the pipeline), ``quick`` (the study's ten SNRs at a small image
size and a short training budget per cell, for a CPU) and ``full`` (larger images, more data,
longer training). The methods are records in :mod:`cryoden.benchmark.registry`.

Why budgets are counted in optimiser steps: the study trains one network per learned method and
SNR, each for exactly ``train_steps`` steps, so a run's numbers depend on its settings and seed,
not on how fast or how busy the machine is. Every training and inference runs with ``threads``
torch threads (recorded), because the thread count can change the order of floating-point sums:
the same seed, machine and thread count give the same ``results.json`` numbers. Wall time is a
result of a run (recorded per cell), never a setting of it.

Why warm starts, a pretraining at the highest SNR, and shared noise: the learned cells of one
method form a curriculum over the SNRs, so training accumulates across the levels rather than
restarting from random weights at every SNR within a short budget. Each method first trains one
network from random weights on the highest SNR's training data (the pretraining, not scored),
where a short training already finds the signal; the cells then run from the lowest SNR up
(:attr:`StudyConfig.snr_order`), the lowest starting from the pretrained network and each higher
one fine-tuning the model of the next lower SNR, so a cleaner level is never trained less than a
noisier one. Started from random weights at the lowest SNR, where the signal is a hundredth of
the noise's variance, a short training can end with an output whose correlation with the signal
has either sign (an inverted image). A warm-started cell keeps its starting model when training
does not lower the validation loss (see :func:`cryoden.training.loop.train`), so ``n_val`` must
be large enough for that judgement to be stable. Each image's noise is one field scaled to every
SNR (``shared_noise``), so a change of PSNR between two levels is due to the SNR and the model,
not to a new noise draw.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

from cryoden.benchmark.registry import (
    LEARNED_METHODS,
    METHOD_NAMES,
    default_methods,
    parse_methods,
)
from cryoden.errors import ParameterError
from cryoden.noise import STUDY_SNR_LEVELS, image_seed
from cryoden.training.config import TrainConfig

__all__ = [
    "LEARNED_METHODS",
    "METHOD_NAMES",
    "PRESETS",
    "StudyConfig",
    "default_methods",
    "default_threads",
    "fingerprint_hash",
    "parse_methods",
    "preset",
]

PRESETS: tuple[str, ...] = ("tiny", "quick", "full")

#: Optimiser steps per learned cell of the ``quick`` preset (the defaults): sized so that the
#: quick study, every learned method at the ten SNRs, runs in minutes on a CPU.
QUICK_TRAIN_STEPS = 200
#: Optimiser steps per learned cell of the ``full`` preset (larger images and networks).
FULL_TRAIN_STEPS = 2000


def default_threads() -> int:
    """The study's torch thread count: ``min(2, CPU count)``. Small study networks gain little
    from more threads, and a fixed, recorded count keeps a run reproducible."""
    return max(1, min(2, os.cpu_count() or 1))


#: What :meth:`StudyConfig.warm_start_source` returns for the first cell of the curriculum: the
#: network pretrained from random weights on the highest SNR's training data.
PRETRAIN = "pretrain"


@dataclass(frozen=True)
class StudyConfig:
    """Every setting of a seed-study run.

    Parameters
    ----------
    preset
        ``"tiny"``, ``"quick"`` or ``"full"`` (a label; the fields below are what count).
    image_size
        Side of the square images (pixels), a crop around the particle.
    pixel_size_angstrom
        Pixel size of the simulated projections (Å).
    n_train
        Training pairs per SNR. Noise2Noise trains on the pairs; the single-image methods
        (Noise2Void, Neighbor2Neighbor) get both images of every pair as single images, and the
        supervised reference both images of every pair, each with its clean image as target, so
        all learned methods see the same noisy data.
    n_val
        Extra pairs (own clean projections) for the trainer's validation loss.
    n_test
        Test images per SNR (own clean projections and noise seeds; never trained on).
    n_calibration
        Clean + noisy images on which the filters' parameters are chosen (never tested on).
    snr_levels
        SNRs, ``var(signal) / var(noise)``; the study's ten by default.
    methods
        Method names (records in :mod:`cryoden.benchmark.registry`), in drawing order.
    train_steps
        Optimiser steps per learned (method, SNR) cell, warm-started cells included: the
        training budget, and the main knob of the run's duration (about
        ``len(snr_levels) * n_learned * train_steps`` steps in all).
    cold_start_factor
        A cell trained from random weights (the first of each method's curriculum, or every
        cell without ``warm_start``) takes this many times ``train_steps``: from random weights
        a network needs more steps to find the signal than when it fine-tunes a model of a
        nearby SNR.
    steps_per_epoch
        Optimiser steps per epoch (the validation loss is measured after each epoch; the last
        epoch of a cell may be partial).
    threads
        Torch CPU threads of every cell's training and inference (see the module docstring);
        by default :func:`default_threads`.
    patch, batch
        Training patch side (pixels) and batch size.
    base_channels
        First-level width of the study's encoder-decoders (``seed5``, ``seed4``). The study sets
        widths per preset, to fit its training budget, instead of the schemes' default networks
        (:func:`cryoden.training.defaults.default_network`); very narrow seed networks train
        unreliably from random weights.
    unet_base_channels
        First-level width of the U-Nets (``n2n-unet``, ``n2v``, ``ne2ne``), set apart from
        ``base_channels`` because a U-Net costs more per pixel than a seed network of the same
        width (its skip connections and wider decoder).
    learning_rate
        Adam learning rate (cosine decay over each cell) of a cell trained from random weights.
    warm_start
        Start each learned cell from the same method's model of the next lower SNR, the lowest
        SNR's from a network pretrained on the highest SNR's training data (see
        :attr:`snr_order`); ``False`` trains every cell from random weights, as the original
        study did.
    warm_start_lr_factor
        A warm-started cell fine-tunes at ``learning_rate`` times this, in (0, 1]: restarting
        the cosine schedule at the full rate would partly undo what the previous training
        reached.
    shared_noise
        Draw each image's noise at every SNR from one random stream (common random numbers:
        the noise of an image at two SNRs differs only in scale), so differences between SNR
        levels reflect the SNR, not the draw. ``False`` gives every level independent noise.
    seed
        Base seed of orientations, noise and training.
    structure
        Atomic model (PDB/mmCIF, gz allowed); ``None`` uses the embedded GroEL-like phantom.
    montage_snr_indices
        Indices into ``snr_levels`` of the rows of the image montage.
    """

    preset: str = "quick"
    image_size: int = 64
    pixel_size_angstrom: float = 3.75
    n_train: int = 48
    n_val: int = 8
    n_test: int = 8
    n_calibration: int = 1
    snr_levels: tuple[float, ...] = STUDY_SNR_LEVELS
    methods: tuple[str, ...] = field(default_factory=default_methods)
    train_steps: int = QUICK_TRAIN_STEPS
    cold_start_factor: int = 2
    steps_per_epoch: int = 50
    threads: int = field(default_factory=default_threads)
    patch: int = 64
    batch: int = 8
    base_channels: int = 16
    unet_base_channels: int = 8
    learning_rate: float = 1e-3
    warm_start: bool = True
    warm_start_lr_factor: float = 0.3
    shared_noise: bool = True
    seed: int = 0
    structure: str | None = None
    montage_snr_indices: tuple[int, ...] = (0, 2, 5, 9)

    def __post_init__(self) -> None:
        positive = (
            "image_size", "n_train", "n_test", "n_calibration", "patch", "batch", "train_steps",
            "cold_start_factor", "steps_per_epoch", "threads", "base_channels", "unet_base_channels",
        )  # fmt: skip
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ParameterError(f"study {name} must be a positive integer, got {value!r}")
        for name in ("n_val", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ParameterError(f"study {name} must be an integer >= 0, got {value!r}")
        if not isinstance(self.warm_start, bool):
            raise ParameterError(f"study warm_start must be true or false, got {self.warm_start!r}")
        if self.image_size < 16:
            raise ParameterError(f"study image_size must be >= 16, got {self.image_size}")
        if not self.pixel_size_angstrom > 0:
            raise ParameterError(
                f"study pixel_size_angstrom must be > 0, got {self.pixel_size_angstrom}"
            )
        if not 0 < self.warm_start_lr_factor <= 1:
            raise ParameterError(
                f"study warm_start_lr_factor must be in (0, 1], got {self.warm_start_lr_factor}"
            )
        if not self.snr_levels or any(not s > 0 for s in self.snr_levels):
            raise ParameterError(f"study snr_levels must be positive, got {self.snr_levels}")
        unknown = [m for m in self.methods if m not in METHOD_NAMES]
        if unknown or not self.methods:
            raise ParameterError(
                f"study methods must be among {', '.join(METHOD_NAMES)}, got {self.methods}"
            )
        bad = [i for i in self.montage_snr_indices if not 0 <= i < len(self.snr_levels)]
        if bad:
            raise ParameterError(f"study montage_snr_indices out of range: {bad}")
        object.__setattr__(self, "snr_levels", tuple(float(s) for s in self.snr_levels))
        object.__setattr__(self, "methods", tuple(self.methods))
        object.__setattr__(self, "montage_snr_indices", tuple(self.montage_snr_indices))

    @property
    def learned_methods(self) -> tuple[str, ...]:
        """The configured methods that train a network."""
        return tuple(m for m in self.methods if m in LEARNED_METHODS)

    @property
    def snr_order(self) -> tuple[int, ...]:
        """Indices into ``snr_levels`` in the order the cells run: from the lowest SNR up (the
        warm-start curriculum, after the pretraining at the highest SNR; see the module
        docstring)."""
        return tuple(sorted(range(len(self.snr_levels)), key=lambda i: self.snr_levels[i]))

    @property
    def pretrain_index(self) -> int:
        """Index of the highest SNR, whose training data the pretraining uses."""
        return max(range(len(self.snr_levels)), key=lambda i: self.snr_levels[i])

    def warm_start_source(self, snr_index: int) -> int | str | None:
        """What a learned cell at ``snr_index`` starts from: the SNR index before it in
        :attr:`snr_order`, :data:`PRETRAIN` for the first (the network pretrained on the
        highest SNR's data), or ``None`` without ``warm_start``."""
        if not self.warm_start:
            return None
        order = self.snr_order
        position = order.index(snr_index)
        return order[position - 1] if position > 0 else PRETRAIN

    @property
    def effective_patch(self) -> int:
        """The training patch side, never larger than the image."""
        return min(self.patch, self.image_size)

    def cell_steps(self, *, warm: bool) -> int:
        """Optimiser steps of one learned cell: ``train_steps`` when it starts from another
        SNR's model (``warm``), ``cold_start_factor`` times that from random weights."""
        return self.train_steps * (1 if warm else self.cold_start_factor)

    @property
    def total_train_steps(self) -> int:
        """Optimiser steps of the whole run: every learned (method, SNR) cell's and each
        method's pretraining."""
        n_snr = len(self.snr_levels)
        if self.warm_start:  # the pretraining from random weights, then every cell warm
            per_method = self.cell_steps(warm=False) + n_snr * self.train_steps
        else:
            per_method = n_snr * self.cell_steps(warm=False)
        return len(self.learned_methods) * per_method

    def replace(self, **changes: Any) -> StudyConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings."""
        data = dataclasses.asdict(self)
        data["snr_levels"] = list(self.snr_levels)
        data["methods"] = list(self.methods)
        data["montage_snr_indices"] = list(self.montage_snr_indices)
        return data

    def fingerprint(self, structure_digest: str | None = None) -> dict[str, Any]:
        """The settings that decide a cell's numbers (all but the method list and labels).

        Two runs whose fingerprints match may share finished cells; ``structure_digest`` (a
        hash of the structure file) guards against a changed model behind the same path.
        """
        data = self.to_dict()
        for key in ("methods", "preset", "montage_snr_indices", "structure"):
            data.pop(key)
        data["structure_digest"] = structure_digest
        return data


def fingerprint_hash(fingerprint: dict[str, Any]) -> str:
    """A short stable hash of a fingerprint dict."""
    text = json.dumps(fingerprint, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def preset(name: str, **changes: Any) -> StudyConfig:
    """The named preset (``tiny``, ``quick`` or ``full``), with optional field overrides.

    Examples
    --------
    >>> preset("quick").image_size
    64
    >>> preset("tiny", seed=3).seed
    3
    """
    base: dict[str, dict[str, Any]] = {
        # For tests of the whole pipeline, not for numbers: three of the study's SNRs (the
        # lowest, one in the middle, the highest), a few steps per cell and one thread.
        "tiny": {
            "image_size": 32,
            "pixel_size_angstrom": 8.0,
            "n_train": 3,
            "n_val": 1,
            "n_test": 2,
            "snr_levels": (STUDY_SNR_LEVELS[0], STUDY_SNR_LEVELS[4], STUDY_SNR_LEVELS[-1]),
            "montage_snr_indices": (0, 1, 2),
            "train_steps": 3,
            "steps_per_epoch": 2,
            "threads": 1,
            "patch": 32,
            "batch": 2,
            "base_channels": 4,
            "unet_base_channels": 4,
        },
        # The study's ten SNRs at a small image size and a short budget per cell, for a CPU.
        "quick": {},
        # Larger images, more data, longer training (meant for a GPU).
        "full": {
            "image_size": 128,
            "pixel_size_angstrom": 1.875,
            "n_train": 96,
            "n_val": 8,
            "n_test": 16,
            "n_calibration": 2,
            "train_steps": FULL_TRAIN_STEPS,
            "steps_per_epoch": 100,
            "patch": 96,
            "batch": 16,
            "base_channels": 32,
            "unet_base_channels": 16,
            "learning_rate": 1e-3,
            "montage_snr_indices": (0, 1, 2, 4, 6, 9),
        },
    }
    if name not in base:
        raise ParameterError(f"unknown study preset {name!r}; known: {', '.join(PRESETS)}")
    return StudyConfig(preset=name, **{**base[name], **changes})


def cell_train_config(config: Any, *, stream: int, warm: bool, **extra: Any) -> TrainConfig:
    """The recipe of one learned study cell, 2D (:class:`StudyConfig`) or 3D (a tomogram study
    config with the same training fields): exactly ``config.cell_steps(warm=warm)`` optimiser
    steps with ``config.threads`` threads, no wall-clock limit, no early stopping, an L2 loss on
    a cosine schedule, seeded from ``image_seed(config.seed, stream)``. A ``warm``-started cell
    (fine-tuning) trains at ``warm_start_lr_factor`` times the learning rate, as restarting the
    cosine schedule at the full rate would partly undo what the previous training reached.
    ``extra``: further :class:`~cryoden.training.config.TrainConfig` fields."""
    rate = config.learning_rate * (config.warm_start_lr_factor if warm else 1.0)
    return TrainConfig(
        max_steps=config.cell_steps(warm=warm),
        max_minutes=None,
        threads=config.threads,
        patch=config.effective_patch,
        batch_size=config.batch,
        steps_per_epoch=config.steps_per_epoch,
        learning_rate=rate,
        lr_schedule="cosine",
        loss="l2",
        early_stopping_patience=None,
        seed=int(image_seed(config.seed, stream) % (2**31)),
        **extra,
    )
