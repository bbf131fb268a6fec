"""The modern layer options against PyTorch in float64: leaky ReLU, ELU, GELU, SiLU, the He /
Glorot / LeCun initializers, inverted dropout (given torch the same masks), label smoothing;
gradient checks of each; the max-norm constraint; the compiled engine declining each one.

PyTorch is the reference framework only; mlpkit computes everything by hand.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlpkit.core.errors import ConfigError, InputError
from mlpkit.engine.compiled import why_not
from mlpkit.engine.numpy_steps import NumpySteps
from mlpkit.engine.selection import compiled_steps
from mlpkit.nn.activations import ACTIVATIONS, get_activation
from mlpkit.nn.dropout import Dropout
from mlpkit.nn.gradcheck import check_gradients
from mlpkit.nn.initializers import get_initializer
from mlpkit.nn.losses import softmax_cross_entropy
from mlpkit.nn.max_norm import apply_max_norm
from mlpkit.nn.mlp import MLP
from mlpkit.optim.sgd import SGD

torch = pytest.importorskip("torch")
F = torch.nn.functional

NEW = ["leaky_relu", "elu", "gelu", "silu"]
TORCH_ACT = {
    "sigmoid": torch.nn.Sigmoid(),
    "improved_sigmoid": lambda z: 1.7159 * torch.tanh(2 * z / 3),
    "tanh": torch.nn.Tanh(),
    "relu": torch.nn.ReLU(),
    "leaky_relu": torch.nn.LeakyReLU(),
    "elu": torch.nn.ELU(),
    "gelu": torch.nn.GELU(),
    "silu": torch.nn.SiLU(),
}


def inputs_with_extremes(rng: np.random.Generator) -> np.ndarray:
    wide = rng.normal(0.0, 4.0, 2000)
    edges = [-1e4, -800.0, -60.0, -30.0, -8.0, -1e-8, -0.0, 0.0, 1e-8, 8.0, 30.0, 60.0, 800.0, 1e4]
    return np.concatenate([wide, np.linspace(-10, 10, 201), edges]).reshape(-1, 5)


# ------------------------------------------------------------------ activations


@pytest.mark.parametrize("name", NEW)
def test_activation_forward_and_gradient_equal_pytorch(name):
    z = inputs_with_extremes(np.random.default_rng(0))
    act = get_activation(name)
    tz = torch.tensor(z, requires_grad=True)
    ta = TORCH_ACT[name](tz)
    delta = np.random.default_rng(1).normal(size=z.shape)
    ta.backward(torch.tensor(delta))
    expected_a, expected_grad = ta.detach().numpy(), tz.grad.numpy()

    a = act.forward(z, out=np.empty_like(z))  # the model's out-of-place call
    np.testing.assert_allclose(a, expected_a, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(act.forward(z.copy()), expected_a, rtol=1e-12, atol=1e-15)  # out=None
    kept = z.copy() if act.from_input else a.copy()  # what the model keeps for the derivative
    np.testing.assert_allclose(delta * act.derivative(kept.copy()), expected_grad, rtol=1e-12, atol=1e-15)
    backprop = act.backprop
    assert backprop is not None
    got = backprop(delta.copy(), kept, np.empty_like(z))
    np.testing.assert_allclose(got, expected_grad, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", NEW)
def test_activation_float32_out_of_place_keeps_dtype_and_input(name):
    z = np.linspace(-6, 6, 40, dtype=np.float32).reshape(5, 8)
    original, out = z.copy(), np.empty_like(z)
    assert get_activation(name).forward(z, out=out) is out and out.dtype == np.float32
    np.testing.assert_array_equal(z, original)
    expected = TORCH_ACT[name](torch.tensor(z.astype(np.float64))).numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)


def test_only_the_new_activations_get_a_preactivation_buffer():
    seed = MLP([5, 4], n_features=3, bias="input_column").workspace(8)
    assert all(z is a for z, a in zip(seed.zs, seed.outputs))  # the seed's activations: no new memory
    for name in NEW:
        ws = MLP([5, 4], n_features=3, activation=name, bias="input_column").workspace(8)
        assert all(not np.shares_memory(z, a) for z, a in zip(ws.zs, ws.outputs))


# ------------------------------------------------------------------ whole-model parity


def torch_loss_and_grads(model, x, y, *, keep=None, label_smoothing=0.0):
    """PyTorch's loss and gradients for ``model``; ``keep``: 0/1 masks, dropout as x * mask / (1 - p)."""
    tparams = [torch.tensor(p.copy(), requires_grad=True) for p in model.parameters()]
    per = 2 if model.bias == "per_layer" else 1
    rates = [0.0] * model.num_layers
    if keep is not None:
        rates = [keep.dropout.input_rate] + [keep.dropout.hidden_rate] * len(model.hidden)
    a = torch.tensor(x)
    for i in range(model.num_layers):
        if keep is not None and keep.given[i] is not None:
            mask = torch.ones_like(a)
            mask[:, : keep.given[i].shape[1]] = torch.tensor(keep.given[i] / (1.0 - rates[i]))
            a = a * mask
        a = a @ tparams[per * i] + (tparams[per * i + 1] if per == 2 else 0)
        if i < model.num_layers - 1:
            a = TORCH_ACT[model.activation.name](a)
    loss = F.cross_entropy(a, torch.tensor(y), label_smoothing=label_smoothing)
    loss.backward()
    return loss.item(), [t.grad.numpy() for t in tparams]


