"""Validated network configuration: which architecture, how wide, how deep.

A :class:`NetworkConfig` is all a model file needs to rebuild its network (with
:func:`cryoden.nets.registry.build_network`); it is stored as JSON, so it holds primitives only.

Model files may carry the fields ``activation``, ``upsampling`` and ``residual``, which are not
options: :meth:`NetworkConfig.from_dict` accepts them at the one value every network has (see
:data:`LEGACY_FIELDS`) and refuses any other, since it would describe a network this cryoden
cannot build.

Convolutions pad their input by reflection (``padding="reflect"``), so no frame appears along
image borders. Model files written without a ``padding`` field computed with zero padding;
:meth:`NetworkConfig.from_dict` reads them as ``padding="zeros"``, so they compute what they
always did.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from cryoden.errors import ParameterError

#: Architectures known to :func:`cryoden.nets.registry.build_network`.
ARCHITECTURES: tuple[str, ...] = ("unet", "seed5", "seed4")

#: Depth of each architecture when ``depth`` is not given (the seed nets' depth is fixed).
DEFAULT_DEPTH: dict[str, int] = {"unet": 4, "seed5": 5, "seed4": 4}
#: Width of each architecture when ``base_channels`` is not given. For the plain U-Net, the width
#: with the best measured quality per FLOP (``benchmarks/bench_quality.py``; the figures are in
#: ``benchmarks/results/``). The training schemes pick their own default on top of this
#: (:mod:`cryoden.training.defaults`).
DEFAULT_BASE_CHANNELS: dict[str, int] = {"unet": 8, "seed5": 32, "seed4": 32}
#: Activation of each architecture: leaky ReLU (negative slope 0.01) in the U-Net, ReLU in the
#: study's encoder-decoders.
ACTIVATION: dict[str, str] = {"unet": "leaky_relu", "seed5": "relu", "seed4": "relu"}
#: Fields a model file may hold that are not options, with the value every network has
#: (``activation``, also accepted, must be the architecture's own, :data:`ACTIVATION`).
LEGACY_FIELDS: dict[str, object] = {"upsampling": "bilinear", "residual": False}
#: Spatial dimensions a network works in: 2 (images) or 3 (volumes, U-Net only).
DIMS: tuple[int, ...] = (2, 3)
#: Padding modes of the 'same' convolutions: reflection (new networks) or zeros.
PADDINGS: tuple[str, ...] = ("reflect", "zeros")
#: The padding of a network whose stored config has no ``padding`` field (written before the
#: field existed, when every convolution padded with zeros).
UNRECORDED_PADDING = "zeros"
MAX_UNET_DEPTH = 6
#: Upper bounds of a network's size fields. A model file is untrusted input: a config naming
#: absurd sizes is refused here, before any network is built and any weight is allocated.
#: Cryo-EM images have one channel (a few for multi-channel inputs such as frame pairs); the
#: first level of a denoising U-Net needs a few dozen feature channels; kernels beyond 15 px
#: add nothing a deeper level does not give more cheaply.
MAX_IMAGE_CHANNELS = 16
MAX_BASE_CHANNELS = 256
MAX_KERNEL_SIZE = 15
#: Most weights a network may have, counted from its config before it is built: ``2**26``
#: float32 weights are 256 MiB, and training holds four copies (weights, gradients and Adam's
#: two moments). The networks cryoden trains are orders of magnitude smaller.
MAX_PARAMETERS = 1 << 26


def _check_int(name: str, value: object, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParameterError(f"network {name} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ParameterError(f"network {name} must be {bound}, got {value}")


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ParameterError(f"network {name} must be one of {', '.join(choices)}; got {value!r}")


def _drop_legacy_fields(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` without the legacy fields (:data:`LEGACY_FIELDS`, ``activation``), which must
    hold the value every network has; another value raises ParameterError naming the field."""
    arch = data.get("arch", "unet")
    expected: dict[str, object] = {**LEGACY_FIELDS, "activation": ACTIVATION.get(arch)}
    for name, value in expected.items():
        if value is None:  # an unknown arch: the constructor names it
            continue
        if name in data and data[name] is not None and data[name] != value:
            raise ParameterError(
                f"network {name}={data[name]!r} is not supported (this cryoden builds "
                f"{arch} networks with {name}={value!r} only)"
            )
    return {k: v for k, v in data.items() if k not in expected}


