"""MRC reading and writing: round trips, modes, permissive headers, bad inputs, protection."""

from __future__ import annotations

import logging
import os
import warnings

import mrcfile
import numpy as np
import pytest

import cryoden.io.mrc as mrc_module
from cryoden.errors import InputFileError, OutputFileError, ParameterError
from cryoden.io import MrcData, is_stack_path, read_mrc, write_mrc


@pytest.fixture
def image(rng) -> np.ndarray:
    return rng.normal(size=(24, 17)).astype(np.float32)


def _write_raw(path, data: np.ndarray, *, voxel_size=None) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mrcfile warns about NaN data, which we write on purpose
        _write_raw_file(path, data, voxel_size)


def _write_raw_file(path, data: np.ndarray, voxel_size) -> None:
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(data)
        if voxel_size is not None:
            mrc.voxel_size = voxel_size


# ------------------------------------------------------------------------------ round trips


def test_round_trip_is_bitwise_and_keeps_geometry(tmp_path, image):
    path = tmp_path / "image.mrc"
    write_mrc(path, image, voxel_size_angstrom=(1.1, 1.2, 1.3), origin_angstrom=(4.5, -2.0, 7.25))
    out = read_mrc(path)
    assert isinstance(out, MrcData)
    assert out.data.dtype == np.float32 and out.data.shape == image.shape
    assert out.data.tobytes() == image.tobytes()
    assert out.voxel_size_angstrom == pytest.approx((1.1, 1.2, 1.3), rel=1e-6)
    assert out.origin_angstrom == pytest.approx((4.5, -2.0, 7.25))
    assert out.pixel_size_angstrom == pytest.approx(1.1, rel=1e-6)
    assert out.path == str(path)


def test_scalar_voxel_size_and_unknown_voxel_size(tmp_path, image):
    write_mrc(tmp_path / "a.mrc", image, voxel_size_angstrom=2.806)
    assert read_mrc(tmp_path / "a.mrc").voxel_size_angstrom == pytest.approx((2.806,) * 3)
    write_mrc(tmp_path / "b.mrc", image)
    unknown = read_mrc(tmp_path / "b.mrc")
    assert unknown.voxel_size_angstrom == (0.0, 0.0, 0.0)
    assert unknown.pixel_size_angstrom is None


def test_float64_input_is_written_as_float32(tmp_path, image):
    write_mrc(tmp_path / "a.mrc", image.astype(np.float64))
    with mrcfile.open(tmp_path / "a.mrc") as mrc:
        assert mrc.header.mode == 2
    np.testing.assert_array_equal(read_mrc(tmp_path / "a.mrc").data, image)


def test_stack_and_volume_shapes(tmp_path, rng):
    data = rng.normal(size=(3, 10, 12)).astype(np.float32)
    write_mrc(tmp_path / "stack.mrcs", data, voxel_size_angstrom=1.5)
    write_mrc(tmp_path / "volume.mrc", data, voxel_size_angstrom=(1.5, 1.5, 2.0))
    stack = read_mrc(tmp_path / "stack.mrcs")
    volume = read_mrc(tmp_path / "volume.mrc")
    assert stack.data.shape == volume.data.shape == (3, 10, 12)
    np.testing.assert_array_equal(stack.data, data)
    np.testing.assert_array_equal(volume.data, data)
    assert stack.voxel_size_angstrom == pytest.approx((1.5, 1.5, 1.5))
    assert volume.voxel_size_angstrom == pytest.approx((1.5, 1.5, 2.0))
    with mrcfile.open(tmp_path / "stack.mrcs") as mrc:
        assert mrc.is_image_stack()
    with mrcfile.open(tmp_path / "volume.mrc") as mrc:
        assert mrc.is_volume()


def test_single_image_mrcs_reads_as_a_stack_of_one(tmp_path, image):
    write_mrc(tmp_path / "one.mrcs", image)
    assert read_mrc(tmp_path / "one.mrcs").data.shape == (1, *image.shape)


