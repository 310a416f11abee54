"""Volumes read by sections and written slab by slab; RELION 5 ``tomograms.star`` files."""

from __future__ import annotations

import gzip
from pathlib import Path

import mrcfile
import numpy as np
import pytest

from cryoden.errors import InputFileError, ParameterError
from cryoden.io import read_mrc, write_mrc
from cryoden.io.mrc_slabs import ArrayVolume, SlabWriter, VolumeReader, is_volume_path
from cryoden.io.tomograms_star import (
    DENOISED_COLUMN,
    is_tomograms_star,
    read_tomograms_star,
    write_tomograms_star,
)

STAR = """
# version 50001

data_global

loop_
_rlnTomoName #1
_rlnTomoTiltSeriesPixelSize #2
_rlnTomoReconstructedTomogram #3
_rlnTomoReconstructedTomogramHalf1 #4
_rlnTomoReconstructedTomogramHalf2 #5
TS_01 1.35 tomos/TS_01.mrc tomos/TS_01_half1.mrc tomos/TS_01_half2.mrc
TS_02 1.35 tomos/TS_02.mrc tomos/TS_02_half1.mrc tomos/TS_02_half2.mrc
"""


@pytest.fixture
def volume(rng):
    return rng.normal(size=(9, 11, 13)).astype(np.float32)


def test_sections_are_read_from_the_file_as_written(volume, tmp_path):
    write_mrc(tmp_path / "v.mrc", volume, voxel_size_angstrom=(2.0, 2.0, 3.0))
    reader = VolumeReader(tmp_path / "v.mrc")
    assert reader.shape == (9, 11, 13) and reader.voxel_size_angstrom == (2.0, 2.0, 3.0)
    np.testing.assert_array_equal(reader.sections(2, 5), volume[2:5])
    np.testing.assert_array_equal(reader.take_sections([4, 3, 4, 8]), volume[[4, 3, 4, 8]])
    np.testing.assert_array_equal(np.asarray(reader.memmap[1:3, 2:4, 5:9]), volume[1:3, 2:4, 5:9])
    sample = reader.voxel_sample(max_voxels=300)
    assert sample.size <= 2 * 300 and np.isin(sample, volume).all()
    np.testing.assert_array_equal(ArrayVolume(volume).voxel_sample(300), sample)


def test_int16_and_compressed_volumes_read_alike(volume, tmp_path):
    integers = np.round(volume * 100).astype(np.int16)
    with mrcfile.new(tmp_path / "i.mrc") as mrc:
        mrc.set_data(integers)
    np.testing.assert_array_equal(VolumeReader(tmp_path / "i.mrc").sections(0, 9), integers)
    write_mrc(tmp_path / "v.mrc", volume)
    (tmp_path / "v.mrc.gz").write_bytes(gzip.compress((tmp_path / "v.mrc").read_bytes()))
    np.testing.assert_array_equal(VolumeReader(tmp_path / "v.mrc.gz").sections(3, 7), volume[3:7])


def test_what_counts_as_a_volume(volume, tmp_path):
    write_mrc(tmp_path / "v.mrc", volume)  # cryoden writes space group 1
    write_mrc(tmp_path / "s.mrcs", volume)  # a stack by name
    write_mrc(tmp_path / "i.mrc", volume[0])
    with mrcfile.new(tmp_path / "frames.mrc") as mrc:  # space group 0, no z voxel size
        mrc.set_data(volume)
        mrc.set_image_stack()
        mrc.voxel_size = (1.0, 1.0, 0.0)
    assert is_volume_path(tmp_path / "v.mrc")
    assert not any(is_volume_path(tmp_path / n) for n in ("s.mrcs", "i.mrc", "frames.mrc"))
    with pytest.raises(InputFileError, match=r"s\.mrcs: is an image stack"):
        VolumeReader(tmp_path / "s.mrcs")


def test_nan_sections_are_named(volume, tmp_path):
    volume[6, 2, 2] = np.nan
    with pytest.warns(RuntimeWarning), mrcfile.new(tmp_path / "nan.mrc") as mrc:
        mrc.set_data(volume)
    with pytest.raises(InputFileError, match=r"nan\.mrc: .*NaN.*first in section 6"):
        VolumeReader(tmp_path / "nan.mrc").check_finite()


