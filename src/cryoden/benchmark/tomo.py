"""The tomography study's settings: :class:`TomoStudyConfig` and its presets.

The seed study's idea in 3D. Simulated tomograms (:mod:`cryoden.simulation.tomo_dataset`) of a
slab crowded with copies of a structure are reconstructed from noisy even and odd tilt series
at several tilt-image SNRs; 3D Noise2Noise (on the even/odd pairs) and 3D Noise2Void (on single
halves) are trained on tomograms of the *training* structures and tested on tomograms of
*other* structures, from random streams never trained on; 3D Gaussian and low-pass filters, each
at the parameter that is best against the clean test tomograms (an oracle), are the bar to beat.

Budgets are optimiser steps run on a fixed number of torch threads, so a seeded study repeats
(see :mod:`cryoden.benchmark.study`). The learned cells of a method run from the highest SNR
down: the first from random weights for ``cold_start_factor * train_steps`` steps, each next one
fine-tuning the previous SNR's model for ``train_steps`` steps at ``warm_start_lr_factor`` times
the learning rate.

Presets: ``tiny`` (tests of the pipeline, not numbers), ``quick`` (128 x 128 x 64 voxels of 8 Å,
three SNRs, a CPU budget) and ``full`` (larger tomograms, more data and training).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from cryoden.benchmark.study import default_threads
from cryoden.benchmark.tomo_methods import LEARNED, TOMO_METHODS
from cryoden.errors import ParameterError
from cryoden.nets.config import NetworkConfig
from cryoden.simulation.tomo_config import TomogramConfig
from cryoden.training.defaults import DEFAULT_UNET_3D

TOMO_PRESETS: tuple[str, ...] = ("tiny", "quick", "full")

#: The study's tilt-image SNRs by default (variance ratio per tilt image and half).
TOMO_SNR_LEVELS: tuple[float, ...] = (0.1, 0.3, 1.0)
#: The 3D Gaussian's grid of standard deviations (voxels) the oracle chooses from.
GAUSSIAN_SIGMAS_PX: tuple[float, ...] = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0)
#: The 3D low-pass's grid of cutoffs (Nyquist units) the oracle chooses from.
LOWPASS_CUTOFFS: tuple[float, ...] = (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.8)


def parse_tomo_methods(text: str | None) -> tuple[str, ...]:
    """``"n2n,gaussian"`` -> ``("n2n", "gaussian")`` (all methods for None)."""
    if text is None:
        return TOMO_METHODS
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [n for n in names if n not in TOMO_METHODS]
    if unknown or not names:
        raise ParameterError(
            f"methods: unknown {', '.join(unknown) or '(none given)'}; known: "
            f"{', '.join(TOMO_METHODS)}"
        )
    return names


@dataclass(frozen=True)
class TomoStudyConfig:
    """Every setting of a tomography study run.

    Parameters
    ----------
    preset
        A label (``tiny``, ``quick``, ``full``); the fields below are what count.
    shape_zyx, voxel_size_angstrom
        Tomogram size (voxels) and voxel size (Å).
    tilt_max_deg, tilt_step_deg
        Tilt series from ``-tilt_max_deg`` to ``+tilt_max_deg`` in ``tilt_step_deg`` steps.
    snr_levels
        Tilt-image SNRs (each half), ``var(clean tilt series) / var(noise)``.
    n_train, n_test
        Training and test tomograms.
    train_structures
        Structure files of the training tomograms; empty: the embedded phantom.
    test_structures
        Structure files of the test tomograms (never trained on); required.
    methods
        Among :data:`~cryoden.benchmark.tomo_methods.TOMO_METHODS`.
    base_channels, depth, space_to_depth
        The 3D U-Net the learned methods train (``space_to_depth=2``: on 2 x 2 x 2 voxel
        blocks at half size); by default the training command's default 3D network
        (:data:`cryoden.training.defaults.DEFAULT_UNET_3D`).
    n2v_depth
        The depth of Noise2Void's U-Net instead (no space-to-depth; N2V2's blur-pool and no
        top skip where N2V2 is chosen): its structured blind spot hides the voxels around
        each masked one, so it needs a wider receptive field to see past them.
    train_steps, cold_start_factor, steps_per_epoch, patch, batch, learning_rate,
    warm_start_lr_factor
        The training recipe (see the module docstring).
    threads
        Torch threads of every training and inference.
    seed
        Base seed of the tomograms, their noise and the trainings.
    gaussian_sigmas_px, lowpass_cutoffs
        The filters' parameter grids (the oracle picks the best on the clean test tomograms).
    """

    preset: str = "quick"
    shape_zyx: tuple[int, int, int] = (64, 128, 128)
    voxel_size_angstrom: float = 8.0
    tilt_max_deg: float = 60.0
    tilt_step_deg: float = 3.0
    snr_levels: tuple[float, ...] = TOMO_SNR_LEVELS
    n_train: int = 3
    n_test: int = 2
    train_structures: tuple[str, ...] = ()
    test_structures: tuple[str, ...] = ()
    methods: tuple[str, ...] = TOMO_METHODS
    base_channels: int = DEFAULT_UNET_3D["n2n"]["base_channels"]
    depth: int = DEFAULT_UNET_3D["n2n"]["depth"]
    space_to_depth: int = DEFAULT_UNET_3D["n2n"]["space_to_depth"]
    n2v_depth: int = DEFAULT_UNET_3D["n2v"]["depth"]
    train_steps: int = 400
    cold_start_factor: int = 2
    steps_per_epoch: int = 50
    patch: int = 32
    batch: int = 4
    learning_rate: float = 1e-3
    warm_start_lr_factor: float = 0.3
    threads: int = field(default_factory=default_threads)
    seed: int = 0
    gaussian_sigmas_px: tuple[float, ...] = GAUSSIAN_SIGMAS_PX
    lowpass_cutoffs: tuple[float, ...] = LOWPASS_CUTOFFS

    def __post_init__(self) -> None:
        for name in ("n_train", "n_test", "base_channels", "depth", "n2v_depth", "train_steps",
                     "cold_start_factor", "steps_per_epoch", "patch", "batch", "threads"):  # fmt: skip
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ParameterError(f"study {name} must be a positive integer, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ParameterError(f"study seed must be an integer >= 0, got {self.seed!r}")
        if not self.snr_levels or any(not s > 0 for s in self.snr_levels):
            raise ParameterError(f"study snr_levels must be positive, got {self.snr_levels}")
        if not self.test_structures:
            raise ParameterError(
                "test_structures: give the structure file(s) of the test tomograms (models "
                "never see them), e.g. a PDB model other than the training structure"
            )
        overlap = set(self.train_structures) & set(self.test_structures)
        if overlap:
            raise ParameterError(
                f"test_structures must differ from train_structures; both hold "
                f"{', '.join(sorted(overlap))}"
            )
        methods = parse_tomo_methods(",".join(self.methods))
        if not 0 < self.warm_start_lr_factor <= 1:
            raise ParameterError(
                f"study warm_start_lr_factor must be in (0, 1], got {self.warm_start_lr_factor}"
            )
        put = object.__setattr__
        put(self, "methods", methods)
        put(self, "snr_levels", tuple(sorted({float(s) for s in self.snr_levels})))
        for name in ("train_structures", "test_structures", "shape_zyx"):
            put(self, name, tuple(getattr(self, name)))
        for method in self.learned_methods:
            self.network(method)  # checks base_channels and the depths
        self.tomogram_config()  # checks the tomogram settings

    @property
    def learned_methods(self) -> tuple[str, ...]:
        """The configured methods that train a network."""
        return tuple(m for m in self.methods if m in LEARNED)

    @property
    def snr_order(self) -> tuple[float, ...]:
        """The SNRs in the order the learned cells run: the highest first."""
        return tuple(sorted(self.snr_levels, reverse=True))

    @property
    def effective_patch(self) -> int:
        """The training patch side, never larger than the tomogram's smallest side."""
        return min(self.patch, min(self.shape_zyx))

    def cell_steps(self, *, warm: bool) -> int:
        """Optimiser steps of a learned cell (``cold_start_factor`` times more from random
        weights)."""
        return self.train_steps * (1 if warm else self.cold_start_factor)

    @property
    def total_train_steps(self) -> int:
        """Optimiser steps of the whole run."""
        per_method = self.cell_steps(warm=False) + (len(self.snr_levels) - 1) * self.train_steps
        return len(self.learned_methods) * per_method

    def network(self, method: str = "n2n") -> NetworkConfig:
        """The 3D U-Net ``method`` trains (Noise2Void: depth ``n2v_depth``, voxel-wise, with
        N2V2's tweaks at the SNRs where N2V2 is chosen; see
        :func:`~cryoden.benchmark.tomo_methods.learned_scheme`)."""
        if method == "n2v":
            return NetworkConfig(
                arch="unet", dims=3, base_channels=self.base_channels, depth=self.n2v_depth,
                space_to_depth=1,
            )  # fmt: skip
        return NetworkConfig(
            arch="unet",
            dims=3,
            base_channels=self.base_channels,
            depth=self.depth,
            space_to_depth=self.space_to_depth,
        )

    def tomogram_config(self) -> TomogramConfig:
        """The tomograms' settings (no noise level, no structures: see
        :func:`cryoden.benchmark.tomo_data.study_configs`)."""
        return TomogramConfig(
            shape_zyx=self.shape_zyx,
            voxel_size_angstrom=self.voxel_size_angstrom,
            tilt_min_deg=-self.tilt_max_deg,
            tilt_max_deg=self.tilt_max_deg,
            tilt_step_deg=self.tilt_step_deg,
            seed=self.seed,
        )

    def replace(self, **changes: Any) -> TomoStudyConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings."""
        data = dataclasses.asdict(self)
        for key, value in data.items():
            if isinstance(value, tuple):
                data[key] = list(value)
        return data


def tomo_preset(name: str, **changes: Any) -> TomoStudyConfig:
    """The named preset (``tiny``, ``quick`` or ``full``) with field overrides.

    ``test_structures`` has no default: give it among ``changes``.
    """
    base: dict[str, dict[str, Any]] = {
        # For tests of the pipeline, not for numbers: tiny tomograms, a few steps, one thread.
        "tiny": {
            "shape_zyx": (24, 32, 32),
            "voxel_size_angstrom": 4.0,
            "tilt_step_deg": 10.0,
            "snr_levels": (0.1, 0.5),
            "n_train": 1,
            "n_test": 1,
            "base_channels": 4,
            "depth": 1,
            "n2v_depth": 1,
            "train_steps": 2,
            "steps_per_epoch": 2,
            "patch": 16,
            "batch": 2,
            "threads": 1,
            "gaussian_sigmas_px": (0.5, 1.0, 2.0),
            "lowpass_cutoffs": (0.2, 0.5, 0.8),
        },
        # 128 x 128 x 64 tomograms, three SNRs and a CPU budget.
        "quick": {},
        # Larger tomograms, more data and training (meant for a GPU).
        "full": {
            "shape_zyx": (96, 192, 192),
            "n_train": 6,
            "n_test": 3,
            "base_channels": 16,
            "train_steps": 2000,
            "steps_per_epoch": 100,
            "patch": 48,
            "batch": 8,
        },
    }
    if name not in base:
        raise ParameterError(f"unknown study preset {name!r}; known: {', '.join(TOMO_PRESETS)}")
    return TomoStudyConfig(preset=name, **{**base[name], **changes})
