import numpy as np
import pytest

from mlpkit.core.errors import CheckpointError, ConfigError, InputError
from mlpkit.nn.mlp import MLP


@pytest.mark.parametrize(
    ("hidden", "bias", "count"),
    [
        ([64], "input_column", 785 * 64 + 64 * 10),  # 50,880 as in the report
        ([59, 59], "input_column", 785 * 59 + 59 * 59 + 59 * 10),  # 50,386
        ([32], "input_column", 785 * 32 + 32 * 10),
        ([64], "per_layer", 784 * 64 + 64 + 64 * 10 + 10),
    ],
)
def test_parameter_count(hidden, bias, count):
    assert MLP(hidden, bias=bias).num_parameters == count


def test_seed_counts_are_the_reports():
    assert MLP([64], bias="input_column").num_parameters == 50880
    assert MLP([59, 59], bias="input_column").num_parameters == 50386


def test_a_bias_per_layer_is_the_default():
    model = MLP([64])
    assert model.bias == "per_layer" and model.num_parameters == 784 * 64 + 64 + 64 * 10 + 10


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"hidden": []}, "at least one hidden layer"),
        ({"hidden": [64, 0]}, "positive integers"),
        ({"hidden": [3.5]}, "positive integers"),
        ({"hidden": [4], "activation": "softsign"}, "unknown activation"),
        ({"hidden": [4], "bias": "none"}, "unknown bias mode"),
        ({"hidden": [4], "dtype": "float16"}, "unknown dtype"),
    ],
)
def test_bad_construction(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        MLP(**kwargs)


def test_prepare_inputs_adds_bias_column_and_casts():
    model = MLP([3], n_features=4, n_classes=2, bias="input_column")
    x = model.prepare_inputs(np.arange(8).reshape(2, 4))
    assert x.dtype == np.float32 and x.shape == (2, 5)
    np.testing.assert_array_equal(x[:, -1], 1)
    np.testing.assert_array_equal(x[:, :4], np.arange(8).reshape(2, 4))
    images = MLP([3], bias="input_column").prepare_inputs(np.zeros((2, 28, 28), np.uint8))
    assert images.shape == (2, 785)


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (np.zeros(4), "2-D array"),
        (np.zeros((0, 4)), "empty"),
        (np.zeros((2, 5)), "5 features, the model expects 4"),
        (np.array([[0, np.nan, 0, 0]]), "1 NaN or infinite"),
        (np.array([[0, np.inf, -np.inf, 0]]), "2 NaN or infinite"),
        (np.array([["a", "b", "c", "d"]]), "real numbers"),
    ],
)
def test_prepare_inputs_rejects_bad_arrays(x, match):
    with pytest.raises(InputError, match=match):
        MLP([3], n_features=4, n_classes=2, bias="input_column").prepare_inputs(x)


@pytest.mark.parametrize(
    ("y", "match"),
    [
        (np.array([0, 10]), r"\[0, 9\]"),
        (np.array([-1, 0]), r"\[0, 9\]"),
        (np.array([0.5, 1]), "integers"),
        (np.array([[0, 1]]), "1-D"),
        (np.array([0, 1, 2]), "2 entries"),
    ],
)
def test_check_labels(y, match):
    with pytest.raises(InputError, match=match):
        MLP([3], bias="input_column").check_labels(y, 2)


def test_state_dict_round_trip_and_mismatch(rng):
    a = MLP([5, 4], n_features=6, n_classes=3, bias="input_column").init_weights(rng, "fan_in_normal")
    b = MLP([5, 4], n_features=6, n_classes=3, bias="input_column")
    b.load_state_dict(a.state_dict())
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p, q)
    with pytest.raises(CheckpointError, match="shape"):
        MLP([5, 3], n_features=6, n_classes=3, bias="input_column").load_state_dict(a.state_dict())
    with pytest.raises(CheckpointError, match="missing"):
        MLP([5, 4], n_features=6, n_classes=3, bias="per_layer").load_state_dict(a.state_dict())


