"""Dose-fractionated movies of micrograph fields, with their drift-free expected sums.

One movie of :class:`~cryoden.simulation.movie_config.MovieConfig` is made in three steps:

1. **Specimen** (:meth:`MovieSimulator.specimen`). On a canvas larger than the frames (by the
   CTF's delocalisation and the drift), particles of the configured structures at random
   non-overlapping positions and uniform random orientations give a projected Coulomb potential
   (V·Å, :class:`~cryoden.simulation.simulator.Simulator`); the ice they displace is subtracted
   and the ice's texture added (:mod:`cryoden.simulation.ice`; the texture changes from frame
   to frame as the beam moves the water molecules); the potential is filtered by the movie's
   astigmatic CTF with its envelope (:mod:`cryoden.simulation.astigmatism`) into the
   weak-phase contrast ``-2 sigma (CTF * V)`` (``sigma`` the interaction constant), and the ice
   layer's inelastic loss makes it the intensity per incident electron, frame by frame.
2. **Expected frames** (:meth:`MovieSimulator.expected_frames`). Frame ``i`` sees its specimen
   intensity at the positions of the drift trajectory during its exposure
   (:mod:`cryoden.simulation.drift`, sub-pixel Fourier shifts averaged over the frame); its flux
   is the frame's dose times the pixel area; the detector counts a fraction of it, blurred by
   its MTF (:mod:`cryoden.simulation.detector`).
3. **Counts** (:meth:`MovieSimulator.frames`). Poisson counts of each frame, each from its own
   random stream.

The **clean micrograph** is the expected sum of the frames without drift: expected counts per
pixel of the whole dose, ``n_frames * dose_per_frame * p**2 *`` the detected intensity. With
no drift the expected frames sum to it exactly; with drift, the sum of the aligned frames
approaches it.

Randomness: movie ``i`` of a run seeded ``seed`` draws from streams of
:func:`cryoden.simulation.noise_streams.stream` with keys ``(i, 0)`` (particles: positions,
orientations, structures), ``(i, 10)`` (CTF), ``(i, 11)`` (ice), ``(i, 12)`` (drift) and
``(i, 13, f)`` (counts of frame ``f``) and ``(i, 14)`` (motion of the ice's texture), so a
movie depends only on ``(seed, i)`` and the config.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cryoden.errors import ParameterError
from cryoden.simulation.astigmatism import (
    AstigmaticCtf,
    astigmatic_ctf_2d,
    delocalisation_angstrom,
)
from cryoden.simulation.config import SimulationConfig
from cryoden.simulation.ctf import interaction_constant
from cryoden.simulation.detector import count_frame
from cryoden.simulation.drift import drift_trajectory, frame_shifts
from cryoden.simulation.fields import DEFAULT_COVERAGE, place_particles
from cryoden.simulation.ice import (
    ICE_MEAN_INNER_POTENTIAL_V,
    detected_intensity,
    displaced_ice_potential,
    ice_texture,
    ice_texture_frames,
    protein_mean_inner_potential,
    thickness_map,
)
from cryoden.simulation.movie_config import MovieConfig
from cryoden.simulation.noise_streams import STREAM_POSES, stream
from cryoden.simulation.orientations import random_rotations
from cryoden.simulation.simulator import ParticlePose, Simulator
from cryoden.simulation.sources import Source, load_source

logger = logging.getLogger(__name__)

#: Random-stream keys of a movie (after its index): see the module docstring.
STREAM_CTF, STREAM_ICE, STREAM_DRIFT, STREAM_COUNTS, STREAM_ICE_MOTION = 10, 11, 12, 13, 14
#: Mean inner potential (V) of protein, used for density maps (atomic models have their own).
PROTEIN_MEAN_INNER_POTENTIAL_V = 7.0
#: Extra canvas margin in pixels beyond the CTF's delocalisation and the drift.
CANVAS_PADDING_PX = 8


@dataclass(frozen=True, eq=False)
class Specimen:
    """One movie's specimen on the canvas, before drift and detection.

    Attributes
    ----------
    index
        Movie index.
    intensity
        ``(C, C)`` canvas: detected electrons per incident electron (1 = vacuum, no loss),
        averaged over the exposure.
    ctf
        The movie's CTF.
    particles
        ``(structure index, pose)`` per particle; positions in Å from the canvas centre, which
        is the frame centre.
    thickness_range_angstrom
        Smallest and largest ice thickness within the frame, in Å.
    """

    index: int
    intensity: np.ndarray
    ctf: AstigmaticCtf
    particles: list[tuple[int, ParticlePose]] = field(default_factory=list)
    thickness_range_angstrom: tuple[float, float] = (0.0, 0.0)
    frame_intensities: Callable[[], Iterable[np.ndarray]] | None = field(default=None, repr=False)
    """Intensity canvas of each frame, in order, when it changes during the exposure (the ice's
    texture moves); None when every frame sees ``intensity``."""


@dataclass(frozen=True, eq=False)
class SimulatedMovie:
    """A movie in memory: its frames, its clean micrograph and how it was made.

    Attributes
    ----------
    index
        Movie index.
    frames
        ``(n_frames, size, size)`` uint16 counts.
    clean
        ``(size, size)`` float32 expected counts of the drift-free sum of the frames.
    trajectory_px
        ``(n_frames, samples_per_frame, 2)`` drift positions ``(dy, dx)`` in pixels.
    specimen
        The specimen the frames image.
    """

    index: int
    frames: np.ndarray
    clean: np.ndarray
    trajectory_px: np.ndarray
    specimen: Specimen

    @property
    def frame_shifts_px(self) -> np.ndarray:
        """Mean position ``(dy, dx)`` of each frame in pixels (what an alignment finds)."""
        return frame_shifts(self.trajectory_px)


class MovieSimulator:
    """Movies of one :class:`MovieConfig` (see the module docstring).

    Parameters
    ----------
    config
        The settings.
    sources
        The structures already loaded (one per ``config.structures``, or the phantom); loaded
        from the config when None.
    """

    def __init__(self, config: MovieConfig, sources: Sequence[Source] | None = None) -> None:
        self.config = config
        if sources is None:
            paths = config.structures or (None,)
            sources = [load_source(path, config.phantom) for path in paths]
        if not sources:
            raise ParameterError("at least one structure is needed")
        self.sources = list(sources)
        p = config.pixel_size_angstrom
        deloc = delocalisation_angstrom(
            config.ctf(config.max_defocus_angstrom, config.max_defocus_angstrom, 0.0),
            pixel_size_angstrom=p,
        )
        margin = int(np.ceil((deloc + config.drift.total_angstrom) / p)) + CANVAS_PADDING_PX
        canvas = config.size + 2 * margin
        self.canvas_size = canvas + canvas % 2
        self.margin_px = (self.canvas_size - config.size) // 2
        self.radius_angstrom = max(s.radius_angstrom for s in self.sources)
        if 2 * self.radius_angstrom > self.canvas_size * p:
            raise ParameterError(
                f"the particles ({2 * self.radius_angstrom:.0f} Å across) do not fit in a field "
                f"of {config.size} pixels of {p} Å"
            )
        self._simulators = [
            Simulator(
                source,
                SimulationConfig(
                    phantom="groel",
                    size=self.canvas_size,
                    pixel_size_angstrom=p,
                    snr_levels=(1.0,),
                    field=True,
                ),
            )
            for source in self.sources
        ]
        self._mip = [
            protein_mean_inner_potential(s.atoms) if s.atoms is not None else None
            for s in self.sources
        ]

    def _crop(self, canvas: np.ndarray) -> np.ndarray:
        m, n = self.margin_px, self.config.size
        return canvas[m : m + n, m : m + n]

    def particles(self, index: int) -> list[tuple[int, ParticlePose]]:
        """Structure index and pose of each particle of movie ``index`` (its pose stream)."""
        config = self.config
        rng = stream(config.seed, index, STREAM_POSES)
        p = config.pixel_size_angstrom
        area_ratio = (self.canvas_size / config.size) ** 2
        wanted = config.particles_per_field
        n = None if wanted is None else max(1, int(round(wanted * area_ratio)))
        centres = place_particles(
            self.canvas_size * p,
            self.radius_angstrom,
            rng=rng,
            n_particles=n,
            coverage=DEFAULT_COVERAGE,
        )
        rotations = random_rotations(len(centres), rng=rng)
        kinds = rng.integers(0, len(self.sources), size=len(centres))
        return [
            (int(k), ParticlePose(r, c)) for k, r, c in zip(kinds, rotations, centres, strict=True)
        ]

    def specimen(self, index: int) -> Specimen:
        """The specimen of movie ``index`` (see the module docstring, step 1)."""
        config = self.config
        p = config.pixel_size_angstrom
        shape = (self.canvas_size, self.canvas_size)
        particles = self.particles(index)
        potential = np.zeros(shape)
        displaced = np.zeros(shape)
        for k, simulator in enumerate(self._simulators):
            poses = [pose for kind, pose in particles if kind == k]
            if not poses:
                continue
            own = simulator.project(poses).astype(np.float64)
            mip = self._mip[k]
            if mip is not None:  # atoms: vacuum potential; subtract the ice they displace
                ice_potential, thickness = displaced_ice_potential(
                    own, pixel_size_angstrom=p, protein_potential_v=mip
                )
                own = own - ice_potential
            else:  # a map: taken as potential above the solvent, in V
                _, thickness = displaced_ice_potential(
                    own,
                    pixel_size_angstrom=p,
                    protein_potential_v=PROTEIN_MEAN_INNER_POTENTIAL_V - ICE_MEAN_INNER_POTENTIAL_V,
                )
            potential += own
            displaced += thickness
        ice_rng = stream(config.seed, index, STREAM_ICE)
        ice = config.ice
        thickness_ice = thickness_map(shape, ice, pixel_size_angstrom=p, rng=ice_rng)
        ctf = config.draw_ctf(stream(config.seed, index, STREAM_CTF))
        transfer = astigmatic_ctf_2d(shape, ctf, pixel_size_angstrom=p)
        sigma = interaction_constant(config.voltage_kv)

        def contrast_of(v: np.ndarray) -> np.ndarray:
            return -2.0 * sigma * np.fft.irfft2(np.fft.rfft2(v) * transfer, s=shape)

        static = contrast_of(potential)
        frames: Callable[[], Iterable[np.ndarray]] | None = None
        if ice.texture and ice.motion_msd_a2_per_e_per_a2 == 0:  # frozen for the whole movie
            texture = ice_texture(
                thickness_ice, ice, pixel_size_angstrom=p, rng=ice_rng,
                displaced_thickness_angstrom=displaced,
            )  # fmt: skip
            intensity = detected_intensity(static + contrast_of(texture), thickness_ice, ice)
        elif ice.texture:
            texture_start = copy.deepcopy(ice_rng)  # every pass replays the same texture

            def frame_intensities() -> Iterator[np.ndarray]:
                rng = copy.deepcopy(texture_start)
                textures = ice_texture_frames(
                    thickness_ice, ice, pixel_size_angstrom=p,
                    dose_per_frame_e_per_a2=config.dose_per_frame_e_per_a2,
                    n_frames=config.n_frames, rng=rng,
                    motion_rng=stream(config.seed, index, STREAM_ICE_MOTION),
                    displaced_thickness_angstrom=displaced,
                )  # fmt: skip
                for texture in textures:
                    yield detected_intensity(static + contrast_of(texture), thickness_ice, ice)

            intensity = np.zeros(shape)
            for frame in frame_intensities():
                intensity += frame
            intensity /= config.n_frames
            frames = frame_intensities
        else:
            intensity = detected_intensity(static, thickness_ice, ice)
        worst = float(np.abs(static).max())
        if worst > 0.5:
            logger.warning(
                "movie %d: weak-phase contrast reaches %.2f (> 0.5); the linear approximation "
                "overestimates it",
                index, worst,
            )  # fmt: skip
        seen = self._crop(thickness_ice)
        return Specimen(
            index=index,
            intensity=intensity,
            ctf=ctf,
            particles=particles,
            thickness_range_angstrom=(float(seen.min()), float(seen.max())),
            frame_intensities=frames,
        )

    def clean(self, specimen: Specimen) -> np.ndarray:
        """Expected counts of the drift-free sum of all frames (float32, ``(size, size)``)."""
        config = self.config
        dose = config.total_dose_e_per_a2
        return self._detected(np.fft.rfft2(specimen.intensity), None, dose).astype(np.float32)

    def trajectory(self, index: int) -> np.ndarray:
        """Drift positions of movie ``index``: ``(n_frames, samples_per_frame, 2)`` pixels."""
        config = self.config
        return drift_trajectory(
            config.n_frames,
            config.drift,
            pixel_size_angstrom=config.pixel_size_angstrom,
            rng=stream(config.seed, index, STREAM_DRIFT),
        )

    def expected_frames(
        self, specimen: Specimen, trajectory_px: np.ndarray
    ) -> Iterator[np.ndarray]:
        """Expected counts of each frame (float64 ``(size, size)``), in order."""
        dose = self.config.dose_per_frame_e_per_a2
        if specimen.frame_intensities is None:
            spectrum = np.fft.rfft2(specimen.intensity)
            for positions in trajectory_px:
                yield self._detected(spectrum, positions, dose)
            return
        frames = specimen.frame_intensities()
        for positions, intensity in zip(trajectory_px, frames, strict=True):
            yield self._detected(np.fft.rfft2(intensity), positions, dose)

    def _detected(
        self, spectrum: np.ndarray, positions_px: np.ndarray | None, dose_e_per_a2: float
    ) -> np.ndarray:
        """Expected counts of the intensity ``spectrum`` (canvas ``rfft2``) at a dose, averaged
        over the drift ``positions_px`` ``(samples, 2)`` (none: drift-free), cropped."""
        config = self.config
        shape = (self.canvas_size, self.canvas_size)
        transfer = config.detector.mtf(shape)
        if positions_px is not None:
            fy = np.fft.fftfreq(shape[0])[:, None, None]
            fx = np.fft.rfftfreq(shape[1])[None, :, None]
            dy, dx = positions_px[:, 0], positions_px[:, 1]
            transfer = transfer * np.exp(-2j * np.pi * (fy * dy + fx * dx)).mean(axis=-1)
        flux = np.fft.irfft2(spectrum * transfer, s=shape)
        scale = dose_e_per_a2 * config.pixel_size_angstrom**2 * config.detector.detection_efficiency
        return np.clip(scale * self._crop(flux), 0.0, None)

    def frames(self, specimen: Specimen, trajectory_px: np.ndarray) -> Iterator[np.ndarray]:
        """Poisson counts of each frame (uint16 ``(size, size)``), each from its own stream."""
        config = self.config
        for f, expected in enumerate(self.expected_frames(specimen, trajectory_px)):
            yield count_frame(expected, rng=stream(config.seed, specimen.index, STREAM_COUNTS, f))

    def simulate(
        self, index: int, *, progress: Callable[[int, int], None] | None = None
    ) -> SimulatedMovie:
        """Movie ``index`` in memory (for small movies; files stream frames instead)."""
        specimen = self.specimen(index)
        trajectory = self.trajectory(index)
        n = self.config.n_frames
        frames = np.empty((n, self.config.size, self.config.size), dtype=np.uint16)
        for f, counts in enumerate(self.frames(specimen, trajectory)):
            frames[f] = counts
            if progress is not None:
                progress(f + 1, n)
        return SimulatedMovie(index, frames, self.clean(specimen), trajectory, specimen)


def movie_record(
    simulator: MovieSimulator, specimen: Specimen, trajectory_px: np.ndarray, clean: np.ndarray
) -> dict[str, Any]:
    """What the manifest says about one movie: CTF, particles, ice, drift, expected SNR."""
    config = simulator.config
    mean = float(clean.mean())
    return {
        "index": specimen.index,
        "ctf": specimen.ctf.to_dict(),
        "particles": [{"structure": kind, **pose.to_dict()} for kind, pose in specimen.particles],
        "ice_thickness_range_angstrom": [round(v, 2) for v in specimen.thickness_range_angstrom],
        "frame_shifts_px": np.round(frame_shifts(trajectory_px), 4).tolist(),
        "clean_mean_counts": round(mean, 4),
        "mean_counts_per_frame_px": round(mean / config.n_frames, 5),
        # var(signal) / var(Poisson noise) of an ideal, drift-free sum of all frames
        "expected_snr_of_sum": round(float(clean.var()) / mean, 6) if mean > 0 else None,
    }
