"""Polyphase split and merge: the four 2×2 sub-images of an image at half size, and back.

Neighbor2Neighbor (Huang et al. 2021) trains on half-size images sub-sampled from the noisy ones,
so its network learns features at half the image's scale. Showing it the four polyphase
sub-images (pixels ``(2i + dy, 2j + dx)`` for ``dy, dx`` in ``{0, 1}``) gives it images at the
scale it learned.

Interleaving the four denoised sub-images back is exact but leaves a 2-pixel grid: each
sub-image keeps its own smooth residual error, and the differences between them sit at the
Nyquist frequency of the full image. The four sub-images are four estimates of one image,
each sampled on its own shifted half-size grid, so the natural merge is their average after
band-limited interpolation to the full grid. That average equals the interleaved image convolved
with a half-band low-pass (gain 1 at zero frequency, 0 at the Nyquist frequency, cutoff at half
the Nyquist frequency, where the sub-images' own Nyquist lies): :func:`merge_polyphase` applies
it as a separable windowed-sinc filter (:func:`halfband_taps`), so the grid is removed exactly
and the signal the sub-images carry is kept.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from cryoden.errors import ParameterError

#: Radius (taps on each side) of the default half-band interpolation filter, pixels.
HALFBAND_RADIUS = 7


def halfband_taps(radius: int = HALFBAND_RADIUS) -> np.ndarray:
    """Taps of a symmetric half-band low-pass filter of ``2 radius + 1`` taps (float64).

    A Blackman-windowed sinc with its cutoff at half the Nyquist frequency: the even taps
    other than the centre are zero, the centre is 1/2, the taps sum to 1 (gain 1 at zero
    frequency) and the alternating sum is 0 (gain 0 at the Nyquist frequency).

    Examples
    --------
    >>> taps = halfband_taps(3)
    >>> round(float(taps.sum()), 12), round(float(taps[3]), 12)
    (1.0, 0.5)
    """
    if radius < 1:
        raise ValueError(f"radius must be >= 1, got {radius}")
    n = np.arange(-radius, radius + 1, dtype=np.float64)
    phase = np.pi * n / (radius + 1)
    window = 0.42 + 0.5 * np.cos(phase) + 0.08 * np.cos(2 * phase)
    taps = 0.5 * np.sinc(n / 2.0) * window
    odd = n.astype(int) % 2 == 1
    taps[odd] *= 0.5 / taps[odd].sum()  # exact: gain 1 at DC, 0 at Nyquist
    return taps


def split_polyphase(images: torch.Tensor) -> torch.Tensor:
    """The four polyphase sub-images of each image ``(B, 1, H, W)`` as ``(4 B, 1, H/2, W/2)``.

    Sub-image ``2 dy + dx`` of image ``b`` is at index ``4 b + 2 dy + dx``. Odd sides are
    padded by replicating the last row or column first.
    """
    h, w = images.shape[-2:]
    if h % 2 or w % 2:
        images = F.pad(images, (0, w % 2, 0, h % 2), mode="replicate")
    b = images.shape[0]
    quarters = F.pixel_unshuffle(images, 2)  # (B, 4, H/2, W/2)
    return quarters.reshape(b * 4, 1, *quarters.shape[-2:])


def cell_mean_polyphase(quarters: torch.Tensor) -> torch.Tensor:
    """For each sub-image of :func:`split_polyphase`, the mean of its cell's three other ones.

    ``(4 B, 1, h, w)`` -> ``(4 B, 1, h, w)``: entry ``4 b + k`` is the mean of sub-images
    ``4 b + j``, ``j != k``, i.e. at each 2×2 cell the mean of the three pixels other than the
    one at position ``k`` (the first cell of ``x`` below holds 0, 1, 4 and 5). Its noise is
    independent of position ``k``'s, with a third of the variance of one pixel's (white noise).
    Neighbor2Neighbor models trained with the cell-mean input
    (:class:`cryoden.training.neighbor2neighbor.Neighbor2Neighbor`) predict position ``k``'s
    sub-image from it.

    Examples
    --------
    >>> x = torch.arange(16.0).reshape(1, 1, 4, 4)
    >>> [round(v, 3) for v in cell_mean_polyphase(split_polyphase(x))[:, 0, 0, 0].tolist()]
    [3.333, 3.0, 2.0, 1.667]
    """
    b4 = quarters.shape[0]
    if b4 % 4:
        raise ValueError(f"expected a multiple of 4 sub-images, got {b4}")
    cells = quarters.reshape(b4 // 4, 4, *quarters.shape[1:])
    return ((cells.sum(dim=1, keepdim=True) - cells) / 3.0).reshape(quarters.shape)


def merge_polyphase(
    quarters: torch.Tensor, shape: tuple[int, int], *, smooth: bool = True
) -> torch.Tensor:
    """Merge sub-images from :func:`split_polyphase` back into images ``(B, 1, H, W)``.

    Parameters
    ----------
    quarters
        ``(4 B, 1, H/2, W/2)`` (rounded up for odd sides).
    shape
        The original ``(H, W)``.
    smooth
        Average the four sub-images after band-limited interpolation (interleave, then the
        separable half-band low-pass of :func:`halfband_taps`, edges reflected); ``False``
        only interleaves them (exact, but keeps the differences between them as a 2-pixel grid).
    """
    b = quarters.shape[0] // 4
    full = F.pixel_shuffle(quarters.reshape(b, 4, *quarters.shape[-2:]), 2)
    if smooth:
        full = halfband_filter(full)
    return full[..., : shape[0], : shape[1]]


def halfband_filter(images: torch.Tensor, radius: int = HALFBAND_RADIUS) -> torch.Tensor:
    """Separable half-band low-pass of images ``(B, 1, H, W)``, edges reflected."""
    taps = torch.from_numpy(halfband_taps(radius)).to(images.device, images.dtype)
    k = taps.numel()
    h, w = images.shape[-2:]
    # reflection needs the pad to be shorter than the side; replicate covers tiny images
    mode = "reflect" if min(h, w) > radius else "replicate"
    x = F.pad(images, (radius, radius, radius, radius), mode=mode)
    x = F.conv2d(x, taps.reshape(1, 1, 1, k))
    return F.conv2d(x, taps.reshape(1, 1, k, 1))


def polyphase_radius(network_radius: int, radius: int = HALFBAND_RADIUS) -> int:
    """Effective radius (full-size pixels) of polyphase inference with a network of
    ``network_radius`` half-size pixels: twice the network's, plus the merge filter's."""
    return int(2 * network_radius + 1 + radius)


__all__ = [
    "HALFBAND_RADIUS",
    "cell_mean_polyphase",
    "halfband_filter",
    "halfband_taps",
    "merge_polyphase",
    "polyphase_radius",
    "split_polyphase",
]


#: What a Neighbor2Neighbor network is shown of a 2 x 2 cell: the mean of the cell's three
#: pixels other than the target's (cryoden's default) or one neighbour (the paper's).
INPUT_IMAGES: tuple[str, ...] = ("cell-mean", "neighbour")


def polyphase_inputs(quarters: torch.Tensor, input_image: str) -> torch.Tensor:
    """The network's inputs for the four sub-images of :func:`split_polyphase`, as a
    Neighbor2Neighbor network was trained: the sub-images themselves (``"neighbour"``) or their
    cell means (``"cell-mean"``, :func:`cell_mean_polyphase`). Used by the training scheme's
    regulariser and by the Denoiser's polyphase inference."""
    if input_image not in INPUT_IMAGES:
        raise ParameterError(
            f"input_image must be one of {', '.join(INPUT_IMAGES)}, got {input_image!r}"
        )
    if input_image == "neighbour":
        return quarters
    return cell_mean_polyphase(quarters)
