"""SGD (Nesterov, weight decay), Adam, AdamW and RMSprop against torch.optim in float64, their
state, the registry, gradient clipping, and how the engines treat optimizers they cannot run.

PyTorch is the reference framework only (a test dependency); its single-tensor code path
(foreach=False) is the plain per-array arithmetic that mlpkit's update is compared with.
"""

from __future__ import annotations

import numpy as np
import pytest

from mlpkit.core.arrays import aligned_zeros
from mlpkit.core.errors import CheckpointError, ConfigError
from mlpkit.optim import SGD, Adam, AdamW, RMSprop, clip_grad_norm, global_norm, make_optimizer
from mlpkit.optim.optimizer import split_like

torch = pytest.importorskip("torch")

SHAPES = [(7, 5), (5,), (5, 3), (3,)]
STEPS = 120
REL = 1e-12

#: (name, mlpkit options, torch class, torch options, {mlpkit state key: torch state key})
CASES = [
    ("sgd", dict(lr=0.05), torch.optim.SGD, dict(lr=0.05), {"velocity": None}),  # None: stays zero
    ("sgd", dict(lr=0.05, weight_decay=0.01), torch.optim.SGD, dict(lr=0.05, weight_decay=0.01), {"velocity": None}),
    *[
        (
            "sgd",
            dict(lr=0.05, momentum=0.9, nesterov=nesterov, weight_decay=wd),
            torch.optim.SGD,
            dict(lr=0.05, momentum=0.9, nesterov=nesterov, weight_decay=wd),
            {"velocity": "momentum_buffer"},
        )
        for nesterov in (False, True)
        for wd in (0.0, 0.01)
    ],
    *[
        (
            "adam",
            dict(lr=0.01, weight_decay=wd, betas=betas),
            torch.optim.Adam,
            dict(lr=0.01, weight_decay=wd, betas=betas),
            {"exp_avg": "exp_avg", "exp_avg_sq": "exp_avg_sq"},
        )
        for wd in (0.0, 0.01)
        for betas in ((0.9, 0.999), (0.8, 0.99))
    ],
    *[
        (
            "adamw",
            dict(lr=0.01, **kw),
            torch.optim.AdamW,
            dict(lr=0.01, **kw),
            {"exp_avg": "exp_avg", "exp_avg_sq": "exp_avg_sq"},
        )
        for kw in ({}, {"weight_decay": 0.0}, {"weight_decay": 0.1, "eps": 1e-6})  # {}: both default to 0.01
    ],
    *[
        (
            "rmsprop",
            dict(lr=0.005, momentum=momentum, centered=centered, weight_decay=wd),
            torch.optim.RMSprop,
            dict(lr=0.005, momentum=momentum, centered=centered, weight_decay=wd),
            {"square_avg": "square_avg"}
            | ({"momentum_buffer": "momentum_buffer"} if momentum else {})
            | ({"grad_avg": "grad_avg"} if centered else {}),
        )
        for momentum in (0.0, 0.9)
        for centered in (False, True)
        for wd in (0.0, 0.01)
    ],
]
CASE_IDS = [f"{c[0]}-{'-'.join(f'{k}={v}' for k, v in c[1].items() if k != 'lr') or 'defaults'}" for c in CASES]


def make_params(flat: bool, rng: np.random.Generator) -> list[np.ndarray]:
    """Parameter arrays: consecutive views of one buffer (as a model's) or separate arrays."""
    values = [rng.normal(size=s) for s in SHAPES]
    if not flat:
        return values
    buffer = aligned_zeros(sum(v.size for v in values), np.float64)
    views = split_like(buffer, values)
    for view, value in zip(views, values):
        view[...] = value
    return views


def gradients(params: list[np.ndarray], rng: np.random.Generator, out: list[np.ndarray]) -> list[np.ndarray]:
    """A gradient that depends on the weights (so differences would grow) plus noise from ``rng``."""
    for o, p in zip(out, params):
        o[...] = 0.5 * p + rng.normal(size=p.shape)
    return out


