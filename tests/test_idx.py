"""IDX reader: round trips, one test per failure mode, fuzzing, and bounded memory."""

from __future__ import annotations

import gzip
import hashlib
import io
import struct
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlpkit.core.errors import DataError, InputError
from mlpkit.data.idx import MAX_DEFLATE_RATIO, payload_sha256, read_idx, read_idx_with_sha256, write_idx


def idx_bytes(array: np.ndarray, *, type_byte: int = 0x08, magic: bytes = b"\0\0") -> bytes:
    head = magic + bytes([type_byte, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return head + array.astype(np.uint8).tobytes()


@pytest.fixture
def sample() -> np.ndarray:
    return np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4) * 7


def expect_error(path: Path, *words: str, **kwargs: object) -> DataError:
    with pytest.raises(DataError) as info:
        read_idx(path, **kwargs)
    message = str(info.value)
    assert path.name in message
    for word in words:
        assert word in message.lower(), message
    return info.value


@pytest.mark.parametrize("compress", [False, True])
def test_round_trip(tmp_path: Path, sample: np.ndarray, compress: bool) -> None:
    path = write_idx(tmp_path / "a.idx", sample, compress=compress)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") is compress
    out = read_idx(path, expect_ndim=3)
    assert out.dtype == np.uint8 and out.shape == (2, 3, 4)
    np.testing.assert_array_equal(out, sample)


def test_gzip_detected_by_magic_not_extension(tmp_path: Path, sample: np.ndarray) -> None:
    gz_named_raw = write_idx(tmp_path / "raw.gz", sample, compress=False)
    raw_named_gz = write_idx(tmp_path / "plain.idx", sample, compress=True)
    np.testing.assert_array_equal(read_idx(gz_named_raw), sample)
    np.testing.assert_array_equal(read_idx(raw_named_gz), sample)


def test_round_trip_empty_dimension_and_1d(tmp_path: Path) -> None:
    empty = np.zeros((0, 28, 28), dtype=np.uint8)
    assert read_idx(write_idx(tmp_path / "e", empty, compress=True)).shape == (0, 28, 28)
    labels = np.array([0, 9, 255], dtype=np.uint8)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "l", labels, compress=False)), labels)


def test_sha256_is_of_decompressed_bytes(tmp_path: Path, sample: np.ndarray) -> None:
    expected = hashlib.sha256(idx_bytes(sample)).hexdigest()
    for compress in (False, True):
        path = write_idx(tmp_path / f"s{compress}", sample, compress=compress)
        array, digest = read_idx_with_sha256(path)
        assert digest == expected == payload_sha256(path)
        np.testing.assert_array_equal(array, sample)


def test_write_rejects_non_uint8(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="uint8"):
        write_idx(tmp_path / "f", np.zeros(3, dtype=np.float32), compress=False)


def test_missing_file(tmp_path: Path) -> None:
    expect_error(tmp_path / "nope.idx", "not found")


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.idx").write_bytes(b"")
    expect_error(tmp_path / "empty.idx", "empty")


def test_header_too_short(tmp_path: Path, sample: np.ndarray) -> None:
    (tmp_path / "h2").write_bytes(b"\0\0")
    expect_error(tmp_path / "h2", "too short")
    (tmp_path / "dims").write_bytes(idx_bytes(sample)[:9])  # 3 dims need 12 bytes of sizes
    expect_error(tmp_path / "dims", "too short")


def test_wrong_magic(tmp_path: Path, sample: np.ndarray) -> None:
    (tmp_path / "m.idx").write_bytes(idx_bytes(sample, magic=b"\0\1"))
    expect_error(tmp_path / "m.idx", "magic")


def test_unsupported_type_byte(tmp_path: Path, sample: np.ndarray) -> None:
    (tmp_path / "t.idx").write_bytes(idx_bytes(sample, type_byte=0x0D))  # float32
    expect_error(tmp_path / "t.idx", "uint8", "0x0d")


def test_dimension_count(tmp_path: Path, sample: np.ndarray) -> None:
    path = write_idx(tmp_path / "d.idx", sample, compress=True)
    expect_error(path, "dimensions", "expected 1", expect_ndim=1)
    (tmp_path / "zero.idx").write_bytes(b"\0\0\x08\0")
    expect_error(tmp_path / "zero.idx", "0 dimensions")


@pytest.mark.parametrize("compress", [False, True])
def test_short_payload(tmp_path: Path, sample: np.ndarray, compress: bool) -> None:
    data = idx_bytes(sample)[:-1]
    (tmp_path / "s.idx").write_bytes(gzip.compress(data) if compress else data)
    expect_error(tmp_path / "s.idx", "short")


