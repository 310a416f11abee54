"""Default networks per training scheme."""

from __future__ import annotations

from cryoden.nets import NetworkConfig
from cryoden.training.defaults import default_network


def test_noise2noise_defaults_to_the_space_to_depth_unet():
    assert default_network("n2n") == NetworkConfig(
        arch="unet", base_channels=16, depth=4, space_to_depth=2
    )


def test_single_image_schemes_keep_the_plain_unet():
    for scheme in ("n2v", "n2v2", "ne2ne"):
        assert default_network(scheme) == NetworkConfig(arch="unet")


def test_options_replace_their_own_field_only():
    plain = default_network("n2n", space_to_depth=1)
    assert (plain.space_to_depth, plain.base_channels) == (1, 16)
    assert default_network("n2n", base_channels=8, depth=None).depth == 4
    assert default_network("n2n", "seed4") == NetworkConfig(arch="seed4")
