"""The Noise2Void blind spot in volumes: mask voxels, replace them from their 3D neighbourhood.

The 3D form of :func:`cryoden.training.noise2void.blind_spot_mask`, for batches
``(B, C, Z, Y, X)``: one voxel per ``cell x cell x cell`` stratification cell is masked (``cell =
round(mask_fraction ** (-1/3))``, so the realised fraction is ``1 / cell**3``), and each masked
voxel's value is replaced by a value from its ``neighborhood``-cube (mirrored at the patch
faces), never its own and never another masked voxel's: the masking is strict, as in 2D, so the
prediction at a masked voxel cannot depend on its noisy value. ``"random"`` takes one candidate
uniformly at random, ``"median"`` their median (N2V2).

Tomograms need more than one voxel: weighted back-projection correlates the reconstructed
noise between neighbouring voxels (positively along z, where the missing wedge leaves no
high frequencies, negatively along x, across the tilt axis, where the ramp filter boosts
them), and a one-voxel blind spot then learns to predict each voxel's noise from its
neighbours'. The structured blind spot (``blind_radius`` ``(rz, ry, rx)``, as in 2D, see
:mod:`cryoden.training.blind_spot`) hides a ``(2 rz + 1) x (2 ry + 1) x (2 rx + 1)`` box
around each masked voxel, every voxel of it replaced from outside the boxes.
:func:`measure_volume_noise_correlation` measures a tomogram's noise correlation along x, y and
z from single volumes, and :func:`resolve_volume_blind_spot` chooses the box from it
(``auto``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from cryoden.errors import ParameterError
from cryoden.metrics.noise_stats import noise_autocorrelation_single, noise_variance_single
from cryoden.training.blind_spot import (
    MEASURED_LAGS,
    BlindSpot,
    choose_blind_spot,
    correlated_noise_warning,
    parse_blind_spot,
)

logger = logging.getLogger(__name__)

#: Voxels the structured box reaches beyond the last lag measured as correlated, along an axis
#: whose noise is correlated (images take :data:`~cryoden.training.blind_spot.RADIUS_MARGIN`).
#: None: a box in a volume grows by a whole plane of voxels per step along an axis, hiding
#: far more of what the network predicts from than a row does in an image, and the
#: back-projected noise of tomograms is correlated over the measured lags only.
VOLUME_RADIUS_MARGIN = 0

#: Largest replacement window (voxels) whose every voxel is considered; larger (structured)
#: windows are sampled (see :func:`replacement_values_3d`).
FULL_WINDOW_MAX = 125
#: Offsets drawn per hidden voxel from a larger window.
SAMPLED_OFFSETS = 24
#: Sections of each volume the noise is measured on, per orientation (xy and xz sections).
MEASURE_SECTIONS = 8
#: Side of the central region of each section the noise is measured on, at most (voxels).
MEASURE_SECTION_SIDE = 256
#: Smallest side, in voxels, along every axis of a volume whose noise is measured.
MEASURE_MIN_SIDE_VOXELS = 16


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
    blind_radius: tuple[int, int, int] = (0, 0, 0),
) -> torch.Tensor:
    """One replacement value per masked voxel (see the module docstring); differentiable with
    respect to ``volumes``. With a structured blind spot (``blind_radius`` ``(rz, ry, rx)``)
    the window grows by the radius along each axis, so that a box of masked voxels still has
    candidates around it; a window of more than :data:`FULL_WINDOW_MAX` voxels is then
    represented by :data:`SAMPLED_OFFSETS` offsets drawn uniformly from it for each voxel (the
    first candidate among them is a uniform draw from the window's candidates; the median is
    taken over the drawn ones), which keeps the cost of masking small beside the network's. A
    voxel without candidates (a degenerate tiny patch) gets 0, the normalised volumes'
    centre."""
    _, _, depth, height, width = volumes.shape
    b, c, z, y, x = coords
    radius = neighborhood // 2
    steps = [torch.arange(-radius - r, radius + r + 1, device=volumes.device) for r in blind_radius]
    dz, dy, dx = (d.reshape(1, -1) for d in torch.meshgrid(*steps, indexing="ij"))
    if dz.shape[1] > FULL_WINDOW_MAX:
        drawn = torch.randint(
            0, dz.shape[1], (z.shape[0], SAMPLED_OFFSETS), generator=generator,
            device=generator.device,
        ).to(volumes.device)  # fmt: skip
        dz, dy, dx = (d[0][drawn] for d in (dz, dy, dx))
    nz = reflect_index(z[:, None] + dz, depth)
    ny = reflect_index(y[:, None] + dy, height)
    nx = reflect_index(x[:, None] + dx, width)
    bb, cc = b[:, None].expand_as(nz), c[:, None].expand_as(nz)
    itself = (nz == z[:, None]) & (ny == y[:, None]) & (nx == x[:, None])
    candidate = ~mask[bb, cc, nz, ny, nx] & ~itself
    values = volumes[bb, cc, nz, ny, nx]
    if replacement == "random" and dz.shape[1] == SAMPLED_OFFSETS and z.shape[0] > 0:
        first = candidate.to(torch.int8).argmax(dim=1, keepdim=True)  # the drawn order is random
        chosen = values.gather(1, first).squeeze(1)
        return torch.where(candidate.any(dim=1), chosen, torch.zeros_like(chosen))
    return pick_replacement(values, candidate, replacement, generator)


def structured_cell_size_3d(blind_radius: tuple[int, int, int]) -> int:
    """The smallest cubic stratification cell for a structured blind spot of radii ``(rz, ry,
    rx)``: twice the side of a cube of the box's volume (``(1, 0, 2)``: a 5 x 1 x 3 box, cells
    of 5 x 5 x 5), so that the boxes hide at most about an eighth of the voxels, the 3D form
    of the 2D rule (:func:`~cryoden.training.blind_spot.structured_cell_size`). Denser cells
    score more voxels per patch but hide so much of each one that the network, which sees no
    boxes at inference, learns from inputs unlike the ones it will denoise."""
    rz, ry, rx = blind_radius
    side = ((2 * rz + 1) * (2 * ry + 1) * (2 * rx + 1)) ** (1.0 / 3.0)
    return math.ceil(2.0 * side - 1e-9)


def structured_blind_mask_3d(
    mask: torch.Tensor, blind_radius: tuple[int, int, int]
) -> torch.Tensor:
    """The ``(B, C, Z, Y, X)`` boolean ``mask`` grown by a ``(2 rz + 1) x (2 ry + 1) x
    (2 rx + 1)`` box around every True voxel (clipped at the faces): the voxels a structured
    blind spot hides."""
    kernel = tuple(2 * r + 1 for r in blind_radius)
    grown = F.max_pool3d(mask.to(torch.float32), kernel_size=kernel, stride=1, padding=blind_radius)
    return grown > 0


def blind_spot_mask_3d(
    volumes: torch.Tensor,
    *,
    mask_fraction: float,
    neighborhood: int = 5,
    replacement: str = "random",
    generator: torch.Generator,
    blind_radius: tuple[int, int, int] = (0, 0, 0),
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask a stratified random set of voxels of each volume of a ``(B, C, Z, Y, X)`` batch.

    With a structured blind spot (``blind_radius`` ``(rz, ry, rx)`` not zero) every voxel of
    the box around each masked voxel is replaced too, with values from outside every box, and
    the cells are enlarged (:func:`structured_cell_size_3d`); the loss is still taken at the
    masked voxels alone.

    Returns ``(inputs, mask)``: the batch with every hidden voxel replaced, and the boolean
    mask (True at the masked voxels, the boxes around them excluded). ``volumes`` is not
    modified.

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
    radius = tuple(int(r) for r in blind_radius)
    if len(radius) != 3 or min(radius) < 0:
        raise ParameterError(f"blind_radius must be three radii >= 0, got {blind_radius!r}")
    structured = radius != (0, 0, 0)
    cell = mask_cell_size_3d(mask_fraction)
    if structured:
        cell = max(cell, structured_cell_size_3d(radius))
    drawn = stratified_coordinates_3d(tuple(volumes.shape), cell=cell, generator=generator)
    coords = tuple(index.to(volumes.device) for index in drawn)
    mask = torch.zeros(volumes.shape, dtype=torch.bool, device=volumes.device)
    mask[coords] = True
    blind, blind_coords = mask, coords
    if structured:
        blind = structured_blind_mask_3d(mask, radius)
        blind_coords = tuple(blind.nonzero(as_tuple=True))
    values = replacement_values_3d(
        volumes, blind, blind_coords, neighborhood=neighborhood, replacement=replacement,
        generator=generator, blind_radius=radius,
    )  # fmt: skip
    return volumes.index_put(blind_coords, values), mask


# --- measuring a volume's noise correlation, choosing the blind spot ----------------------


def _central(section: np.ndarray) -> np.ndarray:
    """The central :data:`MEASURE_SECTION_SIDE` square (at most) of a 2D section."""
    h, w = section.shape
    top = max(0, (h - MEASURE_SECTION_SIDE) // 2)
    left = max(0, (w - MEASURE_SECTION_SIDE) // 2)
    return np.asarray(
        section[top : top + MEASURE_SECTION_SIDE, left : left + MEASURE_SECTION_SIDE],
        dtype=np.float32,
    )


def _checked_volumes(volumes: Sequence[Any]) -> Sequence[Any]:
    """``volumes``, once each is known to be 3D and large enough to measure."""
    if len(volumes) == 0:
        raise ParameterError("no training volumes to measure the noise of")
    for volume in volumes:
        shape = tuple(getattr(volume, "shape", ()))
        if len(shape) != 3:
            raise ParameterError(f"expected volumes (Z, Y, X), got shape {shape}")
        if min(shape) < MEASURE_MIN_SIDE_VOXELS:
            raise ParameterError(
                f"measuring the noise needs volumes of at least {MEASURE_MIN_SIDE_VOXELS} "
                f"voxels along each axis, got {shape}"
            )
    return volumes


def _sections(volume: Any, axis: int) -> list[np.ndarray]:
    """Up to :data:`MEASURE_SECTIONS` sections of ``volume`` across ``axis`` (0: xy sections,
    1: xz sections), evenly spread over its central half; each read from a memory map alone."""
    n = int(volume.shape[axis])
    picks = np.unique(
        np.linspace(n // 4, max(n // 4, 3 * n // 4 - 1), MEASURE_SECTIONS).astype(int)
    )
    if axis == 0:
        return [_central(volume[int(i)]) for i in picks]
    return [_central(volume[:, int(i), :]) for i in picks]


def measure_volume_noise_correlation(
    volumes: Sequence[Any], *, max_lag: int = MEASURED_LAGS
) -> dict[str, list[float]]:
    """The noise correlation of single noisy volumes ``(Z, Y, X)`` at lags ``1..max_lag``
    voxels along x, y and z (``{"x": [...], "y": [...], "z": [...]}``), pooled over the volumes.

    x and y are read from xy sections, z from xz sections (along their first axis), a few of
    each from the central half of every volume, with the single-image measurement
    (:func:`cryoden.metrics.noise_stats.noise_autocorrelation_single`: the noise from the
    high-frequency band, which a tomogram's signal barely reaches). ``volumes`` are arrays or
    memory maps; only the sections are read.

    Raises
    ------
    ParameterError
        For no volumes, a volume that is not 3D, or one under
        :data:`MEASURE_MIN_SIDE_VOXELS` along an axis.
    """
    xy: list[np.ndarray] = []
    xz: list[np.ndarray] = []
    for volume in _checked_volumes(volumes):
        xy += _sections(volume, 0)
        xz += _sections(volume, 1)
    in_plane = noise_autocorrelation_single(xy, max_lag=max_lag)
    across = noise_autocorrelation_single(xz, max_lag=max_lag)  # its "y" is the volume's z
    measured = {"x": in_plane["x"], "y": in_plane["y"], "z": across["y"]}
    return {axis: [round(float(v), 4) for v in measured[axis]] for axis in ("x", "y", "z")}


def measure_volume_snr(volumes: Sequence[Any]) -> float:
    """The voxel SNR of single noisy volumes ``(Z, Y, X)``: ``(s - v) / v`` over the xy
    sections :func:`measure_volume_noise_correlation` reads, ``s`` their pooled variance and
    ``v`` the noise variance read from their high-frequency band
    (:func:`cryoden.metrics.noise_stats.noise_variance_single`). Overestimated where the signal
    has power in that band; can be negative near SNR 0.

    Raises
    ------
    ParameterError
        As :func:`measure_volume_noise_correlation`.
    """
    sections = [s for volume in _checked_volumes(volumes) for s in _sections(volume, 0)]
    noise = noise_variance_single(sections)  # refuses sections without noise
    total = float(np.var(np.stack(sections), dtype=np.float64))
    return (total - noise) / noise


def resolve_volume_blind_spot(
    blind_spot: str | BlindSpot, volumes: Sequence[Any]
) -> tuple[BlindSpot, dict[str, list[float]]]:
    """The blind spot to train on ``volumes`` with, and their measured noise correlation
    (:func:`measure_volume_noise_correlation`, recorded with the model): ``"auto"`` chooses
    from it (:func:`~cryoden.training.blind_spot.choose_blind_spot` along x, y and z, with
    :data:`VOLUME_RADIUS_MARGIN`); a given
    ``pixel`` or ``structured:X,Y[,Z]`` is kept, with a warning when plain masking meets noise
    the choice would mask.

    Raises
    ------
    ParameterError
        For ``pd:S``, which volumes do not support, or a bad measurement (see above).
    """
    parsed = parse_blind_spot(blind_spot)
    if parsed is not None and parsed.kind == "pd":
        raise ParameterError(
            f"blind_spot {parsed.spec} is for 2D images; volumes take pixel, structured:X,Y,Z "
            "or auto"
        )
    correlation = measure_volume_noise_correlation(volumes)
    logger.info(
        "noise correlation of the training volumes at lags 1-%d: %s",
        MEASURED_LAGS,
        "; ".join(f"{a} {', '.join(f'{v:.3f}' for v in correlation[a])}" for a in "xyz"),
    )
    if parsed is None:
        chosen = choose_blind_spot(correlation, margin=VOLUME_RADIUS_MARGIN)
        logger.info("blind spot: %s (auto)", chosen.spec)
        return chosen, correlation
    warning = correlated_noise_warning(correlation, "a one-voxel blind spot")
    if parsed.kind == "pixel" and warning is not None:
        logger.warning("%s", warning)
    return parsed, correlation
