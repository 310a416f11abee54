"""Image-quality metrics: FRC/FSC and resolution thresholds, CC, PSNR and SSIM."""

from cryoden.metrics.fourier import (
    FourierCorrelation,
    frc,
    fsc,
    half_bit_threshold,
    resolution_angstrom,
    resolution_crossing,
    shell_geometry,
)
from cryoden.metrics.image import cross_correlation, psnr, ssim

__all__ = [
    "FourierCorrelation",
    "cross_correlation",
    "frc",
    "fsc",
    "half_bit_threshold",
    "psnr",
    "resolution_angstrom",
    "resolution_crossing",
    "shell_geometry",
    "ssim",
]
