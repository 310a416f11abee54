"""Simulate noisy cryo-EM images of a structure, with independent noise pairs for Noise2Noise.

Examples::

    cryoden simulate --out sim/ --phantom groel --n-images 64 --size 128 --pixel-size 2.0 --snr-sweep
    cryoden simulate --out sim/ --structure 1AON.pdb.gz --n-images 100 --size 256 \\
        --pixel-size 1.5 --snr 0.05,0.1 --ctf-defocus 15000 --seed 3
    cryoden simulate --out fields/ --phantom groel --field --n-images 4 --size 512 \\
        --pixel-size 2.0 --snr 0.05

Writes ``DIR/clean/NNNN.mrc``, ``DIR/snr_<S>/a/NNNN.mrc``, ``DIR/snr_<S>/b/NNNN.mrc`` (two
independent noise draws of each clean image) and ``DIR/manifest.json`` (all parameters, per-image
seeds, rotations and measured SNRs). SNR is var(signal)/var(noise); ``--snr-sweep`` is the seed
study's ten levels evenly spaced from 0.01 to 0.5. Without ``--structure`` the embedded GroEL-like
phantom is used (a phantom built from atoms, not GroEL itself). ``--structure`` takes a PDB/mmCIF
model (gzipped or not) or an MRC density map.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import typer

from cryoden.cli.common import (
    MAX_COUNT,
    check_number,
    choice,
    echo,
    flag_names,
    number,
    output_folder,
    progress_bar,
    write_provenance,
)
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
    phantom: str = typer.Option(
        None,
        "--phantom",
        help="Embedded phantom used without --structure." + _default(SimulationConfig, "phantom"),
        show_default=False,
    ),
    n_images: int = typer.Option(
        None,
        "--n-images",
        help="Number of clean images." + _default(SimulationConfig, "n_images"),
        show_default=False,
        callback=number("--n-images", minimum=1, maximum=MAX_COUNT),
    ),
    size: int = typer.Option(
        None,
        "--size",
        help="Image side in pixels." + _default(SimulationConfig, "size"),
        show_default=False,
        callback=number("--size", minimum=MIN_SIZE, maximum=MAX_SIZE_PX),
    ),
    pixel_size: float = typer.Option(
        None,
        "--pixel-size",
        help="Pixel size in Å." + _default(SimulationConfig, "pixel_size_angstrom"),
        show_default=False,
        callback=number("--pixel-size", above=0),
    ),
    snr: str = typer.Option(None, "--snr", help="SNR level(s), comma-separated."),
    snr_sweep: bool = typer.Option(
        False, "--snr-sweep", help="The study's 10 SNRs evenly spaced from 0.01 to 0.5."
    ),
    ctf_defocus: float = typer.Option(
        None,
        "--ctf-defocus",
        help="Apply a CTF with this defocus in Å (underfocus > 0).",
        callback=number("--ctf-defocus"),
    ),
    voltage: float = typer.Option(
        None,
        "--voltage",
        help="CTF voltage in kV." + _default(CtfParams, "voltage_kv"),
        show_default=False,
        callback=number("--voltage", above=0),
    ),
    cs: float = typer.Option(
        None,
        "--cs",
        help="CTF spherical aberration in mm." + _default(CtfParams, "cs_mm"),
        show_default=False,
        callback=number("--cs", minimum=0),
    ),
    amplitude_contrast: float = typer.Option(
        None,
        "--amplitude-contrast",
        help="CTF amplitude contrast." + _default(CtfParams, "amplitude_contrast"),
        show_default=False,
        callback=number("--amplitude-contrast", minimum=0, maximum=1),
    ),
    ctf_bfactor: float = typer.Option(
        None,
        "--ctf-bfactor",
        help="CTF envelope B-factor in Å²." + _default(CtfParams, "b_factor"),
        show_default=False,
        callback=number("--ctf-bfactor", minimum=0),
    ),
    field: bool = typer.Option(False, "--field", help="Micrograph-like fields of many particles."),
    noise_model: str = typer.Option(
        None,
        "--noise-model",
        help="gaussian or poisson." + _default(SimulationConfig, "noise_model"),
        show_default=False,
        callback=choice("--noise-model", ("gaussian", "poisson")),
    ),
    dose: float = typer.Option(
        None,
        "--dose",
        help="Poisson noise at this dose (e/Å²).",
        callback=number("--dose", above=0),
    ),
    seed: int = typer.Option(
        None,
        "--seed",
        help="Base seed; image i uses (seed, i)." + _default(SimulationConfig, "seed"),
        show_default=False,
        callback=number("--seed", minimum=0),
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing dataset."),
) -> None:
    """Simulate clean projections and paired noisy images (a, b) at chosen SNRs."""
    if snr_sweep and snr is not None:
        raise ParameterError("give either --snr or --snr-sweep, not both")
    levels = list(STUDY_SNR_LEVELS) if snr_sweep else parse_snr_list(snr) if snr else None
    if levels is None and dose is None:
        raise ParameterError("give --snr, --snr-sweep or --dose")
    with flag_names(FLAGS):
        ctf = None
        if ctf_defocus is not None:
            ctf = CtfParams(
                defocus_angstrom=ctf_defocus,
                **_given(
                    voltage_kv=voltage,
                    cs_mm=cs,
                    amplitude_contrast=amplitude_contrast,
                    b_factor=ctf_bfactor,
                ),
            )
        config = SimulationConfig(
            ctf=ctf,
            field=field,
            **_given(
                structure=structure,
                phantom=phantom,
                n_images=n_images,
                size=size,
                pixel_size_angstrom=pixel_size,
                snr_levels=levels,
                dose_e_per_a2=dose,
                noise_model=noise_model,
                seed=seed,
            ),
        )
        output_folder(out)
        with progress_bar("simulate", total=config.n_images) as progress:
            simulate_dataset(out, config, overwrite=overwrite, progress=progress)
    write_provenance(out, "simulate", {"manifest": str(out / "manifest.json")})
    n_levels = len(levels) if levels else 1
    echo(
        f"wrote {config.n_images} clean image(s) and {n_levels} noisy pair set(s) to {out} "
        f"({'fields' if field else 'single particles'}, "
        f"source {structure or config.phantom})"
    )
