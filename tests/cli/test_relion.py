"""RELION projects: `cryoden denoise` on a micrographs STAR file (STAR in, STAR out), the bad
STAR files it names in one line, and `cryoden relion denoise|train` as External jobs (exit
markers, output nodes, abort), run from a RELION-style project folder built in tmp_path."""

from __future__ import annotations

import os
import stat

import mrcfile
import numpy as np
import pandas as pd
import pytest
import starfile
import torch

from cryoden.io import read_mrc, write_mrc
from cryoden.models import ModelConfig, load_model, save_model
from cryoden.nets import NetworkConfig, build_network
from cryoden.pipeline.relion import RelionJobDir

pytestmark = pytest.mark.usefixtures("one_thread")

STAR = "MotionCorr/job002/corrected_micrographs.star"
SHAPE = (40, 48)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    config = NetworkConfig(depth=2, base_channels=4)
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("model")
    return save_model(folder / "m.safetensors", build_network(config), ModelConfig(config))


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A RELION project: three motion-corrected micrographs (1.1 Å) with their even/odd sums
    in MotionCorr/job002/Movies/, listed in corrected_micrographs.star (optics block, RELION's
    columns); the test runs in the project folder, as RELION does."""
    root = tmp_path / "project"
    names = []
    for i in range(3):
        base = f"MotionCorr/job002/Movies/mic{i}"
        for j, suffix in enumerate(("", "_EVN", "_ODD")):
            path = root / f"{base}{suffix}.mrc"
            path.parent.mkdir(parents=True, exist_ok=True)
            data = np.random.default_rng([i, j]).normal(size=SHAPE).astype(np.float32)
            write_mrc(path, data, voxel_size_angstrom=1.1)
        names.append(base)
    optics = pd.DataFrame({
        "rlnOpticsGroupName": ["opticsGroup1"], "rlnOpticsGroup": [1],
        "rlnMicrographOriginalPixelSize": [0.55], "rlnVoltage": [300.0],
        "rlnSphericalAberration": [2.7], "rlnAmplitudeContrast": [0.1],
        "rlnMicrographPixelSize": [1.1],
    })  # fmt: skip
    micrographs = pd.DataFrame({
        "rlnCtfPowerSpectrum": [f"{n}_PS.mrc" for n in names],
        "rlnMicrographName": [f"{n}.mrc" for n in names],
        "rlnMicrographMetadata": [f"{n}.star" for n in names],
        "rlnOpticsGroup": [1, 1, 1],
        "rlnAccumMotionTotal": [16.4, 12.1, 9.9],
        "rlnMicrographNameEven": [f"{n}_EVN.mrc" for n in names],
        "rlnMicrographNameOdd": [f"{n}_ODD.mrc" for n in names],
    })  # fmt: skip
    starfile.write({"optics": optics, "micrographs": micrographs}, root / STAR)
    monkeypatch.chdir(root)
    return root


def _error_lines(result):
    return [line for line in result.err.splitlines() if line.startswith("cryoden: error: ")]


def _check_output_star(path, job):
    """The output STAR keeps every block and column, points at denoised files of the raw
    micrographs' shape and pixel size, and keeps the raw paths."""
    raw = starfile.read(STAR, always_dict=True)
    out = starfile.read(path, always_dict=True)
    assert list(out) == ["optics", "micrographs"]
    pd.testing.assert_frame_equal(out["optics"], raw["optics"])
    mics = out["micrographs"]
    expected = list(raw["micrographs"].columns)
    expected.insert(expected.index("rlnMicrographName") + 1, "rlnMicrographNameRaw")
    assert list(mics.columns) == expected
    assert list(mics["rlnMicrographNameRaw"]) == list(raw["micrographs"]["rlnMicrographName"])
    for column in raw["micrographs"].columns.drop("rlnMicrographName"):
        assert list(mics[column]) == list(raw["micrographs"][column]), column
    for name, raw_name in zip(mics["rlnMicrographName"], mics["rlnMicrographNameRaw"]):
        assert name.startswith(f"{job}/")  # relative to the project, inside the job
        denoised, source = read_mrc(name), read_mrc(raw_name)
        assert denoised.data.shape == source.data.shape == SHAPE
        assert denoised.pixel_size_angstrom == pytest.approx(1.1)


