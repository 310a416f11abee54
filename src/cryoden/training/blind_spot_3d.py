"""The Noise2Void blind spot in volumes: mask voxels, replace them from their 3D neighbourhood.

The 3D form of :func:`cryoden.training.noise2void.blind_spot_mask`, for batches
``(B, C, Z, Y, X)``: one voxel per ``cell x cell x cell`` stratification cell is masked (``cell =
round(mask_fraction ** (-1/3))``, so the realised fraction is ``1 / cell**3``), and each masked
voxel's value is replaced by a value from its ``neighborhood``-cube (mirrored at the patch
faces), never its own and never another masked voxel's: the masking is strict, as in 2D, so the
prediction at a masked voxel cannot depend on its noisy value. ``"random"`` takes one candidate
uniformly at random, ``"median"`` their median (N2V2).
"""

from __future__ import annotations

import math

import torch

from cryoden.errors import ParameterError


def mask_cell_size_3d(mask_fraction: float) -> int:
    """Side of the cubic stratification cell that masks ``mask_fraction`` of the voxels
    (at least 2: one voxel in 8).

    Raises
    ------
    ParameterError
        If ``mask_fraction`` is not in (0, 0.25].
    """
    if not math.isfinite(mask_fraction) or not 0.0 < mask_fraction <= 0.25:
        raise ParameterError(f"mask_fraction must be in (0, 0.25], got {mask_fraction}")
    return max(2, round(mask_fraction ** (-1.0 / 3.0)))


def stratified_coordinates_3d(
    shape: tuple[int, ...], *, cell: int, generator: torch.Generator
) -> tuple[torch.Tensor, ...]:
    """At most one random voxel per ``cell``-cube of each volume of a ``(B, C, Z, Y, X)``
    batch (cells tiled from the first corner; a position falling outside is dropped).
    Returns ``(b, c, z, y, x)`` int64 index vectors on the generator's device."""
    batch, channels, depth, height, width = shape
    n_z, n_y, n_x = (math.ceil(s / cell) for s in (depth, height, width))
    device = generator.device
    offsets = torch.randint(
        0, cell, (batch, channels, n_z, n_y, n_x, 3), generator=generator, device=device
    )
    z = torch.arange(n_z, device=device).view(1, 1, n_z, 1, 1) * cell + offsets[..., 0]
    y = torch.arange(n_y, device=device).view(1, 1, 1, n_y, 1) * cell + offsets[..., 1]
    x = torch.arange(n_x, device=device).view(1, 1, 1, 1, n_x) * cell + offsets[..., 2]
    b = torch.arange(batch, device=device).view(batch, 1, 1, 1, 1).expand_as(z)
    c = torch.arange(channels, device=device).view(1, channels, 1, 1, 1).expand_as(z)
    keep = (z < depth) & (y < height) & (x < width)
    return b[keep], c[keep], z[keep], y[keep], x[keep]


#: How a masked pixel's input value is replaced.
REPLACEMENTS: tuple[str, ...] = ("random", "median")


def pick_replacement(
    values: torch.Tensor, candidate: torch.Tensor, replacement: str, generator: torch.Generator
) -> torch.Tensor:
    """One replacement per row of ``values`` ``(n, window)`` from its ``candidate`` entries:
    a random one or their median. A row without candidates gets 0 (the normalised images'
    centre), never anything that could leak the masked value."""
    none = ~candidate.any(dim=1)
    if replacement == "random":
        weights = candidate.to(device=generator.device, dtype=torch.float32)
        weights[none.to(generator.device)] = 1.0  # keeps multinomial defined; overridden below
        pick = torch.multinomial(weights, 1, generator=generator).to(values.device)
        chosen = values.gather(1, pick).squeeze(1)
        return torch.where(none, torch.zeros_like(chosen), chosen)
    if replacement == "median":
        nan = torch.full_like(values, float("nan"))
        median = torch.nanmedian(torch.where(candidate, values, nan), dim=1).values
        return torch.where(none, torch.zeros_like(median), median)
    raise ParameterError(
        f"replacement must be one of {', '.join(REPLACEMENTS)}, got {replacement!r}"
    )


def reflect_index(index: torch.Tensor, size: int) -> torch.Tensor:
    """Mirror indices into ``[0, size)`` without repeating the edge (numpy's ``reflect``)."""
    index = torch.where(index < 0, -index, index)
    return torch.where(index >= size, 2 * (size - 1) - index, index)


def replacement_values_3d(
    volumes: torch.Tensor,
    mask: torch.Tensor,
    coords: tuple[torch.Tensor, ...],
    *,
    neighborhood: int,
    replacement: str,
    generator: torch.Generator,
) -> torch.Tensor:
    """One replacement value per masked voxel (see the module docstring); differentiable with
    respect to ``volumes``. A voxel without candidates (a degenerate tiny patch) gets 0, the
    normalised volumes' centre."""
    _, _, depth, height, width = volumes.shape
    b, c, z, y, x = coords
    radius = neighborhood // 2
    steps = torch.arange(-radius, radius + 1, device=volumes.device)
    dz, dy, dx = (d.reshape(1, -1) for d in torch.meshgrid(steps, steps, steps, indexing="ij"))
    nz = reflect_index(z[:, None] + dz, depth)
    ny = reflect_index(y[:, None] + dy, height)
    nx = reflect_index(x[:, None] + dx, width)
    bb, cc = b[:, None].expand_as(nz), c[:, None].expand_as(nz)
    itself = (nz == z[:, None]) & (ny == y[:, None]) & (nx == x[:, None])
    candidate = ~mask[bb, cc, nz, ny, nx] & ~itself
    values = volumes[bb, cc, nz, ny, nx]
    return pick_replacement(values, candidate, replacement, generator)


def blind_spot_mask_3d(
    volumes: torch.Tensor,
    *,
    mask_fraction: float,
    neighborhood: int = 5,
    replacement: str = "random",
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask a stratified random set of voxels of each volume of a ``(B, C, Z, Y, X)`` batch.

    Returns ``(inputs, mask)``: the batch with every masked voxel replaced, and the boolean
    mask (True at the masked voxels). ``volumes`` is not modified.

    Raises
    ------
    ParameterError
        For a batch that is not 5D, a bad ``mask_fraction`` or ``neighborhood``, or patches
        too small for the neighbourhood.
    """
    if volumes.ndim != 5:
        raise ParameterError(f"expected a (B, C, Z, Y, X) batch, got shape {tuple(volumes.shape)}")
    if isinstance(neighborhood, bool) or neighborhood < 3 or neighborhood % 2 == 0:
        raise ParameterError(f"neighborhood must be an odd integer >= 3, got {neighborhood}")
    if min(volumes.shape[-3:]) <= neighborhood // 2:
        raise ParameterError(
            f"patches must be larger than neighborhood // 2 = {neighborhood // 2}, "
            f"got {tuple(volumes.shape[-3:])}"
        )
    cell = mask_cell_size_3d(mask_fraction)
    drawn = stratified_coordinates_3d(tuple(volumes.shape), cell=cell, generator=generator)
    coords = tuple(index.to(volumes.device) for index in drawn)
    mask = torch.zeros(volumes.shape, dtype=torch.bool, device=volumes.device)
    mask[coords] = True
    values = replacement_values_3d(
        volumes, mask, coords, neighborhood=neighborhood, replacement=replacement,
        generator=generator,
    )  # fmt: skip
    return volumes.index_put(coords, values), mask
