"""Inference: tiled prediction with smooth blending, and the denoiser."""

from cryoden.inference.denoise import PRECISIONS, Denoiser
from cryoden.inference.tiling import (
    TilingPlan,
    available_memory_bytes,
    predict_tiled,
)
from cryoden.nets.device import default_device

__all__ = [
    "PRECISIONS",
    "Denoiser",
    "TilingPlan",
    "available_memory_bytes",
    "default_device",
    "predict_tiled",
]