class Keep:
    """The same 0/1 masks for mlpkit and torch."""

    def __init__(self, model, dropout, n, rng):
        self.dropout = dropout
        units = [model.n_features, *model.hidden]
        rates = [dropout.input_rate] + [dropout.hidden_rate] * len(model.hidden)
        self.given = [None if p == 0 else (rng.random((n, u)) >= p).astype(float) for p, u in zip(rates, units)]
        self.masks = dropout.masks(model, n).set(self.given)


def small_model(activation, bias, hidden=(9, 7), seed=3):
    rng = np.random.default_rng(seed)
    model = MLP(list(hidden), n_features=12, n_classes=5, activation=activation, bias=bias, dtype="float64")
    model.init_weights(rng, "he_normal")
    for b in model.biases or []:
        b[...] = rng.normal(0, 0.5, size=b.shape)
    x = model.prepare_inputs(rng.normal(0, 2, size=(13, 12)))
    return model, x, rng.integers(0, 5, 13)


@pytest.mark.parametrize("bias", ["input_column", "per_layer"])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("case", ["plain", "dropout", "smoothing", "both"])
def test_model_loss_and_gradients_equal_pytorch(activation, bias, case):
    model, x, y = small_model(activation, bias)
    keep = Keep(model, Dropout(0.2, 0.5), len(x), np.random.default_rng(9)) if case in ("dropout", "both") else None
    smoothing = 0.1 if case in ("smoothing", "both") else 0.0
    grads = model.new_gradients()
    masks = None if keep is None else keep.masks
    loss = model.loss_and_gradients(x, y, model.workspace(len(x)), grads, dropout=masks, label_smoothing=smoothing)
    tloss, tgrads = torch_loss_and_grads(model, x, y, keep=keep, label_smoothing=smoothing)
    assert loss == pytest.approx(tloss, rel=1e-12)
    for g, tg in zip(grads, tgrads):
        np.testing.assert_allclose(g, tg, rtol=1e-10, atol=1e-13)


def test_without_dropout_or_smoothing_the_passes_are_bit_identical_to_the_plain_call():
    model, x, y = small_model("relu", "input_column")
    a, b = model.new_gradients(), model.new_gradients()
    ws = model.workspace(len(x))
    la = model.loss_and_gradients(x, y, ws, a)
    lb = model.loss_and_gradients(x, y, ws, b, dropout=Dropout().masks(model, len(x)), label_smoothing=0.0)
    assert la == lb and all(np.array_equal(p, q) for p, q in zip(a, b))


# ------------------------------------------------------------------ label smoothing


@pytest.mark.parametrize("e", [0.05, 0.1, 0.5, 1.0])
@pytest.mark.parametrize("transposed", [False, True])
def test_label_smoothing_equals_pytorch_and_is_stable(e, transposed):
    rng = np.random.default_rng(4)
    logits = rng.normal(0, 3, size=(17, 6))
    logits[0] = [1e4, -1e4, 0, 5e3, 1e3, -3]  # large logits: no overflow, finite gradient
    y = rng.integers(0, 6, 17)
    tz = torch.tensor(logits, requires_grad=True)
    tloss = F.cross_entropy(tz, torch.tensor(y), label_smoothing=e)
    tloss.backward()
    work = np.ascontiguousarray(logits.T).T if transposed else logits.copy()
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow is fine
        loss, grad = softmax_cross_entropy(work, y, out=work, label_smoothing=e)
    assert loss == pytest.approx(tloss.item(), rel=1e-12)
    np.testing.assert_allclose(grad, tz.grad.numpy(), rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "0.1", True])
