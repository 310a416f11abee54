"""``cryoden simulate --movies``: dose-fractionated movies of micrograph fields.

Example::

    cryoden simulate --movies --out movies/ --n-images 4 --size 512 --frames 30 \\
        --dose-per-frame 1.5 --seed 1
    cryoden split-frames movies/movies/*.mrc -o pairs/ --align

Writes ``DIR/movies/NNNN.mrc`` (uint16 frame stacks; ``--movie-format tiff`` for TIFF),
``DIR/clean/NNNN.mrc`` (the expected counts of the drift-free frame sum, no noise: the ground
truth of a denoised sum) and ``DIR/manifest.json`` (every parameter, per-movie seeds, CTF,
particles, ice and drift). Each field holds particles of ``--structure`` (and any
``--add-structure``; the phantom without one) at random positions and orientations, in ice whose
thickness changes across the field, imaged through an astigmatic CTF with an envelope
(``--ctf-defocus`` ± ``--defocus-spread``, ``--astigmatism``, ``--ctf-bfactor``), counted frame by
frame (Poisson) by a counting detector with its MTF and DQE while the specimen drifts smoothly
by sub-pixel steps. The defaults of a movie: 4 movies of 512 pixels of 2 Å, 30 frames of
1.5 e/Å², defocus 15,000 ± 5,000 Å, astigmatism up to 400 Å, envelope B-factor 60 Å².
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from cryoden.cli import common
from cryoden.cli.common import echo, flag_names
from cryoden.cli.options import choice_option, number_option, option_parameter
from cryoden.errors import ParameterError
from cryoden.simulation.detector import DetectorModel
from cryoden.simulation.drift import DriftModel
from cryoden.simulation.ice import IceModel
from cryoden.simulation.movie_config import MAX_FRAMES, MIN_MOVIE_SIZE, MovieConfig
from cryoden.simulation.movie_files import MOVIE_FORMATS, simulate_movie_dataset

#: Library parameter -> the flag that sets it (for error messages).
FLAGS = {
    "structures": "--structure/--add-structure",
    "phantom": "--phantom",
    "n_movies": "--n-images",
    "size": "--size",
    "pixel_size_angstrom": "--pixel-size",
    "n_frames": "--frames",
    "dose_per_frame_e_per_a2": "--dose-per-frame",
    "particles_per_field": "--particles-per-field",
    "defocus_angstrom": "--ctf-defocus",
    "defocus_spread_angstrom": "--defocus-spread",
    "astigmatism_angstrom": "--astigmatism",
    "voltage_kv": "--voltage",
    "cs_mm": "--cs",
    "amplitude_contrast": "--amplitude-contrast",
    "envelope_b_factor": "--ctf-bfactor",
    "thickness_angstrom": "--ice-thickness",
    "thickness_slope": "--ice-slope",
    "beam_induced_angstrom": "--drift",
    "detection_efficiency": "--detector-efficiency",
    "psf_sigma_px": "--detector-psf",
    "seed": "--seed",
}

#: Options of ``cryoden simulate`` that mean nothing for movies.
NOT_FOR_MOVIES = {
    "snr": "--snr",
    "snr_sweep": "--snr-sweep",
    "noise_model": "--noise-model",
    "dose": "--dose",
    "field": "--field",
}


def _default(cls: type, name: str) -> str:
    """`` [default: VALUE]`` for --help: the library's default of dataclass ``cls``'s field
    ``name`` (the bracket escaped from rich)."""
    value = next(f.default for f in dataclasses.fields(cls) if f.name == name)
    return f" \\[default: {value}]"


#: The movie options: parameter name -> (annotation, typer option).
MOVIE_OPTIONS: dict[str, tuple[Any, Any]] = {
    "movies": (
        bool,
        typer.Option(
            False,
            "--movies",
            help="Simulate dose-fractionated movies of micrograph fields and their clean sums "
            "(the options marked Movies).",
        ),
    ),
    "add_structure": (
        list[Path],
        typer.Option(
            None,
            "--add-structure",
            metavar="FILE",
            help="Movies: another model or map whose particles are mixed in (repeatable).",
        ),
    ),
    "frames": (
        int,
        number_option(
            "--frames",
            "Movies: frames per movie." + _default(MovieConfig, "n_frames"),
            minimum=2,
            maximum=MAX_FRAMES,
            show_default=False,
        ),
    ),
    "dose_per_frame": (
        float,
        number_option(
            "--dose-per-frame",
            "Movies: dose of each frame in e/Å²."
            + _default(MovieConfig, "dose_per_frame_e_per_a2"),
            above=0,
            show_default=False,
        ),
    ),
    "particles_per_field": (
        int,
        number_option(
            "--particles-per-field",
            "Movies: particles per field (default: about 30 % coverage).",
            minimum=1,
            maximum=100000,
        ),
    ),
    "defocus_spread": (
        float,
        number_option(
            "--defocus-spread",
            "Movies: defocus drawn within --ctf-defocus ± this, in Å."
            + _default(MovieConfig, "defocus_spread_angstrom"),
            minimum=0,
            show_default=False,
        ),
    ),
    "astigmatism": (
        float,
        number_option(
            "--astigmatism",
            "Movies: largest |dU - dV| in Å." + _default(MovieConfig, "astigmatism_angstrom"),
            minimum=0,
            show_default=False,
        ),
    ),
    "ice_thickness": (
        float,
        number_option(
            "--ice-thickness",
            "Movies: mean ice thickness in Å." + _default(IceModel, "thickness_angstrom"),
            minimum=50,
            show_default=False,
        ),
    ),
    "ice_slope": (
        float,
        number_option(
            "--ice-slope",
            "Movies: ice thickness change per Å across the field."
            + _default(IceModel, "thickness_slope"),
            minimum=0,
            maximum=10,
            show_default=False,
        ),
    ),
    "no_ice_texture": (
        bool,
        typer.Option(
            False,
            "--no-ice-texture",
            help="Movies: leave out the fine texture of the ice's water molecules.",
        ),
    ),
    "drift": (
        float,
        number_option(
            "--drift",
            "Movies: beam-induced drift over the movie in Å."
            + _default(DriftModel, "beam_induced_angstrom"),
            minimum=0,
            show_default=False,
        ),
    ),
    "detector_efficiency": (
        float,
        number_option(
            "--detector-efficiency",
            "Movies: fraction of electrons counted, the DQE at zero frequency."
            + _default(DetectorModel, "detection_efficiency"),
            above=0,
            maximum=1,
            show_default=False,
        ),
    ),
    "detector_psf": (
        float,
        number_option(
            "--detector-psf",
            "Movies: event localisation error (Gaussian sigma) in pixels."
            + _default(DetectorModel, "psf_sigma_px"),
            minimum=0,
            maximum=5,
            show_default=False,
        ),
    ),
    "movie_format": (
        str,
        choice_option(
            "--movie-format",
            "Movies: mrc (frame stack) or tiff.",
            tuple(MOVIE_FORMATS),
            default="mrc",
        ),
    ),
}


def _given(**values: Any) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}


def movie_config(shared: dict[str, Any], own: dict[str, Any]) -> MovieConfig:
    """The :class:`MovieConfig` of the options (``shared``: those of ``cryoden simulate``;
    ``own``: :data:`MOVIE_OPTIONS`); options not given keep the library's defaults."""
    structures = [s for s in [shared.get("structure"), *(own.get("add_structure") or [])] if s]
    if own.get("add_structure") and shared.get("structure") is None:
        raise ParameterError("--add-structure needs --structure")
    ice = IceModel(
        texture=not own.get("no_ice_texture"),
        **_given(thickness_angstrom=own.get("ice_thickness"), thickness_slope=own.get("ice_slope")),
    )
    detector = DetectorModel(
        **_given(
            detection_efficiency=own.get("detector_efficiency"),
            psf_sigma_px=own.get("detector_psf"),
        )
    )
    drift = DriftModel(**_given(beam_induced_angstrom=own.get("drift")))
    fields = _given(
        phantom=shared.get("phantom"),
        n_movies=shared.get("n_images"),
        size=shared.get("size"),
        pixel_size_angstrom=shared.get("pixel_size"),
        n_frames=own.get("frames"),
        dose_per_frame_e_per_a2=own.get("dose_per_frame"),
        particles_per_field=own.get("particles_per_field"),
        defocus_angstrom=shared.get("ctf_defocus"),
        defocus_spread_angstrom=own.get("defocus_spread"),
        astigmatism_angstrom=own.get("astigmatism"),
        voltage_kv=shared.get("voltage"),
        cs_mm=shared.get("cs"),
        amplitude_contrast=shared.get("amplitude_contrast"),
        envelope_b_factor=shared.get("ctf_bfactor"),
        seed=shared.get("seed"),
    )
    return MovieConfig(
        structures=tuple(structures), ice=ice, detector=detector, drift=drift, **fields
    )


