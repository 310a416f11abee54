"""Side-by-side figure of real particle images: raw | Gaussian filter | the shipped general model.

    python scripts/figure_general_real.py                       # docs/figures/general_real.png
    python scripts/figure_general_real.py --input ../shared/data/particles/relion31.mrcs \\
        --pixel-size 2.806 --sigma 1.5 --out /tmp/relion31.png

The default input is the 17 real particle images of ``particles/aspire_sample.mrcs`` in the
shared data folder (K2 micrographs, about 1.34 Å per pixel from its STAR file; the MRC header has
none). There is no clean image of real data, so the Gaussian's width is chosen by eye
(``--sigma``, in pixels) and written in the figure. Each row shows one particle, its three
panels on one grey scale (the raw image's 0.5-99.5 percentiles). The figure is written
atomically.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from cryoden.benchmark.figures import side_by_side_figure
from cryoden.filters import gaussian_filter
from cryoden.inference.denoise import Denoiser
from cryoden.io import read_mrc
from cryoden.io.atomic import atomic_output
from cryoden.models import load_model
from cryoden.models.registry import resolve_model, shipped_model_at

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CRYODEN_SHARED_DATA", REPO.parent / "shared" / "data"))
DEFAULT_INPUT = SHARED / "particles" / "aspire_sample.mrcs"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--input", type=Path, default=DEFAULT_INPUT)
    parser.add_argument("--pixel-size", type=float, default=1.34, help="Å, for the caption")
    parser.add_argument("--indices", default="0,1,2", help="images of the stack to show")
    parser.add_argument("--sigma", type=float, default=2.0, help="Gaussian width in pixels")
    parser.add_argument("--model", default="general", help="a shipped model's name or a path")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "figures" / "general_real.png")
    args = parser.parse_args(argv)
    if not args.input.is_file():
        raise SystemExit(f"{args.input}: not found (the shared data folder holds the default)")
    data = read_mrc(args.input).data
    stack = data[None] if data.ndim == 2 else data
    images = [np.asarray(stack[int(i)], dtype=np.float32) for i in args.indices.split(",")]
    path = resolve_model(args.model)
    loaded = load_model(path)
    denoise = Denoiser(loaded, threads=args.threads, device="cpu")
    denoised = [denoise(image) for image in images]
    gaussians = [gaussian_filter(image, sigma_px=args.sigma) for image in images]
    shipped = shipped_model_at(path)
    status = shipped.card.get("status", "") if shipped is not None else str(path)
    title = (
        f"{args.input.name} (real, {args.pixel_size:g} Å/px); model: {args.model} "
        f"({status.split(':')[0]})"
    )
    labels = ("raw", f"Gaussian, sigma {args.sigma:g} px", "general model")
    png = side_by_side_figure(list(zip(images, gaussians, denoised)), labels, title)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(args.out) as tmp:
        tmp.write_bytes(png)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
