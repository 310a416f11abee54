"""The Noise2Noise scheme and the scheme registry."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cryoden.errors import ParameterError
from cryoden.training.noise2noise import Noise2Noise
from cryoden.training.schemes import SCHEMES, Scheme, make_scheme


class Scale(nn.Module):
    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return self.factor * x


def test_registry_and_protocol():
    assert SCHEMES["n2n"] is Noise2Noise
    scheme = make_scheme("n2n", loss="l1")
    assert isinstance(scheme, Scheme)
    assert scheme.channels == 2 and scheme.name == "n2n"
    with pytest.raises(ParameterError, match="unknown training scheme"):
        make_scheme("n3n")
    with pytest.raises(ParameterError, match="loss"):
        Noise2Noise(loss="huber")


def test_loss_uses_both_directions():
    a = torch.zeros(64, 1, 4, 4)
    b = torch.ones(64, 1, 4, 4)
    batch = torch.cat([a, b], dim=1)
    net = Scale(2.0)
    # a->b: (0 - 1)^2 = 1;  b->a: (2 - 0)^2 = 4. A mix of both gives a loss strictly between.
    loss = Noise2Noise().loss(net, batch, generator=torch.Generator().manual_seed(0))
    assert 1.0 < float(loss) < 4.0
    assert float(Noise2Noise().validation_loss(net, batch)) == pytest.approx(2.5)
    assert float(Noise2Noise(loss="l1").validation_loss(net, batch)) == pytest.approx(1.5)


def test_loss_is_reproducible_and_differentiable():
    torch.manual_seed(0)
    batch = torch.randn(8, 2, 6, 6)
    net = nn.Conv2d(1, 1, 3, padding=1)
    first = Noise2Noise().loss(net, batch, generator=torch.Generator().manual_seed(5))
    again = Noise2Noise().loss(net, batch, generator=torch.Generator().manual_seed(5))
    assert torch.equal(first, again)
    first.backward()
    assert net.weight.grad is not None