def test_slab_writer_writes_a_complete_file_or_nothing(volume, tmp_path):
    out = tmp_path / "out.mrc"
    with SlabWriter(out, volume.shape, voxel_size_angstrom=1.5, labels=["made here"]) as w:
        w.write(5, volume[5:])
        w.write(0, volume[:5])
    mrc = read_mrc(out)
    np.testing.assert_array_equal(mrc.data, volume)
    assert mrc.voxel_size_angstrom == (1.5, 1.5, 1.5) and mrc.labels[-1] == "made here"
    with mrcfile.open(out) as opened:  # the header's statistics are the data's
        assert opened.header.dmax == pytest.approx(volume.max())
        assert opened.header.dmean == pytest.approx(volume.mean(), abs=1e-6)
        assert opened.header.rms == pytest.approx(volume.std(), rel=1e-5)
        assert opened.is_volume()
    with (
        pytest.raises(ParameterError, match="never written"),
        SlabWriter(tmp_path / "half.mrc", volume.shape) as w,
    ):
        w.write(0, volume[:4])
    with (
        pytest.raises(ParameterError, match="NaN"),
        SlabWriter(tmp_path / "bad.mrc", volume.shape) as w,
    ):
        w.write(0, np.full((9, 11, 13), np.nan, np.float32))
    with (
        pytest.raises(ParameterError, match="overflow float16"),
        SlabWriter(tmp_path / "big.mrc", volume.shape, dtype="float16") as w,
    ):
        w.write(0, np.full((9, 11, 13), 1e6, np.float32))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mrc"]
    with pytest.raises(InputFileError, match="refusing to overwrite"):
        SlabWriter(out, volume.shape, protected=[out])


def _project(tmp_path: Path) -> Path:
    (tmp_path / "tomos").mkdir()
    for name in ("TS_01", "TS_02"):
        for suffix in ("", "_half1", "_half2"):
            (tmp_path / "tomos" / f"{name}{suffix}.mrc").write_bytes(b"")
    star = tmp_path / "tomograms.star"
    star.write_text(STAR)
    return star


def test_tomograms_star_gives_halves_or_tomograms(tmp_path):
    star = _project(tmp_path)
    assert is_tomograms_star(star)
    halves = read_tomograms_star(star, need="either", project_dir=tmp_path)
    first = halves.entries[0]
    assert first.name == "TS_01" and first.tomogram is None
    assert first.halves == (tmp_path / "tomos/TS_01_half1.mrc", tmp_path / "tomos/TS_01_half2.mrc")
    whole = read_tomograms_star(star, need="tomogram", project_dir=tmp_path)
    assert [e.tomogram for e in whole.entries] == [tmp_path / "tomos/TS_01.mrc",
                                                  tmp_path / "tomos/TS_02.mrc"]  # fmt: skip


def test_the_output_star_adds_the_denoised_column_and_keeps_the_rest(tmp_path):
    star = _project(tmp_path)
    tomograms = read_tomograms_star(star, project_dir=tmp_path)
    out = tmp_path / "out.star"
    write_tomograms_star(
        tomograms, [tmp_path / "den/TS_01.mrc", None], out, project_dir=tmp_path
    )  # fmt: skip
    text = out.read_text()
    assert f"_{DENOISED_COLUMN}" in text and "den/TS_01.mrc" in text
    assert "TS_02" not in text  # a failed row is left out
    again = read_tomograms_star(out, need="halves", project_dir=tmp_path)
    table = again.star.micrographs
    assert list(table.columns[:5]) == [
        "rlnTomoName", "rlnTomoTiltSeriesPixelSize", "rlnTomoReconstructedTomogram",
        "rlnTomoReconstructedTomogramHalf1", "rlnTomoReconstructedTomogramHalf2",
    ]  # fmt: skip
    assert float(table["rlnTomoTiltSeriesPixelSize"][0]) == 1.35


def test_tomograms_star_problems_are_one_line(tmp_path):
    star = _project(tmp_path)
    (tmp_path / "tomos/TS_02_half2.mrc").unlink()
    with pytest.raises(InputFileError, match=r"row 2: rlnTomoReconstructedTomogramHalf2 .* exist"):
        read_tomograms_star(star, need="halves", project_dir=tmp_path)
    plain = tmp_path / "plain.star"
    plain.write_text("data_global\n\nloop_\n_rlnTomoName #1\nTS_01\n")
    assert not is_tomograms_star(plain)
    with pytest.raises(InputFileError, match="neither rlnTomoReconstructedTomogram"):
        read_tomograms_star(plain)
    with pytest.raises(InputFileError, match="has no column rlnTomoReconstructedTomogramHalf1"):
        read_tomograms_star(plain, need="halves")
    for problem in (
        lambda: read_tomograms_star(star, need="halves", project_dir=tmp_path),
        lambda: read_tomograms_star(plain),
    ):
        with pytest.raises(InputFileError) as caught:
            problem()
        assert "\n" not in str(caught.value)
