"""The simulated micrographs of cryoden's shipped general model: what it trains on, what it is
tested on, and the cache of training pairs.

Shared by ``scripts/train_general.py`` (training) and ``benchmarks/bench_general.py`` (held-out
quality); both put this folder on ``sys.path``.

Each image is a field of particles of one *source*: a real structure from the shared data folder
(atoms or a map; each skipped cleanly when absent), the embedded GroEL-like phantom, or a
procedural particle family (:mod:`cryoden.simulation.procedural`, a new random particle per
image). Conditions are drawn per image over the trained range: pixel size 0.6-2.5 Å
(log-uniform), SNR 0.01-0.5 (log-uniform; ``var(clean) / var(noise)``), a CTF with defocus
0.5-3 µm (200 or 300 kV) on most images, an ice-thickness gradient on half, the contrast sign
either way, white or correlated Gaussian detector noise (adjacent-pixel correlation 0.05-0.6 per
axis, :mod:`cryoden.noise.correlated`). The Noise2Noise target of each image is a second,
independent noise draw of the same kind and level.

Held out, never trained on: the 1AON GroEL-GroES model (a structure file) and the ``filament``
family (a shape family); and the random streams: training images draw from
``SeedSequence(seed, spawn_key=(0, index))``, test images from ``spawn_key=(1, ...)``.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from cryoden.io import read_mrc, write_mrc
from cryoden.io.atomic import atomic_output
from cryoden.simulation.ctf import apply_ctf
from cryoden.simulation.fields import place_particles
from cryoden.simulation.orientations import random_rotations
from cryoden.simulation.phantoms import groel_phantom
from cryoden.simulation.procedural import random_particle
from cryoden.simulation.projection_atoms import AtomProjector
from cryoden.simulation.projection_maps import MapProjector
from cryoden.simulation.sources import map_radius
from cryoden.simulation.structures import Atoms, read_atoms

try:  # a three-tap filter of the same kind stands in when the module is absent
    from cryoden.noise.correlated import correlated_gaussian_noise as _correlated_noise
except ImportError:  # pragma: no cover - depends on the checkout
    _correlated_noise = None
try:  # the detector's MTF blurs the signal; without the module the signal is not blurred
    from cryoden.simulation.detector import DetectorModel
except ImportError:  # pragma: no cover - depends on the checkout
    DetectorModel = None

logger = logging.getLogger("general_data")

REPO = Path(__file__).resolve().parents[1]

#: Version of the data mix; a cache written by another version is refused.
MIX_VERSION = 1

#: The trained range (also written into the model card and checked by the registry).
PIXEL_SIZE_RANGE_ANGSTROM = (0.6, 2.5)
SNR_RANGE = (0.01, 0.5)
DEFOCUS_RANGE_UM = (0.5, 3.0)
CORRELATION_RANGE = (0.05, 0.6)
VOLTAGES_KV = (200.0, 300.0)
CTF_FRACTION = 0.75
GRADIENT_FRACTION = 0.5
CORRELATED_FRACTION = 0.5
#: Pixels simulated beyond each edge and cropped, so particles and CTF fringes cross the edges.
MARGIN_PX = 16

#: Structure files in the shared data folder: name -> (relative path, kind).
STRUCTURES: dict[str, tuple[str, str]] = {
    "1OEL": ("groel/1OEL.pdb", "atoms"),
    "EMD-1080": ("groel/emd_1080_groel_11.5A.mrc", "map"),
    "1AON": ("groel/1AON.pdb.gz", "atoms"),
}
#: What training draws from and what is held out for the benchmark.
TRAIN_STRUCTURES = ("1OEL", "EMD-1080")
TRAIN_FAMILIES = ("lobes", "shell", "blob")
HELD_OUT_STRUCTURES = ("1AON",)
HELD_OUT_FAMILIES = ("filament",)
PHANTOM = "groel-phantom"
#: spawn_key roles of the random streams: training and test images never share one.
ROLE_KEYS = {"train": 0, "test": 1}


def shared_data_dir() -> Path:
    """``$CRYODEN_SHARED_DATA`` or ``../shared/data`` beside the checkout."""
    env = os.environ.get("CRYODEN_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def image_rng(seed: int, role: str, *index: int) -> np.random.Generator:
    """The generator of one image: ``SeedSequence(seed, spawn_key=(role key, *index))``."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(ROLE_KEYS[role], *index)))


