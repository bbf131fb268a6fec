"""The IDX family (Fashion-MNIST, KMNIST next to MNIST): registry, digests, where files are found,
verified download. The machines are offline and hold only MNIST, so Fashion-MNIST and KMNIST are
tiny IDX files written here (60 training, 20 test images), their spec pointed at them and at
their digests. Nothing touches the network.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
from collections.abc import Iterator
from dataclasses import replace
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import mlpkit.data.download
from mlpkit.cli import main
from mlpkit.core.errors import ConfigError, DataError
from mlpkit.data import (
    FASHION_MNIST_CLASSES,
    IDX_DATASETS,
    IDX_FILES,
    ROOT_ENV_VAR,
    idx_cache_dir,
    idx_checksums,
    load_idx_arrays,
    load_idx_dataset,
    resolve_data_dir,
    resolve_idx_dir,
    write_idx,
)
from mlpkit.data.registry import DATASET_NAMES, load_dataset

N_TRAIN, N_TEST = 60, 20
DEAD = ("http://127.0.0.1:9/no-network/",)
VARS = {"mnist": "MLPKIT_DATA", "fashion-mnist": "MLPKIT_DATA_FASHION_MNIST", "kmnist": "MLPKIT_DATA_KMNIST"}


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the user's variables or cache, and a stray download fails loudly."""
    for var in (*VARS.values(), ROOT_ENV_VAR):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    for spec in IDX_DATASETS.values():
        monkeypatch.setattr(mlpkit.data.download, spec.mirror_list, DEAD)
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "*")


