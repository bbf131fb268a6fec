"""Input validation: bad configs are refused before any work, naming the key and what is
allowed; bad arrays given to the Python API raise InputError, never a NumPy traceback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import mnist_dir  # the shared finder of real MNIST
from mlpkit.cli import main
from mlpkit.core.errors import ConfigError, InputError
from mlpkit.nn.mlp import MLP
from mlpkit.optim.sgd import SGD
from mlpkit.runs.config import Config, from_dict, load_config, with_overrides
from mlpkit.train.trainer import Trainer
from mlpkit.workflows.configs import preset_names, resolve_config

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ config files
# (raw TOML-like dict, what the message must name)
BAD_DICTS = [
    ({"colour": "red"}, r"colour.*top level"),
    ({"model": {"colour": 1}}, r"colour.*\[model\].*valid: activation, bias, dropout_hidden, dropout_input, hidden"),
    ({"data": {"colour": 1}}, r"colour.*\[data\].*valid:.*n_train"),
    ({"train": {"colour": 1}}, r"colour.*\[train\].*valid:.*learning_rate"),
    ({"train": {"learnig_rate": 0.1}}, r"learnig_rate.*\[train\]"),
    ({"train": 3}, r"\[train\] must be a table"),
    ({"seed": 1.5}, r"seed must be an integer"),
    ({"seed": -1}, r"seed must be >= 0"),
    ({"name": 3}, r"name must be a string"),
    ({"train": {"epochs": "3"}}, r"train\.epochs must be an integer, got '3'"),
    ({"train": {"epochs": 2.5}}, r"train\.epochs must be an integer"),
    ({"train": {"epochs": True}}, r"train\.epochs must be an integer"),
    ({"train": {"epochs": 0}}, r"train\.epochs must be >= 1, got 0"),
    ({"train": {"batch_size": 0}}, r"train\.batch_size must be >= 1"),
    ({"train": {"learning_rate": "fast"}}, r"train\.learning_rate must be a number"),
    ({"train": {"learning_rate": 0}}, r"train\.learning_rate must be > 0"),
    ({"train": {"learning_rate": -0.1}}, r"train\.learning_rate must be > 0"),
    ({"train": {"learning_rate": float("inf")}}, r"train\.learning_rate must be > 0"),
    ({"train": {"learning_rate": float("nan")}}, r"train\.learning_rate must be > 0"),
    ({"train": {"momentum": -0.1}}, r"train\.momentum must lie in \[0, 1\)"),
    ({"train": {"momentum": 1.0}}, r"train\.momentum must lie in \[0, 1\)"),
    ({"train": {"momentum": 1.5}}, r"train\.momentum must lie in \[0, 1\)"),
    ({"train": {"momentum": True}}, r"train\.momentum must be a number"),
    ({"train": {"validations_per_epoch": 0}}, r"train\.validations_per_epoch must be >= 1"),
    ({"train": {"early_stopping_patience": -1}}, r"train\.early_stopping_patience must be >= 0"),
    ({"train": {"early_stopping_min_delta": -0.5}}, r"train\.early_stopping_min_delta must be >= 0"),
    ({"train": {"threads": 0}}, r"train\.threads must be >= 1"),
    ({"train": {"checkpoint_every": -1}}, r"train\.checkpoint_every must be >= 0"),
    ({"train": {"dtype": "float16"}}, r"train\.dtype 'float16' is unknown; valid: float32, float64"),
    ({"train": {"restore_best_weights": "yes"}}, r"train\.restore_best_weights must be true or false"),
    ({"model": {"hidden": []}}, r"model\.hidden must list at least one"),
    ({"model": {"hidden": [0]}}, r"model\.hidden sizes must be positive"),
    ({"model": {"hidden": [64, -3]}}, r"model\.hidden sizes must be positive"),
    ({"model": {"hidden": 64}}, r"model\.hidden must be a list of integers"),
    ({"model": {"hidden": [64.5]}}, r"model\.hidden\[0\] must be an integer"),
    ({"model": {"activation": "swish"}}, r"model\.activation 'swish' is unknown; valid: elu, gelu, improved_sigmoid"),
    ({"model": {"init": "zeros"}}, r"model\.init 'zeros' is unknown; valid: .*fan_in_normal"),
    ({"model": {"bias": "none"}}, r"model\.bias 'none' is unknown; valid: input_column, per_layer"),
    ({"data": {"split": "all"}}, r"data\.split 'all' is unknown; valid: .*seed"),
    ({"data": {"n_train": 0}}, r"data\.n_train must be > 0"),
    ({"data": {"n_val": -5}}, r"data\.n_val must be > 0"),
    ({"data": {"n_train": "many"}}, r"data\.n_train must be an integer"),
    ({"data": {"shuffle": 1}}, r"data\.shuffle must be true or false"),
]


@pytest.mark.parametrize("raw, message", BAD_DICTS, ids=[m.split(" ")[0].strip("\\r") for _, m in BAD_DICTS])
def test_bad_config_is_refused_naming_the_key(raw: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        from_dict(raw)


def test_default_config_and_every_preset_are_valid() -> None:
    assert from_dict({}) == Config()
    for name in preset_names():
        assert resolve_config(name).name == name


BAD_OVERRIDES = [
    ("colour=red", r"unknown config key 'colour'"),
    ("train.colour=1", r"unknown config key 'train.colour'; valid: train\.epochs"),
    ("model.colour=1", r"unknown config key 'model.colour'"),
    ("data.colour=1", r"unknown config key 'data.colour'"),
    ("paint.colour=1", r"unknown config key 'paint.colour'; sections are model, data, train"),
    ("model.hidden.size=3", r"unknown config key 'model.hidden.size'"),
    ("train=1", r"unknown config key 'train'"),
    ("lr", r"override 'lr' must look like key=value"),
    ("lr=fast", r"train\.learning_rate must be a number, got 'fast'"),
    ("lr=0", r"train\.learning_rate must be > 0"),
    ("lr=-1e-3", r"train\.learning_rate must be > 0"),
    ("lr=inf", r"train\.learning_rate must be > 0"),
    ("momentum=1", r"train\.momentum must lie in \[0, 1\)"),
    ("epochs=1.5", r"train\.epochs must be an integer"),
    ("epochs=none", r"train\.epochs must not be empty"),
    ("hidden=[]", r"model\.hidden must list at least one"),
    ("hidden=[0]", r"model\.hidden sizes must be positive"),
    ("hidden=64", r"model\.hidden must be a list"),
    ("activation=swish", r"model\.activation 'swish' is unknown; valid:"),
    ("init=zeros", r"model\.init 'zeros' is unknown; valid:"),
    ("shuffle=maybe", r"data\.shuffle must be true or false"),
    ("n_train=0", r"data\.n_train must be > 0"),
]


@pytest.mark.parametrize("item, message", BAD_OVERRIDES, ids=[i for i, _ in BAD_OVERRIDES])
def test_bad_override_is_refused_naming_the_key(item: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        with_overrides(resolve_config("task3c"), [item])


def test_unknown_preset_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown preset 'task9'; valid: .*task3c"):
        resolve_config("task9")


def test_config_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\nepochs = 3\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
    typo = tmp_path / "typo.toml"
    typo.write_text("[train]\nepochs = 3\nbatchsize = 16\n")
    with pytest.raises(ConfigError, match=r"batchsize.*\[train\]"):
        load_config(typo)


# ---------------------------------------------------------------------- the CLI
CLI_CASES = [
    (["train", "task3c", "--set", "lr=0"], "train.learning_rate must be > 0"),
    (["train", "task3c", "--set", "momentum=1.2"], "train.momentum must lie in [0, 1)"),
    (["train", "task3c", "--set", "train.colour=1"], "unknown config key 'train.colour'"),
    (["train", "task3c", "--set", "hidden=[]"], "model.hidden must list at least one"),
    (["train", "task3c", "--set", "activation=swish"], "model.activation 'swish' is unknown"),
    (["train", "task9"], "unknown preset 'task9'"),
    (["train"], "give a preset name"),
]


@pytest.mark.parametrize("args, message", CLI_CASES, ids=[" ".join(a[1:]) or "no-preset" for a, _ in CLI_CASES])
def test_cli_prints_error_exits_2_and_writes_no_run_folder(tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "run"
    result = CliRunner().invoke(main, [*args, "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "error: " in result.output and message in result.output
    assert "Traceback" not in result.output
    assert not out.exists()


@pytest.mark.usefixtures("mnist_path")  # fails, never skips, without MNIST (see conftest)
def test_batch_larger_than_the_training_set_is_refused_before_training(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = CliRunner().invoke(
        main,
        [
            "train",
            "task3c",
            "--set",
            "n_train=100",
            "--set",
            "batch_size=500",
            "--data-dir",
            str(mnist_dir()),
            "--out",
            str(out),
            "--no-progress",
        ],
    )
    assert result.exit_code == 2, result.output
    assert "error: train.batch_size 500 is larger than the training set (100 samples)" in result.output
    assert not out.exists()


# ------------------------------------------------------------------- arrays (API)
@pytest.fixture
def model() -> MLP:
    m = MLP([8], n_features=6, n_classes=3, activation="tanh", bias="input_column")
    m.init_weights(np.random.default_rng(0), "fan_in_normal")
    return m


def _x(n: int = 5) -> np.ndarray:
    return np.random.default_rng(1).normal(size=(n, 6))


def _with(x: np.ndarray, value: float) -> np.ndarray:
    x = x.copy()
    x[2, 3] = value
    return x


BAD_INPUTS = [
    (_with(_x(), np.nan), "1 NaN or infinite"),
    (_with(_x(), np.inf), "1 NaN or infinite"),
    (_with(_x(), -np.inf), "1 NaN or infinite"),
    (_x().astype(np.float32) * np.float32(np.nan), "30 NaN or infinite"),
    (np.zeros(6), r"2-D array \(samples, 6\), got shape \(6,\)"),
    (np.zeros((2, 3, 6)), r"2-D array \(samples, 6\), got shape \(2, 3, 6\)"),
    (np.zeros((2, 1, 1, 6)), "2-D array"),
    (np.zeros((5, 7)), "inputs have 7 features, the model expects 6"),
    (np.zeros((5, 784)), "inputs have 784 features, the model expects 6"),
    (np.zeros((0, 6)), r"inputs are empty \(0 samples\)"),
    (np.zeros((5, 6), dtype=complex), "real numbers"),
    (np.full((5, 6), "a"), "real numbers"),
    (np.array([[None] * 6] * 5), "real numbers"),
    (np.ones((5, 6), dtype=bool), "real numbers"),
]


@pytest.mark.parametrize("x, message", BAD_INPUTS, ids=range(len(BAD_INPUTS)))
@pytest.mark.parametrize("method", ["prepare_inputs", "predict", "predict_proba", "predict_logits"])
def test_bad_inputs_raise_input_error(model: MLP, method: str, x: np.ndarray, message: str) -> None:
    with pytest.raises(InputError, match=message):
        getattr(model, method)(x)


def test_input_error_is_a_value_error_and_good_inputs_pass(model: MLP) -> None:
    assert issubclass(InputError, ValueError)
    assert model.predict(_x()).shape == (5,)
    assert model.predict(_x().astype(np.uint8)).shape == (5,)  # integers are numbers
    assert MLP([4], bias="input_column").predict(np.zeros((2, 28, 28), dtype=np.uint8)).shape == (
        2,
    )  # images are flattened


BAD_LABELS = [
    (np.array([0, 1, 2, 3, 0]), r"labels must lie in \[0, 2\], found 0\.\.3"),
    (np.array([0, 1, -1, 2, 0]), r"labels must lie in \[0, 2\], found -1\.\.2"),
    (np.array([0, 1, 1.5, 2, 0]), "labels must be integers, got dtype float64"),
    (np.array([0, 1, np.nan, 2, 0]), "labels must be integers"),
    (np.array([0, 1, 2, 0]), r"1-D array of 5 entries, got shape \(4,\)"),
    (np.eye(3)[[0, 1, 2, 0, 1]], r"1-D array of 5 entries, got shape \(5, 3\)"),
    (np.array(["0", "1", "2", "0", "1"]), "labels must be integers"),
    (np.array([0, 1, 2, 0, 1], dtype=object), "labels must be integers"),
]


@pytest.mark.parametrize("y, message", BAD_LABELS, ids=range(len(BAD_LABELS)))
def test_bad_labels_raise_input_error(model: MLP, y: np.ndarray, message: str) -> None:
    with pytest.raises(InputError, match=message):
        model.check_labels(y, 5)


def test_whole_float_labels_are_accepted(model: MLP) -> None:
    assert model.check_labels(np.array([0.0, 2.0, 1.0]), 3).tolist() == [0, 2, 1]


def _trainer(model: MLP) -> Trainer:
    return Trainer(model, SGD(model.parameters(), lr=0.1), rng=np.random.default_rng(0), epochs=1, batch_size=2)


FIT_CASES = [
    ("raw", lambda m, x, y: (x, y), r"training inputs must come from model\.prepare_inputs: shape \(samples, 7\)"),
    ("1-D", lambda m, x, y: (m.prepare_inputs(x)[0], y), "training inputs must come from model.prepare_inputs"),
    ("empty", lambda m, x, y: (m.prepare_inputs(x)[:0], y[:0]), r"training inputs are empty"),
    ("nan", lambda m, x, y: (_with(m.prepare_inputs(x), np.nan), y), "training inputs must be finite"),
    ("ints", lambda m, x, y: (m.prepare_inputs(x).astype(int), y), "training inputs must be finite floats"),
    ("labels", lambda m, x, y: (m.prepare_inputs(x), y + 3), r"labels must lie in \[0, 2\]"),
    ("float-labels", lambda m, x, y: (m.prepare_inputs(x), y + 0.5), "labels must be integers"),
    ("length", lambda m, x, y: (m.prepare_inputs(x), y[:3]), "1-D array of 5 entries"),
]


@pytest.mark.parametrize("make, message", [(m, msg) for _, m, msg in FIT_CASES], ids=[c[0] for c in FIT_CASES])
def test_trainer_fit_checks_its_arrays(model: MLP, make, message: str) -> None:
    x, y = _x(), np.array([0, 1, 2, 0, 1])
    bad_x, bad_y = make(model, x, y)
    good_x = model.prepare_inputs(x)
    with pytest.raises(InputError, match=message):
        _trainer(model).fit(bad_x, bad_y, good_x, y)
    with pytest.raises(InputError, match=message.replace("training", "validation")):
        _trainer(model).fit(good_x, y, bad_x, bad_y)


def test_trainer_fit_accepts_prepared_arrays(model: MLP) -> None:
    x, y = model.prepare_inputs(_x()), np.array([0, 1, 2, 0, 1])
    state = _trainer(model).fit(x, y, x, y)
    assert state.step == 2


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"hidden": []}, "at least one"),
        ({"hidden": [0]}, "positive integers"),
        ({"hidden": [2.5]}, "positive integers"),
        ({"hidden": [4], "activation": "swish"}, "unknown activation 'swish'; valid:"),
        ({"hidden": [4], "bias": "none"}, "unknown bias mode"),
        ({"hidden": [4], "dtype": "float16"}, "unknown dtype 'float16'"),
        ({"hidden": [4], "n_features": 0}, "positive integers"),
    ],
)
def test_model_constructor_refuses_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        MLP(**kwargs)


@pytest.mark.parametrize(
    "lr, momentum, message",
    [
        (0.0, 0.0, "learning_rate must be > 0"),
        (-1.0, 0.0, "learning_rate must be > 0"),
        (float("nan"), 0.0, "learning_rate must be > 0"),
        (0.1, 1.0, r"momentum must lie in \[0, 1\)"),
        (0.1, -0.1, r"momentum must lie in \[0, 1\)"),
    ],
)
def test_optimizer_refuses_bad_hyperparameters(lr: float, momentum: float, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SGD([np.zeros(3)], lr=lr, momentum=momentum)


# ------------------------------------------------------------- API traps (issue 11)
def test_fit_refuses_a_model_whose_weights_were_never_initialized(model: MLP) -> None:
    x, y = model.prepare_inputs(_x()), np.array([0, 1, 2, 0, 1])
    fresh = MLP([8], n_features=6, n_classes=3, activation="tanh", bias="input_column")
    with pytest.raises(ConfigError, match=r"weights are all zero: call model.init_weights\(rng\)"):
        _trainer(fresh).fit(x, y, x, y)
    fresh.load_state_dict(model.state_dict())  # loaded weights count as initialized
    assert _trainer(fresh).fit(x, y, x, y).step == 2


def test_validation_data_is_optional(model: MLP) -> None:
    from mlpkit.train.callbacks import EarlyStopping, History

    x, y = model.prepare_inputs(_x()), np.array([0, 1, 2, 0, 1])
    history = History()
    trainer = Trainer(
        model,
        SGD(model.parameters(), lr=0.1),
        rng=np.random.default_rng(0),
        epochs=3,
        batch_size=2,
        callbacks=[history],
    )
    assert trainer.fit(x, y).step == 6
    assert history.num_steps == 6 and history.validation["step"] == [] and trainer.validate_every == 0
    with pytest.raises(ConfigError, match="EarlyStopping watches validation checks and this fit has none"):
        Trainer(
            model,
            SGD(model.parameters(), lr=0.1),
            rng=np.random.default_rng(0),
            epochs=1,
            batch_size=2,
            callbacks=[EarlyStopping(patience=2)],
        ).fit(x, y)
    with pytest.raises(InputError, match="pass both x_val and y_val, or neither"):
        _trainer(model).fit(x, y, x, None)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"epochs": 2.5}, r"epochs must be an integer >= 1, got 2\.5"),
        ({"batch_size": 32.0}, r"batch_size must be an integer >= 1, got 32\.0"),
        ({"epochs": True}, "epochs must be an integer >= 1, got True"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1, got 0"),
        ({"validations_per_epoch": -1}, "validations_per_epoch must be an integer >= 0"),
        ({"validations_per_epoch": 1.5}, "validations_per_epoch must be an integer >= 0"),
    ],
)
def test_trainer_refuses_counts_that_are_not_integers(model: MLP, kwargs: dict, message: str) -> None:
    args = {"epochs": 1, "batch_size": 2, **kwargs}
    with pytest.raises(ConfigError, match=message):
        Trainer(model, SGD(model.parameters(), lr=0.1), rng=np.random.default_rng(0), **args)


def test_predict_on_prepared_inputs_refuses_nan(model: MLP) -> None:
    x = model.prepare_inputs(_x())
    assert model.predict(x, prepared=True).shape == (5,)
    x[2, 1] = np.nan
    with pytest.raises(InputError, match="inputs must be finite floats"):
        model.predict(x, prepared=True)
    with pytest.raises(InputError, match="must come from model.prepare_inputs"):
        model.predict_proba(x[:, :3], prepared=True)


def test_prepare_inputs_refuses_values_beyond_the_model_dtype() -> None:
    raw = np.zeros((2, 7))
    raw[1, 3] = -1e39  # finite in float64, -inf in float32
    with pytest.raises(InputError, match=r"values up to 1e\+39, beyond what float32 can hold"):
        MLP([4], n_features=7, n_classes=3, bias="input_column").prepare_inputs(raw)
    assert np.isfinite(
        MLP([4], n_features=7, n_classes=3, dtype="float64", bias="input_column").prepare_inputs(raw)
    ).all()
    raw[1, 3] = 3e38  # still fits float32
    assert np.isfinite(MLP([4], n_features=7, n_classes=3, bias="input_column").prepare_inputs(raw)).all()


def test_a_tampered_position_or_sample_order_is_refused(model: MLP) -> None:
    from mlpkit.core.errors import CheckpointError

    x, y = model.prepare_inputs(_x()), np.array([0, 1, 2, 0, 1])
    trainer = Trainer(
        model,
        SGD(model.parameters(), lr=0.1),
        rng=np.random.default_rng(0),
        epochs=2,
        batch_size=1,
        validations_per_epoch=0,
    )
    geometry = trainer.geometry(len(x), validation=False)
    saved = trainer.state_dict()
    saved.update(step=2, step_in_epoch=2, perm=np.array([0, 1, 2, 3, 7]), last_finite_loss=1.0)  # 7: past the 5
    with pytest.raises(CheckpointError, match=r"sample order that is not a permutation of 0\.\.4"):
        trainer.load_state_dict(saved, geometry)
    saved.update(perm=np.array([4, 3, 2, 1, 0]), step_in_epoch=9, step=9)
    with pytest.raises(CheckpointError, match=r"step_in_epoch = 9, outside 0\.\.5"):
        trainer.load_state_dict(saved, geometry)
    saved.update(step_in_epoch=2, step=2)
    trainer.load_state_dict(saved, geometry)
    assert trainer.fit(x, y).step == 10