def run(shared: dict[str, Any], own: dict[str, Any]) -> None:
    """Simulate the movies the options describe into ``--out``."""
    for name, flag in NOT_FOR_MOVIES.items():
        if shared.get(name) not in (None, False):
            raise ParameterError(f"{flag} is for noisy image pairs, not with --movies")
    size = shared.get("size")
    if size is not None and size < MIN_MOVIE_SIZE:
        raise ParameterError(f"--size must be >= {MIN_MOVIE_SIZE} for movies, got {size}")
    out = Path(shared["out"])
    with flag_names(FLAGS):
        config = movie_config(shared, own)
        total = config.n_movies * config.n_frames
        common.check_output_folder(out)
        with common.progress_bar("simulate movies", total=total) as progress:
            simulate_movie_dataset(
                out,
                config,
                movie_format=own.get("movie_format") or "mrc",
                overwrite=bool(shared.get("overwrite")),
                progress=progress,
            )
    common.write_provenance(
        out, "simulate --movies", {"manifest": str(out / "manifest.json"), **config.to_dict()}
    )
    echo(
        f"wrote {config.n_movies} movie(s) of {config.n_frames} frames "
        f"({config.total_dose_e_per_a2:g} e/Å²) and their clean sums to {out}"
    )


def with_movie_options(command: Callable[..., None]) -> Callable[..., None]:
    """``command`` (``cryoden simulate``) with the movie options added: ``--movies`` runs
    :func:`run`; without it a movie option is refused and ``command`` runs as before."""
    signature = inspect.signature(command)

    @functools.wraps(command)
    def wrapped(**values: Any) -> None:
        own = {name: values.pop(name, None) for name in MOVIE_OPTIONS}
        if own.pop("movies"):
            run(values, own)
            return
        for name, (_, option) in MOVIE_OPTIONS.items():
            if name != "movies" and own.get(name) not in (None, [], option.default):
                raise ParameterError(f"{option.param_decls[0]} needs --movies")
        command(**values)

    extra = [option_parameter(n, t, o) for n, (t, o) in MOVIE_OPTIONS.items()]
    wrapped.__signature__ = signature.replace(  # type: ignore[attr-defined]  # read by typer
        parameters=[*signature.parameters.values(), *extra]
    )
    return wrapped
