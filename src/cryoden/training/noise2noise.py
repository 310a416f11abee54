"""Noise2Noise (Lehtinen et al. 2018): learn to predict one noisy image from another.

With pairs ``(a, b)`` of independent noisy images of the same object, a network trained to map
``a`` to ``b`` under an L2 loss learns the conditional mean of ``b`` given ``a``, which is the
clean image when the noise has zero mean. Each sample's direction (a→b or b→a) is drawn at
random, doubling the data. Random patches, flips and 90° rotations come from
:func:`cryoden.training.data.sample_patches`.
"""

from __future__ import annotations

import torch
from torch import nn

from cryoden.training.losses import check_loss, regression_loss


class Noise2Noise:
    """The Noise2Noise training scheme (``"n2n"``); patches have 2 channels ``(a, b)``.

    Parameters
    ----------
    loss
        ``"l2"`` (the mean; right for zero-mean noise) or ``"l1"`` (the median).
    """

    name = "n2n"
    channels = 2
    #: A pair's normalisation is fitted on both noisy images together.
    pair_fit_on = "both"

    def __init__(self, *, loss: str = "l2") -> None:
        self.loss_kind = check_loss(loss)

    def __repr__(self) -> str:
        return f"Noise2Noise(loss={self.loss_kind!r})"

    def loss(
        self, network: nn.Module, batch: torch.Tensor, *, generator: torch.Generator
    ) -> torch.Tensor:
        """Loss of predicting, per sample, ``b`` from ``a`` or ``a`` from ``b`` (drawn at random).

        Parameters
        ----------
        network
            Maps ``(B, 1, P, P)`` to ``(B, 1, P, P)``.
        batch
            ``(B, 2, P, P)`` patches: channel 0 is ``a``, channel 1 is ``b``.
        generator
            CPU generator drawing the directions.
        """
        # one direction per sample, broadcast over its channel and 2 (images) or 3 (volumes) axes
        shape = (int(batch.shape[0]), *(1,) * (batch.ndim - 1))
        swap = torch.randint(0, 2, shape, generator=generator)
        swap = swap.to(device=batch.device, dtype=torch.bool)
        a, b = batch[:, 0:1], batch[:, 1:2]
        inputs = torch.where(swap, b, a)
        targets = torch.where(swap, a, b)
        return regression_loss(network(inputs), targets, self.loss_kind)

    def validation_loss(self, network: nn.Module, batch: torch.Tensor) -> torch.Tensor:
        """Mean of the a→b and b→a losses (deterministic)."""
        a, b = batch[:, 0:1], batch[:, 1:2]
        forward = regression_loss(network(a), b, self.loss_kind)
        backward = regression_loss(network(b), a, self.loss_kind)
        return 0.5 * (forward + backward)