def assert_close(ours: np.ndarray, theirs: np.ndarray, what: str) -> None:
    """Within REL of the reference, relative to the reference array's largest entry."""
    scale = max(float(np.abs(theirs).max()), 1e-300)
    err = float(np.abs(ours - theirs).max())
    assert err <= REL * scale, f"{what}: max difference {err:.3g} for scale {scale:.3g}"


def run_pair(name, options, torch_cls, torch_options, *, flat, steps=STEPS, seed=0):
    rng = np.random.default_rng(seed)
    params = make_params(flat, rng)
    tparams = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    opt = make_optimizer(name, params, **options)
    topt = torch_cls(tparams, foreach=False, **torch_options)
    grads = [np.empty_like(p) for p in params]
    grad_rng = np.random.default_rng(seed + 1)
    for _ in range(steps):
        gradients(params, grad_rng, grads)
        for tp, g in zip(tparams, grads):
            tp.grad = torch.tensor(g.copy())
        opt.step(grads)
        topt.step()
    return opt, params, topt, tparams


@pytest.mark.parametrize("flat", [True, False], ids=["flat", "arrays"])
@pytest.mark.parametrize(("name", "options", "torch_cls", "torch_options", "state_keys"), CASES, ids=CASE_IDS)
def test_equals_torch_optim_for_120_steps(name, options, torch_cls, torch_options, state_keys, flat):
    opt, params, topt, tparams = run_pair(name, options, torch_cls, torch_options, flat=flat)
    for i, (p, tp) in enumerate(zip(params, tparams)):
        assert_close(p, tp.detach().numpy(), f"weights {i}")
    state = opt.state_dict()
    expected_keys = {f"{k}.{i}" for k in state_keys for i in range(len(SHAPES))}
    assert set(state) - {"step"} == expected_keys
    for i, tp in enumerate(tparams):
        tstate = topt.state[tp]
        for ours, theirs in state_keys.items():
            if theirs is None:
                assert not state[f"{ours}.{i}"].any()
            else:
                assert_close(state[f"{ours}.{i}"], tstate[theirs].numpy(), f"{ours}.{i}")
        if "step" in tstate:
            assert int(state["step"]) == int(tstate["step"]) == STEPS


def test_weights_moved_enough_for_the_comparison_to_mean_something():
    rng = np.random.default_rng(0)
    start = make_params(False, rng)
    for name, options, torch_cls, torch_options, _ in CASES:
        _, params, _, _ = run_pair(name, options, torch_cls, torch_options, flat=False)
        moved = max(float(np.abs(p - s).max()) for p, s in zip(params, start))
        assert moved > 0.05, name


def test_plain_sgd_path_is_the_seed_rule_bit_for_bit():
    """No Nesterov, no weight decay: the same operations as sgd_momentum_update, exactly."""
    from mlpkit.optim import sgd_momentum_update

    rng = np.random.default_rng(3)
    params = make_params(True, rng)
    ref_w = [p.copy() for p in params]
    ref_v = [np.zeros_like(p) for p in params]
    opt = SGD(params, lr=0.1, momentum=0.9)
    assert opt.plain
    grads = [np.empty_like(p) for p in params]
    for _ in range(30):
        gradients(params, rng, grads)
        opt.step(grads)
        for w, g, v in zip(ref_w, grads, ref_v):
            sgd_momentum_update(w, g, v, np.empty_like(w), lr=0.1, momentum=0.9)
    for p, w in zip(params, ref_w):
        np.testing.assert_array_equal(p, w)


def test_nesterov_and_decay_exact_small_steps():
    """Pinned numbers: d = g + m v (Nesterov); g + wd w (coupled decay); AdamW shrinks w first."""
    w = np.array([1.0, -2.0])
    opt = SGD([w], lr=0.5, momentum=0.5, nesterov=True)
    opt.step([np.array([1.0, 2.0])])  # v = [1, 2]; d = g + 0.5 v = [1.5, 3]; w = [0.25, -3.5]
    np.testing.assert_array_equal(w, [0.25, -3.5])
    w = np.array([2.0])
    SGD([w], lr=0.5, weight_decay=0.5).step([np.array([1.0])])  # g = 1 + 1 = 2; w = 2 - 1
    np.testing.assert_array_equal(w, [1.0])
    w = np.array([2.0])
    AdamW([w], lr=0.5, weight_decay=0.5).step([np.array([0.0])])  # w(1 - 0.25); zero gradient: no Adam step
    np.testing.assert_array_equal(w, [1.5])
    w = np.array([3.0])
    Adam([w], lr=0.1).step([np.array([-7.0])])  # first step: m^ = g, sqrt(v^) = |g|: w -= lr g / (|g| + eps)
    np.testing.assert_allclose(w, [3.0 + 0.1 * 7.0 / (7.0 + 1e-8)], rtol=1e-15)


