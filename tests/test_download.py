"""fetch_file against a local HTTP server (127.0.0.1, random port): never the network."""

from __future__ import annotations

import gzip
import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from mlpkit.core.errors import DataError
from mlpkit.data.download import FASHION_MNIST_MIRRORS, KMNIST_MIRRORS, MNIST_MIRRORS, fetch_file
from mlpkit.data.idx import read_idx, write_idx

NAME = "tiny-idx1-ubyte.gz"
PAYLOAD = np.arange(100, dtype=np.uint8)


class Handler(SimpleHTTPRequestHandler):
    """Static files, plus /slow/ (answers late) and /liar/ (Content-Length too big)."""

    def do_GET(self) -> None:
        self.server.requests.append(self.path)  # type: ignore[attr-defined]
        if self.path.startswith("/slow/"):
            time.sleep(2)
        if self.path.startswith("/liar/"):
            body = (Path(self.directory) / "good" / NAME).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body) + 50))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "*")


@pytest.fixture
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[str], str]]:
    """Serve good/, bad/ (valid gzip, wrong payload), trunc/, raw/ (not gzipped) from tmp."""
    root = tmp_path_factory.mktemp("www")
    for sub in ("good", "bad", "trunc", "raw"):
        (root / sub).mkdir(parents=True)
    good = write_idx(root / "good" / NAME, PAYLOAD, compress=True)
    write_idx(root / "bad" / NAME, PAYLOAD[::-1].copy(), compress=True)
    (root / "trunc" / NAME).write_bytes(good.read_bytes()[:-6])
    write_idx(root / "raw" / NAME, PAYLOAD, compress=False)
    digest = hashlib.sha256(gzip.decompress(good.read_bytes())).hexdigest()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
    httpd.daemon_threads = True
    httpd.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", httpd.requests, digest  # type: ignore[attr-defined]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def leftovers(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.iterdir() if p.name != NAME)


def fetch(base: str, subs: list[str], dest: Path, digest: str, **kwargs: object) -> Path:
    mirrors = [f"{base}/{sub}/" for sub in subs]
    return fetch_file(NAME, dest, mirrors=mirrors, sha256_of_payload=digest, timeout=5, **kwargs)


def test_default_mirrors_are_the_known_mnist_hosts() -> None:
    assert MNIST_MIRRORS[0] == "https://ossci-datasets.s3.amazonaws.com/mnist/"
    assert len(MNIST_MIRRORS) == 3 and all(m.endswith("/mnist/") for m in MNIST_MIRRORS)
    assert FASHION_MNIST_MIRRORS[0] == "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
    assert all(m.endswith("/kmnist/dataset/kmnist/") for m in KMNIST_MIRRORS)


def test_first_good_mirror_is_used_once(server, tmp_path: Path) -> None:
    base, requests, digest = server
    path = fetch(base, ["good", "bad"], tmp_path / "dest", digest)
    assert path == tmp_path / "dest" / NAME
    np.testing.assert_array_equal(read_idx(path), PAYLOAD)
    assert requests == [f"/good/{NAME}"]
    assert leftovers(path.parent) == []


@pytest.mark.parametrize("first", ["missing", "bad", "trunc", "liar"])
def test_falls_back_to_next_mirror(server, tmp_path: Path, first: str) -> None:
    base, requests, digest = server
    path = fetch(base, [first, "good"], tmp_path, digest)
    np.testing.assert_array_equal(read_idx(path), PAYLOAD)
    assert requests == [f"/{first}/{NAME}", f"/good/{NAME}"]
    assert leftovers(tmp_path) == []


def test_checksum_is_of_payload_so_uncompressed_copy_is_accepted(server, tmp_path: Path) -> None:
    base, _, digest = server
    np.testing.assert_array_equal(read_idx(fetch(base, ["raw"], tmp_path, digest)), PAYLOAD)


def test_slow_and_unreachable_mirrors_are_skipped(server, tmp_path: Path) -> None:
    base, _, digest = server
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/x/"
    start = time.perf_counter()
    mirrors = [dead, f"{base}/slow/", f"{base}/good/"]
    path = fetch_file(NAME, tmp_path, mirrors=mirrors, sha256_of_payload=digest, timeout=0.3)
    assert path.exists() and time.perf_counter() - start < 2


def test_all_mirrors_fail_names_each_and_keeps_nothing(server, tmp_path: Path) -> None:
    base, requests, digest = server
    subs = ["missing", "bad", "trunc", "liar"]
    with pytest.raises(DataError) as info:
        fetch(base, subs, tmp_path, digest)
    message = str(info.value)
    assert NAME in message and "4 mirror(s)" in message
    for sub in subs:
        assert f"{base}/{sub}/{NAME}" in message
    for reason in ("HTTP 404", "checksum mismatch", "truncated gzip", "truncated response"):
        assert reason in message
    assert len(requests) == 4
    assert list(tmp_path.iterdir()) == []  # no final file, no temp files


def test_existing_file_is_replaced_only_by_a_verified_one(server, tmp_path: Path) -> None:
    base, _, digest = server
    (tmp_path / NAME).write_bytes(b"old")
    with pytest.raises(DataError):
        fetch(base, ["bad"], tmp_path, digest)
    assert (tmp_path / NAME).read_bytes() == b"old"
    fetch(base, ["good"], tmp_path, digest)
    np.testing.assert_array_equal(read_idx(tmp_path / NAME), PAYLOAD)


def test_oversized_response_is_refused(server, tmp_path: Path) -> None:
    base, _, digest = server
    with pytest.raises(DataError, match="larger than 10 bytes"):
        fetch(base, ["good"], tmp_path, digest, max_bytes=10)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["", "..", "a/b", "../x"])
def test_invalid_names_rejected_before_any_request(tmp_path: Path, name: str) -> None:
    with pytest.raises(DataError, match="invalid file name"):
        fetch_file(name, tmp_path, mirrors=["http://127.0.0.1:9/"], sha256_of_payload="0" * 64)


def test_no_mirrors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no mirrors"):
        fetch_file(NAME, tmp_path, mirrors=[], sha256_of_payload="0" * 64)


def test_digest_of_the_file_itself(server, tmp_path: Path) -> None:
    """For data sets whose published digests are of the .gz bytes: those bytes, not the payload."""
    base, requests, payload_digest = server
    good = write_idx(tmp_path / NAME, PAYLOAD, compress=True)  # deterministic: the bytes the server's good/ has
    gz_digest = hashlib.sha256(good.read_bytes()).hexdigest()
    path = fetch_file(NAME, tmp_path / "d", mirrors=[f"{base}/raw/", f"{base}/good/"], sha256_of_file=gz_digest)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == gz_digest
    assert requests == [f"/raw/{NAME}", f"/good/{NAME}"]  # the same payload, uncompressed: refused
    with pytest.raises(DataError, match="checksum mismatch: file SHA-256"):
        fetch_file(NAME, tmp_path / "e", mirrors=[f"{base}/good/"], sha256_of_file=payload_digest)
    assert list((tmp_path / "e").iterdir()) == []


def test_exactly_one_digest(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="exactly one"):
        fetch_file(NAME, tmp_path, mirrors=[])
    with pytest.raises(TypeError, match="exactly one"):
        fetch_file(NAME, tmp_path, mirrors=[], sha256_of_payload="0" * 64, sha256_of_file="0" * 64)
