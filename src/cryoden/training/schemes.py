"""The training-scheme protocol and the registry of schemes.

A *scheme* says how a batch of patches becomes a loss: Noise2Noise predicts one noisy image of a
pair from the other; Noise2Void masks pixels and predicts them from their neighbours; CARE
(supervised) predicts a clean image from its noisy version. The
generic loop (:func:`cryoden.training.loop.train`) only calls the protocol below.

Protocol
--------
``name: str``
    Registry name (``"n2n"``), stored in model files.
``channels: int``
    Channels of the patches the scheme needs: 2 for pairs ``(a, b)``, 1 for single images.
``loss(network, batch, *, generator) -> torch.Tensor``
    Scalar training loss of ``batch`` ``(B, channels, P, P)`` (on the training device; the
    network is in train mode). Any randomness must come from ``generator``, a CPU
    :class:`torch.Generator` (draw on the CPU, then move to ``batch.device``), so that training
    is reproducible and resumable.
``validation_loss(network, batch) -> torch.Tensor``
    Scalar loss of fixed validation patches, deterministic (no randomness, or a generator seeded
    with a constant). Called in eval mode under ``torch.no_grad()``.

``output_calibration(network, patches) -> (scale, offset) | None`` (optional)
    Called by the loop on the best network with the validation patches after training; the
    returned affine map is folded into the network's last layer
    (:func:`cryoden.nets.blocks.scale_output`). Neighbor2Neighbor uses it to remove the excess
    strength of its outputs.

``apply_model(network, images) -> torch.Tensor`` (optional)
    The model's output for noisy images ``(B, 1, H, W)`` as inference computes it, used by the
    degenerate-solution guard (:mod:`cryoden.training.guard`); without it, the network on the
    raw images. Neighbor2Neighbor applies the network to the polyphase sub-images.

``pair_fit_on: str`` (optional, pair schemes)
    What each pair's normalisation must be fitted on (``"both"`` or ``"a"``, see
    :class:`~cryoden.training.data.PairDataset`); the loop refuses a dataset fitted otherwise.
    CARE needs ``"a"``: its target is clean.

``scheme_options() -> dict`` (optional)
    Settings that decide how the trained model is applied, recorded in the model file
    (:attr:`cryoden.models.ModelConfig.scheme_options`) and in the checkpoint's
    identity. Neighbor2Neighbor records its ``input_image``.

Scheme classes are built as ``cls(loss="l2")`` (keyword ``loss``: ``"l2"`` or ``"l1"``) by
:func:`make_scheme`.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from cryoden.errors import ParameterError
from cryoden.training.care import CARE
from cryoden.training.neighbor2neighbor import Neighbor2Neighbor
from cryoden.training.noise2noise import Noise2Noise
from cryoden.training.noise2void import N2V2, Noise2Void


@runtime_checkable
class Scheme(Protocol):
    """What the training loop needs from a training scheme (see the module docstring)."""

    name: str
    channels: int

    def loss(
        self, network: nn.Module, batch: torch.Tensor, *, generator: torch.Generator
    ) -> torch.Tensor: ...

    def validation_loss(self, network: nn.Module, batch: torch.Tensor) -> torch.Tensor: ...


#: Scheme classes by registry name, the name model files and checkpoints record. N2V2 is its own
#: scheme (``"n2v2"``: Noise2Void with N2V2's replacement and network).
SCHEMES: dict[str, type] = {
    Noise2Noise.name: Noise2Noise,
    Noise2Void.name: Noise2Void,
    N2V2.name: N2V2,
    Neighbor2Neighbor.name: Neighbor2Neighbor,
    CARE.name: CARE,
}


def make_scheme(name: str, **options: Any) -> Scheme:
    """Instantiate the scheme registered as ``name`` with keyword ``options`` (e.g. ``loss``).

    Raises
    ------
    ParameterError
        For an unknown scheme name.
    """
    try:
        cls = SCHEMES[name]
    except KeyError:
        raise ParameterError(
            f"unknown training scheme {name!r}; known: {', '.join(SCHEMES)}"
        ) from None
    return cls(**options)
