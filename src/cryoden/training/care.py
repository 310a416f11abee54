"""CARE (Weigert et al. 2018): supervised denoising from pairs of a noisy and a clean image.

The network learns to map the noisy image ``a`` to its clean counterpart ``b`` under an L2 loss:
the supervised reference that the self-supervised schemes are measured against. CAREamics
calls it CARE.

Intensity scale. At inference an image is normalised with its own parameters and the output is
mapped back with them (:mod:`cryoden.models.normalization`). For the output to come back in the
noisy input's intensity scale, training must see the target in that same scale: a CARE pair is
normalised with parameters fitted on the noisy image alone, applied to both images
(``PairDataset(..., fit_on="a")``; :attr:`CARE.pair_fit_on`). Fitting on both images together, as
Noise2Noise pairs are, gives a narrower scale than the noisy image gets alone at inference, and
the output comes back too strong.
"""

from __future__ import annotations

import torch
from torch import nn

from cryoden.training.losses import check_loss, regression_loss


class CARE:
    """The supervised CARE scheme (``"care"``); patches have 2 channels ``(noisy, clean)``.

    Parameters
    ----------
    loss
        ``"l2"`` (the conditional mean, CARE's) or ``"l1"``.
    """

    name = "care"
    channels = 2
    #: How a pair's normalisation is fitted: on the noisy image ``a`` alone (see the module
    #: docstring); the loop refuses pairs normalised otherwise.
    pair_fit_on = "a"

    def __init__(self, *, loss: str = "l2") -> None:
        self.loss_kind = check_loss(loss)

    def __repr__(self) -> str:
        return f"CARE(loss={self.loss_kind!r})"

    def loss(
        self, network: nn.Module, batch: torch.Tensor, *, generator: torch.Generator
    ) -> torch.Tensor:
        """Loss of predicting the clean channel from the noisy one (``generator`` unused: the
        scheme has no randomness of its own).

        Parameters
        ----------
        network
            Maps ``(B, 1, P, P)`` to ``(B, 1, P, P)``.
        batch
            ``(B, 2, P, P)`` patches: channel 0 noisy, channel 1 clean.
        """
        del generator
        return regression_loss(network(batch[:, 0:1]), batch[:, 1:2], self.loss_kind)

    def validation_loss(self, network: nn.Module, batch: torch.Tensor) -> torch.Tensor:
        """The same loss (deterministic)."""
        return regression_loss(network(batch[:, 0:1]), batch[:, 1:2], self.loss_kind)