def _conv_parameters(in_channels: int, out_channels: int, kernel_size: int, dims: int = 2) -> int:
    """Weights and biases of one ``Conv2d`` (``dims=2``) or ``Conv3d`` (``dims=3``)."""
    return in_channels * out_channels * kernel_size**dims + out_channels


def estimated_parameters(config: NetworkConfig) -> int:
    """The number of weights (and biases) of the network ``config`` describes, counted from the
    config alone, so that a network too large to build is refused before it is built.

    >>> estimated_parameters(NetworkConfig(base_channels=4, depth=1))
    1549
    """
    assert config.base_channels is not None and config.depth is not None  # filled in by now
    k, base, depth = config.kernel_size, int(config.base_channels), int(config.depth)
    total = 0
    if config.arch == "unet":  # the one architecture with a 3D form (dims=3: k**3 kernels)

        def conv(i: int, o: int, kernel: int) -> int:
            return _conv_parameters(i, o, kernel, config.dims)

        s2d = config.space_to_depth**config.dims  # 2x2 (2x2x2) blocks as channels
        widths = [base * 2**level for level in range(depth + 1)]
        in_ch = config.in_channels * s2d
        for level in range(depth):  # encoder blocks, then the bottleneck: two convs each
            total += conv(in_ch, widths[level], k)
            total += conv(widths[level], widths[level], k)
            in_ch = widths[level]
        total += conv(widths[depth - 1], widths[depth], k)
        total += conv(widths[depth], widths[depth], k)
        for level in reversed(range(depth)):  # 1x1 up-projection, then two convs
            total += conv(widths[level + 1], widths[level], 1)
            skip = level > 0 or config.top_skip
            total += conv(widths[level] * (2 if skip else 1), widths[level], k)
            total += conv(widths[level], widths[level], k)
        return total + conv(widths[0], config.out_channels * s2d, 1)
    widths = [base * 2 ** min(i, 3) for i in range(depth)]
    in_ch = config.in_channels
    for width in widths:
        total += _conv_parameters(in_ch, width, k)
        in_ch = width
    for i in reversed(range(depth)):
        out_ch = widths[i - 1] if i > 0 else widths[0]
        total += _conv_parameters(in_ch, out_ch, k)
        in_ch = out_ch
    return total + _conv_parameters(in_ch, config.out_channels, 1)


