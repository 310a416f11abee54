"""Inference: tiled prediction with smooth blending, and the denoisers (images and volumes)."""

from cryoden.inference.denoise import PRECISIONS, Denoiser
from cryoden.inference.tiling import (
    TilingPlan,
    available_memory_bytes,
    predict_tiled,
)
from cryoden.inference.volume import VolumeDenoiser
from cryoden.nets.device import default_device

__all__ = [
    "PRECISIONS",
    "Denoiser",
    "TilingPlan",
    "VolumeDenoiser",
    "available_memory_bytes",
    "default_device",
    "predict_tiled",
]
