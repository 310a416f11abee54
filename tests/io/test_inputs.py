"""Input specs (files, folders, globs, STAR, .cs) expand to files whose outputs mirror the
input folders; duplicates, mixtures with a STAR file and empty specs are refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cryoden.errors import InputFileError, ParameterError
from cryoden.io.inputs import (
    InputItem,
    expand_inputs,
    is_mrc_name,
    mirrored_outputs,
    mrc_stem,
    spread_indices,
)


def _touch(root: Path, *names: str) -> list[Path]:
    out = []
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
        out.append(path)
    return out


def _mrc_suffix(path: Path) -> str:
    return ".mrcs" if path.name.lower().endswith(".mrcs") else ".mrc"


def test_folder_gives_its_mrc_files_sorted_with_plain_names(tmp_path):
    _touch(tmp_path / "in", "b.mrc", "a.MRC", "c.mrcs", "d.map.gz", "notes.txt", "sub/e.mrc")
    found = expand_inputs([tmp_path / "in"])
    assert [i.relative for i in found.items] == [
        Path(n) for n in ("a.MRC", "b.mrc", "c.mrcs", "d.map.gz")
    ]
    assert found.star is None and all(i.row is None for i in found.items)
    outs = mirrored_outputs(found.items, tmp_path / "out", suffix_for=_mrc_suffix)
    assert [o.name for o in outs] == ["a.mrc", "b.mrc", "c.mrcs", "d.mrc"]


def test_same_names_in_two_folders_keep_their_folders(tmp_path):
    a, b = _touch(tmp_path, "a/x.mrc", "b/x.mrc")
    found = expand_inputs([a, b])
    assert [i.relative for i in found.items] == [Path("a/x.mrc"), Path("b/x.mrc")]
    outs = mirrored_outputs(found.items, tmp_path / "out", suffix_for=_mrc_suffix)
    assert outs == [tmp_path / "out/a/x.mrc", tmp_path / "out/b/x.mrc"]


def test_glob_patterns_expand_sorted_recursive_with_double_star(tmp_path, monkeypatch):
    _touch(tmp_path, "Movies/m2.mrc", "Movies/m1.mrc", "Movies/deep/m3.mrc", "Movies/x.tif")
    monkeypatch.chdir(tmp_path)
    flat = expand_inputs(["Movies/*.mrc"])
    assert [i.relative for i in flat.items] == [Path("m1.mrc"), Path("m2.mrc")]
    deep = expand_inputs(["Movies/**/*.mrc"])
    assert [i.relative for i in deep.items] == [Path("deep/m3.mrc"), Path("m1.mrc"), Path("m2.mrc")]
    with pytest.raises(InputFileError, match=r"^Movies/\*.tif: 1 match\(es\), none an MRC file"):
        expand_inputs(["Movies/*.tif"])
    with pytest.raises(InputFileError, match="nothing matches"):
        expand_inputs(["Nope/*.mrc"])


def test_star_file_gives_its_rows(tmp_path):
    _touch(tmp_path, "MC/job002/Movies/a.mrc", "MC/job002/Movies/b.mrc")
    star = tmp_path / "micrographs.star"
    star.write_text(
        "data_\n\nloop_\n_rlnMicrographName #1\nMC/job002/Movies/b.mrc\nMC/job002/Movies/a.mrc\n"
    )
    found = expand_inputs([star], project_dir=tmp_path)
    assert found.star is not None and len(found.star) == 2
    assert [(i.relative, i.row) for i in found.items] == [(Path("b.mrc"), 0), (Path("a.mrc"), 1)]
    with pytest.raises(ParameterError, match="must be the only input"):
        expand_inputs([star, tmp_path / "MC/job002/Movies/a.mrc"])


def test_cs_file_gives_its_rows(tmp_path):
    _touch(tmp_path, "J2/mc/a.mrc", "J2/mc/b.mrc")
    array = np.zeros(2, dtype=[("micrograph_blob/path", "S32")])
    array["micrograph_blob/path"] = [b"J2/mc/a.mrc", b"J2/mc/b.mrc"]
    cs = tmp_path / "exposures.cs"
    with open(cs, "wb") as handle:
        np.save(handle, array)
    found = expand_inputs([cs], project_dir=tmp_path)
    assert [(i.path, i.row) for i in found.items] == [
        (tmp_path / "J2/mc/a.mrc", 0),
        (tmp_path / "J2/mc/b.mrc", 1),
    ]
    array["micrograph_blob/path"][1] = b"J2/mc/gone.mrc"
    with open(cs, "wb") as handle:
        np.save(handle, array)
    with pytest.raises(InputFileError, match="row 2: .*gone.mrc' does not exist"):
        expand_inputs([cs], project_dir=tmp_path)


def test_refusals_name_the_spec(tmp_path):
    (a,) = _touch(tmp_path, "f/a.mrc")
    with pytest.raises(ParameterError, match="named twice"):
        expand_inputs([a, tmp_path / "f"])
    with pytest.raises(InputFileError, match=r"missing\.mrc: no such file or folder"):
        expand_inputs([tmp_path / "missing.mrc"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputFileError, match="folder holds no MRC files"):
        expand_inputs([tmp_path / "empty"])
    with pytest.raises(ParameterError, match="no inputs"):
        expand_inputs([])


def test_two_inputs_onto_one_output_are_refused(tmp_path):
    items = [
        InputItem(tmp_path / "x.mrc", Path("x.mrc")),
        InputItem(tmp_path / "x.map", Path("x.map")),
    ]
    with pytest.raises(ParameterError, match=r"inputs .*x\.mrc and .*x\.map would both be written"):
        mirrored_outputs(items, tmp_path / "out", suffix_for=lambda p: ".mrc")


def test_names_and_stems():
    assert is_mrc_name("a.ST") and is_mrc_name("a.rec.bz2") and not is_mrc_name("a.tif")
    assert (
        mrc_stem("x.mrc.gz") == "x" and mrc_stem("x.y.mrcs") == "x.y" and mrc_stem("x.tif") == "x"
    )


@pytest.mark.parametrize("count, n", [(10, 3), (200, 7), (5, 5), (7, 1), (3, 10)])
def test_spread_indices_are_distinct_sorted_and_spread(count, n):
    picked = spread_indices(count, n)
    assert picked == sorted(set(picked)) and len(picked) == min(n, count)
    assert picked == spread_indices(count, n)  # deterministic
    if n < count:
        gaps = np.diff([-0.5, *picked, count - 0.5])
        assert gaps.max() <= count / n + 1  # no big stretch of the acquisition left out
    with pytest.raises(ParameterError):
        spread_indices(4, 0)
