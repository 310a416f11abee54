"""Method records, study settings, method selection (bm3d's optional path), data split, cell
store, methods."""

from __future__ import annotations

import importlib.machinery
import json
import sys
import types

import numpy as np
import pytest

from cryoden.benchmark import registry
from cryoden.benchmark.data import Split, simulate_study_images
from cryoden.benchmark.methods import (
    RUNNERS,
    calibrate,
    make_study_scheme,
    network_config_for,
    run_method,
    train_config_for,
    training_data,
)
from cryoden.benchmark.registry import METHOD_NAMES, METHODS, get_method, parse_methods
from cryoden.benchmark.store import CellStore
from cryoden.benchmark.study import StudyConfig, preset
from cryoden.errors import InputFileError, ParameterError
from cryoden.filters import gaussian_filter
from cryoden.noise import STUDY_SNR_LEVELS


@pytest.fixture
def fake_bm3d(monkeypatch):
    """An importable stand-in for the optional bm3d package (a Gaussian blur)."""
    module = types.ModuleType("bm3d")
    module.__spec__ = importlib.machinery.ModuleSpec("bm3d", None)
    calls = []

    def bm3d(z, sigma_psd):
        calls.append(float(sigma_psd))
        return gaussian_filter(np.asarray(z, dtype=np.float32), sigma_px=1.0).astype(np.float64)

    module.bm3d = bm3d
    monkeypatch.setitem(sys.modules, "bm3d", module)
    return calls


def test_every_record_is_complete_and_runnable():
    """Each record carries all its consumers need; one record is the whole method."""
    assert len(set(METHOD_NAMES)) == len(METHODS)
    assert len({m.color for m in METHODS}) == len(METHODS)
    config = preset("tiny")
    for method in METHODS:
        assert method.description and method.runner in RUNNERS, method.name
        if method.kind == "calibrated":
            assert method.parameter and method.parameter_label and len(method.grid) > 1
        if method.kind == "fixed":
            assert method.filter and method.fixed and not method.grid
        if method.learned:
            network = network_config_for(method, config)
            assert network.arch == method.arch
            assert make_study_scheme(method) is not None
            # a departure from the scheme's default network is explained in the record
            assert bool(method.network_options) == bool(method.network_note), method.name


def test_learned_order_is_stable():
    """A learned method's position derives its training seeds: new ones go last."""
    assert registry.LEARNED_METHODS == (
        "n2n-seed5", "n2n-seed4", "n2n-unet", "n2v", "ne2ne", "supervised"
    )  # fmt: skip
    assert METHOD_NAMES[: len(registry.LEARNED_METHODS)] == registry.LEARNED_METHODS


def test_unknown_method_names_the_parameter():
    with pytest.raises(ParameterError, match="^methods: unknown method 'x'") as info:
        get_method("x")
    assert "--" not in str(info.value)


def test_presets_and_study_levels():
    quick = preset("quick")
    assert quick.snr_levels == STUDY_SNR_LEVELS and len(quick.snr_levels) == 10
    assert quick.snr_levels[0] == pytest.approx(0.01) and quick.snr_levels[-1] == pytest.approx(0.5)
    full = preset("full")
    assert full.image_size > quick.image_size and full.train_steps > quick.train_steps
    tiny = preset("tiny")
    assert tiny.image_size < quick.image_size
    # the tiny preset keeps the study's extremes and one level between them
    assert set(tiny.snr_levels) <= set(STUDY_SNR_LEVELS) and len(tiny.snr_levels) >= 3
    assert tiny.snr_levels[0] == quick.snr_levels[0] and tiny.snr_levels[-1] == quick.snr_levels[-1]
    with pytest.raises(ParameterError, match="unknown study preset"):
        preset("huge")


