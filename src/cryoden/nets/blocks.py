"""Building blocks shared by the networks: convolutions, downsampling, upsampling, padding.

Every block works on images ``(B, C, H, W)`` (``dims=2``, the default) or on volumes
``(B, C, Z, Y, X)`` (``dims=3``: ``Conv3d``, 3D pooling, trilinear upsampling and reflection
padding on all three axes), so one U-Net definition serves micrographs and tomograms.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: Convolution classes by number of spatial dimensions.
CONVOLUTIONS: dict[int, type[nn.Conv2d] | type[nn.Conv3d]] = {2: nn.Conv2d, 3: nn.Conv3d}
#: Interpolation mode of 2× upsampling by number of spatial dimensions.
INTERPOLATION: dict[int, str] = {2: "bilinear", 3: "trilinear"}


def activation(name: str) -> nn.Module:
    """``"relu"`` or ``"leaky_relu"`` (negative slope 0.01)."""
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "leaky_relu":
        return nn.LeakyReLU(0.01, inplace=True)
    raise ValueError(f"unknown activation {name!r}")


def _check_dims(dims: int) -> int:
    if dims not in CONVOLUTIONS:
        raise ValueError(f"dims must be 2 or 3, got {dims!r}")
    return dims


def _reflect_pad(x: torch.Tensor, pad: int, dims: int) -> torch.Tensor:
    """Pad the last ``dims`` axes of ``x`` by ``pad`` on both sides: reflection, or edge
    replication for a map too small to reflect (a side of at most ``pad``)."""
    small = min(int(s) for s in x.shape[-dims:]) <= pad
    return F.pad(x, (pad, pad) * dims, mode="replicate" if small else "reflect")


class ReflectConv2d(nn.Conv2d):
    """A 'same' convolution whose input is padded by reflection (``kernel_size // 2`` pixels).

    Reflection continues the image (or feature map) across its border, so the outermost pixels
    see context like the interior's instead of zeros, which a network otherwise learns to
    answer with a frame along the border. A map too small to reflect (a side of at most the
    pad, as at the bottleneck of a deep network on a small input) is padded by replicating its
    edge. The weights are an ``nn.Conv2d``'s (same names and shapes), so ``isinstance`` checks
    and state dicts treat it as one.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__(in_channels, out_channels, kernel_size, padding=0)
        self.pad = kernel_size // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad:
            x = _reflect_pad(x, self.pad, 2)
        return super().forward(x)


class ReflectConv3d(nn.Conv3d):
    """The 3D form of :class:`ReflectConv2d`: a 'same' ``Conv3d`` on a volume padded by
    reflection (edge replication when a side is at most the pad) on all three axes."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__(in_channels, out_channels, kernel_size, padding=0)
        self.pad = kernel_size // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad:
            x = _reflect_pad(x, self.pad, 3)
        return super().forward(x)


def conv(
    in_channels: int, out_channels: int, kernel_size: int, padding: str, dims: int = 2
) -> nn.Conv2d | nn.Conv3d:
    """A 'same' convolution: ``padding`` ``"reflect"`` (:class:`ReflectConv2d`,
    :class:`ReflectConv3d`) or ``"zeros"`` (``nn.Conv2d``/``nn.Conv3d`` with zero padding
    ``kernel_size // 2``); ``dims`` 2 for images, 3 for volumes."""
    dims = _check_dims(dims)
    if padding == "reflect":
        cls = ReflectConv2d if dims == 2 else ReflectConv3d
        return cls(in_channels, out_channels, kernel_size)
    if padding == "zeros":
        return CONVOLUTIONS[dims](in_channels, out_channels, kernel_size, padding=kernel_size // 2)
    raise ValueError(f"unknown padding {padding!r}")


class ConvBlock(nn.Sequential):
    """``n`` times (convolution with ``padding``, activation), in ``dims`` dimensions."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        act: str,
        padding: str,
        n: int = 2,
        dims: int = 2,
    ) -> None:
        layers: list[nn.Module] = []
        for i in range(n):
            in_ch = in_channels if i == 0 else out_channels
            layers += [conv(in_ch, out_channels, kernel_size, padding, dims), activation(act)]
        super().__init__(*layers)


class BlurPool(nn.Module):
    """Max-blur-pool (Zhang 2019, used by N2V2): max pool of stride 1, then a stride-2 blur.

    The 2×2 max pool of stride 1 is taken on the input padded by one pixel (replicate) on the
    bottom and right, so the size is kept; the [1 2 1]⊗[1 2 1]/16 blur (reflect padding) then
    halves it. An even-sized input ``(H, W)`` gives ``(H/2, W/2)``, like ``MaxPool2d(2)``.
    With ``dims=3`` the same on volumes: a 2×2×2 max of stride 1 and the [1 2 1]³/64 blur.
    """

    kernel: torch.Tensor  # a registered buffer: moves with .to() and is saved with the weights

    def __init__(self, channels: int, dims: int = 2) -> None:
        super().__init__()
        self.dims = _check_dims(dims)
        k = torch.tensor([1.0, 2.0, 1.0])
        kernel = k[:, None] * k[None, :]
        if dims == 3:
            kernel = kernel[:, :, None] * k[None, None, :]
        kernel = kernel / kernel.sum()
        self.channels = channels
        self.register_buffer("kernel", kernel.expand(channels, 1, *kernel.shape).contiguous())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dims == 2:
            x = F.max_pool2d(F.pad(x, (0, 1, 0, 1), mode="replicate"), kernel_size=2, stride=1)
            x = _reflect_pad(x, 1, 2)
            return F.conv2d(x, self.kernel.to(x.dtype), stride=2, groups=self.channels)
        x = F.max_pool3d(F.pad(x, (0, 1) * 3, mode="replicate"), kernel_size=2, stride=1)
        x = _reflect_pad(x, 1, 3)
        return F.conv3d(x, self.kernel.to(x.dtype), stride=2, groups=self.channels)


def downsample(channels: int, blurpool: bool, dims: int = 2) -> nn.Module:
    """``MaxPool2d(2)`` (``MaxPool3d(2)`` for volumes) or :class:`BlurPool`."""
    if blurpool:
        return BlurPool(channels, dims)
    return nn.MaxPool2d(2) if _check_dims(dims) == 2 else nn.MaxPool3d(2)


class Upsample(nn.Module):
    """2× upsampling: a 1×1 convolution (``in_channels`` to ``out_channels``), then bilinear
    (trilinear for volumes, ``dims=3``)."""

    def __init__(self, in_channels: int, out_channels: int, dims: int = 2) -> None:
        super().__init__()
        self.proj = CONVOLUTIONS[_check_dims(dims)](in_channels, out_channels, 1)
        self.mode = INTERPOLATION[dims]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The 1×1 convolution mixes channels pixel by pixel and bilinear weights sum to 1, so
        # both orders give the same result; projecting first moves half the channels through
        # the interpolation and costs a quarter of the 1×1 FLOPs.
        return F.interpolate(self.proj(x), scale_factor=2.0, mode=self.mode, align_corners=False)


def pad_spatial(x: torch.Tensor, multiple: int, dims: int) -> tuple[torch.Tensor, tuple[int, ...]]:
    """Pad the last ``dims`` axes of ``x`` at their far end to a multiple of ``multiple``.

    Reflect padding is used (repeated when the pad is larger than the axis, replicate for a
    one-pixel axis). Returns the padded tensor and the original sizes to crop back to.
    """
    sizes = tuple(int(s) for s in x.shape[-dims:])
    for axis in range(dims):  # one axis at a time: each may need several reflections
        pad = (-sizes[axis]) % multiple
        while pad > 0:
            length = int(x.shape[x.ndim - dims + axis])
            step = min(pad, length - 1) if length > 1 else pad
            widths = [0] * (2 * dims)
            widths[2 * (dims - 1 - axis) + 1] = step  # F.pad lists the last axis first
            x = F.pad(x, tuple(widths), mode="reflect" if length > 1 else "replicate")
            pad -= step
    return x, sizes


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, int, int]:
    """Pad ``(B, C, H, W)`` on the bottom and right to a multiple of ``multiple``.

    Reflect padding is used (repeated when the pad is larger than the image, replicate for a
    one-pixel axis). Returns the padded tensor and the original ``H, W`` to crop back to.
    """
    x, (h, w) = pad_spatial(x, multiple, 2)
    return x, h, w


def space_to_depth(x: torch.Tensor, factor: int, dims: int) -> torch.Tensor:
    """Blocks of ``factor`` pixels per axis as channels: ``pixel_unshuffle`` for images, its 3D
    form for volumes (``(B, C, Z, Y, X)`` to ``(B, C factor³, Z/f, Y/f, X/f)``, the channel
    index running over ``(c, dz, dy, dx)`` as ``pixel_unshuffle`` runs over ``(c, dy, dx)``)."""
    if dims == 2:
        return F.pixel_unshuffle(x, factor)
    b, c, z, y, w = (int(s) for s in x.shape)
    f = factor
    x = x.reshape(b, c, z // f, f, y // f, f, w // f, f).permute(0, 1, 3, 5, 7, 2, 4, 6)
    return x.reshape(b, c * f**3, z // f, y // f, w // f)


def depth_to_space(x: torch.Tensor, factor: int, dims: int) -> torch.Tensor:
    """The inverse of :func:`space_to_depth` (``pixel_shuffle`` for images)."""
    if dims == 2:
        return F.pixel_shuffle(x, factor)
    b, c, z, y, w = (int(s) for s in x.shape)
    f = factor
    x = x.reshape(b, c // f**3, f, f, f, z, y, w).permute(0, 1, 5, 2, 6, 3, 7, 4)
    return x.reshape(b, c // f**3, z * f, y * f, w * f)


def scale_output(network: nn.Module, scale: float, offset: float) -> None:
    """Fold ``y -> scale * y + offset`` into the network's last layer, in place.

    The network's output must be its convolution ``network.head``'s (cropped or
    pixel-shuffled, as in cryoden's U-Net and encoder-decoders). With space-to-depth the head's
    channels are the 2×2 (2×2×2) sub-pixels, each mapped alike.

    Raises
    ------
    ValueError
        If the network has no convolutional ``head``.
    """
    head = getattr(network, "head", None)
    if not isinstance(head, (nn.Conv2d, nn.Conv3d)):
        raise ValueError("scale_output needs a network ending in a Conv2d or Conv3d head")
    with torch.no_grad():
        head.weight.mul_(scale)
        if head.bias is None:
            head.bias = nn.Parameter(torch.zeros(head.out_channels, device=head.weight.device))
        head.bias.mul_(scale).add_(offset)
