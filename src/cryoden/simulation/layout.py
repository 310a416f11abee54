"""On-disk layout of a simulated dataset and its manifest.

Layout written by :func:`write_dataset`::

    DIR/clean/NNNN.mrc            clean image (projected potential, CTF-filtered if asked)
    DIR/snr_<S>/a/NNNN.mrc        first noisy copy at SNR S (S from :func:`snr_dirname`)
    DIR/snr_<S>/b/NNNN.mrc        second, independent noisy copy
    DIR/manifest.json             every parameter, per-image seeds, poses and measured SNRs

With Poisson noise at a dose the level folders are ``dose_<D>`` (:func:`dose_dirname`) instead
of ``snr_<S>``. ``NNNN`` is the image index, zero-padded to at least 4 digits. The manifest is
written last, atomically, so a folder with a ``manifest.json`` holds a complete dataset.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryoden import __version__
from cryoden.errors import InputFileError
from cryoden.io import atomic_output, write_mrc
from cryoden.noise import image_seed
from cryoden.simulation.fields import DEFAULT_COVERAGE

if TYPE_CHECKING:
    from cryoden.simulation.config import SimulationConfig
    from cryoden.simulation.noise_streams import NoiseLevel
    from cryoden.simulation.simulator import SimulatedImage

logger = logging.getLogger(__name__)

#: Conventions recorded in every manifest.
CONVENTIONS = {
    "snr": "var(clean) / var(noisy - clean), over the whole image",
    "rotation": "r' = R (r - centre); image = projection along z', rows y', columns x'",
    "shift_angstrom": "(x, y) of the particle centre relative to pixel (size//2, size//2)",
    "ctf": "RELION/CTFFIND convention, defocus > 0 = underfocus, see cryoden.simulation.ctf",
    "seeds": "per image: numpy SeedSequence(seed, spawn_key=(index, stream, ...))",
}


def snr_dirname(snr: float) -> str:
    """Folder name of an SNR level: ``snr_`` and the SNR with 4 decimals (``snr_0.1189``).

    Examples
    --------
    >>> snr_dirname(0.11888888888888888)
    'snr_0.1189'
    """
    return f"snr_{float(snr):.4f}"


def dose_dirname(dose_e_per_a2: float) -> str:
    """Folder name of a dose level: ``dose_`` and the dose in e/Å² with 4 decimals."""
    return f"dose_{float(dose_e_per_a2):.4f}"


def check_output_folder(out: Path, *, overwrite: bool) -> None:
    """InputFileError if ``out`` is a file, or already holds a dataset and not ``overwrite``."""
    if out.exists() and not out.is_dir():
        raise InputFileError(out, "exists and is not a folder")
    if (out / "manifest.json").exists() and not overwrite:
        raise InputFileError(out, "already holds a simulated dataset (manifest.json)")


def manifest_parameters(config: SimulationConfig) -> dict[str, Any]:
    """The run's parameters as recorded in the manifest."""
    parameters: dict[str, Any] = {
        "n_images": config.n_images,
        "first_index": config.first_index,
        "size": config.size,
        "pixel_size_angstrom": config.pixel_size_angstrom,
        "snr_levels": list(config.snr_levels or []),
        "dose_e_per_a2": config.dose_e_per_a2,
        "noise_model": config.noise_model,
        "ctf": None if config.ctf is None else config.ctf.to_dict(),
        "field": config.field,
        "particles_per_field": config.particles_per_field,
        "coverage": (
            DEFAULT_COVERAGE if config.field and config.particles_per_field is None else None
        ),
        "seed": config.seed,
        "given_rotations": config.rotations is not None,
        "max_shift_angstrom": config.max_shift_angstrom,
        "b_factor": config.b_factor_a2,
    }
    if config.shared_noise:
        parameters["shared_noise"] = True
    return parameters


def _clean_units(dose_mode: bool) -> str:
    if dose_mode:
        return "expected electrons per pixel (weak-phase contrast at the dose)"
    return "projected potential in V*A (atoms) or map units * A (maps), no normalisation"


def write_dataset(
    out: Path,
    config: SimulationConfig,
    source_description: dict[str, Any],
    levels: Sequence[NoiseLevel],
    images: Iterable[SimulatedImage],
    *,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Write every image of ``images`` and then the manifest into ``out``; return the manifest."""
    n_images = config.n_images
    width = max(4, len(str(config.first_index + n_images - 1)))
    folders = [out / "clean"]
    for level in levels:
        folders += [out / level.name / "a", out / level.name / "b"]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {
        "cryoden_version": __version__,
        "kind": "cryoden-simulated-dataset",
        "source": source_description,
        "parameters": manifest_parameters(config),
        "conventions": {
            "clean_units": _clean_units(any(lv.dose_e_per_a2 is not None for lv in levels)),
            **CONVENTIONS,
        },
        "levels": [lv.to_dict() for lv in levels],
        "images": [],
    }
    voxel = config.pixel_size_angstrom
    for done, image in enumerate(images, start=1):
        name = f"{image.index:0{width}d}.mrc"
        write_mrc(out / "clean" / name, image.clean, voxel_size_angstrom=voxel)
        record: dict[str, Any] = {
            "index": image.index,
            "seed": image_seed(config.seed, image.index),
            "clean": f"clean/{name}",
            "particles": [pose.to_dict() for pose in image.poses],
            "measured_snr": {},
        }
        for value, (a, b) in image.pairs.items():
            level = image.levels[value]
            write_mrc(out / level.name / "a" / name, a, voxel_size_angstrom=voxel)
            write_mrc(out / level.name / "b" / name, b, voxel_size_angstrom=voxel)
            snr_a, snr_b = image.measured_snr[value]
            record["measured_snr"][level.name] = {"a": snr_a, "b": snr_b}
        manifest["images"].append(record)
        if progress is not None:
            progress(done, n_images)
    with atomic_output(out / "manifest.json") as tmp:
        tmp.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    logger.info("wrote %d images x %d levels to %s", n_images, len(levels), out)
    return manifest
