"""Training data from volumes (tomograms): patches drawn from memory-mapped files.

The 3D counterpart of :mod:`cryoden.training.data`. A volume dataset never loads its volumes:
each is a :class:`~cryoden.io.mrc_slabs.VolumeReader` (``mrcfile``-style memory map) or an
in-memory :class:`~cryoden.io.mrc_slabs.ArrayVolume`, and a batch of patches ``(B, C, P, P, P)``
is cut from the maps and normalised patch by patch.

- **Normalisation**: one robust center and scale per tomogram (per pair of halves for
  Noise2Noise, fitted on both halves together, or on ``a`` alone for CARE), fitted on a regular
  voxel sample (:func:`~cryoden.io.mrc_slabs.voxel_sample`), exactly as the volume denoiser fits
  its inputs (:mod:`cryoden.inference.volume`).
- **Where**: patches lie inside each volume's :class:`~cryoden.training.volume_regions.SamplingRegion`
  (off the reconstruction's edges; centres in the sample by local variance, a given mask, or a
  slab ``z_range``).
- **Augmentation**: flips along z, y and x (8 combinations), the same for every channel. No 90°
  rotations: a tomogram's missing wedge and its noise are not symmetric under swapping axes, and
  flips keep both.
- **Validation**: each volume's region is split (:meth:`SamplingRegion.split`), so validation
  patches never share a voxel with training patches.

:meth:`VolumeDataset.training_data` gives the :class:`VolumeTrainingData` that
:func:`cryoden.training.loop.train` runs on.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from cryoden.errors import InputFileError, ParameterError
from cryoden.io.mrc_slabs import ArrayVolume, VolumeReader
from cryoden.models.normalization import NormalizationSpec, RobustNormalization
from cryoden.training.data import PAIR_FITS
from cryoden.training.splits import TrainingData
from cryoden.training.volume_regions import (
    CELL_PX,
    EDGE_FRACTION,
    SamplingRegion,
    local_variance_cells,
    mask_cells,
    variance_mask,
)

logger = logging.getLogger(__name__)

#: A volume given to a dataset: a file path, an array ``(Z, Y, X)``, or an opened volume.
VolumeInput = str | os.PathLike[str] | np.ndarray | VolumeReader | ArrayVolume
Volume = VolumeReader | ArrayVolume
#: Where patches come from: ``"auto"`` (local variance), ``"none"`` (everywhere off the
#: edges), or one boolean mask ``(Z, Y, X)`` (array or MRC file) per volume.
MaskInput = Literal["auto", "none"] | Sequence[np.ndarray | str | os.PathLike[str]]
#: Training schemes that train on volumes (pairs for ``n2n``/``care``, single volumes for the
#: blind-spot schemes).
VOLUME_SCHEMES: tuple[str, ...] = ("n2n", "care", "n2v", "n2v2")


def open_volume(volume: VolumeInput, name: str) -> Volume:
    """A :class:`VolumeReader` for a path, an :class:`ArrayVolume` for an array."""
    if isinstance(volume, (VolumeReader, ArrayVolume)):
        return volume
    if isinstance(volume, np.ndarray):
        return ArrayVolume(volume, name=name)
    return VolumeReader(volume)


def volume_name(volume: Volume) -> str:
    """The file of a volume, or its name."""
    return str(volume.path) if isinstance(volume, VolumeReader) else volume.name


def _check_finite_cells(volume: Volume, cell_px: int) -> np.ndarray:
    """Scan ``volume`` once: refuse NaN or infinite values (naming the file), and return its
    local-variance cells."""

    def read(start: int, stop: int) -> np.ndarray:
        sections = volume.sections(start, stop)
        if not np.isfinite(sections).all():
            bad = int(sections.size - np.count_nonzero(np.isfinite(sections)))
            problem = f"contains NaN or infinite values ({bad} in sections {start}-{stop - 1})"
            if isinstance(volume, VolumeReader):
                raise InputFileError(volume.path, problem)
            raise ParameterError(f"{volume.name} {problem}")
        return sections

    return local_variance_cells(read, volume.shape, cell_px=cell_px)


def _given_mask(mask: np.ndarray | str | os.PathLike[str], volume: Volume) -> np.ndarray:
    """A user's mask as a boolean voxel array of the volume's shape."""
    if isinstance(mask, np.ndarray):
        array = mask
        where = f"the mask of {volume_name(volume)}"
    else:
        reader = VolumeReader(mask)
        array = reader.memmap
        where = str(mask)
    if tuple(array.shape) != volume.shape:
        problem = f"has shape {tuple(array.shape)}, the volume {volume_name(volume)} {volume.shape}"
        if isinstance(mask, np.ndarray):
            raise ParameterError(f"{where} {problem}")
        raise InputFileError(mask, problem)
    return np.asarray(array) != 0


@dataclass
class _Entry:
    """One training volume: its channels (one volume, or two halves), their normalisation and
    the sampling region."""

    channels: list[Volume]
    normalization: RobustNormalization
    region: SamplingRegion
    name: str

    def patch(self, corner: np.ndarray, size: int, flips: np.ndarray) -> np.ndarray:
        """The normalised ``(C, size, size, size)`` patch at ``corner``, flipped along the axes
        where ``flips`` is set."""
        z, y, x = (int(v) for v in corner)
        parts = []
        for volume in self.channels:
            raw = np.asarray(volume.memmap[z : z + size, y : y + size, x : x + size])
            parts.append(self.normalization.apply(raw))
        out = np.stack(parts)
        axes = tuple(1 + a for a in range(3) if flips[a])
        return np.flip(out, axis=axes) if axes else out


class VolumeDataset:
    """Training volumes and how patches are drawn from them.

    Build one with :class:`VolumePairDataset` or :class:`VolumeSingleDataset`.
    """

    channels: int = 1
    fit_on: str | None = None

    def __init__(
        self,
        entries: list[_Entry],
        normalization: NormalizationSpec,
        mask_kind: str,
    ) -> None:
        if not entries:
            raise ParameterError("no training volumes given")
        self.entries = entries
        self.normalization = normalization
        self.mask_kind = mask_kind

    @property
    def sources(self) -> list[str]:
        """The volumes' files (or names)."""
        return [entry.name for entry in self.entries]

    @property
    def volumes(self) -> list[Any]:
        """The first channel of each volume as an array or memory map ``(Z, Y, X)``, raw (not
        normalised): what the blind-spot schemes measure the noise of."""
        return [entry.channels[0].memmap for entry in self.entries]

    @property
    def shapes(self) -> list[tuple[int, int, int]]:
        """``(Z, Y, X)`` of each volume."""
        return [entry.channels[0].shape for entry in self.entries]

    def __len__(self) -> int:
        return len(self.entries)

    def summary(self) -> dict[str, Any]:
        """JSON-ready description: counts, shapes, channels, sampling regions."""
        return {
            "dims": 3,
            "n_volumes": len(self),
            "shapes": [list(s) for s in sorted(set(self.shapes))],
            "channels": self.channels,
            "sampling_mask": self.mask_kind,
            "regions": [entry.region.summary() for entry in self.entries],
        }

    def check_patch(self, patch: int) -> None:
        """Refuse, before training, a patch that no volume's sampling region has room for."""
        for entry in self.entries:
            if not entry.region.fits(patch):
                (z0, z1), (y0, y1), (x0, x1) = entry.region.bounds
                problem = (
                    f"has no room for {patch}-voxel patches inside its sampling region "
                    f"(z {z0}-{z1}, y {y0}-{y1}, x {x0}-{x1}); use a smaller patch"
                )
                if isinstance(entry.channels[0], VolumeReader):
                    raise InputFileError(entry.name, problem)
                raise ParameterError(f"{entry.name} {problem}")

    def training_data(
        self,
        val_volumes: VolumeDataset | None,
        *,
        validation_fraction: float,
        patch: int,
    ) -> VolumeTrainingData:
        """The run's training and validation regions: ``val_volumes`` for validation when
        given, else each volume's region split (:meth:`SamplingRegion.split`)."""
        self.check_patch(patch)
        train = [(entry, entry.region) for entry in self.entries]
        validation: list[tuple[_Entry, SamplingRegion]] = []
        if val_volumes is not None:
            val_volumes.check_patch(patch)
            validation = [(entry, entry.region) for entry in val_volumes.entries]
            which = f"{len(validation)} given volume(s)"
        elif validation_fraction > 0:
            train = []
            for entry in self.entries:
                part, held = entry.region.split(validation_fraction, patch)
                train.append((entry, part))
                if held is not None:
                    validation.append((entry, held))
            which = f"held-out slabs of {len(validation)} volume(s)" if validation else "none"
        else:
            which = "none"
        if which == "none":
            logger.info("validation: none (the training loss picks the best epoch)")
        else:
            logger.info("validation: %s", which)
        summary = {**self.summary(), "validation": which, "n_train_images": len(train)}
        summary["n_validation_images"] = len(validation)
        return VolumeTrainingData(
            train=[], validation=[], summary=summary, normalization=self.normalization,
            pair_fit_on=self.fit_on, train_regions=train, validation_regions=validation,
            channels=self.channels,
        )  # fmt: skip


