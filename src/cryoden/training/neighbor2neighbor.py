"""Neighbor2Neighbor: training a denoiser from single noisy images by neighbour sub-sampling.

Neighbor2Neighbor (Huang, Li, Jia, Lu & Liu, "Neighbor2Neighbor: Self-Supervised Denoising from
Single Noisy Images", CVPR 2021) splits one noisy image ``y`` into two half-size images: in each
2 x 2 cell it picks two different, adjacent pixels at random, one into ``g1(y)`` and the other into
``g2(y)``. Their signals are nearly equal and their noises independent, so they train as a
Noise2Noise pair: ``f(g1(y)) -> g2(y)``. A regulariser corrects for the small signal difference
between neighbours, with ``f(y)`` computed on the full image without gradient and sub-sampled the
same way::

    loss = ||f(g1(y)) - g2(y)||² + gamma ||f(g1(y)) - g2(y) - (g1(f(y)) - g2(f(y)))||²

(means over pixels). The paper ramps ``gamma`` linearly from 0 to 2 over training; here ``gamma``
is a plain attribute (default 2) a caller may change between epochs.

The network learns at half the image's scale, so :class:`cryoden.inference.Denoiser` applies
Neighbor2Neighbor models to the four 2×2 polyphase sub-images of an image and merges the results
(:mod:`cryoden.nets.polyphase`). By default the regulariser's ``f(y)`` is computed the same way
(``reference="polyphase"``), so that training sees the network as inference applies it; the
paper's full-size ``f(y)`` is ``reference="full"``.

Input image. In the paper ``g1`` is one pixel per cell (``input_image="neighbour"``), so each
sub-image is denoised from a quarter of the image's pixels and must smooth more than a
full-resolution denoiser, losing mid-frequency detail. With pixel-independent noise (which the
neighbour pair assumes too) ``g2``'s noise is independent of *every* other pixel, so cryoden's
default (``input_image="cell-mean"``) gives the network the mean of the cell's three pixels
other than ``g2``'s (a third of the noise variance) and, at inference, the mean of the other
three sub-images for each sub-image (:func:`cryoden.nets.polyphase.cell_mean_polyphase`): the
same kind of input as in training, and every output pixel uses three quarters of the pixels.
The target ``g2``, the regulariser and the polyphase inference are unchanged.

The paper's method is ``Neighbor2Neighbor(input_image="neighbour", reference="full",
calibrate=False)``.
"""

from __future__ import annotations

import logging
import math

import torch
from torch import nn

from cryoden.errors import ParameterError
from cryoden.nets.polyphase import (
    INPUT_IMAGES,
    merge_polyphase,
    polyphase_inputs,
    split_polyphase,
)
from cryoden.training.losses import check_loss, regression_loss

logger = logging.getLogger(__name__)

#: What the regulariser's denoised reference is (see :class:`Neighbor2Neighbor`).
REFERENCES: tuple[str, ...] = ("polyphase", "full")

#: Ordered pairs ``(k1, k2)`` of edge-adjacent positions in a 2 x 2 cell, where position
#: ``k = 2 * dy + dx`` (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right). Diagonal pairs
#: (0, 3) and (1, 2) are not neighbours and are excluded, as in the paper's sampler.
NEIGHBOUR_PAIRS: tuple[tuple[int, int], ...] = (
    (0, 1),
    (0, 2),
    (1, 0),
    (1, 3),
    (2, 0),
    (2, 3),
    (3, 1),
    (3, 2),
)


