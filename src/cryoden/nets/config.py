"""Validated network configuration: which architecture, how wide, how deep.

A :class:`NetworkConfig` is all a model file needs to rebuild its network (with
:func:`cryoden.nets.registry.build_network`); it is stored as JSON, so it holds primitives only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from cryoden.errors import ParameterError

#: Architectures known to :func:`cryoden.nets.registry.build_network`.
ARCHITECTURES: tuple[str, ...] = ("unet", "seed5", "seed4")
ACTIVATIONS: tuple[str, ...] = ("leaky_relu", "relu")
UPSAMPLINGS: tuple[str, ...] = ("bilinear", "transposed")

#: Depth of each architecture when ``depth`` is not given (the seed nets' depth is fixed).
DEFAULT_DEPTH: dict[str, int] = {"unet": 4, "seed5": 5, "seed4": 4}
#: Width of each architecture when ``base_channels`` is not given. For the plain U-Net, chosen on
#: measured quality per FLOP (``benchmarks/bench_quality.py``, 3 minutes of CPU training, held-out
#: structure, seed 0): base 8 / depth 4 (22 kFLOP/px) scored 28.77 dB, base 16 / depth 3
#: (70 kFLOP/px) 28.75 dB and base 16 / depth 4 (92 kFLOP/px) 28.70 dB. The training schemes pick
#: their own default on top of this (:mod:`cryoden.training.defaults`: Noise2Noise trains the
#: space-to-depth U-Net of base 16).
DEFAULT_BASE_CHANNELS: dict[str, int] = {"unet": 8, "seed5": 32, "seed4": 32}
#: Activation of each architecture when ``activation`` is not given.
DEFAULT_ACTIVATION: dict[str, str] = {"unet": "leaky_relu", "seed5": "relu", "seed4": "relu"}
MAX_UNET_DEPTH = 6


def _check_int(name: str, value: object, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParameterError(f"network {name} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ParameterError(f"network {name} must be {bound}, got {value}")


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ParameterError(f"network {name} must be one of {', '.join(choices)}; got {value!r}")


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
    activation
        ``"leaky_relu"`` or ``"relu"``; ``None`` takes the architecture's default
        (``unet`` leaky_relu, seed nets relu).
    upsampling
        ``"bilinear"`` (followed by a 1×1 convolution in the U-Net) or ``"transposed"``
        (a 2×2 stride-2 transposed convolution; ``unet`` only).
    blurpool
        Downsample with max-blur-pool (max pool of stride 1, then a [1 2 1]² blur of stride 2),
        as in N2V2, instead of a stride-2 max pool.
    top_skip
        Keep the U-Net's top-level skip connection; N2V2 drops it (``False``). Only ``unet``.
    residual
        Add the input to the output (the network predicts a correction). Needs
        ``in_channels == out_channels``.
    space_to_depth
        ``1`` (off) or ``2``: the U-Net works at half size on the four 2×2 polyphase components
        as channels (``pixel_unshuffle``) and returns to full size with ``pixel_shuffle``. For
        the same width, a quarter of the FLOPs per pixel and wider, faster convolutions.
        Only ``unet``.

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
    activation: str | None = None
    upsampling: str = "bilinear"
    blurpool: bool = False
    top_skip: bool = True
    residual: bool = False
    space_to_depth: int = 1

    def __post_init__(self) -> None:
        _check_choice("arch", self.arch, ARCHITECTURES)
        if self.depth is None:
            object.__setattr__(self, "depth", DEFAULT_DEPTH[self.arch])
        if self.base_channels is None:
            object.__setattr__(self, "base_channels", DEFAULT_BASE_CHANNELS[self.arch])
        if self.activation is None:
            object.__setattr__(self, "activation", DEFAULT_ACTIVATION[self.arch])
        _check_int("in_channels", self.in_channels, 1)
        _check_int("out_channels", self.out_channels, 1)
        _check_int("base_channels", self.base_channels, 1, 1024)
        if self.arch == "unet":
            _check_int("depth", self.depth, 1, MAX_UNET_DEPTH)
        elif self.depth != DEFAULT_DEPTH[self.arch]:
            raise ParameterError(
                f"network depth of {self.arch} is {DEFAULT_DEPTH[self.arch]}, got {self.depth!r}"
            )
        _check_int("kernel_size", self.kernel_size, 1, 15)
        if self.kernel_size % 2 == 0:
            raise ParameterError(f"network kernel_size must be odd, got {self.kernel_size}")
        _check_choice("activation", self.activation, ACTIVATIONS)
        _check_choice("upsampling", self.upsampling, UPSAMPLINGS)
        _check_bool("blurpool", self.blurpool)
        _check_bool("top_skip", self.top_skip)
        _check_bool("residual", self.residual)
        if self.upsampling != "bilinear" and self.arch != "unet":
            raise ParameterError(f"network upsampling of {self.arch} is bilinear (the study's)")
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
        if self.residual and self.in_channels != self.out_channels:
            raise ParameterError(
                "network residual=True needs in_channels == out_channels, got "
                f"{self.in_channels} and {self.out_channels}"
            )

    @property
    def size_multiple(self) -> int:
        """Inputs are padded internally to a multiple of this (``2**depth``, times
        ``space_to_depth``)."""
        return 2 ** int(self.depth) * self.space_to_depth  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        """The configuration as a JSON-ready dict (defaults resolved)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NetworkConfig:
        """Build and validate a configuration; unknown or invalid fields raise ParameterError."""
        if not isinstance(data, dict):
            raise ParameterError(f"network config must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ParameterError(
                f"unknown network config field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        return cls(**data)

    def replace(self, **changes: Any) -> NetworkConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)
