"""Datasets: the IDX reader, verified downloads, the MNIST registry, splits, normalization and
preparing arrays for a model. Imports only ``mlpkit.core`` (and NumPy)."""

from mlpkit.data.download import MNIST_MIRRORS, fetch_file
from mlpkit.data.idx import payload_sha256, read_idx, read_idx_with_sha256, write_idx
from mlpkit.data.images import load_image, mnist_style
from mlpkit.data.labels import one_hot
from mlpkit.data.mnist import (
    ENV_VAR,
    MNIST_CLASSES,
    MNIST_FILES,
    MNIST_SHAPES,
    Mnist,
    default_cache_dir,
    load_mnist,
    mnist_checksums,
    resolve_data_dir,
)
from mlpkit.data.normalize import Normalizer
from mlpkit.data.prepare import PreparedData, prepare_data
from mlpkit.data.splits import SPLITS, Split, make_split, split_sizes

__all__ = [
    "ENV_VAR",
    "MNIST_CLASSES",
    "MNIST_FILES",
    "MNIST_MIRRORS",
    "MNIST_SHAPES",
    "SPLITS",
    "Mnist",
    "Normalizer",
    "PreparedData",
    "Split",
    "default_cache_dir",
    "fetch_file",
    "load_image",
    "load_mnist",
    "make_split",
    "mnist_checksums",
    "mnist_style",
    "one_hot",
    "payload_sha256",
    "prepare_data",
    "read_idx",
    "read_idx_with_sha256",
    "resolve_data_dir",
    "split_sizes",
    "write_idx",
]
