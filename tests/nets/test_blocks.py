"""Building blocks of the networks."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cryoden.nets.blocks import Upsample


def test_bilinear_upsample_projects_first_with_the_same_result():
    """Projecting before interpolating equals the textbook order (interpolate, then 1×1)."""
    torch.manual_seed(0)
    up = Upsample(6, 3).eval()
    x = torch.randn(2, 6, 9, 7)
    reference = up.proj(F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False))
    torch.testing.assert_close(up(x), reference, atol=1e-5, rtol=1e-5)
