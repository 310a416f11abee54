"""Run the seed study in one command: every method at the study's 10 SNRs, scored and reported.

Example::

    cryoden bench seed --quick --out study/
    cryoden bench seed --out study-full/ --structure ../shared/data/groel/1AON.pdb.gz
    cryoden bench seed --quick --out study/ --methods n2n-seed5,n2n-seed4,lowpass-0.05
    cryoden bench seed --quick --out check/ --seed 3 --train-steps 400 --threads 2
    cryoden bench seed --quick --realistic --out study/

Clean projections of GroEL (the atomic model given with ``--structure``, otherwise the embedded
GroEL-like phantom) get white Gaussian noise at the 10 SNRs from 0.01 to 0.5. Each method
denoises the same test images at each SNR: Noise2Noise with the study's 5- and 4-level networks
and a U-Net, Noise2Void, Neighbor2Neighbor, and a supervised U-Net trained on the clean images
(the ceiling the others are measured against), each trained per SNR for a fixed number of
optimiser steps, by default starting from the same method's model of the next lower SNR (the
lowest from a network pretrained on the highest SNR's data); the
study's low-pass cutoffs 0.05 and 0.001; and low-pass, Gaussian, median, mean, Wiener (and BM3D
when installed) filters whose parameter is chosen on a separate clean calibration image.
Training, calibration and test images are disjoint.

Writes ``OUT/results.json``, ``results.csv``, ``figures/*.png``, ``report.html`` (self-contained)
and ``report.md``. ``--quick`` uses small images and a short training budget per cell, for a CPU;
without it the full settings use larger images, more data and longer training. Budgets are
counted in optimiser steps (``--train-steps`` per learned cell) and every cell runs with
``--threads`` torch threads, so the same seed, machine and thread count give the same numbers;
the wall time of each cell is recorded as a result. Rerunning with the same ``--out`` resumes:
finished (method, SNR) cells are kept and skipped.

``--realistic`` runs the same methods, split and SNRs on realistic micrographs instead, into
``OUT/realistic/`` (its own results and report, beside a white-noise study in ``OUT``): each
image is a frame sum of a simulated movie of a micrograph crop (Poisson counts per frame, a
counting detector's MTF and DQE, smooth sub-pixel drift corrected with bilinear interpolation,
an astigmatic CTF with an envelope, ice of uneven thickness), its Noise2Noise pair the sum of
the other frames. The SNR of each level is set by the dose, chosen so that the training images'
mean measured SNR matches the level; the report lists the doses.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from cryoden.benchmark.registry import METHOD_NAMES, parse_methods
from cryoden.benchmark.study import PRESETS, preset
from cryoden.cli.common import (
    check_output_folder,
    echo,
    number,
    progress_bar,
    write_provenance,
)
from cryoden.errors import InputFileError, ParameterError


@contextmanager
def _quiet_trainings() -> Iterator[None]:
    """Every learned cell's training logs each epoch at INFO: keep only the study's own lines
    unless --verbose."""
    names = ("cryoden.training", "cryoden.inference")
    saved = {name: logging.getLogger(name).level for name in names}
    if logging.getLogger("cryoden").getEffectiveLevel() > logging.DEBUG:
        for name in names:
            logging.getLogger(name).setLevel(logging.WARNING)
    try:
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def _methods_option(text: str | None) -> tuple[str, ...]:
    """``--methods`` parsed by the library, its errors naming the flag."""
    try:
        return parse_methods(text)
    except ParameterError as exc:
        message = str(exc).removeprefix("methods: ")
        raise ParameterError(f"--methods: {message}") from None


def command(
    out: Path = typer.Option(..., "--out", "-o", metavar="DIR", help="Output folder."),
    quick: bool = typer.Option(
        False,
        "--quick",
        help="Small images and a short training budget per cell, for a CPU (default: the full "
        "settings, larger images and longer training).",
    ),
    structure: Path = typer.Option(
        None,
        "--structure",
        metavar="FILE",
        help="Atomic model (PDB/mmCIF, .gz allowed); default: the embedded GroEL phantom.",
    ),
    seed: int = typer.Option(
        0,
        "--seed",
        help="Seed of orientations, noise and training.",
        callback=number("--seed", minimum=0),
    ),
    methods: str = typer.Option(
        None,
        "--methods",
        metavar="a,b,...",
        help=f"Comma-separated subset of: {', '.join(METHOD_NAMES)} (default: all available).",
    ),
    train_steps: int = typer.Option(
        None,
        "--train-steps",
        metavar="N",
        help="Optimiser steps per learned (method, SNR) cell, twice as many for a cell trained "
        "from random weights (default: the preset's).",
        callback=number("--train-steps", minimum=1),
    ),
    threads: int = typer.Option(
        None,
        "--threads",
        metavar="N",
        help="Torch CPU threads of every cell's training and inference, recorded in the results "
        "(default: 2, or 1 on a one-core machine).",
        callback=number("--threads", minimum=1, maximum=1024),
    ),
    warm_start: bool = typer.Option(
        True,
        "--warm-start/--cold-start",
        help="Start each learned cell from the same method's model of the next lower SNR, the "
        "lowest from a network pretrained on the highest SNR's data (default), or every cell "
        "from random weights as the original study did.",
    ),
    shared_noise: bool = typer.Option(
        True,
        "--shared-noise/--independent-noise",
        help="Give each image one noise field scaled to every SNR (default: common random "
        "numbers, so SNR levels differ only in SNR), or independent noise at every SNR.",
    ),
    preset_name: str = typer.Option(
        None, "--preset", hidden=True, help=f"Settings preset: {', '.join(PRESETS)}."
    ),
    realistic: bool = typer.Option(
        False,
        "--realistic",
        help="Realistic micrographs (movie frame sums, SNR set by the dose) instead of white "
        "Gaussian noise, into OUT/realistic/.",
    ),
) -> None:
    """Reproduce the seed study: every method at the study's SNRs, with figures and an HTML
    report."""
    from cryoden.benchmark.realistic import (
        REALISTIC_DIR,
        RealisticStudyConfig,
        run_realistic_study,
    )
    from cryoden.benchmark.runner import run_study

    if structure is not None:
        if not structure.exists():
            raise InputFileError(structure, "structure file not found")
        if not structure.is_file():
            raise InputFileError(structure, "is not a file")
    if seed < 0:
        raise ParameterError(f"--seed must be >= 0, got {seed}")
    if preset_name is not None and quick:
        raise ParameterError("give either --quick or --preset, not both")
    name = preset_name or ("quick" if quick else "full")
    changes: dict[str, object] = {
        "seed": seed,
        "methods": _methods_option(methods),
        "structure": str(structure) if structure is not None else None,
        "warm_start": warm_start,
        "shared_noise": shared_noise,
    }
    if train_steps is not None:
        changes["train_steps"] = int(train_steps)
    if threads is not None:
        changes["threads"] = int(threads)
    config = preset(name, **changes)
    if realistic:
        config = RealisticStudyConfig.from_study(config)
        out = out / REALISTIC_DIR
    check_output_folder(out)  # created by the study once the structure has been read
    typer.echo(
        f"seed study ({name}{', realistic' if realistic else ''}): {len(config.methods)} methods x {len(config.snr_levels)} SNRs, "
        f"{config.train_steps} training steps per learned cell ({config.total_train_steps} in "
        f"all), {config.threads} torch thread(s) (finished cells in OUT are reused)",
        err=True,
    )
    cells = len(config.methods) * len(config.snr_levels)
    with _quiet_trainings(), progress_bar("seed study cells", total=cells) as progress:
        # The structure is read before anything is written: a bad file fails in one line.
        if isinstance(config, RealisticStudyConfig):
            run = run_realistic_study(config, out, progress=progress)
        else:
            run = run_study(config, out, progress=progress)
    write_provenance(
        out,
        "bench seed",
        {
            "out": out,
            "preset": name,
            "structure": structure,
            "seed": seed,
            "methods": list(config.methods),
            "train_steps": config.train_steps,
            "threads": config.threads,
            "warm_start": config.warm_start,
            "shared_noise": config.shared_noise,
            "realistic": realistic,
            "config": config.to_dict(),
            "cells_computed": run.computed,
            "cells_reused": run.reused,
        },
    )
    echo(
        f"{out}: {run.computed} cells computed, {run.reused} reused, {run.seconds:.0f} s; "
        f"report at {run.report_paths.get('html', out / 'report.html')}"
    )
