"""IDX reader and writer: round trips, hand-built files, and every way a file can be bad."""

import gzip
import os
import struct
import subprocess
import sys
import tempfile
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nnscratch.data import idx
from nnscratch.data.idx import read_idx, write_idx
from nnscratch.errors import DataError

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


def header(code: int, shape: tuple) -> bytes:
    return bytes([0, 0, code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape)


def write_bytes(path: Path, data: bytes, gz: bool = False) -> Path:
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return path


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_round_trip_every_type(tmp_path, dtype, compress):
    rng = np.random.default_rng(0)
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    if info is not None:
        array = rng.integers(info.min, info.max, size=(3, 4, 5), endpoint=True)
        array[0, 0, :2] = info.min, info.max  # the extremes must survive
        array = array.astype(dtype)
    else:
        array = rng.standard_normal((3, 4, 5)).astype(dtype)
        array[0, 0, :3] = np.inf, -0.0, np.finfo(dtype).tiny
    path = write_idx(tmp_path / ("a.idx.gz" if compress else "a.idx"), array)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == compress
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    assert out.shape == array.shape
    assert out.tobytes() == array.tobytes()


def test_hand_built_two_image_file(tmp_path):
    # Two 2x3 uint8 images: magic 00 00, type 08, 3 dims, sizes 2, 2, 3, then pixels.
    data = bytes.fromhex("00000803000000020000000200000003")
    data += bytes([0, 1, 2, 3, 4, 5, 250, 251, 252, 253, 254, 255])
    expected = np.array(
        [[[0, 1, 2], [3, 4, 5]], [[250, 251, 252], [253, 254, 255]]], dtype=np.uint8
    )
    for gz in (False, True):
        # gzip is recognised by content, not by the file name.
        out = read_idx(write_bytes(tmp_path / f"images{int(gz)}", data, gz))
        assert out.dtype == np.uint8
        np.testing.assert_array_equal(out, expected)


def test_multibyte_types_are_big_endian_on_disk(tmp_path):
    path = write_bytes(tmp_path / "f", header(0x0D, (2,)) + struct.pack(">ff", 1.5, -2))
    np.testing.assert_array_equal(read_idx(path), np.array([1.5, -2], np.float32))
    path = write_bytes(tmp_path / "i", header(0x0B, (2,)) + struct.pack(">hh", 258, -3))
    np.testing.assert_array_equal(read_idx(path), np.array([258, -3], np.int16))
    write_idx(tmp_path / "w", np.array([1, -2], dtype=np.int32))
    assert (tmp_path / "w").read_bytes()[8:] == struct.pack(">ii", 1, -2)


def test_writer_accepts_non_native_byte_order(tmp_path):
    array = np.arange(6, dtype=">f8").reshape(2, 3)
    out = read_idx(write_idx(tmp_path / "a.gz", array))
    assert out.dtype == np.float64 and out.dtype.isnative
    np.testing.assert_array_equal(out, array)


def test_empty_array_round_trips(tmp_path):
    out = read_idx(write_idx(tmp_path / "e.gz", np.zeros((0, 28, 28), np.uint8)))
    assert out.shape == (0, 28, 28)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"\x01\x00\x08\x01\x00\x00\x00\x01\x07", "magic"),
        (b"\x00\x00\x0a\x01\x00\x00\x00\x01\x07", "type code 0x0A"),
        (b"\x00\x00\x08\x00", "0 dimensions"),
        (bytes([0, 0, 8, 17]) + b"\x00\x00\x00\x01" * 17 + b"\x07", "17 dimensions"),
        (b"\x00\x00\x08\x02\x00\x00\x00\x01", "truncated IDX header"),
        (b"\x00\x00", "only 2 bytes"),
        (b"", "only 0 bytes"),
        (header(0x08, (2**31, 1)), "size 2147483648"),
        (header(0x08, (2, 3)) + bytes(5), "truncated"),
        (header(0x08, (2, 3)) + bytes(7), "trailing bytes"),
    ],
)
@pytest.mark.parametrize("gz", [False, True])
def test_bad_headers_and_lengths(tmp_path, data, message, gz):
    path = write_bytes(tmp_path / "bad.idx", data, gz)
    with pytest.raises(DataError, match=message) as err:
        read_idx(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("gz", [False, True])
def test_header_claiming_billions_fails_before_allocating(tmp_path, gz):
    path = write_bytes(tmp_path / "huge", header(0x08, (2_000_000_000, 28, 28)), gz)
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="max_bytes"):
            read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


def test_max_bytes_is_configurable(tmp_path):
    path = write_idx(tmp_path / "a", np.zeros((10, 10), np.float64))
    assert read_idx(path, max_bytes=800).shape == (10, 10)
    with pytest.raises(DataError, match="799-byte limit"):
        read_idx(path, max_bytes=799)


def test_gzip_header_beyond_what_the_file_could_inflate_to(tmp_path):
    # 400 MB promised (under the 2 GiB limit) by a file of a few dozen bytes: deflate
    # cannot expand that much, so it is refused before the 400 MB are allocated.
    path = write_bytes(tmp_path / "short.gz", header(0x08, (400_000, 1000)), gz=True)
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="could possibly hold"):
            read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


class CountingGzipFile(gzip.GzipFile):
    """Counts the decompressed bytes handed out (readinto goes through read)."""

    handed = 0

    def read(self, size=-1):
        data = super().read(size)
        CountingGzipFile.handed += len(data)
        return data


