"""Building blocks shared by the networks: convolutions, downsampling, upsampling, padding."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def activation(name: str) -> nn.Module:
    """``"relu"`` or ``"leaky_relu"`` (negative slope 0.01)."""
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "leaky_relu":
        return nn.LeakyReLU(0.01, inplace=True)
    raise ValueError(f"unknown activation {name!r}")


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
            mode = "reflect" if min(int(x.shape[-2]), int(x.shape[-1])) > self.pad else "replicate"
            x = F.pad(x, (self.pad, self.pad, self.pad, self.pad), mode=mode)
        return super().forward(x)


def conv(in_channels: int, out_channels: int, kernel_size: int, padding: str) -> nn.Conv2d:
    """A 'same' convolution: ``padding`` ``"reflect"`` (:class:`ReflectConv2d`) or ``"zeros"``
    (``nn.Conv2d`` with zero padding ``kernel_size // 2``)."""
    if padding == "reflect":
        return ReflectConv2d(in_channels, out_channels, kernel_size)
    if padding == "zeros":
        return nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
    raise ValueError(f"unknown padding {padding!r}")


class ConvBlock(nn.Sequential):
    """``n`` times (convolution with ``padding``, activation)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        act: str,
        padding: str,
        n: int = 2,
    ) -> None:
        layers: list[nn.Module] = []
        for i in range(n):
            in_ch = in_channels if i == 0 else out_channels
            layers += [conv(in_ch, out_channels, kernel_size, padding), activation(act)]
        super().__init__(*layers)


class BlurPool(nn.Module):
    """Max-blur-pool (Zhang 2019, used by N2V2): max pool of stride 1, then a stride-2 blur.

    The 2×2 max pool of stride 1 is taken on the input padded by one pixel (replicate) on the
    bottom and right, so the size is kept; the [1 2 1]⊗[1 2 1]/16 blur (reflect padding) then
    halves it. An even-sized input ``(H, W)`` gives ``(H/2, W/2)``, like ``MaxPool2d(2)``.
    """

    kernel: torch.Tensor  # a registered buffer: moves with .to() and is saved with the weights

    def __init__(self, channels: int) -> None:
        super().__init__()
        k = torch.tensor([1.0, 2.0, 1.0])
        kernel = (k[:, None] * k[None, :]) / 16.0
        self.channels = channels
        self.register_buffer("kernel", kernel.expand(channels, 1, 3, 3).contiguous())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.pad(x, (0, 1, 0, 1), mode="replicate"), kernel_size=2, stride=1)
        x = F.pad(x, (1, 1, 1, 1), mode="reflect" if min(x.shape[-2:]) > 1 else "replicate")
        return F.conv2d(x, self.kernel.to(x.dtype), stride=2, groups=self.channels)


def downsample(channels: int, blurpool: bool) -> nn.Module:
    """``MaxPool2d(2)`` or :class:`BlurPool`."""
    return BlurPool(channels) if blurpool else nn.MaxPool2d(2)


class Upsample(nn.Module):
    """2× upsampling: a 1×1 convolution (``in_channels`` to ``out_channels``), then bilinear."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The 1×1 convolution mixes channels pixel by pixel and bilinear weights sum to 1, so
        # both orders give the same result; projecting first moves half the channels through
        # the interpolation and costs a quarter of the 1×1 FLOPs.
        return F.interpolate(self.proj(x), scale_factor=2.0, mode="bilinear", align_corners=False)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, int, int]:
    """Pad ``(B, C, H, W)`` on the bottom and right to a multiple of ``multiple``.

    Reflect padding is used (repeated when the pad is larger than the image, replicate for a
    one-pixel axis). Returns the padded tensor and the original ``H, W`` to crop back to.
    """
    h, w = int(x.shape[-2]), int(x.shape[-1])
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    while pad_h > 0 or pad_w > 0:
        cur_h, cur_w = int(x.shape[-2]), int(x.shape[-1])
        step_h = min(pad_h, cur_h - 1) if cur_h > 1 else 0
        step_w = min(pad_w, cur_w - 1) if cur_w > 1 else 0
        if step_h == 0 and step_w == 0:  # one-pixel axes: replicate the rest
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
            break
        x = F.pad(x, (0, step_w, 0, step_h), mode="reflect")
        pad_h, pad_w = pad_h - step_h, pad_w - step_w
    return x, h, w


def scale_output(network: nn.Module, scale: float, offset: float) -> None:
    """Fold ``y -> scale * y + offset`` into the network's last layer, in place.

    The network's output must be its convolution ``network.head``'s (cropped or
    pixel-shuffled, as in cryoden's U-Net and encoder-decoders). With space-to-depth the head's
    channels are the 2×2 sub-pixels, each mapped alike.

    Raises
    ------
    ValueError
        If the network has no convolutional ``head``.
    """
    head = getattr(network, "head", None)
    if not isinstance(head, nn.Conv2d):
        raise ValueError("scale_output needs a network ending in a Conv2d head")
    with torch.no_grad():
        head.weight.mul_(scale)
        if head.bias is None:
            head.bias = nn.Parameter(torch.zeros(head.out_channels, device=head.weight.device))
        head.bias.mul_(scale).add_(offset)
