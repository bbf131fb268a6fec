"""A trained model with what it takes to use it on raw inputs: its normalization, its class
labels, its input shape, the data set it learned and where it came from.

This is what a model file (`mlpkit.runs.model_file`) holds, and what ``predict`` and the web
app use: raw inputs in, labels of the user's own type out, with no run folder needed.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from mlpkit.core.errors import DataError, InputError
from mlpkit.core.version import __version__

if TYPE_CHECKING:
    from mlpkit.nn.mlp import MLP

__all__ = ["NORMALIZATION_KINDS", "LoadedModel", "Normalization", "Provenance", "config_digest"]

NORMALIZATION_KINDS = ("global", "per_feature", "none")
_BLOCK_ROWS = 1024  # rows per float64 temporary when normalizing, as `mlpkit.data.normalize` does


@dataclass(frozen=True, eq=False)
class Normalization:
    """How raw inputs are standardized before the network sees them.

    Parameters
    ----------
    kind : {"global", "per_feature", "none"}
        One scalar mean/std over all features (the seed's), one per feature, or none.
    mean, std : float or np.ndarray or None
        Floats for ``"global"``, 1-D float64 arrays (one entry per feature) for
        ``"per_feature"``, None for ``"none"``; every std finite and > 0.

    Raises
    ------
    DataError
        For an unknown kind or statistics that do not fit it.
    """

    kind: str
    mean: float | np.ndarray | None = None
    std: float | np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.kind not in NORMALIZATION_KINDS:
            raise DataError(f"unknown normalization kind {self.kind!r}; valid: {', '.join(NORMALIZATION_KINDS)}")
        if self.kind == "none":
            if self.mean is not None or self.std is not None:
                raise DataError("normalization 'none' takes no mean or std")
        elif self.kind == "global":
            scalars = _finite_scalar(self.mean), _finite_scalar(self.std)
            if scalars[0] is None or scalars[1] is None or scalars[1] <= 0:
                raise DataError(f"global normalization needs finite mean and std > 0, got {self.mean!r}, {self.std!r}")
            object.__setattr__(self, "mean", scalars[0])
            object.__setattr__(self, "std", scalars[1])
        else:
            mean, std = np.asarray(self.mean, dtype=np.float64), np.asarray(self.std, dtype=np.float64)
            if mean.ndim != 1 or mean.shape != std.shape or mean.size == 0:
                raise DataError(
                    f"per_feature normalization needs two 1-D arrays of one size, got {mean.shape}, {std.shape}"
                )
            if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()):
                raise DataError("per_feature normalization needs finite means and finite stds > 0")
            object.__setattr__(self, "mean", mean)
            object.__setattr__(self, "std", std)

    def check_features(self, n_features: int) -> None:
        """Raise DataError unless per-feature statistics have ``n_features`` entries."""
        if isinstance(self.mean, np.ndarray) and self.mean.shape != (n_features,):
            raise DataError(f"per_feature normalization has {self.mean.size} features, the model {n_features}")

    def apply(self, x: np.ndarray, dtype: np.dtype) -> np.ndarray:
        """(n, features) raw inputs -> (n, features) array of ``dtype``; math in float64.

        ``"global"`` is exactly `mlpkit.data.normalize.Normalizer.apply` (subtract, then divide,
        in float64, then one rounding), so a model trained on its output predicts the same.
        """
        out = np.empty(x.shape, dtype=dtype)
        for i in range(0, len(x), _BLOCK_ROWS):
            block = x[i : i + _BLOCK_ROWS].astype(np.float64)
            if self.mean is not None and self.std is not None:  # kind "none" has neither
                block -= self.mean
                block /= self.std
            out[i : i + _BLOCK_ROWS] = block
        return out

    def to_json(self) -> dict[str, Any]:
        """The JSON part (arrays of ``"per_feature"`` are stored as tensors, not here)."""
        if self.kind == "global":
            return {"kind": "global", "mean": self.mean, "std": self.std}
        return {"kind": self.kind}


def _finite_scalar(value: object) -> float | None:
    """``value`` as a float if it is a finite real number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


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
    """

    model: MLP
    normalization: Normalization
    classes: list[Any]
    input_shape: tuple[int, ...]
    dataset: str
    provenance: Provenance

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