def test_gzip_inflating_past_its_header_is_refused_without_inflating_it(
    tmp_path, monkeypatch
):
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    data = header(0x08, (2, 28, 28)) + images.tobytes() + bytes(1_000_000)
    path = write_bytes(tmp_path / "bomb", data, gz=True)
    monkeypatch.setattr(idx.gzip, "GzipFile", CountingGzipFile)
    CountingGzipFile.handed = 0
    with pytest.raises(DataError, match="trailing bytes"):
        read_idx(path)
    # header + payload + the one byte that proves there is more, nothing else
    assert CountingGzipFile.handed == 16 + images.size + 1


def test_corrupt_gzip(tmp_path):
    good = gzip.compress(header(0x08, (100,)) + bytes(range(100)), mtime=0)
    bad_crc = good[:-8] + bytes([good[-8] ^ 0xFF]) + good[-7:]
    cut = good[: len(good) // 2]
    bad_deflate = good[:10] + b"\xff\xff\xff" + good[13:]
    for name, data in [("crc", bad_crc), ("cut", cut), ("deflate", bad_deflate)]:
        path = write_bytes(tmp_path / name, data)
        with pytest.raises(DataError, match="gzip") as err:
            read_idx(path)
        assert str(path) in str(err.value)
    junk = write_bytes(tmp_path / "junk", b"\x1f\x8bnot gzip at all")
    with pytest.raises(DataError, match="gzip"):
        read_idx(junk)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(DataError, match="no such file") as err:
        read_idx(tmp_path / "nope.gz")
    assert "nope.gz" in str(err.value)
    with pytest.raises(DataError, match="cannot open"):
        read_idx(tmp_path)


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_fifo_or_device_is_refused_before_it_is_opened(tmp_path, kind):
    # opening a FIFO waits for a writer forever; /dev/zero would be "truncated" only
    # by luck of its size. In a child bounded in time: a hang fails, not blocks.
    path = tmp_path / "train-images-idx3-ubyte"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    code = f"from nnscratch.data.idx import read_idx; read_idx({str(path)!r})"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30,
        check=False,
    )  # fmt: skip
    last = done.stderr.strip().splitlines()[-1]
    assert last == (
        f"nnscratch.errors.DataError: {path}: not a regular file (a device, FIFO or"
        " socket), expected an IDX file"
    )


def test_write_rejects_what_idx_cannot_hold(tmp_path):
    with pytest.raises(DataError, match="int64"):
        write_idx(tmp_path / "a", np.arange(3))
    with pytest.raises(DataError, match="dimensions"):
        write_idx(tmp_path / "b", np.uint8(3))
    with pytest.raises(DataError, match="dimensions"):
        write_idx(tmp_path / "c", np.zeros((1,) * 17, np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_write_is_atomic_deterministic_and_compression_follows_the_name(tmp_path):
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    a = write_idx(tmp_path / "a.gz", array).read_bytes()
    assert (
        a == write_idx(tmp_path / "a.gz", array).read_bytes()
    )  # overwrite, same bytes
    assert a[:2] == b"\x1f\x8b"
    assert write_idx(tmp_path / "b", array).read_bytes()[:4] == b"\x00\x00\x08\x02"
    assert (
        write_idx(tmp_path / "c", array, compress=True).read_bytes()[:2] == b"\x1f\x8b"
    )
    raw = write_idx(tmp_path / "d.gz", array, compress=False).read_bytes()
    assert raw[:4] == b"\x00\x00\x08\x02"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gz", "b", "c", "d.gz"]


# Property-based: any small array round-trips; any bytes parse or raise DataError.

array_strategy = st.sampled_from(DTYPES).flatmap(
    lambda dtype: hnp.arrays(
        dtype, hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5)
    )
)


@settings(max_examples=60, deadline=None)
@given(array=array_strategy, compress=st.booleans())
def test_property_round_trip(array, compress):
    with tempfile.TemporaryDirectory() as tmp:
        out = read_idx(write_idx(Path(tmp) / "a", array, compress=compress))
    assert out.dtype == array.dtype and out.shape == array.shape
    assert out.tobytes() == array.tobytes()  # bitwise, so NaN and -0.0 count too


@st.composite
def idx_like_bytes(draw):
    """Bytes that often get past the magic, so deeper checks are reached too."""
    code = draw(st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x00, 0xFF]))
    shape = draw(st.lists(st.integers(0, 6), min_size=0, max_size=4))
    if draw(st.booleans()):
        shape = [draw(st.integers(0, 2**32 - 1))] + shape
    data = header(code, tuple(shape)) + draw(st.binary(max_size=300))
    if draw(st.booleans()):
        data = gzip.compress(data, mtime=0)
        if draw(st.booleans()):  # flip one byte of the compressed stream
            i = draw(st.integers(0, len(data) - 1))
            data = (
                data[:i] + bytes([data[i] ^ draw(st.integers(1, 255))]) + data[i + 1 :]
            )
    if draw(st.booleans()):  # cut short, or with bytes after the end (gzip or not)
        data = data[: draw(st.integers(0, len(data)))] + draw(st.binary(max_size=8))
    return data


@settings(max_examples=200, deadline=None)
@given(data=st.one_of(st.binary(max_size=64), idx_like_bytes()))
def test_property_any_bytes_parse_or_raise_data_error(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = write_bytes(Path(tmp) / "x", data)
        try:
            out = read_idx(path)
        except DataError as err:  # one line, naming the file
            assert str(path) in str(err) and "\n" not in str(err)
            return
    assert isinstance(out, np.ndarray)
    assert out.dtype in idx.TYPE_CODES and out.ndim >= 1