def test_label_smoothing_out_of_range_is_refused(bad):
    with pytest.raises(ConfigError, match="label_smoothing must be a number in"):
        softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 1]), label_smoothing=bad)


# ------------------------------------------------------------------ gradient checks


@pytest.mark.parametrize("bias", ["input_column", "per_layer"])
@pytest.mark.parametrize("activation", [*NEW, "sigmoid"])
def test_gradcheck_with_a_fixed_dropout_mask_and_label_smoothing(activation, bias):
    model, x, y = small_model(activation, bias, hidden=(6, 5))
    masks = Dropout(0.3, 0.4).masks(model, len(x)).draw(np.random.default_rng(2), len(x))
    for dropout, smoothing in ((masks, 0.0), (None, 0.1), (masks, 0.2)):
        result = check_gradients(
            model, x, y, epsilon=1e-6, tolerance=1e-6, mode="relative", dropout=dropout, label_smoothing=smoothing
        )
        assert result.passed, (dropout is not None, smoothing, result)


def test_gradcheck_notices_a_mask_left_out_of_the_backward_pass():
    """The check is sharp: gradients computed without the mask do not pass against the masked loss."""
    model, x, y = small_model("gelu", "per_layer", hidden=(6,))
    masks = Dropout(0.0, 0.5).masks(model, len(x)).draw(np.random.default_rng(2), len(x))
    assert masks.layers[1] is not None and (masks.layers[1].mask[: len(x)] == 0).any()
    plain = model.loss_and_gradients
    model.loss_and_gradients = lambda x, y, ws, g, **kw: plain(x, y, ws, g)  # type: ignore[method-assign]
    result = check_gradients(model, x, y, epsilon=1e-6, tolerance=1e-6, mode="relative", dropout=masks)
    assert not result.passed


# ------------------------------------------------------------------ dropout masks


def test_dropout_masks_are_inverted_seeded_and_spare_the_bias_column():
    model = MLP([300, 200], n_features=400, dtype="float32", bias="input_column")
    masks = Dropout(0.2, 0.5).masks(model, 64)
    masks.draw(np.random.default_rng(5), 50)
    first = [layer.mask[:50].copy() for layer in masks.layers if layer is not None]
    for layer, p in zip(masks.layers, [0.2, 0.5, 0.5]):
        assert layer is not None
        kept = layer.mask[:50, : layer.uniform.shape[1]]
        assert set(np.unique(kept)) == {np.float32(0.0), np.float32(1 / (1 - p))}
        assert abs(np.count_nonzero(kept) / kept.size - (1 - p)) < 0.02
    np.testing.assert_array_equal(masks.layers[0].mask[:, 400], 1.0)  # the bias column
    again = Dropout(0.2, 0.5).masks(model, 64).draw(np.random.default_rng(5), 50)
    assert all(np.array_equal(a, layer.mask[:50]) for a, layer in zip(first, again.layers))


def test_a_zero_rate_draws_nothing_and_a_batch_needs_its_own_masks():
    model = MLP([8], n_features=4, bias="input_column")
    rng = np.random.default_rng(1)
    state = rng.bit_generator.state
    masks = Dropout(0.0, 0.0).masks(model, 10).draw(rng, 10)
    assert rng.bit_generator.state == state and masks.layers == [None, None]
    masks = Dropout(0.0, 0.5).masks(model, 10).draw(rng, 10)
    ws, grads = model.workspace(10), model.new_gradients()
    x, y = model.prepare_inputs(np.ones((6, 4))), np.zeros(6, dtype=np.intp)
    with pytest.raises(InputError, match="masks are for 10 rows, the batch has 6"):
        model.loss_and_gradients(x, y, ws, grads, dropout=masks)
    with pytest.raises(InputError, match="do not fit buffers of 10"):
        masks.draw(rng, 11)
    with pytest.raises(InputError, match="exactly where the rate is not 0"):
        masks.set([np.ones((6, 4)), np.ones((6, 8))])


@pytest.mark.parametrize("kwargs", [{"input_rate": 1.0}, {"hidden_rate": -0.1}, {"hidden_rate": float("nan")}])
def test_bad_dropout_rates_are_refused(kwargs):
    with pytest.raises(ConfigError, match="must"):
        Dropout(**kwargs)


