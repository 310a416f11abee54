"""Which model a command uses, and the check of its inputs against a shipped model's range.

``denoise`` without ``--model`` uses the shipped general model and says so in one log line;
``--model general`` (or ``--init general`` for ``train``) names it. Resolution goes through
:func:`cryoden.models.registry.resolve_model`: a shipped model's exact name, else a path.

For a shipped model, the inputs are compared with the model's trained range
(:func:`cryoden.models.trained_range.check_input`) from their headers (memory-mapped: no data is
read but a central crop of the first input, whose denoising gives a rough noise level): a pixel
size or a noise level outside the range is a warning that says what is outside and what to do
(fine-tune, or train); a 3D volume is an error, in one line, before any output is written.
Models trained by users have no recorded range and are not checked.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from cryoden.errors import CryodenError, InputFileError
from cryoden.io.mapped import MappedMrc, map_mrc
from cryoden.models.registry import DEFAULT_MODEL, ShippedModel, resolve_model, shipped_model_at
from cryoden.models.trained_range import (
    RangeFinding,
    check_input,
    looks_like_volume,
    snr_from_denoised,
)

logger = logging.getLogger("cryoden.cli.model_choice")

#: Side of the central crop whose denoised copy gives the first input's noise estimate (px).
ESTIMATE_CROP_PX = 256


def advice(name: str) -> str:
    """What to do about inputs outside shipped model ``name``'s range."""
    return (
        f"check the output, and for this data fine-tune the model (cryoden train n2n ... "
        f"--init {name}) or train one (cryoden train)"
    )


def choose_model(model: str | os.PathLike[str] | None) -> Path:
    """The model folder or file to load: ``model`` resolved (a shipped model's name or a path),
    or the shipped default model when ``None`` (said in one log line)."""
    if model is None:
        folder = resolve_model(DEFAULT_MODEL)
        logger.info(
            "no --model given: using cryoden's shipped %r model (cryoden models info %s)",
            DEFAULT_MODEL, DEFAULT_MODEL,
        )  # fmt: skip
        return folder
    return resolve_model(model)


def _central_crop(image: np.ndarray, side: int) -> np.ndarray:
    h, w = image.shape
    y0, x0 = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return np.array(image[y0 : y0 + side, x0 : x0 + side], dtype=np.float32)


def _snr_estimate(mapped: MappedMrc, denoise: Callable[[np.ndarray], np.ndarray]) -> float | None:
    """A rough SNR of the first section's central crop (None for a crop under 16 px)."""
    crop = _central_crop(mapped.data[0], ESTIMATE_CROP_PX)
    if min(crop.shape) < 16 or not np.isfinite(crop).all():
        return None
    return snr_from_denoised(crop, np.asarray(denoise(crop)))


def findings_for(
    shipped: ShippedModel,
    sources: Sequence[Path],
    denoise: Callable[[np.ndarray], np.ndarray] | None,
) -> dict[str, list[tuple[str, RangeFinding]]]:
    """Each input's findings against ``shipped``'s trained range, by kind; the noise level is
    estimated on the first readable input only (with ``denoise``, when given). Inputs that
    cannot be mapped are left to the batch, which reports them.

    Raises
    ------
    InputFileError
        For a 3D volume (a fatal finding), naming it.
    """
    found: dict[str, list[tuple[str, RangeFinding]]] = {}
    estimated = denoise is None
    for path in sources:
        try:
            mapped = map_mrc(path)
        except CryodenError:
            continue
        volume = looks_like_volume(path, mapped.data.shape[0], mapped.voxel_size_angstrom)
        snr = None
        if not estimated and not volume:
            assert denoise is not None
            snr, estimated = _snr_estimate(mapped, denoise), True
        for finding in check_input(
            shipped.trained_range,
            pixel_size_angstrom=mapped.pixel_size_angstrom,
            is_volume=volume,
            snr_estimate=snr,
        ):
            if finding.fatal:
                raise InputFileError(
                    path, f"{finding.message}; the {shipped.name} model cannot denoise it"
                )
            found.setdefault(finding.kind, []).append((Path(path).name, finding))
        del mapped
    return found


def check_range(
    model: str | os.PathLike[str],
    denoise: Callable[[np.ndarray], np.ndarray] | None,
    sources: Sequence[Path],
) -> None:
    """Check ``sources`` against the trained range of the shipped model at ``model`` (nothing
    for other models) and log one line per kind of finding: the first input's, with a count of
    the others. A 3D volume raises :class:`InputFileError` (one line)."""
    shipped = shipped_model_at(model)
    if shipped is None:
        return
    for kind, items in findings_for(shipped, sources, denoise).items():
        name, finding = items[0]
        more = f" (and {len(items) - 1} more input(s))" if len(items) > 1 else ""
        if kind == "pixel_size_unknown":
            logger.info("%s%s: %s", name, more, finding.message)
            continue
        logger.warning(
            "%s%s: outside the %s model's trained range: %s; %s",
            name, more, shipped.name, finding.message, advice(shipped.name),
        )  # fmt: skip