def test_denoise_star_in_star_out(cli, project, model):
    r = cli("denoise", "-m", model, STAR, "-o", "Denoise/job010", "--threads", "1")
    assert r.code == 0, r.err
    _check_output_star("Denoise/job010/micrographs_denoised.star", "Denoise/job010")


@pytest.mark.parametrize("mask", [0o022, 0o002])
def test_outputs_are_readable_as_the_umask_decides(cli, project, model, mask):
    previous = os.umask(mask)
    try:
        r = cli("denoise", "-m", model, STAR, "-o", "out", "--threads", "1")
    finally:
        os.umask(previous)
    assert r.code == 0, r.err
    files = [*project.glob("out/*.mrc"), project / "out" / "micrographs_denoised.star",
             project / "out" / "cryoden_provenance.json", project / "out" / "preview.png"]  # fmt: skip
    for path in files:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~mask, path


def _without_the_name_column(blocks):
    del blocks["micrographs"]["rlnMicrographName"]


def _naming_a_missing_file(blocks):
    blocks["micrographs"].loc[1, "rlnMicrographName"] = "Movies/gone.mrc"


def _with_an_unknown_optics_group(blocks):
    blocks["micrographs"]["rlnOpticsGroup"] = [1, 7, 1]


BAD_STARS = {
    "missing column": (_without_the_name_column, ["no column rlnMicrographName"]),
    "missing file": (_naming_a_missing_file, ["row 2", "Movies/gone.mrc", "does not exist"]),
    "unknown optics group": (_with_an_unknown_optics_group, ["rlnOpticsGroup 7", "data_optics"]),
}


@pytest.mark.parametrize("case", sorted(BAD_STARS))
def test_a_bad_star_file_is_one_line(cli, project, model, case):
    edit, needles = BAD_STARS[case]
    blocks = starfile.read(STAR, always_dict=True)
    edit(blocks)
    starfile.write(blocks, "bad.star")
    r = cli("denoise", "-m", model, "bad.star", "-o", "out", "--threads", "1")
    assert r.code == 1 and "Traceback" not in r.err
    (line,) = r.err.strip().splitlines()
    for needle in ["bad.star", *needles]:
        assert needle in line, line
    assert not (project / "out").exists()


def test_a_file_that_is_not_star_is_one_line(cli, project, model):
    (project / "notes.star").write_bytes(b"\x00\x01 this is not a STAR file \xff" * 40)
    r = cli("filter", "mean", "notes.star", "-o", "out")
    assert r.code == 1 and "Traceback" not in r.err
    (line,) = r.err.strip().splitlines()
    assert "notes.star" in line and "STAR" in line
    assert not (project / "out").exists()


# ------------------------------------------------------------------------------ External jobs


def test_relion_denoise_job(cli, project, model):
    job = project / "External" / "job004"
    job.mkdir(parents=True)
    (job / "RELION_JOB_EXIT_FAILURE").touch()  # an earlier run's marker: removed at the start
    r = cli("relion", "denoise", "--o", "External/job004/", "--in_mics", STAR, "--model", model,
            "--dtype", "float16", "--no_preview", "Yes", "--j", "1")  # fmt: skip
    assert r.code == 0, r.err
    _check_output_star(job / "micrographs_denoised.star", "External/job004")
    markers = sorted(p.name for p in job.glob("RELION_JOB_*"))
    assert markers == ["RELION_JOB_EXIT_SUCCESS"]
    nodes = starfile.read(job / "RELION_OUTPUT_NODES.star", always_dict=True)["output_nodes"]
    assert list(nodes["rlnPipeLineNodeName"]) == ["External/job004/micrographs_denoised.star"]
    assert list(nodes["rlnPipeLineNodeTypeLabel"]) == ["MicrographGroupMetadata.star.cryoden"]
    with mrcfile.open(job / "mic0.mrc", header_only=True) as mrc:
        assert int(mrc.header.mode) == 12  # --dtype float16 came through
    assert not (job / "preview.png").exists()  # --no_preview Yes came through
    # Continue: every micrograph is complete already
    r = cli("relion", "denoise", "--o", "External/job004/", "--in_mics", STAR, "--model", model,
            "--dtype", "float16", "--j", "1")  # fmt: skip
    assert r.code == 0 and "0 succeeded, 3 skipped" in r.out


