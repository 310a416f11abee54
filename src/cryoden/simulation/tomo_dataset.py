"""Simulated tomograms: a crowded slab, its tilt series, two noisy halves and their WBP.

A tomogram ``i`` of a run seeded with ``seed`` is made in four steps:

1. the specimen (:mod:`cryoden.simulation.tomogram`): particles drawn from the pose stream
   ``(i, 0)`` of :func:`~cryoden.simulation.noise_streams.stream`;
2. its noise-free tilt series (:func:`~cryoden.simulation.tilt_series.project_tilt_series`), the
   projected potential in V·Å (map units × Å for maps);
3. two independent noisy copies of the tilt series, the *even* and *odd* halves (as from the
   even and odd frames of each tilt's movie), from the streams ``(i, 1, kind, level)`` and
   ``(i, 2, kind, level)`` (``kind``/``level`` as in
   :class:`~cryoden.simulation.noise_streams.NoiseLevel`; ``(0, 0)`` with shared noise):

   * at an SNR: white Gaussian noise of variance ``var(clean tilt series) / snr`` in every
     tilt (one variance for the whole series: the same dose in every tilt);
   * at a dose: each half gets half of the series' total dose, spread evenly over the tilts;
     the expected counts are ``dose * p**2 * (1 - 2 sigma V_z)`` (weak-phase contrast with an
     ideal in-focus phase plate, ``sigma`` the interaction constant), the counts are Poisson
     and each half is read back as a contrast ``counts / expected_background - 1``;

4. weighted back-projection of each (:func:`~cryoden.simulation.tilt_series.reconstruct_wbp`).

The clean reference is the reconstruction of the noise-free tilt series (for a dose, of the
noise-free contrast ``-2 sigma V_z``): it has the same missing wedge and WBP artefacts as the
halves, so a denoiser is scored on the noise it removes, not on the wedge. No CTF, no
radiation damage, no tilt-dependent thickness beyond the geometry, no alignment errors.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cryoden import __version__
from cryoden.errors import ParameterError
from cryoden.io import atomic_output, write_mrc
from cryoden.noise import estimate_snr, image_seed
from cryoden.noise.models import add_poisson_noise, noise_sigma_for_snr
from cryoden.simulation.ctf import interaction_constant
from cryoden.simulation.layout import check_output_folder, dose_dirname, snr_dirname
from cryoden.simulation.noise_streams import STREAM_A, STREAM_B, STREAM_POSES, NoiseLevel, stream
from cryoden.simulation.sources import Source, load_source
from cryoden.simulation.tilt_series import project_tilt_series, reconstruct_wbp
from cryoden.simulation.tomo_config import TomogramConfig
from cryoden.simulation.tomogram import (
    ParticleRenderer,
    PlacedParticle,
    draw_particles,
    render_volume,
    slab_particle_count,
)

logger = logging.getLogger(__name__)

#: The two halves of a tomogram and their noise streams.
HALVES: dict[str, int] = {"even": STREAM_A, "odd": STREAM_B}

#: Conventions recorded in every manifest.
CONVENTIONS = {
    "volume": "volume[z, y, x], origin at voxel shape // 2; y is the tilt axis, z the beam at 0",
    "tilt": "at tilt t, point (x, z) projects to column x cos t - z sin t from column X // 2",
    "reconstruction": "weighted back-projection (scikit-image iradon) per y slice",
    "clean": "reconstruction of the noise-free tilt series (same missing wedge as the halves)",
    "snr": "tilt level: var(clean tilts) / var(noise), each half; tomogram level measured",
    "rotation": "r' = R (r - centre); centre_angstrom (x, y, z) from voxel shape // 2",
    "seeds": "per tomogram: numpy SeedSequence(seed, spawn_key=(index, stream, ...))",
}


@dataclass(frozen=True, eq=False)
class CleanTomogram:
    """A noise-free tomogram: its particles, tilt series and reconstruction."""

    index: int
    particles: list[PlacedParticle]
    tilts: np.ndarray
    clean: np.ndarray


@dataclass(frozen=True, eq=False)
class SimulatedTomogram:
    """One tomogram: the clean reference, the even and odd halves, and how they were made.

    ``tilts`` maps ``"clean"``, ``"even"`` and ``"odd"`` to the tilt series reconstructed;
    ``measured_snr`` holds each half's SNR in its tilt series and in its reconstruction.
    """

    index: int
    clean: np.ndarray
    even: np.ndarray
    odd: np.ndarray
    particles: list[PlacedParticle]
    tilts: dict[str, np.ndarray]
    measured_snr: dict[str, float]


def noise_level(config: TomogramConfig) -> NoiseLevel:
    """The run's one noise level (its SNR or its dose); ParameterError when it has none."""
    if config.dose_e_per_a2 is not None:
        return NoiseLevel(dose_dirname(config.dose_e_per_a2), dose_e_per_a2=config.dose_e_per_a2)
    if config.snr is None:
        raise ParameterError("give a noise level: snr or dose_e_per_a2")
    return NoiseLevel(snr_dirname(config.snr), snr=config.snr)