def numpy_steps(dropout, *, seed=0, smoothing=0.0):
    data = np.random.default_rng(2)
    model = MLP([16], n_features=10, n_classes=4, activation="gelu", dtype="float64", bias="input_column")
    model.init_weights(np.random.default_rng(1), "he_uniform")
    x, y = model.prepare_inputs(data.normal(size=(40, 10))), data.integers(0, 4, 40).astype(np.intp)
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    rng = np.random.default_rng(seed)
    return NumpySteps(model, opt, 8, x, y, dropout=dropout, rng=rng, label_smoothing=smoothing), model, rng


def test_numpy_steps_draw_masks_from_the_given_generator_and_resume_bit_identically():
    order = np.arange(40, dtype=np.intp)
    whole, model, _ = numpy_steps(Dropout(0.1, 0.5))
    assert whole.run(order, 0, 5) == 5
    split, resumed, rng = numpy_steps(Dropout(0.1, 0.5))
    split.run(order, 0, 2)
    saved = rng.bit_generator.state  # a checkpoint between steps: the generator and the weights
    split.rng = np.random.default_rng()
    split.rng.bit_generator.state = saved
    split.run(order, 2, 3)
    np.testing.assert_array_equal(model.flat_parameters, resumed.flat_parameters)
    other, other_model, _ = numpy_steps(Dropout(0.1, 0.5), seed=1)
    other.run(order, 0, 5)
    assert not np.array_equal(model.flat_parameters, other_model.flat_parameters)  # the masks matter


def test_numpy_steps_without_dropout_leave_the_generator_alone_and_need_it_with_dropout():
    steps, _, rng = numpy_steps(None, smoothing=0.1)
    state = rng.bit_generator.state
    assert steps.run(np.arange(40, dtype=np.intp), 0, 5) == 5 and rng.bit_generator.state == state
    assert np.all(np.isfinite(steps.losses[:5]))
    with pytest.raises(ConfigError, match="pass rng"):
        NumpySteps(steps.model, steps.optimizer, 8, steps.x, steps.y, dropout=Dropout(0.5))


# ------------------------------------------------------------------ initializers


INIT_TORCH = {  # name -> (uniform?, torch's std for fan_in, fan_out)
    "he_uniform": (True, lambda i, o: math.sqrt(2.0 / i)),
    "he_normal": (False, lambda i, o: math.sqrt(2.0 / i)),
    "glorot_uniform": (True, lambda i, o: math.sqrt(2.0 / (i + o))),
    "glorot_normal": (False, lambda i, o: math.sqrt(2.0 / (i + o))),
    "lecun_uniform": (True, lambda i, o: math.sqrt(1.0 / i)),
    "lecun_normal": (False, lambda i, o: math.sqrt(1.0 / i)),
}
TORCH_INIT = {
    "he_uniform": lambda t: torch.nn.init.kaiming_uniform_(t, mode="fan_in", nonlinearity="relu"),
    "he_normal": lambda t: torch.nn.init.kaiming_normal_(t, mode="fan_in", nonlinearity="relu"),
    "glorot_uniform": torch.nn.init.xavier_uniform_,
    "glorot_normal": torch.nn.init.xavier_normal_,
    "lecun_uniform": lambda t: torch.nn.init.kaiming_uniform_(t, mode="fan_in", nonlinearity="linear"),
    "lecun_normal": lambda t: torch.nn.init.kaiming_normal_(t, mode="fan_in", nonlinearity="linear"),
}


@pytest.mark.parametrize("name", sorted(INIT_TORCH))
def test_initializer_statistics_and_bounds_match_torch(name):
    fan_in, fan_out = 500, 300
    w = get_initializer(name)(np.random.default_rng(0), fan_in, fan_out)
    assert w.shape == (fan_in, fan_out)
    uniform, std_of = INIT_TORCH[name]
    std = std_of(fan_in, fan_out)
    torch.manual_seed(0)
    t = TORCH_INIT[name](torch.empty(fan_out, fan_in, dtype=torch.float64)).numpy()
    for drawn in (w, t):  # both against the formula: the same distribution
        assert abs(drawn.std() / std - 1) < 0.01 and abs(drawn.mean()) < 0.01 * std
    if uniform:
        bound = math.sqrt(3.0) * std
        assert np.abs(w).max() <= bound and np.abs(t).max() <= bound
        assert np.abs(w).max() > 0.999 * bound
    else:
        assert np.abs(w).max() > 3.5 * std  # untruncated


def test_lecun_normal_draws_what_fan_in_normal_draws():
    a = get_initializer("lecun_normal")(np.random.default_rng(3), 40, 7)
    b = get_initializer("fan_in_normal")(np.random.default_rng(3), 40, 7)
    np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------ max-norm


