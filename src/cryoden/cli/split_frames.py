"""Sum the even and the odd frames of movies into Noise2Noise pairs.

Example::

    cryoden split-frames movies/*.tiff -o pairs/ --align --gain gain.mrc
    cryoden train n2n --a pairs/even --b pairs/odd --out model

Frames are counted from 0: ``DIR/even/<movie>.mrc`` sums frames 0, 2, 4, ... and
``DIR/odd/<movie>.mrc`` sums frames 1, 3, 5, ... Both share the specimen and carry independent
shot noise. ``--align`` removes the global drift of each frame (cross-correlation against the sum
of the other frames, sub-pixel) before summing; ``--gain`` multiplies every frame by a gain
reference first. The pixel size comes from the movie's MRC header or ``--pixel-size``.
``--interpolation`` says how aligned frames are shifted: ``bilinear`` (the default) and ``cubic``
interpolate in real space, as motion-correction programs do, which correlates neighbouring
pixels' noise in the sums; ``fourier`` shifts with a phase ramp and keeps white noise white.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer

from cryoden.cli.common import (
    choice,
    echo,
    number,
    output_folder,
    output_paths,
    progress_bar,
    write_provenance,
)
from cryoden.io import write_mrc
from cryoden.movies import even_odd_sums, read_gain
from cryoden.movies.alignment import INTERPOLATIONS
from cryoden.movies.frames import movie_info


def command(
    movies: list[Path] = typer.Argument(..., metavar="MOVIE...", help="MRC or TIFF movies."),
    out_dir: Path = typer.Option(..., "--output", "-o", metavar="DIR", help="Output folder."),
    align: bool = typer.Option(False, "--align", help="Correct global drift before summing."),
    gain: Path = typer.Option(None, "--gain", help="Gain reference (MRC or TIFF) to multiply by."),
    pixel_size: float = typer.Option(
        None, "--pixel-size", help="Pixel size in Å.", callback=number("--pixel-size", above=0)
    ),
    interpolation: str = typer.Option(
        "bilinear",
        "--interpolation",
        help="How --align shifts frames: bilinear, cubic or fourier.",
        callback=choice("--interpolation", tuple(INTERPOLATIONS)),
    ),
) -> None:
    """Write even/odd frame sums of movies to DIR/even and DIR/odd."""
    infos = [movie_info(m) for m in movies]  # validate every movie before writing anything
    names = output_paths(movies, out_dir / "even")
    gain_image = read_gain(gain, infos[0][1]) if gain is not None else None
    output_folder(out_dir / "even")
    output_folder(out_dir / "odd")
    drift = {}
    with progress_bar("split frames", total=len(movies)) as progress:
        for i, (movie, even_path) in enumerate(zip(movies, names)):
            sums = even_odd_sums(movie, gain=gain_image, align=align, interpolation=interpolation)
            px = pixel_size if pixel_size is not None else sums.pixel_size_angstrom
            protected = [*movies] + ([gain] if gain is not None else [])
            write_mrc(
                even_path.with_suffix(".mrc"),
                sums.even,
                voxel_size_angstrom=px,
                protected=protected,
            )
            write_mrc(
                out_dir / "odd" / even_path.with_suffix(".mrc").name,
                sums.odd,
                voxel_size_angstrom=px,
                protected=protected,
            )
            drift[str(movie)] = {
                "n_frames": sums.n_frames,
                "max_drift_px": float(np.abs(sums.shifts_px).max()),
                "shifts_px": sums.shifts_px.round(3).tolist(),
            }
            progress(i + 1, len(movies))
    parameters = {"movies": movies, "align": align, "interpolation": interpolation}
    write_provenance(out_dir, "split-frames", {**parameters, "gain": gain, "drift": drift})
    echo(f"wrote {len(movies)} even/odd pair(s) to {out_dir}/even and {out_dir}/odd")
