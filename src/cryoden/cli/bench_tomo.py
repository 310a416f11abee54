"""Run the tomography study: 3D denoisers on simulated tomograms of a structure never trained on.

Example::

    cryoden bench tomo --quick --out study/ --test-structures 1AON.pdb.gz,1OEL.pdb
    cryoden bench tomo --quick --out check/ --test-structures 1AON.pdb.gz \\
        --train-steps 100 --methods n2n,gaussian --snr 0.1 --threads 1

Tomograms of a slab crowded with randomly oriented copies of a structure are simulated as
single-axis tilt series (±60° in 3° steps) whose even and odd halves get independent Gaussian
noise at each tilt-image SNR (``--snr``), then reconstructed by weighted back-projection
(missing wedge included); the clean reference is the reconstruction of the noise-free tilt
series. 3D Noise2Noise (even/odd pairs) and 3D Noise2Void (single halves) train on tomograms of
the training structures (``--train-structures``; the embedded GroEL-like phantom by default)
for a fixed number of optimiser steps on ``--threads`` torch threads, then denoise the even
half of tomograms of the test structures (``--test-structures``, required: never trained on,
from other random streams). 3D Gaussian and low-pass filters, each at the parameter that is best
against the clean test tomograms (an oracle), are the bar to beat. Scores: PSNR, CC and FSC with
the clean reconstruction.

Writes ``OUT/results.json``, ``montage.npz``, ``figures/*.png``, ``report.html`` (self-contained)
and ``report.md``. ``--quick`` uses 128 x 128 x 64 voxel tomograms of 8 Å and a CPU budget; the
full settings use larger tomograms, more data and longer training. The same seed, machine and
thread count give the same numbers.
"""

from __future__ import annotations

from pathlib import Path

import typer

from cryoden.benchmark.tomo import TOMO_PRESETS, parse_tomo_methods, tomo_preset
from cryoden.benchmark.tomo_methods import TOMO_METHODS
from cryoden.cli.bench_seed import _quiet_trainings
from cryoden.cli.common import (
    check_number,
    check_output_folder,
    echo,
    flag_names,
    number,
    progress_bar,
    write_provenance,
)
from cryoden.errors import InputFileError, ParameterError

#: Library parameter -> the flag that sets it.
FLAGS = {
    "test_structures": "--test-structures",
    "train_structures": "--train-structures",
    "snr_levels": "--snr",
    "train_steps": "--train-steps",
    "threads": "--threads",
    "seed": "--seed",
    "methods": "--methods",
}


def _paths(text: str | None) -> tuple[str, ...]:
    return tuple(p.strip() for p in (text or "").split(",") if p.strip())


def _snrs(text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        values = tuple(float(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise ParameterError(f"--snr must be numbers separated by commas, got {text!r}") from None
    if not values:
        raise ParameterError("--snr needs at least one value")
    for value in values:
        check_number("--snr", value, above=0)
    return values


def command(
    out: Path = typer.Option(..., "--out", "-o", metavar="DIR", help="Output folder."),
    test_structures: str = typer.Option(
        ..., "--test-structures", metavar="A,B,...",
        help="Structure file(s) of the test tomograms (PDB/mmCIF or MRC), never trained on."),
    train_structures: str = typer.Option(
        None, "--train-structures", metavar="A,B,...",
        help="Structure file(s) of the training tomograms (default: the embedded phantom)."),
    quick: bool = typer.Option(
        False, "--quick", help="128 x 128 x 64 voxel tomograms and a CPU budget (default: the "
        "full settings, larger tomograms and longer training)."),
    snr: str = typer.Option(
        None, "--snr", metavar="S,...", help="Tilt-image SNRs (default: 0.1,0.3,1)."),
    methods: str = typer.Option(
        None, "--methods", metavar="a,b,...",
        help=f"Comma-separated subset of: {', '.join(TOMO_METHODS)} (default: all)."),
    train_steps: int = typer.Option(
        None, "--train-steps", metavar="N", callback=number("--train-steps", minimum=1),
        help="Optimiser steps per learned (method, SNR) cell; twice as many for the first, "
        "trained from random weights (default: the preset's)."),
    threads: int = typer.Option(
        None, "--threads", metavar="N", callback=number("--threads", minimum=1, maximum=1024),
        help="Torch CPU threads of every training and inference (default: 2, or 1 on a "
        "one-core machine)."),
    seed: int = typer.Option(
        0, "--seed", callback=number("--seed", minimum=0),
        help="Seed of the tomograms, their noise and the trainings."),
    preset_name: str = typer.Option(
        None, "--preset", hidden=True, help=f"Settings preset: {', '.join(TOMO_PRESETS)}."),
) -> None:  # fmt: skip
    """Reproduce the seed study's idea in 3D: 3D N2N, N2V and oracle filters on tomograms."""
    from cryoden.benchmark.tomo_runner import run_tomo_study

    if preset_name is not None and quick:
        raise ParameterError("give either --quick or --preset, not both")
    name = preset_name or ("quick" if quick else "full")
    test_paths, train_paths = _paths(test_structures), _paths(train_structures)
    for path in (*test_paths, *train_paths):
        if not Path(path).is_file():
            raise InputFileError(path, "structure file not found")
    changes: dict[str, object] = {
        "seed": seed,
        "test_structures": test_paths,
        "train_structures": train_paths,
    }
    levels = _snrs(snr)
    if levels is not None:
        changes["snr_levels"] = levels
    if methods is not None:
        changes["methods"] = parse_tomo_methods_flag(methods)
    if train_steps is not None:
        changes["train_steps"] = int(train_steps)
    if threads is not None:
        changes["threads"] = int(threads)
    with flag_names(FLAGS):
        config = tomo_preset(name, **changes)
    check_output_folder(out)
    typer.echo(
        f"tomography study ({name}): {len(config.methods)} methods x {len(config.snr_levels)} "
        f"SNRs, {config.total_train_steps} training steps in all, {config.threads} torch "
        "thread(s)",
        err=True,
    )
    total = config.n_train + config.n_test + len(config.methods) * len(config.snr_levels)
    with (
        flag_names(FLAGS),
        _quiet_trainings(),
        progress_bar("tomography study", total=total) as bar,
    ):
        run = run_tomo_study(config, out, progress=bar)
    write_provenance(out, "bench tomo", {"out": out, "preset": name, "config": config.to_dict()})
    echo(f"{out}: {len(run.results['results'])} cells in {run.seconds:.0f} s; report at "
         f"{run.report_paths.get('html', out / 'report.html')}")  # fmt: skip


def parse_tomo_methods_flag(text: str) -> tuple[str, ...]:
    """``--methods`` parsed by the library, its errors naming the flag."""
    try:
        return parse_tomo_methods(text)
    except ParameterError as exc:
        raise ParameterError(f"--methods: {str(exc).removeprefix('methods: ')}") from None
