"""Properties of the movie simulator: Poisson counts, expected sums, drift, MTF, noise
correlation after alignment, reproducibility."""

from __future__ import annotations

import numpy as np
import pytest

from cryoden.errors import ParameterError
from cryoden.movies import even_odd_sums
from cryoden.movies.alignment import shift_image
from cryoden.simulation.astigmatism import AstigmaticCtf, astigmatic_ctf_2d
from cryoden.simulation.ctf import ctf_2d
from cryoden.simulation.detector import DetectorModel, count_frame
from cryoden.simulation.drift import DriftModel, drift_trajectory, frame_shifts
from cryoden.simulation.ice import (
    IceModel,
    ice_texture,
    ice_texture_frames,
    texture_decorrelation_rate,
    thickness_map,
)
from cryoden.simulation.movie_config import MovieConfig
from cryoden.simulation.movie_files import write_frames
from cryoden.simulation.movies import MovieSimulator

NO_DRIFT = DriftModel(beam_induced_angstrom=0.0, stage_drift_angstrom=0.0, wander_angstrom=0.0)


def small_config(**changes: object) -> MovieConfig:
    """A 64-pixel field of 8 Å pixels (one or two phantom particles), 6 frames."""
    base: dict[str, object] = {
        "size": 64,
        "pixel_size_angstrom": 8.0,
        "n_frames": 6,
        "n_movies": 1,
        "dose_per_frame_e_per_a2": 0.5,
        "defocus_angstrom": 20000.0,
        "seed": 5,
    }
    return MovieConfig(**{**base, **changes})  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def drifting() -> tuple[MovieSimulator, object]:
    config = small_config(drift=DriftModel(beam_induced_angstrom=24.0), dose_per_frame_e_per_a2=4.0)
    simulator = MovieSimulator(config)
    return simulator, simulator.simulate(0)


def lag1_correlation(noise: np.ndarray, axis: int) -> float:
    """Correlation of a noise image with itself one pixel along ``axis`` (mean removed)."""
    x = noise - noise.mean()
    n = x.shape[axis]
    head, tail = np.take(x, range(n - 1), axis=axis), np.take(x, range(1, n), axis=axis)
    return float(np.mean(head * tail) / np.mean(x * x))


def test_counts_of_a_flat_field_are_poisson():
    counts = count_frame(np.full((128, 128), 3.0), rng=np.random.default_rng(0))
    assert counts.dtype == np.uint16
    mean, var = counts.mean(), counts.var()
    assert abs(mean - 3.0) < 0.05
    assert abs(var / mean - 1.0) < 0.05


def test_frames_scatter_around_their_expectation_with_poisson_variance(drifting):
    simulator, movie = drifting
    expected = np.stack(list(simulator.expected_frames(movie.specimen, movie.trajectory_px)))
    residual = movie.frames.astype(np.float64) - expected
    assert abs(residual.mean()) < 0.02 * expected.mean()
    assert abs(residual.var() / expected.mean() - 1.0) < 0.05


def test_expected_frames_sum_to_the_clean_micrograph():
    simulator = MovieSimulator(small_config(drift=NO_DRIFT))
    specimen = simulator.specimen(0)
    expected = sum(simulator.expected_frames(specimen, simulator.trajectory(0)))
    clean = simulator.clean(specimen)
    np.testing.assert_allclose(expected, clean, rtol=1e-4)
    config = simulator.config
    unit = clean / config.total_dose_e_per_a2  # expected counts per e/Å²
    # a vacuum pixel would get p**2 * efficiency counts per e/Å²; ice and contrast change that
    ceiling = config.pixel_size_angstrom**2 * config.detector.detection_efficiency
    assert 0.5 * ceiling < unit.mean() < ceiling


def test_drift_keeps_the_mean_dose_and_blurs_only_a_little(drifting):
    simulator, movie = drifting
    expected = sum(simulator.expected_frames(movie.specimen, movie.trajectory_px))
    assert abs(expected.mean() / movie.clean.mean() - 1.0) < 0.01


def test_drift_is_smooth_and_sub_pixel():
    model = DriftModel(beam_induced_angstrom=10.0, stage_drift_angstrom=2.0, wander_angstrom=0.3)
    trajectory = drift_trajectory(30, model, pixel_size_angstrom=1.0, rng=np.random.default_rng(1))
    assert trajectory.shape == (30, model.samples_per_frame, 2)
    np.testing.assert_allclose(trajectory.reshape(-1, 2).mean(axis=0), 0.0, atol=1e-9)
    shifts = frame_shifts(trajectory)
    steps = np.linalg.norm(np.diff(shifts, axis=0), axis=1)
    assert steps.max() < 4.0  # pixels per frame, the first (fastest) step included
    assert steps[-10:].max() < 0.5  # settled: sub-pixel steps
    # smooth: the change of velocity between frames is small next to the velocity
    accelerations = np.linalg.norm(np.diff(shifts, 2, axis=0), axis=1)
    assert np.median(accelerations) < np.median(steps)
    fractions = np.abs(shifts - np.rint(shifts))
    assert (fractions > 0.05).mean() > 0.5  # not whole pixels


