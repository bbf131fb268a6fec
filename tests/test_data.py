"""MNIST loading, verification, splits, normalization and preparing arrays for a model.

Real MNIST comes from the ``mnist_path`` fixture (see conftest.py). Nothing here touches the network.
"""

from __future__ import annotations

import gzip
import os
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

import mlpkit.data.download
from mlpkit.core.errors import ConfigError, DataError, InputError
from mlpkit.data import (
    ENV_VAR,
    MNIST_FILES,
    ROOT_ENV_VAR,
    Mnist,
    Normalizer,
    Split,
    default_cache_dir,
    load_mnist,
    make_split,
    mnist_checksums,
    one_hot,
    resolve_data_dir,
    write_idx,
)

REPO = Path(__file__).resolve().parents[1]
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(scope="module")
def mnist(mnist_path: Path) -> Mnist:
    return load_mnist(mnist_path, download=False)


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the user's $MLPKIT_DATA, $MLPKIT_DATA_ROOT or cache, and a stray download fails loudly."""
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.delenv(ROOT_ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(mlpkit.data.download, "MNIST_MIRRORS", ("http://127.0.0.1:9/no-network/",))


def fake_mnist(
    directory: Path,
    *,
    n_train: int = 6,
    n_test: int = 4,
    label: int = 3,
    n_train_labels: int | None = None,
    side: int = 28,
    gz: bool = True,
) -> Path:
    """Tiny MNIST-shaped files; every label equals `label` so tests can tell dirs apart."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    sizes = {
        "train_images": n_train,
        "train_labels": n_train if n_train_labels is None else n_train_labels,
        "test_images": n_test,
        "test_labels": n_test,
    }
    for field, stem in MNIST_FILES.items():
        n = sizes[field]
        if "images" in field:
            array = rng.integers(0, 256, (n, side, 28), dtype=np.uint8)
        else:
            array = np.full(n, label, np.uint8)
        write_idx(directory / (stem + (".gz" if gz else "")), array, compress=gz)
    return directory


# ----- real MNIST -------------------------------------------------------------------------


def test_shapes_dtypes_and_label_counts(mnist: Mnist) -> None:
    assert mnist.train_images.shape == (60000, 28, 28) and mnist.train_images.dtype == np.uint8
    assert mnist.test_images.shape == (10000, 28, 28) and mnist.test_labels.dtype == np.uint8
    assert np.bincount(mnist.train_labels, minlength=10).tolist() == TRAIN_COUNTS
    assert np.bincount(mnist.test_labels, minlength=10).tolist() == TEST_COUNTS


def test_loaded_arrays_are_cached_and_read_only(mnist: Mnist, mnist_path: Path) -> None:
    assert load_mnist(mnist_path) is mnist
    with pytest.raises(ValueError):
        mnist.train_images[0, 0, 0] = 1


def test_seed_split(mnist: Mnist) -> None:
    split = make_split(mnist)
    assert split.name == "seed" and split.x_test is None and split.y_test is None and split.image_shape == (28, 28)
    assert split.x_train.shape == (20000, 784) and split.x_train.dtype == np.uint8
    assert split.y_train.shape == (20000,) and split.x_val.shape == (10000, 784)
    np.testing.assert_array_equal(split.x_train[1234], mnist.train_images[1234].ravel())
    np.testing.assert_array_equal(split.y_val, mnist.test_labels)
    small = make_split(mnist, "seed", n_train=500, n_val=200)
    assert small.x_train.shape == (500, 784) and small.y_val.shape == (200,)


def test_full_split(mnist: Mnist) -> None:
    split = make_split(mnist, "full")
    assert split.x_train.shape == (55000, 784) and split.x_val.shape == (5000, 784)  # issue 13's 55,000 / 5,000
    assert split.x_test is not None and split.x_test.shape == (10000, 784)
    np.testing.assert_array_equal(split.x_val[0], mnist.train_images[55000].ravel())
    np.testing.assert_array_equal(split.y_train, mnist.train_labels[:55000])
    np.testing.assert_array_equal(split.y_test, mnist.test_labels)


def test_normalizer_matches_reference_statistics(mnist: Mnist) -> None:
    seed = Normalizer.fit(make_split(mnist).x_train)
    assert seed.mean == pytest.approx(33.55274553571429, rel=1e-12)
    assert seed.std == pytest.approx(78.8755007078470, rel=1e-12)
    full = Normalizer.fit(mnist.train_images)
    assert full.mean == pytest.approx(33.318421449829934, rel=1e-12)
    assert full.std == pytest.approx(78.56748998339798, rel=1e-12)


def test_wrong_checksum_names_file_and_digests(mnist: Mnist, mnist_path: Path, tmp_path: Path) -> None:
    for stem in MNIST_FILES.values():
        src = mnist_path / f"{stem}.gz" if (mnist_path / f"{stem}.gz").exists() else mnist_path / stem
        (tmp_path / src.name).symlink_to(src.resolve())
    labels = tmp_path / "t10k-labels-idx1-ubyte.gz"
    data = bytearray(gzip.decompress(labels.read_bytes()))
    data[-1] = (data[-1] + 1) % 10  # still a valid label: only the checksum can tell
    labels.unlink()
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(bytes(data))
    with pytest.raises(DataError) as info:
        load_mnist(tmp_path)
    message = str(info.value)
    assert "t10k-labels-idx1-ubyte" in message and "checksum" in message
    assert mnist_checksums()["t10k-labels-idx1-ubyte"] in message
    assert load_mnist(tmp_path, verify=False).test_labels[-1] == data[-1]


def test_download_into_cache_from_local_mirror(monkeypatch: pytest.MonkeyPatch, mnist_path: Path) -> None:
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    handler = partial(SimpleHTTPRequestHandler, directory=str(mnist_path))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        monkeypatch.setattr(mlpkit.data.download, "MNIST_MIRRORS", (f"http://127.0.0.1:{httpd.server_address[1]}/",))
        loaded = load_mnist()
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
    cache = default_cache_dir()
    assert sorted(p.name for p in cache.iterdir()) == sorted(f"{s}.gz" for s in MNIST_FILES.values())
    assert np.bincount(loaded.test_labels).tolist() == TEST_COUNTS


# ----- tiny generated data ----------------------------------------------------------------


def test_shipped_checksums_cover_the_four_files() -> None:
    sums = mnist_checksums()
    assert set(sums) == set(MNIST_FILES.values())
    assert sums["train-images-idx3-ubyte"] == "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"
    assert all(len(d) == 64 and int(d, 16) >= 0 for d in sums.values())


def test_resolution_order_explicit_env_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    explicit = fake_mnist(tmp_path / "explicit", label=1)
    env = fake_mnist(tmp_path / "env", label=2)
    cache = default_cache_dir()
    assert resolve_data_dir(None) is None  # cache empty
    fake_mnist(cache, label=3, gz=False)
    assert resolve_data_dir(None) == cache
    assert load_mnist(verify=False, download=False).train_labels[0] == 3
    monkeypatch.setenv(ENV_VAR, str(env))
    assert resolve_data_dir(None) == env
    assert load_mnist(verify=False).train_labels[0] == 2
    assert resolve_data_dir(str(explicit)) == explicit
    assert load_mnist(explicit, verify=False).train_labels[0] == 1


def test_home_cache_when_xdg_unset(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / ".cache" / "mlpkit" / "mnist"


def test_missing_explicit_or_env_dir_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake_mnist(default_cache_dir())  # a usable cache must not be a silent fallback
    with pytest.raises(DataError, match="nope"):
        resolve_data_dir(tmp_path / "nope")
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "gone"))
    with pytest.raises(DataError, match=r"\$MLPKIT_DATA .*gone"):
        load_mnist()


def test_dir_without_files_lists_them(tmp_path: Path) -> None:
    fake_mnist(tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte") as info:
        load_mnist(tmp_path, verify=False)
    assert "train-images" not in str(info.value)


def test_nothing_found_without_download(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="MLPKIT_DATA"):
        load_mnist(download=False)


def test_nothing_found_fetches_each_file_into_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def fake_fetch(name: str, dest_dir: Path, *, mirrors: tuple[str, ...], sha256_of_payload: str) -> Path:
        calls.append((name, Path(dest_dir), mirrors, sha256_of_payload))
        field = next(f for f, s in MNIST_FILES.items() if name == f"{s}.gz")
        array = np.zeros((2, 28, 28) if "images" in field else 2, dtype=np.uint8)
        return write_idx(Path(dest_dir) / name, array, compress=True)

    monkeypatch.setattr(mlpkit.data.download, "fetch_file", fake_fetch)
    cache = default_cache_dir()
    loaded = load_mnist(verify=False)
    sums = mnist_checksums()
    assert sorted(c[0] for c in calls) == sorted(f"{s}.gz" for s in MNIST_FILES.values())
    assert all(d == cache and m == mlpkit.data.download.MNIST_MIRRORS and sums[n[:-3]] == h for n, d, m, h in calls)
    assert loaded.train_images.shape == (2, 28, 28)
    calls.clear()
    (cache / "t10k-labels-idx1-ubyte.gz").unlink()  # partial cache: fetch only what is missing
    load_mnist(verify=False)
    assert [c[0] for c in calls] == ["t10k-labels-idx1-ubyte.gz"]


def test_mismatched_counts_name_both_files(tmp_path: Path) -> None:
    fake_mnist(tmp_path, n_train=5, n_train_labels=4)
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz has 5 images but train-labels-idx1-ubyte.gz has 4"):
        load_mnist(tmp_path, verify=False)


def test_labels_out_of_range_and_wrong_image_size(tmp_path: Path) -> None:
    fake_mnist(tmp_path / "labels", label=10)
    with pytest.raises(DataError, match="labels-idx1-ubyte.gz: labels must lie in 0..9"):
        load_mnist(tmp_path / "labels", verify=False)
    fake_mnist(tmp_path / "side", side=27)
    with pytest.raises(DataError, match="images-idx3-ubyte.gz: images are 27x28"):
        load_mnist(tmp_path / "side", verify=False)


def test_verify_rejects_non_mnist_content(tmp_path: Path) -> None:
    fake_mnist(tmp_path)
    with pytest.raises(DataError, match=r"declares shape \(6,\), expected \(60000,\) \(not the original file\)"):
        load_mnist(tmp_path)  # refused by its header's shape, before the payload is read
    fake_mnist(tmp_path / "same-shapes", n_train=60_000, n_test=10_000, gz=True)
    with pytest.raises(DataError, match="checksum mismatch"):
        load_mnist(tmp_path / "same-shapes")


@pytest.mark.parametrize(
    ("make", "found"),
    [
        (lambda p: p.mkdir(), "is a directory, not a file"),
        (lambda p: os.mkfifo(p), "is a named pipe (FIFO), not a file"),
        (lambda p: p.symlink_to(p.parent / "gone"), "is a dangling symbolic link"),
        (lambda p: p.symlink_to(p), "is a symbolic link loop"),
        (lambda p: p.symlink_to("/dev/null"), "is a character device (a symbolic link to /dev/null), not a file"),
    ],
)
def test_something_else_in_place_of_a_data_file_is_named(tmp_path: Path, make, found: str) -> None:
    fake_mnist(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
    make(tmp_path / "train-labels-idx1-ubyte.gz")
    with pytest.raises(DataError) as info:
        load_mnist(tmp_path, verify=False)
    message = str(info.value)
    assert "lacks MNIST file(s): train-labels-idx1-ubyte" in message
    assert f"train-labels-idx1-ubyte.gz {found}" in message


def test_cache_notices_changed_files(tmp_path: Path) -> None:
    fake_mnist(tmp_path, label=4)
    first = load_mnist(tmp_path, verify=False)
    assert load_mnist(tmp_path, verify=False) is first
    fake_mnist(tmp_path, label=5)
    for p in tmp_path.iterdir():
        os.utime(p, ns=(1, 1))
    assert load_mnist(tmp_path, verify=False).train_labels[0] == 5


def fake_split(n: int = 30) -> Mnist:
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    return Mnist(images, np.arange(n, dtype=np.uint8) % 10, images[:7], np.arange(7, dtype=np.uint8))


def test_split_options_validated() -> None:
    with pytest.raises(ConfigError, match="seed, full, holdout, given"):
        make_split(fake_split(), "random")
    with pytest.raises(ConfigError, match="n_train"):
        make_split(fake_split(), "seed", n_train=0)
    with pytest.raises(ConfigError, match="overlap"):
        make_split(fake_split(), "full", n_train=25, n_val=10)
    split = make_split(fake_split(), "full", n_train=20, n_val=10)
    assert isinstance(split, Split) and split.y_val.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    for bad in (2.5, True, "3", 31):
        with pytest.raises(ConfigError, match=r"n_val must be an integer in 1\.\.30"):
            make_split(fake_split(), "full", n_train=1, n_val=bad)


def test_normalizer_fit_matches_numpy_and_apply() -> None:
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (3000, 28, 28), dtype=np.uint8)  # many 2^16-pixel blocks
    norm = Normalizer.fit(images)
    assert norm.mean == pytest.approx(images.mean(dtype=np.float64), rel=1e-13)
    assert norm.std == pytest.approx(images.std(dtype=np.float64), rel=1e-13)
    as_float = Normalizer.fit(images.astype(np.float32))
    assert as_float.mean == pytest.approx(norm.mean, rel=1e-12) and as_float.std == pytest.approx(norm.std, rel=1e-12)
    x = norm.apply(images)
    assert x.shape == (3000, 784) and x.dtype == np.float32
    np.testing.assert_allclose(x[5], (images[5].ravel() - norm.mean) / norm.std, rtol=1e-6)
    x64 = norm.apply(images[:10], dtype=np.float64)
    assert x64.dtype == np.float64 and abs(Normalizer.fit(norm.apply(images, dtype=np.float64)).std - 1) < 1e-12


def test_constant_images_cannot_be_normalized() -> None:
    with pytest.raises(DataError, match="std"):
        Normalizer.fit(np.full((4, 28, 28), 7, dtype=np.uint8))
    with pytest.raises(DataError):
        Normalizer(mean=0.0, std=0.0)


def test_one_hot() -> None:
    np.testing.assert_array_equal(one_hot(np.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])
    assert one_hot(np.arange(10, dtype=np.uint8)).shape == (10, 10)
    for bad in (np.array([10]), np.array([-1]), np.array([1.0])):
        with pytest.raises(InputError):
            one_hot(bad)
