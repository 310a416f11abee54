"""The Noise2Void manipulation on 2D batches: stratified masked pixels, replacement values
from each one's neighbourhood, and the structured blind spot's boxes around them.

Masking is *strict*: replacement values never come from another masked pixel, so no masked
pixel's own value re-enters the input anywhere, and the prediction at a masked pixel does not
depend on that pixel's noisy value (the reference implementations copy from the original patch
and can leak a value when two masked pixels are neighbours). The schemes that use this are in
:mod:`cryoden.training.noise2void`; the 3D form is :mod:`cryoden.training.blind_spot_3d`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import torch

from cryoden.errors import ParameterError
from cryoden.training.blind_spot import structured_blind_mask, structured_cell_size
from cryoden.training.blind_spot_3d import pick_replacement, reflect_index

Replacement = Literal["random", "median"]


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
    check_neighborhood(neighborhood)
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


def check_neighborhood(neighborhood: int) -> None:
    if isinstance(neighborhood, bool) or not isinstance(neighborhood, int):
        raise ParameterError(f"neighborhood must be an odd integer >= 3, got {neighborhood!r}")
    if neighborhood < 3 or neighborhood % 2 == 0:
        raise ParameterError(f"neighborhood must be an odd integer >= 3, got {neighborhood}")