@pytest.mark.parametrize("compress", [False, True])
def test_trailing_garbage(tmp_path: Path, sample: np.ndarray, compress: bool) -> None:
    data = idx_bytes(sample) + b"\x07"
    (tmp_path / "g.idx").write_bytes(gzip.compress(data) if compress else data)
    expect_error(tmp_path / "g.idx", "trailing")


def test_truncated_gzip(tmp_path: Path, sample: np.ndarray) -> None:
    whole = gzip.compress(idx_bytes(sample))
    for cut in (len(whole) - 3, len(whole) // 2):
        (tmp_path / "cut.gz").write_bytes(whole[:cut])
        expect_error(tmp_path / "cut.gz", "truncated")


def test_flipped_byte_fails_crc(tmp_path: Path, sample: np.ndarray) -> None:
    data = bytearray(gzip.compress(idx_bytes(sample), compresslevel=0))  # stored block: bytes verbatim
    data[-8 - 5] ^= 0x40  # a payload byte, 5 bytes before the CRC trailer
    (tmp_path / "flip.gz").write_bytes(bytes(data))
    expect_error(tmp_path / "flip.gz", "crc")


def test_garbage_deflate_stream(tmp_path: Path) -> None:
    header = gzip.compress(b"")[:10]
    (tmp_path / "bad.gz").write_bytes(header + b"\xff" * 40)
    expect_error(tmp_path / "bad.gz", "corrupt")


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot read"):
        read_idx(tmp_path)


def _bomb(claimed: int, zeros: int) -> bytes:
    """A 1-D IDX header claiming `claimed` items followed by `zeros` zero bytes, gzipped."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as f:
        f.write(b"\0\0\x08\x01" + struct.pack(">I", claimed))
        for _ in range(zeros >> 20):
            f.write(bytes(1 << 20))
    return buf.getvalue()


def _measure(path: Path) -> tuple[DataError, int, float]:
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(DataError) as info:
            read_idx(path)
        return info.value, tracemalloc.get_traced_memory()[1], time.perf_counter() - start
    finally:
        tracemalloc.stop()


def test_gzip_bomb_claiming_huge_dims_is_refused_without_allocating(tmp_path: Path) -> None:
    path = tmp_path / "bomb.gz"
    path.write_bytes(_bomb(claimed=10**9, zeros=1 << 20))
    error, peak, seconds = _measure(path)
    assert "refusing" in str(error) and path.name in str(error)
    assert peak < 2 * 2**20 and seconds < 1.0


def test_gzip_that_expands_far_beyond_its_header_stops_early(tmp_path: Path) -> None:
    path = tmp_path / "expand.gz"
    path.write_bytes(_bomb(claimed=1000, zeros=32 << 20))  # ~32 KB of gzip, 32 MB inflated
    error, peak, seconds = _measure(path)
    assert "trailing" in str(error)
    assert peak < 4 * 2**20 and seconds < 1.0


def _check_outcome(path: Path, raw_size: int, original: np.ndarray | None = None, gz: bool = False) -> None:
    """Either DataError or an array the file's size can justify (never another exception)."""
    try:
        out = read_idx(path)
    except DataError as e:
        assert path.name in str(e)
        return
    assert out.dtype == np.uint8
    limit = raw_size * MAX_DEFLATE_RATIO if gz else raw_size - 4 - 4 * out.ndim
    assert out.size <= limit
    if original is not None and gz:
        np.testing.assert_array_equal(out, original)  # gzip's CRC catches every change
    elif original is not None and original.size:
        assert out.shape == original.shape and np.count_nonzero(out != original) <= 1
    elif original is not None:  # a flipped size byte next to a zero size keeps 0 items
        assert out.size == 0


_fuzz = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@_fuzz
@given(
    data=st.binary(max_size=200)
    | st.binary(max_size=60).map(lambda b: b"\0\0\x08" + b)
    | st.binary(max_size=60).map(lambda b: b"\x1f\x8b\x08\0" + b)
)
def test_arbitrary_bytes_give_array_or_data_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz"
    path.write_bytes(data)
    _check_outcome(path, len(data), gz=data[:2] == b"\x1f\x8b")


@_fuzz
@given(
    shape=st.lists(st.integers(0, 5), min_size=1, max_size=3),
    compress=st.booleans(),
    mutation=st.sampled_from(["flip", "truncate", "append"]),
    where=st.floats(0, 1),
    value=st.integers(1, 255),
)
def test_mutated_valid_files_give_array_or_data_error(
    tmp_path: Path, shape: list[int], compress: bool, mutation: str, where: float, value: int
) -> None:
    original = (np.arange(int(np.prod(shape))) % 251).astype(np.uint8).reshape(shape)
    data = bytearray(idx_bytes(original))
    if compress:
        data = bytearray(gzip.compress(bytes(data), mtime=0))
    i = min(int(where * len(data)), len(data) - 1)
    if mutation == "flip":
        data[i] ^= value
    elif mutation == "truncate":
        data = data[:i]
    else:
        data += bytes([value]) * (1 + i % 7)
    path = tmp_path / "mut"
    path.write_bytes(bytes(data))
    _check_outcome(path, len(data), original, gz=compress and data[:2] == b"\x1f\x8b")


# ----- issue 11: headers no array can have, corrupt deflate data, bounded reads -------------


def _header(shape: tuple[int, ...]) -> bytes:
    return bytes([0, 0, 0x08, len(shape)]) + struct.pack(f">{len(shape)}I", *shape)


@pytest.mark.parametrize("compress", [False, True])
def test_zero_dimension_beside_huge_ones_is_a_data_error(tmp_path: Path, compress: bool) -> None:
    data = _header((0, 2**32 - 1, 2**32 - 1))
    (tmp_path / "z.idx").write_bytes(gzip.compress(data) if compress else data)
    expect_error(tmp_path / "z.idx", "too large for any array")
    data = _header((0, 5))  # an empty array of an ordinary shape is fine
    (tmp_path / "e.idx").write_bytes(gzip.compress(data) if compress else data)
    assert read_idx(tmp_path / "e.idx").shape == (0, 5)


@pytest.mark.parametrize("ndim", [33, 65, 255])
def test_too_many_dimensions_is_a_data_error(tmp_path: Path, ndim: int) -> None:
    (tmp_path / "many.idx").write_bytes(_header((1,) * ndim) + b"\x07")
    expect_error(tmp_path / "many.idx", f"{ndim} dimensions", "at most 32")
    (tmp_path / "ok.idx").write_bytes(_header((1,) * 32) + b"\x07")
    assert read_idx(tmp_path / "ok.idx").shape == (1,) * 32


def _flip_that_inflates_longer(stream: bytes, plain: bytes) -> int:
    """A bit of the deflate data whose flip still inflates (without the CRC check) to the same
    IDX header and more than ``len(plain)`` bytes: the reader then sees data past the payload."""
    import zlib

    length, head = len(plain), plain[:12]

    for bit in range(10 * 8, (len(stream) - 8) * 8):
        flipped = bytearray(stream)
        flipped[bit // 8] ^= 1 << (bit % 8)
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        try:
            out = inflater.decompress(bytes(flipped[10:-8]), length + 64)
        except zlib.error:
            continue
        if len(out) > length and out[:12] == head:
            return bit
    raise AssertionError("no such bit")


def test_bit_flip_in_the_deflate_stream_is_corrupt_data_not_trailing_garbage(tmp_path: Path) -> None:
    original = (np.arange(3000) % 7).astype(np.uint8).reshape(30, 100)
    plain = idx_bytes(original)
    stream = gzip.compress(plain, compresslevel=9, mtime=0)
    bit = _flip_that_inflates_longer(stream, plain)
    flipped = bytearray(stream)
    flipped[bit // 8] ^= 1 << (bit % 8)
    (tmp_path / "flip.gz").write_bytes(bytes(flipped))
    error = expect_error(tmp_path / "flip.gz", "corrupt")
    assert "trailing" not in str(error)


def _consistent_bomb(shape: tuple[int, ...]) -> bytes:
    """A gzip whose header declares ``shape`` and whose payload really has that many (zero) bytes."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, compresslevel=9) as f:
        f.write(_header(shape))
        left = int(np.prod(shape))
        while left:
            f.write(bytes(min(left, 1 << 22)))
            left -= min(left, 1 << 22)
    return buf.getvalue()


def test_consistent_gzip_bomb_is_refused_by_the_expected_shape_or_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(_consistent_bomb((400_000, 28, 28)))  # ~300 KB declaring (and holding) 314 MB
    assert path.stat().st_size < 1_000_000
    for kwargs, words in [
        ({"expect_shape": (60_000, 28, 28)}, ["expected (60000, 28, 28)", "refusing"]),
        ({}, ["more than the limit", "refusing"]),
    ]:
        tracemalloc.start()
        try:
            error = expect_error(path, *words, **kwargs)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 2**20, (error, peak)
    small = write_idx(tmp_path / "small.gz", np.zeros((3, 4), np.uint8), compress=True)
    expect_error(small, "limit", max_bytes=11)
    assert read_idx(small, max_bytes=12, expect_shape=(3, 4)).shape == (3, 4)
