# Over ~450 lines for now: the masking primitives (2D, structured, 3D) and the scheme that uses
# them grew together; they are due to move to a masking module of their own.
"""Noise2Void and N2V2: blind-spot training from single noisy images.

Noise2Void (Krull, Buchholz & Jug, "Noise2Void - Learning Denoising from Single Noisy Images",
CVPR 2019) trains a denoiser on the noisy images alone. In every training patch a small, stratified
random set of pixels is *masked*: each masked pixel's value is replaced by the value of another
pixel from its neighbourhood, the network predicts the whole patch, and the loss is taken on the
masked pixels only, against their original noisy values. Since a masked pixel's own value is not in
the network's input, the network cannot learn the identity; with pixel-wise independent, zero-mean
noise the best prediction is the clean signal.

N2V2 (Höck, Buchholz, Brachmann, Jug & Krull, "N2V2 - Fixing Noise2Void Checkerboard Artifacts
with Modified Sampling Strategies and a Tweaked Network Architecture", ECCV Workshops 2022) removes
the checkerboard artefacts of plain Noise2Void with a blur-pool U-Net without its top-level skip
connection (:func:`n2v2_network_config`) and the median of the neighbourhood, centre excluded, as
the replacement value: the scheme :class:`N2V2`, registered as ``"n2v2"``.

Masking here is *strict*: replacement values never come from another masked pixel, so no masked
pixel's own value re-enters the input anywhere, and the prediction at a masked pixel does not
depend on that pixel's noisy value at all (the reference implementations copy from the original
patch and can leak a value when two masked pixels are neighbours).

The blind spot can be more than one pixel (:mod:`cryoden.training.blind_spot`): where the noise
of adjacent pixels is correlated, a structured blind spot masks a box around each masked pixel,
or pixel-shuffle down-sampling trains on sub-images whose adjacent pixels are further apart;
:meth:`Noise2Void.for_images` measures the training images' noise and chooses. Except for
pixel-shuffle models (applied to the 2 x 2 polyphase sub-images, as the model file records),
nothing in these schemes is needed at inference: a model is applied as
``network(normalised image)`` like a Noise2Noise model.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from cryoden.errors import ParameterError
from cryoden.nets.config import NetworkConfig
from cryoden.nets.polyphase import merge_polyphase, split_polyphase
from cryoden.training.blind_spot import (
    BlindSpot,
    parse_blind_spot,
    pd_crop,
    pd_split,
    resolve_blind_spot,
    structured_blind_mask,
    structured_cell_size,
)
from cryoden.training.blind_spot_3d import (
    REPLACEMENTS,
    blind_spot_mask_3d,
    pick_replacement,
    reflect_index,
)
from cryoden.training.losses import check_loss, regression_loss

logger = logging.getLogger(__name__)

Replacement = Literal["random", "median"]


#: Default fraction of masked pixels: one per 5 x 5 cell (see :class:`Noise2Void`).
DEFAULT_MASK_FRACTION = 0.04

#: The network options N2V2 sets (blur-pool downsampling, no top-level skip connection).
N2V2_NETWORK_TWEAKS: dict[str, Any] = {"blurpool": True, "top_skip": False}


@dataclasses.dataclass(frozen=True)
class MaskedBatch:
    """A batch prepared for blind-spot training.

    Attributes
    ----------
    inputs : torch.Tensor
        ``(B, C, H, W)``: the batch with every masked pixel replaced.
    mask : torch.Tensor
        ``(B, C, H, W)`` bool: True at the masked pixels.
    """

    inputs: torch.Tensor
    mask: torch.Tensor


def mask_cell_size(mask_fraction: float) -> int:
    """Side of the square stratification cell that masks ``mask_fraction`` of the pixels.

    One pixel is masked per ``cell x cell`` cell, so the realised fraction is ``1 / cell**2``
    (``cell = round(1 / sqrt(mask_fraction))``, as in CAREamics): 0.002 gives 22 (0.21 %), 0.0156
    gives 8 (1.56 %).

    Raises
    ------
    ParameterError
        If ``mask_fraction`` is not in (0, 0.25] (a cell of at least 2 x 2 pixels).
    """
    if not math.isfinite(mask_fraction) or not 0.0 < mask_fraction <= 0.25:
        raise ParameterError(f"mask_fraction must be in (0, 0.25], got {mask_fraction}")
    return max(2, round(1.0 / math.sqrt(mask_fraction)))


def stratified_coordinates(
    shape: tuple[int, ...], *, cell: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stratified random pixel positions: at most one per ``cell x cell`` cell of each image.

    The image is tiled from its top-left corner by cells; in every cell one position is drawn
    uniformly and kept when it falls inside the image (always, for cells wholly inside). Every
    pixel is therefore chosen with probability ``1 / cell**2``, and no two chosen pixels share a
    cell.

    Parameters
    ----------
    shape : tuple of int
        ``(B, C, H, W)`` of the batch; channels are masked independently.
    cell : int
        Cell side in pixels (see :func:`mask_cell_size`).
    generator : torch.Generator
        The source of randomness; the positions are drawn on its device.

    Returns
    -------
    tuple of torch.Tensor
        ``(b, c, y, x)`` int64 index vectors of equal length (on the generator's device).
    """
    batch, channels, height, width = shape
    n_y, n_x = math.ceil(height / cell), math.ceil(width / cell)
    device = generator.device
    offsets = torch.randint(
        0, cell, (batch, channels, n_y, n_x, 2), generator=generator, device=device
    )
    y = torch.arange(n_y, device=device).view(1, 1, n_y, 1) * cell + offsets[..., 0]
    x = torch.arange(n_x, device=device).view(1, 1, 1, n_x) * cell + offsets[..., 1]
    b = torch.arange(batch, device=device).view(batch, 1, 1, 1).expand_as(y)
    c = torch.arange(channels, device=device).view(1, channels, 1, 1).expand_as(y)
    keep = (y < height) & (x < width)
    return b[keep], c[keep], y[keep], x[keep]


