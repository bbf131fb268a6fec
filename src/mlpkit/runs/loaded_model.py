"""A trained model with what it takes to use it on raw inputs: its normalization, its class
labels, its input shape, the data set it learned and where it came from.

This is what a model file (`mlpkit.runs.model_file`) holds, and what ``predict`` and the web
app use: raw inputs in, labels of the user's own type out, with no run folder needed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from mlpkit.core.errors import InputError
from mlpkit.core.version import __version__
from mlpkit.data.normalize import NORMALIZATION_KINDS, Normalization

if TYPE_CHECKING:
    from mlpkit.nn.mlp import MLP

__all__ = [
    "NORMALIZATION_KINDS",
    "PREPROCESS_KINDS",
    "LoadedModel",
    "Normalization",
    "Provenance",
    "config_digest",
    "default_preprocess",
]

#: How ``predict`` (and the web app) turn an image file into one raw input (see `LoadedModel`).
PREPROCESS_KINDS = ("mnist", "resize", "none")


def default_preprocess(input_shape: tuple[int, ...]) -> str:
    """MNIST's preprocessing for 28x28 inputs, a plain resize for other 2-D inputs, else none."""
    if tuple(input_shape) == (28, 28):
        return "mnist"
    return "resize" if len(input_shape) == 2 else "none"


def config_digest(config: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of a config dict (sorted keys, no spaces): equal configs,
    equal digests, whatever their key order."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Provenance:
    """Where a model came from.

    Parameters
    ----------
    mlpkit_version : str
        The mlpkit that trained it.
    config_digest : str or None
        `config_digest` of its run's config, if it came from one.
    created : str
        UTC time of saving, ISO 8601.
    """

    mlpkit_version: str = __version__
    config_digest: str | None = None
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @classmethod
    def for_config(cls, config: dict[str, Any] | None) -> Provenance:
        """This mlpkit, now, and the digest of ``config`` (a `Config.to_dict`), if any."""
        return cls(config_digest=None if config is None else config_digest(config))

    def to_json(self) -> dict[str, Any]:
        return {"mlpkit_version": self.mlpkit_version, "config_digest": self.config_digest, "created": self.created}


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A network plus what it needs to classify raw inputs.

    Parameters
    ----------
    model : MLP
        The network.
    normalization : Normalization
        Applied to raw inputs first.
    classes : list
        The label of each output, in output order (ints or strings).
    input_shape : tuple of int
        The shape of one raw input (``(28, 28)`` for MNIST, ``(64,)`` for a table row); its
        product is the model's ``n_features``.
    dataset : str
        The data set it was trained on.
    provenance : Provenance
        Version, config digest, time.
    preprocess : {"mnist", "resize", "none"} or None
        How an image file becomes an input: MNIST's own steps (`mlpkit.data.images.mnist_style`),
        grayscale resized to ``input_shape``, or not at all (images refused); None:
        `default_preprocess` of ``input_shape``.
    data : dict or None
        The ``[data]`` table the model was trained with (how to find its test part again).
    """

    model: MLP
    normalization: Normalization
    classes: list[Any]
    input_shape: tuple[int, ...]
    dataset: str
    provenance: Provenance
    preprocess: str | None = None
    data: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.preprocess is None:
            object.__setattr__(self, "preprocess", default_preprocess(self.input_shape))

    def features(self, raw_x: np.ndarray) -> np.ndarray:
        """Raw inputs (n, *input_shape) or (n, n_features), or one input of ``input_shape``,
        normalized into an (n, n_features) array of the model's dtype.

        Raises
        ------
        InputError
            If the inputs have another shape or are not finite real numbers.
        """
        x = np.asarray(raw_x)
        if x.shape == self.input_shape and len(self.input_shape) > 1:
            x = x[None]
        n_features = self.model.n_features
        if x.ndim >= 2 and x.shape[1:] == self.input_shape:
            x = x.reshape(len(x), -1)
        if x.ndim != 2 or x.shape[1] != n_features:
            raise InputError(
                f"inputs must have shape (n, {', '.join(map(str, self.input_shape))}) or (n, {n_features}),"
                f" got {x.shape}"
            )
        if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
            raise InputError(f"inputs must be real numbers, got dtype {x.dtype}")
        if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
            raise InputError("inputs contain NaN or infinite values")
        return self.normalization.apply(x, self.model.dtype)

    def predict_proba(self, raw_x: np.ndarray) -> np.ndarray:
        """Class probabilities (n, n_classes), columns in ``classes`` order."""
        return self.model.predict_proba(self.features(raw_x))

    def predict(self, raw_x: np.ndarray) -> np.ndarray:
        """The label (from ``classes``) of each input, as an array."""
        index = self.model.predict(self.features(raw_x))
        return np.asarray(self.classes)[index]
