"""Simulate noisy cryo-EM images of a structure, with independent noise pairs for Noise2Noise.

Examples::

    cryoden simulate --out sim/ --n-images 64 --size 128 --pixel-size 2.0 --snr-sweep
    cryoden simulate --out sim/ --structure 1AON.pdb.gz --n-images 100 --size 256 \\
        --pixel-size 1.5 --snr 0.05,0.1 --ctf-defocus 15000 --seed 3
    cryoden simulate --out fields/ --phantom groel --field --n-images 4 --size 512 \\
        --pixel-size 2.0 --snr 0.05
    cryoden simulate --movies --out movies/ --n-images 4 --size 512 --frames 30 --seed 1
    cryoden simulate --tomogram --out tomos/ --n-images 2 --snr 0.1

Writes ``DIR/clean/NNNN.mrc``, ``DIR/snr_<S>/a/NNNN.mrc``, ``DIR/snr_<S>/b/NNNN.mrc`` (two
independent noise draws of each clean image) and ``DIR/manifest.json`` (all parameters, per-image
seeds, rotations and measured SNRs). SNR is var(signal)/var(noise); ``--snr-sweep`` is the seed
study's ten levels evenly spaced from 0.01 to 0.5. Without ``--structure`` the embedded GroEL-like
phantom is used (a phantom built from atoms, not GroEL itself). ``--structure`` takes a PDB/mmCIF
model (gzipped or not) or an MRC density map.

``--movies`` writes dose-fractionated movies of micrograph fields instead (Poisson counts per
frame, detector MTF/DQE, sub-pixel drift, astigmatic CTF, uneven ice), with the clean expected
sum of each (``DIR/movies``, ``DIR/clean``, ``DIR/manifest.json``); the options marked Movies
apply.

``--tomogram`` writes crowded tomograms instead: a tilt series per tomogram, its even and odd
halves with independent noise, weighted back-projection (``DIR/clean``, ``DIR/even``,
``DIR/odd``, ``DIR/manifest.json``); the options marked Tomograms apply.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import typer

from cryoden.cli import common, simulate_movies, simulate_tomogram
from cryoden.cli.common import MAX_COUNT, check_number, echo, flag_names
from cryoden.cli.options import choice_option, number_option
from cryoden.errors import ParameterError
from cryoden.noise import STUDY_SNR_LEVELS
from cryoden.simulation.config import MIN_SIZE, SimulationConfig
from cryoden.simulation.ctf import CtfParams
from cryoden.simulation.datasets import simulate_dataset

#: Library parameter (SimulationConfig or CtfParams field) -> the flag that sets it.
FLAGS = {
    "structure": "--structure",
    "phantom": "--phantom",
    "n_images": "--n-images",
    "size": "--size",
    "pixel_size_angstrom": "--pixel-size",
    "snr_levels": "--snr",
    "dose_e_per_a2": "--dose",
    "noise_model": "--noise-model",
    "field": "--field",
    "seed": "--seed",
    "defocus_angstrom": "--ctf-defocus",
    "voltage_kv": "--voltage",
    "cs_mm": "--cs",
    "amplitude_contrast": "--amplitude-contrast",
    "b_factor": "--ctf-bfactor",
}


#: Largest simulated image side in pixels: one float32 image of it is 1 GiB.
MAX_SIZE_PX = 16384


def _default(cls: type, name: str) -> str:
    """`` [default: VALUE]`` for --help, VALUE the library's default of field ``name`` of
    dataclass ``cls`` (written into the help: the option itself defaults to None, and typer
    would show a ``show_default`` text in parentheses). The bracket is escaped from rich."""
    value = next(f.default for f in dataclasses.fields(cls) if f.name == name)
    return f" \\[default: {value}]"


def _option(
    flag: str, help_text: str, field: str, cls: type = SimulationConfig, **bounds: Any
) -> Any:
    """An option for ``cls``'s field ``field`` whose help ends with the library's default; a
    numeric one (``bounds`` given) is checked as it is parsed."""
    text = help_text + "." + _default(cls, field)
    if not bounds:
        return typer.Option(None, flag, help=text, show_default=False)
    return number_option(flag, text, show_default=False, **bounds)


def parse_snr_list(text: str) -> list[float]:
    """``"0.05,0.1"`` -> ``[0.05, 0.1]``, with a clear error for anything else."""
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ParameterError(f"--snr must be numbers separated by commas, got {text!r}") from None
    if not values:
        raise ParameterError("--snr needs at least one value")
    for value in values:
        check_number("--snr", value, above=0)
    return values


def _given(**values: Any) -> dict[str, Any]:
    """The options the user gave (not None); the library's defaults fill in the rest."""
    return {name: value for name, value in values.items() if value is not None}