def test_mtf_lowers_high_frequency_power_as_specified():
    detector = DetectorModel(detection_efficiency=1.0, psf_sigma_px=0.3)
    mtf_nyquist = np.sinc(0.5) * np.exp(-0.5 * np.pi**2 * 0.09)
    assert detector.mtf_radial(1.0) == pytest.approx(mtf_nyquist)
    assert detector.mtf((8, 8))[0, 0] == pytest.approx(1.0)
    assert detector.dqe_radial(1.0) == pytest.approx(mtf_nyquist**2)
    rng = np.random.default_rng(2)
    flux = 10.0 + rng.standard_normal((256, 256))
    blurred = detector.expected_counts(flux)
    power_in = np.abs(np.fft.rfft2(flux - flux.mean())) ** 2
    power_out = np.abs(np.fft.rfft2(blurred - blurred.mean())) ** 2
    fy = np.abs(np.fft.fftfreq(256))[:, None] * 2
    fx = np.fft.rfftfreq(256)[None, :] * 2
    band = (fx > 0.9) & (fy < 0.05)  # near Nyquist along x
    measured = power_out[band].sum() / power_in[band].sum()
    predicted = (detector.mtf((256, 256))[band] ** 2).mean()
    assert measured == pytest.approx(predicted, rel=0.02)
    assert measured < 0.3  # a counting detector's MTF at Nyquist is well below 1


def test_astigmatic_ctf_without_astigmatism_is_the_isotropic_ctf():
    ctf = AstigmaticCtf(defocus_u_angstrom=12000, defocus_v_angstrom=12000, b_factor=40)
    ours = astigmatic_ctf_2d((48, 40), ctf, pixel_size_angstrom=1.5)
    reference = ctf_2d((48, 40), pixel_size_angstrom=1.5, defocus_angstrom=12000, b_factor=40)
    np.testing.assert_allclose(ours, reference, atol=1e-9)
    tilted = AstigmaticCtf(defocus_u_angstrom=13000, defocus_v_angstrom=11000)
    assert np.abs(astigmatic_ctf_2d((48, 40), tilted, pixel_size_angstrom=1.5) - ours).max() > 0.5


def test_ice_thickness_has_the_gradient_and_texture_scales_with_thickness():
    model = IceModel(thickness_angstrom=300, thickness_slope=0.2, roughness_angstrom=0.0)
    t = thickness_map((64, 64), model, pixel_size_angstrom=10.0, rng=np.random.default_rng(3))
    assert t.mean() == pytest.approx(300, rel=0.01)
    assert t.max() - t.min() == pytest.approx(0.2 * 630 * np.sqrt(2), rel=0.45)
    thin = ice_texture(
        np.full((64, 64), 100.0), model, pixel_size_angstrom=2.0, rng=np.random.default_rng(4)
    )
    thick = ice_texture(
        np.full((64, 64), 400.0), model, pixel_size_angstrom=2.0, rng=np.random.default_rng(4)
    )
    assert thick.std() / thin.std() == pytest.approx(2.0, rel=1e-6)


def _band_correlation(a: np.ndarray, b: np.ndarray, band: np.ndarray) -> float:
    fa, fb = np.fft.rfft2(a)[band], np.fft.rfft2(b)[band]
    return float(
        np.real(np.sum(fa * np.conj(fb))) / np.sqrt(np.sum(abs(fa) ** 2) * np.sum(abs(fb) ** 2))
    )


def test_ice_texture_moves_fine_detail_faster_than_coarse_and_keeps_its_power():
    thickness = np.full((64, 64), 300.0)
    moving, frozen = IceModel(), IceModel(motion_msd_a2_per_e_per_a2=0.0)

    def frames(model: IceModel) -> list[np.ndarray]:
        return list(
            ice_texture_frames(
                thickness, model, pixel_size_angstrom=2.0, dose_per_frame_e_per_a2=2.0,
                n_frames=6, rng=np.random.default_rng(1), motion_rng=np.random.default_rng(2),
                substeps=1,
            )
        )  # fmt: skip

    still = frames(frozen)
    instant = ice_texture(thickness, frozen, pixel_size_angstrom=2.0, rng=np.random.default_rng(1))
    for frame in still:  # no motion: every frame sees the texture of one instant
        np.testing.assert_allclose(frame, instant, atol=1e-9)
    first, last = frames(moving)[0], frames(moving)[-1]
    np.testing.assert_allclose(first, instant, atol=1e-9)  # the same start
    ky = np.fft.fftfreq(64, d=2.0)[:, None]
    k = np.hypot(ky, np.fft.rfftfreq(64, d=2.0)[None, :])
    coarse, fine = (k > 0) & (k < 0.05), k > 0.2
    dose = 5 * 2.0
    # 10 e/Å² apart: coarse texture stays, fine texture is renewed, as exp(-rate * dose)
    assert np.exp(-texture_decorrelation_rate(0.05, moving) * dose) > 0.8
    assert _band_correlation(first, last, coarse) > 0.7
    assert np.exp(-texture_decorrelation_rate(0.2, moving) * dose) < 0.1
    assert abs(_band_correlation(first, last, fine)) < 0.15
    assert last.std() == pytest.approx(first.std(), rel=0.15)  # stationary: same power


