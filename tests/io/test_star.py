"""RELION STAR files: 3.0 and 3.1+ layouts, one-line refusals, paths against the project
folder, and outputs that keep every block and column."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import starfile

from cryoden.errors import InputFileError, ParameterError
from cryoden.io.star import (
    read_micrographs_star,
    read_star_table,
    star_paths,
    write_star_with_outputs,
)

RELION31 = """
# version 30001

data_optics

loop_
_rlnOpticsGroupName #1
_rlnOpticsGroup #2
_rlnMicrographPixelSize #3
opticsGroup1 1 0.885
opticsGroup2 2 0.885

# version 30001

data_micrographs

loop_
_rlnMicrographName #1
_rlnOpticsGroup #2
_rlnCtfMaxResolution #3
MotionCorr/job002/Movies/a.mrc 1 4.2
MotionCorr/job002/Movies/b.mrc 2 5.0
MotionCorr/job002/Movies/c.mrc 1 3.1
"""

RELION30 = """
data_

loop_
_rlnMicrographName #1
_rlnDefocusU #2
Micrographs/a.mrc 10000.0
Micrographs/b.mrc 12000.0
"""


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _project(tmp_path: Path, names: list[str]) -> Path:
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    return tmp_path


def test_relion31_reads_both_blocks(tmp_path):
    star = read_micrographs_star(_write(tmp_path / "m.star", RELION31))
    assert star.table == "micrographs"
    assert list(star.blocks) == ["optics", "micrographs"]
    assert len(star.micrographs) == 3 and len(star) == 3
    assert star.optics is not None and list(star.optics["rlnOpticsGroup"]) == [1, 2]
    assert list(star.micrographs["rlnMicrographName"])[0] == "MotionCorr/job002/Movies/a.mrc"


def test_relion30_single_block(tmp_path):
    star = read_micrographs_star(_write(tmp_path / "m.star", RELION30))
    assert star.optics is None
    assert list(star.micrographs["rlnMicrographName"]) == ["Micrographs/a.mrc", "Micrographs/b.mrc"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("hello world\n", "not a STAR file"),
        (RELION31.replace("data_micrographs", "data_particles"), "no data_micrographs block"),
        (RELION30.replace("_rlnMicrographName", "_rlnImageName"), "no column rlnMicrographName"),
        (
            RELION31.replace("c.mrc 1 3.1", "c.mrc 7 3.1"),
            "row 3 of data_micrographs: rlnOpticsGroup 7",
        ),
    ],
)
def test_bad_star_files_are_refused_in_one_line(tmp_path, text, expected):
    path = _write(tmp_path / "m.star", text)
    with pytest.raises(InputFileError) as info:
        read_micrographs_star(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and expected in message and "\n" not in message


def test_binary_and_missing_files_are_refused(tmp_path):
    binary = tmp_path / "b.star"
    binary.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(InputFileError, match="b.star: "):
        read_micrographs_star(binary)
    with pytest.raises(InputFileError, match="no such file"):
        read_micrographs_star(tmp_path / "none.star")


def test_paths_resolve_against_the_project_folder(tmp_path, monkeypatch):
    project = _project(tmp_path, [f"MotionCorr/job002/Movies/{n}.mrc" for n in "abc"])
    star = read_micrographs_star(_write(project / "m.star", RELION31))
    paths = star_paths(star, project_dir=project)
    assert paths == [project / f"MotionCorr/job002/Movies/{n}.mrc" for n in "abc"]
    monkeypatch.chdir(project)
    assert [p.resolve() for p in star_paths(star)] == [p.resolve() for p in paths]


def test_missing_micrograph_names_its_row(tmp_path):
    project = _project(tmp_path, ["MotionCorr/job002/Movies/a.mrc"])
    star = read_micrographs_star(_write(project / "m.star", RELION31))
    with pytest.raises(InputFileError) as info:
        star_paths(star, project_dir=project)
    assert str(info.value) == (
        f"{project / 'm.star'}: row 2: rlnMicrographName "
        "'MotionCorr/job002/Movies/b.mrc' does not exist"
    )
    with pytest.raises(InputFileError, match="no column rlnMicrographNameEven"):
        star_paths(star, "rlnMicrographNameEven", project_dir=project)


def test_output_star_keeps_blocks_and_columns(tmp_path):
    project = tmp_path
    star = read_micrographs_star(_write(project / "m.star", RELION31))
    outputs = [project / "Denoise/job010/a.mrc", None, Path("/elsewhere/c.mrc")]
    out = project / "Denoise/job010/micrographs.star"
    out.parent.mkdir(parents=True)
    write_star_with_outputs(
        star, outputs, out, project_dir=project, extra_columns={"rlnCryodenScore": [1.5, 2.0, 3.0]}
    )
    back = starfile.read(out, always_dict=True)
    assert list(back) == ["optics", "micrographs"]
    pd.testing.assert_frame_equal(back["optics"], star.optics)
    table = back["micrographs"]
    assert list(table["rlnMicrographName"]) == ["Denoise/job010/a.mrc", "/elsewhere/c.mrc"]
    assert list(table["rlnMicrographNameRaw"]) == [
        "MotionCorr/job002/Movies/a.mrc",
        "MotionCorr/job002/Movies/c.mrc",
    ]
    assert list(table["rlnOpticsGroup"]) == [1, 1]
    assert list(table["rlnCtfMaxResolution"]) == pytest.approx([4.2, 3.1])
    assert list(table["rlnCryodenScore"]) == pytest.approx([1.5, 3.0])
    # The output is again a valid micrographs STAR file.
    assert read_micrographs_star(out).table == "micrographs"
    assert not list(out.parent.glob(".*.tmp"))


def test_output_star_refuses_wrong_lengths(tmp_path):
    star = read_micrographs_star(_write(tmp_path / "m.star", RELION30))
    with pytest.raises(ParameterError, match="one entry per row"):
        write_star_with_outputs(star, [None], tmp_path / "o.star")
    with pytest.raises(ParameterError, match="extra column q"):
        write_star_with_outputs(star, [None, None], tmp_path / "o.star", extra_columns={"q": [1]})
    assert not (tmp_path / "o.star").exists()


def test_generic_table_reads_tomograms(tmp_path):
    text = """
data_global

loop_
_rlnTomoName #1
_rlnTomoReconstructedTomogramHalf1 #2
_rlnTomoReconstructedTomogramHalf2 #3
TS_01 Tomograms/TS_01_half1.mrc Tomograms/TS_01_half2.mrc
"""
    path = _write(tmp_path / "tomograms.star", text)
    star = read_star_table(path, block="global", required=("rlnTomoName",))
    assert list(star.micrographs["rlnTomoName"]) == ["TS_01"]
    assert read_star_table(path, block=None, required=()).table == "global"
    with pytest.raises(InputFileError, match="no data_tomograms block"):
        read_star_table(path, block="tomograms", required=())
    with pytest.raises(InputFileError, match="no column rlnTomoTiltSeriesStarFile"):
        read_star_table(path, block="global", required=("rlnTomoTiltSeriesStarFile",))
