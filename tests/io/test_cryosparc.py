"""cryoSPARC .cs exports: path fields read without unpickling; bad files refused in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cryoden.errors import InputFileError
from cryoden.io.cryosparc import read_cs_paths


def _save(path, array) -> None:
    with open(path, "wb") as handle:  # np.save would append ".npy" to a path
        np.save(handle, array)


def _exposures(paths: list[bytes], field: str = "micrograph_blob/path") -> np.ndarray:
    array = np.zeros(len(paths), dtype=[("uid", "<u8"), (field, "S64"), ("ctf/df1_A", "<f4")])
    array[field] = paths
    return array


def test_paths_relative_to_the_project(tmp_path):
    cs = tmp_path / "exposures.cs"
    _save(cs, _exposures([b">J2/motioncorrected/a.mrc", b"J2/motioncorrected/b.mrc"]))
    paths = read_cs_paths(cs, project_dir=tmp_path / "P1")
    assert paths == [
        tmp_path / "P1/J2/motioncorrected/a.mrc",
        tmp_path / "P1/J2/motioncorrected/b.mrc",
    ]


def test_field_order_and_explicit_field(tmp_path):
    cs = tmp_path / "x.cs"
    array = np.zeros(1, dtype=[("movie_blob/path", "S16"), ("micrograph_blob_non_dw/path", "S16")])
    array["movie_blob/path"] = b"/m/movie.tif"
    array["micrograph_blob_non_dw/path"] = b"/m/nondw.mrc"
    _save(cs, array)
    assert read_cs_paths(cs) == [Path("/m/nondw.mrc")]
    assert str(read_cs_paths(cs, field="movie_blob/path")[0]) == "/m/movie.tif"
    with pytest.raises(InputFileError, match="no field micrograph_blob/path; fields: movie_blob"):
        read_cs_paths(cs, field="micrograph_blob/path")


def test_object_arrays_are_never_unpickled(tmp_path):
    cs = tmp_path / "obj.cs"
    array = np.zeros(2, dtype=[("uid", "<u8"), ("micrograph_blob/path", "O")])
    array["micrograph_blob/path"] = ["J1/a.mrc", "J1/b.mrc"]
    with open(cs, "wb") as handle:
        np.save(handle, array, allow_pickle=True)
    with pytest.raises(InputFileError, match="holds Python objects") as info:
        read_cs_paths(cs)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"\x94CSDAT" + bytes(64), "compressed .cs format"),
        (b"data_\nloop_\n", "not a cryoSPARC .cs array"),
    ],
)
def test_foreign_files_are_refused(tmp_path, content, expected):
    cs = tmp_path / "x.cs"
    cs.write_bytes(content)
    with pytest.raises(InputFileError, match=expected):
        read_cs_paths(cs)


def test_no_path_field_lists_the_fields(tmp_path):
    cs = tmp_path / "x.cs"
    _save(cs, np.zeros(2, dtype=[("uid", "<u8"), ("ctf/df1_A", "<f4")]))
    with pytest.raises(InputFileError) as info:
        read_cs_paths(cs)
    assert "has no path field" in str(info.value) and "fields: uid, ctf/df1_A" in str(info.value)
    plain = tmp_path / "plain.cs"
    _save(plain, np.zeros(3))
    with pytest.raises(InputFileError, match="not a cryoSPARC .cs table"):
        read_cs_paths(plain)
