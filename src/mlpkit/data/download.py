"""Download a dataset file from the first mirror that serves a verified copy.

Why several mirrors: a data set's original host is often down or rate-limited. Why, where it is
known, the checksum is of the decompressed payload: gzip bytes differ between mirrors
(timestamps, levels), the data do not; where only the digests of the published ``.gz`` files
exist (Fashion-MNIST, KMNIST), the file's own bytes are checked instead. Why a temp file +
fsync + os.replace: a crash or a bad mirror must never leave a half-written or wrong file under
the final name, where the next run would trust it. Only urllib is used, so the library needs no
HTTP dependency.
"""

from __future__ import annotations

import hashlib
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

__all__ = ["FASHION_MNIST_MIRRORS", "KMNIST_MIRRORS", "MNIST_MIRRORS", "fetch_file"]

MNIST_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
#: Zalando's own host (plain HTTP only; the digest check is what makes it safe), then the copy
#: in the project's GitHub repository.
FASHION_MNIST_MIRRORS: tuple[str, ...] = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
)
#: The ROIS-DS Center for Open Data in the Humanities, the data set's publisher.
KMNIST_MIRRORS: tuple[str, ...] = (
    "https://codh.rois.ac.jp/kmnist/dataset/kmnist/",
    "http://codh.rois.ac.jp/kmnist/dataset/kmnist/",
)
#: Refuse downloads (and decompressed payloads) beyond this; MNIST's largest is 47 MB.
MAX_BYTES = 256 * 2**20
_CHUNK = 1 << 16


def fetch_file(
    name: str,
    dest_dir: str | Path,
    *,
    mirrors: Sequence[str] = MNIST_MIRRORS,
    sha256_of_payload: str | None = None,
    sha256_of_file: str | None = None,
    timeout: float = 60.0,
    max_bytes: int = MAX_BYTES,
) -> Path:
    """Download `name` into `dest_dir`, trying `mirrors` in order; return the final path.

    A mirror is skipped on any HTTP/network error, a short or oversized body, a corrupt
    gzip, or a digest other than the one given.

    Parameters
    ----------
    name : str
        File name, appended to each mirror URL and kept in `dest_dir`.
    dest_dir : str or Path
        Folder of the final file (created if missing).
    mirrors : sequence of str
        Base URLs, tried in order.
    sha256_of_payload : str or None
        SHA-256 of the decompressed content (gzip recognised by its magic bytes).
    sha256_of_file : str or None
        SHA-256 of the bytes as served (for digests published of the ``.gz`` files);
        exactly one of the two digests is given.
    timeout : float
        Seconds each connection may stay silent.
    max_bytes : int
        Refuse bodies (and decompressed payloads) larger than this.

    Returns
    -------
    Path
        ``dest_dir / name``, verified.

    Raises
    ------
    DataError
        Listing every mirror tried and why it failed.
    """
    if (sha256_of_payload is None) == (sha256_of_file is None):
        raise TypeError("fetch_file needs exactly one of sha256_of_payload and sha256_of_file")
    digest = (sha256_of_payload or sha256_of_file or "").lower()
    of_payload = sha256_of_payload is not None
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
            return _fetch_one(opener, url, dest_dir / name, digest, of_payload, timeout, max_bytes)
        except urllib.error.HTTPError as e:
            failures.append(f"{url}: HTTP {e.code} {e.reason}")
        except urllib.error.URLError as e:
            failures.append(f"{url}: {e.reason}")
        except (OSError, http.client.HTTPException, ValueError, DataError) as e:
            failures.append(f"{url}: {type(e).__name__}: {e}")
    tried = "\n".join(f"  - {f}" for f in failures) or "  (no mirrors given)"
    raise DataError(f"could not download {name} from any of {len(failures)} mirror(s):\n{tried}")


def _fetch_one(
    opener: urllib.request.OpenerDirector,
    url: str,
    final: Path,
    expected: str,
    of_payload: bool,
    timeout: float,
    max_bytes: int,
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
        if of_payload:
            actual, what = payload_sha256(tmp, max_bytes=max_bytes), "payload"
        else:
            with tmp.open("rb") as f:
                actual, what = hashlib.file_digest(f, "sha256").hexdigest(), "file"
        if actual != expected:
            raise DataError(f"checksum mismatch: {what} SHA-256 {actual}, expected {expected}")
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(final.parent)
    return final