# ------------------------------------------------------------------ state


@pytest.mark.parametrize(("name", "options", "torch_cls", "torch_options", "state_keys"), CASES, ids=CASE_IDS)
def test_state_round_trip_mid_run_is_bit_identical(name, options, torch_cls, torch_options, state_keys):
    rng = np.random.default_rng(5)
    start = make_params(True, rng)
    grads_all = [[rng.normal(size=s) for s in SHAPES] for _ in range(100)]

    whole = [p.copy() for p in start]
    opt = make_optimizer(name, whole, **options)
    for g in grads_all:
        opt.step(g)

    first = make_params(True, np.random.default_rng(5))
    opt_a = make_optimizer(name, first, **options)
    for g in grads_all[:50]:
        opt_a.step(g)
    saved_w, saved_state = [p.copy() for p in first], opt_a.state_dict()
    opt_a.step(grads_all[50])  # the saved state is a copy: stepping on does not change it
    resumed = make_params(True, np.random.default_rng(99))
    for r, s in zip(resumed, saved_w):
        r[...] = s
    opt_b = make_optimizer(name, resumed, **options)
    opt_b.load_state_dict(saved_state)
    for g in grads_all[50:]:
        opt_b.step(g)
    for r, w in zip(resumed, whole):
        np.testing.assert_array_equal(r, w)
    for key, value in opt.state_dict().items():
        np.testing.assert_array_equal(opt_b.state_dict()[key], value)


def test_state_survives_a_checkpoint_file(tmp_path):
    from mlpkit.train.checkpoint import load_checkpoint, save_checkpoint

    params = make_params(True, np.random.default_rng(0))
    opt = RMSprop(params, lr=0.01, momentum=0.9, centered=True)
    opt.step([np.ones(s) for s in SHAPES])
    save_checkpoint(tmp_path / "c.npz", {"optimizer": opt.state_dict()})
    back = load_checkpoint(tmp_path / "c.npz")["optimizer"]
    other = RMSprop([p.copy() for p in params], lr=0.01, momentum=0.9, centered=True)
    other.load_state_dict(back)
    assert other.steps == 1
    for key, value in opt.state_dict().items():
        np.testing.assert_array_equal(other.state_dict()[key], value)


@pytest.mark.parametrize(("name", "options", "torch_cls", "torch_options", "state_keys"), CASES, ids=CASE_IDS)
def test_state_spec_describes_the_state_dict(name, options, torch_cls, torch_options, state_keys):
    opt = make_optimizer(name, make_params(True, np.random.default_rng(0)), **options)
    state = opt.state_dict()
    assert {k: (v.shape, v.dtype) for k, v in state.items()} == opt.state_spec()
    assert ("step" in state) == (name != "sgd")


def test_load_refuses_a_state_that_does_not_fit():
    params = [np.zeros((2, 3)), np.zeros(3)]
    adam = Adam(params, lr=0.1)
    good = adam.state_dict()
    with pytest.raises(CheckpointError, match="exp_avg.1"):
        adam.load_state_dict({k: v for k, v in good.items() if k != "exp_avg.1"})
    with pytest.raises(CheckpointError, match="exp_avg_sq.0"):
        adam.load_state_dict({**good, "exp_avg_sq.0": np.zeros(6)})
    with pytest.raises(CheckpointError, match="step"):
        adam.load_state_dict({k: v for k, v in good.items() if k != "step"})
    with pytest.raises(CheckpointError, match="step"):
        adam.load_state_dict({**good, "step": np.array(1.5)})
    with pytest.raises(CheckpointError, match="velocity.0"):
        adam.load_state_dict({**good, "velocity.0": np.zeros((2, 3))})  # an SGD state is not Adam's
    with pytest.raises(CheckpointError, match="momentum_buffer.0"):
        RMSprop(params, lr=0.1, momentum=0.5).load_state_dict(RMSprop(params, lr=0.1).state_dict())
    partial = {**good, "exp_avg.0": np.ones((2, 3)), "exp_avg.1": np.zeros(4)}
    with pytest.raises(CheckpointError):
        adam.load_state_dict(partial)
    assert not adam.state_dict()["exp_avg.0"].any()  # a refused state changes nothing


