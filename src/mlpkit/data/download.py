"""Download a dataset file from the first mirror that serves a verified copy.

Why several mirrors: the original MNIST host is often down or rate-limited. Why the checksum
is of the decompressed payload: gzip bytes differ between mirrors (timestamps, levels), the
data does not. Why a temp file + fsync + os.replace: a crash or a bad mirror must never leave
a half-written or wrong file under the final name, where the next run would trust it.
Only urllib is used, so the library needs no HTTP dependency.
"""

from __future__ import annotations

import http.client
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from mlpkit.core.errors import DataError
from mlpkit.core.fileio import fsync_dir
from mlpkit.data.idx import payload_sha256

__all__ = ["MNIST_MIRRORS", "fetch_file"]

MNIST_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
#: Refuse downloads (and decompressed payloads) beyond this; MNIST's largest is 47 MB.
MAX_BYTES = 256 * 2**20
_CHUNK = 1 << 16


def fetch_file(
    name: str,
    dest_dir: str | Path,
    *,
    mirrors: Sequence[str] = MNIST_MIRRORS,
    sha256_of_payload: str,
    timeout: float = 60.0,
    max_bytes: int = MAX_BYTES,
) -> Path:
    """Download `name` into `dest_dir`, trying `mirrors` in order; return the final path.

    A mirror is skipped on any HTTP/network error, a short or oversized body, a corrupt
    gzip, or a payload whose SHA-256 differs from `sha256_of_payload`. Raises DataError
    listing every mirror tried and why it failed.
    """
    if "/" in name or "\\" in name or name in ("", ".", ".."):
        raise DataError(f"invalid file name to download: {name!r}")
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    opener = urllib.request.build_opener()  # built per call so proxy settings are current
    failures = []
    for mirror in mirrors:
        url = mirror if mirror.endswith("/") else mirror + "/"
        url += name
        try:
            return _fetch_one(opener, url, dest_dir / name, sha256_of_payload.lower(), timeout, max_bytes)
        except urllib.error.HTTPError as e:
            failures.append(f"{url}: HTTP {e.code} {e.reason}")
        except urllib.error.URLError as e:
            failures.append(f"{url}: {e.reason}")
        except (OSError, http.client.HTTPException, ValueError, DataError) as e:
            failures.append(f"{url}: {type(e).__name__}: {e}")
    tried = "\n".join(f"  - {f}" for f in failures) or "  (no mirrors given)"
    raise DataError(f"could not download {name} from any of {len(failures)} mirror(s):\n{tried}")


def _fetch_one(
    opener: urllib.request.OpenerDirector, url: str, final: Path, expected: str, timeout: float, max_bytes: int
) -> Path:
    """Stream url into a temp file next to `final`, verify, then atomically rename."""
    fd, tmp_name = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, opener.open(url, timeout=timeout) as response:
            declared = response.headers.get("Content-Length")
            received = 0
            while chunk := response.read(_CHUNK):
                received += len(chunk)
                if received > max_bytes:
                    raise DataError(f"response larger than {max_bytes} bytes")
                out.write(chunk)
            if declared is not None and declared.isdigit() and int(declared) != received:
                raise DataError(f"truncated response: got {received} of {declared} bytes")
            out.flush()
            os.fsync(out.fileno())
        actual = payload_sha256(tmp, max_bytes=max_bytes)
        if actual != expected:
            raise DataError(f"checksum mismatch: payload SHA-256 {actual}, expected {expected}")
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(final.parent)
    return final
