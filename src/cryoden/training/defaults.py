"""The network each training scheme trains when the user names no width, depth or layout.

This is the one place that says which network a scheme trains by default; the command line,
the benchmarks and the study take it from :func:`default_network`.
:class:`~cryoden.nets.config.NetworkConfig` only fills in architecture-level values for fields
left ``None``.

The choices, and why:

- Noise2Noise and CARE (supervised, the same kind of pairs) train the space-to-depth U-Net of
  base 16: it works on 2×2 pixel blocks at half
  size, so for about the FLOPs per pixel of the plain base-8 U-Net its convolutions are wider
  and use the CPU's vector units better, with quality on a par (the measurements are in
  ``benchmarks/results/``).
- Noise2Void and Neighbor2Neighbor train the plain base-8 U-Net: the blind spot and the
  half-scale sub-images work pixel by pixel, which packing 2×2 blocks into channels would mix.
- N2V2 trains the same U-Net with N2V2's blur-pool downsampling and no top-level skip
  (:data:`~cryoden.training.noise2void.N2V2_NETWORK_TWEAKS`).

Other architectures (the study's ``seed5`` / ``seed4``) have no per-scheme settings.

Volumes (``dims=3``, tomograms) train small plain 3D U-Nets of base 8 (:data:`DEFAULT_UNET_3D`),
cheap enough for a CPU: the pair schemes at depth 2, the network the comparison of candidates
by quality per FLOP on held-out simulated tomograms chose (:mod:`cryoden.training.network_choice_3d`,
run by ``benchmarks/bench_tomo_quality.py``); the blind-spot schemes at depth 3, since the
structured blind spot that tomograms' correlated noise calls for hides the voxels around each
masked one and the network must see past them. The tomography study
(:mod:`cryoden.benchmark.tomo`) trains these same networks.
"""

from __future__ import annotations

from typing import Any

from cryoden.errors import ParameterError
from cryoden.nets.config import NetworkConfig
from cryoden.training.noise2void import N2V2_NETWORK_TWEAKS

_PLAIN_UNET: dict[str, Any] = {"base_channels": 8, "depth": 4, "space_to_depth": 1}

#: The learning rate of a run that starts from trained weights (fine-tuning, ``--init``), as a
#: fraction of the default: at the full rate the first steps undo what the start had learned
#: before the small new dataset can teach anything back.
FINE_TUNE_LR_FACTOR = 0.1

#: U-Net settings per scheme name; every scheme registered for training has an entry.
DEFAULT_UNET: dict[str, dict[str, Any]] = {
    "n2n": {"base_channels": 16, "depth": 4, "space_to_depth": 2},
    "care": {"base_channels": 16, "depth": 4, "space_to_depth": 2},
    "n2v": dict(_PLAIN_UNET),
    "n2v2": {**_PLAIN_UNET, **N2V2_NETWORK_TWEAKS},
    "ne2ne": dict(_PLAIN_UNET),
}


#: 3D U-Net settings per scheme that trains on volumes (``dims=3``).
DEFAULT_UNET_3D: dict[str, dict[str, Any]] = {
    "n2n": {"base_channels": 8, "depth": 2, "space_to_depth": 1},
    "care": {"base_channels": 8, "depth": 2, "space_to_depth": 1},
    "n2v": {"base_channels": 8, "depth": 3, "space_to_depth": 1},
    "n2v2": {"base_channels": 8, "depth": 3, "space_to_depth": 1, **N2V2_NETWORK_TWEAKS},
}


def default_network(scheme: str, arch: str = "unet", **options: Any) -> NetworkConfig:
    """The network config ``scheme`` trains by default, with ``options`` (not ``None``) on top.

    Parameters
    ----------
    scheme
        A training scheme's registry name (``"n2n"``, ``"n2v"``, ``"n2v2"``, ``"ne2ne"``,
        ``"care"``).
    arch
        The architecture; per-scheme settings apply to ``"unet"`` only.
    **options
        :class:`~cryoden.nets.config.NetworkConfig` fields; each given (not ``None``) option
        replaces its own field only, so callers can pass optional settings straight through.
        ``dims=3`` takes the volume defaults (:data:`DEFAULT_UNET_3D`).

    Raises
    ------
    ParameterError
        For an unknown scheme, or options the network refuses.

    Examples
    --------
    >>> default_network("n2n").space_to_depth, default_network("n2v").space_to_depth
    (2, 1)
    >>> default_network("n2n", space_to_depth=1).base_channels
    16
    >>> default_network("n2v2").top_skip
    False
    """
    table = DEFAULT_UNET_3D if options.get("dims") == 3 else DEFAULT_UNET
    if scheme not in table:
        what = "volume training scheme" if table is DEFAULT_UNET_3D else "training scheme"
        raise ParameterError(f"unknown {what} {scheme!r}; known: {', '.join(table)}")
    fields: dict[str, Any] = dict(table[scheme]) if arch == "unet" else {}
    fields.update({k: v for k, v in options.items() if v is not None})
    return NetworkConfig(arch=arch, **fields)


def describe_default_network(scheme: str) -> str:
    """A short phrase for help texts, e.g. ``"U-Net, base 16, depth 4, space-to-depth 2"``."""
    config = default_network(scheme)
    words = [f"U-Net, base {config.base_channels}, depth {config.depth}"]
    if config.space_to_depth != 1:
        words.append(f"space-to-depth {config.space_to_depth}")
    if config.blurpool:
        words.append("blur-pool")
    if not config.top_skip:
        words.append("no top skip")
    return ", ".join(words)
