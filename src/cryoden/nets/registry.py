"""Architecture name -> constructor."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from cryoden.errors import ParameterError
from cryoden.nets.config import NetworkConfig
from cryoden.nets.encoder_decoder import EncoderDecoder
from cryoden.nets.unet import UNet

#: Constructors by architecture name; each takes a :class:`NetworkConfig`.
NETWORKS: dict[str, Callable[[NetworkConfig], nn.Module]] = {
    "unet": UNet,
    "seed5": EncoderDecoder,
    "seed4": EncoderDecoder,
}


def build_network(config: NetworkConfig) -> nn.Module:
    """Build the (randomly initialised) network described by ``config``.

    Raises
    ------
    ParameterError
        If the architecture is unknown.
    """
    try:
        constructor = NETWORKS[config.arch]
    except KeyError:
        raise ParameterError(
            f"unknown network architecture {config.arch!r}; known: {', '.join(NETWORKS)}"
        ) from None
    return constructor(config)
