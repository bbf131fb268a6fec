"""``mlpkit predict``: a trained model's labels for image files and batches of feature rows.

Every input is read and checked before anything is predicted, so a bad file costs one error
line and no partial output. Images go through MNIST's own preprocessing
(`mlpkit.data.images.mnist_style`) when the model takes 28x28 inputs; batches are raw
feature rows, normalized by the model itself (`mlpkit.runs.loaded_model.LoadedModel`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlpkit.core.errors import InputError, MlpkitError
from mlpkit.runs.loaded_model import LoadedModel

__all__ = [
    "BATCH_SUFFIXES",
    "IMAGE_SUFFIXES",
    "Prediction",
    "format_json",
    "format_text",
    "image_input",
    "load_predictor",
    "predict_files",
    "read_inputs",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
BATCH_SUFFIXES = (".npy", ".npz", ".csv")


@dataclass(frozen=True)
class Prediction:
    """One input's result: its file, its row (batches only), and the top labels with their
    probabilities, most probable first."""

    file: str
    row: int | None
    top: list[tuple[Any, float]]

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"file": self.file}
        if self.row is not None:
            doc["row"] = self.row
        doc.update(label=self.top[0][0], probability=self.top[0][1], top=[[lbl, p] for lbl, p in self.top])
        return doc


def load_predictor(model_or_run: str | Path) -> LoadedModel:
    """A model file, or a run folder's model (its ``model.safetensors``; for older folders
    without one, rebuilt from its weights with `mlpkit.runs.model_file.model_from_run`).

    Raises
    ------
    MlpkitError
        Naming the path, if it is missing or not a model file or run folder.
    """
    from mlpkit.runs import schema
    from mlpkit.runs.model_file import load_model, model_from_run

    path = Path(model_or_run)
    if path.is_dir():
        return load_model(path / schema.MODEL) if (path / schema.MODEL).is_file() else model_from_run(path)
    if not path.exists():
        raise InputError(f"{path}: no such model file or run folder")
    return load_model(path)


def read_inputs(model: LoadedModel, path: Path) -> tuple[np.ndarray, bool]:
    """``(raw inputs (n, n_features), is_batch)`` of one file, checked against ``model``.

    Raises
    ------
    MlpkitError
        Naming the file, if it is missing, unreadable, or its rows have the wrong width.
    """
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in BATCH_SUFFIXES:
        x, batch = _read_batch(path, suffix), True
    elif suffix not in IMAGE_SUFFIXES and _looks_like_idx(path):
        x, batch = _read_idx_batch(path), True
    else:
        x, batch = _read_image(model, path), False
    try:
        model.features(x)  # shape and values checked here, once per file, before any prediction
    except MlpkitError as exc:
        raise InputError(f"{path}: {exc}") from None
    return x, batch


def _read_batch(path: Path, suffix: str) -> np.ndarray:
    try:
        if suffix == ".npy":
            x = np.load(path, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                if "x" not in archive.files:
                    raise InputError(f"{path}: no array 'x' (it holds {', '.join(archive.files) or 'nothing'})")
                x = archive["x"]
        else:
            x = _read_csv(path)
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(f"{path}: unreadable {suffix[1:]} file: {exc}") from None
    x = np.asarray(x)
    return x.reshape(1, -1) if x.ndim == 1 else x


def _looks_like_idx(path: Path) -> bool:
    """IDX magic (two zero bytes, type 0x08 = uint8) or gzip's, by the first bytes, not the name."""
    try:
        with path.open("rb") as f:
            head = f.read(4)
    except OSError as exc:
        raise InputError(f"{path}: unreadable: {exc.strerror or exc}") from None
    return head[:2] == b"\x1f\x8b" or (len(head) == 4 and head[:3] == b"\x00\x00\x08")