def test_init_distributions(rng):
    m = MLP([400], n_features=784, bias="input_column").init_weights(rng, "uniform")
    w = m.weights[0]
    assert w.min() >= -1 and w.max() <= 1 and abs(w.mean()) < 0.01 and abs(w.std() - 1 / np.sqrt(3)) < 0.01
    m.init_weights(rng, "fan_in_normal")
    assert abs(m.weights[0].std() - 1 / np.sqrt(785)) < 0.001
    assert abs(m.weights[1].std() - 1 / np.sqrt(400)) < 0.003


def test_evaluate_and_predict_agree(rng):
    model = MLP([8], n_features=5, n_classes=3, dtype="float64", bias="input_column").init_weights(rng, "fan_in_normal")
    x_raw, y = rng.normal(size=(50, 5)), rng.integers(0, 3, 50)
    x = model.prepare_inputs(x_raw)
    proba = model.predict_proba(x_raw)
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    loss, acc = model.evaluate(x, y, model.workspace(7))  # chunks of 7 rows
    assert acc == pytest.approx(np.mean(model.predict(x_raw) == y))
    assert loss == pytest.approx(-np.mean(np.log(proba[np.arange(50), y])), rel=1e-12)


def test_float64_and_float32_agree(rng):
    m64 = MLP([16], n_features=10, n_classes=4, dtype="float64", bias="input_column").init_weights(rng, "fan_in_normal")
    m32 = MLP([16], n_features=10, n_classes=4, dtype="float32", bias="input_column")
    m32.load_state_dict(m64.state_dict())
    x = rng.normal(size=(20, 10))
    np.testing.assert_allclose(m32.predict_proba(x), m64.predict_proba(x), atol=1e-5)


def test_describe_lists_layers():
    text = MLP([59, 59], bias="input_column").describe()
    assert "785 -> 59" in text and "59 -> 10" in text and "50386" in text


@pytest.mark.parametrize("bias", ["input_column", "per_layer"])
def test_layout_is_where_the_parameters_live(bias):
    """MLP.layout is the one description of the flat buffer: parameters, gradients and the
    compiled kernels (mlpkit.engine.compiled.kernel_layout) all read it."""
    from mlpkit.engine.compiled import kernel_layout

    model = MLP([5, 4], n_features=6, n_classes=3, bias=bias)
    flat = model.flat_parameters
    assert flat.size == model.num_parameters and flat.ndim == 1
    per = 2 if bias == "per_layer" else 1
    end = 0
    for i, layer in enumerate(model.layout):
        assert (layer.fan_in, layer.fan_out) == model.shapes[i] and layer.weight_offset == end
        w = model.parameters()[per * i]
        w[...] = i + 1
        assert (flat[layer.weight_offset : layer.weight_offset + w.size] == i + 1).all()
        end = layer.weight_offset + w.size
        if bias == "per_layer":
            assert layer.bias_offset == end
            model.biases[i][...] = -(i + 1)
            assert (flat[layer.bias_offset : layer.bias_offset + layer.fan_out] == -(i + 1)).all()
            end += layer.fan_out
        else:
            assert layer.bias_offset is None
    assert end == flat.size
    rows = kernel_layout(model)
    assert rows.dtype == np.int64 and rows.tolist() == [
        [lay.weight_offset, lay.fan_in, lay.fan_out, -1 if lay.bias_offset is None else lay.bias_offset]
        for lay in model.layout
    ]
    grads = model.new_gradients()
    assert [g.shape for g in grads] == [p.shape for p in model.parameters()]


def test_describe_lines_up_ten_hidden_layers():
    """task4e: layer numbers reach 10; every row's columns stay where row 0's are."""
    rows = [
        line
        for line in MLP([64] * 10, bias="input_column").describe().splitlines()
        if line.lstrip().startswith("layer")
    ]
    assert len(rows) == 11 and rows[-1].lstrip().startswith("layer 10:")
    assert len({row.index("->") for row in rows}) == 1 and len({row.index("params") for row in rows}) == 1
