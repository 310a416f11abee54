"""Simulated movies on disk: frame stacks, clean micrographs and the manifest.

Layout written by :func:`simulate_movie_dataset`::

    DIR/movies/NNNN.mrc       frame stack, uint16 counts (MRC mode 6), or NNNN.tiff (one
                              uint16 page per frame) with movie_format="tiff"
    DIR/clean/NNNN.mrc        float32 expected counts of the drift-free sum of all frames
    DIR/manifest.json         every parameter, per-movie seeds, CTF, particles, ice, drift

``NNNN`` is the movie index, zero-padded to at least 4 digits. Frames are written one at a time
(a 4k movie need not fit in memory), each file through :func:`cryoden.io.atomic.atomic_output`;
the manifest is written last, so a folder with a ``manifest.json`` holds complete movies.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import mrcfile
import numpy as np
import tifffile

from cryoden import __version__
from cryoden.errors import ParameterError
from cryoden.io import atomic_output, write_mrc
from cryoden.noise import image_seed
from cryoden.simulation.layout import CONVENTIONS, check_output_folder
from cryoden.simulation.movie_config import MovieConfig
from cryoden.simulation.movies import MovieSimulator, movie_record

logger = logging.getLogger(__name__)

#: Movie file formats and their suffixes.
MOVIE_FORMATS = {"mrc": ".mrc", "tiff": ".tiff"}

#: What the manifest says the files hold.
MOVIE_CONVENTIONS = {
    **CONVENTIONS,
    "frames": "uint16 electron counts per pixel per frame (gain-normalised counting)",
    "clean": "expected counts per pixel of the sum of all frames without drift (no noise)",
    "frame_shifts_px": "(dy, dx) mean specimen position of each frame relative to the clean "
    "micrograph; a frame shows the clean image moved by +shift",
    "shift_angstrom": "(x, y) of a particle centre relative to pixel (size//2, size//2)",
    "seeds": "per movie: numpy SeedSequence(seed, spawn_key=(index, stream, ...)); streams 0 "
    "particles, 10 CTF, 11 ice, 12 drift, (13, frame) counts",
}


def write_frames(
    path: Path, frames: Iterable[np.ndarray], shape: tuple[int, int, int], pixel_size: float
) -> None:
    """Write ``shape[0]`` uint16 frames of ``shape[1:]`` to an MRC stack or a TIFF, atomically."""
    with atomic_output(path) as tmp:
        if path.suffix.lower() in (".tif", ".tiff"):
            resolution = (1e8 / pixel_size, 1e8 / pixel_size)  # pixels per cm
            with tifffile.TiffWriter(tmp) as tif:
                for frame in frames:
                    tif.write(frame, contiguous=True, resolution=resolution)
            return
        with mrcfile.new_mmap(tmp, shape=shape, mrc_mode=6, overwrite=True) as mrc:
            mrc.set_image_stack()
            mrc.voxel_size = pixel_size
            for f, frame in enumerate(frames):
                mrc.data[f] = frame


def simulate_movie_dataset(
    out_dir: str | os.PathLike[str],
    config: MovieConfig,
    *,
    movie_format: str = "mrc",
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Simulate ``config.n_movies`` movies into ``out_dir`` (layout in the module docstring).

    Parameters
    ----------
    out_dir
        Output folder (created).
    config
        The settings.
    movie_format
        ``"mrc"`` or ``"tiff"``.
    overwrite
        Allow writing into a folder that already holds a ``manifest.json``.
    progress
        Called as ``progress(frames_done, frames_total)`` after each frame.

    Returns
    -------
    dict
        The manifest (also written to ``out_dir/manifest.json``).

    Raises
    ------
    ParameterError
        Unknown ``movie_format``; nothing is written.
    InputFileError
        Unreadable structure file, or an existing dataset in ``out_dir``.
    """
    if movie_format not in MOVIE_FORMATS:
        known = ", ".join(MOVIE_FORMATS)
        raise ParameterError(f"movie_format must be one of {known}, got {movie_format!r}")
    simulator = MovieSimulator(config)  # reads the structures: bad files fail before writing
    out = Path(out_dir)
    check_output_folder(out, overwrite=overwrite)
    for folder in (out / "movies", out / "clean"):
        folder.mkdir(parents=True, exist_ok=True)
    width = max(4, len(str(config.first_index + config.n_movies - 1)))
    n, size = config.n_frames, config.size
    total = config.n_movies * n
    manifest: dict[str, Any] = {
        "cryoden_version": __version__,
        "kind": "cryoden-simulated-movies",
        "sources": [s.description for s in simulator.sources],
        "parameters": config.to_dict(),
        "movie_format": movie_format,
        "canvas_size_px": simulator.canvas_size,
        "conventions": MOVIE_CONVENTIONS,
        "movies": [],
    }
    done = 0

    def counted(frames: Iterable[np.ndarray]) -> Iterable[np.ndarray]:
        nonlocal done
        for frame in frames:
            yield frame
            done += 1
            if progress is not None:
                progress(done, total)

    for k in range(config.n_movies):
        index = config.first_index + k
        stem = f"{index:0{width}d}"
        specimen = simulator.specimen(index)
        trajectory = simulator.trajectory(index)
        movie_path = out / "movies" / (stem + MOVIE_FORMATS[movie_format])
        frames = counted(simulator.frames(specimen, trajectory))
        write_frames(movie_path, frames, (n, size, size), config.pixel_size_angstrom)
        clean = simulator.clean(specimen)
        write_mrc(
            out / "clean" / f"{stem}.mrc", clean, voxel_size_angstrom=config.pixel_size_angstrom
        )
        manifest["movies"].append(
            {
                "movie": f"movies/{movie_path.name}",
                "clean": f"clean/{stem}.mrc",
                "seed": image_seed(config.seed, index),
                **movie_record(simulator, specimen, trajectory, clean),
            }
        )
    with atomic_output(out / "manifest.json") as tmp:
        tmp.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    logger.info("wrote %d movies of %d frames to %s", config.n_movies, n, out)
    return manifest
