"""The seed study on realistic micrographs: movie frame sums instead of white Gaussian noise.

Every projection index of the study (same split as :mod:`cryoden.benchmark.data`) becomes a
small dose-fractionated movie of a micrograph crop of ``image_size`` pixels
(:mod:`cryoden.simulation.movies`): particles of the study's structure at random positions and
orientations in ice of uneven thickness, an astigmatic CTF with an envelope, a counting
detector's MTF and DQE, smooth sub-pixel drift and Poisson counts in every frame. Its noisy
pair is the even-frame and the odd-frame sum after global drift correction with bilinear
interpolation (:mod:`cryoden.movies`), which correlates neighbouring pixels' noise as real
motion correction does; calibration and test images are the even sums. Images are divided by
their sum's dose, so every noisy image and its clean image (the expected counts of the
drift-free sum per e/Å²) share one scale at every SNR.

**SNR by dose.** The SNR of a frame sum grows in proportion to its dose (Poisson noise). The
dose of each level is chosen so that the mean measured SNR (``var(clean) / var(noisy -
clean)``) of the training images' even sums equals the level: a pilot at
:data:`PILOT_DOSE_E_PER_A2` gives the SNR per e/Å², and one more round at the dose it implies
corrects for what does not scale with the dose (drift estimated worse at low dose, which blurs
the signal). The doses (e/Å² of one half-sum; the movie has twice that) are recorded with the
measured SNRs. With ``shared_noise`` every level draws a frame's counts from the same random
stream (common random numbers); otherwise each level has its own.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cryoden.benchmark.data import CleanImages, Split, StudyImages
from cryoden.benchmark.store import write_json
from cryoden.benchmark.study import StudyConfig
from cryoden.errors import ParameterError
from cryoden.movies.alignment import estimate_global_drift, shift_image
from cryoden.noise import estimate_snr
from cryoden.simulation.detector import count_frame
from cryoden.simulation.movie_config import MovieConfig
from cryoden.simulation.movies import STREAM_COUNTS, MovieSimulator, Specimen
from cryoden.simulation.noise_streams import stream

if TYPE_CHECKING:
    from cryoden.benchmark.runner import StudyRun

logger = logging.getLogger(__name__)

#: Dose (e/Å² of one half-sum) of the pilot that measures the SNR per e/Å².
PILOT_DOSE_E_PER_A2 = 10.0
#: How aligned frames are shifted (as :func:`cryoden.movies.even_odd_sums` does by default).
INTERPOLATION = "bilinear"


@dataclass(frozen=True)
class RealisticStudyConfig(StudyConfig):
    """A :class:`StudyConfig` whose images are realistic micrograph crops (module docstring).

    Parameters
    ----------
    realistic
        Marks the settings (part of the fingerprint, so cells of the white-noise study are
        never reused here).
    n_frames
        Frames per movie (even, ``>= 2``); each half-sum has half of them.
    defocus_angstrom, defocus_spread_angstrom, astigmatism_angstrom, envelope_b_factor
        The CTF of each movie (see :class:`cryoden.simulation.movie_config.MovieConfig`).
    ice_thickness_angstrom, ice_slope
        The ice layer (see :class:`cryoden.simulation.ice.IceModel`).
    drift_angstrom
        Beam-induced drift over a movie in Å.
    """

    realistic: bool = True
    n_frames: int = 16
    defocus_angstrom: float = 15000.0
    defocus_spread_angstrom: float = 5000.0
    astigmatism_angstrom: float = 400.0
    envelope_b_factor: float = 60.0
    ice_thickness_angstrom: float = 400.0
    ice_slope: float = 0.1
    drift_angstrom: float = 8.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_frames < 2 or self.n_frames % 2:
            raise ParameterError(f"study n_frames must be even and >= 2, got {self.n_frames}")
        self.movie_config(1.0)  # checks the optics, ice and drift

    @classmethod
    def from_study(cls, config: StudyConfig, **changes: Any) -> RealisticStudyConfig:
        """The realistic version of a white-noise study's settings."""
        base = {f.name: getattr(config, f.name) for f in dataclasses.fields(StudyConfig)}
        return cls(**{**base, **changes})

    def movie_config(self, half_dose_e_per_a2: float) -> MovieConfig:
        """The movies' settings at a dose of ``half_dose_e_per_a2`` per half-sum."""
        from cryoden.simulation.drift import DriftModel
        from cryoden.simulation.ice import IceModel

        return MovieConfig(
            structures=(Path(self.structure),) if self.structure else (),
            phantom="groel",
            n_movies=1,
            size=self.image_size,
            pixel_size_angstrom=self.pixel_size_angstrom,
            n_frames=self.n_frames,
            dose_per_frame_e_per_a2=2.0 * half_dose_e_per_a2 / self.n_frames,
            particles_per_field=1,
            defocus_angstrom=self.defocus_angstrom,
            defocus_spread_angstrom=self.defocus_spread_angstrom,
            astigmatism_angstrom=self.astigmatism_angstrom,
            envelope_b_factor=self.envelope_b_factor,
            ice=IceModel(
                thickness_angstrom=self.ice_thickness_angstrom, thickness_slope=self.ice_slope
            ),
            drift=DriftModel(beam_induced_angstrom=self.drift_angstrom),
            seed=self.seed,
        )