def sources(role: str) -> list[str]:
    """The sources of ``role`` (``"train"`` or ``"test"``) that are available here: structure
    names whose file exists, the phantom (training), families as ``"family:<name>"``."""
    names = TRAIN_STRUCTURES if role == "train" else HELD_OUT_STRUCTURES
    families = TRAIN_FAMILIES if role == "train" else HELD_OUT_FAMILIES
    found = []
    for name in names:
        path = shared_data_dir() / STRUCTURES[name][0]
        if path.is_file():
            found.append(name)
        else:
            logger.info("%s not found at %s: skipped", name, path)
    extra = [PHANTOM] if role == "train" else []
    return found + extra + [f"family:{f}" for f in families]


@dataclass(frozen=True)
class Conditions:
    """How one image is made (JSON-ready through :func:`dataclasses.asdict`)."""

    source: str
    pixel_size_angstrom: float
    snr: float
    noise: str  # "white" or "correlated"
    correlation_yx: tuple[float, float]
    ctf: dict[str, float] | None
    gradient: float  # ice gradient amplitude relative to the particles' standard deviation
    invert: bool
    coverage: float
    psf_sigma_px: float  # the detector's localisation blur (its MTF), when modelled


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(math.log(low), math.log(high))))


def draw_ctf(rng: np.random.Generator) -> dict[str, float]:
    """CTF parameters over the trained range (apply_ctf's keyword arguments)."""
    return {
        "defocus_angstrom": float(rng.uniform(*DEFOCUS_RANGE_UM) * 1e4),
        "voltage_kv": float(rng.choice(VOLTAGES_KV)),
        "cs_mm": 2.7,
        "amplitude_contrast": float(rng.uniform(0.07, 0.1)),
        "b_factor": float(rng.uniform(0.0, 100.0)),
    }


def draw_conditions(
    rng: np.random.Generator,
    source: str,
    *,
    snr: float | None = None,
    noise: str | None = None,
    ctf: bool | None = None,
) -> Conditions:
    """Random conditions over the trained range; ``snr``, ``noise`` and ``ctf`` fix those."""
    pixel = _log_uniform(rng, *PIXEL_SIZE_RANGE_ANGSTROM)
    drawn_snr = _log_uniform(rng, *SNR_RANGE)
    kind = "correlated" if rng.random() < CORRELATED_FRACTION else "white"
    rho_y, rho_x = (float(r) for r in rng.uniform(*CORRELATION_RANGE, size=2))
    with_ctf = bool(rng.random() < CTF_FRACTION)
    ctf_params = draw_ctf(rng)
    gradient = float(rng.uniform(0.2, 1.0)) if rng.random() < GRADIENT_FRACTION else 0.0
    invert = bool(rng.random() < 0.5)
    coverage = float(rng.uniform(0.05, 0.35))
    psf_sigma = float(rng.uniform(0.1, 0.3))
    kind = noise or kind
    return Conditions(
        source=source,
        pixel_size_angstrom=round(pixel, 4),
        snr=float(snr) if snr is not None else drawn_snr,
        noise=kind,
        correlation_yx=(rho_y, rho_x) if kind == "correlated" else (0.0, 0.0),
        ctf=ctf_params if (with_ctf if ctf is None else ctf) else None,
        gradient=gradient,
        invert=invert,
        coverage=coverage,
        psf_sigma_px=psf_sigma if DetectorModel is not None else 0.0,
    )


@functools.lru_cache(maxsize=8)
def _structure_atoms(name: str) -> Atoms:
    if name == PHANTOM:
        return groel_phantom()
    return read_atoms(shared_data_dir() / STRUCTURES[name][0])


@functools.lru_cache(maxsize=2)
def _map_stamps(name: str) -> tuple[MapProjector, float, float]:
    """A projector of the map at its own voxel size, the voxel size and the particle radius.

    The solvent is masked out first (values below 15 % of the maximum set to 0), so that pasted
    projections carry no box edges."""
    mrc = read_mrc(shared_data_dir() / STRUCTURES[name][0])
    volume = np.asarray(mrc.data, dtype=np.float64)
    threshold = 0.15 * float(volume.max())
    volume = ndimage.gaussian_filter(np.clip(volume - threshold, 0.0, None), 1.0)
    voxel = float(mrc.voxel_size_angstrom[0])
    radius = map_radius(volume, voxel)
    stamp = int(2 * radius / voxel) + 8
    projector = MapProjector(
        volume, voxel, size=stamp + stamp % 2, pixel_size_angstrom=voxel, padding=2.0
    )
    return projector, voxel, radius


