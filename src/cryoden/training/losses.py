"""Pixel-wise regression losses shared by the training schemes."""

from __future__ import annotations

import torch

from cryoden.errors import ParameterError

LOSSES: tuple[str, ...] = ("l2", "l1")


def check_loss(kind: str) -> str:
    """Validate a loss name (``"l2"`` or ``"l1"``)."""
    if kind not in LOSSES:
        raise ParameterError(f"loss must be one of {', '.join(LOSSES)}, got {kind!r}")
    return kind


def regression_loss(
    prediction: torch.Tensor,
    target: torch.Tensor,
    kind: str = "l2",
    *,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean squared (``"l2"``) or absolute (``"l1"``) error, over ``mask`` when given.

    Parameters
    ----------
    prediction, target
        Tensors of the same shape.
    kind
        ``"l2"`` or ``"l1"``.
    mask
        Optional weights (0/1 for a pixel mask) broadcastable to ``prediction``; the loss is
        ``sum(mask * err) / sum(mask)``.
    """
    diff = prediction - target
    err = diff * diff if kind == "l2" else diff.abs()
    if kind not in LOSSES:
        raise ParameterError(f"loss must be one of {', '.join(LOSSES)}, got {kind!r}")
    if mask is None:
        return err.mean()
    mask = mask.to(err.dtype).expand_as(err)
    return (err * mask).sum() / mask.sum().clamp_min(1.0)
