"""The volume inputs of ``cryoden train``: tomograms train a 3D network.

The data decides between 2D and 3D: when the inputs are volumes
(:func:`cryoden.io.mrc_slabs.is_volume_path`: several sections, not ``.mrcs``, a volume by its
header), training builds a volume dataset (:mod:`cryoden.training.volumes`: memory-mapped,
patches inside the sample) and the scheme's 3D default network
(:data:`cryoden.training.defaults.DEFAULT_UNET_3D`); the model file records ``dims=3``.

- ``n2n``/``care``: ``--a``/``--b`` specs matched by relative path (the even and odd half
  tomograms), or ``n2n --star tomograms.star`` (RELION 5: ``rlnTomoReconstructedTomogramHalf1``
  and ``Half2``);
- ``n2v``: ``--images`` specs, or one ``tomograms.star`` (``rlnTomoReconstructedTomogram``).

``--mask`` says where patches come from: ``auto`` (the default for volumes: cells of high local
variance, see :mod:`cryoden.training.volume_regions`), ``none`` (everywhere off the
reconstruction's edges), or mask files, one per input volume, in input order.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cryoden.errors import CryodenError, ParameterError
from cryoden.io.images import export_comparison
from cryoden.io.inputs import expand_inputs, pair_inputs, spread_indices
from cryoden.io.mrc_slabs import VolumeReader, is_volume_path
from cryoden.io.tomograms_star import is_tomograms_star, read_tomograms_star
from cryoden.models import load_model
from cryoden.training.volumes import (
    MaskInput,
    VolumeDataset,
    VolumePairDataset,
    VolumeSingleDataset,
)

logger = logging.getLogger("cryoden.cli.train")

#: Sections, and side in voxels, of the centre crop the training preview denoises.
PREVIEW_DEPTH_PX = 32
PREVIEW_SIDE_PX = 256


@dataclass
class VolumeInputs:
    """A volume dataset built from the command line's inputs, what the training log records
    about it, and the centre crop of the first volume for the preview."""

    dataset: VolumeDataset
    summary: dict[str, Any]
    preview: np.ndarray


def _all_volumes(paths: Sequence[Path]) -> bool:
    """True when every path is a volume, False when none is; mixed inputs are refused."""
    kinds = [is_volume_path(p) for p in paths]
    if any(kinds) and not all(kinds):
        volume = paths[kinds.index(True)]
        image = paths[kinds.index(False)]
        raise ParameterError(
            f"the inputs mix volumes ({volume}) and 2D images or stacks ({image}); train on "
            "one kind"
        )
    return bool(kinds) and all(kinds)


def mask_input(mask: str | Path | None, n_volumes: int) -> MaskInput:
    """``--mask`` as the dataset takes it: ``"auto"`` when not given, ``"auto"``/``"none"``,
    or one mask file for every volume (which must all have its shape)."""
    if mask is None or str(mask) == "auto":
        return "auto"
    if str(mask) == "none":
        return "none"
    return [Path(mask)] * n_volumes


def preview_crop(path: Path) -> np.ndarray:
    """The centre crop (:data:`PREVIEW_DEPTH_PX` sections of :data:`PREVIEW_SIDE_PX` square)
    of a volume file, read by sections."""
    reader = VolumeReader(path)
    nz, ny, nx = reader.shape
    z0 = max(0, (nz - PREVIEW_DEPTH_PX) // 2)
    y0, x0 = max(0, (ny - PREVIEW_SIDE_PX) // 2), max(0, (nx - PREVIEW_SIDE_PX) // 2)
    sections = reader.sections(z0, min(nz, z0 + PREVIEW_DEPTH_PX))
    return sections[:, y0 : y0 + PREVIEW_SIDE_PX, x0 : x0 + PREVIEW_SIDE_PX].copy()


def _subset(items: list[Any], max_files: int | None) -> list[Any]:
    return [items[i] for i in spread_indices(len(items), max_files)]


def volume_pair_inputs(
    a: Path | None,
    b: Path | None,
    *,
    star: Path | None,
    fit_on: str,
    mask: str | Path | None,
    max_files: int | None = None,
) -> VolumeInputs | None:
    """Pairs of volumes for ``n2n``/``care``, or None when the inputs are 2D images (the 2D
    path reads them). ``star``: a ``tomograms.star`` (its halves)."""
    if star is not None:
        if not is_tomograms_star(star):
            return None
        if a is not None or b is not None:
            raise ParameterError("give either --star or --a and --b, not both")
        tomograms = read_tomograms_star(star, need="halves")
        pairs = [entry.halves for entry in tomograms.entries]
        summary: dict[str, Any] = {"star": str(star)}
    else:
        if a is None or b is None:
            return None
        a_set, b_set = expand_inputs([a]), expand_inputs([b])
        if not _all_volumes(a_set.paths):
            return None
        pairs = list(pair_inputs(a_set, b_set, a_name=f"--a {a}", b_name=f"--b {b}"))
        summary = {"a": str(a), "b": str(b)}
    chosen = _subset([p for p in pairs if p is not None], max_files)
    dataset = VolumePairDataset(chosen, mask=mask_input(mask, len(chosen)), fit_on=fit_on)
    summary.update(dataset.summary())
    return VolumeInputs(dataset, summary, preview_crop(chosen[0][0]))


def volume_single_inputs(
    specs: Sequence[Path],
    *,
    mask: str | Path | None,
    max_files: int | None = None,
) -> VolumeInputs | None:
    """Single volumes for ``n2v``, or None when the inputs are 2D images. One
    ``tomograms.star`` gives its reconstructed tomograms."""
    if len(specs) == 1 and is_tomograms_star(specs[0]):
        tomograms = read_tomograms_star(specs[0], need="tomogram")
        paths = [entry.tomogram for entry in tomograms.entries if entry.tomogram is not None]
    else:
        paths = expand_inputs(list(specs)).paths
        if not _all_volumes(paths):
            return None
    chosen = _subset(list(paths), max_files)
    dataset = VolumeSingleDataset(chosen, mask=mask_input(mask, len(chosen)))
    summary = {"images": [str(s) for s in specs], **dataset.summary()}
    return VolumeInputs(dataset, summary, preview_crop(chosen[0]))


def write_volume_preview(out: Path, crop: np.ndarray, device: str | None) -> Path | None:
    """Denoise ``crop`` with the 3D model just written at ``out`` and write its middle section
    beside the raw one (``preview.png`` in a model folder, ``<out>.preview.png`` beside a
    file); a preview that cannot be made is logged, never fatal."""
    from cryoden.inference.volume import VolumeDenoiser

    path = out / "preview.png" if out.is_dir() else Path(f"{out}.preview.png")
    try:
        denoised = VolumeDenoiser(load_model(out), device=device)(crop)
        middle = crop.shape[0] // 2
        export_comparison(path, crop[middle], denoised[middle])
    except CryodenError as exc:
        logger.warning("no preview: %s", exc)
        return None
    logger.info("preview (middle section, raw | denoised, same contrast): %s", path)
    return path
