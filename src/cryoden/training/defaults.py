"""The network each training scheme trains when the user names no width, depth or layout.

Chosen on measured quality per FLOP (README, "What the numbers say"): for Noise2Noise, the
fastest U-Net within 0.2 dB of the best one on the held-out check. The space-to-depth U-Net of
base 16 (it works on 2×2 pixel blocks at half size; 22.5 kFLOP per pixel) scored 28.55 / 28.40 dB
at seeds 0 / 1 against 28.77 / 28.37 dB for the plain base-8 U-Net (22.3 kFLOP per pixel), 0.10 dB
lower on the mean, and denoises a 4096² micrograph about 1.6× faster on a 2-core CPU (its
convolutions are wider, so they use the CPU's vector units better). Noise2Void and
Neighbor2Neighbor keep the plain base-8 U-Net, on which their quality was measured (the blind
spot and the half-scale sub-images are per pixel; packing 2×2 blocks is not measured there).
"""

from __future__ import annotations

from typing import Any

from cryoden.nets.config import NetworkConfig

#: U-Net settings per scheme name, over :class:`~cryoden.nets.config.NetworkConfig`'s defaults.
DEFAULT_UNET: dict[str, dict[str, int]] = {
    "n2n": {"base_channels": 16, "depth": 4, "space_to_depth": 2},
}


def default_network(scheme: str, arch: str = "unet", **options: Any) -> NetworkConfig:
    """The network config ``scheme`` trains by default, with ``options`` (not ``None``) on top.

    Each given option replaces its own field only: ``default_network("n2n", space_to_depth=1)``
    is the plain U-Net of base 16.

    Examples
    --------
    >>> default_network("n2n").space_to_depth, default_network("n2v").space_to_depth
    (2, 1)
    >>> default_network("n2n", base_channels=8).base_channels
    8
    """
    fields: dict[str, Any] = dict(DEFAULT_UNET.get(scheme, {})) if arch == "unet" else {}
    fields.update({k: v for k, v in options.items() if v is not None})
    return NetworkConfig(arch=arch, **fields)