def test_budgets_are_steps_and_threads_not_wall_time():
    """Every learned cell trains exactly train_steps steps on the study's threads: no time
    limit and no early stopping, so nothing in a cell depends on the machine's speed."""
    quick = preset("quick")
    assert len(quick.learned_methods) == 6
    # per method: the pretraining from random weights, then ten warm-started cells
    assert quick.total_train_steps == 6 * (2 + 10) * quick.train_steps
    assert quick.replace(warm_start=False).total_train_steps == 6 * 10 * 2 * quick.train_steps
    data = simulate_study_images(preset("tiny")).at(0)
    for name in quick.learned_methods:
        for warm, steps in ((True, quick.train_steps), (False, 2 * quick.train_steps)):
            train = train_config_for(get_method(name), data, quick, warm=warm)
            assert train.max_steps == steps and train.max_minutes is None
            assert train.early_stopping_patience is None and train.threads == quick.threads
    assert 1 <= preset("quick").threads <= 2 and preset("tiny").threads == 1


def test_supervised_is_n2n_unet_trained_on_clean_targets():
    """The ceiling: n2n-unet's network; noisy inputs paired with their clean images, the pair
    normalised with the noisy image's parameters (so outputs come back in its scale)."""
    config = preset("tiny")
    supervised, n2n_unet = get_method("supervised"), get_method("n2n-unet")
    assert supervised.trains_on_clean and not n2n_unet.trains_on_clean
    assert network_config_for(supervised, config) == network_config_for(n2n_unet, config)
    data = simulate_study_images(config).at(1)
    train, val = training_data(supervised, data)
    assert len(train) == 2 * config.n_train and len(val) == 2 * config.n_val
    noisy = [*data.train_a, *data.train_b]
    clean = [*data.clean.train, *data.clean.train]
    for image, a, c in zip(train.images, noisy, clean):
        # one affine map (the noisy image's) takes both raw images to the stored channels
        scale = np.std(image[0]) / np.std(a)
        offset = np.mean(image[0]) - scale * np.mean(a)
        np.testing.assert_allclose(image[1], scale * c + offset, atol=1e-4)
        np.testing.assert_allclose(image[0], scale * a + offset, atol=1e-4)


def test_config_validation():
    with pytest.raises(ParameterError, match="train_steps"):
        StudyConfig(train_steps=0)
    with pytest.raises(ParameterError, match="threads"):
        StudyConfig(threads=0)
    with pytest.raises(ParameterError, match="methods"):
        StudyConfig(methods=("n2n-seed5", "magic"))
    with pytest.raises(ParameterError, match="montage_snr_indices"):
        StudyConfig(montage_snr_indices=(10,))


def test_fingerprint_ignores_the_method_list():
    a = preset("tiny", methods=("gaussian",))
    b = preset("tiny", methods=("gaussian", "median"))
    assert a.fingerprint() == b.fingerprint()
    assert a.fingerprint() != preset("tiny", seed=1).fingerprint()
    assert a.fingerprint() != preset("tiny", train_steps=7).fingerprint()
    assert a.fingerprint() != preset("tiny", threads=2).fingerprint()


def test_parse_methods_keeps_study_order_and_rejects_unknown():
    assert parse_methods("median, n2n-seed4") == ("n2n-seed4", "median")
    with pytest.raises(ParameterError, match="^methods: unknown method 'foo'; known: n2n-seed5"):
        parse_methods("foo")
    with pytest.raises(ParameterError, match="repeated"):
        parse_methods("median,median")


def test_bm3d_is_skipped_when_not_installed(monkeypatch):
    monkeypatch.setattr(registry, "package_available", lambda package: False)
    assert "bm3d" not in registry.default_methods()
    assert set(registry.default_methods()) == set(METHOD_NAMES) - {"bm3d"}
    with pytest.raises(ParameterError, match="^methods: bm3d needs the optional bm3d package"):
        parse_methods("gaussian,bm3d")


def test_bm3d_really_absent_here_is_handled():
    if registry.package_available("bm3d"):
        pytest.skip("bm3d is installed here")
    assert "bm3d" not in preset("quick").methods