class TomogramSimulator:
    """Clean and noisy tomograms of one :class:`TomogramConfig`.

    Parameters
    ----------
    config
        The run's settings.
    sources
        The loaded structures (one per ``config.structures``, or the phantom); loaded from
        the config when None.
    """

    def __init__(self, config: TomogramConfig, sources: Sequence[Source] | None = None):
        self.config = config
        if sources is None:
            if config.structures:
                sources = [load_source(path, None) for path in config.structures]
            else:
                sources = [load_source(None, config.phantom)]
        self.sources = list(sources)
        if config.dose_e_per_a2 is not None and any(s.atoms is None for s in self.sources):
            raise ParameterError(
                "Poisson noise at a dose (dose_e_per_a2) needs atomic models, not maps: a "
                "map's values have no known potential scale; give snr with a map"
            )
        self.renderers = [
            ParticleRenderer(s, config.voxel_size_angstrom, b_factor=config.b_factor_a2)
            for s in self.sources
        ]
        self.angles_deg = np.asarray(config.angles_deg)
        largest = max(s.radius_angstrom for s in self.sources)
        if 2.0 * largest > config.slab_angstrom:
            raise ParameterError(
                f"the ice slab ({config.slab_angstrom:.0f} Å; slab_thickness_angstrom, by "
                f"default 3/4 of the volume's thickness) is thinner than a particle (diameter "
                f"{2.0 * largest:.0f} Å); use a thicker slab or volume"
            )

    @property
    def n_particles(self) -> int:
        """Particles asked for per tomogram (fewer are placed when the slab is full)."""
        config = self.config
        if config.n_particles is not None:
            return config.n_particles
        mean_radius = float(np.mean([s.radius_angstrom for s in self.sources]))
        return slab_particle_count(
            config.shape_zyx,
            config.voxel_size_angstrom,
            config.slab_angstrom,
            mean_radius,
            config.volume_fraction,
        )

    def particles(self, index: int) -> list[PlacedParticle]:
        """The particles of tomogram ``index``, from its pose stream."""
        config = self.config
        return draw_particles(
            [s.radius_angstrom for s in self.sources],
            self.n_particles,
            shape_zyx=config.shape_zyx,
            voxel_size_angstrom=config.voxel_size_angstrom,
            slab_thickness_angstrom=config.slab_angstrom,
            rng=stream(config.seed, index, STREAM_POSES),
            min_separation=config.min_separation,
        )

    def specimen(self, index: int) -> tuple[np.ndarray, list[PlacedParticle]]:
        """The ``(Z, Y, X)`` potential of tomogram ``index`` and its particles."""
        particles = self.particles(index)
        return render_volume(self.renderers, particles, self.config.shape_zyx), particles

    def reconstruct(self, tilts: np.ndarray) -> np.ndarray:
        """Weighted back-projection of a tilt series of this run's geometry."""
        config = self.config
        return reconstruct_wbp(
            tilts, self.angles_deg, n_z=config.shape_zyx[0], filter_name=config.filter_name
        )

    def clean(self, index: int) -> CleanTomogram:
        """Tomogram ``index`` without noise: the tilt series (projected potential in V·Å, or
        the weak-phase contrast at a dose) and its reconstruction."""
        volume, particles = self.specimen(index)
        tilts = project_tilt_series(volume, self.angles_deg) * np.float32(
            self.config.voxel_size_angstrom
        )
        if self.config.dose_e_per_a2 is not None:
            tilts = self._contrast(tilts)
        return CleanTomogram(index, particles, tilts, self.reconstruct(tilts))

    def _contrast(self, potential_tilts: np.ndarray) -> np.ndarray:
        contrast = -2.0 * interaction_constant(self.config.voltage_kv) * potential_tilts
        peak = float(np.abs(contrast).max())
        if peak > 0.5:
            logger.warning(
                "weak-phase contrast reaches %.2f (> 0.5): the linear approximation "
                "overestimates the contrast of this thick, solvent-free specimen",
                peak,
            )
        return contrast.astype(np.float32)

    def unit_noise(self, index: int, half: str, shape: Sequence[int]) -> np.ndarray:
        """Standard normal noise of one half of tomogram ``index`` (the shared-noise stream)."""
        rng = stream(self.config.seed, index, HALVES[half], 0, 0)
        return rng.standard_normal(tuple(shape), dtype=np.float64).astype(np.float32)

    def noisy_tilts(
        self, clean: CleanTomogram, half: str, level: NoiseLevel, *, shared: bool = False
    ) -> np.ndarray:
        """One noisy half (``"even"`` or ``"odd"``) of a clean tilt series at ``level``.

        With ``shared`` (SNR levels only) the noise is :meth:`unit_noise` scaled to the SNR, so
        the halves at two SNRs differ only in the noise's scale.
        """
        if half not in HALVES:
            raise ParameterError(f"half must be 'even' or 'odd', got {half!r}")
        tilts = clean.tilts
        if level.snr is not None:
            sigma = noise_sigma_for_snr(tilts, level.snr)
            if shared:
                noise = self.unit_noise(clean.index, half, tilts.shape)
            else:
                rng = stream(self.config.seed, clean.index, HALVES[half], *level.stream_key())
                noise = rng.standard_normal(tilts.shape, dtype=np.float64).astype(np.float32)
            return (tilts + np.float32(sigma) * noise).astype(np.float32)
        assert level.dose_e_per_a2 is not None
        n_tilts = len(self.angles_deg)
        dose = level.dose_e_per_a2 / (2.0 * n_tilts)  # per tilt, per half
        rng = stream(self.config.seed, clean.index, HALVES[half], *level.stream_key())
        pixel = self.config.voxel_size_angstrom
        counts = add_poisson_noise(tilts, dose, pixel, rng=rng).astype(np.float64)
        return (counts / (dose * pixel**2) - 1.0).astype(np.float32)

    def simulate(self, index: int, level: NoiseLevel | None = None) -> SimulatedTomogram:
        """Tomogram ``index`` with its even and odd halves at ``level`` (the config's level by
        default)."""
        level = noise_level(self.config) if level is None else level
        clean = self.clean(index)
        tilts = {"clean": clean.tilts}
        volumes: dict[str, np.ndarray] = {}
        measured: dict[str, float] = {}
        for half in HALVES:
            tilts[half] = self.noisy_tilts(clean, half, level)
            volumes[half] = self.reconstruct(tilts[half])
            measured[f"tilts_{half}"] = estimate_snr(clean.tilts, tilts[half])
            measured[f"tomogram_{half}"] = estimate_snr(clean.clean, volumes[half])
        return SimulatedTomogram(
            index=index,
            clean=clean.clean,
            even=volumes["even"],
            odd=volumes["odd"],
            particles=clean.particles,
            tilts=tilts,
            measured_snr=measured,
        )


