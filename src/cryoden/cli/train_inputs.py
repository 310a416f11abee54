"""The input options of ``cryoden train``: which files train, read patch by patch.

``--images`` (n2v, ne2ne) and ``--a``/``--b`` (n2n, care) take input specs
(:func:`cryoden.io.inputs.expand_inputs`): MRC files, folders, quoted glob patterns, a RELION
STAR file or a cryoSPARC ``.cs`` export. Pairs are the files of the same relative path on both
sides (for two folders: the same name). ``n2n --star`` takes its pairs from the
``rlnMicrographNameEven``/``rlnMicrographNameOdd`` columns that RELION's motion correction
writes. ``--max-micrographs N`` keeps ``N`` files (or pairs) evenly spread over the list
(:func:`cryoden.io.inputs.spread_indices`), the same ones on every run. The files are
memory-mapped (:meth:`cryoden.training.data.SingleDataset.from_files`), so memory does not grow
with their number.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cryoden.cli.previews import PREVIEW_SIDE_PX
from cryoden.errors import ParameterError
from cryoden.io.inputs import expand_inputs, pair_inputs, spread_indices
from cryoden.io.star import read_micrographs_star, star_paths
from cryoden.training.data import ImageDataset, PairDataset, SingleDataset
from cryoden.training.file_images import centre_crop

logger = logging.getLogger("cryoden.cli.train")

#: The STAR columns of RELION's even and odd frame sums.
EVEN_COLUMN = "rlnMicrographNameEven"
ODD_COLUMN = "rlnMicrographNameOdd"


@dataclass
class TrainInputs:
    """A training dataset built from the command line's inputs.

    Attributes
    ----------
    dataset
        The file-backed dataset.
    summary
        What the training log and model file record about the inputs.
    preview
        The centre crop of the first input (raw values) for the preview PNG.
    """

    dataset: ImageDataset
    summary: dict[str, Any]
    preview: np.ndarray


def _subset(items: list[Any], max_micrographs: int | None) -> list[Any]:
    keep = spread_indices(len(items), max_micrographs)
    if len(keep) < len(items):
        logger.info(
            "--max-micrographs %d: training on %d of %d, evenly spread",
            max_micrographs, len(keep), len(items),
        )  # fmt: skip
    return [items[i] for i in keep]


def _shapes(dataset: ImageDataset) -> list[list[int]]:
    return [list(shape) for shape in sorted(set(dataset.shapes))]


def single_inputs(specs: Sequence[Path], *, max_micrographs: int | None) -> TrainInputs:
    """Single noisy images (``--images``) for n2v and ne2ne."""
    found = expand_inputs(list(specs))
    paths = _subset(found.paths, max_micrographs)
    dataset = SingleDataset.from_files(paths)
    summary = {
        "images": [str(s) for s in specs],
        "n_files": len(paths),
        "n_images": len(dataset),
        "shapes": _shapes(dataset),
    }
    if len(paths) < len(found):
        summary["max_micrographs"] = max_micrographs
    return TrainInputs(dataset, summary, centre_crop(paths[0], PREVIEW_SIDE_PX))


def _star_pairs(star_path: Path) -> list[tuple[Path, Path]]:
    star = read_micrographs_star(star_path, required=(EVEN_COLUMN, ODD_COLUMN))
    return list(zip(star_paths(star, EVEN_COLUMN), star_paths(star, ODD_COLUMN)))


def pair_inputs_of(
    a: Path | None,
    b: Path | None,
    *,
    star: Path | None = None,
    fit_on: str,
    max_micrographs: int | None,
) -> TrainInputs:
    """Pairs for n2n and care: ``--a``/``--b`` specs matched by relative path, or the even and
    odd sums of a RELION STAR file (``--star``)."""
    if star is not None:
        if a is not None or b is not None:
            raise ParameterError("give either --star or --a and --b, not both")
        pairs = _star_pairs(star)
        summary: dict[str, Any] = {"star": str(star)}
    else:
        if a is None or b is None:
            raise ParameterError("give --a and --b (folders, files, patterns), or --star")
        a_set, b_set = expand_inputs([a]), expand_inputs([b])
        pairs = pair_inputs(a_set, b_set, a_name=f"--a {a}", b_name=f"--b {b}")
        summary = {"a": str(a), "b": str(b)}
    total = len(pairs)
    pairs = _subset(pairs, max_micrographs)
    dataset = PairDataset.from_files(pairs, fit_on=fit_on)
    summary.update({"n_pairs": len(dataset), "shapes": _shapes(dataset)})
    if len(pairs) < total:
        summary["max_micrographs"] = max_micrographs
    return TrainInputs(dataset, summary, centre_crop(pairs[0][0], PREVIEW_SIDE_PX))