def test_is_stack_path():
    assert is_stack_path("a/b.mrcs") and is_stack_path("B.MRCS")
    assert not is_stack_path("a.mrc") and not is_stack_path("a.map")


@pytest.mark.parametrize(
    ("dtype", "mode"),
    [(np.int8, 0), (np.int16, 1), (np.float32, 2), (np.uint16, 6), (np.float16, 12)],
)
def test_modes_read_as_float32(tmp_path, dtype, mode):
    values = np.arange(-6, 6).reshape(3, 4)
    if dtype == np.uint16:
        values = values + 6
    path = tmp_path / f"mode{mode}.mrc"
    _write_raw(path, values.astype(dtype))
    with mrcfile.open(path) as mrc:
        assert mrc.header.mode == mode
    out = read_mrc(path).data
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, values.astype(np.float32))


def test_complex_mode_is_rejected(tmp_path):
    path = tmp_path / "complex.mrc"
    _write_raw(path, np.ones((4, 4), dtype=np.complex64))
    with pytest.raises(InputFileError, match="complex.mrc.*mode 4"):
        read_mrc(path)


def test_unknown_mode_with_map_stamp_is_unsupported(tmp_path, image):
    path = tmp_path / "mode5.mrc"
    _write_raw(path, image)
    raw = bytearray(path.read_bytes())
    raw[12:16] = (5).to_bytes(4, "little")
    path.write_bytes(bytes(raw))
    with pytest.raises(InputFileError, match="mode5.mrc: unsupported MRC mode 5"):
        read_mrc(path)


def test_compressed_file_is_read(tmp_path, image):
    path = tmp_path / "image.mrc.gz"
    with mrcfile.new(path, compression="gzip") as mrc:
        mrc.set_data(image)
    np.testing.assert_array_equal(read_mrc(path).data, image)


# ------------------------------------------------------------------------------ permissive


def test_header_without_map_stamp_and_zero_cell_is_read_with_a_warning(tmp_path, image, caplog):
    path = tmp_path / "legacy.mrc"
    _write_raw(path, image, voxel_size=1.5)
    raw = bytearray(path.read_bytes())
    raw[40:52] = bytes(12)  # cell a, b, c = 0
    raw[208:212] = bytes(4)  # no "MAP " stamp
    path.write_bytes(bytes(raw))
    with caplog.at_level(logging.WARNING, logger="cryoden.io.mrc"):
        out = read_mrc(path)
    np.testing.assert_array_equal(out.data, image)
    assert out.voxel_size_angstrom == (0.0, 0.0, 0.0)
    assert out.pixel_size_angstrom is None
    logged = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert logged and "permissive" in logged[0].getMessage()
    assert "legacy.mrc" in logged[0].getMessage()


def test_real_legacy_leginon_image(shared_data, caplog):
    path = shared_data / "em_images" / "leginon_test1_lowmag.mrc"
    if not path.exists():
        pytest.skip(f"{path} not found")
    with caplog.at_level(logging.WARNING, logger="cryoden.io.mrc"):
        out = read_mrc(path)
    assert out.data.shape == (512, 512) and out.data.dtype == np.float32
    assert np.isfinite(out.data).all() and out.data.std() > 0
    assert out.pixel_size_angstrom is None  # zero cell: unknown
    assert any("permissive" in r.getMessage() for r in caplog.records)


def test_real_relion_stack_without_map_stamp(shared_data, caplog):
    path = shared_data / "particles" / "relion31.mrcs"
    if not path.exists():
        pytest.skip(f"{path} not found")
    with caplog.at_level(logging.WARNING, logger="cryoden.io.mrc"):
        out = read_mrc(path)
    assert out.data.shape == (5, 256, 256) and out.data.dtype == np.float32
    assert abs(float(out.data.mean())) < 0.1 and 0.9 < float(out.data.std()) < 1.1
    assert out.voxel_size_angstrom == (1.0, 1.0, 1.0)
    assert any("permissive" in r.getMessage() for r in caplog.records)


