"""Tiny particles for the tomography study's tests (fast to grid, a few voxels across)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cryoden.io import write_mrc
from cryoden.simulation.projection_atoms import atoms_to_map
from cryoden.simulation.structures import Atoms


def particle_map(path: Path, clumps, seed: int) -> str:
    """A particle made of carbon clumps ``(centre Å, spread Å, count)``, written as an MRC map
    of 24³ voxels of 2 Å; returns the path."""
    rng = np.random.default_rng(seed)
    coords = np.concatenate([rng.normal(c, s, size=(n, 3)) for c, s, n in clumps])
    volume = atoms_to_map(
        Atoms(coords, np.full(len(coords), "C")), voxel_size_angstrom=2.0, shape=24
    )
    write_mrc(path, volume, voxel_size_angstrom=2.0)
    return str(path)


#: A two-clump particle (training) and a three-clump one (test): radius below 20 Å.
TRAIN_CLUMPS = [((0, 0, 0), 3.0, 80), ((7, 2, 0), 2.5, 50)]
TEST_CLUMPS = [((0, 0, 0), 2.0, 40), ((-5, 5, 3), 3.0, 70), ((4, -6, -2), 2.0, 30)]


def run_cli(capsys, monkeypatch, *args) -> tuple[int, str, str]:
    """Run the ``cryoden`` entry point in-process: (exit code, stdout, stderr)."""
    import sys

    from cryoden.cli.main import main

    monkeypatch.setattr(sys, "argv", ["cryoden", *map(str, args)])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    captured = capsys.readouterr()
    return code, captured.out, captured.err
