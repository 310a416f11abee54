"""Size, cost and receptive field of a network."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from cryoden.nets.config import NetworkConfig
from cryoden.nets.registry import build_network

#: Largest cube side (voxels) :func:`effective_radius` measures a 3D network on by default.
MAX_SIDE_3D = 96


def count_parameters(network: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameters (all, or only those with ``requires_grad``)."""
    return sum(p.numel() for p in network.parameters() if p.requires_grad or not trainable_only)


_COUNTED = (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def _conv_macs(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> int:
    if not isinstance(module, _COUNTED):
        return 0
    taps = math.prod(int(k) for k in module.kernel_size)
    if isinstance(module, (nn.ConvTranspose2d, nn.ConvTranspose3d)):
        return inputs[0].numel() * (module.out_channels // module.groups) * taps
    return output.numel() * (module.in_channels // module.groups) * taps


def flops_per_pixel(model: NetworkConfig | nn.Module, *, size: int | None = None) -> float:
    """Floating-point operations per input pixel (voxel, for a 3D network) of one forward
    pass (convolutions only).

    Multiply-accumulates of every convolution (2D or 3D, transposed or not) are counted with
    forward hooks on a sample input of ``size`` pixels per side (by default ``4 * 2**depth``,
    ``2 * 2**depth`` for a 3D network, so no internal padding), doubled, and divided by the
    number of input pixels. Activations, pooling, interpolation and the fixed blur of
    ``blurpool`` are not counted.

    Parameters
    ----------
    model
        A network configuration or a network (which must have a ``config`` attribute or take
        one input channel).
    size
        Side of the square sample input.
    """
    network = build_network(model) if isinstance(model, NetworkConfig) else model
    config = getattr(network, "config", None)
    in_channels = config.in_channels if isinstance(config, NetworkConfig) else 1
    dims = config.dims if isinstance(config, NetworkConfig) else 2
    if size is None:
        size = (6 - dims) * config.size_multiple if isinstance(config, NetworkConfig) else 64
    total = [0]

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        total[0] += _conv_macs(module, inputs, output)

    handles = [m.register_forward_hook(hook) for m in network.modules() if isinstance(m, _COUNTED)]
    try:
        param = next(network.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        with torch.inference_mode():
            network(torch.zeros(1, in_channels, *(size,) * dims, device=device))
    finally:
        for handle in handles:
            handle.remove()
    return 2.0 * total[0] / size**dims


def _deepest_path(config: NetworkConfig) -> list[tuple[str, int, int]]:
    """The layers ``(kind, kernel, stride)`` on the network's longest input-to-output path."""
    k = config.kernel_size
    assert config.depth is not None  # NetworkConfig.__post_init__ fills in the default
    depth = int(config.depth)
    down = [("pool", 2, 1), ("pool", 3, 2)] if config.blurpool else [("pool", 2, 2)]
    up = [("bilinear", 0, 0)]
    convs = 2 if config.arch == "unet" else 1
    path: list[tuple[str, int, int]] = []
    for _ in range(depth):
        path += [("conv", k, 1)] * convs + down
    if config.arch == "unet":
        path += [("conv", k, 1)] * convs  # bottleneck
    for _ in range(depth):
        path += up + [("conv", k, 1)] * convs
    return path


def receptive_field(config: NetworkConfig) -> int:
    """Receptive field (side, in input pixels) of the network, computed analytically.

    Walking the longest path back from one output pixel, a window of ``r`` pixels becomes
    ``r + k - 1`` through a ``k×k`` convolution, ``(r - 1) s + k`` through a pool of size ``k``
    and stride ``s`` (max-blur-pool is a 2×2 max of stride 1 then a 3×3 blur of stride 2),
    and ``r // 2 + 2`` through bilinear 2× upsampling (worst case over the output's position).
    1×1 convolutions add
    nothing; with ``space_to_depth`` the field in half-size pixels is doubled; padding at the
    image border is ignored. This bounds the field measured from the
    gradient of an output pixel.
    """
    field = 1
    for kind, kernel, stride in reversed(_deepest_path(config)):
        if kind == "conv":
            field += kernel - 1
        elif kind == "pool":
            field = (field - 1) * stride + kernel
        else:  # bilinear 2× upsampling
            field = field // 2 + 2
    # space-to-depth: one half-size pixel is a 2×2 block of input pixels
    return field * config.space_to_depth


def effective_radius(
    network: nn.Module,
    config: NetworkConfig,
    *,
    tolerance: float = 1e-5,
    size: int | None = None,
    seed: int = 0,
) -> int:
    """Radius (pixels) beyond which input pixels barely influence an output pixel.

    The gradient of the centre output pixel with respect to a random-normal input (the scale a
    normalised micrograph has) is measured; the radius is the smallest Chebyshev distance from the
    centre outside which the absolute gradient sums to at most ``tolerance`` of its total. It is
    at most the analytic radius ``receptive_field(config) // 2`` and usually far smaller: deep
    networks' effective fields are narrow (Luo et al. 2016, "Understanding the effective
    receptive field in deep convolutional neural networks"). The tiler uses it as the margin at
    tile edges, so overlaps, and the work they repeat, stay small.

    For a 3D network (``config.dims == 3``) the input is a cube and the distance the 3D
    Chebyshev distance; the cube's side is capped at :data:`MAX_SIDE_3D` voxels by default
    (the gradient of a larger cube costs more memory than it tells), which bounds the
    measured radius at half that.
    """
    analytic = receptive_field(config) // 2
    multiple = config.size_multiple
    dims = config.dims
    side = size or min(2 * analytic + 1, 512 if dims == 2 else MAX_SIDE_3D)
    side = max(multiple, -(-side // multiple) * multiple)
    param = next(network.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    generator = torch.Generator().manual_seed(seed)
    shape = (1, config.in_channels, *(side,) * dims)
    x = torch.randn(*shape, generator=generator).to(device)
    x.requires_grad_(True)
    was_training = network.training
    network.eval()
    try:
        with torch.enable_grad():
            out = network(x)
            centre = (0, 0) + (side // 2,) * dims
            out[centre].backward()
    finally:
        network.train(was_training)
    assert x.grad is not None  # backward() above filled it: x requires grad
    grad = x.grad.detach().abs().sum(dim=(0, 1)).cpu().double().numpy()
    c = side // 2
    offsets = np.abs(np.arange(side) - c)
    distance = offsets
    for _ in range(dims - 1):  # Chebyshev distance from the centre, on the (2D or 3D) grid
        distance = np.maximum(distance[..., None], offsets)
    total = grad.sum()
    if total == 0:
        return 0
    mass_within = np.bincount(distance.ravel(), weights=grad.ravel())
    outside = total - np.cumsum(mass_within)
    radius = int(np.argmax(outside <= tolerance * total))
    return min(radius, analytic)
