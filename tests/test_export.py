"""``mlpkit export``: the ONNX graph run in onnxruntime gives mlpkit's probabilities and labels.

The acceptance test trains a small real MNIST model and compares all 10,000 test images; the
others build models directly (every activation, both bias modes, every normalization, float64,
string and non-contiguous integer classes) and check the graph, its metadata and the CLI.
"""

from __future__ import annotations

import errno
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from click.testing import CliRunner

from mlpkit.adapters.onnx_export import DEFAULT_OPSET, export_onnx, to_onnx
from mlpkit.cli import main
from mlpkit.core import fileio
from mlpkit.core.errors import ConfigError, InputError
from mlpkit.core.fileio import RunIOError
from mlpkit.core.version import __version__
from mlpkit.nn.activations import ACTIVATIONS, Activation
from mlpkit.nn.mlp import MLP
from mlpkit.runs.loaded_model import LoadedModel, Normalization, Provenance
from mlpkit.runs.model_file import load_model, save_model

SMALL = ["--set", "epochs=1", "--set", "n_train=2000", "--set", "data.n_val=500"]
TOLERANCE = 1e-5  # max abs difference of probabilities, the acceptance bound
F32_ULP = 2.0**-23  # one float32 step at 1.0: a float64 model's probabilities differ by one rounding at most
N_FEATURES = 12


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def session(source: str | Path | onnx.ModelProto) -> ort.InferenceSession:
    data = source.SerializeToString() if isinstance(source, onnx.ModelProto) else str(source)
    return ort.InferenceSession(data, providers=["CPUExecutionProvider"])