# ------------------------------------------------------------------------------ bad inputs


def _truncated_data(path, image) -> None:
    _write_raw(path, image)
    raw = path.read_bytes()
    path.write_bytes(raw[:-100])


def _truncated_header(path, image) -> None:
    _write_raw(path, image)
    path.write_bytes(path.read_bytes()[:600])


def _text(path, image) -> None:
    path.write_text("this is a text file, not an MRC image\n" * 40)


def _short_text(path, image) -> None:
    path.write_text("not mrc\n")


def _empty_file(path, image) -> None:
    path.write_bytes(b"")


def _empty_image(path, image) -> None:
    _write_raw(path, np.zeros((0, 5), dtype=np.float32))


def _all_nan(path, image) -> None:
    _write_raw(path, np.full_like(image, np.nan))


def _one_inf(path, image) -> None:
    bad = image.copy()
    bad[3, 4] = np.inf
    _write_raw(path, bad)


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (_truncated_data, "truncated"),
        (_truncated_header, "truncated"),
        (_text, "not an MRC file"),
        (_short_text, "not an MRC file"),
        (_empty_file, "empty"),
        (_empty_image, "empty"),
        (_all_nan, "contains NaN or infinite values"),
        (_one_inf, "contains NaN or infinite values"),
    ],
)
def test_bad_input_raises_input_file_error_naming_the_file(tmp_path, image, make, problem):
    path = tmp_path / f"bad_{make.__name__.strip('_')}.mrc"
    make(path, image)
    with pytest.raises(InputFileError) as info:
        read_mrc(path)
    message = str(info.value)
    assert path.name in message and problem in message
    assert "\n" not in message
    assert info.value.path == str(path)


def test_missing_file(tmp_path):
    with pytest.raises(InputFileError, match=r"nothere\.mrc: file not found"):
        read_mrc(tmp_path / "nothere.mrc")


def test_directory_is_not_an_mrc_file(tmp_path):
    with pytest.raises(InputFileError, match="directory"):
        read_mrc(tmp_path)


# ------------------------------------------------------------------------------ writing safely


def test_write_refuses_protected_input_and_its_aliases(tmp_path, image):
    source = tmp_path / "input.mrc"
    write_mrc(source, image)
    before = source.read_bytes()
    link = tmp_path / "alias.mrc"
    link.symlink_to(source)
    for target in (source, link, tmp_path / "." / "input.mrc"):
        with pytest.raises(InputFileError, match="refusing to overwrite"):
            write_mrc(target, image * 2, protected=[source])
    with pytest.raises(InputFileError):
        write_mrc(source, image * 2, protected=[os.fspath(link)])
    assert source.read_bytes() == before


def test_failed_write_leaves_no_partial_file(tmp_path, image, monkeypatch):
    target = tmp_path / "out.mrc"
    write_mrc(target, image)
    before = target.read_bytes()

    def half_write(tmp, data, voxel, origin, *, stack, labels=()):
        tmp.write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(mrc_module, "_write_mrc_file", half_write)
    with pytest.raises(OutputFileError, match="out.mrc: cannot write: disk full"):
        write_mrc(target, image * 3)
    with pytest.raises(OutputFileError):
        write_mrc(tmp_path / "new.mrc", image)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mrc"]
    assert target.read_bytes() == before


def test_unconvertible_data_leaves_no_file(tmp_path):
    with pytest.raises(ValueError):
        write_mrc(tmp_path / "out.mrc", np.array([["a", "b"], ["c", "d"]]))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("shape", [(5,), (2, 3, 4, 5)])
def test_write_rejects_wrong_dimensionality(tmp_path, shape):
    with pytest.raises(ParameterError, match=str(shape).replace("(", r"\(").replace(")", r"\)")):
        write_mrc(tmp_path / "out.mrc", np.zeros(shape, dtype=np.float32))


def test_write_rejects_non_finite_data(tmp_path, image):
    image[0, 0] = np.nan
    with pytest.raises(ParameterError, match="NaN"):
        write_mrc(tmp_path / "out.mrc", image)
    assert list(tmp_path.iterdir()) == []


