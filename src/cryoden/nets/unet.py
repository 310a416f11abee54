"""U-Net with skip connections (Ronneberger et al. 2015), cryoden's default network.

Options from N2V2 (Höck et al. 2022): max-blur-pool downsampling (``blurpool``) and no
top-level skip connection (``top_skip=False``), which together suppress checkerboard artefacts
of blind-spot training.

With ``dims=3`` the same network works on volumes ``(B, C, Z, Y, X)`` (tomograms): 3D
convolutions, 2×2×2 pooling, trilinear upsampling, and 2×2×2 blocks for ``space_to_depth``.
"""

from __future__ import annotations

import torch
from torch import nn

from cryoden.nets.blocks import (
    CONVOLUTIONS,
    ConvBlock,
    Upsample,
    depth_to_space,
    downsample,
    pad_spatial,
    space_to_depth,
)
from cryoden.nets.config import NetworkConfig


class UNet(nn.Module):
    """U-Net mapping ``(B, in_channels, H, W)`` to ``(B, out_channels, H, W)`` for any ``H, W``
    (volumes ``(B, C, Z, Y, X)`` of any size with ``dims=3``).

    Level ``l`` (``0 <= l < depth``) has two ``k×k`` convolutions with ``base * 2**l``
    channels; the bottleneck has ``base * 2**depth``. The decoder upsamples, concatenates the
    skip connection (except at the top when ``top_skip`` is false) and applies two convolutions.
    A final 1×1 convolution gives the output channels. Inputs are reflect-padded to a multiple
    of ``2**depth`` and the output is cropped back.

    Parameters
    ----------
    config
        A :class:`~cryoden.nets.config.NetworkConfig` with ``arch="unet"``.
    """

    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        if config.arch != "unet":
            raise ValueError(f"UNet needs arch 'unet', got {config.arch!r}")
        self.config = config
        assert config.depth is not None  # NetworkConfig.__post_init__ fills in the default
        depth = int(config.depth)
        k, act, base = config.kernel_size, str(config.activation), config.base_channels
        dims, pad = config.dims, config.padding
        widths = [base * 2**level for level in range(depth + 1)]
        self.encoders = nn.ModuleList()
        self.downs = nn.ModuleList()
        s2d = config.space_to_depth
        in_ch = config.in_channels * s2d**dims
        for level in range(depth):
            self.encoders.append(ConvBlock(in_ch, widths[level], k, act, pad, dims=dims))
            self.downs.append(downsample(widths[level], config.blurpool, dims))
            in_ch = widths[level]
        self.bottleneck = ConvBlock(widths[depth - 1], widths[depth], k, act, pad, dims=dims)
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for level in reversed(range(depth)):
            self.ups.append(Upsample(widths[level + 1], widths[level], dims))
            skip = level > 0 or config.top_skip
            dec_in = widths[level] * (2 if skip else 1)
            self.decoders.append(ConvBlock(dec_in, widths[level], k, act, pad, dims=dims))
        self.head = CONVOLUTIONS[dims](widths[0], config.out_channels * s2d**dims, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Denoise a batch ``(B, C, H, W)`` (``(B, C, Z, Y, X)`` for ``dims=3``)."""
        dims = self.config.dims
        if x.ndim != dims + 2:
            raise ValueError(
                f"a {dims}D network needs input of {dims + 2} axes, got shape {tuple(x.shape)}"
            )
        x, sizes = pad_spatial(x, self.config.size_multiple, dims)
        s2d = self.config.space_to_depth
        if s2d > 1:
            x = space_to_depth(x, s2d, dims)
        skips = []
        for enc, down in zip(self.encoders, self.downs):
            x = enc(x)
            skips.append(x)
            x = down(x)
        x = self.bottleneck(x)
        depth = len(skips)
        for i, (up, dec) in enumerate(zip(self.ups, self.decoders)):
            level = depth - 1 - i
            x = up(x)
            if level > 0 or self.config.top_skip:
                x = torch.cat([x, skips[level]], dim=1)
            x = dec(x)
        out = self.head(x)
        if s2d > 1:
            out = depth_to_space(out, s2d, dims)
        if dims == 2:
            return out[..., : sizes[0], : sizes[1]]
        return out[..., : sizes[0], : sizes[1], : sizes[2]]
