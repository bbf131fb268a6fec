"""Datasets: the IDX reader, verified downloads, the IDX family (MNIST, Fashion-MNIST, KMNIST),
splits, normalization, augmentation and preparing arrays for a model. Imports only ``mlpkit.core``
(and NumPy; the augmentation kernels import Numba when first used)."""

from mlpkit.data.affine import random_affine
from mlpkit.data.augment import TRANSFORMS, Augmentation, augmented_epoch
from mlpkit.data.download import FASHION_MNIST_MIRRORS, KMNIST_MIRRORS, MNIST_MIRRORS, fetch_file
from mlpkit.data.elastic import elastic
from mlpkit.data.idx import payload_sha256, read_idx, read_idx_with_sha256, write_idx
from mlpkit.data.idx_datasets import (
    ROOT_ENV_VAR,
    IdxArrays,
    idx_cache_dir,
    load_idx_arrays,
    load_idx_dataset,
    resolve_idx_dir,
)
from mlpkit.data.idx_specs import FASHION_MNIST_CLASSES, IDX_DATASETS, IDX_FILES, IdxSpec, idx_checksums
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
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_MIRRORS",
    "IDX_DATASETS",
    "IDX_FILES",
    "KMNIST_MIRRORS",
    "MNIST_CLASSES",
    "MNIST_FILES",
    "MNIST_MIRRORS",
    "MNIST_SHAPES",
    "ROOT_ENV_VAR",
    "SPLITS",
    "TRANSFORMS",
    "Augmentation",
    "IdxArrays",
    "IdxSpec",
    "Mnist",
    "Normalizer",
    "PreparedData",
    "Split",
    "augmented_epoch",
    "default_cache_dir",
    "elastic",
    "fetch_file",
    "idx_cache_dir",
    "idx_checksums",
    "load_idx_arrays",
    "load_idx_dataset",
    "load_image",
    "load_mnist",
    "make_split",
    "mnist_checksums",
    "mnist_style",
    "one_hot",
    "payload_sha256",
    "prepare_data",
    "random_affine",
    "read_idx",
    "read_idx_with_sha256",
    "resolve_data_dir",
    "resolve_idx_dir",
    "split_sizes",
    "write_idx",
]