def _build_regions(
    volumes: Sequence[Volume],
    mask: MaskInput,
    *,
    z_range: tuple[int, int] | None,
    edge_fraction: float,
) -> tuple[list[SamplingRegion], str]:
    """Each volume's sampling region (and scan for NaN), and the kind of mask used."""
    if isinstance(mask, str) and mask not in ("auto", "none"):
        raise ParameterError(f"mask must be 'auto', 'none' or one mask per volume, got {mask!r}")
    if not isinstance(mask, str) and len(mask) != len(volumes):
        raise ParameterError(f"give one mask per volume ({len(volumes)}), got {len(mask)}")
    regions = []
    for i, volume in enumerate(volumes):
        variances = _check_finite_cells(volume, CELL_PX)
        if mask == "auto":
            cells = variance_mask(variances)
        elif mask == "none":
            cells = None
        else:
            cells = mask_cells(_given_mask(mask[i], volume))
        region = SamplingRegion.build(
            volume.shape, cells, z_range=z_range, edge_fraction=edge_fraction
        )
        logger.info(
            "%s: patches from %.0f%% of its cells (%s mask)",
            volume_name(volume), 100 * float(region.cells.mean()),
            mask if isinstance(mask, str) else "given",
        )  # fmt: skip
        regions.append(region)
    return regions, mask if isinstance(mask, str) else "given"