# ------------------------------------------------------------------ registry and validation


@pytest.mark.parametrize(
    ("name", "options", "match"),
    [
        ("lbfgs", {"lr": 0.1}, "unknown optimizer 'lbfgs'; choose one of adam, adamw, rmsprop, sgd"),
        ("sgd", {"lr": 0.1, "beta": 0.9}, "optimizer 'sgd' has no option 'beta'; its options: lr, momentum"),
        ("sgd", {}, "optimizer 'sgd' needs lr"),
        ("sgd", {"lr": 0.1, "nesterov": True}, "nesterov needs a momentum > 0"),
        ("sgd", {"lr": 0.1, "momentum": 0.9, "nesterov": "yes"}, "nesterov must be true or false"),
        ("sgd", {"lr": 0.1, "weight_decay": -1}, "weight_decay must be >= 0, got -1"),
        ("adam", {"lr": -0.1}, "learning_rate must be > 0, got -0.1"),
        ("adam", {"lr": "0.1"}, "learning_rate must be a number, got '0.1'"),
        ("adam", {"lr": True}, "learning_rate must be a number"),
        ("adam", {"betas": (0.9, 1.0)}, r"betas\[1\] must lie in \[0, 1\), got 1.0"),
        ("adam", {"betas": 0.9}, "betas must be a pair"),
        ("adam", {"eps": 0}, "eps must be > 0"),
        ("adamw", {"weight_decay": float("nan")}, "weight_decay must be >= 0"),
        ("adamw", {"weight_decay": float("inf")}, "weight_decay must be finite"),
        ("rmsprop", {"alpha": 1.5}, r"alpha must lie in \[0, 1\)"),
        ("rmsprop", {"momentum": -0.1}, "momentum must lie"),
        ("rmsprop", {"centered": 1}, "centered must be true or false"),
    ],
)
def test_registry_refuses_bad_names_options_and_values(name, options, match):
    with pytest.raises(ConfigError, match=match) as info:
        make_optimizer(name, [np.zeros(3)], **options)
    assert "\n" not in str(info.value)


def test_registry_makes_each_optimizer_with_its_name():
    from mlpkit.optim import OPTIMIZERS

    assert sorted(OPTIMIZERS) == ["adam", "adamw", "rmsprop", "sgd"]
    for name in OPTIMIZERS:
        opt = make_optimizer(name, [np.zeros(3)], lr=0.1)
        assert opt.name == name and opt.lr == 0.1
    assert make_optimizer("adamw", [np.zeros(1)]).weight_decay == 0.01  # PyTorch's default


# ------------------------------------------------------------------ clipping


@pytest.mark.parametrize("max_norm", [0.5, 3.0, 1e3])
@pytest.mark.parametrize("flat", [True, False], ids=["flat", "arrays"])
def test_clip_grad_norm_equals_torch(max_norm, flat):
    grads = make_params(flat, np.random.default_rng(11))
    tgrads = [torch.tensor(g.copy()) for g in grads]
    tparams = [torch.zeros_like(t, requires_grad=True) for t in tgrads]
    for tp, tg in zip(tparams, tgrads):
        tp.grad = tg
    before = [g.copy() for g in grads]
    norm = clip_grad_norm(grads, max_norm)
    tnorm = torch.nn.utils.clip_grad_norm_(tparams, max_norm, foreach=False)
    assert abs(norm - float(tnorm)) <= REL * float(tnorm)
    assert abs(norm - np.sqrt(sum(float((b**2).sum()) for b in before))) <= REL * norm
    for g, tp in zip(grads, tparams):
        assert_close(g, tp.grad.numpy(), "clipped gradient")
    if max_norm < norm:
        assert global_norm(grads) == pytest.approx(max_norm, rel=1e-6)
    else:
        for g, b in zip(grads, before):
            np.testing.assert_array_equal(g, b)