def _check_bool(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise ParameterError(f"network {name} must be true or false, got {value!r}")


@dataclass(frozen=True)
class NetworkConfig:
    """Configuration of a denoising network.

    Parameters
    ----------
    arch
        ``"unet"`` (U-Net with skip connections, the default for real use), ``"seed5"`` or
        ``"seed4"`` (the study's encoder-decoder without skips, 5 or 4 encoder blocks).
    in_channels, out_channels
        Image channels (1 for cryo-EM images).
    base_channels
        Feature channels of the first level; level ``l`` has ``base_channels * 2**l``.
        ``None`` takes the architecture's default (``unet`` 8, seed nets 32).
    depth
        Number of 2× downsamplings. ``None`` takes the architecture's default (``unet`` 4,
        ``seed5`` 5, ``seed4`` 4); the seed architectures accept only their own depth.
    kernel_size
        Odd convolution kernel size (3 by default; the study varies it).
    blurpool
        Downsample with max-blur-pool (max pool of stride 1, then a [1 2 1]² blur of stride 2),
        as in N2V2, instead of a stride-2 max pool.
    top_skip
        Keep the U-Net's top-level skip connection; N2V2 drops it (``False``). Only ``unet``.
    space_to_depth
        ``1`` (off) or ``2``: the U-Net works at half size on the four 2×2 polyphase components
        as channels (``pixel_unshuffle``) and returns to full size with ``pixel_shuffle``. For
        the same width, a quarter of the FLOPs per pixel and wider, faster convolutions.
        Only ``unet``.
    padding
        How the 'same' convolutions pad their input: ``"reflect"`` (default; the border pixels
        see mirrored context, so no frame appears along image edges) or ``"zeros"`` (model files
        without the field, which :meth:`from_dict` reads as zeros).
    dims
        ``2`` (images: ``(B, C, H, W)``, the default, and what model files without the field
        hold) or ``3`` (volumes: ``(B, C, Z, Y, X)``, with 3D convolutions, pooling and
        trilinear upsampling, for tomograms). Only ``unet`` has a 3D form.

    Examples
    --------
    >>> NetworkConfig(arch="seed4").depth
    4
    >>> NetworkConfig.from_dict(NetworkConfig().to_dict()) == NetworkConfig()
    True
    """

    arch: str = "unet"
    in_channels: int = 1
    out_channels: int = 1
    base_channels: int | None = None
    depth: int | None = None
    kernel_size: int = 3
    blurpool: bool = False
    top_skip: bool = True
    space_to_depth: int = 1
    padding: str = "reflect"
    dims: int = 2

    def __post_init__(self) -> None:
        _check_choice("arch", self.arch, ARCHITECTURES)
        if self.depth is None:
            object.__setattr__(self, "depth", DEFAULT_DEPTH[self.arch])
        if self.base_channels is None:
            object.__setattr__(self, "base_channels", DEFAULT_BASE_CHANNELS[self.arch])
        _check_int("in_channels", self.in_channels, 1, MAX_IMAGE_CHANNELS)
        _check_int("out_channels", self.out_channels, 1, MAX_IMAGE_CHANNELS)
        _check_int("base_channels", self.base_channels, 1, MAX_BASE_CHANNELS)
        if self.arch == "unet":
            _check_int("depth", self.depth, 1, MAX_UNET_DEPTH)
        elif self.depth != DEFAULT_DEPTH[self.arch]:
            raise ParameterError(
                f"network depth of {self.arch} is {DEFAULT_DEPTH[self.arch]}, got {self.depth!r}"
            )
        _check_int("kernel_size", self.kernel_size, 1, MAX_KERNEL_SIZE)
        if self.kernel_size % 2 == 0:
            raise ParameterError(f"network kernel_size must be odd, got {self.kernel_size}")
        _check_bool("blurpool", self.blurpool)
        _check_bool("top_skip", self.top_skip)
        if not self.top_skip and self.arch != "unet":
            raise ParameterError(
                f"network top_skip=False needs arch unet; {self.arch} has no skips"
            )
        if self.space_to_depth not in (1, 2) or isinstance(self.space_to_depth, bool):
            raise ParameterError(
                f"network space_to_depth must be 1 or 2, got {self.space_to_depth!r}"
            )
        if self.space_to_depth != 1 and self.arch != "unet":
            raise ParameterError(f"network space_to_depth needs arch unet, got {self.arch}")
        _check_choice("padding", self.padding, PADDINGS)
        if self.dims not in DIMS or isinstance(self.dims, bool):
            raise ParameterError(f"network dims must be 2 or 3, got {self.dims!r}")
        if self.dims == 3 and self.arch != "unet":
            raise ParameterError(f"network dims=3 needs arch unet, got {self.arch}")
        parameters = estimated_parameters(self)
        if parameters > MAX_PARAMETERS:
            raise ParameterError(
                f"network of {parameters} parameters (base_channels {self.base_channels}, depth "
                f"{self.depth}, kernel_size {self.kernel_size}) exceeds the limit of "
                f"{MAX_PARAMETERS}; use a smaller base_channels, depth or kernel_size"
            )

    @property
    def activation(self) -> str:
        """The architecture's activation, ``"leaky_relu"`` or ``"relu"`` (:data:`ACTIVATION`)."""
        return ACTIVATION[self.arch]

    @property
    def size_multiple(self) -> int:
        """Inputs are padded internally to a multiple of this (``2**depth``, times
        ``space_to_depth``)."""
        assert self.depth is not None  # __post_init__ fills in the defaults
        return 2 ** int(self.depth) * self.space_to_depth

    def to_dict(self) -> dict[str, Any]:
        """The configuration as a JSON-ready dict (defaults resolved)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NetworkConfig:
        """Build and validate a configuration; unknown or invalid fields raise ParameterError.

        Legacy fields (:data:`LEGACY_FIELDS`, ``activation``) are accepted at the value every
        network has and dropped; another value raises ParameterError. A dict without
        ``padding`` was stored before the field existed and describes a zero-padded network
        (:data:`UNRECORDED_PADDING`), not the current default.

        >>> NetworkConfig.from_dict({"arch": "seed4"}).padding
        'zeros'
        """
        if not isinstance(data, dict):
            raise ParameterError(f"network config must be a JSON object, got {type(data).__name__}")
        data = _drop_legacy_fields(data)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ParameterError(
                f"unknown network config field(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
        return cls(**{"padding": UNRECORDED_PADDING, **data})

    def replace(self, **changes: Any) -> NetworkConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)
