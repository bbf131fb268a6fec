"""``mlpkit predict`` on a real (tiny) run: images, batches, --top, --json, errors; and the run
folder's model file predicting bit-identically to the run's own predictions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mlpkit.cli import main
from mlpkit.data.mnist import load_mnist
from mlpkit.runs import schema

SMALL = ["--set", "epochs=1", "--set", "n_train=2000", "--set", "data.n_val=500"]
N_IMAGES = 200


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def run_dir(mnist_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("predict") / "run"
    result = CliRunner(env={"MLPKIT_DATA": str(mnist_path)}).invoke(
        main, ["train", "task3c", *SMALL, "--out", str(out), "--no-progress"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def test_images(mnist_path: Path) -> np.ndarray:
    return load_mnist(mnist_path).test_images[:N_IMAGES]


def test_the_run_folder_holds_a_model_that_predicts_as_the_run_did(run_dir: Path, mnist_path: Path) -> None:
    from mlpkit.data.splits import make_split
    from mlpkit.runs.config import load_config
    from mlpkit.runs.folder import load_run
    from mlpkit.runs.loaded_model import config_digest
    from mlpkit.runs.model_file import load_model

    assert (run_dir / schema.MODEL).is_file()
    load_run(run_dir)  # written before the run's results were committed
    model = load_model(run_dir / schema.MODEL)
    assert model.classes == list(range(10)) and model.input_shape == (28, 28) and model.dataset == "mnist"
    assert model.provenance.config_digest == config_digest(load_config(run_dir / schema.CONFIG).to_dict())
    cfg = load_config(run_dir / schema.CONFIG)
    split = make_split(load_mnist(mnist_path), cfg.data.split, n_train=cfg.data.n_train, n_val=cfg.data.n_val)
    with np.load(run_dir / schema.PREDICTIONS) as saved:
        expected = saved["proba"]
    proba = model.predict_proba(split.x_val).astype(np.float32)
    np.testing.assert_array_equal(proba, expected)


def test_png_images_get_the_in_memory_models_label(run_dir: Path, test_images: np.ndarray, tmp_path: Path) -> None:
    from PIL import Image

    from mlpkit.data.images import mnist_style
    from mlpkit.runs.model_file import load_model

    model = load_model(run_dir / schema.MODEL)
    files = []
    for i, img in enumerate(test_images):
        path = tmp_path / f"{i}.png"
        Image.fromarray(img.astype(np.uint8)).save(path)
        files.append(str(path))
    result = invoke("predict", str(run_dir), *files, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert [d["file"] for d in doc] == files and all("row" not in d for d in doc)
    got = np.array([d["label"] for d in doc])
    in_memory = model.predict(test_images.reshape(len(test_images), -1))
    assert (got == in_memory).mean() >= 0.97, (got == in_memory).mean()
    # the CLI's label is exactly the model's on the MNIST-style image
    first = model.predict(mnist_style(test_images[0].astype(np.float64))[None])
    assert doc[0]["label"] == first[0] and 0 < doc[0]["probability"] <= 1
    assert doc[0]["top"] == [[doc[0]["label"], doc[0]["probability"]]]


def test_top_gives_k_sorted_labels_and_text_lines(run_dir: Path, test_images: np.ndarray, tmp_path: Path) -> None:
    from PIL import Image

    path = tmp_path / "digit.bmp"
    Image.fromarray(255 - test_images[1].astype(np.uint8)).save(path)  # dark ink on white
    doc = json.loads(invoke("predict", str(run_dir), str(path), "--top", "3", "--json").output)
    top = doc[0]["top"]
    assert len(top) == 3 and [p for _, p in top] == sorted((p for _, p in top), reverse=True)
    assert len({label for label, _ in top}) == 3 and doc[0]["label"] == top[0][0]
    text = invoke("predict", str(run_dir), str(path), "--top", "3")
    assert text.exit_code == 0 and text.output.startswith(f"{path}: {top[0][0]} (")
    assert text.output.count("(") == 3 and text.output.count("\n") == 1


def test_batches_of_raw_rows_get_the_models_own_labels(run_dir: Path, test_images: np.ndarray, tmp_path: Path) -> None:
    from mlpkit.runs.model_file import load_model

    model = load_model(run_dir / schema.MODEL)
    rows = test_images[:50].reshape(50, -1)
    expected = model.predict(rows).tolist()
    np.save(tmp_path / "x.npy", rows)
    np.savez(tmp_path / "x.npz", x=rows[:5])
    np.savetxt(tmp_path / "x.csv", rows[:3], delimiter=",", fmt="%d")
    doc = json.loads(invoke("predict", str(run_dir / schema.MODEL), str(tmp_path / "x.npy"), "--json").output)
    assert [d["label"] for d in doc] == expected and [d["row"] for d in doc] == list(range(50))
    for name, n in (("x.npz", 5), ("x.csv", 3)):
        doc = json.loads(invoke("predict", str(run_dir), str(tmp_path / name), "--json").output)
        assert [d["label"] for d in doc] == expected[:n], name


def test_a_run_folder_without_a_model_file_still_predicts(
    run_dir: Path, test_images: np.ndarray, tmp_path: Path
) -> None:
    import shutil

    old = Path(shutil.copytree(run_dir, tmp_path / "old"))
    rows = test_images[:20].reshape(20, -1)
    np.save(tmp_path / "x.npy", rows)
    new = json.loads(invoke("predict", str(run_dir), str(tmp_path / "x.npy"), "--json").output)
    (old / schema.MODEL).unlink()
    assert json.loads(invoke("predict", str(old), str(tmp_path / "x.npy"), "--json").output) == new


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.png", "missing.png: no such file"),
        (lambda d: _write(d / "bad.png", b"not an image"), "bad.png is unreadable"),
        (lambda d: _save(d / "wide.npy", np.zeros((2, 785))), "wide.npy: inputs must have shape"),
        (lambda d: _write(d / "blank.png", None), "blank.png: the image is blank"),
        (lambda d: _savez(d / "nox.npz"), "nox.npz: no array 'x'"),
    ],
)
def test_bad_inputs_give_one_error_line_naming_the_file(run_dir: Path, tmp_path: Path, make, message) -> None:
    good = tmp_path / "good.npy"
    np.save(good, np.zeros((1, 784)))
    bad = make(tmp_path)
    result = invoke("predict", str(run_dir), str(good), str(bad))
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and result.output.startswith("error: "), result.output
    assert message in result.output and str(tmp_path) in result.output


def test_a_missing_model_is_one_error_line(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.zeros((1, 784)))
    result = invoke("predict", str(tmp_path / "nope"), str(tmp_path / "x.npy"))
    assert result.exit_code == 2 and result.output.count("\n") == 1 and "nope" in result.output


def _write(path: Path, data: bytes | None) -> Path:
    if data is None:
        from PIL import Image

        Image.new("L", (30, 30), 255).save(path)
    else:
        path.write_bytes(data)
    return path


def _save(path: Path, x: np.ndarray) -> Path:
    np.save(path, x)
    return path


def _savez(path: Path) -> Path:
    np.savez(path, y=np.zeros(3))
    return path


def test_an_idx_file_of_images_is_a_batch(run_dir: Path, test_images: np.ndarray, tmp_path: Path) -> None:
    from mlpkit.data.idx import write_idx
    from mlpkit.runs.model_file import load_model

    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    write_idx(path, test_images[:30], compress=True)
    result = invoke("predict", str(run_dir), str(path), "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert [d["row"] for d in doc] == list(range(30))
    expected = load_model(run_dir / schema.MODEL).predict(test_images[:30])
    assert [d["label"] for d in doc] == expected.tolist()
    broken = tmp_path / "broken-idx3-ubyte"
    broken.write_bytes(b"\x00\x00\x08\x03" + b"\x00" * 5)
    bad = CliRunner().invoke(main, ["predict", str(run_dir), str(broken)])
    assert bad.exit_code == 2 and "not a readable IDX file" in bad.output and "Traceback" not in bad.output
