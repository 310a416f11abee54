"""The seed study's encoder-decoder without skip connections (``seed5``, ``seed4``).

The encoder has ``depth`` blocks Conv2d(k×k) → ReLU → MaxPool2d(2); the decoder has ``depth``
steps of bilinear 2× upsampling → Conv2d(k×k) → ReLU, and a final 1×1 convolution returns to
one channel. There are no skip connections: that is the study's design, kept to reproduce it.

Without skips, the signal of a freshly built network passes through every layer; PyTorch's
default initialisation shrinks its variance about six-fold per Conv2d + ReLU, so the output of
a 10-layer ``seed5`` starts near a constant and training can stall on "predict the mean". The
convolutions are therefore He-initialised (He et al. 2015, "Delving deep into rectifiers":
normal weights of variance ``2 / fan_in``, zero biases), which keeps the variance through ReLUs.
"""

from __future__ import annotations

import torch
from torch import nn

from cryoden.nets.blocks import activation, conv, downsample, pad_to_multiple
from cryoden.nets.config import NetworkConfig


class EncoderDecoder(nn.Module):
    """The study's encoder-decoder, ``(B, C, H, W) -> (B, C_out, H, W)`` for any ``H, W``.

    Encoder block ``i`` has ``base * 2**min(i, 3)`` channels (so ``seed5`` with base 32 goes
    32, 64, 128, 256, 256); the decoder mirrors the widths back down. Inputs are reflect-padded
    to a multiple of ``2**depth`` and the output is cropped back.

    Parameters
    ----------
    config
        A :class:`~cryoden.nets.config.NetworkConfig` with ``arch`` ``"seed5"`` or ``"seed4"``.
    """

    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        if config.arch not in ("seed5", "seed4"):
            raise ValueError(f"EncoderDecoder needs arch seed5 or seed4, got {config.arch!r}")
        self.config = config
        assert config.depth is not None  # NetworkConfig.__post_init__ fills in the default
        depth = int(config.depth)
        k, act, base = config.kernel_size, str(config.activation), config.base_channels
        widths = [base * 2 ** min(i, 3) for i in range(depth)]
        layers: list[nn.Module] = []
        in_ch = config.in_channels
        for width in widths:
            layers += [
                conv(in_ch, width, k, config.padding),
                activation(act),
                downsample(width, config.blurpool),
            ]
            in_ch = width
        self.encoder = nn.Sequential(*layers)
        layers = []
        for i in reversed(range(depth)):
            out_ch = widths[i - 1] if i > 0 else widths[0]
            layers += [
                nn.Upsample(scale_factor=2.0, mode="bilinear", align_corners=False),
                conv(in_ch, out_ch, k, config.padding),
                activation(act),
            ]
            in_ch = out_ch
        self.decoder = nn.Sequential(*layers)
        self.head = nn.Conv2d(in_ch, config.out_channels, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He-initialise the convolutions (see the module docstring); the 1×1 head is linear."""
        slope = 0.01 if self.config.activation == "leaky_relu" else 0.0
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                linear = module is self.head
                nn.init.kaiming_normal_(
                    module.weight,
                    a=slope,
                    mode="fan_in",
                    nonlinearity="linear" if linear else "leaky_relu",
                )
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Denoise a batch ``(B, C, H, W)``."""
        x, h, w = pad_to_multiple(x, self.config.size_multiple)
        return self.head(self.decoder(self.encoder(x)))[..., :h, :w]