def run(source: str | Path | onnx.ModelProto, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    proba, label = session(source).run(None, {"input": np.asarray(x, dtype=np.float32)})
    return proba, label


# --------------------------------------------------------------------- acceptance


@pytest.fixture(scope="module")
def run_dir(mnist_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export") / "run"
    result = CliRunner(env={"MLPKIT_DATA": str(mnist_path)}).invoke(
        main, ["train", "task3c", *SMALL, "--out", str(out), "--no-progress"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return out


def test_onnxruntime_matches_mlpkit_on_all_10000_mnist_test_images(
    run_dir: Path, mnist_path: Path, tmp_path: Path
) -> None:
    from mlpkit.data.mnist import load_mnist
    from mlpkit.workflows.predict import load_predictor

    out = tmp_path / "model.onnx"
    result = invoke("export", str(run_dir), "-o", str(out))
    assert result.exit_code == 0, result.output
    images = load_mnist(mnist_path).test_images
    assert images.shape == (10_000, 28, 28) and images.dtype == np.uint8
    raw = images.reshape(len(images), -1).astype(np.float32)  # pixels 0..255, nothing else done
    proba, label = run(out, raw)
    model = load_predictor(run_dir)
    expected = model.predict_proba(images)
    assert proba.dtype == np.float32 and proba.shape == (10_000, 10)
    assert np.abs(proba - expected).max() <= TOLERANCE, np.abs(proba - expected).max()
    assert label.dtype == np.int64
    np.testing.assert_array_equal(label, model.predict(images))
    assert 0.5 < (label == load_mnist(mnist_path).test_labels).mean()  # a trained model, not a constant one
    lines = result.output.splitlines()
    assert lines[0] == f"wrote {out} ({out.stat().st_size:,} bytes, ONNX opset {DEFAULT_OPSET})", result.output
    assert lines[1:] == [
        "  input   input float[N, 784]",
        "  output  probabilities float[N, 10]",
        "  output  label int64[N]",
    ]


# ------------------------------------------------------------------ built models


def loaded(
    tmp_path: Path,
    *,
    activation: str = "tanh",
    bias: str = "input_column",
    normalization: str = "global",
    dtype: str = "float32",
    classes: list | None = None,
    seed: int = 0,
) -> LoadedModel:
    """A random model saved with `save_model` and read back, as a user's file would be."""
    rng = np.random.default_rng(seed)
    classes = classes if classes is not None else [0, 1, 2, 3]
    mlp = MLP([9, 7], n_features=N_FEATURES, n_classes=len(classes), activation=activation, bias=bias, dtype=dtype)
    mlp.init_weights(rng, "uniform")  # U(-1, 1): big enough weights to vary the labels
    for b in mlp.biases or []:
        b[...] = rng.normal(size=b.shape)
    norm = {
        "global": Normalization("global", 33.3, 78.5),
        "per_feature": Normalization("per_feature", rng.uniform(0, 120, N_FEATURES), rng.uniform(5, 90, N_FEATURES)),
        "none": Normalization("none"),
    }[normalization]
    path = tmp_path / "m.safetensors"
    save_model(mlp, path, normalization=norm, classes=classes, input_shape=[3, 4], dataset="toy",
               provenance=Provenance.for_config({"model": {"hidden": [9, 7]}}))  # fmt: skip
    return load_model(path)


def raw_inputs(normalization: str, n: int = 300, seed: int = 1) -> np.ndarray:
    """Raw values as the model saw them: pixels 0..255, or already-scaled numbers for ``"none"``."""
    rng = np.random.default_rng(seed)
    if normalization == "none":
        return rng.normal(size=(n, N_FEATURES)).astype(np.float32)
    return rng.integers(0, 256, size=(n, N_FEATURES)).astype(np.float32)


@pytest.mark.parametrize("normalization", ["global", "per_feature", "none"])
@pytest.mark.parametrize("bias", ["input_column", "per_layer"])
@pytest.mark.parametrize(
    "activation", ["sigmoid", "improved_sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu", "silu"]
)
def test_every_activation_bias_mode_and_normalization_gives_mlpkits_predictions(
    tmp_path: Path, activation: str, bias: str, normalization: str
) -> None:
    model = loaded(tmp_path, activation=activation, bias=bias, normalization=normalization)
    x = raw_inputs(normalization)
    proba, label = run(to_onnx(model), x)
    expected = model.predict_proba(x)
    assert np.abs(proba - expected).max() <= TOLERANCE
    np.testing.assert_array_equal(label, model.predict(x))


@pytest.mark.parametrize("normalization", ["global", "per_feature", "none"])
@pytest.mark.parametrize(
    "activation", ["sigmoid", "improved_sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu", "silu"]
)
def test_a_float64_model_computes_in_float64(tmp_path: Path, activation: str, normalization: str) -> None:
    model = loaded(tmp_path, activation=activation, normalization=normalization, dtype="float64", bias="per_layer")
    proto = to_onnx(model)
    assert {t.data_type for t in proto.graph.initializer if t.name.startswith("layer")} == {onnx.TensorProto.DOUBLE}
    assert [n.op_type for n in proto.graph.node][0] == "Cast"
    x = raw_inputs(normalization)
    proba, label = run(proto, x)
    expected = model.predict_proba(x)
    assert expected.dtype == np.float64 and proba.dtype == np.float32
    # float64 throughout: only the final rounding to float32 differs, far below float32 arithmetic's error
    # (GELU's erf is the exception: onnxruntime has no float64 Erf, so it is taken in float32)
    assert np.abs(proba - expected.astype(np.float32)).max() <= (TOLERANCE if activation == "gelu" else F32_ULP)
    np.testing.assert_array_equal(label, model.predict(x))


@pytest.mark.parametrize(
    ("classes", "expected_type"),
    [
        (["cat", "dog", "eel", "fox"], np.object_),
        ([7, -3, 100, 2**40], np.int64),
        ([5, "b", 1, "Ünïcode"], np.object_),  # a mix: strings, as np.asarray(classes) makes them
    ],
)
def test_labels_are_the_models_own_classes(tmp_path: Path, classes: list, expected_type: type) -> None:
    model = loaded(tmp_path, classes=classes, normalization="per_feature")
    x = raw_inputs("per_feature")
    proto = to_onnx(model)
    _, label = run(proto, x)
    assert label.dtype == expected_type
    expected = model.predict(x)
    assert len(set(label.tolist())) > 1  # more than one class is picked out of the constant
    assert sorted(set(label.tolist()), key=str) == sorted(set(expected.tolist()), key=str)
    np.testing.assert_array_equal(label, expected.astype(object) if expected_type is np.object_ else expected)
    kind = onnx.TensorProto.INT64 if expected_type is np.int64 else onnx.TensorProto.STRING
    assert proto.graph.output[1].type.tensor_type.elem_type == kind


def test_the_graph_is_folded_checked_and_declares_its_opset(tmp_path: Path) -> None:
    model = loaded(tmp_path, activation="relu", bias="input_column", normalization="per_feature")
    proto = to_onnx(model)
    onnx.checker.check_model(proto, full_check=True)
    assert [(o.domain, o.version) for o in proto.opset_import] == [("", DEFAULT_OPSET)] and DEFAULT_OPSET >= 17
    ops = [n.op_type for n in proto.graph.node]
    assert ops == ["Gemm", "Relu", "Gemm", "Relu", "Gemm", "Softmax", "ArgMax", "Gather"]
    weights = {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer}
    # the bias column and the normalization live in the first layer: raw features in, no Sub/Div nodes
    assert weights["layer0.weight"].shape == (N_FEATURES, 9) and weights["layer0.bias"].shape == (9,)
    assert "layer1.bias" not in weights and "layer2.bias" not in weights
    (inp,) = proto.graph.input
    dims = inp.type.tensor_type.shape.dim
    assert inp.name == "input" and dims[0].dim_param == "N" and dims[1].dim_value == N_FEATURES
    assert [o.name for o in proto.graph.output] == ["probabilities", "label"]
    for n in (1, 5):  # any batch size
        proba, label = run(proto, raw_inputs("per_feature", n=n))
        assert proba.shape == (n, 4) and label.shape == (n,)


def test_a_newer_opset_is_declared_and_runs(tmp_path: Path) -> None:
    model = loaded(tmp_path)
    proto = to_onnx(model, opset=18)
    assert proto.opset_import[0].version == 18
    x = raw_inputs("global")
    np.testing.assert_array_equal(run(proto, x)[1], model.predict(x))


@pytest.mark.parametrize("opset", [16, 10_000, True, "17"])
def test_an_unusable_opset_is_refused(tmp_path: Path, opset) -> None:
    with pytest.raises(ConfigError, match="opset must be an integer from 17"):
        to_onnx(loaded(tmp_path), opset=opset)


def test_metadata_describes_the_model(tmp_path: Path) -> None:
    model = loaded(tmp_path, classes=["a", "b", "c"], normalization="per_feature", activation="sigmoid")
    info = export_onnx(model, tmp_path / "m.onnx")
    meta = session(info.path).get_modelmeta()
    props = meta.custom_metadata_map
    assert meta.producer_name == "mlpkit" and props["mlpkit_version"] == __version__
    assert json.loads(props["classes"]) == ["a", "b", "c"]
    assert json.loads(props["input_shape"]) == [3, 4]
    assert props["dataset"] == "toy" and props["normalization"] == "per_feature"
    assert props["config_digest"] == model.provenance.config_digest
    assert json.loads(props["architecture"])["activation"] == "sigmoid"


def test_export_writes_the_file_and_says_what_it_holds(tmp_path: Path) -> None:
    model = loaded(tmp_path)
    path = tmp_path / "sub" / "dir" / "m.onnx"  # missing folders are made
    info = export_onnx(model, path)
    assert info.path == path and info.n_bytes == path.stat().st_size and info.opset == DEFAULT_OPSET
    assert [str(i) for i in info.inputs] == [f"input float[N, {N_FEATURES}]"]
    assert [str(o) for o in info.outputs] == ["probabilities float[N, 4]", "label int64[N]"]
    assert onnx.load(path) == to_onnx(model)  # the file is the checked graph


def test_a_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "m.onnx"
    path.write_bytes(b"old")

    def full_disk(fh, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fileio, "_write_payload", full_disk)
    with pytest.raises(RunIOError, match="No space left on device"):
        export_onnx(loaded(tmp_path), path)
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"] == []


def test_what_cannot_be_exported_is_refused_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InputError, match="LoadedModel"):
        to_onnx(MLP([3], n_features=4, n_classes=2))  # type: ignore[arg-type]
    model = loaded(tmp_path)
    huge = LoadedModel(model.model, model.normalization, [2**63, 0, 1, 2], (3, 4), "toy", model.provenance)
    with pytest.raises(InputError, match="do not fit int64"):
        to_onnx(huge)
    softsign = Activation("softsign", lambda z, out=None: z / (1 + abs(z)), lambda a, out=None: (1 - abs(a)) ** 2)
    monkeypatch.setitem(ACTIVATIONS, "softsign", softsign)
    custom = MLP([3], n_features=4, n_classes=2, activation="softsign")
    with pytest.raises(InputError, match="activation 'softsign' has no ONNX form"):
        to_onnx(LoadedModel(custom, Normalization("none"), [0, 1], (4,), "toy", Provenance()))


# --------------------------------------------------------------------------- CLI


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    loaded(tmp_path)
    return tmp_path / "m.safetensors"


def test_the_cli_exports_a_model_file(model_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    result = invoke("export", str(model_file), "-o", str(out), "--opset", "18")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == f"wrote {out} ({out.stat().st_size:,} bytes, ONNX opset 18)"
    assert "  output  label int64[N]" in result.output.splitlines()
    x = raw_inputs("global")
    np.testing.assert_array_equal(run(out, x)[1], load_model(model_file).predict(x))


@pytest.mark.parametrize(
    ("make_model", "make_out", "message"),
    [
        (lambda d, m: m, lambda d: d, "Is a directory"),  # -o names a folder
        (lambda d, m: m, lambda d: d / "m.safetensors" / "x.onnx", "cannot write"),  # under a file
        (lambda d, m: _text(d / "notes.txt"), lambda d: d / "x.onnx", "not a safetensors file"),
        (lambda d, m: d / "missing.safetensors", lambda d: d / "x.onnx", "no such model file or run folder"),
        (lambda d, m: _folder(d / "empty"), lambda d: d / "x.onnx", "empty"),  # a folder that is no run
    ],
)
def test_cli_errors_are_one_line(model_file: Path, tmp_path: Path, make_model, make_out, message: str) -> None:
    source, out = make_model(tmp_path, model_file), make_out(tmp_path)
    result = invoke("export", str(source), "-o", str(out))
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and result.output.startswith("error: "), result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "x.onnx").exists()


def test_the_cli_refuses_an_old_opset(model_file: Path, tmp_path: Path) -> None:
    result = invoke("export", str(model_file), "-o", str(tmp_path / "x.onnx"), "--opset", "13")
    assert result.exit_code == 2 and "13 is not in the range x>=17" in result.output


def _text(path: Path) -> Path:
    path.write_text("hello\n")
    return path


def _folder(path: Path) -> Path:
    path.mkdir()
    return path
