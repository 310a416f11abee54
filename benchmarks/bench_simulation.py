"""Speed of cryoden.simulation: projections of an atomic model (target: 100 x 256² in < 10 s).

Times :class:`cryoden.simulation.projection_atoms.AtomProjector` on 1AON (the GroEL-GroES
complex, 58,674 ATOM records) at 1.5 Å/px, where the whole complex (about 230 Å across) fits in
256 px in every orientation. The rotations are drawn uniformly on SO(3). Falls back to the
embedded phantom when the structure file is absent. Prints the machine load so numbers can be
judged.

Example::

    .venv/bin/python benchmarks/bench_simulation.py
    .venv/bin/python benchmarks/bench_simulation.py --structure my.cif --n 50 --size 384
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np

from cryoden.simulation.orientations import random_rotations
from cryoden.simulation.phantoms import groel_phantom
from cryoden.simulation.projection_atoms import AtomProjector
from cryoden.simulation.structures import read_atoms

REPO = Path(__file__).resolve().parents[1]
DEFAULT_STRUCTURE = REPO.parent / "shared" / "data" / "groel" / "1AON.pdb.gz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--structure", type=Path, default=DEFAULT_STRUCTURE)
    parser.add_argument("--n", type=int, default=100, help="projections per repeat")
    parser.add_argument("--size", type=int, default=256, help="image side in pixels")
    parser.add_argument("--pixel-size", type=float, default=1.5, help="Å per pixel")
    parser.add_argument("--repeats", type=int, default=3, help="report the best of N repeats")
    parser.add_argument("--hetatm", action="store_true", help="include HETATM records")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    if args.structure.is_file():
        atoms = read_atoms(args.structure, include_hetatm=args.hetatm)
        name = args.structure.name
    else:
        print(f"{args.structure} not found: using the embedded GroEL-like phantom")
        atoms = groel_phantom()
        name = "phantom:groel"

    print(f"python {platform.python_version()}, numpy {np.__version__}, {os.cpu_count()} CPUs")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"structure: {name}, {len(atoms)} atoms, elements {atoms.element_counts()}")
    diameter = 2 * atoms.radius_angstrom()
    field = args.size * args.pixel_size
    print(
        f"particle diameter {diameter:.0f} Å, image {args.size} px x {args.pixel_size} Å = {field:.0f} Å"
    )

    t0 = time.perf_counter()
    projector = AtomProjector(atoms, size=args.size, pixel_size_angstrom=args.pixel_size)
    setup = time.perf_counter() - t0
    rotations = random_rotations(args.n, rng=np.random.default_rng(args.seed))
    projector.project(rotations[0])  # warm-up (FFT plans, caches)

    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        for rotation in rotations:
            projector.project(rotation)
        times.append(time.perf_counter() - t0)
    best = min(times)
    print(f"setup: {setup * 1e3:.1f} ms")
    print(
        f"{args.n} projections of {args.size}x{args.size}: best {best:.2f} s "
        f"({best / args.n * 1e3:.1f} ms per projection); all repeats: "
        + ", ".join(f"{t:.2f} s" for t in times)
    )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
