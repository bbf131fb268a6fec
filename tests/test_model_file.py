"""The one model file: round trip bit for bit, every field validated, corrupt files refused."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from mlpkit.core.errors import CheckpointError, DataError, InputError
from mlpkit.data.normalize import Normalizer
from mlpkit.nn.mlp import MLP
from mlpkit.runs.loaded_model import LoadedModel, Normalization, Provenance, config_digest
from mlpkit.runs.model_file import META_KEY, load_model, save_model


def _model(bias: str = "input_column", dtype: str = "float32", n_features: int = 12, n_classes: int = 3) -> MLP:
    model = MLP([7, 5], n_features=n_features, n_classes=n_classes, activation="tanh", bias=bias, dtype=dtype)
    model.init_weights(np.random.default_rng(3), "fan_in_normal")
    if model.biases is not None:
        for b in model.biases:
            b[...] = np.random.default_rng(4).normal(size=b.shape)
    return model


def _save(tmp_path, model=None, **kw):
    model = model or _model()
    fields = {
        "normalization": Normalization("global", 33.3, 78.5),
        "classes": ["cat", "dog", "eel"],
        "input_shape": [3, 4],
        "dataset": "pets",
        "provenance": Provenance.for_config({"model": {"hidden": [7, 5]}}),
    }
    fields.update(kw)
    return save_model(model, tmp_path / "m.safetensors", **fields), model


@pytest.mark.parametrize("bias", ["input_column", "per_layer"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip_predicts_bit_identically(tmp_path, bias, dtype):
    path, model = _save(tmp_path, _model(bias, dtype))
    loaded = load_model(path)
    raw = np.random.default_rng(0).uniform(0, 255, size=(50, 12))
    # the saved model, fed as training fed it: Normalizer.apply then prepared inputs
    x = Normalizer(33.3, 78.5).apply(raw, model.dtype, bias_column=bias == "input_column")
    expected = model.predict_proba(x, prepared=True)
    got = loaded.predict_proba(raw)
    assert got.dtype == model.dtype and np.array_equal(got, expected)
    assert list(loaded.predict(raw)) == [["cat", "dog", "eel"][i] for i in expected.argmax(axis=1)]
    assert np.array_equal(loaded.predict_proba(raw.reshape(50, 3, 4)), expected)  # input_shape accepted
    for name, p in model.state_dict().items():
        assert np.array_equal(loaded.model.state_dict()[name], p)
    assert (loaded.model.hidden, loaded.model.bias, loaded.model.dtype) == ([7, 5], bias, np.dtype(dtype))
    assert loaded.input_shape == (3, 4) and loaded.dataset == "pets"
    assert loaded.provenance.config_digest == config_digest({"model": {"hidden": [7, 5]}})


def test_file_is_standard_safetensors_with_json_metadata(tmp_path):
    from safetensors import safe_open

    path, model = _save(tmp_path)
    with safe_open(str(path), framework="numpy") as f:
        assert sorted(f.keys()) == sorted(model.parameter_names())
        doc = json.loads(f.metadata()[META_KEY])
    assert doc["architecture"] == {
        "hidden": [7, 5], "activation": "tanh", "bias": "input_column", "dtype": "float32",
        "n_features": 12, "n_classes": 3,
    }  # fmt: skip
    assert doc["normalization"] == {"kind": "global", "mean": 33.3, "std": 78.5}
    assert doc["provenance"]["mlpkit_version"] and doc["provenance"]["created"]


def test_per_feature_and_none_normalizations(tmp_path):
    mean, std = np.linspace(0, 1, 12), np.linspace(1, 2, 12)
    path, model = _save(tmp_path, normalization=Normalization("per_feature", mean, std), classes=[3, 1, 7])
    loaded = load_model(path)
    raw = np.random.default_rng(1).normal(size=(9, 12))
    assert np.array_equal(loaded.normalization.mean, mean) and np.array_equal(loaded.normalization.std, std)
    expected = model.predict_proba(((raw - mean) / std).astype(np.float32))
    assert np.array_equal(loaded.predict_proba(raw), expected)
    assert set(loaded.predict(raw)) <= {3, 1, 7}
    path, model = _save(tmp_path, normalization=Normalization("none"))
    assert np.array_equal(load_model(path).predict_proba(raw), model.predict_proba(raw))


def test_config_digest_is_canonical():
    assert config_digest({"a": 1, "b": [1, 2]}) == config_digest({"b": [1, 2], "a": 1})
    assert config_digest({"a": 1}) != config_digest({"a": 2})
    assert len(config_digest({})) == 64


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"classes": [0, 1]}, "classes must list 3"),
        ({"classes": [0, 1, 1]}, "not distinct"),
        ({"classes": [0.5, 1, 2]}, "integers or strings"),
        ({"input_shape": [5, 5]}, "does not hold"),
        ({"dataset": ""}, "dataset"),
    ],
)
def test_save_refuses_fields_that_do_not_fit(tmp_path, kw, match):
    with pytest.raises(CheckpointError, match=match):
        _save(tmp_path, **kw)
    assert not (tmp_path / "m.safetensors").exists()


def test_normalization_kinds_are_checked():
    with pytest.raises(DataError, match="unknown normalization kind"):
        Normalization("minmax")
    with pytest.raises(DataError, match="std > 0"):
        Normalization("global", 1.0, 0.0)
    with pytest.raises(DataError, match="finite"):
        Normalization("per_feature", np.zeros(3), np.array([1.0, np.nan, 1.0]))


def _rewrite(path, edit):
    """Rewrite the file with its metadata document edited by ``edit`` (tensors kept)."""
    from safetensors.numpy import load, save

    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    doc = json.loads(json.loads(data[8 : 8 + n])["__metadata__"][META_KEY])
    tensors = load(data)
    doc, tensors = edit(doc, tensors) or (doc, tensors)
    path.write_bytes(save(tensors, metadata={META_KEY: json.dumps(doc)}))


def _set(key, value):
    def edit(doc, tensors):
        target = doc
        *parents, last = key.split(".")
        for p in parents:
            target = target[p]
        target[last] = value

    return edit


@pytest.mark.parametrize(
    "edit, match",
    [
        (_set("format", "other"), "not an mlpkit model"),
        (_set("version", 99), "version 99"),
        (_set("architecture.hidden", [7, 6]), "shape"),
        (_set("architecture.hidden", [7]), "unexpected"),
        (_set("architecture.dtype", "float64"), "is float32"),
        (_set("architecture.dtype", "int8"), "dtype must be"),
        (_set("architecture.bias", "per_layer"), "missing"),
        (_set("architecture.activation", "nope"), "cannot build"),
        (_set("architecture.n_classes", 0), "positive integer"),
        (_set("normalization", {"kind": "minmax"}), "normalization kind"),
        (_set("normalization", {"kind": "global", "mean": 1, "std": -1}), "std > 0"),
        (_set("normalization", {"kind": "per_feature"}), "does not fit the tensors"),
        (_set("input_shape", [3, "4"]), "input_shape"),
        (_set("provenance", {"mlpkit_version": "0", "created": "x", "config_digest": "abc"}), "sha256"),
        (_set("provenance", None), "provenance is missing"),
        (lambda d, t: (d, {**t, "layers.0.weight": np.full((13, 7), np.nan, np.float32)}), "NaN"),
        (lambda d, t: (d, {**t, "layers.0.weight": t["layers.0.weight"].astype(np.float64)}), "is float64"),
    ],
)
def test_load_refuses_metadata_that_does_not_fit(tmp_path, edit, match):
    path, _ = _save(tmp_path)
    _rewrite(path, edit)
    with pytest.raises(CheckpointError, match=match) as info:
        load_model(path)
    assert str(path) in str(info.value)


def test_corrupt_truncated_and_foreign_files_are_one_error_naming_them(tmp_path):
    path, _ = _save(tmp_path)
    data = path.read_bytes()
    cases = {
        "truncated": data[: len(data) - 10],
        "header-cut": data[:20],
        "tiny": b"abc",
        "zip": b"PK\x03\x04" + bytes(100),
        "garbage-header": struct.pack("<Q", 5) + b"{{{{{" + bytes(10),
        "huge-header": struct.pack("<Q", 1 << 40) + bytes(10),
    }
    from safetensors.numpy import save

    cases["foreign"] = save({"w": np.zeros(3, np.float32)}, metadata={"other": "x"})
    for name, blob in cases.items():
        bad = tmp_path / f"{name}.safetensors"
        bad.write_bytes(blob)
        with pytest.raises(CheckpointError) as info:
            load_model(bad)
        assert str(bad) in str(info.value), name
    with pytest.raises(CheckpointError, match="unreadable"):
        load_model(tmp_path / "missing.safetensors")


def test_loaded_model_checks_input_shape(tmp_path):
    loaded = load_model(_save(tmp_path)[0])
    assert isinstance(loaded, LoadedModel)
    assert loaded.predict(np.zeros((3, 4))).shape == (1,)  # one input of input_shape
    with pytest.raises(InputError, match=r"\(n, 3, 4\) or \(n, 12\)"):
        loaded.predict(np.zeros((2, 11)))
    with pytest.raises(InputError, match="NaN"):
        loaded.predict(np.full((2, 12), np.nan))


def test_public_names_are_lazy():
    import mlpkit
    import mlpkit.runs

    assert mlpkit.save_model is save_model and mlpkit.load_model is load_model
    assert mlpkit.runs.model_from_run.__name__ == "model_from_run"


def test_model_from_run_predicts_as_the_run_did_and_saves(tmp_path, mnist_path):
    from mlpkit.data.mnist import load_mnist
    from mlpkit.runs import schema
    from mlpkit.runs.folder import load_run
    from mlpkit.runs.model_file import model_from_run
    from mlpkit.workflows.configs import resolve_config
    from mlpkit.workflows.experiment import run_experiment

    small = ["epochs=1", "n_train=640", "data.n_val=300"]
    out = tmp_path / "run"
    run_experiment(resolve_config("task3c", small), out, data_dir=mnist_path, progress=False, log=lambda *_: None)
    loaded = model_from_run(out)
    run = load_run(out)
    assert loaded.classes == list(range(10)) and loaded.input_shape == (28, 28)
    assert loaded.provenance.config_digest == config_digest(run.config)
    stored = run.predictions()
    assert stored is not None
    test_images = load_mnist(mnist_path, download=False).test_images
    proba = loaded.predict_proba(test_images[: len(stored["proba"])])
    assert np.array_equal(proba.argmax(axis=1), stored["y_pred"])
    assert np.array_equal(proba, stored["proba"])  # bit for bit: the same normalization and forward pass
    path = save_model(loaded.model, tmp_path / "m.safetensors", normalization=loaded.normalization,
                      classes=loaded.classes, input_shape=loaded.input_shape, dataset=loaded.dataset,
                      provenance=loaded.provenance)  # fmt: skip
    assert np.array_equal(load_model(path).predict_proba(test_images[:100]), proba[:100])
    metrics = json.loads((out / schema.METRICS).read_text())
    metrics["normalization"]["std"] += 1.0
    (out / schema.METRICS).write_text(json.dumps(metrics))
    with pytest.raises(CheckpointError, match="normalization in metrics.json"):
        model_from_run(out)
