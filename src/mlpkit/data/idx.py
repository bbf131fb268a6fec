"""Strict reader (and a small writer) for the IDX format that MNIST ships in.

Why strict: a dataset file that is cut short, padded, corrupt or not IDX at all should stop
the program with a message that names the file and the fault, instead of training quietly on
garbage. Why bounded: the header states the payload size, so a hostile or broken file (a
"gzip bomb" claiming 10^9 items, or a tiny gzip that inflates to gigabytes) must be refused
before memory is allocated for it: a file of known shape (MNIST's, when verified) is refused
when its header declares another, and any payload is bounded by `MAX_PAYLOAD_BYTES` (the
``max_bytes`` argument) as well as by what the compressed file can hold. Gzip is recognised
by its magic bytes (1f 8b), not by the file name, because mirrors and users rename files.

Layout: bytes 0-1 are zero, byte 2 is the element type (only 0x08 = uint8 is supported),
byte 3 the number of dimensions d, then d big-endian uint32 sizes, then prod(sizes) bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import struct
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np

from mlpkit.core.errors import DataError, InputError

__all__ = [
    "MAX_DEFLATE_RATIO",
    "MAX_NDIM",
    "MAX_PAYLOAD_BYTES",
    "payload_sha256",
    "read_idx",
    "read_idx_with_sha256",
    "write_idx",
]

GZIP_MAGIC = b"\x1f\x8b"
UINT8 = 0x08
#: Deflate cannot expand input by more than ~1032:1, so a gzip file of s bytes can never
#: justify a payload larger than s * MAX_DEFLATE_RATIO bytes.
MAX_DEFLATE_RATIO = 1032
#: Largest payload read by default (`read_idx`'s ``max_bytes``): MNIST's largest file is 47 MB.
MAX_PAYLOAD_BYTES = 256 * 2**20
#: Most dimensions accepted (IDX allows 255; NumPy 1.x arrays have at most 32).
MAX_NDIM = 32
#: How far past a gzip payload the stream is read to reach its CRC, before calling it trailing data.
DRAIN_BYTES = 8 * 2**20
_CHUNK = 1 << 20
_T = TypeVar("_T")


class _Stream(Protocol):
    """What the reader needs of a raw file or a GzipFile."""

    def read(self, n: int = -1, /) -> bytes: ...

    def readinto(self, buffer: memoryview, /) -> int: ...


def read_idx(
    path: str | Path,
    *,
    expect_ndim: int | None = None,
    expect_shape: tuple[int, ...] | None = None,
    max_bytes: int = MAX_PAYLOAD_BYTES,
) -> np.ndarray:
    """Read an IDX file (raw or gzip) into a uint8 array of the header's shape.

    Everything the header declares is checked before the payload is read, so a lying header
    costs no memory.

    Parameters
    ----------
    path : str or Path
        The file; gzip is recognised by its magic bytes, not its name.
    expect_ndim : int or None
        Refuse a header with another number of dimensions.
    expect_shape : tuple of int or None
        Refuse a header that declares another shape (for files whose shape is known, such as
        MNIST's: a substituted or hostile file is refused before anything is allocated).
    max_bytes : int
        Refuse a payload larger than this (default `MAX_PAYLOAD_BYTES`).

    Returns
    -------
    np.ndarray
        uint8, of the header's shape.

    Raises
    ------
    DataError
        Naming the file, for every malformed, truncated, oversized or corrupt input.
    """
    return _read(Path(path), hasher=None, expect_ndim=expect_ndim, expect_shape=expect_shape, max_bytes=max_bytes)[0]


def read_idx_with_sha256(
    path: str | Path,
    *,
    expect_ndim: int | None = None,
    expect_shape: tuple[int, ...] | None = None,
    max_bytes: int = MAX_PAYLOAD_BYTES,
) -> tuple[np.ndarray, str]:
    """Like `read_idx`, also returning the SHA-256 hex digest of the decompressed file.

    Hashing the bytes while they stream past makes checksum verification nearly free.
    """
    array, digest = _read(
        Path(path), hasher=hashlib.sha256(), expect_ndim=expect_ndim, expect_shape=expect_shape, max_bytes=max_bytes
    )
    assert digest is not None
    return array, digest


def payload_sha256(path: str | Path, *, max_bytes: int | None = None) -> str:
    """SHA-256 of a file's decompressed payload (gzip by magic bytes, otherwise raw).

    Streams in chunks, so memory stays constant; refuses payloads over `max_bytes`.
    """
    path = Path(path)
    hasher = hashlib.sha256()
    total = 0
    with _open(path) as (stream, _):
        while chunk := _guard(path, stream.read, _CHUNK):
            total += len(chunk)
            if max_bytes is not None and total > max_bytes:
                raise DataError(f"{path}: decompressed payload is larger than {max_bytes} bytes")
            hasher.update(chunk)
    return hasher.hexdigest()


def write_idx(path: str | Path, array: np.ndarray, *, compress: bool, compresslevel: int = 9) -> Path:
    """Write a uint8 array as IDX, gzip-compressed (deterministic, mtime 0) if `compress`."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise InputError(f"write_idx supports only uint8 arrays, got {array.dtype}")
    if not 1 <= array.ndim <= 255 or any(n >= 2**32 for n in array.shape):
        raise InputError(f"write_idx cannot encode shape {array.shape}")
    data = bytes([0, 0, UINT8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data += np.ascontiguousarray(array).tobytes()
    path = Path(path)
    if compress:
        data = gzip.compress(data, compresslevel=compresslevel, mtime=0)
    path.write_bytes(data)
    return path


@contextmanager
def _open(path: Path) -> Iterator[tuple[_Stream, int | None]]:
    """Yield (decompressed stream, payload byte limit or None for raw files)."""
    try:
        raw = path.open("rb")
        size = path.stat().st_size
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read file ({e})") from None
    with raw:
        is_gzip = _guard(path, raw.read, 2) == GZIP_MAGIC
        raw.seek(0)
        if is_gzip:
            yield gzip.GzipFile(fileobj=raw, mode="rb"), size * MAX_DEFLATE_RATIO
        else:
            yield raw, None


def _guard(path: Path, read: Callable[[int], _T], n: int) -> _T:
    """Call read(n), turning gzip/zlib/IO failures into DataError naming the file."""
    try:
        return read(n)
    except EOFError:
        raise DataError(f"{path}: truncated gzip (stream ends before its end marker)") from None
    except gzip.BadGzipFile as e:
        what = "CRC check failed" if "CRC" in str(e) else "bad gzip data"
        raise DataError(f"{path}: corrupt gzip: {what} ({e})") from None
    except zlib.error as e:
        raise DataError(f"{path}: corrupt gzip stream ({e})") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read file ({e})") from None


def _read_upto(path: Path, stream: _Stream, n: int, hasher: Any, reserve: int = 0) -> bytearray:
    """Read at most n bytes in bounded chunks.

    The first ``reserve`` bytes (at most n) are allocated up front and read into in place;
    beyond them memory grows only as real data arrives. Reserving what the file can
    plausibly hold avoids the regrowth copies that briefly need twice the payload's memory.
    """
    buf = bytearray(min(n, reserve))
    got = 0
    while got < n:
        want = min(_CHUNK, n - got)
        if got + want <= len(buf):
            with memoryview(buf) as view, view[got : got + want] as part:
                k = _guard(path, lambda _: stream.readinto(part), want)
        else:
            del buf[got:]
            chunk = _guard(path, stream.read, want)
            buf += chunk
            k = len(chunk)
        if not k:
            break
        got += k
    del buf[got:]
    if hasher is not None:
        hasher.update(buf)
    return buf


def _read(
    path: Path, *, hasher: Any, expect_ndim: int | None, expect_shape: tuple[int, ...] | None, max_bytes: int
) -> tuple[np.ndarray, str | None]:
    with _open(path) as (stream, gzip_limit):
        head = _read_upto(path, stream, 4, hasher)
        if len(head) < 4:
            what = "file is empty" if not head else f"got {len(head)} of 4 bytes"
            raise DataError(f"{path}: IDX header too short ({what})")
        if head[:2] != b"\0\0":
            raise DataError(f"{path}: wrong magic {head[:2].hex(' ')}, expected 00 00 (not an IDX file)")
        if head[2] != UINT8:
            raise DataError(f"{path}: unsupported data type 0x{head[2]:02x}; only 0x08 (uint8) is supported")
        ndim = head[3]
        if ndim == 0 or (expect_ndim is not None and ndim != expect_ndim):
            want = "at least 1" if expect_ndim is None else str(expect_ndim)
            raise DataError(f"{path}: IDX header has {ndim} dimensions, expected {want}")
        if ndim > MAX_NDIM:
            raise DataError(f"{path}: IDX header has {ndim} dimensions; at most {MAX_NDIM} are supported")
        raw_dims = _read_upto(path, stream, 4 * ndim, hasher)
        if len(raw_dims) < 4 * ndim:
            raise DataError(f"{path}: IDX header too short for {ndim} dimensions")
        shape = struct.unpack(f">{ndim}I", raw_dims)
        n = _check_shape(path, shape, expect_shape, max_bytes)
        if gzip_limit is None:
            available = path.stat().st_size - 4 - 4 * ndim
            _check_length(path, shape, n, available)
        elif n > gzip_limit:
            raise DataError(
                f"{path}: header claims shape {shape} = {n} bytes, more than this "
                f"gzip file can hold (max {gzip_limit}); refusing to allocate"
            )
        # One byte past the payload: detects trailing data and, for gzip, drives the reader
        # to the end of the stream, where the CRC and length are checked.
        # Reserve: the whole payload when the file's size bounds it; for gzip, up to 8x the
        # compressed size (MNIST inflates ~5x), so a lying header cannot claim much memory.
        reserve = n + 1 if gzip_limit is None else min(n + 1, 8 * path.stat().st_size)
        payload = _read_upto(path, stream, n + 1, hasher, reserve)
        if len(payload) > n and gzip_limit is not None:
            _drain(path, stream)  # corrupt deflate data often inflates to more: let the CRC tell
        _check_length(path, shape, n, len(payload))
    return np.frombuffer(payload, dtype=np.uint8).reshape(shape), (hasher.hexdigest() if hasher else None)


def _check_shape(path: Path, shape: tuple[int, ...], expect_shape: tuple[int, ...] | None, max_bytes: int) -> int:
    """The payload size of ``shape``, refused (before anything is allocated) if it is not the
    expected shape, exceeds ``max_bytes``, or cannot be an array's shape at all."""
    if expect_shape is not None and tuple(shape) != tuple(expect_shape):
        raise DataError(
            f"{path}: IDX header declares shape {shape}, expected {tuple(expect_shape)}"
            " (not the original file); refusing to read it"
        )
    n = math.prod(shape)
    if n > max_bytes:
        raise DataError(
            f"{path}: IDX header declares shape {shape} = {n} bytes, more than the limit of"
            f" {max_bytes} bytes; refusing to allocate"
        )
    if math.prod(max(d, 1) for d in shape) > np.iinfo(np.intp).max:
        raise DataError(f"{path}: IDX header declares shape {shape}, too large for any array (even empty)")
    return n


def _drain(path: Path, stream: _Stream) -> None:
    """Read on (discarding) up to `DRAIN_BYTES` past the payload, so that a gzip stream whose
    deflate data are corrupt fails its CRC check here instead of passing for trailing data."""
    drained = 0
    while drained < DRAIN_BYTES and (chunk := _guard(path, stream.read, 1 << 16)):
        drained += len(chunk)


def _check_length(path: Path, shape: tuple[int, ...], n: int, available: int) -> None:
    if available < n:
        raise DataError(
            f"{path}: payload too short: header shape {shape} needs {n} bytes, "
            f"only {available} present (truncated file)"
        )
    if available > n:
        raise DataError(f"{path}: trailing garbage after the {n}-byte payload of shape {shape}")