def test_bm3d_path_runs_when_installed(fake_bm3d, tmp_path):
    assert registry.package_available("bm3d")
    assert "bm3d" in registry.default_methods()
    config = preset("tiny", methods=parse_methods("bm3d"))
    images = simulate_study_images(config)
    output = run_method("bm3d", images.at(1), config)
    assert output.denoised.shape == images.at(1).test_noisy.shape
    assert output.parameters["sigma_factor"] in get_method("bm3d").grid
    assert fake_bm3d and all(s > 0 for s in fake_bm3d)


def test_split_is_disjoint_and_complete():
    config = preset("quick")
    split = Split.from_config(config)
    groups = [split.train, split.validation, split.calibration, split.test]
    flat = [i for g in groups for i in g]
    assert len(flat) == len(set(flat)) == split.n_total
    assert [len(g) for g in groups] == [
        config.n_train,
        config.n_val,
        config.n_calibration,
        config.n_test,
    ]
    assert split.to_dict()["disjoint"] is True


def test_simulated_images_snr_and_independence():
    config = preset("tiny")
    images = simulate_study_images(config)
    data = images.at(len(config.snr_levels) - 1)
    assert data.snr == pytest.approx(0.5)
    test_clean = images.clean.test
    measured = np.var(test_clean, axis=(1, 2)) / np.var(data.test_noisy - test_clean, axis=(1, 2))
    assert np.allclose(measured, 0.5, rtol=0.35)
    # the two realisations of a pair differ; test and training projections differ
    assert not np.allclose(data.train_a, data.train_b)
    assert not any(np.allclose(t, c) for t in test_clean for c in images.clean.train)


def test_calibration_picks_the_best_grid_value():
    clean = np.zeros((1, 8, 8), np.float32)
    noisy = clean + 1.0

    def apply(stack, value):
        return stack - value

    best, scores = calibrate(apply, (0.0, 0.5, 1.0), clean + np.eye(8, dtype=np.float32), noisy)
    assert best == 1.0 and max(scores, key=scores.get) == "1.0"


def test_calibrated_filters_choose_on_calibration_images_only():
    config = preset("tiny", methods=("gaussian",))
    images = simulate_study_images(config)
    data = images.at(1)
    # Changing the clean *test* images must not change the chosen parameter.
    out1 = run_method("gaussian", data, config)
    data.clean.test[:] = 0.0
    out2 = run_method("gaussian", data, config)
    assert out1.parameters["sigma_px"] == out2.parameters["sigma_px"]
    assert out1.parameters["sigma_px"] in get_method("gaussian").grid
    assert "calibration" in out1.parameters["chosen_on"]


def test_cell_store_round_trip_and_settings_guard(tmp_path):
    fingerprint = preset("tiny").fingerprint()
    store = CellStore(tmp_path / "cells", fingerprint)
    assert not store.has("gaussian", 3)
    image = np.arange(16, dtype=np.float32).reshape(4, 4)
    store.save("gaussian", 3, {"method": "gaussian", "psnr": 12.5}, image)
    again = CellStore(tmp_path / "cells", fingerprint)
    row, loaded = again.load("gaussian", 3)
    assert row == {"method": "gaussian", "psnr": 12.5}
    np.testing.assert_array_equal(loaded, image)
    assert not list((tmp_path / "cells").glob("*.tmp"))
    with pytest.raises(InputFileError, match="other settings.*seed"):
        CellStore(tmp_path / "cells", preset("tiny", seed=5).fingerprint())


def test_cell_store_ignores_a_torn_cell(tmp_path):
    store = CellStore(tmp_path / "cells", preset("tiny").fingerprint())
    (tmp_path / "cells" / "median__snr01.json").write_text('{"method": "med')
    assert store.load("median", 1) is None
    (tmp_path / "cells" / "median__snr02.json").write_text(json.dumps({"key": "other"}))
    assert store.load("median", 2) is None


def test_results_json_is_strict_json(tmp_path):
    from cryoden.benchmark.store import write_json

    path = tmp_path / "x.json"
    write_json(path, {"a": float("nan"), "b": [1.0, float("inf")], "c": np.float32(2.5)})
    assert json.loads(path.read_text()) == {"a": None, "b": [1.0, None], "c": 2.5}
    assert "NaN" not in path.read_text()