def command(
    out: Path = typer.Option(..., "--out", metavar="DIR", help="Output folder."),
    structure: Path = typer.Option(
        None, "--structure", help="PDB/mmCIF model (.gz ok) or MRC density map."
    ),
    phantom: str = _option("--phantom", "Embedded phantom used without --structure", "phantom"),
    n_images: int = _option("--n-images", "Number of clean images", "n_images", minimum=1,
                            maximum=MAX_COUNT),
    size: int = _option("--size", "Image side in pixels", "size", minimum=MIN_SIZE,
                        maximum=MAX_SIZE_PX),
    pixel_size: float = _option("--pixel-size", "Pixel size in Å", "pixel_size_angstrom", above=0),
    snr: str = typer.Option(None, "--snr", help="SNR level(s), comma-separated."),
    snr_sweep: bool = typer.Option(
        False, "--snr-sweep", help="The study's 10 SNRs evenly spaced from 0.01 to 0.5."
    ),
    ctf_defocus: float = number_option(
        "--ctf-defocus", "Apply a CTF with this defocus in Å (underfocus > 0)."
    ),
    voltage: float = _option("--voltage", "CTF voltage in kV", "voltage_kv", CtfParams, above=0),
    cs: float = _option("--cs", "CTF spherical aberration in mm", "cs_mm", CtfParams, minimum=0),
    amplitude_contrast: float = _option(
        "--amplitude-contrast", "CTF amplitude contrast", "amplitude_contrast", CtfParams,
        minimum=0, maximum=1,
    ),
    ctf_bfactor: float = _option("--ctf-bfactor", "CTF envelope B-factor in Å²", "b_factor",
                                 CtfParams, minimum=0),
    field: bool = typer.Option(False, "--field", help="Micrograph-like fields of many particles."),
    noise_model: str = choice_option(
        "--noise-model", "gaussian or poisson." + _default(SimulationConfig, "noise_model"),
        ("gaussian", "poisson"), show_default=False,
    ),
    dose: float = number_option("--dose", "Poisson noise at this dose (e/Å²).", above=0),
    seed: int = _option("--seed", "Base seed; image i uses (seed, i)", "seed", minimum=0),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing dataset."),
) -> None:  # fmt: skip
    """Simulate clean projections and paired noisy images (a, b) at chosen SNRs."""
    if snr_sweep and snr is not None:
        raise ParameterError("give either --snr or --snr-sweep, not both")
    levels = list(STUDY_SNR_LEVELS) if snr_sweep else parse_snr_list(snr) if snr else None
    if levels is None and dose is None:
        raise ParameterError("give --snr, --snr-sweep or --dose")
    with flag_names(FLAGS):
        ctf = None
        if ctf_defocus is not None:
            optics = {"voltage_kv": voltage, "cs_mm": cs, "b_factor": ctf_bfactor}
            optics["amplitude_contrast"] = amplitude_contrast
            ctf = CtfParams(defocus_angstrom=ctf_defocus, **_given(**optics))
        given = _given(
            structure=structure, phantom=phantom, n_images=n_images, size=size,
            pixel_size_angstrom=pixel_size, snr_levels=levels, dose_e_per_a2=dose,
            noise_model=noise_model, seed=seed,
        )  # fmt: skip
        config = SimulationConfig(ctf=ctf, field=field, **given)
        common.output_folder(out)
        with common.progress_bar("simulate", total=config.n_images) as progress:
            simulate_dataset(out, config, overwrite=overwrite, progress=progress)
    common.write_provenance(out, "simulate", {"manifest": str(out / "manifest.json")})
    n_levels = len(levels) if levels else 1
    echo(
        f"wrote {config.n_images} clean image(s) and {n_levels} noisy pair set(s) to {out} "
        f"({'fields' if field else 'single particles'}, "
        f"source {structure or config.phantom})"
    )


#: The movie options (--movies ...) are added to the command by their own module.
command = simulate_movies.with_movie_options(command)
#: The tomogram options (--tomogram ...) likewise.
command = simulate_tomogram.with_tomogram_mode(command)