class VolumePairDataset(VolumeDataset):
    """Pairs of volumes ``(a, b)`` of one shape: the even and odd half tomograms
    (Noise2Noise), or noisy and clean volumes (CARE, ``fit_on="a"``).

    Parameters
    ----------
    pairs
        ``(a, b)`` per tomogram: paths, arrays ``(Z, Y, X)`` or opened volumes.
    normalization
        The normalisation method; fitted per pair on both volumes' voxel samples together
        (``fit_on="both"``) or on ``a``'s alone (``"a"``).
    mask
        ``"auto"``, ``"none"`` or one mask per pair (see :data:`MaskInput`).
    z_range
        Optional slab ``[z0, z1)`` patches must lie in.
    edge_fraction
        Share of each axis cut off at each end (the reconstruction's edges).
    fit_on
        ``"both"`` or ``"a"``.

    Raises
    ------
    InputFileError
        For unreadable files, NaN or infinite values, or halves of different shapes (naming
        the file).
    """

    channels = 2

    def __init__(
        self,
        pairs: Sequence[tuple[VolumeInput, VolumeInput]],
        *,
        normalization: NormalizationSpec | None = None,
        mask: MaskInput = "auto",
        z_range: tuple[int, int] | None = None,
        edge_fraction: float = EDGE_FRACTION,
        fit_on: str = "both",
    ) -> None:
        if fit_on not in PAIR_FITS:
            raise ParameterError(f"fit_on must be one of {', '.join(PAIR_FITS)}, got {fit_on!r}")
        spec = normalization or NormalizationSpec()
        opened = []
        for i, (a, b) in enumerate(pairs):
            va, vb = open_volume(a, f"pair {i} volume a"), open_volume(b, f"pair {i} volume b")
            if va.shape != vb.shape:
                problem = f"has shape {vb.shape}, its partner {volume_name(va)} {va.shape}"
                if isinstance(vb, VolumeReader):
                    raise InputFileError(vb.path, problem)
                raise ParameterError(f"{volume_name(vb)} {problem}")
            opened.append((va, vb))
        if not opened:
            raise ParameterError("no training volume pairs given")
        regions, kind = _build_regions(
            [a for a, _ in opened], mask, z_range=z_range, edge_fraction=edge_fraction
        )
        for (_, b), region in zip(opened, regions):
            _check_finite_cells(b, region.cell_px)
        entries = []
        for (a, b), region in zip(opened, regions):
            sample = a.voxel_sample()
            if fit_on == "both":
                sample = np.concatenate([sample, b.voxel_sample()])
            entries.append(_Entry([a, b], spec.fit(sample), region, volume_name(a)))
        super().__init__(entries, spec, kind)
        self.fit_on = fit_on


class VolumeSingleDataset(VolumeDataset):
    """Single noisy volumes (the blind-spot schemes), each normalised on its own voxel sample.

    Parameters are those of :class:`VolumePairDataset`, with ``volumes`` one per tomogram.
    """

    channels = 1

    def __init__(
        self,
        volumes: Sequence[VolumeInput],
        *,
        normalization: NormalizationSpec | None = None,
        mask: MaskInput = "auto",
        z_range: tuple[int, int] | None = None,
        edge_fraction: float = EDGE_FRACTION,
    ) -> None:
        spec = normalization or NormalizationSpec()
        opened = [open_volume(v, f"volume {i}") for i, v in enumerate(volumes)]
        if not opened:
            raise ParameterError("no training volumes given")
        regions, kind = _build_regions(opened, mask, z_range=z_range, edge_fraction=edge_fraction)
        entries = [
            _Entry([v], spec.fit(v.voxel_sample()), region, volume_name(v))
            for v, region in zip(opened, regions)
        ]
        super().__init__(entries, spec, kind)