@dataclass
class _Movie:
    """What the frames of one projection index need: its specimen and drift."""

    specimen: Specimen
    trajectory_px: np.ndarray
    clean_per_dose: np.ndarray  # expected counts of the drift-free sum per e/Å²


def _half_sums(
    simulator: MovieSimulator, movie: _Movie, half_dose: float, key: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Aligned even and odd frame sums of one movie at a half-sum dose, divided by the dose."""
    n = simulator.config.n_frames
    scale = 2.0 * half_dose / n / simulator.config.dose_per_frame_e_per_a2
    index = movie.specimen.index
    frames = np.stack(
        [
            count_frame(scale * e, rng=stream(simulator.config.seed, index, STREAM_COUNTS, f, *key))
            for f, e in enumerate(simulator.expected_frames(movie.specimen, movie.trajectory_px))
        ]
    ).astype(np.float64)
    shifts = estimate_global_drift(frames)
    sums = [np.zeros(frames.shape[1:]), np.zeros(frames.shape[1:])]
    for f, frame in enumerate(frames):
        back = (-shifts[f, 0], -shifts[f, 1])
        sums[f % 2] += shift_image(frame, back, interpolation=INTERPOLATION)
    return (sums[0] / half_dose).astype(np.float32), (sums[1] / half_dose).astype(np.float32)


def _level_key(config: RealisticStudyConfig, level: int) -> tuple[int, ...]:
    return () if config.shared_noise else (1 + level,)


def _mean_snr(
    simulator: MovieSimulator, movies: list[_Movie], half_dose: float, key: tuple[int, ...]
) -> float:
    snrs = [
        estimate_snr(m.clean_per_dose, _half_sums(simulator, m, half_dose, key)[0]) for m in movies
    ]
    return float(np.mean(snrs))


def level_doses(
    config: RealisticStudyConfig, simulator: MovieSimulator, movies: list[_Movie]
) -> list[float]:
    """The half-sum dose (e/Å²) of each SNR level, calibrated on ``movies`` (module docstring)."""
    pilot = _mean_snr(simulator, movies, PILOT_DOSE_E_PER_A2, (0,))
    per_dose = pilot / PILOT_DOSE_E_PER_A2
    doses = []
    for s, snr in enumerate(config.snr_levels):
        dose = snr / per_dose
        measured = _mean_snr(simulator, movies, dose, _level_key(config, s))
        doses.append(float(dose * snr / measured))
    return doses


#: The record of how each simulated run's images were made, by settings (see
#: :func:`realistic_record`); the runner keeps only the images.
_RECORDS: dict[RealisticStudyConfig, dict[str, Any]] = {}


def realistic_record(config: RealisticStudyConfig) -> dict[str, Any] | None:
    """How the images of ``config`` were made (noise, doses, measured SNRs, movie settings), once
    :func:`simulate_realistic_images` has made them in this process; else None."""
    return _RECORDS.get(config)


def simulate_realistic_images(
    config: RealisticStudyConfig, *, progress: Callable[[int, int], None] | None = None
) -> StudyImages:
    """Every image of a realistic run (:func:`realistic_record` then says how they were made).

    Raises
    ------
    InputFileError
        If ``config.structure`` is missing or not a readable model or map.
    """
    split = Split.from_config(config)
    simulator = MovieSimulator(config.movie_config(PILOT_DOSE_E_PER_A2))
    total_dose = simulator.config.total_dose_e_per_a2
    movies = []
    for i in range(split.n_total):
        specimen = simulator.specimen(i)
        movies.append(
            _Movie(specimen, simulator.trajectory(i), simulator.clean(specimen) / total_dose)
        )
    doses = level_doses(config, simulator, [movies[i] for i in split.train])
    shape = (config.image_size, config.image_size)
    levels = tuple(config.snr_levels)
    noisy_a = np.empty((len(levels), split.n_total, *shape), dtype=np.float32)
    noisy_b = np.empty_like(noisy_a)
    measured = np.empty((len(levels), split.n_total))
    done, total = 0, len(levels) * split.n_total
    for s, dose in enumerate(doses):
        for i, movie in enumerate(movies):
            a, b = _half_sums(simulator, movie, dose, _level_key(config, s))
            noisy_a[s, i], noisy_b[s, i] = a, b
            measured[s, i] = estimate_snr(movie.clean_per_dose, a)
            done += 1
            if progress is not None:
                progress(done, total)
    clean = np.stack([m.clean_per_dose for m in movies]).astype(np.float32)

    def take(group: tuple[int, ...]) -> np.ndarray:
        return clean[list(group)] if group else clean[:0]

    source = str(config.structure) if config.structure else "embedded GroEL-like phantom"
    groups = CleanImages(
        train=take(split.train),
        validation=take(split.validation),
        calibration=take(split.calibration),
        test=take(split.test),
        split=split,
        source=source,
    )
    record = {
        "noise": (
            "realistic micrograph crops: the even (a) and odd (b) frame sums of a simulated "
            f"movie of {config.n_frames} frames (Poisson counts, counting-detector MTF/DQE, "
            "smooth sub-pixel drift corrected with bilinear interpolation, astigmatic CTF with "
            "an envelope, uneven ice), divided by the half-sum's dose; the dose of each SNR is "
            "calibrated so the training images' mean measured SNR matches it"
        ),
        "half_sum_dose_e_per_a2": [round(d, 6) for d in doses],
        "movie_dose_e_per_a2": [round(2 * d, 6) for d in doses],
        "measured_train_snr": [
            round(float(np.mean(measured[s, list(split.train)])), 5) for s in range(len(levels))
        ],
        "movie_settings": simulator.config.replace(dose_per_frame_e_per_a2=1.0).to_dict()
        | {"dose_per_frame_e_per_a2": "2 * half_sum_dose / n_frames"},
    }
    logger.info("simulated %d realistic movies at %d doses", split.n_total, len(levels))
    _RECORDS.clear()
    _RECORDS[config] = record
    return StudyImages(groups, noisy_a, noisy_b, measured, levels)


#: The folder of the realistic study inside ``cryoden bench seed``'s output folder.
REALISTIC_DIR = "realistic"


def run_realistic_study(
    config: RealisticStudyConfig,
    out: str | Path,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> StudyRun:
    """Run (or resume) the study on realistic micrographs into ``out``.

    :func:`cryoden.benchmark.runner.run_study` on :func:`simulate_realistic_images`' images;
    ``results.json`` then says how they were made (``data.noise``, and ``data.realistic``: the
    dose of each SNR, the measured SNRs, the movie settings), and the report is written from it.
    """
    from cryoden.benchmark.report import write_report
    from cryoden.benchmark.runner import run_study

    run = run_study(config, out, progress=progress, report=False)
    record = realistic_record(config)
    if record is None:  # not simulated in this process (cannot happen through run_study)
        raise ParameterError("the realistic images were not simulated in this run")
    results = json.loads(run.results_path.read_text())
    doses = ", ".join(
        f"{d:.3g} at SNR {snr:.3g}"
        for d, snr in zip(record["half_sum_dose_e_per_a2"], config.snr_levels, strict=True)
    )
    results["data"]["noise"] = f"{record['noise']}; half-sum doses (e/Å²): {doses}"
    results["data"]["simulation"] = (
        "cryoden.simulation.movies: particles, CTF, ice, drift and frame counts derive from "
        "(seed, projection index); a and b are the even and odd frames of one movie"
    )
    results["data"]["realistic"] = {k: v for k, v in record.items() if k != "noise"}
    write_json(run.results_path, results)
    run.report_paths = write_report(run.results_path)
    return run
