"""mlpkit.runs read side: a real run folder read back, and every damaged or foreign file in it
refused with one clear error naming the file (weights, predictions, history, metrics, config)."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mlpkit.cli import main
from mlpkit.core.errors import CheckpointError, MlpkitError
from mlpkit.core.fileio import atomic_save_npz
from mlpkit.data.normalize import Normalization
from mlpkit.runs import schema
from mlpkit.runs.folder import load_run
from mlpkit.runs.weights import META_KEY, load_weights, save_weights
from mlpkit.workflows.configs import resolve_config
from mlpkit.workflows.experiment import run_experiment


@pytest.fixture(scope="module")
def finished(mnist_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "run"
    cfg = resolve_config("task3c", ["epochs=1", "n_train=640", "data.n_val=300", "train.checkpoint_every=0"])
    run_experiment(cfg, out, data_dir=mnist_path, progress=False, log=lambda *_: None)
    return out


@pytest.fixture
def run_copy(finished: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(finished, tmp_path / "run"))


def test_a_finished_run_reads_back_whole(finished: Path) -> None:
    run = load_run(finished)
    assert run.name == "task3c" and run.metrics["steps"] == 20
    assert len(run.history["train"]["loss"]) == 20
    predictions = run.predictions()
    assert predictions is not None and predictions["proba"].shape == (300, 10)
    assert run.weights()["layers.0.weight"].shape == (785, 64)
    model, meta = load_weights(finished / schema.WEIGHTS, config=resolve_config("task3c"))
    assert list(model.hidden) == [64] and meta["n_features"] == 784
    np.testing.assert_array_equal(model.parameters()[1], run.weights()["layers.1.weight"])


# ------------------------------------------------------------------------- weights.npz
def _rewrite_weights(path: Path, *, meta_changes: dict | None = None, arrays_changes: dict | None = None) -> None:
    with np.load(path, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    meta = json.loads(arrays.pop(META_KEY).tobytes())
    meta.update(meta_changes or {})
    arrays.update(arrays_changes or {})
    arrays[META_KEY] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    atomic_save_npz(path, arrays)


@pytest.mark.parametrize(
    ("meta_changes", "arrays_changes", "message"),
    [
        (
            {"model": {"hidden": [1_000_000_000], "activation": "relu", "bias": "input_column"}},
            None,
            r"does not fit the model it describes: 795000000000 parameters for hidden",
        ),
        ({"model": {"hidden": [64], "activation": "nope", "bias": "input_column"}}, None, "cannot build"),
        ({"model": {"hidden": [-3], "activation": "relu", "bias": "input_column"}}, None, "positive integers"),
        ({"dtype": "float16"}, None, "dtype must be one of"),
        ({"std": 0.0}, None, "std > 0"),
        ({"mean": float("nan")}, None, "finite numbers"),
        ({"format": "pickle"}, None, "format is not 'mlpkit-weights'"),
        (None, {"layers.1.weight": np.full((64, 10), np.nan, np.float32)}, "NaN or infinite"),
        (None, {"layers.1.weight": np.full((64, 10), np.inf, np.float32)}, "NaN or infinite"),
        (None, {"layers.1.weight": np.zeros((64, 10), np.int64)}, "is int64, the file says float32"),
        (None, {"layers.1.weight": np.zeros((10, 64), np.float32)}, "has shape"),
    ],
)
def test_tampered_weights_are_refused(run_copy: Path, meta_changes, arrays_changes, message: str) -> None:
    path = run_copy / schema.WEIGHTS
    _rewrite_weights(path, meta_changes=meta_changes, arrays_changes=arrays_changes)
    with pytest.raises(CheckpointError, match=message) as info:
        load_weights(path)
    assert str(path) in str(info.value)


def test_weights_for_another_config_are_refused(finished: Path) -> None:
    with pytest.raises(CheckpointError, match=r"model.hidden: file \[64\], config \[32\]; train.dtype"):
        load_weights(finished / schema.WEIGHTS, config=resolve_config("task4a", ["dtype=float64"]))


@pytest.mark.parametrize("damage", ["truncate", "pickle", "compress", "not-zip", "flip"])
def test_damaged_or_unsafe_weights_files_are_refused_by_the_bounded_reader(run_copy: Path, damage: str) -> None:
    path = run_copy / schema.WEIGHTS
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "pickle":
        np.savez(path, **{"layers.0.weight": np.array([{"a": 1}], dtype=object)}, allow_pickle=True)
    elif damage == "compress":
        with np.load(path) as archive:
            np.savez_compressed(path, **{k: archive[k] for k in archive.files})
    elif damage == "not-zip":
        path.write_bytes(b"hello")
    else:
        flipped = bytearray(data)
        flipped[len(data) // 3] ^= 0x10  # inside a weight array: the zip CRC catches it
        path.write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match="weights file"):
        load_weights(path)


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    from mlpkit.nn.mlp import MLP

    model = MLP([5, 3], bias="per_layer", dtype="float64", activation="tanh")
    model.init_weights(np.random.default_rng(0), "uniform")
    cfg = resolve_config("task3c", ["hidden=[5, 3]", "model.bias=per_layer", "dtype=float64", "activation=tanh"])
    save_weights(tmp_path / "w.npz", model, normalization=Normalization("global", 1.5, 2.0), config=cfg.to_dict())
    loaded, meta = load_weights(tmp_path / "w.npz", config=cfg)
    assert (meta["mean"], meta["std"]) == (1.5, 2.0)
    for a, b in zip(model.parameters(), loaded.parameters()):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------- the report's files
def _report(run: Path, tmp_path: Path):
    return CliRunner().invoke(main, ["report", str(run), "-o", str(tmp_path / "r.html")], catch_exceptions=False)


@pytest.mark.parametrize(
    ("name", "damage", "message"),
    [
        (schema.PREDICTIONS, lambda p: p.write_bytes(p.read_bytes()[:300]), "predictions file"),
        (schema.PREDICTIONS, lambda p: np.savez(p, y_true=np.zeros(3, np.int64)), "lacks y_pred, proba"),
        (
            schema.PREDICTIONS,
            lambda p: np.savez(
                p, y_true=np.full(2, 12), y_pred=np.zeros(2, np.int64), proba=np.zeros((2, 10), np.float32)
            ),
            "y_true must lie in 0..9",
        ),
        (schema.HISTORY, lambda p: p.write_text('{"train": "x", "validation": {}}'), "train.loss must be a list"),
        (schema.HISTORY, lambda p: p.write_text('{"train": {"loss": [1, "a"]}, "validation": {}}'), "list of numbers"),
        (
            schema.HISTORY,
            lambda p: p.write_text('{"train": {"loss": [1]}, "validation": {"step": [1]}}'),
            "validation lacks val_loss",
        ),
        (schema.HISTORY, lambda p: p.write_text("[1, 2]"), "not a JSON object"),
        (schema.HISTORY, lambda p: p.write_text('{"train": '), "unreadable"),
        (schema.METRICS, lambda p: p.write_text('{"val_accuracy": "high"}'), "val_accuracy must be a number"),
        (schema.CONFIG, lambda p: p.write_text("model = 3\n"), r"\[model\] must be a table"),
        (schema.ENVIRONMENT, lambda p: p.write_text("7"), "not a JSON object"),
    ],
)
def test_report_on_a_damaged_file_is_one_line_naming_it(
    run_copy: Path, tmp_path: Path, name, damage, message: str
) -> None:
    import re

    damage(run_copy / name)
    with pytest.raises(MlpkitError, match=message):
        run = load_run(run_copy)
        run.predictions()
    result = _report(run_copy, tmp_path)
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ") and result.output.count("\n") == 1, result.output
    assert str(run_copy / name) in result.output and re.search(message, result.output)
    assert "Traceback" not in result.output


def test_compressed_predictions_are_bounded(run_copy: Path) -> None:
    from mlpkit.train.checkpoint import read_npz

    path = run_copy / schema.PREDICTIONS
    with zipfile.ZipFile(path) as archive:
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in archive.infolist())
    assert "proba" in read_npz(path, what="predictions file", compressed=True)
    with pytest.raises(CheckpointError, match="limit allows"):
        read_npz(path, what="predictions file", compressed=True, max_bytes=1000)
    with pytest.raises(CheckpointError, match="is compressed"):
        read_npz(path, what="predictions file")
