"""``cryoden simulate --tomogram``: crowded tomograms with even/odd halves, for cryo-ET denoisers.

Example::

    cryoden simulate --tomogram --out tomos/ --n-images 2 --snr 0.1
    cryoden simulate --tomogram --out tomos/ --structures 1AON.pdb.gz,1OEL.pdb \\
        --size 160 --thickness 64 --pixel-size 8 --dose 120 --noise-model poisson

Each tomogram is a slab of ice crowded with randomly oriented copies of the structure(s)
(``--structure``/``--structures``; the embedded GroEL-like phantom by default), imaged as a
single-axis tilt series (``--tilt-range``, ``--tilt-step``; tilt axis y, beam along z at 0°)
whose even and odd halves get independent noise (Gaussian at ``--snr`` per tilt image, or
Poisson at the series' total ``--dose``, half of it in each half) and are reconstructed by
weighted back-projection, missing wedge included. Writes ``DIR/clean/NNNN.mrc`` (the
reconstruction of the noise-free tilt series), ``DIR/even/NNNN.mrc``, ``DIR/odd/NNNN.mrc``
(``(Z, Y, X)`` volumes, voxel size in the header), with ``--write-tilts`` the tilt series under
``DIR/tilts/``, and ``DIR/manifest.json``. With ``--tomogram``, ``--n-images`` counts
tomograms, ``--size`` is their width and height and ``--pixel-size`` their voxel size (defaults
128 x 128 x 64 voxels of 8 Å).

This module holds the tomogram options and the call into the library; :func:`with_tomogram_mode`
adds them to the ``simulate`` command (:mod:`cryoden.cli.simulate`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from cryoden.cli import common
from cryoden.cli.common import check_number, echo, flag_names
from cryoden.cli.options import number_option, option_parameter
from cryoden.errors import ParameterError
from cryoden.simulation.tomo_config import TomogramConfig
from cryoden.simulation.tomo_dataset import TomogramSimulator, simulate_tomogram_dataset

#: Library parameter (TomogramConfig field) -> the flag(s) that set it.
FLAGS = {
    "n_tomograms": "--n-images",
    "shape_zyx": "--size/--thickness",
    "voxel_size_angstrom": "--pixel-size",
    "structures": "--structures",
    "phantom": "--phantom",
    "snr": "--snr",
    "dose_e_per_a2": "--dose",
    "seed": "--seed",
    "tilt_min_deg": "--tilt-range",
    "tilt_max_deg": "--tilt-range",
    "tilt_step_deg": "--tilt-step",
    "slab_thickness_angstrom": "--slab-thickness",
    "n_particles": "--particles",
}

#: The options this module adds to ``cryoden simulate``: name -> (type, typer option).
TOMOGRAM_OPTIONS: dict[str, tuple[Any, Any]] = {
    "tomogram": (bool, typer.Option(
        False, "--tomogram", help="Simulate tomograms (tilt series, even/odd halves, WBP) "
        "instead of projections; see the options below.")),
    "structures": (str, typer.Option(
        None, "--structures", metavar="A,B,...", help="Tomograms: several structure files "
        "(comma-separated); each particle is a copy of one of them.")),
    "thickness": (int, number_option(
        "--thickness", "Tomograms: Z size in voxels (default: half of --size).", minimum=8,
        maximum=4096)),
    "tilt_range": (float, number_option(
        "--tilt-range", "Tomograms: tilts from -A to +A degrees \\[default: 60].", above=0,
        maximum=89.9)),
    "tilt_step": (float, number_option(
        "--tilt-step", "Tomograms: tilt increment in degrees \\[default: 3].", above=0,
        maximum=90)),
    "slab_thickness": (float, number_option(
        "--slab-thickness", "Tomograms: ice slab thickness in Å (default: 3/4 of the volume).",
        above=0)),
    "particles": (int, number_option(
        "--particles", "Tomograms: particles per tomogram (default: 20 % of the slab).",
        minimum=1, maximum=100000)),
    "write_tilts": (bool, typer.Option(
        False, "--write-tilts", help="Tomograms: also write the tilt series (DIR/tilts/).")),
}  # fmt: skip

#: Options of ``cryoden simulate`` that tomograms use (the others must be left unset).
_USED = {"out", "structure", "phantom", "n_images", "size", "pixel_size", "snr", "dose",
         "noise_model", "seed", "overwrite"}  # fmt: skip


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _structures(structure: Path | None, structures: str | None) -> tuple[str, ...]:
    paths = [str(structure)] if structure is not None else []
    if structures:
        paths += [part.strip() for part in structures.split(",") if part.strip()]
    return tuple(paths)


def _noise(snr: str | None, dose: float | None, noise_model: str | None) -> dict[str, Any]:
    """The one noise level of a tomogram run, from --snr or --dose (and --noise-model)."""
    if snr is not None and dose is not None:
        raise ParameterError("give either --snr or --dose, not both")
    if dose is not None:
        if noise_model not in (None, "poisson"):
            raise ParameterError("--dose needs --noise-model 'poisson'")
        return {"dose_e_per_a2": dose}
    if snr is None:
        raise ParameterError("give --snr or --dose")
    if noise_model not in (None, "gaussian"):
        raise ParameterError("with --tomogram, --snr adds Gaussian noise; use --dose for Poisson")
    try:
        value = float(snr)
    except ValueError:
        raise ParameterError(f"--snr takes one number with --tomogram, got {snr!r}") from None
    check_number("--snr", value, above=0)
    return {"snr": value}


def tomogram_config(options: dict[str, Any]) -> TomogramConfig:
    """The :class:`TomogramConfig` of the command's options (errors name the flags)."""
    given: dict[str, Any] = {}
    size, thickness = options.get("size"), options.get("thickness")
    if size is not None or thickness is not None:
        side = int(size) if size is not None else TomogramConfig.shape_zyx[2]
        depth = int(thickness) if thickness is not None else max(8, side // 2)
        given["shape_zyx"] = (depth, side, side)
    if options.get("tilt_range") is not None:
        angle = float(options["tilt_range"])
        given |= {"tilt_min_deg": -angle, "tilt_max_deg": angle}
    renames = {"n_images": "n_tomograms", "pixel_size": "voxel_size_angstrom", "seed": "seed",
               "phantom": "phantom", "tilt_step": "tilt_step_deg",
               "slab_thickness": "slab_thickness_angstrom", "particles": "n_particles"}  # fmt: skip
    for name, field in renames.items():
        if options.get(name) is not None:
            given[field] = options[name]
    noise = _noise(options.get("snr"), options.get("dose"), options.get("noise_model"))
    structures = _structures(options.get("structure"), options.get("structures"))
    with flag_names(FLAGS):
        return TomogramConfig(structures=structures, **noise, **given)


def run(options: dict[str, Any], defaults: dict[str, Any] | None = None) -> None:
    """Simulate the tomograms the options describe and write them with provenance.

    ``defaults`` holds the default of each option of the command; an option outside
    :data:`TOMOGRAM_OPTIONS` and ``_USED`` given another value is refused."""
    defaults = defaults or {}
    for name, value in options.items():
        if name in _USED or name in TOMOGRAM_OPTIONS:
            continue
        if value not in (None, False, [], ()) and value != defaults.get(name):
            raise ParameterError(f"{_flag(name)} is not used with --tomogram")
    out: Path = options["out"]
    config = tomogram_config(options)
    with flag_names(FLAGS):
        simulator = TomogramSimulator(config)  # reads the structures before any output
        common.output_folder(out)
        with common.progress_bar("simulate tomograms", total=config.n_tomograms) as progress:
            simulate_tomogram_dataset(
                out,
                config,
                overwrite=bool(options.get("overwrite")),
                write_tilts=bool(options.get("write_tilts")),
                progress=progress,
                simulator=simulator,
            )
    common.write_provenance(
        out,
        "simulate --tomogram",
        {"manifest": str(out / "manifest.json"), "config": config.to_dict()},
    )
    z, y, x = config.shape_zyx
    level = f"SNR {config.snr}" if config.snr is not None else f"dose {config.dose_e_per_a2} e/Å²"
    echo(
        f"wrote {config.n_tomograms} tomogram(s) of {x}x{y}x{z} voxels of "
        f"{config.voxel_size_angstrom:g} Å (clean, even, odd; {level} per tilt series) to {out}"
    )


def with_tomogram_mode(command: Callable[..., None]) -> Callable[..., None]:
    """``command`` (``cryoden simulate``) with the options of :data:`TOMOGRAM_OPTIONS`.

    With ``--tomogram`` the call goes to :func:`run`; without it a tomogram option given is
    refused (one line) and the others go to ``command`` unchanged.
    """

    signature = inspect.signature(command)
    defaults = {
        name: getattr(parameter.default, "default", parameter.default)
        for name, parameter in signature.parameters.items()
    }

    @functools.wraps(command)
    def simulate(**options: Any) -> None:
        if options.get("tomogram"):
            run(options, defaults)
            return
        for name in TOMOGRAM_OPTIONS:
            if options.pop(name) not in (None, False):
                raise ParameterError(f"{_flag(name)} needs --tomogram")
        command(**options)

    parameters = list(signature.parameters.values())
    parameters += [option_parameter(n, t, o) for n, (t, o) in TOMOGRAM_OPTIONS.items()]
    simulate.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    return simulate