def write_tiny(directory: Path, *, shift: int = 0, gz: bool = True) -> Path:
    """60 + 20 random 28x28 images; label i is (i + shift) % 10, so folders can be told apart."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    sizes = {"train": N_TRAIN, "test": N_TEST}
    for field, stem in IDX_FILES.items():
        n = sizes[field.split("_")[0]]
        if field.endswith("images"):
            array = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        else:
            array = ((np.arange(n) + shift) % 10).astype(np.uint8)
        write_idx(directory / (stem + (".gz" if gz else "")), array, compress=gz)
    return directory


def point_spec_at(monkeypatch: pytest.MonkeyPatch, name: str, source: Path) -> dict[str, str]:
    """Register ``name`` with the tiny sizes and the SHA-256 of the .gz files in ``source``."""
    digests = {stem: hashlib.sha256((source / f"{stem}.gz").read_bytes()).hexdigest() for stem in IDX_FILES.values()}
    checksum_file = source.parent / f"{name}-{source.name}.sha256"
    checksum_file.write_text("# test digests\n" + "".join(f"{d}  {s}.gz\n" for s, d in digests.items()))
    spec = replace(IDX_DATASETS[name], n_train=N_TRAIN, n_test=N_TEST, checksum_file=checksum_file)
    monkeypatch.setitem(IDX_DATASETS, name, spec)
    return digests


@pytest.fixture
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, list[str]]]:
    """A local HTTP server: (base URL, its root folder, the paths requested)."""
    root = tmp_path_factory.mktemp("www")
    requests: list[str] = []

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", root, requests
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


# ----- the registry ---------------------------------------------------------------------------


def test_registry_gives_sizes_shapes_and_classes_without_reading() -> None:
    assert list(IDX_DATASETS) == ["mnist", "fashion-mnist", "kmnist"]
    assert set(IDX_DATASETS) <= set(DATASET_NAMES)
    for name, spec in IDX_DATASETS.items():
        assert (spec.name, spec.n_train, spec.n_test, spec.input_shape, spec.n_classes) == (
            name,
            60_000,
            10_000,
            (28, 28),
            10,
        )
        assert spec.env_var == VARS[name]
        assert spec.shapes == {
            "train_images": (60_000, 28, 28),
            "train_labels": (60_000,),
            "test_images": (10_000, 28, 28),
            "test_labels": (10_000,),
        }
    assert IDX_DATASETS["mnist"].classes == IDX_DATASETS["kmnist"].classes == tuple(range(10))
    assert IDX_DATASETS["fashion-mnist"].classes == FASHION_MNIST_CLASSES
    assert FASHION_MNIST_CLASSES[0] == "T-shirt/top" and FASHION_MNIST_CLASSES[9] == "Ankle boot"


def test_unknown_name_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown IDX data set 'emnist'; known: mnist, fashion-mnist, kmnist"):
        load_idx_dataset("emnist")


def test_shipped_digests_are_the_published_gz_digests() -> None:
    fashion, kmnist = idx_checksums("fashion-mnist"), idx_checksums("kmnist")
    assert set(fashion) == set(kmnist) == set(IDX_FILES.values())
    # tensorflow/datasets url_checksums/fashion_mnist.txt and kmnist.txt
    assert fashion["train-images-idx3-ubyte"] == "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"
    assert fashion["t10k-labels-idx1-ubyte"] == "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"
    assert kmnist["train-images-idx3-ubyte"] == "51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4"
    assert kmnist["t10k-labels-idx1-ubyte"] == "20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c"
    for name in ("fashion-mnist", "kmnist"):
        spec = IDX_DATASETS[name]
        assert spec.digest_of == "gzip"
        listed = [line.split()[1] for line in spec.checksum_file.read_text().splitlines() if not line.startswith("#")]
        assert sorted(listed) == sorted(f"{s}.gz" for s in IDX_FILES.values())
        assert "tensorflow_datasets/url_checksums" in spec.checksum_file.read_text()
    assert IDX_DATASETS["mnist"].digest_of == "payload"


# ----- loading ----------------------------------------------------------------------------------


def test_fashion_mnist_labels_are_its_class_names(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    source = write_tiny(tmp_path / "fashion")
    point_spec_at(monkeypatch, "fashion-mnist", source)
    data = load_idx_dataset("fashion-mnist", source)
    assert data.name == "fashion-mnist" and data.classes == FASHION_MNIST_CLASSES
    assert data.x_train.shape == (N_TRAIN, 28, 28) and data.x_train.dtype == np.uint8
    assert data.x_test is not None and data.y_test is not None and data.x_test.shape == (N_TEST, 28, 28)
    assert data.y_train.dtype.kind == "U"
    assert list(data.y_train[:3]) == ["T-shirt/top", "Trouser", "Pullover"] and data.y_test[9] == "Ankle boot"
    assert not data.x_train.flags.writeable and not data.y_train.flags.writeable
    via_registry = load_dataset("fashion-mnist", data_dir=source)
    np.testing.assert_array_equal(via_registry.y_test, data.y_test)


def test_kmnist_keeps_integer_labels(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    source = write_tiny(tmp_path / "kmnist", shift=3)
    point_spec_at(monkeypatch, "kmnist", source)
    data = load_idx_dataset("kmnist", source)
    assert data.classes == tuple(range(10)) and data.y_train.dtype == np.uint8
    np.testing.assert_array_equal(data.y_train, (np.arange(N_TRAIN) + 3) % 10)
    assert load_idx_arrays("kmnist", source) is load_idx_arrays("kmnist", source)  # in-process cache


def test_wrong_digest_is_refused_naming_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    source = write_tiny(tmp_path / "fashion")
    digests = point_spec_at(monkeypatch, "fashion-mnist", source)
    labels = source / "t10k-labels-idx1-ubyte.gz"
    write_idx(labels, np.full(N_TEST, 4, np.uint8), compress=True)  # same shape, other content
    with pytest.raises(DataError) as info:
        load_idx_dataset("fashion-mnist", source)
    message = str(info.value)
    assert str(labels) in message and "checksum mismatch" in message
    assert digests["t10k-labels-idx1-ubyte"] in message and "not the original Fashion-MNIST" in message
    assert load_idx_arrays("fashion-mnist", source, verify=False).test_labels[0] == 4


def test_a_decompressed_copy_cannot_pass_for_the_published_gz(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    point_spec_at(monkeypatch, "kmnist", write_tiny(tmp_path / "gz"))
    raw = write_tiny(tmp_path / "raw", gz=False)  # the very same arrays, stored uncompressed
    with pytest.raises(DataError, match="train-labels-idx1-ubyte: checksum mismatch: SHA-256 of the file") as info:
        load_idx_dataset("kmnist", raw)
    assert "decompressed or recompressed copy" in str(info.value)


def test_header_of_another_shape_is_refused_before_reading(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    point_spec_at(monkeypatch, "kmnist", write_tiny(tmp_path / "kmnist"))
    monkeypatch.setitem(IDX_DATASETS, "kmnist", replace(IDX_DATASETS["kmnist"], n_train=61))
    with pytest.raises(DataError, match=r"declares shape \(60,\), expected \(61,\)"):
        load_idx_dataset("kmnist", tmp_path / "kmnist")


# ----- where the files are found ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["fashion-mnist", "kmnist"])
def test_resolution_order_argument_variable_root_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str
) -> None:
    explicit = write_tiny(tmp_path / "explicit", shift=1)
    own = write_tiny(tmp_path / "own", shift=2)
    root = tmp_path / "root"
    write_tiny(root / name, shift=3)
    cache = write_tiny(idx_cache_dir(name), shift=4)
    assert cache == tmp_path / "xdg" / "mlpkit" / name

    def first_label(data_dir: Path | None = None) -> int:
        return int(load_idx_arrays(name, data_dir, download=False, verify=False).train_labels[0])

    assert resolve_idx_dir(name) == cache and first_label() == 4
    monkeypatch.setenv(ROOT_ENV_VAR, str(root))
    assert resolve_idx_dir(name) == root / name and first_label() == 3
    monkeypatch.setenv("MLPKIT_DATA", str(explicit))  # MNIST's variable is MNIST's alone
    assert resolve_idx_dir(name) == root / name
    monkeypatch.setenv(VARS[name], str(own))
    assert resolve_idx_dir(name) == own and first_label() == 2
    assert resolve_idx_dir(name, explicit) == explicit and first_label(explicit) == 1


def test_root_variable_serves_mnist_too(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "root" / "mnist").mkdir(parents=True)
    monkeypatch.setenv(ROOT_ENV_VAR, str(tmp_path / "root"))
    assert resolve_data_dir(None) == tmp_path / "root" / "mnist"
    monkeypatch.setenv("MLPKIT_DATA", str(tmp_path))
    assert resolve_data_dir(None) == tmp_path


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("argument", r"data directory .*nowhere does not exist"),
        ("variable", r"\$MLPKIT_DATA_FASHION_MNIST .*nowhere does not exist"),
        ("root", r"\$MLPKIT_DATA_ROOT/fashion-mnist .*fashion-mnist does not exist"),
    ],
)
def test_named_but_missing_folder_is_an_error_not_a_fallback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, setting: str, message: str
) -> None:
    write_tiny(idx_cache_dir("fashion-mnist"))  # a usable cache must not be a silent fallback
    explicit = None
    if setting == "argument":
        explicit = tmp_path / "nowhere"
    elif setting == "variable":
        monkeypatch.setenv("MLPKIT_DATA_FASHION_MNIST", str(tmp_path / "nowhere"))
    else:
        (tmp_path / "root" / "mnist").mkdir(parents=True)  # the root exists, its fashion-mnist/ does not
        monkeypatch.setenv(ROOT_ENV_VAR, str(tmp_path / "root"))
    with pytest.raises(DataError, match=message):
        load_idx_dataset("fashion-mnist", explicit)


def test_nothing_found_without_download_names_the_variables() -> None:
    with pytest.raises(DataError, match=r"KMNIST not found: pass a data directory, set \$MLPKIT_DATA_KMNIST"):
        load_idx_dataset("kmnist", download=False)


def test_failed_download_lists_the_mirrors_and_the_variable() -> None:
    with pytest.raises(DataError) as info:
        load_idx_dataset("fashion-mnist")
    message = str(info.value)
    assert DEAD[0] in message and "set MLPKIT_DATA_FASHION_MNIST to a folder holding the four Fashion-MNIST files" in (
        message
    )


# ----- verified download -----------------------------------------------------------------------


def serve(root: Path, source: Path, sub: str) -> None:
    (root / sub).mkdir()
    for path in source.iterdir():
        (root / sub / path.name).write_bytes(path.read_bytes())


def test_download_into_the_cache_checks_each_gz(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mirror) -> None:
    base, root, requests = mirror
    source = write_tiny(tmp_path / "published", shift=5)
    point_spec_at(monkeypatch, "fashion-mnist", source)
    serve(root, source, "good")
    serve(root, source, "recompressed")  # the same payloads, other gzip bytes: not the published files
    for path in (root / "recompressed").iterdir():
        path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes()), compresslevel=1, mtime=1))
    monkeypatch.setattr(mlpkit.data.download, "FASHION_MNIST_MIRRORS", (f"{base}/recompressed/", f"{base}/good/"))
    data = load_idx_dataset("fashion-mnist")
    cache = idx_cache_dir("fashion-mnist")
    assert sorted(p.name for p in cache.iterdir()) == sorted(f"{s}.gz" for s in IDX_FILES.values())
    for stem in IDX_FILES.values():
        assert (cache / f"{stem}.gz").read_bytes() == (source / f"{stem}.gz").read_bytes()
        assert requests.count(f"/recompressed/{stem}.gz") == requests.count(f"/good/{stem}.gz") == 1
    assert data.y_train[0] == FASHION_MNIST_CLASSES[5]
    assert resolve_idx_dir("fashion-mnist") == cache


def test_cli_data_download_fashion_mnist(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mirror) -> None:
    base, root, requests = mirror
    source = write_tiny(tmp_path / "published")
    point_spec_at(monkeypatch, "fashion-mnist", source)
    serve(root, source, "fashion")
    monkeypatch.setattr(mlpkit.data.download, "FASHION_MNIST_MIRRORS", (f"{base}/fashion/",))
    result = CliRunner().invoke(main, ["data", "download", "--dataset", "fashion-mnist"], catch_exceptions=False)
    cache = idx_cache_dir("fashion-mnist")
    assert result.exit_code == 0, result.output
    assert f"Fashion-MNIST verified: {N_TRAIN} training and {N_TEST} test images in {cache}" in result.output
    assert len(requests) == 4 and len(list(cache.iterdir())) == 4
    again = CliRunner().invoke(main, ["data", "download", "--dataset", "fashion-mnist"], catch_exceptions=False)
    assert again.exit_code == 0 and len(requests) == 4  # verified copy in the cache: nothing fetched


def test_cli_data_commands_refuse_an_unknown_data_set() -> None:
    result = CliRunner().invoke(main, ["data", "download", "--dataset", "cifar10"])
    assert result.exit_code == 2 and "unknown IDX data set 'cifar10'" in result.output
