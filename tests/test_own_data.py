"""Issue 12's acceptance on data that is not MNIST: ``mlpkit train task3c`` on scikit-learn's
digits, on a CSV file and on a folder of images the tests write, each to validation accuracy
>= 0.95, then predicting from the run folder's model file; plus an .npz file and an IDX pair."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mlpkit.cli import main
from mlpkit.data.idx import write_idx
from mlpkit.data.mnist import load_mnist
from mlpkit.runs import schema
from mlpkit.runs.model_file import load_model

DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def train(out: Path, *settings: str, env: dict[str, str] | None = None) -> dict:
    args = ["train", "task3c", "--set", "epochs=30", *sum((["--set", s] for s in settings), []), "--out", str(out)]
    result = CliRunner(env=env).invoke(main, [*args, "--no-progress"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads((out / schema.METRICS).read_text())


def test_digits_train_to_95_percent_and_predict_rows(tmp_path: Path) -> None:
    from sklearn.datasets import load_digits

    metrics = train(tmp_path / "D", "data.dataset=digits")
    assert metrics["val_accuracy"] >= 0.95, metrics["val_accuracy"]
    model = load_model(tmp_path / "D" / schema.MODEL)
    assert model.input_shape == (8, 8) and model.classes == list(range(10)) and model.dataset == "digits"
    assert model.preprocess == "none" and model.data is not None and model.data["dataset"] == "digits"
    digits = load_digits()
    batch = tmp_path / "rows.npy"
    np.save(batch, digits.data[:50])
    result = CliRunner().invoke(main, ["predict", str(tmp_path / "D"), str(batch), "--json"])
    assert result.exit_code == 0, result.output
    labels = [d["label"] for d in json.loads(result.output)]
    assert np.mean(np.array(labels) == digits.target[:50]) >= 0.95
    png = tmp_path / "a.png"
    from PIL import Image

    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(png)
    refused = CliRunner().invoke(main, ["predict", str(tmp_path / "D"), str(png)])
    assert refused.exit_code == 2 and "not images" in refused.output


def test_a_csv_with_named_label_column_and_string_labels(tmp_path: Path) -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    path = tmp_path / "digits.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*(f"px{i}" for i in range(64)), "digit"])
        for row, label in zip(digits.data, digits.target):
            writer.writerow([*(int(v) for v in row), DIGIT_NAMES[label]])
    metrics = train(tmp_path / "C", f"data.dataset={path}", "data.label_column=digit", "data.normalization=per_feature")
    assert metrics["val_accuracy"] >= 0.95, metrics["val_accuracy"]
    assert metrics["classes"] == sorted(DIGIT_NAMES)
    model = load_model(tmp_path / "C" / schema.MODEL)
    assert model.normalization.kind == "per_feature" and model.input_shape == (64,)
    rows = tmp_path / "rows.csv"
    np.savetxt(rows, digits.data[:40], delimiter=",")
    result = CliRunner().invoke(main, ["predict", str(tmp_path / "C"), str(rows), "--json"])
    assert result.exit_code == 0, result.output
    labels = [d["label"] for d in json.loads(result.output)]
    assert np.mean(np.array(labels) == np.array(DIGIT_NAMES)[digits.target[:40]]) >= 0.95
    page = tmp_path / "report.html"
    assert CliRunner().invoke(main, ["report", str(tmp_path / "C"), "-o", str(page)]).exit_code == 0
    html = page.read_text()
    assert "Most-confused class pairs" in html and "<td>seven</td>" in html and "Hardest digit" not in html


def test_a_folder_of_images_one_subfolder_per_class(mnist_path: Path, tmp_path: Path) -> None:
    from PIL import Image

    mnist = load_mnist(mnist_path)
    root = tmp_path / "images"
    n = 20_000  # 16,000 train after the carved test part: what task3c needs for 95% in 30 epochs
    for i, (img, label) in enumerate(zip(mnist.train_images[:n], mnist.train_labels[:n])):
        folder = root / DIGIT_NAMES[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(folder / f"{i:05d}.png")
    metrics = train(tmp_path / "F", f"data.dataset={root}")
    assert metrics["val_accuracy"] >= 0.95, metrics["val_accuracy"]
    model = load_model(tmp_path / "F" / schema.MODEL)
    assert model.classes == sorted(DIGIT_NAMES) and model.input_shape == (28, 28) and model.preprocess == "resize"
    files = []
    for i in range(20):  # test images, written at twice the size: "resize" brings them back to 28x28
        path = tmp_path / f"t{i}.png"
        Image.fromarray(mnist.test_images[i]).resize((56, 56), Image.Resampling.LANCZOS).save(path)
        files.append(str(path))
    result = CliRunner().invoke(main, ["predict", str(tmp_path / "F"), *files, "--json"])
    assert result.exit_code == 0, result.output
    labels = [d["label"] for d in json.loads(result.output)]
    assert np.mean(np.array(labels) == np.array(DIGIT_NAMES)[mnist.test_labels[:20]]) >= 0.8


def test_an_npz_and_an_idx_pair_with_a_given_validation_file(tmp_path: Path) -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x, y = digits.images.astype(np.uint8), (digits.target * 10 + 3).astype(np.int64)  # 3, 13, ..., 93
    np.savez(tmp_path / "train.npz", x=x[:1400], y=y[:1400])
    np.savez(tmp_path / "val.npz", x=x[1400:], y=y[1400:])
    metrics = train(
        tmp_path / "N",
        f"data.dataset={tmp_path / 'train.npz'}",
        "data.split=given",
        f"data.validation={tmp_path / 'val.npz'}",
        "data.test_fraction=0",
    )
    assert metrics["classes"] == list(range(3, 100, 10)) and metrics["val_accuracy"] >= 0.9
    write_idx(tmp_path / "train-images-idx3-ubyte", x, compress=False)
    write_idx(tmp_path / "train-labels-idx1-ubyte", digits.target.astype(np.uint8), compress=False)
    metrics = train(tmp_path / "I", f"data.dataset={tmp_path / 'train-images-idx3-ubyte'}", "data.split=holdout")
    assert metrics["val_accuracy"] >= 0.9 and metrics["classes"] == list(range(10))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (["data.dataset=/no/such/file.csv"], "neither a registered name"),
        (["data.split=given"], "needs data.validation"),
        (["data.dataset=digits", "data.split=holdout", "data.validation=x.csv"], "only used with data.split = 'given'"),
        (["data.normalization=minmax"], "data.normalization 'minmax' is unknown"),
        (["data.val_fraction=1.5"], "data.val_fraction must lie in"),
    ],
)
def test_bad_data_settings_are_one_error_line(tmp_path: Path, settings: list[str], message: str) -> None:
    args = ["train", "task3c", *sum((["--set", s] for s in settings), []), "--out", str(tmp_path / "x")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and message in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "x").exists()