@pytest.mark.parametrize("bias", ["input_column", "per_layer"])
def test_max_norm_bounds_each_hidden_unit_and_leaves_the_rest_bit_identical(bias):
    model = MLP([30, 20], n_features=25, n_classes=6, bias=bias, dtype="float64")
    model.init_weights(np.random.default_rng(0), "uniform")
    for b in model.biases or []:
        b[...] = 5.0
    c = 3.0
    before = [p.copy() for p in model.parameters()]
    rows = [slice(0, 25) if bias == "input_column" else slice(None), slice(None)]
    norms = [np.linalg.norm(w[r], axis=0) for w, r in zip(model.weights, rows)]
    big = [n > c for n in norms]
    assert all(b.any() and (~b).any() for b in big)  # some columns of each layer on each side
    assert apply_max_norm(model, c) == sum(int(b.sum()) for b in big)
    for w, old, r, over, n in zip(model.weights, before[:: len(before) // 3], rows, big, norms):
        after = np.linalg.norm(w[r], axis=0)
        assert (after <= c * (1 + 1e-12)).all()
        np.testing.assert_allclose(after[over], c, rtol=1e-12)
        np.testing.assert_array_equal(w[:, ~over], old[:, ~over])  # untouched columns keep every bit
        np.testing.assert_allclose(w[r][:, over], old[r][:, over] * (c / n[over]), rtol=1e-15)
    if bias == "input_column":
        np.testing.assert_array_equal(model.weights[0][25], before[0][25])  # the bias row
    else:
        assert all((b == 5.0).all() for b in model.biases)
    np.testing.assert_array_equal(model.weights[-1], before[-1 if bias == "input_column" else -2])
    apply_max_norm(model, 0.5, output_layer=True)
    assert (np.linalg.norm(model.weights[-1], axis=0) <= 0.5 * (1 + 1e-12)).all()


@pytest.mark.parametrize("bad", [0, -1.0, float("inf"), float("nan"), True])
def test_max_norm_refuses_a_bad_bound(bad):
    with pytest.raises(ConfigError, match="max_norm must be a positive number"):
        apply_max_norm(MLP([3], n_features=2, bias="input_column"), bad)


# ------------------------------------------------------------------ compiled engine


@pytest.mark.parametrize("name", NEW)
def test_the_compiled_engine_declines_each_new_activation(name):
    model = MLP([6], n_features=4, n_classes=3, activation=name, bias="input_column")
    x, y = model.prepare_inputs(np.ones((10, 4))), np.zeros(10, dtype=np.intp)
    opt = SGD(model.parameters(), lr=0.1)
    assert why_not(model, opt, 5, x) == f"activation {name!r} has no compiled kernel"
    assert compiled_steps("auto", model, opt, 5, x, y) is None
    with pytest.raises(ConfigError, match=f"activation '{name}' has no compiled kernel"):
        compiled_steps("compiled", model, opt, 5, x, y)


def test_the_compiled_engine_runs_dropout_and_label_smoothing():
    from mlpkit.engine.option_steps import CompiledOptionSteps
    from mlpkit.engine.step_options import StepOptions

    model = MLP([6], n_features=4, n_classes=3, activation="relu", bias="input_column")
    x, y = model.prepare_inputs(np.ones((10, 4))), np.zeros(10, dtype=np.intp)
    opt = SGD(model.parameters(), lr=0.1)
    options = StepOptions(dropout=Dropout(hidden_rate=0.5), label_smoothing=0.1)
    assert why_not(model, opt, 5, x) is None and options.compiled_reason() is None
    runner = compiled_steps("auto", model, opt, 5, x, y, options=options, rng=np.random.default_rng(0))
    assert isinstance(runner, CompiledOptionSteps)


def test_a_trainer_falls_back_to_numpy_for_a_new_activation_and_learns():
    from mlpkit.train.trainer import Trainer

    data = np.random.default_rng(0)
    model = MLP([32], n_features=8, n_classes=2, activation="silu", bias="per_layer")
    model.init_weights(np.random.default_rng(1), "he_uniform")
    raw = data.normal(size=(256, 8))
    x, y = model.prepare_inputs(raw), (raw[:, 0] + raw[:, 1] > 0).astype(np.intp)
    trainer = Trainer(model, SGD(model.parameters(), lr=0.1, momentum=0.9), rng=data, epochs=5, batch_size=16)
    trainer.fit(x, y, x, y)
    assert trainer.engine_used == "numpy"
    assert model.evaluate(x, y)[1] > 0.9