def test_clip_grad_norm_refuses_a_bad_bound_and_leaves_non_finite_gradients():
    with pytest.raises(ConfigError, match="max_norm must be > 0"):
        clip_grad_norm([np.ones(2)], 0.0)
    g = np.array([np.inf, 1.0])
    assert clip_grad_norm([g], 1.0) == np.inf
    np.testing.assert_array_equal(g, [np.inf, 1.0])


# ------------------------------------------------------------------ engines


def _tiny_problem(rng):
    from mlpkit.nn.mlp import MLP

    model = MLP([16], n_features=12, n_classes=3, dtype="float64").init_weights(rng)
    centers = rng.normal(size=(3, 12)) * 3
    y = rng.integers(0, 3, 240)
    x = model.prepare_inputs(centers[y] + rng.normal(size=(240, 12)))
    return model, x, y


@pytest.mark.parametrize(
    ("name", "options", "reason"),
    [
        ("rmsprop", dict(lr=0.01), "optimizer rmsprop has no compiled kernel"),
    ],
)
def test_the_compiled_engine_declines_what_it_cannot_run(name, options, reason):
    from mlpkit.engine.compiled import why_not
    from mlpkit.engine.selection import compiled_steps

    model, x, y = _tiny_problem(np.random.default_rng(0))
    opt = make_optimizer(name, model.parameters(), **options)
    assert why_not(model, opt, 16, x) == reason
    assert compiled_steps("auto", model, opt, 16, x, y) is None
    with pytest.raises(ConfigError, match=reason):
        compiled_steps("compiled", model, opt, 16, x, y)
    assert why_not(model, SGD(model.parameters(), lr=0.1, momentum=0.9), 16, x) is None


@pytest.mark.parametrize("name", ["adam", "rmsprop", "nesterov"])
def test_trainer_runs_every_optimizer_and_trains(name):
    from mlpkit.train.trainer import Trainer

    rng = np.random.default_rng(1)
    model, x, y = _tiny_problem(rng)
    if name == "nesterov":
        opt = SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4)
    else:
        opt = make_optimizer(name, model.parameters(), lr=0.01)
    loss_before, _ = model.evaluate(x, y)
    trainer = Trainer(model, opt, rng=rng, epochs=5, batch_size=16, validations_per_epoch=1)
    trainer.fit(x[:200], y[:200], x[200:], y[200:])
    assert trainer.engine_used == ("numpy" if name == "rmsprop" else "compiled")  # engine.option_steps
    assert trainer.state.step == 5 * (200 // 16)
    loss, accuracy = model.evaluate(x, y)
    assert accuracy > 0.9 and loss < loss_before / 2, (accuracy, loss, loss_before)


def test_numpy_steps_run_the_optimizer_itself_when_it_is_not_plain_sgd():
    """A model big enough for the blocked SGD update: Nesterov/decay steps equal opt.step's."""
    from mlpkit.engine.numpy_steps import BlockedSGDUpdate, NumpySteps
    from mlpkit.nn.mlp import MLP

    rng = np.random.default_rng(2)
    model = MLP([600, 500], n_features=30, n_classes=4, dtype="float64").init_weights(rng)
    twin = MLP([600, 500], n_features=30, n_classes=4, dtype="float64")
    twin.load_state_dict(model.state_dict())
    x, y = model.prepare_inputs(rng.normal(size=(64, 30))), rng.integers(0, 4, 64)
    options = dict(lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-3)
    runner = NumpySteps(model, SGD(model.parameters(), **options), 16, x, y, workers=2)
    assert not isinstance(runner._update, BlockedSGDUpdate)
    runner.run(np.arange(64), 0, 4)
    runner.close()
    opt = SGD(twin.parameters(), **options)
    ws, grads = twin.workspace(16), twin.new_gradients()
    for s in range(4):
        twin.loss_and_gradients(x[s * 16 : (s + 1) * 16], y[s * 16 : (s + 1) * 16], ws, grads)
        opt.step(grads)
    for a, b in zip(model.parameters(), twin.parameters()):
        np.testing.assert_array_equal(a, b)