def test_relion_abort_stops_between_micrographs(cli, project, model, monkeypatch):
    """RELION's Abort button creates RELION_JOB_ABORT_NOW; here it appears once the first
    micrograph is denoised. The job stops before the next one and says it was aborted."""
    job = RelionJobDir.at("External/job006")
    check = RelionJobDir.abort_requested
    asked = []

    def abort_after_one(self):
        asked.append(True)
        if len(asked) == 2:
            (job.path / "RELION_JOB_ABORT_NOW").touch()
        return check(self)

    monkeypatch.setattr(RelionJobDir, "abort_requested", abort_after_one)
    r = cli("relion", "denoise", "--o", "External/job006/", "--in_mics", STAR, "--model", model,
            "--j", "1")  # fmt: skip
    assert r.code == 1
    assert sorted(p.name for p in job.path.glob("RELION_JOB_*")) == [
        "RELION_JOB_ABORT_NOW", "RELION_JOB_EXIT_ABORTED",
    ]  # fmt: skip
    assert sorted(p.name for p in job.path.glob("*.mrc")) == ["mic0.mrc"]
    out = starfile.read(job.path / "micrographs_denoised.star", always_dict=True)["micrographs"]
    assert list(out["rlnMicrographName"]) == ["External/job006/mic0.mrc"]


def test_relion_denoise_failure_marker(cli, project, model):
    r = cli("relion", "denoise", "--o", "External/job007/", "--in_mics", STAR, "--model", model,
            "--tile", "0")  # fmt: skip
    assert r.code == 1 and len(_error_lines(r)) == 1 and "--tile" in r.err
    job = project / "External" / "job007"
    assert sorted(p.name for p in job.iterdir()) == ["RELION_JOB_EXIT_FAILURE"]
    # a micrograph that cannot be read: the others are denoised, the job fails
    (project / "MotionCorr/job002/Movies/mic1.mrc").write_bytes(b"not an image" * 100)
    r = cli("relion", "denoise", "--o", "External/job008/", "--in_mics", STAR, "--model", model,
            "--no-preview", "yes")  # fmt: skip
    assert r.code == 1 and "mic1.mrc" in _error_lines(r)[0]
    job = project / "External" / "job008"
    assert (job / "RELION_JOB_EXIT_FAILURE").exists()
    out = starfile.read(job / "micrographs_denoised.star", always_dict=True)["micrographs"]
    assert list(out["rlnMicrographNameRaw"]) == [
        "MotionCorr/job002/Movies/mic0.mrc", "MotionCorr/job002/Movies/mic2.mrc",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        (["--tiles", "3"], "--tiles"),
        (["--no_preview", "maybe"], "yes or no"),
        (["--output", "elsewhere"], "--o"),
        (["stray"], "stray"),
    ],
)
def test_relion_params_that_do_not_parse(cli, project, model, params, needle):
    r = cli("relion", "denoise", "--o", "External/job009/", "--in_mics", STAR, "--model",
            model, *params)  # fmt: skip
    assert r.code == 1 and len(_error_lines(r)) == 1 and needle in r.err, r.err
    assert (project / "External/job009/RELION_JOB_EXIT_FAILURE").exists()


@pytest.mark.slow
def test_relion_train_job(cli, project):
    """Noise2Noise on the even/odd sums of the STAR file; an abort stops the training."""
    args = ["relion", "train", "--in_mics", STAR, "--j", "1", "--steps", "2", "--patch", "16",
            "--batch", "2", "--base_channels", "2", "--depth", "1", "--no_preview", "yes"]  # fmt: skip
    aborted = project / "External" / "job003"
    aborted.mkdir(parents=True)
    (aborted / "RELION_JOB_ABORT_NOW").touch()
    r = cli(*args, "--o", "External/job003/")
    assert r.code == 1 and (aborted / "RELION_JOB_EXIT_ABORTED").exists()
    assert not (aborted / "model.safetensors").exists()
    r = cli(*args, "--o", "External/job011/")
    assert r.code == 0, r.err
    job = project / "External" / "job011"
    assert (job / "RELION_JOB_EXIT_SUCCESS").exists()
    model = load_model(job / "model.safetensors")
    assert model.config.scheme == "n2n"
    nodes = starfile.read(job / "RELION_OUTPUT_NODES.star", always_dict=True)["output_nodes"]
    assert list(nodes["rlnPipeLineNodeName"]) == ["External/job011/model.safetensors"]
    assert list(nodes["rlnPipeLineNodeTypeLabel"]) == ["ProcessData.safetensors.cryoden.model"]