def _positions(
    field_angstrom: float, radius: float, coverage: float, rng: np.random.Generator
) -> np.ndarray:
    """Particle centres ``(k, 2)`` in Å: non-overlapping where the field holds two radii,
    else one to three anywhere (a particle or filament larger than the field)."""
    if field_angstrom >= 2.2 * radius:
        n = int(np.clip(coverage * field_angstrom**2 / (np.pi * radius**2), 1, 40))
        return place_particles(field_angstrom, radius, rng=rng, n_particles=n)
    n = int(rng.integers(1, 4))
    return rng.uniform(-0.5, 0.5, size=(n, 2)) * field_angstrom


def _atom_field(
    atoms: Atoms, b_factor: float, canvas: int, cond: Conditions, rng: np.random.Generator
) -> np.ndarray:
    p = cond.pixel_size_angstrom
    radius = atoms.radius_angstrom()
    if "filament" in atoms.source:  # a filament's radius is half its length
        radius = float(np.percentile(np.hypot(*atoms.coords_angstrom[:, :2].T), 95))
    shifts = _positions(canvas * p, radius, cond.coverage, rng)
    rotations = random_rotations(len(shifts), rng=rng)
    projector = AtomProjector(atoms, size=canvas, pixel_size_angstrom=p, b_factor=b_factor)
    return projector.project_many(rotations, shifts)


def _map_field(name: str, canvas: int, cond: Conditions, rng: np.random.Generator) -> np.ndarray:
    projector, voxel, radius = _map_stamps(name)
    p = cond.pixel_size_angstrom
    image = np.zeros((canvas, canvas))
    for shift in _positions(canvas * p, radius, cond.coverage, rng):
        stamp = projector.project(random_rotations(1, rng=rng)[0])
        stamp = ndimage.zoom(stamp.astype(np.float64), voxel / p, order=3)
        h = stamp.shape[0]
        y0 = int(round(canvas / 2 + shift[1] / p - h / 2))
        x0 = int(round(canvas / 2 + shift[0] / p - h / 2))
        ys, xs = slice(max(y0, 0), min(y0 + h, canvas)), slice(max(x0, 0), min(x0 + h, canvas))
        if ys.start < ys.stop and xs.start < xs.stop:
            image[ys, xs] += stamp[ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0]
    return image


