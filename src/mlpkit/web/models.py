"""The models a server answers with, by name, and one prediction with what the draw page shows:
the label, every class's probability, the 28x28 input as the model sees it, and the hidden
layers' activations.

A drawing goes through `mlpkit.workflows.predict.image_input`, the same preprocessing as
``mlpkit predict`` on an image file; ``pixels`` from a script are the model's raw input as they
are (MNIST's convention: 784 values 0..255, bright ink on black, row by row).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlpkit.core.errors import InputError, MlpkitError
from mlpkit.runs import schema
from mlpkit.runs.loaded_model import LoadedModel

__all__ = ["ModelSet", "UnknownModelError", "model_names"]


class UnknownModelError(InputError):
    """A request named a model the server has not loaded."""


def model_names(paths: Sequence[Path]) -> list[str]:
    """A short unique name per model path: a run folder's name or a file's stem (``-2``, ``-3``
    appended to repeats)."""
    names: list[str] = []
    for path in paths:
        base = re.sub(r"[^A-Za-z0-9._-]+", "-", path.name if path.is_dir() else path.stem).strip("-") or "model"
        name, i = base, 1
        while name in names:
            i += 1
            name = f"{base}-{i}"
        names.append(name)
    return names


@dataclass(frozen=True)
class ModelSet:
    """Loaded models by name, the first the default.

    Parameters
    ----------
    models : dict of str to LoadedModel
        In the order the user gave them.
    """

    models: dict[str, LoadedModel]

    @classmethod
    def load(cls, paths: Sequence[str | Path]) -> ModelSet:
        """Every model file or run folder in ``paths`` (`mlpkit.workflows.predict.load_predictor`).

        Raises
        ------
        MlpkitError
            Naming the first path that is not a model file or finished run folder.
        """
        from mlpkit.workflows.predict import load_predictor

        resolved = [Path(p) for p in paths]
        return cls({name: load_predictor(p) for name, p in zip(model_names(resolved), resolved)})

    @classmethod
    def from_runs(cls, root: Path, *, limit: int = 20) -> ModelSet:
        """The models of the newest ``limit`` run folders under ``root`` that hold a model file;
        folders whose model cannot be read are left out (the runs page still lists them)."""
        from mlpkit.runs.model_file import load_model

        folders = [p for p in root.iterdir() if (p / schema.MODEL).is_file()] if root.is_dir() else []
        folders.sort(key=lambda p: (p / schema.MODEL).stat().st_mtime, reverse=True)
        models: dict[str, LoadedModel] = {}
        for folder, name in zip(folders[:limit], model_names(folders[:limit])):
            try:
                models[name] = load_model(folder / schema.MODEL)
            except MlpkitError:
                continue
        return cls(models)

    def get(self, name: str | None) -> tuple[str, LoadedModel]:
        """``(name, model)``; None: the default (first) one.

        Raises
        ------
        UnknownModelError
            If no model is loaded, or none has that name.
        """
        if not self.models:
            raise UnknownModelError("no model is loaded (give mlpkit serve a model file or run folder)")
        if name is None:
            name = next(iter(self.models))
        if name not in self.models:
            raise UnknownModelError(f"unknown model {name[:80]!r}; loaded: {', '.join(self.models)}")
        return name, self.models[name]

    def describe(self) -> list[dict[str, Any]]:
        """Name, data set, classes, input shape and layer widths of each model (for pages and scripts)."""
        return [
            {
                "name": name,
                "dataset": m.dataset,
                "classes": [_plain(c) for c in m.classes],
                "input_shape": list(m.input_shape),
                "hidden": list(m.model.hidden),
                "takes_images": m.preprocess != "none",
            }
            for name, m in self.models.items()
        ]


def predict_one(model: LoadedModel, raw: np.ndarray) -> dict[str, Any]:
    """The answer for one raw input (``model.input_shape``): label, probabilities (class order),
    and each hidden layer's activations (one forward pass, the model's own code).

    Raises
    ------
    InputError
        If the input does not fit the model.
    """
    from mlpkit.nn.losses import softmax

    net = model.model
    x = net.prepare_inputs(model.features(raw))
    ws = net.workspace(1)
    logits = net.forward(x, ws)
    hidden = [np.asarray(a[0], dtype=np.float64) for a in ws.rows(1).outputs[:-1]]
    proba = softmax(np.array(logits))[0].astype(np.float64)  # the model's dtype, as predict_proba
    best = int(np.argmax(proba))
    return {
        "label": _plain(model.classes[best]),
        "probabilities": np.round(proba, 6).tolist(),
        "classes": [_plain(c) for c in model.classes],
        "activations": [np.round(layer, 4).tolist() for layer in hidden],
    }


def _plain(label: Any) -> Any:
    return label.item() if isinstance(label, np.generic) else label
