"""One model file (``.safetensors``): a trained network and everything needed to use it.

The container is safetensors: the tensors (named as `MLP.state_dict` names them) after a JSON
header, whose ``__metadata__`` holds one entry, ``mlpkit.model``, the JSON document of the
architecture, normalization, class labels, input shape, data set and provenance. It is a
standard format (readable by any safetensors reader, no code executed on load, offsets and
sizes checked by its reader) and, unlike a run folder, the file is self-contained: loading
trusts no side file, and validates every field against the tensors present.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlpkit.core.errors import CheckpointError, MlpkitError
from mlpkit.core.fileio import atomic_write_bytes
from mlpkit.nn.mlp import BIAS_MODES, DTYPES
from mlpkit.runs.loaded_model import (
    NORMALIZATION_KINDS,
    PREPROCESS_KINDS,
    LoadedModel,
    Normalization,
    Provenance,
    config_digest,
    default_preprocess,
)

if TYPE_CHECKING:
    from mlpkit.nn.mlp import MLP

__all__ = ["MODEL_FORMAT", "load_model", "model_from_run", "save_model"]

MODEL_FORMAT = "mlpkit-model"
VERSION = 1
META_KEY = "mlpkit.model"
_NORM_TENSORS = ("normalization.mean", "normalization.std")
MAX_MODEL_BYTES = 4 << 30  # a bigger file is refused before it is read
_MAX_HEADER_BYTES = 100 << 20  # safetensors' own limit on the JSON header


def save_model(
    model: MLP,
    path: str | Path,
    *,
    normalization: Normalization,
    classes: Sequence[Any],
    input_shape: Sequence[int],
    dataset: str,
    provenance: Provenance | None = None,
    preprocess: str | None = None,
    data: dict[str, Any] | None = None,
) -> Path:
    """Atomically write ``model`` and what it needs to classify raw inputs to one file.

    The document is checked as `load_model` checks it before anything is written, so every file
    written can be read back.

    Parameters
    ----------
    model : MLP
        The trained network.
    path : str or Path
        The file to write (``.safetensors`` by convention).
    normalization : Normalization
        What its raw inputs go through first.
    classes : sequence
        The label of each output, in order: ``model.n_classes`` distinct ints or strings.
    input_shape : sequence of int
        The shape of one raw input; its product must be ``model.n_features``.
    dataset : str
        The name of the data set it was trained on.
    provenance : Provenance or None
        Version, config digest, time; None for this mlpkit, now, and no config.
    preprocess : {"mnist", "resize", "none"} or None
        How ``predict`` reads image files for it; None: the default for ``input_shape``
        (`mlpkit.runs.loaded_model.default_preprocess`).
    data : dict or None
        The ``[data]`` table it was trained with (plain JSON), for ``evaluate``.

    Returns
    -------
    Path

    Raises
    ------
    CheckpointError
        If a field does not fit the model (naming it).
    """
    from safetensors.numpy import save

    path = Path(path)
    provenance = provenance or Provenance()
    doc = {
        "format": MODEL_FORMAT,
        "version": VERSION,
        "architecture": {
            "hidden": list(model.hidden),
            "activation": model.activation.name,
            "bias": model.bias,
            "dtype": model.dtype.name,
            "n_features": model.n_features,
            "n_classes": model.n_classes,
        },
        "normalization": normalization.to_json(),
        "classes": [c.item() if isinstance(c, np.generic) else c for c in classes],
        "input_shape": [int(s) for s in input_shape],
        "dataset": dataset,
        "provenance": provenance.to_json(),
        "preprocess": preprocess or default_preprocess(tuple(int(s) for s in input_shape)),
    }
    if data is not None:
        doc["data"] = data
    tensors = {name: np.ascontiguousarray(p) for name, p in zip(model.parameter_names(), model.parameters())}
    if normalization.kind == "per_feature":
        tensors.update(zip(_NORM_TENSORS, (np.asarray(normalization.mean), np.asarray(normalization.std))))
    try:
        text = json.dumps(doc, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"model file {path}: metadata is not plain JSON: {exc}") from None
    _build(json.loads(text), tensors, path)  # the reader's checks, before writing
    return atomic_write_bytes(path, save(tensors, metadata={META_KEY: text}))


def load_model(path: str | Path) -> LoadedModel:
    """Read a model file written by `save_model`, trusting nothing in it.

    Parameters
    ----------
    path : str or Path
        The ``.safetensors`` file.

    Returns
    -------
    LoadedModel
        Predicting exactly as the saved model did.

    Raises
    ------
    CheckpointError
        Naming the file, if it is missing, truncated, corrupt, not an mlpkit model, or its
        metadata does not fit its tensors (shapes, dtype, finite values, known kinds).
    """
    path = Path(path)
    data = _read_bytes(path)
    doc = _metadata(data, path)
    from safetensors.numpy import load

    try:
        tensors = load(data)
    except Exception as exc:  # safetensors raises its own SafetensorError and others on bad bytes
        raise CheckpointError(f"model file {path} is corrupt: {exc}") from None
    return _build(doc, tensors, path)


def model_from_run(run_dir: str | Path) -> LoadedModel:
    """The model of a finished run folder (``weights.npz``, ``metrics.json``, ``config.toml``).

    The run's normalization is the metrics' (checked against the one the weights file
    records); its classes are 0..n_classes-1, its input shape MNIST's 28x28 when it has 784
    features; the provenance digests the run's config.

    Parameters
    ----------
    run_dir : str or Path
        A committed run folder (`mlpkit.runs.folder.load_run`).

    Returns
    -------
    LoadedModel

    Raises
    ------
    MlpkitError
        Naming the file, if the run is incomplete or a file is unreadable or inconsistent.
    """
    from mlpkit.runs import schema
    from mlpkit.runs.config import from_dict
    from mlpkit.runs.folder import load_run
    from mlpkit.runs.weights import load_weights

    run = load_run(run_dir)
    model, meta = load_weights(run.path / schema.WEIGHTS, config=from_dict(run.config))
    if meta.get("normalization", "global") != "global":
        raise CheckpointError(
            f"run {run.path}: its {meta.get('normalization')} normalization is kept only in {schema.MODEL},"
            f" which is missing; {schema.WEIGHTS} alone cannot rebuild the model"
        )
    stats = run.metrics.get("normalization") or {}
    if (stats.get("mean"), stats.get("std")) != (meta["mean"], meta["std"]):
        raise CheckpointError(
            f"run {run.path}: normalization in {schema.METRICS} ({stats.get('mean')}, {stats.get('std')})"
            f" differs from {schema.WEIGHTS}'s ({meta['mean']}, {meta['std']})"
        )
    shape = (28, 28) if model.n_features == 28 * 28 else (model.n_features,)
    return LoadedModel(
        model=model,
        normalization=Normalization("global", meta["mean"], meta["std"]),
        classes=list(range(model.n_classes)),
        input_shape=shape,
        dataset=str(run.config.get("data", {}).get("dataset", "mnist")),
        provenance=Provenance(config_digest=config_digest(run.config)),
    )


# ------------------------------------------------------------------------------- reading


def _read_bytes(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_MODEL_BYTES:
            raise CheckpointError(f"model file {path} is {size} bytes, over the {MAX_MODEL_BYTES} mlpkit reads")
        return path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"model file {path} is unreadable: {exc.strerror or exc}") from None


def _metadata(data: bytes, path: Path) -> dict[str, Any]:
    """The ``mlpkit.model`` document of the safetensors header, parsed."""
    if len(data) < 8:
        raise CheckpointError(f"model file {path} is truncated or not a safetensors file ({len(data)} bytes)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > _MAX_HEADER_BYTES or 8 + n > len(data):
        raise CheckpointError(f"model file {path} is truncated or not a safetensors file (header of {n} bytes)")
    try:
        header = json.loads(data[8 : 8 + n].decode("utf-8"))
        text = header["__metadata__"][META_KEY]
        doc = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError, KeyError, TypeError) as exc:
        raise CheckpointError(
            f"model file {path} is not an mlpkit model file (no readable {META_KEY} metadata: {exc!r})"
        ) from None
    if not isinstance(doc, dict):
        raise CheckpointError(f"model file {path}: {META_KEY} metadata is not a JSON object")
    return doc


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _build(doc: dict[str, Any], tensors: dict[str, np.ndarray], path: Path) -> LoadedModel:
    """Check ``doc`` field by field against ``tensors`` and build the model from them."""
    from mlpkit.nn.mlp import MLP

    def fail(why: str) -> CheckpointError:
        return CheckpointError(f"model file {path}: {why}")

    if doc.get("format") != MODEL_FORMAT:
        raise fail(f"format is {doc.get('format')!r}, not {MODEL_FORMAT!r}: not an mlpkit model file")
    if doc.get("version") != VERSION:
        raise fail(f"version {doc.get('version')!r}, this mlpkit reads {VERSION}")
    arch = doc.get("architecture")
    if not isinstance(arch, dict):
        raise fail("architecture is missing")
    hidden = arch.get("hidden")
    if not isinstance(hidden, list) or not hidden or not all(_positive_int(h) for h in hidden):
        raise fail(f"architecture.hidden must be a list of positive integers, got {hidden!r}")
    for key in ("n_features", "n_classes"):
        if not _positive_int(arch.get(key)):
            raise fail(f"architecture.{key} must be a positive integer, got {arch.get(key)!r}")
    if arch.get("dtype") not in DTYPES:
        raise fail(f"architecture.dtype must be one of {', '.join(DTYPES)}, got {arch.get('dtype')!r}")
    if arch.get("bias") not in BIAS_MODES:
        raise fail(f"architecture.bias must be one of {', '.join(BIAS_MODES)}, got {arch.get('bias')!r}")
    if not isinstance(arch.get("activation"), str):
        raise fail(f"architecture.activation must be a name, got {arch.get('activation')!r}")
    n_features, n_classes, dtype = arch["n_features"], arch["n_classes"], np.dtype(arch["dtype"])
    normalization = _normalization(doc.get("normalization"), tensors, n_features, fail)
    _check_weights(arch, tensors, fail)
    classes = doc.get("classes")
    if not isinstance(classes, list) or len(classes) != n_classes:
        raise fail(f"classes must list {n_classes} labels, got {classes!r}"[:300])
    if not all(isinstance(c, str) or (isinstance(c, int) and not isinstance(c, bool)) for c in classes):
        raise fail("classes must be integers or strings")
    if len({(type(c), c) for c in classes}) != len(classes):
        raise fail("classes are not distinct")
    shape = doc.get("input_shape")
    if not isinstance(shape, list) or not shape or not all(_positive_int(s) for s in shape):
        raise fail(f"input_shape must be a list of positive integers, got {shape!r}")
    if int(np.prod(shape)) != n_features:
        raise fail(f"input_shape {shape} does not hold the model's {n_features} features")
    dataset = doc.get("dataset")
    if not isinstance(dataset, str) or not dataset:
        raise fail(f"dataset must be a non-empty name, got {dataset!r}")
    provenance = _provenance(doc.get("provenance"), fail)
    preprocess = doc.get("preprocess", default_preprocess(tuple(shape)))
    if preprocess not in PREPROCESS_KINDS:
        raise fail(f"preprocess must be one of {', '.join(PREPROCESS_KINDS)}, got {preprocess!r}")
    data = doc.get("data")
    if data is not None and not isinstance(data, dict):
        raise fail(f"data must be a table of the training data's settings, got {data!r}"[:300])
    try:
        model = MLP(hidden, n_features=n_features, n_classes=n_classes, activation=arch["activation"],
                    bias=arch["bias"], dtype=dtype)  # fmt: skip
        model.load_state_dict({n: tensors[n] for n in model.parameter_names()})
    except MlpkitError as exc:
        raise fail(f"describes a model mlpkit cannot build: {exc}") from None
    return LoadedModel(model, normalization, classes, tuple(shape), dataset, provenance, preprocess, data)


def _check_weights(arch: dict[str, Any], tensors: dict[str, np.ndarray], fail: Any) -> None:
    """Exactly the parameters the architecture has, with its shapes and dtype, all finite."""
    per_layer = arch["bias"] == "per_layer"
    sizes = [arch["n_features"] + (0 if per_layer else 1), *arch["hidden"], arch["n_classes"]]
    expected: dict[str, tuple[int, ...]] = {}
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        expected[f"layers.{i}.weight"] = (fan_in, fan_out)
        if per_layer:
            expected[f"layers.{i}.bias"] = (fan_out,)
    names = set(tensors) - set(_NORM_TENSORS)
    if names != set(expected):
        raise fail(
            f"tensors do not fit the architecture: missing {sorted(set(expected) - names)},"
            f" unexpected {sorted(names - set(expected))}"
        )
    for name, shape in expected.items():
        t = tensors[name]
        if t.shape != shape:
            raise fail(f"{name} has shape {t.shape}, the architecture needs {shape}")
        if t.dtype != np.dtype(arch["dtype"]):
            raise fail(f"{name} is {t.dtype}, the architecture says {arch['dtype']}")
        if not np.isfinite(t).all():
            raise fail(f"{name} holds NaN or infinite values; refused")


def _normalization(raw: Any, tensors: dict[str, np.ndarray], n_features: int, fail: Any) -> Normalization:
    if not isinstance(raw, dict) or raw.get("kind") not in NORMALIZATION_KINDS:
        kind = raw.get("kind") if isinstance(raw, dict) else raw
        raise fail(f"normalization kind must be one of {', '.join(NORMALIZATION_KINDS)}, got {kind!r}")
    kind = raw["kind"]
    has = [n for n in _NORM_TENSORS if n in tensors]
    if (kind == "per_feature") != bool(has) or (has and len(has) != 2):
        raise fail(f"normalization {kind!r} does not fit the tensors {has}")
    try:
        if kind == "global":
            norm = Normalization("global", raw.get("mean"), raw.get("std"))
        elif kind == "per_feature":
            mean, std = tensors[_NORM_TENSORS[0]], tensors[_NORM_TENSORS[1]]
            if mean.dtype != np.float64 or std.dtype != np.float64:
                raise fail(f"normalization tensors must be float64, got {mean.dtype}, {std.dtype}")
            norm = Normalization("per_feature", mean, std)
        else:
            norm = Normalization("none")
        norm.check_features(n_features)
    except MlpkitError as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise fail(f"normalization: {exc}") from None
    return norm


def _provenance(raw: Any, fail: Any) -> Provenance:
    if not isinstance(raw, dict):
        raise fail("provenance is missing")
    version, digest, created = raw.get("mlpkit_version"), raw.get("config_digest"), raw.get("created")
    if not isinstance(version, str) or not isinstance(created, str):
        raise fail("provenance must name the mlpkit version and the creation time")
    if digest is not None and not (isinstance(digest, str) and len(digest) == 64 and
                                   all(c in "0123456789abcdef" for c in digest)):  # fmt: skip
        raise fail(f"provenance.config_digest must be a sha256 hex digest, got {digest!r}")
    return Provenance(mlpkit_version=version, config_digest=digest, created=created)
