"""`cryoden train` inputs: folders, globs, STAR files (n2n --star even/odd), --max-micrographs;
bad inputs are refused in one line before any output."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cryoden.io.mrc import write_mrc

#: A tiny run: a two-level-free U-Net, a handful of steps, no preview.
TINY = (
    "--steps", "2", "--steps-per-epoch", "1", "--patch", "16", "--batch", "2", "--threads", "1",
    "--base-channels", "2", "--depth", "1", "--no-preview",
)  # fmt: skip


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A RELION-like project: even/odd sums of four micrographs and a STAR file naming them."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(4):
        clean = rng.normal(size=(32, 32)).astype(np.float32)
        for half in ("even", "odd"):
            folder = tmp_path / "MotionCorr" / half
            folder.mkdir(parents=True, exist_ok=True)
            write_mrc(folder / f"m{i}.mrc", clean + rng.normal(size=clean.shape).astype(np.float32))
        rows.append(f"MotionCorr/m{i}.mrc MotionCorr/even/m{i}.mrc MotionCorr/odd/m{i}.mrc")
    header = "data_micrographs\n\nloop_\n_rlnMicrographName\n_rlnMicrographNameEven\n"
    (tmp_path / "mics.star").write_text(header + "_rlnMicrographNameOdd\n" + "\n".join(rows) + "\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _training_record(model) -> dict:
    return json.loads((model / "config.json").read_text())["training"]


def test_n2n_from_star_even_odd_columns(cli, project):
    r = cli("train", "n2n", "--star", "mics.star", "--out", "model", *TINY)
    assert r.code == 0, r.err
    record = _training_record(project / "model")
    assert record["data"]["star"] == "mics.star" and record["data"]["n_pairs"] == 4
    assert record["sources"][0].endswith("MotionCorr/even/m0.mrc")


def test_n2v_from_a_glob_with_max_micrographs(cli, project):
    r = cli(
        "train", "n2v", "--images", "MotionCorr/even/*.mrc", "--max-micrographs", "3",
        "--out", "model", *TINY,
    )  # fmt: skip
    assert r.code == 0, r.err
    record = _training_record(project / "model")
    # evenly spread: file ((2 i + 1) * 4) // 6 of the four, the middle of the i-th of 3 runs
    assert [s.rsplit("/", 1)[-1] for s in record["sources"]] == ["m0.mrc", "m2.mrc", "m3.mrc"]
    assert record["data"]["max_micrographs"] == 3 and record["data"]["n_files"] == 3


def test_n2n_from_two_folders(cli, project):
    r = cli("train", "n2n", "--a", "MotionCorr/even", "--b", "MotionCorr/odd", "--out", "m", *TINY)
    assert r.code == 0, r.err


@pytest.mark.parametrize(
    "args, expected",
    [
        (("n2n", "--out", "m"), "give --a and --b"),
        (("n2n", "--star", "mics.star", "--a", "MotionCorr/even", "--out", "m"), "not both"),
        (("n2v", "--images", "Nope/*.mrc", "--out", "m"), "Nope/*.mrc: nothing matches"),
        (("n2v", "--images", "mics.star", "--images", "MotionCorr/even", "--out", "m"),
         "must be the only input"),
        (("n2n", "--a", "MotionCorr/even", "--b", "MotionCorr/odd/m[0-2].mrc", "--out", "m"),
         "m3.mrc: has no partner named m3.mrc"),
    ],
)  # fmt: skip
def test_bad_inputs_one_line_no_output(cli, project, args, expected):
    r = cli("train", *args, *TINY)
    assert r.code != 0 and expected in r.err
    assert len([line for line in r.err.splitlines() if line.strip()]) == 1
    assert not (project / "m").exists()


def test_star_without_even_odd_columns_names_the_column(cli, project):
    (project / "plain.star").write_text("data_\n\nloop_\n_rlnMicrographName\nMotionCorr/m0.mrc\n")
    r = cli("train", "n2n", "--star", "plain.star", "--out", "m", *TINY)
    assert r.code != 0 and "plain.star: " in r.err and "rlnMicrographNameEven" in r.err
    assert not (project / "m").exists()
