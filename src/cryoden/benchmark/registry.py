"""The study's methods as data: one :class:`StudyMethod` record per compared method.

Everything the study knows about a method lives in its record: its name and one-line
description, what kind of method it is (learned, fixed filter, filter calibrated on a clean
image), how it runs (the runner in :data:`cryoden.benchmark.methods.RUNNERS` and that runner's
settings), its colour in the figures and the optional package it needs. The settings, runner,
figures, findings and report all read these records, so adding a method means adding one record
to :data:`METHODS`.

:data:`METHODS` is in drawing order: the order of the figures' legends, the tables' rows and
``results.json``'s ``methods``. A learned method's position among the learned records also
derives its training seeds, so new learned records go after the existing ones.

This module holds data and selection only (no numerics), so the command line can list the
methods without importing the training stack.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryoden.errors import ParameterError

#: Kinds of method: trained networks, filters with fixed parameters (no clean data), and filters
#: whose one parameter is chosen on clean calibration images (an oracle real data lacks).
KINDS: tuple[str, ...] = ("learned", "fixed", "calibrated")

#: Training schemes whose target is the clean image (supervised), not a noisy one.
SUPERVISED_SCHEMES: tuple[str, ...] = ("care",)

#: The method the self-supervised ones are measured against: trained on clean targets, the
#: ceiling of what the study's U-Net can reach on its data.
CEILING_METHOD = "supervised"


@dataclass(frozen=True)
class StudyMethod:
    """One method of the study.

    Attributes
    ----------
    name
        The method's name in the command line, ``results.json``, figures and tables.
    description
        One line for the report's method table (copied into ``results.json``'s config).
    kind
        ``"learned"``, ``"fixed"`` or ``"calibrated"`` (see :data:`KINDS`).
    runner
        Key of the function in :data:`cryoden.benchmark.methods.RUNNERS` that runs one
        (method, SNR) cell with the settings below.
    color
        Matplotlib colour, so the method looks the same in every figure.
    filter
        Filter name for :func:`cryoden.filters.apply_filter` (filters only).
    parameter, parameter_label, grid
        The calibrated parameter's name (as the filter takes it and as ``results.json``
        records it), its label in the report (with units) and the values tried.
    fixed
        Filter arguments that are not calibrated (the fixed filters' whole setting).
    requires
        Optional Python package the method needs; without it the method is left out of the
        default list and refused when asked for.
    scheme, arch
        Training scheme (its registry name, :data:`cryoden.training.SCHEMES`) and network
        architecture of a learned method.
    scheme_options
        Keyword arguments of the scheme (:func:`cryoden.training.make_scheme`).
    network_options
        Fields set on top of :func:`cryoden.training.defaults.default_network` (the width comes
        from the study's config); ``network_note`` says why the study departs from the default.
    """

    name: str
    description: str
    kind: str
    runner: str
    color: str
    filter: str | None = None
    parameter: str | None = None
    parameter_label: str | None = None
    grid: tuple[Any, ...] = ()
    fixed: Mapping[str, Any] = field(default_factory=dict)
    requires: str | None = None
    scheme: str | None = None
    arch: str | None = None
    scheme_options: Mapping[str, Any] = field(default_factory=dict)
    network_options: Mapping[str, Any] = field(default_factory=dict)
    network_note: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"method {self.name}: kind must be one of {KINDS}")
        if self.learned != (self.scheme is not None and self.arch is not None):
            raise ValueError(f"method {self.name}: a learned method needs a scheme and an arch")

    @property
    def learned(self) -> bool:
        """Whether the method trains a network."""
        return self.kind == "learned"

    @property
    def trains_on_pairs(self) -> bool:
        """Whether a learned method trains on noisy pairs (Noise2Noise) rather than on single
        noisy images."""
        return self.scheme == "n2n"

    @property
    def trains_on_clean(self) -> bool:
        """Whether a learned method trains against the clean images (the supervised reference,
        an oracle real data lacks) rather than on noisy images alone."""
        return self.scheme in SUPERVISED_SCHEMES

    @property
    def line_style(self) -> str:
        """Matplotlib line style: solid for learned methods, dash-dot for the supervised
        reference, dashed for filters."""
        if self.trains_on_clean:
            return "-."
        return "-" if self.learned else "--"

    @property
    def line_width(self) -> float:
        """Line width in points: learned methods drawn heavier than filters."""
        return 1.6 if self.learned else 1.1


_CALIBRATION_WINDOWS = (3, 5, 7, 9, 11, 13, 15)

#: The study's methods in drawing order (see the module docstring).
METHODS: tuple[StudyMethod, ...] = (
    StudyMethod(
        "n2n-seed5", "Noise2Noise, the study's 5-level encoder-decoder (no skips), L2 loss",
        kind="learned", runner="learned", color="#d62728", scheme="n2n", arch="seed5",
        scheme_options={"loss": "l2"},
    ),
    StudyMethod(
        "n2n-seed4", "Noise2Noise, the study's 4-level variant (depth study)",
        kind="learned", runner="learned", color="#ff7f0e", scheme="n2n", arch="seed4",
        scheme_options={"loss": "l2"},
    ),
    StudyMethod(
        "n2n-unet", "Noise2Noise, 4-level U-Net with skip connections",
        kind="learned", runner="learned", color="#8c564b", scheme="n2n", arch="unet",
        scheme_options={"loss": "l2"},
        network_options={"space_to_depth": 1},
        network_note=(
            "plain U-Net rather than Noise2Noise's default space-to-depth layout, so that the "
            "study's three U-Net methods share one network and differ only in how they train"
        ),
    ),
    StudyMethod(
        "n2v", "Noise2Void, N2V2 variant (blind spot, median replacement; blur-pool U-Net "
        "without top skip), trained on single noisy images",
        kind="learned", runner="learned", color="#1f77b4", scheme="n2v2", arch="unet",
        # N2V2 (median replacement, blur-pool U-Net without top skip): no checkerboard. The mask
        # fraction is the study's own (one pixel per 6 x 6 cell, not the scheme's default), kept
        # so that the study's cells stay comparable; like the default it is denser than the
        # papers', for more gradient per step in a short time budget.
        scheme_options={"mask_fraction": 1.0 / 36.0},
    ),
    StudyMethod(
        "ne2ne", "Neighbor2Neighbor, trained on single noisy images, U-Net",
        kind="learned", runner="learned", color="#9467bd", scheme="ne2ne", arch="unet",
        scheme_options={"gamma": 2.0},
    ),
    StudyMethod(
        CEILING_METHOD, "Supervised (CARE): n2n-unet's U-Net trained on the noisy images against "
        "their clean images, L2 loss; the ceiling, using clean training data that real data "
        "lacks",
        kind="learned", runner="learned", color="#b8860b", scheme="care", arch="unet",
        scheme_options={"loss": "l2"},
        network_options={"space_to_depth": 1, "depth": 4},
        network_note=(
            "n2n-unet's network (plain U-Net, depth 4), so that the ceiling differs from the "
            "self-supervised U-Nets only in its clean training targets"
        ),
    ),
    StudyMethod(
        "lowpass-0.05", "Fourier low-pass, hard cutoff 0.05 Nyquist (the study's)",
        kind="fixed", runner="fixed-filter", color="#2ca02c", filter="lowpass",
        fixed={"cutoff_nyquist": 0.05, "edge": "hard"},
    ),
    StudyMethod(
        "lowpass-0.001", "Fourier low-pass, hard cutoff 0.001 Nyquist (the study's)",
        kind="fixed", runner="fixed-filter", color="#7f7f7f", filter="lowpass",
        fixed={"cutoff_nyquist": 0.001, "edge": "hard"},
    ),
    StudyMethod(
        "lowpass-best", "Fourier low-pass, cutoff chosen on a clean calibration image",
        kind="calibrated", runner="calibrated-filter", color="#17becf", filter="lowpass",
        parameter="cutoff_nyquist", parameter_label="cutoff (Nyquist)",
        grid=(0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.08, 0.1, 0.12, 0.15, 0.2, 0.25, 0.3, 0.4,
              0.5, 0.6, 0.8, 1.0),
        fixed={"edge": "hard"},
    ),
    StudyMethod(
        "gaussian", "Gaussian filter, sigma chosen on a clean calibration image",
        kind="calibrated", runner="calibrated-filter", color="#bcbd22", filter="gaussian",
        parameter="sigma_px", parameter_label="sigma (px)",
        grid=(0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0),
    ),
    StudyMethod(
        "median", "Median filter, window chosen on a clean calibration image",
        kind="calibrated", runner="calibrated-filter", color="#e377c2", filter="median",
        parameter="size", parameter_label="window (px)", grid=_CALIBRATION_WINDOWS,
    ),
    StudyMethod(
        "mean", "Mean (box) filter, window chosen on a clean calibration image",
        kind="calibrated", runner="calibrated-filter", color="#393b79", filter="mean",
        parameter="size", parameter_label="window (px)", grid=_CALIBRATION_WINDOWS,
    ),
    StudyMethod(
        "wiener", "Local (adaptive) Wiener filter, window chosen on a clean calibration image",
        kind="calibrated", runner="calibrated-filter", color="#637939", filter="wiener",
        parameter="size", parameter_label="window (px)", grid=_CALIBRATION_WINDOWS,
    ),
    StudyMethod(
        "bm3d", "BM3D (optional package), noise sigma chosen on a clean calibration image",
        kind="calibrated", runner="bm3d", color="#843c39", requires="bm3d",
        # multiples of a robust per-image estimate of the noise level
        parameter="sigma_factor", parameter_label="sigma factor",
        grid=(0.5, 0.75, 1.0, 1.25, 1.5, 2.0),
    ),
)  # fmt: skip

#: Records by name.
BY_NAME: dict[str, StudyMethod] = {m.name: m for m in METHODS}

#: Every method the study knows, in drawing order (optional ones only run when installed).
METHOD_NAMES: tuple[str, ...] = tuple(BY_NAME)

#: The methods that train a network, in drawing order.
LEARNED_METHODS: tuple[str, ...] = tuple(m.name for m in METHODS if m.learned)


def get_method(name: str) -> StudyMethod:
    """The record of a method name.

    Raises
    ------
    ParameterError
        For a name the study does not know.
    """
    try:
        return BY_NAME[name]
    except KeyError:
        raise ParameterError(
            f"methods: unknown method {name!r}; known: {', '.join(METHOD_NAMES)}"
        ) from None


def method_names(kind: str | None = None, *, scheme: str | None = None) -> tuple[str, ...]:
    """Names of the methods of one ``kind`` and/or training ``scheme``, in drawing order."""
    return tuple(
        m.name
        for m in METHODS
        if (kind is None or m.kind == kind) and (scheme is None or m.scheme == scheme)
    )


def learned_index(name: str) -> int:
    """Position of a learned method among the learned records (it derives training seeds)."""
    return LEARNED_METHODS.index(name)


def package_available(package: str) -> bool:
    """Whether an optional package can be imported."""
    return importlib.util.find_spec(package) is not None


def is_available(method: StudyMethod) -> bool:
    """Whether a method can run here (its optional package, if any, is installed)."""
    return method.requires is None or package_available(method.requires)


def default_methods() -> tuple[str, ...]:
    """Every method in :data:`METHODS` that can run here (those needing an absent package left
    out)."""
    return tuple(m.name for m in METHODS if is_available(m))


def parse_methods(text: str | None) -> tuple[str, ...]:
    """Parse a comma-separated method list (``None`` or empty: :func:`default_methods`), in
    drawing order.

    Raises
    ------
    ParameterError
        For an unknown name, a repeated name, or a method whose optional package is missing;
        the message starts with the parameter's name, ``methods``.
    """
    if text is None or not text.strip():
        return default_methods()
    names = [n.strip() for n in text.split(",") if n.strip()]
    for name in names:
        method = get_method(name)
        if not is_available(method):
            raise ParameterError(
                f"methods: {name} needs the optional {method.requires} package "
                f"(pip install 'cryoden[{method.requires}]')"
            )
    if len(set(names)) != len(names):
        raise ParameterError(f"methods: a method is repeated in {text!r}")
    return tuple(m for m in METHOD_NAMES if m in names)