def replacement_values(
    images: torch.Tensor,
    mask: torch.Tensor,
    coords: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    *,
    neighborhood: int = 5,
    replacement: Replacement = "random",
    generator: torch.Generator,
    blind_radius: tuple[int, int] = (0, 0),
) -> torch.Tensor:
    """Values that replace the masked pixels, drawn from each one's neighbourhood.

    The candidates of a masked pixel are the pixels of the ``neighborhood x neighborhood`` window
    around it (mirrored at the image border), minus the pixel itself and minus every other masked
    pixel. With a structured blind spot (``blind_radius`` ``(ry, rx)``, see
    :func:`blind_spot_mask`) the window grows by the radius along each axis, so that a box of
    masked pixels still has candidates around it. ``"random"`` takes one candidate uniformly at
    random (N2V's uniform pixel selection without the centre, as N2V2 recommends); ``"median"``
    takes the candidates' median (N2V2).

    Parameters
    ----------
    images : torch.Tensor
        ``(B, C, H, W)`` original batch.
    mask : torch.Tensor
        ``(B, C, H, W)`` bool, True at the masked pixels.
    coords : tuple of torch.Tensor
        ``(b, c, y, x)`` of the masked pixels, on ``images``' device.
    neighborhood : int
        Odd window side, at least 3.
    replacement : {"random", "median"}
        How the value is chosen from the candidates.
    generator : torch.Generator
        Source of randomness for ``"random"``.
    blind_radius : tuple of int
        ``(ry, rx)``: the structured blind spot's radii, which widen the window; ``(0, 0)`` for
        the one-pixel blind spot.

    Returns
    -------
    torch.Tensor
        One value per masked pixel, differentiable with respect to ``images``.
    """
    _, _, height, width = images.shape
    b, c, y, x = coords
    radius = neighborhood // 2
    steps_y = torch.arange(-radius - blind_radius[0], radius + blind_radius[0] + 1)
    steps_x = torch.arange(-radius - blind_radius[1], radius + blind_radius[1] + 1)
    dy, dx = torch.meshgrid(steps_y.to(images.device), steps_x.to(images.device), indexing="ij")
    ny = reflect_index(y[:, None] + dy.reshape(1, -1), height)
    nx = reflect_index(x[:, None] + dx.reshape(1, -1), width)
    bb, cc = b[:, None].expand_as(ny), c[:, None].expand_as(ny)
    # Reflection can map a non-zero offset onto the centre (row 1, offset -2), so compare positions.
    candidate = ~mask[bb, cc, ny, nx] & ~((ny == y[:, None]) & (nx == x[:, None]))
    values = images[bb, cc, ny, nx]
    # With cells of at least 2 x 2 a window holds at most ((neighborhood + 1) / 2)**2 masked
    # pixels, so there are candidates except in degenerate tiny images.
    return pick_replacement(values, candidate, replacement, generator)