def _cells(images: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` -> ``(B, C, H // 2, W // 2, 4)``: the pixels of each 2 x 2 cell.

    An odd last row or column is dropped.
    """
    batch, channels, height, width = images.shape
    h2, w2 = height // 2, width // 2
    cropped = images[:, :, : 2 * h2, : 2 * w2]
    return (
        cropped.reshape(batch, channels, h2, 2, w2, 2)
        .permute(0, 1, 2, 4, 3, 5)
        .reshape(batch, channels, h2, w2, 4)
    )


def draw_neighbour_pairs(
    shape: tuple[int, ...], *, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random neighbour pairs, one per 2 x 2 cell of each image.

    Parameters
    ----------
    shape : tuple of int
        ``(B, C, H, W)`` of the batch (channels share the pair of their cell).
    generator : torch.Generator
        The only source of randomness; drawn on its device.

    Returns
    -------
    tuple of torch.Tensor
        ``(k1, k2)``, each ``(B, 1, H // 2, W // 2)`` int64 in 0..3: the positions in the cell
        (``2 * dy + dx``) that go to ``g1`` and ``g2``; always different and edge-adjacent.
    """
    batch, _, height, width = shape
    if height < 2 or width < 2:
        raise ParameterError(f"sub-sampling needs images of at least 2 x 2, got {height} x {width}")
    pairs = torch.tensor(NEIGHBOUR_PAIRS, dtype=torch.int64, device=generator.device)
    choice = torch.randint(
        0,
        len(NEIGHBOUR_PAIRS),
        (batch, 1, height // 2, width // 2),
        generator=generator,
        device=generator.device,
    )
    return pairs[choice, 0], pairs[choice, 1]


def subsample(images: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """The half-size image taking, in each 2 x 2 cell, the pixel at ``positions``.

    Parameters
    ----------
    images : torch.Tensor
        ``(B, C, H, W)``.
    positions : torch.Tensor
        ``(B, 1, H // 2, W // 2)`` int64 positions in 0..3 (from :func:`draw_neighbour_pairs`).

    Returns
    -------
    torch.Tensor
        ``(B, C, H // 2, W // 2)``, differentiable with respect to ``images``.
    """
    return _pick(_cells(images), positions)


def _pick(cells: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """``(B, C, h, w, 4)`` cells, ``(B, 1, h, w)`` positions -> ``(B, C, h, w)``."""
    index = positions.to(cells.device).unsqueeze(-1).expand(*cells.shape[:-1], 1)
    return cells.gather(-1, index).squeeze(-1)


def cell_mean_subsample(images: torch.Tensor, excluded: torch.Tensor) -> torch.Tensor:
    """The half-size image of, in each 2 x 2 cell, the mean of the three pixels other than the
    one at ``excluded``.

    Parameters
    ----------
    images : torch.Tensor
        ``(B, C, H, W)``.
    excluded : torch.Tensor
        ``(B, 1, H // 2, W // 2)`` int64 positions in 0..3.

    Returns
    -------
    torch.Tensor
        ``(B, C, H // 2, W // 2)``; it does not depend on the pixels at ``excluded`` (with white
        noise, its noise is independent of theirs and has a third of one pixel's variance).
    """
    cells = _cells(images)
    return (cells.sum(dim=-1) - _pick(cells, excluded)) / 3.0


def input_subsample(
    images: torch.Tensor, k1: torch.Tensor, k2: torch.Tensor, input_image: str
) -> torch.Tensor:
    """The network's half-size input for the pair ``(k1, k2)``: ``g1 = subsample(images, k1)``
    for ``"neighbour"``, the mean of each cell's pixels other than ``k2`` for ``"cell-mean"``."""
    if input_image == "neighbour":
        return subsample(images, k1)
    return cell_mean_subsample(images, k2)


def neighbour_subsample(
    images: torch.Tensor, *, generator: torch.Generator, input_image: str = "neighbour"
) -> tuple[torch.Tensor, torch.Tensor]:
    """The pair ``(g1(y), g2(y))`` of random neighbour sub-samples of a batch ``y``; ``g1`` as
    :func:`input_subsample` makes it (the paper's single neighbour by default)."""
    k1, k2 = draw_neighbour_pairs(tuple(images.shape), generator=generator)
    return input_subsample(images, k1, k2, input_image), subsample(images, k2)


def fit_output_affine(
    network: nn.Module,
    patches: torch.Tensor,
    *,
    generator: torch.Generator,
    input_image: str = "neighbour",
    draws: int = 4,
    batch: int = 16,
) -> tuple[float, float]:
    """The least-squares ``(a, c)`` of ``g2 ≈ a f(g1) + c`` over neighbour pairs of ``patches``.

    ``g2``'s noise is independent of ``f(g1)``, so ``a`` estimates, without clean data, the
    factor that makes the network's output an unbiased (least-squares) estimate of the signal:
    ``a < 1`` when the output is too strong. ``patches`` ``(N, 1, P, P)``; each is sub-sampled
    ``draws`` times, ``g1`` as ``input_image`` says (:func:`input_subsample`); the network runs
    in eval mode without gradient.
    """
    was_training = network.training
    network.eval()
    n = sf = st = sff = sft = 0.0  # count, sum f, sum t, sum f², sum f t
    try:
        with torch.no_grad():
            for _ in range(draws):
                for start in range(0, patches.shape[0], batch):
                    g1, g2 = neighbour_subsample(
                        patches[start : start + batch],
                        generator=generator,
                        input_image=input_image,
                    )
                    f, t = network(g1).double(), g2.double()
                    n += f.numel()
                    sf, st = sf + float(f.sum()), st + float(t.sum())
                    sff, sft = sff + float((f * f).sum()), sft + float((f * t).sum())
    finally:
        network.train(was_training)
    variance = sff - sf * sf / n
    if not variance > 0:
        return 1.0, 0.0
    a = (sft - sf * st / n) / variance
    return a, (st - a * sf) / n


class Neighbor2Neighbor:
    """The Neighbor2Neighbor training scheme (``"ne2ne"``); patches have 1 channel.

    Credit: Huang, Li, Jia, Lu & Liu, "Neighbor2Neighbor: Self-Supervised Denoising from Single
    Noisy Images", CVPR 2021 (see the module docstring for the loss).

    Parameters
    ----------
    loss
        Reconstruction term: ``"l2"`` (the paper's) or ``"l1"``; the regulariser is always
        squared.
    gamma
        Weight of the regulariser (the paper's final value, 2). The paper ramps it from 0; a
        caller may do so by setting :attr:`gamma` between epochs.
    validation_seed
        Seed of the fixed generator :meth:`validation_loss` sub-samples with.
    reference
        The denoised image ``f(y)`` the regulariser compares with: ``"polyphase"`` (default),
        the network applied to the patch's four 2×2 sub-images and merged as
        :func:`cryoden.nets.polyphase.merge_polyphase` does, which is how cryoden applies
        Neighbor2Neighbor models, so training matches inference; or ``"full"``, the network
        applied to the whole patch, the paper's choice (for a model applied at full size).
    calibrate
        After training, refit the network's output scale and offset in closed form on the
        validation patches (:func:`fit_output_affine`; the trainer folds them into the last
        layer). The regulariser does not pin the output's scale, so a network can put out a
        systematically too strong (or weak) image; the refit, judged against ``g2`` whose noise
        is independent of the input, removes that bias without clean data.
    input_image
        What the network sees of each 2 x 2 cell (the target ``g2`` is always one pixel):
        ``"cell-mean"`` (default), the mean of the cell's three pixels other than ``g2``'s
        (:func:`cell_mean_subsample`), or ``"neighbour"``, the paper's ``g1``, one pixel
        edge-adjacent to ``g2``'s. The regulariser's ``g1(f(y))`` is taken the same way. The
        choice is recorded in the model file (:meth:`scheme_options`), so the denoiser builds
        the same kind of input at inference.
    """

    name = "ne2ne"
    channels = 1

    def __init__(
        self,
        *,
        loss: str = "l2",
        gamma: float = 2.0,
        validation_seed: int = 0,
        reference: str = "polyphase",
        calibrate: bool = True,
        input_image: str = "cell-mean",
    ) -> None:
        self.loss_kind = check_loss(loss)
        if not (isinstance(gamma, (int, float)) and math.isfinite(gamma) and gamma >= 0.0):
            raise ParameterError(f"gamma must be a finite number >= 0, got {gamma!r}")
        self.gamma = float(gamma)
        self.validation_seed = int(validation_seed)
        if reference not in REFERENCES:
            raise ParameterError(
                f"reference must be one of {', '.join(REFERENCES)}, got {reference!r}"
            )
        self.reference = reference
        self.calibrate = bool(calibrate)
        if input_image not in INPUT_IMAGES:
            raise ParameterError(
                f"input_image must be one of {', '.join(INPUT_IMAGES)}, got {input_image!r}"
            )
        self.input_image = input_image

    def __repr__(self) -> str:
        return (
            f"Neighbor2Neighbor(loss={self.loss_kind!r}, gamma={self.gamma!r}, "
            f"reference={self.reference!r}, calibrate={self.calibrate!r}, "
            f"input_image={self.input_image!r})"
        )

    def scheme_options(self) -> dict[str, str]:
        """What the model file records so that the denoiser applies the model as trained."""
        return {"input_image": self.input_image}

    def terms(
        self, network: nn.Module, batch: torch.Tensor, *, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The reconstruction and regularisation terms (scalar means) of one batch.

        Parameters
        ----------
        network
            Maps ``(B, 1, H, W)`` to ``(B, 1, H, W)`` for any ``H, W``.
        batch
            ``(B, 1, P, P)`` noisy patches ``y`` (an odd last row or column is not used).
        generator
            CPU generator drawing the neighbour pairs.

        Returns
        -------
        tuple of torch.Tensor
            ``mean|f(g1(y)) - g2(y)|^p`` and
            ``mean(f(g1(y)) - g2(y) - (g1(f(y)) - g2(f(y))))^2``, ``f(y)`` without gradient
            (``g1`` as ``input_image`` says).
        """
        k1, k2 = draw_neighbour_pairs(tuple(batch.shape), generator=generator)
        g1 = input_subsample(batch, k1, k2, self.input_image)
        g2 = subsample(batch, k2)
        prediction = network(g1)
        reconstruction = regression_loss(prediction, g2, self.loss_kind)
        if self.gamma == 0.0:  # the full-size pass only feeds the regulariser
            return reconstruction, torch.zeros((), device=batch.device)
        expected_difference = self.expected_difference(network, batch, k1, k2)
        regulariser = (prediction - g2 - expected_difference).square().mean()
        return reconstruction, regulariser

    def expected_difference(
        self, network: nn.Module, batch: torch.Tensor, k1: torch.Tensor, k2: torch.Tensor
    ) -> torch.Tensor:
        """The regulariser's estimate of the signal difference ``g1 - g2`` (no gradient):
        ``g1(f(y)) - g2(f(y))``, ``(B, 1, H // 2, W // 2)``, with ``f(y)`` the reference (see
        the class docstring)."""
        with torch.no_grad():
            if self.reference == "polyphase":
                shape = (int(batch.shape[-2]), int(batch.shape[-1]))
                quarters = polyphase_inputs(split_polyphase(batch), self.input_image)
                full = merge_polyphase(network(quarters), shape)
            else:
                full = network(batch)
            return input_subsample(full, k1, k2, self.input_image) - subsample(full, k2)

    def loss(
        self, network: nn.Module, batch: torch.Tensor, *, generator: torch.Generator
    ) -> torch.Tensor:
        """``reconstruction + gamma * regulariser`` of one batch (see :meth:`terms`)."""
        reconstruction, regulariser = self.terms(network, batch, generator=generator)
        return reconstruction + self.gamma * regulariser

    def apply_model(self, network: nn.Module, images: torch.Tensor) -> torch.Tensor:
        """The model's output for noisy ``images`` ``(B, 1, H, W)`` as the denoiser computes
        it: the network on the four polyphase sub-images (built as ``input_image`` says),
        merged."""
        shape = (int(images.shape[-2]), int(images.shape[-1]))
        quarters = polyphase_inputs(split_polyphase(images), self.input_image)
        return merge_polyphase(network(quarters), shape)

    def output_calibration(
        self, network: nn.Module, patches: torch.Tensor
    ) -> tuple[float, float] | None:
        """``(scale, offset)`` for the trained network's output (see ``calibrate``), fitted on
        validation ``patches`` with a fixed generator; ``None`` when ``calibrate`` is off."""
        if not self.calibrate:
            return None
        generator = torch.Generator().manual_seed(self.validation_seed + 1)
        return fit_output_affine(
            network, patches, generator=generator, input_image=self.input_image
        )

    def validation_loss(self, network: nn.Module, batch: torch.Tensor) -> torch.Tensor:
        """The loss with a generator seeded with ``validation_seed`` (deterministic)."""
        generator = torch.Generator().manual_seed(self.validation_seed)
        return self.loss(network, batch, generator=generator)