def sample_volume_patches(
    regions: Sequence[tuple[_Entry, SamplingRegion]],
    *,
    patch: int,
    batch: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """Draw ``batch`` normalised patches ``(batch, C, patch, patch, patch)``: a volume in
    proportion to its allowed cells, a position inside its region
    (:meth:`SamplingRegion.draw`), and one of the 8 flip combinations; the draw depends on
    ``generator`` alone."""
    if not regions:
        raise ParameterError("no volumes to sample patches from")
    weights = torch.tensor(
        [float(len(region.allowed_cells(patch))) for _, region in regions], dtype=torch.float64
    )
    if not float(weights.sum()) > 0:
        raise ParameterError(f"no room for {patch}-voxel patches in any sampling region")
    which = torch.multinomial(weights, batch, replacement=True, generator=generator).numpy()
    flips = torch.randint(0, 2, (batch, 3), generator=generator).numpy().astype(bool)
    channels = len(regions[0][0].channels)
    out = np.empty((batch, channels, patch, patch, patch), dtype=np.float32)
    for k in range(len(regions)):
        chosen = np.flatnonzero(which == k)
        if chosen.size == 0:
            continue
        entry, region = regions[k]
        corners = region.draw(int(chosen.size), patch, generator)
        for i, corner in zip(chosen, corners):
            out[i] = entry.patch(corner, patch, flips[i])
    return torch.from_numpy(out)


@dataclass
class VolumeTrainingData(TrainingData):
    """The volumes of a training run: :class:`~cryoden.training.splits.TrainingData` whose
    ``train`` and ``validation`` lists are empty, with the regions patches are drawn from."""

    train_regions: list[tuple[_Entry, SamplingRegion]] = field(default_factory=list)
    validation_regions: list[tuple[_Entry, SamplingRegion]] = field(default_factory=list)
    channels: int = 1

    @property
    def has_validation(self) -> bool:
        """Whether there are validation regions."""
        return bool(self.validation_regions)

    def sample(
        self, *, patch: int, batch: int, generator: torch.Generator, validation: bool = False
    ) -> torch.Tensor:
        """A batch of training (or validation) patches ``(batch, C, P, P, P)``."""
        regions = self.validation_regions if validation else self.train_regions
        return sample_volume_patches(regions, patch=patch, batch=batch, generator=generator)

    def preview_volume(self) -> tuple[Volume, RobustNormalization]:
        """The first training volume (its first channel) and its normalisation."""
        entry = self.train_regions[0][0]
        return entry.channels[0], entry.normalization


def volume_training_data(
    train_volumes: VolumeDataset,
    val_volumes: object,
    *,
    validation_fraction: float,
    patch: int,
) -> VolumeTrainingData:
    """:meth:`VolumeDataset.training_data`, refusing validation data that are not volumes."""
    if val_volumes is not None and not isinstance(val_volumes, VolumeDataset):
        raise ParameterError("training volumes need validation volumes (a volume dataset)")
    return train_volumes.training_data(
        val_volumes, validation_fraction=validation_fraction, patch=patch
    )


def check_dims(scheme_name: str, scheme_channels: int, dims: int, data: TrainingData) -> None:
    """Refuse a network whose ``dims`` do not match the data (images need 2, volumes 3), a
    scheme that does not train on volumes (:data:`VOLUME_SCHEMES`), and volumes with the wrong
    number of channels for the scheme."""
    volumes = isinstance(data, VolumeTrainingData)
    if dims != (3 if volumes else 2):
        have, need = ("volumes", 3) if volumes else ("2D images", 2)
        raise ParameterError(
            f"a {dims}D network cannot train on {have}; use a network with dims={need}"
        )
    if not volumes:
        return
    assert isinstance(data, VolumeTrainingData)
    if scheme_name not in VOLUME_SCHEMES:
        raise ParameterError(
            f"scheme {scheme_name} does not train on volumes; use one of "
            f"{', '.join(VOLUME_SCHEMES)}"
        )
    if data.channels != scheme_channels:
        kind = "pairs of volumes" if scheme_channels == 2 else "single volumes"
        raise ParameterError(f"scheme {scheme_name} needs {kind}")