def test_moving_ice_makes_frames_differ_beyond_their_drift():
    still = MovieSimulator(
        small_config(drift=NO_DRIFT, ice=IceModel(motion_msd_a2_per_e_per_a2=0.0))
    )
    moving = MovieSimulator(small_config(drift=NO_DRIFT, pixel_size_angstrom=4.0))
    for simulator, differs in ((still, False), (moving, True)):
        specimen = simulator.specimen(0)
        expected = list(simulator.expected_frames(specimen, simulator.trajectory(0)))
        change = np.abs(expected[-1] - expected[0]).max() / expected[0].mean()
        assert (change > 1e-4) == differs


def _aligned_noise(simulator, movie, tmp_path, interpolation):
    """The noise of the aligned even sum: the sum minus the same alignment of the expected
    frames (alignment is linear once the shifts are known)."""
    path = tmp_path / f"movie_{interpolation}.mrc"
    n, size = movie.frames.shape[0], movie.frames.shape[1]
    write_frames(path, iter(movie.frames), (n, size, size), 8.0)
    sums = even_odd_sums(path, align=True, interpolation=interpolation)
    expected = list(simulator.expected_frames(movie.specimen, movie.trajectory_px))
    even = sum(
        shift_image(e, tuple(-s), interpolation=interpolation)
        for e, s in zip(expected[::2], sums.shifts_px[::2], strict=True)
    )
    assert 0.3 < np.abs(sums.shifts_px).max() < 3  # the alignment moved frames, not far
    np.testing.assert_allclose(sums.shifts_px, movie.frame_shifts_px, atol=0.6)
    return (sums.even - even)[4:-4, 4:-4]


def test_aligned_sums_have_correlated_noise_and_integer_shift_sums_stay_white(drifting, tmp_path):
    simulator, movie = drifting
    noise = _aligned_noise(simulator, movie, tmp_path, "bilinear")
    assert max(lag1_correlation(noise, 0), lag1_correlation(noise, 1)) > 0.05
    # the same frames moved by whole pixels and summed without alignment: white noise
    rng = np.random.default_rng(6)
    expected = movie.clean / movie.frames.shape[0]
    frames = [
        count_frame(np.roll(expected, (k % 3, -(k // 2)), axis=(0, 1)), rng=rng) for k in range(6)
    ]
    path = tmp_path / "integer.mrc"
    write_frames(path, iter(frames), (6, 64, 64), 8.0)
    sums = even_odd_sums(path, align=False)
    truth = sum(np.roll(expected, (k % 3, -(k // 2)), axis=(0, 1)) for k in range(0, 6, 2))
    white = sums.even - truth
    assert abs(lag1_correlation(white, 0)) < 0.04
    assert abs(lag1_correlation(white, 1)) < 0.04


def test_a_movie_is_reproducible_from_its_seed():
    config = small_config(n_frames=3)
    a = MovieSimulator(config).simulate(0)
    b = MovieSimulator(config).simulate(0)
    c = MovieSimulator(config.replace(seed=6)).simulate(0)
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.clean, b.clean)
    assert not np.array_equal(a.frames, c.frames)
    # a movie depends on its index only, not on how many movies come before it
    later = MovieSimulator(config.replace(first_index=1, n_movies=1)).simulate(1)
    np.testing.assert_array_equal(
        MovieSimulator(config.replace(n_movies=2)).simulate(1).frames, later.frames
    )


@pytest.mark.parametrize(
    ("changes", "word"),
    [
        ({"n_frames": 1}, "n_frames"),
        ({"dose_per_frame_e_per_a2": 0}, "dose_per_frame_e_per_a2"),
        ({"defocus_angstrom": 1000, "defocus_spread_angstrom": 2000}, "defocus_angstrom"),
        ({"phantom": "nope"}, "phantom"),
        ({"size": 8}, "size"),
    ],
)
def test_bad_settings_name_the_field(changes, word):
    with pytest.raises(ParameterError, match=word):
        small_config(**changes)


def test_model_parameters_are_checked():
    with pytest.raises(ParameterError, match="detection_efficiency"):
        DetectorModel(detection_efficiency=1.5)
    with pytest.raises(ParameterError, match="samples_per_frame"):
        DriftModel(samples_per_frame=0)
    with pytest.raises(ParameterError, match="thickness_angstrom"):
        IceModel(thickness_angstrom=10)