def test_write_rejects_bad_voxel_size(tmp_path, image):
    with pytest.raises(ParameterError, match="voxel_size_angstrom"):
        write_mrc(tmp_path / "out.mrc", image, voxel_size_angstrom=-1.0)
    with pytest.raises(ParameterError, match="voxel_size_angstrom"):
        write_mrc(tmp_path / "out.mrc", image, voxel_size_angstrom=(1.0, 2.0))


def test_write_into_missing_folder(tmp_path, image):
    with pytest.raises(OutputFileError, match="does not exist"):
        write_mrc(tmp_path / "no" / "out.mrc", image)


def test_labels_round_trip_and_keep_the_last_ten(tmp_path):
    path = tmp_path / "labelled.mrc"
    labels = [f"step {i}" for i in range(12)]
    write_mrc(path, np.ones((8, 8), np.float32), labels=labels)
    assert read_mrc(path).labels == tuple(labels[-10:])


def test_pickle_file_is_refused_without_unpickling(tmp_path, monkeypatch):
    import pickle

    sentinel = tmp_path / "UNPICKLED"

    class Trap:
        def __reduce__(self):
            return (os.mkdir, (os.fspath(sentinel),))

    path = tmp_path / "model.mrc"
    path.write_bytes(pickle.dumps([Trap(), np.zeros(400, np.float32)], protocol=4))

    def refuse(*args, **kwargs):
        raise AssertionError("unpickled")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    with pytest.raises(InputFileError, match="model.mrc: not an MRC file"):
        read_mrc(path)
    assert not sentinel.exists()


def test_memory_budget_refuses_before_reading(tmp_path, image, monkeypatch):
    import gzip

    path = tmp_path / "image.mrc"
    write_mrc(path, image)
    need = image.nbytes * 2  # raw float32 data plus the float32 copy
    assert read_mrc(path, max_bytes=need).data.shape == image.shape
    packed = tmp_path / "image.mrc.gz"
    packed.write_bytes(gzip.compress(path.read_bytes()))

    def no_reading(*args, **kwargs):
        raise AssertionError("data read despite the budget")

    monkeypatch.setattr(mrc_module, "_load", no_reading)
    for target in (path, packed):
        for reader in (read_mrc, mrc_module.probe_mrc):
            with pytest.raises(InputFileError, match=r"more than the budget max_bytes=100$"):
                reader(target, max_bytes=100)
    for bad in (0, -1, 1.5, True, "big"):
        with pytest.raises(ParameterError, match="max_bytes"):
            read_mrc(path, max_bytes=bad)


def test_default_budget_is_a_share_of_available_memory():
    from cryoden.io import mrc_header

    available = mrc_header.available_memory_bytes()
    budget = mrc_header.default_max_bytes()
    if available is None:
        assert budget is None
    else:
        assert 0 < budget <= available


def test_compressed_stream_is_checked_and_bounded(tmp_path, image):
    import bz2
    import gzip

    path = tmp_path / "image.mrc"
    write_mrc(path, image, voxel_size_angstrom=1.25)
    raw = path.read_bytes()
    for suffix, compress in ((".gz", gzip.compress), (".bz2", bz2.compress)):
        packed = tmp_path / f"image.mrc{suffix}"
        packed.write_bytes(compress(raw))
        out = read_mrc(packed)
        assert np.array_equal(out.data, image) and out.voxel_size_angstrom[0] == 1.25
        cut = tmp_path / f"cut.mrc{suffix}"
        cut.write_bytes(compress(raw)[:-40])
        with pytest.raises(InputFileError, match=r"cut\.mrc.*truncated gzip/bzip2 stream"):
            read_mrc(cut)
        short = tmp_path / f"short.mrc{suffix}"
        short.write_bytes(compress(raw[:-100]))
        with pytest.raises(InputFileError, match="truncated: the decompressed stream holds"):
            read_mrc(short)