def blind_spot_mask(
    images: torch.Tensor,
    *,
    mask_fraction: float,
    neighborhood: int = 5,
    replacement: Replacement = "random",
    generator: torch.Generator,
    blind_radius: tuple[int, int] = (0, 0),
) -> MaskedBatch:
    """Mask a stratified random set of pixels of each image (the Noise2Void manipulation).

    With a structured blind spot (``blind_radius`` ``(ry, rx)`` not zero; structured
    Noise2Void, see :mod:`cryoden.training.blind_spot`) every pixel of the
    ``(2 ry + 1) x (2 rx + 1)`` box around each masked pixel is replaced too, with values from
    outside every box, so that no pixel whose noise correlates with the masked pixel's reaches
    the input; the loss is still taken at the masked pixels alone. The cells are then enlarged
    (:func:`~cryoden.training.blind_spot.structured_cell_size`) so that the boxes cover at
    most about a quarter of the image.

    Parameters
    ----------
    images : torch.Tensor
        ``(B, C, H, W)`` batch; not modified. Gradients flow from the returned inputs to
        ``images`` everywhere except at the masked pixels.
    mask_fraction : float
        Target fraction of masked pixels (see :func:`mask_cell_size`).
    neighborhood : int
        Odd side of the window replacement values come from.
    replacement : {"random", "median"}
        See :func:`replacement_values`.
    generator : torch.Generator
        The only source of randomness.
    blind_radius : tuple of int
        ``(ry, rx)``, pixels masked on each side of a masked pixel along y and x.

    Returns
    -------
    MaskedBatch
        The masked inputs and the boolean mask (True at the masked pixels only, the boxes
        around them excluded).
    """
    if images.ndim != 4:
        raise ParameterError(f"expected a (B, C, H, W) batch, got shape {tuple(images.shape)}")
    _check_neighborhood(neighborhood)
    if min(images.shape[-2:]) <= neighborhood // 2:
        raise ParameterError(
            f"patches must be larger than neighborhood // 2 = {neighborhood // 2}, "
            f"got {tuple(images.shape[-2:])}"
        )
    cell = mask_cell_size(mask_fraction)
    structured = tuple(blind_radius) != (0, 0)
    if structured:
        cell = max(cell, structured_cell_size(blind_radius))
    drawn = stratified_coordinates(tuple(images.shape), cell=cell, generator=generator)
    b, c, y, x = (index.to(images.device) for index in drawn)
    coords = (b, c, y, x)
    mask = torch.zeros(images.shape, dtype=torch.bool, device=images.device)
    mask[coords] = True
    blind, blind_coords = mask, coords
    if structured:
        blind = structured_blind_mask(mask, blind_radius)
        blind_coords = tuple(blind.nonzero(as_tuple=True))  # type: ignore[assignment]
    values = replacement_values(
        images,
        blind,
        blind_coords,
        neighborhood=neighborhood,
        replacement=replacement,
        generator=generator,
        blind_radius=blind_radius,
    )
    inputs = images.index_put(blind_coords, values)
    return MaskedBatch(inputs=inputs, mask=mask)


def n2v2_network_config(config: NetworkConfig | None = None) -> NetworkConfig:
    """The N2V2 version of a U-Net configuration: blur-pool and no top-level skip.

    Parameters
    ----------
    config
        A ``unet`` configuration; ``None`` for the default U-Net.

    Returns
    -------
    NetworkConfig
        A copy with :data:`N2V2_NETWORK_TWEAKS` applied (``blurpool=True``, ``top_skip=False``).

    Raises
    ------
    ParameterError
        If the architecture has no skip connections to drop (the seed encoder-decoders).
    """
    config = NetworkConfig() if config is None else config
    return config.replace(**N2V2_NETWORK_TWEAKS)


def _check_neighborhood(neighborhood: int) -> None:
    if isinstance(neighborhood, bool) or not isinstance(neighborhood, int):
        raise ParameterError(f"neighborhood must be an odd integer >= 3, got {neighborhood!r}")
    if neighborhood < 3 or neighborhood % 2 == 0:
        raise ParameterError(f"neighborhood must be an odd integer >= 3, got {neighborhood}")