def _units(config: TomogramConfig, sources: Sequence[Source]) -> str:
    if config.dose_e_per_a2 is not None:
        return "reconstructed weak-phase contrast (tilt contrast -2 sigma V_z)"
    if all(s.atoms is not None for s in sources):
        return "reconstructed projected potential (tilts in V*A)"
    return "reconstructed line integrals of the maps (map units * A)"


def simulate_tomogram_dataset(
    out_dir: str | os.PathLike[str],
    config: TomogramConfig,
    *,
    overwrite: bool = False,
    write_tilts: bool = False,
    progress: Callable[[int, int], None] | None = None,
    simulator: TomogramSimulator | None = None,
) -> dict[str, Any]:
    """Simulate tomograms on disk and return the manifest.

    Writes ``out/clean/NNNN.mrc``, ``out/even/NNNN.mrc`` and ``out/odd/NNNN.mrc`` (one
    ``(Z, Y, X)`` volume each, voxel size in the header), with ``write_tilts`` also
    ``out/tilts/{clean,even,odd}/NNNN.mrcs`` (the tilt series, one image per angle), and then
    ``out/manifest.json`` (every parameter, the tilt angles, each tomogram's seed, particles
    and measured SNRs), written last: a folder with a manifest holds a complete dataset.
    ``simulator``: one already built for ``config`` (its structures loaded), else built here.

    Raises
    ------
    ParameterError
        No noise level, or a parameter the structures do not allow; nothing is written.
    InputFileError
        An unreadable structure file, or an existing dataset in ``out_dir`` without
        ``overwrite``.
    """
    level = noise_level(config)
    simulator = simulator or TomogramSimulator(config)
    out = Path(out_dir)
    check_output_folder(out, overwrite=overwrite)
    folders = ["clean", *HALVES]
    if write_tilts:
        folders += [f"tilts/{name}" for name in ("clean", *HALVES)]
    for folder in folders:
        (out / folder).mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {
        "cryoden_version": __version__,
        "kind": "cryoden-simulated-tomograms",
        "sources": [s.description for s in simulator.sources],
        "parameters": config.to_dict(),
        "level": level.to_dict(),
        "tilt_angles_deg": simulator.angles_deg.tolist(),
        "conventions": {"units": _units(config, simulator.sources), **CONVENTIONS},
        "tomograms": [],
    }
    voxel = config.voxel_size_angstrom
    last = config.first_index + config.n_tomograms - 1
    width = max(4, len(str(last)))
    for done in range(1, config.n_tomograms + 1):
        index = config.first_index + done - 1
        tomogram = simulator.simulate(index, level)
        name = f"{index:0{width}d}"
        record: dict[str, Any] = {"index": index, "seed": image_seed(config.seed, index)}
        for key in ("clean", *HALVES):
            write_mrc(out / key / f"{name}.mrc", getattr(tomogram, key), voxel_size_angstrom=voxel)
            record[key] = f"{key}/{name}.mrc"
            if write_tilts:
                path = out / "tilts" / key / f"{name}.mrcs"
                write_mrc(path, tomogram.tilts[key], voxel_size_angstrom=voxel)
                record[f"tilts_{key}"] = f"tilts/{key}/{name}.mrcs"
        record["measured_snr"] = tomogram.measured_snr
        record["particles"] = [p.to_dict() for p in tomogram.particles]
        manifest["tomograms"].append(record)
        if progress is not None:
            progress(done, config.n_tomograms)
    with atomic_output(out / "manifest.json") as tmp:
        tmp.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    logger.info("wrote %d tomogram(s) to %s", config.n_tomograms, out)
    return manifest
