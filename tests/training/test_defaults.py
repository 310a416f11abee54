"""Default networks per training scheme."""

from __future__ import annotations

import pytest

from cryoden.errors import ParameterError
from cryoden.nets import NetworkConfig
from cryoden.training.defaults import DEFAULT_UNET, default_network, describe_default_network
from cryoden.training.noise2void import n2v2_network_config
from cryoden.training.schemes import SCHEMES


def test_noise2noise_defaults_to_the_space_to_depth_unet():
    assert default_network("n2n") == NetworkConfig(
        arch="unet", base_channels=16, depth=4, space_to_depth=2
    )


def test_single_image_schemes_train_the_plain_unet_and_n2v2_its_own():
    for scheme in ("n2v", "ne2ne"):
        assert default_network(scheme) == NetworkConfig(arch="unet")
    assert default_network("n2v2") == n2v2_network_config(NetworkConfig(arch="unet"))


def test_every_registered_scheme_has_a_default():
    assert set(DEFAULT_UNET) == set(SCHEMES)
    with pytest.raises(ParameterError, match="unknown training scheme"):
        default_network("n3n")


def test_options_replace_their_own_field_only():
    plain = default_network("n2n", space_to_depth=1)
    assert (plain.space_to_depth, plain.base_channels) == (1, 16)
    assert default_network("n2n", base_channels=8, depth=None).depth == 4
    assert default_network("n2n", "seed4") == NetworkConfig(arch="seed4")


def test_description_names_the_default_network():
    assert describe_default_network("n2n") == "U-Net, base 16, depth 4, space-to-depth 2"
    assert "no top skip" in describe_default_network("n2v2")