def _read_idx_batch(path: Path) -> np.ndarray:
    """An IDX file of inputs (n, ...) as a batch, read by the strict reader."""
    from mlpkit.data.idx import read_idx

    try:
        x = read_idx(path)
    except MlpkitError as exc:
        raise InputError(f"{path}: not a readable IDX file of inputs: {exc}") from None
    return x.reshape(1, -1) if x.ndim == 1 else x


def _read_csv(path: Path) -> np.ndarray:
    """Rows of numbers separated by commas; one header line of names is skipped."""
    try:
        return np.loadtxt(path, delimiter=",", ndmin=2, dtype=np.float64)
    except ValueError:
        return np.loadtxt(path, delimiter=",", ndmin=2, dtype=np.float64, skiprows=1)


def _read_image(model: LoadedModel, path: Path) -> np.ndarray:
    from mlpkit.data.images import load_image

    _check_takes_images(model, str(path))
    return image_input(model, load_image(path), name=str(path))[None]


def _check_takes_images(model: LoadedModel, name: str) -> None:
    if model.preprocess == "none":
        raise InputError(
            f"{name}: this model takes rows of {model.model.n_features} values ({model.dataset}), not images;"
            " give a .npy, .npz or .csv batch"
        )


def image_input(model: LoadedModel, pixels: np.ndarray, *, name: str = "image") -> np.ndarray:
    """One picture (H, W) of grayscale pixels 0..255 as ``model``'s raw input (its ``input_shape``):
    MNIST's own preprocessing (`mlpkit.data.images.mnist_style`) or a plain resize, as the
    model's ``preprocess`` says. ``predict`` and the web app's drawings both come through here.

    Raises
    ------
    MlpkitError
        Naming the picture, if the model takes no images, or the picture is blank or not 2-D.
    """
    from mlpkit.data.images import mnist_style, resize_gray

    _check_takes_images(model, name)
    if model.preprocess == "mnist":
        return mnist_style(pixels, name=name)
    return resize_gray(pixels, model.input_shape)


def predict_files(model: LoadedModel, files: Sequence[str | Path], *, top: int = 1) -> list[Prediction]:
    """The ``top`` labels of every input in ``files`` (each row of a batch), in order.

    Parameters
    ----------
    model : LoadedModel
        What predicts.
    files : sequence of str or Path
        Image files (PNG, JPEG, BMP, GIF) and batches (``.npy``, ``.npz`` with array ``x``,
        ``.csv``, an IDX file of inputs such as MNIST's ``t10k-images-idx3-ubyte[.gz]``) of raw
        feature rows.
    top : int
        How many labels to give per input (at most the number of classes).

    Returns
    -------
    list of Prediction

    Raises
    ------
    MlpkitError
        Naming the file, for the first input that cannot be read; nothing is predicted then.
    """
    if top < 1:
        raise InputError(f"--top must be at least 1, got {top}")
    inputs = [(str(f), *read_inputs(model, Path(f))) for f in files]
    k = min(top, len(model.classes))
    out: list[Prediction] = []
    for name, x, batch in inputs:
        proba = model.predict_proba(x).astype(np.float64)
        order = np.argsort(-proba, axis=1, kind="stable")[:, :k]
        for row, (p, idx) in enumerate(zip(proba, order)):
            labels = [(_plain(model.classes[i]), float(p[i])) for i in idx]
            out.append(Prediction(name, row if batch else None, labels))
    return out


def _plain(label: Any) -> Any:
    return label.item() if isinstance(label, np.generic) else label


def format_text(predictions: Sequence[Prediction]) -> str:
    """One line per input: ``FILE[ROW]: LABEL (P)``, then the other top labels."""
    lines = []
    for pred in predictions:
        where = pred.file if pred.row is None else f"{pred.file}[{pred.row}]"
        lines.append(f"{where}: " + ", ".join(f"{label} ({p:.4f})" for label, p in pred.top))
    return "\n".join(lines)


def format_json(predictions: Sequence[Prediction]) -> str:
    """One JSON document: a list of ``{"file", "row"?, "label", "probability", "top"}``."""
    return json.dumps([p.to_json() for p in predictions], indent=1)
