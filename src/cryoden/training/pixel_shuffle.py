"""Pixel-shuffle down-sampling for blind-spot training on correlated noise (the ``pd:S`` blind
spot of :mod:`cryoden.training.blind_spot`): split ``(B, C, H, W)`` images into their
``S x S`` polyphase sub-images, in which adjacent pixels are ``S`` pixels apart in the image,
and merge them back.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cryoden.errors import ParameterError


def pd_split(images: torch.Tensor, stride: int) -> torch.Tensor:
    """The ``stride x stride`` polyphase sub-images of ``(B, C, H, W)`` images as
    ``(B stride², C, H / stride, W / stride)``.

    Sub-image ``stride * dy + dx`` of image ``b`` (pixels ``(stride i + dy, stride j + dx)``) is
    at index ``b stride² + stride dy + dx``. Sides must be multiples of ``stride``
    (:func:`pd_crop`).
    """
    batch, channels, height, width = images.shape
    if height % stride or width % stride:
        raise ParameterError(
            f"pixel-shuffle needs sides that are multiples of stride {stride}, got "
            f"{height} x {width}"
        )
    s2 = stride * stride
    shuffled = F.pixel_unshuffle(images, stride)  # (B, C s², h, w), channel c s² + k
    h, w = height // stride, width // stride
    return (
        shuffled.reshape(batch, channels, s2, h, w)
        .transpose(1, 2)
        .reshape(batch * s2, channels, h, w)
    )


def pd_merge(sub_images: torch.Tensor, stride: int) -> torch.Tensor:
    """Interleave sub-images from :func:`pd_split` back into ``(B, C, H, W)`` images (exact:
    ``pd_merge(pd_split(x, s), s) == x``)."""
    n, channels, h, w = sub_images.shape
    s2 = stride * stride
    if n % s2:
        raise ParameterError(f"expected a multiple of {s2} sub-images, got {n}")
    stacked = sub_images.reshape(n // s2, s2, channels, h, w).transpose(1, 2)
    return F.pixel_shuffle(stacked.reshape(n // s2, channels * s2, h, w), stride)


def pd_crop(images: torch.Tensor, stride: int) -> torch.Tensor:
    """``images`` cropped at the bottom and right to sides that are multiples of ``stride``."""
    height, width = images.shape[-2:]
    return images[..., : height - height % stride, : width - width % stride]


__all__ = ["pd_crop", "pd_merge", "pd_split"]
