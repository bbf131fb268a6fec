"""``mlpkit evaluate``: a trained model's loss, accuracy, per-class figures and confusion matrix
on a data set's test part (or training part, or all of it).

Without ``--dataset`` the model is evaluated on its own data set, read again with the ``[data]``
table it was trained with, so a carved test part is exactly the rows training never saw. Labels
and input widths are checked before anything is computed: a bad data set costs one error line.
Rows go through the network in batches, so memory stays modest whatever the data set's size.
The result and its text, JSON and HTML forms are in `mlpkit.workflows.evaluation`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mlpkit.core.errors import ConfigError, InputError, MlpkitError
from mlpkit.data.dataset import Dataset
from mlpkit.runs.loaded_model import LoadedModel
from mlpkit.workflows.evaluation import Evaluation

__all__ = ["BATCH_ROWS", "SPLITS", "evaluate_model", "evaluate_arrays", "evaluation_dataset", "select_split"]

#: What ``--split`` chooses: the test part, the training part (all but the test part), both.
SPLITS = ("test", "train", "all")
#: Rows per batch through the network (`mlpkit.nn.mlp.MLP.evaluate`'s chunk size too, so the
#: loss is summed in the same order and equals it to the bit).
BATCH_ROWS = 8192
#: Keys of a model's ``[data]`` table that say how to read its data set again.
_DATA_KEYS = ("label_column", "labels", "test", "test_fraction")


# ------------------------------------------------------------------------ data


def _same_dataset(spec: str, own: str) -> bool:
    if spec == own:
        return True
    from mlpkit.data.registry import is_registered

    if is_registered(spec) or is_registered(own):
        return False
    return Path(spec).expanduser().resolve() == Path(own).expanduser().resolve()


def evaluation_dataset(
    model: LoadedModel,
    spec: str | None = None,
    *,
    data_dir: str | Path | None = None,
    label_column: str | None = None,
) -> Dataset:
    """The data set to evaluate ``model`` on, with its test part where it has one.

    Parameters
    ----------
    model : LoadedModel
        Its ``data`` table (or, for older files, its ``dataset`` name) is the default.
    spec : str or None
        None or the model's own data set: read as it was for training (the same carved test
        part). Another registered name: its test part (carved as `load_dataset` carves it).
        Another path: every row, no test part.
    data_dir : str, Path or None
        For the IDX family: the folder holding its files.
    label_column : str or None
        A CSV file's label column (default: the model's, else ``"label"``).

    Returns
    -------
    Dataset

    Raises
    ------
    ConfigError, DataError
        If the data set cannot be found or read (naming it).
    """
    from mlpkit.data.registry import is_registered, load_dataset

    data = dict(model.data or {})
    own = str(data.get("dataset") or model.dataset)
    if spec is None or _same_dataset(spec, own):
        kwargs = {k: data[k] for k in _DATA_KEYS if data.get(k) is not None}
        if label_column is not None:
            kwargs["label_column"] = label_column
        return load_dataset(own, data_dir=data_dir, **kwargs)
    column = label_column or str(data.get("label_column") or "label")
    if is_registered(spec):
        return load_dataset(spec, data_dir=data_dir, label_column=column)
    return load_dataset(spec, label_column=column, test_fraction=0)


def select_split(dataset: Dataset, split: str | None) -> tuple[str, list[tuple[np.ndarray, np.ndarray]]]:
    """``(split name, [(raw inputs, labels), ...])`` of the part of ``dataset`` that ``split`` names.

    ``split=None`` means ``"test"`` where the data set has a test part and ``"all"`` where it
    has none (another file given with ``--dataset``).

    Raises
    ------
    ConfigError
        For an unknown split, or ``"test"`` on a data set without a test part.
    """
    if split is None:
        split = "test" if dataset.has_test else "all"
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    train = (dataset.x_train, np.asarray(dataset.y_train))
    if not dataset.has_test:
        if split == "test":
            raise ConfigError(f"{dataset.name} has no test part; use --split all to evaluate every row")
        return split, [train]
    test = (np.asarray(dataset.x_test), np.asarray(dataset.y_test))
    return split, {"test": [test], "train": [train], "all": [train, test]}[split]


# ------------------------------------------------------------------ evaluating


def evaluate_arrays(
    model: LoadedModel,
    parts: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    name: str = "inputs",
    batch_rows: int = BATCH_ROWS,
) -> tuple[float, float, np.ndarray]:
    """``(mean cross-entropy, accuracy, confusion matrix)`` of ``model`` on raw inputs and labels.

    Every part is checked (width, labels among the model's classes) before any row is
    computed; then rows go through the network ``batch_rows`` at a time, normalized batch by
    batch, and the loss is summed as `mlpkit.nn.mlp.MLP.evaluate` sums it.

    Parameters
    ----------
    model : LoadedModel
        What is evaluated.
    parts : sequence of (np.ndarray, np.ndarray)
        Raw inputs (n, *input_shape) or (n, n_features) and their labels (of the model's type).
    name : str
        The data set's name, for error messages.
    batch_rows : int
        Rows per batch.

    Returns
    -------
    tuple of (float, float, np.ndarray)
        The confusion matrix is (K, K) int64, rows the true class, columns the predicted one.

    Raises
    ------
    InputError
        For inputs of the wrong width (naming ``name``, the width found and the model's) or none.
    DataError
        For labels the model does not know (naming them).
    """
    from mlpkit.data.prepare import class_index
    from mlpkit.nn.losses import cross_entropy_sum_and_hits

    net, k = model.model, len(model.classes)
    checked = []
    for x, y in parts:
        x = np.asarray(x)
        width = int(np.prod(x.shape[1:])) if x.ndim >= 2 else (x.shape[0] if x.ndim == 1 else 0)
        if width != net.n_features:
            raise InputError(
                f"{name}: inputs have {width} features, the model takes {net.n_features}"
                f" (input shape {tuple(model.input_shape)}, trained on {model.dataset})"
            )
        checked.append((x.reshape(len(x), -1), class_index(y, model.classes, what=f"{name} labels")))
    n = sum(len(y) for _, y in checked)
    if n == 0:
        raise InputError(f"{name}: no rows to evaluate")
    ws = net.workspace(min(n, batch_rows))
    total_loss, hits = 0.0, 0
    confusion = np.zeros((k, k), dtype=np.int64)
    for x, y in checked:
        for start in range(0, len(x), ws.capacity):
            try:
                xb = model.features(x[start : start + ws.capacity])
            except MlpkitError as exc:
                raise InputError(f"{name}: {exc}") from None
            yb = y[start : start + ws.capacity]
            if net.bias == "input_column":
                xb = net.prepare_inputs(xb)
            logits = net.forward(xb, ws)
            np.add.at(confusion, (yb, logits.argmax(axis=1)), 1)
            loss_sum, batch_hits = cross_entropy_sum_and_hits(logits, yb, scratch=ws.loss)
            total_loss += loss_sum
            hits += batch_hits
    return total_loss / n, hits / n, confusion


def evaluate_model(
    model_or_run: str | Path,
    *,
    dataset: str | None = None,
    split: str | None = None,
    data_dir: str | Path | None = None,
    label_column: str | None = None,
) -> Evaluation:
    """Evaluate a model file or run folder's model on a data set.

    Parameters
    ----------
    model_or_run : str or Path
        A model file or a run folder (see `mlpkit.workflows.predict.load_predictor`).
    dataset : str or None
        A registered name or a path; None: the model's own data set (see `evaluation_dataset`).
    split : {"test", "train", "all"} or None
        The part to evaluate; None: the test part, or every row of a data set without one.
    data_dir : str, Path or None
        For the IDX family: the folder holding its files.
    label_column : str or None
        A CSV file's label column.

    Returns
    -------
    Evaluation

    Raises
    ------
    MlpkitError
        One line naming the model, data set or file and the problem.
    """
    from mlpkit.workflows.predict import load_predictor

    if split is not None and split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    model = load_predictor(model_or_run)
    data = evaluation_dataset(model, dataset, data_dir=data_dir, label_column=label_column)
    chosen, parts = select_split(data, split)
    loss, accuracy, confusion = evaluate_arrays(model, parts, name=data.name)
    provenance = {"trained_on": model.dataset, **model.provenance.to_json()}
    return Evaluation(
        model=str(model_or_run),
        dataset=data.name,
        split=chosen,
        test_carved=data.test_carved,
        n=int(confusion.sum()),
        loss=loss,
        accuracy=accuracy,
        classes=[c.item() if isinstance(c, np.generic) else c for c in model.classes],
        confusion=confusion,
        provenance=provenance,
    )
