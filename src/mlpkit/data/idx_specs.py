"""What each IDX data set is (MNIST, Fashion-MNIST, KMNIST), known without reading a byte of it.

The three share one format and one set of file names, so only what differs is written down per
data set: sizes, classes, mirrors, digests, its environment variable and cache folder. The
preflight sizes a run from here (`IDX_DATASETS`), before anything is loaded.

Digests (``checksums/<name>.sha256``, ``sha256sum`` lines) are of the decompressed files where
those are published (MNIST), else of the ``.gz`` files as published (Fashion-MNIST, KMNIST);
``checksums/README.md`` says where each comes from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from mlpkit.core.errors import ConfigError
from mlpkit.data import download

__all__ = [
    "FASHION_MNIST_CLASSES",
    "IDX_DATASETS",
    "IDX_FILES",
    "IdxSpec",
    "idx_checksums",
    "idx_spec",
]

#: Names every IDX data set gives its files: field -> file name without ".gz".
IDX_FILES: Mapping[str, str] = MappingProxyType(
    {
        "train_images": "train-images-idx3-ubyte",
        "train_labels": "train-labels-idx1-ubyte",
        "test_images": "t10k-images-idx3-ubyte",
        "test_labels": "t10k-labels-idx1-ubyte",
    }
)
#: Fashion-MNIST's class names in label order (its README).
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
_CHECKSUMS_DIR = Path(__file__).with_name("checksums")


@dataclass(frozen=True, kw_only=True)
class IdxSpec:
    """What one IDX data set is: known without reading it (the preflight's sizes come from here).

    Parameters
    ----------
    name : str
        Registry name, also the cache and ``$MLPKIT_DATA_ROOT`` subfolder.
    title : str
        The name in messages ("MNIST").
    env_var : str
        The variable naming its folder.
    n_train, n_test : int
        Images in the original training and test files.
    input_shape : tuple of int
        Shape of one image.
    classes : tuple
        Class labels in label order: integers 0..n-1 keep the files' uint8 labels; anything
        else (names) replaces label ``i`` with ``classes[i]`` in `load_idx_dataset`.
    mirror_list : str
        Name of the tuple of mirror URLs in `mlpkit.data.download`, looked up at each download
        (so a test or a site can point it at another host).
    checksum_file : Path
        ``sha256sum``-style lines: digest, two spaces, file name as the digest covers it.
    digest_of : {"payload", "gzip"}
        Whether the digests are of the decompressed files or of the published ``.gz`` bytes.
    files : Mapping of str to str
        Field -> file name without ``.gz``.
    """

    name: str
    title: str
    env_var: str
    n_train: int
    n_test: int
    input_shape: tuple[int, ...]
    classes: tuple
    mirror_list: str
    checksum_file: Path
    digest_of: Literal["payload", "gzip"]
    files: Mapping[str, str] = field(default_factory=lambda: IDX_FILES)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def mirrors(self) -> tuple[str, ...]:
        return tuple(getattr(download, self.mirror_list))

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Field -> the original file's array shape (what the digests stand for)."""
        sizes = {"train": self.n_train, "test": self.n_test}
        return {
            name: (sizes[name.split("_")[0]], *(self.input_shape if name.endswith("images") else ()))
            for name in self.files
        }


#: Registered IDX data sets by name.
IDX_DATASETS: dict[str, IdxSpec] = {
    spec.name: spec
    for spec in (
        IdxSpec(
            name="mnist",
            title="MNIST",
            env_var="MLPKIT_DATA",
            n_train=60_000,
            n_test=10_000,
            input_shape=(28, 28),
            classes=tuple(range(10)),
            mirror_list="MNIST_MIRRORS",
            checksum_file=_CHECKSUMS_DIR / "mnist.sha256",
            digest_of="payload",
        ),
        IdxSpec(
            name="fashion-mnist",
            title="Fashion-MNIST",
            env_var="MLPKIT_DATA_FASHION_MNIST",
            n_train=60_000,
            n_test=10_000,
            input_shape=(28, 28),
            classes=FASHION_MNIST_CLASSES,
            mirror_list="FASHION_MNIST_MIRRORS",
            checksum_file=_CHECKSUMS_DIR / "fashion-mnist.sha256",
            digest_of="gzip",
        ),
        IdxSpec(
            name="kmnist",
            title="KMNIST",
            env_var="MLPKIT_DATA_KMNIST",
            n_train=60_000,
            n_test=10_000,
            input_shape=(28, 28),
            classes=tuple(range(10)),
            mirror_list="KMNIST_MIRRORS",
            checksum_file=_CHECKSUMS_DIR / "kmnist.sha256",
            digest_of="gzip",
        ),
    )
}


def idx_spec(name: str) -> IdxSpec:
    """The spec of a registered IDX data set (a ConfigError naming the known ones otherwise)."""
    try:
        return IDX_DATASETS[name]
    except KeyError:
        raise ConfigError(f"unknown IDX data set {name!r}; known: {', '.join(IDX_DATASETS)}") from None


def idx_checksums(name: str) -> dict[str, str]:
    """File name without .gz -> the shipped SHA-256 (of the file or its payload: ``digest_of``)."""
    lines = idx_spec(name).checksum_file.read_text().splitlines()
    pairs = (line.split() for line in lines if line.strip() and not line.lstrip().startswith("#"))
    return {file.removesuffix(".gz"): digest.lower() for digest, file in pairs}