class Noise2Void:
    """The Noise2Void training scheme (``"n2v"``); patches have 1 channel (single images).

    Credit: Krull, Buchholz & Jug, "Noise2Void - Learning Denoising from Single Noisy Images",
    CVPR 2019. :class:`N2V2` (``"n2v2"``) is the same scheme with N2V2's replacement and
    network; see the module docstring.

    Parameters
    ----------
    loss
        ``"l2"`` (the paper's) or ``"l1"``, on the masked pixels only.
    mask_fraction
        Fraction of pixels masked per patch, one per stratification cell of side
        ``round(1 / sqrt(mask_fraction))`` (see :func:`mask_cell_size`). The default, 1/25 (cells
        of 5 x 5), is higher than the papers' 0.2 %: more masked pixels per patch give a less
        noisy gradient, which matters when training is short.
    neighborhood
        Odd side of the replacement window (5: a 5 x 5 neighbourhood).
    replacement
        ``"random"`` or ``"median"``; ``None`` takes the scheme's own
        (:attr:`default_replacement`: ``"random"`` for N2V, ``"median"`` for N2V2).
    validation_seed
        Seed of the fixed generator :meth:`validation_loss` masks with.
    blind_spot
        What the network is kept from seeing around each masked pixel
        (:class:`~cryoden.training.blind_spot.BlindSpot` or its text: ``"pixel"``, the plain
        one-pixel blind spot; ``"structured:X,Y"``; ``"pd:2"``). ``"auto"`` needs the training
        images: build the scheme with :meth:`for_images`.
    noise_correlation
        The measured noise correlation the blind spot was chosen from (``{"x": [...], "y":
        [...]}``, lags 1, 2, ...), recorded in the model file; ``None`` when not measured.
    """

    name = "n2v"
    channels = 1
    #: The replacement used when none is given.
    default_replacement: Replacement = "random"

    def __init__(
        self,
        *,
        loss: str = "l2",
        mask_fraction: float = DEFAULT_MASK_FRACTION,
        neighborhood: int = 5,
        replacement: Replacement | None = None,
        validation_seed: int = 0,
        blind_spot: BlindSpot | str = "pixel",
        noise_correlation: Mapping[str, Sequence[float]] | None = None,
    ) -> None:
        self.loss_kind = check_loss(loss)
        parsed = parse_blind_spot(blind_spot)
        if parsed is None:
            raise ParameterError(
                "blind_spot 'auto' is chosen from the training images: build the scheme with "
                "Noise2Void.for_images(images)"
            )
        self.blind_spot = parsed
        self.noise_correlation = (
            None
            if noise_correlation is None
            else {axis: [float(v) for v in noise_correlation[axis]] for axis in ("x", "y")}
        )
        if replacement is None:
            replacement = self.default_replacement
        if replacement not in REPLACEMENTS:
            raise ParameterError(
                f"replacement must be one of {', '.join(REPLACEMENTS)}, got {replacement!r}"
            )
        mask_cell_size(mask_fraction)
        _check_neighborhood(neighborhood)
        self.mask_fraction = float(mask_fraction)
        self.neighborhood = neighborhood
        self.replacement: Replacement = replacement
        self.validation_seed = int(validation_seed)
        self._network_checked = False

    @classmethod
    def for_images(
        cls,
        images: Sequence[Any] | np.ndarray,
        *,
        blind_spot: BlindSpot | str = "auto",
        **options: Any,
    ) -> Noise2Void:
        """The scheme for these training images: their noise correlation is measured and, for
        ``blind_spot="auto"``, the blind spot chosen from it
        (:func:`~cryoden.training.blind_spot.resolve_blind_spot`); both are recorded.

        ``images``: 2D arrays, or a dataset's ``(C, H, W)`` arrays (``dataset.images``);
        ``options``: the other parameters of the class.
        """
        chosen, correlation = resolve_blind_spot(blind_spot, images)
        return cls(blind_spot=chosen, noise_correlation=correlation, **options)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(loss={self.loss_kind!r}, "
            f"mask_fraction={self.mask_fraction!r}, neighborhood={self.neighborhood!r}, "
            f"replacement={self.replacement!r}, blind_spot={self.blind_spot.spec!r})"
        )

    def scheme_options(self) -> dict[str, Any]:
        """What the model file records: the blind spot (which the denoiser applies: ``pd:2``
        models are applied to the 2 x 2 polyphase sub-images) and the noise correlation it was
        chosen from, when measured."""
        options: dict[str, Any] = {"blind_spot": self.blind_spot.spec}
        if self.noise_correlation is not None:
            options["noise_correlation"] = self.noise_correlation
        return options

    @property
    def network_tweaks(self) -> dict[str, Any]:
        """Network options the scheme calls for (apply with
        ``network_config.replace(**scheme.network_tweaks)``): none for N2V."""
        return {}

    def mask(self, batch: torch.Tensor, *, generator: torch.Generator) -> MaskedBatch:
        """Mask ``batch`` with this scheme's settings (see :func:`blind_spot_mask`; a ``pd``
        blind spot masks the sub-images of :meth:`training_view` pixel by pixel). Volumes
        ``(B, C, Z, Y, X)`` get the one-voxel 3D blind spot
        (:func:`~cryoden.training.blind_spot_3d.blind_spot_mask_3d`)."""
        if batch.ndim == 5:
            if self.blind_spot.kind != "pixel":
                raise ParameterError(
                    f"blind_spot {self.blind_spot.spec} is for images; volumes train with the "
                    "one-voxel blind spot (pixel)"
                )
            inputs, mask = blind_spot_mask_3d(
                batch, mask_fraction=self.mask_fraction, neighborhood=self.neighborhood,
                replacement=self.replacement, generator=generator,
            )  # fmt: skip
            return MaskedBatch(inputs=inputs, mask=mask)
        return blind_spot_mask(
            batch,
            mask_fraction=self.mask_fraction,
            neighborhood=self.neighborhood,
            replacement=self.replacement,
            generator=generator,
            blind_radius=self.blind_spot.radius,
        )

    def training_view(self, batch: torch.Tensor) -> torch.Tensor:
        """The patches the network trains on: ``batch`` itself, or for a ``pd:S`` blind spot
        its ``S x S`` pixel-shuffled sub-images (sides cropped to multiples of ``S``; images
        ``(B, C, H, W)`` only)."""
        if self.blind_spot.kind != "pd" or batch.ndim != 4:
            return batch
        stride = self.blind_spot.stride
        return pd_split(pd_crop(batch, stride), stride)

    def apply_model(self, network: nn.Module, images: torch.Tensor) -> torch.Tensor:
        """The model's output for noisy ``images`` ``(B, 1, H, W)`` as the denoiser computes
        it: the network on the images, or for ``pd:2`` on their four polyphase sub-images,
        merged (:func:`cryoden.nets.polyphase.merge_polyphase`)."""
        if self.blind_spot.kind != "pd":
            return network(images)
        shape = (int(images.shape[-2]), int(images.shape[-1]))
        return merge_polyphase(network(split_polyphase(images)), shape)

    def loss(
        self, network: nn.Module, batch: torch.Tensor, *, generator: torch.Generator
    ) -> torch.Tensor:
        """Masked loss: mask pixels, predict the patch, compare at the masked pixels only.

        Parameters
        ----------
        network
            Maps ``(B, 1, P, P)`` to ``(B, 1, P, P)``.
        batch
            ``(B, 1, P, P)`` noisy patches (the targets at the masked pixels).
        generator
            CPU generator drawing the masked positions and the replacements.
        """
        self._check_network(network)
        batch = self.training_view(batch)
        masked = self.mask(batch, generator=generator)
        prediction = network(masked.inputs)
        return regression_loss(prediction, batch.detach(), self.loss_kind, mask=masked.mask)

    def validation_loss(self, network: nn.Module, batch: torch.Tensor) -> torch.Tensor:
        """Masked loss with a generator seeded with ``validation_seed`` (deterministic)."""
        generator = torch.Generator().manual_seed(self.validation_seed)
        return self.loss(network, batch, generator=generator)

    def _check_network(self, network: nn.Module) -> None:
        """Warn once when the network lacks the options of :attr:`network_tweaks`."""
        if self._network_checked:
            return
        self._network_checked = True
        config = getattr(network, "config", None)
        wrong = {
            key: getattr(config, key)
            for key, value in self.network_tweaks.items()
            if getattr(config, key, value) != value
        }
        if wrong:
            logger.warning(
                "%s expects a network with %s, got %s: checkerboard artefacts may remain",
                type(self).__name__,
                self.network_tweaks,
                wrong,
            )


class N2V2(Noise2Void):
    """The N2V2 training scheme (``"n2v2"``): Noise2Void with median replacement, for the
    blur-pool U-Net without top-level skip (:func:`n2v2_network_config`).

    Credit: Höck, Buchholz, Brachmann, Jug & Krull, "N2V2 - Fixing Noise2Void Checkerboard
    Artifacts with Modified Sampling Strategies and a Tweaked Network Architecture", ECCV
    Workshops 2022. It logs a warning when trained on a network without the N2V2 options.
    Parameters as :class:`Noise2Void` (``replacement`` defaults to ``"median"``).
    """

    name = "n2v2"
    default_replacement: Replacement = "median"

    @property
    def network_tweaks(self) -> dict[str, Any]:
        """Blur-pool downsampling and no top-level skip (:data:`N2V2_NETWORK_TWEAKS`)."""
        return dict(N2V2_NETWORK_TWEAKS)
