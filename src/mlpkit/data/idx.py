"""Strict reader (and a small writer) for the IDX format that MNIST ships in.

Why strict: a dataset file that is cut short, padded, corrupt or not IDX at all should stop
the program with a message that names the file and the fault, instead of training quietly on
garbage. Why bounded: the header states the payload size, so a hostile or broken file (a
"gzip bomb" claiming 10^9 items, or a tiny gzip that inflates to gigabytes) must be refused
before memory is allocated for it. Gzip is recognised by its magic bytes (1f 8b), not by the
file name, because mirrors and users rename files.

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

__all__ = ["MAX_DEFLATE_RATIO", "payload_sha256", "read_idx", "read_idx_with_sha256", "write_idx"]

GZIP_MAGIC = b"\x1f\x8b"
UINT8 = 0x08
#: Deflate cannot expand input by more than ~1032:1, so a gzip file of s bytes can never
#: justify a payload larger than s * MAX_DEFLATE_RATIO bytes.
MAX_DEFLATE_RATIO = 1032
_CHUNK = 1 << 20
_T = TypeVar("_T")


class _Stream(Protocol):
    """What the reader needs of a raw file or a GzipFile."""

    def read(self, n: int = -1, /) -> bytes: ...

    def readinto(self, buffer: memoryview, /) -> int: ...


def read_idx(path: str | Path, *, expect_ndim: int | None = None) -> np.ndarray:
    """Read an IDX file (raw or gzip) into a uint8 array of the header's shape.

    Raises DataError naming the file for every malformed, truncated or corrupt input.
    """
    return _read(Path(path), expect_ndim, None)[0]


def read_idx_with_sha256(path: str | Path, *, expect_ndim: int | None = None) -> tuple[np.ndarray, str]:
    """Like `read_idx`, also returning the SHA-256 hex digest of the decompressed file.

    Hashing the bytes while they stream past makes checksum verification nearly free.
    """
    array, digest = _read(Path(path), expect_ndim, hashlib.sha256())
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


def _read(path: Path, expect_ndim: int | None, hasher: Any) -> tuple[np.ndarray, str | None]:
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
        raw_dims = _read_upto(path, stream, 4 * ndim, hasher)
        if len(raw_dims) < 4 * ndim:
            raise DataError(f"{path}: IDX header too short for {ndim} dimensions")
        shape = struct.unpack(f">{ndim}I", raw_dims)
        n = math.prod(shape)
        if gzip_limit is None:
            available = path.stat().st_size - 4 - 4 * ndim
            _check_length(path, shape, n, available)
        elif n > gzip_limit:
            raise DataError(f"{path}: header claims shape {shape} = {n} bytes, more than this "
                            f"gzip file can hold (max {gzip_limit}); refusing to allocate")
        # One byte past the payload: detects trailing data and, for gzip, drives the reader
        # to the end of the stream, where the CRC and length are checked.
        # Reserve: the whole payload when the file's size bounds it; for gzip, up to 8x the
        # compressed size (MNIST inflates ~5x), so a lying header cannot claim much memory.
        reserve = n + 1 if gzip_limit is None else min(n + 1, 8 * path.stat().st_size)
        payload = _read_upto(path, stream, n + 1, hasher, reserve)
        _check_length(path, shape, n, len(payload))
    return np.frombuffer(payload, dtype=np.uint8).reshape(shape), (hasher.hexdigest() if hasher else None)


def _check_length(path: Path, shape: tuple[int, ...], n: int, available: int) -> None:
    if available < n:
        raise DataError(f"{path}: payload too short: header shape {shape} needs {n} bytes, "
                        f"only {available} present (truncated file)")
    if available > n:
        raise DataError(f"{path}: trailing garbage after the {n}-byte payload of shape {shape}")
