"""``mlpkit evaluate``: the numbers equal a direct computation on MNIST's 10,000 test images, a
digits model is evaluated on exactly its carved test rows, own data with string labels, one
error line for unknown labels and wrong widths, ``--json``, and the ``--html`` page in Chromium."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from mlpkit.cli import main
from mlpkit.core.errors import ConfigError, DataError, InputError
from mlpkit.core.metrics import confusion_matrix
from mlpkit.data.dataset import Dataset
from mlpkit.data.mnist import load_mnist
from mlpkit.data.normalize import Normalization
from mlpkit.nn.mlp import MLP
from mlpkit.runs.loaded_model import LoadedModel, Provenance
from mlpkit.workflows.evaluate import evaluate_arrays, select_split
from mlpkit.workflows.evaluation import Evaluation, format_text
from mlpkit.workflows.predict import load_predictor

sys.path.insert(0, str(Path(__file__).parent))
from test_report_browser import assert_page_ok, browser, screenshot_dir  # noqa: F401  (browser: a fixture)

SMALL = ["--set", "epochs=1", "--set", "n_train=2000", "--set", "data.n_val=500"]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
SECTIONS = ["summary", "confusion", "per-class", "provenance"]


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner(env=env).invoke(main, list(args), catch_exceptions=False)


def error_lines(result) -> list[str]:
    return [line for line in result.output.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def mnist_run(mnist_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("evaluate") / "mnist"
    result = invoke("train", "task3c", *SMALL, "--out", str(out), "--no-progress", env={"MLPKIT_DATA": str(mnist_path)})
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("evaluate") / "digits"
    args = ["--set", "data.dataset=digits", "--set", "epochs=5", "--out", str(out), "--no-progress"]
    result = invoke("train", "task3c", *args)
    assert result.exit_code == 0, result.output
    return out


def evaluate_json(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = invoke("evaluate", *args, "--json", env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # stdout alone: a stray thread of another test may write to stderr


# ------------------------------------------------------------------------ MNIST


def test_mnist_numbers_equal_a_direct_computation(mnist_run: Path, mnist_path: Path) -> None:
    doc = evaluate_json(str(mnist_run), env={"MLPKIT_DATA": str(mnist_path)})
    model = load_predictor(mnist_run)
    mnist = load_mnist(mnist_path)
    x = model.model.prepare_inputs(model.features(mnist.test_images))
    loss, accuracy = model.model.evaluate(x, mnist.test_labels.astype(np.intp))
    assert (doc["dataset"], doc["split"], doc["n"], doc["test_carved"]) == ("mnist", "test", 10_000, False)
    assert doc["loss"] == pytest.approx(loss, rel=0, abs=1e-12)
    assert doc["accuracy"] == accuracy
    assert [c["count"] for c in doc["per_class"]] == MNIST_TEST_COUNTS
    cm = np.array(doc["confusion"])
    assert cm.shape == (10, 10) and cm.sum() == 10_000 and np.trace(cm) / 10_000 == doc["accuracy"]
    expected = confusion_matrix(mnist.test_labels, model.predict(mnist.test_images), 10)
    np.testing.assert_array_equal(cm, expected)
    assert [c["correct"] for c in doc["per_class"]] == np.diag(expected).tolist()
    assert [c["precision"] for c in doc["per_class"]] == pytest.approx(np.diag(expected) / expected.sum(axis=0))
    assert doc["provenance"]["trained_on"] == "mnist" and len(doc["provenance"]["config_digest"]) == 64


def test_mnist_text_output_summarizes(mnist_run: Path, mnist_path: Path) -> None:
    result = invoke("evaluate", str(mnist_run), env={"MLPKIT_DATA": str(mnist_path)})
    assert result.exit_code == 0, result.output
    doc = evaluate_json(str(mnist_run), env={"MLPKIT_DATA": str(mnist_path)})
    text = result.output
    assert "data:     mnist, test part (10,000 rows)" in text
    assert f"accuracy: {doc['accuracy']:.4f}" in text and f"loss:     {doc['loss']:.4f}" in text
    assert "confusion matrix (rows: true class, columns: predicted class)" in text
    row_one = next(line for line in text.splitlines() if line.startswith("1 ") and "1135" in line)
    assert row_one.split()[:3] == ["1", "1135", str(doc["per_class"][1]["correct"])]


def test_mnist_html_page_in_chromium(browser, mnist_run: Path, mnist_path: Path, tmp_path: Path) -> None:  # noqa: F811
    page = tmp_path / "evaluation.html"
    result = invoke("evaluate", str(mnist_run), "--html", str(page), env={"MLPKIT_DATA": str(mnist_path)})
    assert result.exit_code == 0, result.output
    html = page.read_text(encoding="utf-8")
    assert "Content-Security-Policy" in html and "http://" not in html and "https://" not in html
    images = assert_page_ok(browser, page, SECTIONS, screenshot_dir(tmp_path) / "evaluation.png")
    assert len(images) == 1 and images[0]["alt"] == "confusion matrix"
    total = browser.evaluate("document.querySelector('[data-total]').dataset.total")
    rows = browser.evaluate("document.querySelectorAll('table.per-class tbody tr').length")
    assert (total, rows) == ("10000", 10)
    assert sorted(p.suffix for p in (tmp_path / "evaluation_files").iterdir()) == [".png", ".svg"]


# ----------------------------------------------------------------------- digits


def test_digits_model_is_evaluated_on_its_carved_test_rows(digits_run: Path) -> None:
    from mlpkit.data.registry import load_dataset

    digits = load_dataset("digits")
    model = load_predictor(digits_run)
    doc = evaluate_json(str(digits_run))
    assert (doc["dataset"], doc["split"], doc["test_carved"]) == ("digits", "test", True)
    assert doc["n"] == len(digits.x_test) == len(digits.y_test)
    expected = confusion_matrix(digits.y_test, model.predict(digits.x_test), 10)
    np.testing.assert_array_equal(np.array(doc["confusion"]), expected)
    assert [c["count"] for c in doc["per_class"]] == np.bincount(digits.y_test, minlength=10).tolist()
    assert evaluate_json(str(digits_run), "--dataset", "digits") == doc
    train = evaluate_json(str(digits_run), "--split", "train")
    assert (train["split"], train["n"]) == ("train", len(digits.x_train))
    expected_train = confusion_matrix(digits.y_train, model.predict(digits.x_train), 10)
    np.testing.assert_array_equal(np.array(train["confusion"]), expected_train)
    both = evaluate_json(str(digits_run), "--split", "all")
    assert both["n"] == len(digits.x_train) + len(digits.x_test) == 1797
    np.testing.assert_array_equal(np.array(both["confusion"]), expected + expected_train)


def test_digits_model_on_mnist_is_one_error_line(digits_run: Path, mnist_path: Path) -> None:
    result = invoke("evaluate", str(digits_run), "--dataset", "mnist", env={"MLPKIT_DATA": str(mnist_path)})
    assert result.exit_code == 2
    assert error_lines(result) == [
        "error: mnist: inputs have 784 features, the model takes 64 (input shape (8, 8), trained on digits)"
    ]


def test_missing_model_and_bad_page_name_are_one_error_line(digits_run: Path, tmp_path: Path) -> None:
    result = invoke("evaluate", str(tmp_path / "nothing"))
    assert result.exit_code == 2 and error_lines(result) == [
        f"error: {tmp_path / 'nothing'}: no such model file or run folder"
    ]
    result = invoke("evaluate", str(digits_run), "--html", str(tmp_path / "page.txt"))
    assert result.exit_code == 2 and len(error_lines(result)) == 1 and "must end in .html" in result.output
    assert not (tmp_path / "page.txt").exists()


# ------------------------------------------------------- own data, string labels


def string_model(n_features: int = 4, classes: tuple[str, ...] = ("ant", "bee", "cat")) -> LoadedModel:
    net = MLP([8], n_features=n_features, n_classes=len(classes), activation="tanh")
    net.init_weights(np.random.default_rng(7))
    return LoadedModel(net, Normalization("none"), list(classes), (n_features,), "own.npz", Provenance())


def own_data(n: int, rng: np.random.Generator, labels: tuple[str, ...] = ("ant", "bee", "cat"), width: int = 4):
    return rng.normal(size=(n, width)), rng.choice(np.array(labels), size=n)


def test_string_labels_counted_in_the_models_class_order(rng: np.random.Generator) -> None:
    model = string_model()
    (x1, y1), (x2, y2) = own_data(300, rng), own_data(50, rng)
    loss, accuracy, cm = evaluate_arrays(model, [(x1, y1), (x2, y2)], name="own.npz", batch_rows=64)
    x, y = np.concatenate([x1, x2]), np.concatenate([y1, y2])
    pred = model.predict(x)
    index = {c: i for i, c in enumerate(model.classes)}
    expected = confusion_matrix([index[v] for v in y], [index[v] for v in pred], 3)
    np.testing.assert_array_equal(cm, expected)
    assert accuracy == np.mean(pred == y) == np.trace(cm) / 350
    ref_loss, ref_acc = model.model.evaluate(
        model.model.prepare_inputs(model.features(x)), np.array([index[v] for v in y], dtype=np.intp)
    )
    assert loss == pytest.approx(ref_loss, rel=1e-12) and accuracy == ref_acc


def test_unknown_labels_and_wrong_width_name_the_problem(rng: np.random.Generator) -> None:
    model = string_model()
    x, y = own_data(40, rng, labels=("ant", "bee", "wasp"))
    with pytest.raises(DataError, match=r"^other\.npz labels: label\(s\) 'wasp' do not occur among") as err:
        evaluate_arrays(model, [(x, y)], name="other.npz")
    assert "\n" not in str(err.value)
    x, y = own_data(40, rng, width=5)
    with pytest.raises(InputError, match=r"^wide\.npz: inputs have 5 features, the model takes 4 ") as err:
        evaluate_arrays(model, [(x, y)], name="wide.npz")
    assert "\n" not in str(err.value)


def test_a_model_without_its_data_table_is_evaluated_on_its_data_sets_test_part() -> None:
    from mlpkit.data.registry import load_dataset
    from mlpkit.workflows.evaluate import evaluation_dataset

    net = MLP([8], n_features=64, n_classes=10)
    model = LoadedModel(net, Normalization("none"), list(range(10)), (8, 8), "digits", Provenance())
    assert model.data is None
    data = evaluation_dataset(model)
    np.testing.assert_array_equal(data.x_test, load_dataset("digits").x_test)
    assert data.test_carved and evaluation_dataset(model, "digits").name == data.name


def test_split_choice_and_a_data_set_without_test_part(rng: np.random.Generator) -> None:
    x, y = own_data(30, rng)
    whole = Dataset(name="own.npz", x_train=x, y_train=y, input_shape=(4,))
    with pytest.raises(ConfigError, match=r"^own\.npz has no test part; use --split all"):
        select_split(whole, "test")
    assert select_split(whole, None)[0] == "all" and len(select_split(whole, "all")[1]) == 1
    split = Dataset(name="d", x_train=x[:20], y_train=y[:20], x_test=x[20:], y_test=y[20:], input_shape=(4,))
    name, parts = select_split(split, None)
    assert name == "test" and [len(p[1]) for p in parts] == [10]
    assert [len(p[1]) for p in select_split(split, "all")[1]] == [20, 10]


def test_text_output_of_many_classes_leaves_out_the_matrix(rng: np.random.Generator) -> None:
    classes = tuple(f"c{i}" for i in range(25))
    model = string_model(classes=classes)
    x, y = own_data(200, rng, labels=classes)
    loss, acc, cm = evaluate_arrays(model, [(x, y)])
    ev = Evaluation("m", "own", "all", False, 200, loss, acc, list(classes), cm, {"trained_on": "own"})
    text = format_text(ev)
    assert (
        "25 classes, too many to print" in text
        and sum(line.split()[0] in classes for line in text.splitlines() if line) == 25
    )
    json.dumps(ev.to_json(), allow_nan=False)  # a class never predicted has precision null, not NaN


# ------------------------------------------------- own files through the command line


def write_own_files(folder: Path, rng: np.random.Generator) -> dict[str, Path]:
    """A learnable 3-class data set with string labels, a file with an unknown label, one too wide."""
    centres = {"ant": (3, 0, 0, 0), "bee": (0, 3, 0, 0), "cat": (0, 0, 3, 0)}
    labels = rng.choice(np.array(list(centres)), size=600)
    x = np.array([centres[v] for v in labels], dtype=np.float64) + rng.normal(size=(600, 4))
    files = {name: folder / f"{name}.npz" for name in ("train", "more", "other", "wide")}
    np.savez(files["train"], x=x, y=labels)
    np.savez(files["more"], x=x[:50] + 0.1, y=labels[:50])
    np.savez(files["other"], x=x[:50], y=np.where(labels[:50] == "cat", "wasp", labels[:50]))
    np.savez(files["wide"], x=np.hstack([x[:50], x[:50, :1]]), y=labels[:50])
    return files


def own_files_cli_checks(files: dict[str, Path], run: Path) -> None:
    from mlpkit.data import files as readers
    from mlpkit.data.registry import carve_test

    carved = carve_test(readers.load_file_dataset(files["train"]), 0.2)
    args = ["--set", f"data.dataset={files['train']}", "--set", "epochs=20", "--out", str(run), "--no-progress"]
    result = invoke("train", "task3c", *args)
    assert result.exit_code == 0, result.output
    doc = evaluate_json(str(run))
    assert doc["classes"] == ["ant", "bee", "cat"] and doc["split"] == "test" and doc["test_carved"]
    assert doc["n"] == len(carved.x_test) and doc["accuracy"] > 0.9
    more = evaluate_json(str(run), "--dataset", str(files["more"]))  # another file: every row, no test part
    assert (more["dataset"], more["split"], more["n"]) == (str(files["more"]), "all", 50)
    other = str(files["other"])
    result = invoke("evaluate", str(run), "--dataset", other)
    assert result.exit_code == 2 and len(error_lines(result)) == 1, result.output
    assert error_lines(result)[0].startswith(f"error: {other} labels: label(s) 'wasp' do not occur")
    result = invoke("evaluate", str(run), "--dataset", str(files["wide"]))
    assert result.exit_code == 2
    assert error_lines(result) == [
        f"error: {files['wide']}: inputs have 5 features, the model takes 4 (input shape (4,), trained on"
        f" {files['train']})"
    ]
    whole = evaluate_json(str(run), "--dataset", str(files["train"]), "--split", "all")
    assert whole["n"] == 600 and whole["split"] == "all"


def test_own_files_through_the_cli(rng: np.random.Generator, tmp_path: Path) -> None:
    own_files_cli_checks(write_own_files(tmp_path, rng), tmp_path / "run")