def _gradient(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A smooth ice-thickness field of unit standard deviation: a random plane plus a Gaussian
    random field smoothed over a sixth of the image."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]] / max(shape)
    plane = rng.standard_normal() * yy + rng.standard_normal() * xx
    smooth = ndimage.gaussian_filter(rng.standard_normal(shape), max(shape) / 6, mode="wrap")
    smooth /= smooth.std() + 1e-12
    field = plane / (plane.std() + 1e-12) + rng.uniform(0.0, 1.0) * smooth
    return (field - field.mean()) / (field.std() + 1e-12)


def render_clean(cond: Conditions, size: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """The clean ``(size, size)`` image of ``cond`` (float32) and what was drawn for it."""
    canvas = size + 2 * MARGIN_PX
    drawn: dict[str, Any] = {}
    if cond.source.startswith("family:"):
        particle = random_particle(cond.source.split(":", 1)[1], rng=rng)
        drawn["particle"] = particle.description
        image = _atom_field(particle.atoms, particle.b_factor_a2, canvas, cond, rng)
    elif cond.source in STRUCTURES and STRUCTURES[cond.source][1] == "map":
        image = _map_field(cond.source, canvas, cond, rng)
    else:
        b_factor = float(rng.uniform(0.0, 150.0))
        drawn["b_factor_a2"] = round(b_factor, 1)
        image = _atom_field(_structure_atoms(cond.source), b_factor, canvas, cond, rng)
    if cond.ctf is not None:
        image = apply_ctf(
            image, pixel_size_angstrom=cond.pixel_size_angstrom, pad_factor=2.0, **cond.ctf
        )
    image = np.asarray(image, dtype=np.float64)
    if DetectorModel is not None:
        mtf = DetectorModel(psf_sigma_px=cond.psf_sigma_px).mtf(image.shape)
        image = np.fft.irfft2(np.fft.rfft2(image) * mtf, s=image.shape)
    image = image[MARGIN_PX:-MARGIN_PX, MARGIN_PX:-MARGIN_PX]
    if cond.invert:
        image = -image
    spread = float(image.std())
    if cond.gradient > 0 and spread > 0:
        image = image + cond.gradient * spread * _gradient(image.shape, rng)
    return image.astype(np.float32), drawn


def _three_tap_noise(
    shape: tuple[int, int], correlation: tuple[float, float], rng: np.random.Generator
) -> np.ndarray:
    """Unit-variance noise filtered by ``[a, 1, a]`` along each axis (lag-1 correlation
    ``2 a / (1 + 2 a²)``): the stand-in when :mod:`cryoden.noise.correlated` is absent."""
    noise = rng.standard_normal((shape[0] + 2, shape[1] + 2))
    for axis, rho in enumerate(correlation):
        a = 0.0 if rho == 0 else (1.0 - math.sqrt(max(0.0, 1.0 - 2.0 * rho * rho))) / (2.0 * rho)
        taps = np.array([a, 1.0, a]) / math.sqrt(1.0 + 2.0 * a * a)
        noise = ndimage.correlate1d(noise, taps, axis=axis, mode="constant")
    return noise[1:-1, 1:-1]


def noise_draw(shape: tuple[int, int], cond: Conditions, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance detector noise of ``cond``'s kind."""
    if cond.noise == "white":
        return rng.standard_normal(shape)
    if _correlated_noise is not None:
        return _correlated_noise(shape, cond.correlation_yx, rng=rng)
    return _three_tap_noise(shape, cond.correlation_yx, rng)


def noisy_pair(
    clean: np.ndarray, cond: Conditions, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Two independent noisy copies of ``clean`` at ``cond.snr`` (the Noise2Noise pair)."""
    sigma = math.sqrt(float(np.var(clean, dtype=np.float64)) / cond.snr)
    a = clean + sigma * noise_draw(clean.shape, cond, rng)
    b = clean + sigma * noise_draw(clean.shape, cond, rng)
    return a.astype(np.float32), b.astype(np.float32)


def make_image(
    seed: int, role: str, index: tuple[int, ...], size: int, source_list: list[str], **fixed: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """Clean image, noisy pair and record of one image; ``fixed`` fixes ``snr``/``noise``/``ctf``
    (and ``source`` picks one of ``source_list`` by name)."""
    rng = image_rng(seed, role, *index)
    source = fixed.pop("source", None) or source_list[int(rng.integers(len(source_list)))]
    cond = draw_conditions(rng, source, **fixed)
    clean, drawn = render_clean(cond, size, rng)
    a, b = noisy_pair(clean, cond, rng)
    record = {"index": list(index), **asdict(cond), **drawn}
    return clean, a, b, record


# ------------------------------------------------------------------------------------ cache


def _chunk_names(folder: Path, chunk: int) -> tuple[Path, Path, Path]:
    stem = folder / f"chunk_{chunk:05d}"
    return Path(f"{stem}.a.mrcs"), Path(f"{stem}.b.mrcs"), Path(f"{stem}.json")


def _settings(n_images: int, size: int, seed: int, chunk_size: int) -> dict[str, Any]:
    return {
        "mix_version": MIX_VERSION,
        "n_images": n_images,
        "size": size,
        "seed": seed,
        "chunk_size": chunk_size,
        "sources": sources("train"),
    }


def build_cache(
    folder: Path,
    *,
    n_images: int,
    size: int,
    seed: int,
    chunk_size: int = 64,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Simulate the training pairs into ``folder`` in chunks (``chunk_NNNNN.a.mrcs``, ``.b.mrcs``
    and ``.json``, the JSON written last); chunks already there are kept, so an interrupted
    build resumes. Returns the cache's settings (``cache.json``); a folder holding another
    mix, size, seed or chunking is refused."""
    folder.mkdir(parents=True, exist_ok=True)
    settings = _settings(n_images, size, seed, chunk_size)
    manifest = folder / "cache.json"
    if manifest.exists():
        old = json.loads(manifest.read_text())
        if {k: v for k, v in old.items() if k != "n_images"} != {
            k: v for k, v in settings.items() if k != "n_images"
        }:
            raise SystemExit(f"{folder}: a cache of other settings is there ({old}); use another")
    with atomic_output(manifest) as tmp:
        tmp.write_text(json.dumps(settings, indent=2) + "\n")
    source_list = settings["sources"]
    n_chunks = -(-n_images // chunk_size)
    for chunk in range(n_chunks):
        a_path, b_path, json_path = _chunk_names(folder, chunk)
        count = min(chunk_size, n_images - chunk * chunk_size)
        if json_path.exists() and len(json.loads(json_path.read_text())) == count:
            continue
        a_list, b_list, records = [], [], []
        for k in range(count):
            index = chunk * chunk_size + k
            _, a, b, record = make_image(seed, "train", (index,), size, source_list)
            a_list.append(a)
            b_list.append(b)
            records.append(record)
            if progress is not None:
                progress(index + 1, n_images)
        write_mrc(a_path, np.stack(a_list))
        write_mrc(b_path, np.stack(b_list))
        with atomic_output(json_path) as tmp:
            tmp.write_text(json.dumps(records) + "\n")
    return settings


def load_cache(folder: Path, n_images: int) -> tuple[list[tuple[np.ndarray, np.ndarray]], list]:
    """The first ``n_images`` pairs of a cache and their records."""
    settings = json.loads((folder / "cache.json").read_text())
    pairs: list[tuple[np.ndarray, np.ndarray]] = []
    records: list[dict[str, Any]] = []
    chunk = 0
    while len(pairs) < n_images:
        a_path, b_path, json_path = _chunk_names(folder, chunk)
        if not json_path.exists():
            raise SystemExit(f"{folder}: chunk {chunk} is missing; rebuild the cache")
        a_stack, b_stack = read_mrc(a_path).data, read_mrc(b_path).data
        if a_stack.ndim == 2:
            a_stack, b_stack = a_stack[None], b_stack[None]
        pairs += list(zip(a_stack, b_stack))
        records += json.loads(json_path.read_text())
        chunk += 1
    del settings
    return pairs[:n_images], records[:n_images]


def training_summary(settings: dict[str, Any]) -> dict[str, Any]:
    """What the model card records about the training data (no paths, no measured numbers)."""
    return {
        "sources": settings["sources"],
        "structures": {
            name: STRUCTURES[name][0] for name in settings["sources"] if name in STRUCTURES
        },
        "procedural_families": [s.split(":", 1)[1] for s in settings["sources"] if ":" in s],
        "n_pairs": settings["n_images"],
        "image_size_px": settings["size"],
        "seed": settings["seed"],
        "mix_version": settings["mix_version"],
        "pixel_size_angstrom": list(PIXEL_SIZE_RANGE_ANGSTROM),
        "snr": list(SNR_RANGE),
        "defocus_um": list(DEFOCUS_RANGE_UM),
        "voltage_kv": list(VOLTAGES_KV),
        "ctf_fraction": CTF_FRACTION,
        "ice_gradient_fraction": GRADIENT_FRACTION,
        "noise_models": {
            "white Gaussian": 1.0 - CORRELATED_FRACTION,
            "correlated Gaussian (adjacent-pixel correlation "
            f"{CORRELATION_RANGE[0]}-{CORRELATION_RANGE[1]} per axis)": CORRELATED_FRACTION,
        },
        "correlated_noise_from": (
            "cryoden.noise.correlated" if _correlated_noise is not None else "three-tap filter"
        ),
        "detector_mtf": (
            "cryoden.simulation.detector (localisation blur 0.1-0.3 px, pixel aperture)"
            if DetectorModel is not None
            else "none"
        ),
        "dose": "not simulated as counts: Gaussian noise at a variance SNR stands in for it",
        "held_out": {
            "structures": list(HELD_OUT_STRUCTURES),
            "procedural_families": list(HELD_OUT_FAMILIES),
            "random_streams": "test images use spawn_key (1, ...); training (0, index)",
        },
    }
