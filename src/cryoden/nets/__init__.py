"""Denoising networks: the study's encoder-decoder and a U-Net, built from a config."""

from cryoden.nets.analysis import count_parameters, flops_per_pixel, receptive_field
from cryoden.nets.config import ARCHITECTURES, NetworkConfig
from cryoden.nets.device import default_device
from cryoden.nets.encoder_decoder import EncoderDecoder
from cryoden.nets.registry import NETWORKS, build_network
from cryoden.nets.unet import UNet

__all__ = [
    "ARCHITECTURES",
    "NETWORKS",
    "EncoderDecoder",
    "NetworkConfig",
    "UNet",
    "build_network",
    "count_parameters",
    "default_device",
    "flops_per_pixel",
    "receptive_field",
]
