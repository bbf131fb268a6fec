"""Learning-rate schedules against torch.optim.lr_scheduler in float64: the lr of every step, and
the weights after 120 steps of an optimizer they drive; their state round trip; the registry."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlpkit.core.errors import CheckpointError, ConfigError
from mlpkit.optim import SCHEDULES, ReduceOnPlateau, make_optimizer, make_schedule

torch = pytest.importorskip("torch")
sched = torch.optim.lr_scheduler

SHAPES = [(6, 4), (4,)]
STEPS = 120
REL = 1e-12
BASE_LR = 0.05


def cosine_lambda(warmup: int, total: int, min_lr: float, base: float):
    """Hugging Face's cosine-with-warm-up factor, with a floor at min_lr (the reference)."""

    def factor(t: int) -> float:
        if t < warmup:
            return t / warmup
        if t >= total:
            return min_lr / base
        progress = (t - warmup) / (total - warmup)
        return (min_lr + (base - min_lr) * 0.5 * (1 + math.cos(math.pi * progress))) / base

    return factor


#: (id, mlpkit name, mlpkit options, a function making torch's scheduler from its optimizer)
SCHEDULE_CASES = [
    ("step", "step", dict(step_size=7, gamma=0.5), lambda o: sched.StepLR(o, step_size=7, gamma=0.5)),
    ("exponential", "exponential", dict(gamma=0.97), lambda o: sched.ExponentialLR(o, gamma=0.97)),
    (
        "cosine",
        "cosine_warmup",
        dict(warmup_steps=10, total_steps=100, min_lr=1e-3),
        lambda o: sched.LambdaLR(o, cosine_lambda(10, 100, 1e-3, BASE_LR)),
    ),
    (
        "cosine-no-warmup",
        "cosine_warmup",
        dict(warmup_steps=0, total_steps=STEPS),
        lambda o: sched.LambdaLR(o, cosine_lambda(0, STEPS, 0.0, BASE_LR)),
    ),
    (
        "one-cycle-cos",
        "one_cycle",
        dict(max_lr=0.1, total_steps=STEPS),
        lambda o: sched.OneCycleLR(o, max_lr=0.1, total_steps=STEPS, cycle_momentum=False),
    ),
    (
        "one-cycle-linear",
        "one_cycle",
        dict(max_lr=0.2, total_steps=STEPS, pct_start=0.25, div_factor=10.0, final_div_factor=100.0, anneal="linear"),
        lambda o: sched.OneCycleLR(
            o,
            max_lr=0.2,
            total_steps=STEPS,
            pct_start=0.25,
            div_factor=10.0,
            final_div_factor=100.0,
            anneal_strategy="linear",
            cycle_momentum=False,
        ),
    ),
]
OPTIMIZER_CASES = [
    ("sgd", dict(momentum=0.9, nesterov=True), torch.optim.SGD, dict(momentum=0.9, nesterov=True)),
    ("adamw", dict(weight_decay=0.05), torch.optim.AdamW, dict(weight_decay=0.05)),
    ("rmsprop", dict(centered=True), torch.optim.RMSprop, dict(centered=True)),
]


def assert_close(ours, theirs, what):
    scale = max(float(np.abs(theirs).max()), 1e-300)
    err = float(np.abs(np.asarray(ours) - np.asarray(theirs)).max())
    assert err <= REL * scale, f"{what}: max difference {err:.3g} for scale {scale:.3g}"


def gradient_stream(seed: int):
    rng = np.random.default_rng(seed)
    while True:
        yield [rng.normal(size=s) for s in SHAPES]


@pytest.mark.parametrize(
    ("opt_name", "opt_kw", "torch_opt", "torch_kw"), OPTIMIZER_CASES, ids=[c[0] for c in OPTIMIZER_CASES]
)
@pytest.mark.parametrize(("case", "name", "options", "make_torch"), SCHEDULE_CASES, ids=[c[0] for c in SCHEDULE_CASES])
def test_schedule_equals_torch_scheduler(case, name, options, make_torch, opt_name, opt_kw, torch_opt, torch_kw):
    rng = np.random.default_rng(0)
    params = [rng.normal(size=s) for s in SHAPES]
    tparams = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    opt = make_optimizer(opt_name, params, lr=BASE_LR, **opt_kw)
    topt = torch_opt(tparams, lr=BASE_LR, foreach=False, **torch_kw)
    schedule = make_schedule(name, opt, **options)
    tschedule = make_torch(topt)
    ours, theirs = [], []
    grads = gradient_stream(1)
    for _ in range(STEPS):
        ours.append(opt.lr)
        theirs.append(topt.param_groups[0]["lr"])
        g = next(grads)
        for tp, gi in zip(tparams, g):
            tp.grad = torch.tensor(gi + 0.5 * tp.detach().numpy())
        opt.step([gi + 0.5 * p for gi, p in zip(g, params)])
        topt.step()
        schedule.step()
        tschedule.step()
    assert_close(ours, theirs, "lr sequence")
    assert len(set(ours)) > 10  # the schedule did change the lr
    for p, tp in zip(params, tparams):
        assert_close(p, tp.detach().numpy(), "weights")


def test_step_and_exponential_are_torch_bit_for_bit():
    """Both multiply the current lr, as torch does: not even rounding differs."""
    for name, options, make in [SCHEDULE_CASES[0][1:], SCHEDULE_CASES[1][1:]]:
        opt = make_optimizer("sgd", [np.zeros(2)], lr=BASE_LR)
        topt = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=BASE_LR)
        ours, theirs = make_schedule(name, opt, **options), make(topt)
        for _ in range(STEPS):
            topt.step()
            lr = ours.step()
            theirs.step()
            assert lr == topt.param_groups[0]["lr"]


def test_cosine_warmup_shape():
    opt = make_optimizer("sgd", [np.zeros(1)], lr=1.0)
    s = make_schedule("cosine_warmup", opt, warmup_steps=4, total_steps=12, min_lr=0.1)
    lrs = [opt.lr] + [s.step() for _ in range(14)]
    assert lrs[:5] == [0.0, 0.25, 0.5, 0.75, 1.0]  # linear warm-up from 0, then the peak
    assert lrs[8] == pytest.approx(0.55)  # half-way down the cosine: (1 + 0.1) / 2
    assert lrs[12:] == [0.1, 0.1, 0.1]


def test_one_cycle_holds_its_last_lr_past_the_end():
    opt = make_optimizer("sgd", [np.zeros(1)], lr=1.0)
    s = make_schedule("one_cycle", opt, max_lr=1.0, total_steps=10)
    assert opt.lr == pytest.approx(1.0 / 25)
    lrs = [s.step() for _ in range(15)]
    assert max(lrs) == pytest.approx(1.0)
    assert lrs[8:] == [pytest.approx(1.0 / 25 / 1e4)] * 7


@pytest.mark.parametrize(
    "options",
    [
        dict(factor=0.5, patience=2),
        dict(factor=0.5, patience=1, cooldown=2, min_lr=0.01),
        dict(factor=0.3, patience=0, mode="max", threshold=0.01),
        dict(factor=0.5, patience=1, threshold=0.05, threshold_mode="abs"),
    ],
    ids=["min", "cooldown-floor", "max", "abs"],
)
def test_reduce_on_plateau_equals_torch(options):
    rng = np.random.default_rng(4)
    metrics = np.concatenate([np.linspace(1.0, 0.5, 10), 0.5 + 0.02 * rng.random(50)])
    if options.get("mode") == "max":
        metrics = -metrics
    opt = make_optimizer("sgd", [np.zeros(1)], lr=0.1)
    topt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    ours = make_schedule("reduce_on_plateau", opt, **options)
    theirs = sched.ReduceLROnPlateau(topt, **options)
    assert ours.needs_metric
    lrs, tlrs = [], []
    for m in metrics:
        lrs.append(ours.step(float(m)))
        theirs.step(float(m))
        tlrs.append(topt.param_groups[0]["lr"])
    assert lrs == tlrs
    assert len(set(lrs)) >= 3  # it did reduce, more than once
    with pytest.raises(ConfigError, match="stepped with a validation metric"):
        ours.step()


# ------------------------------------------------------------------ resume


@pytest.mark.parametrize(("case", "name", "options", "make_torch"), SCHEDULE_CASES, ids=[c[0] for c in SCHEDULE_CASES])
def test_optimizer_and_schedule_resume_bit_identically(case, name, options, make_torch):
    grads_all = [g for g, _ in zip(gradient_stream(2), range(100))]
    start = [np.random.default_rng(3).normal(size=s) for s in SHAPES]

    def build(params):
        opt = make_optimizer("adam", params, lr=BASE_LR, weight_decay=0.01)
        return opt, make_schedule(name, opt, **options)

    whole = [p.copy() for p in start]
    opt, schedule = build(whole)
    for g in grads_all:
        opt.step(g)
        schedule.step()

    first = [p.copy() for p in start]
    opt_a, schedule_a = build(first)
    for g in grads_all[:50]:
        opt_a.step(g)
        schedule_a.step()
    saved = ([p.copy() for p in first], opt_a.state_dict(), schedule_a.state_dict())

    resumed = [p.copy() for p in saved[0]]
    opt_b, schedule_b = build(resumed)  # rebuilt from the config: lr at its start again
    opt_b.load_state_dict(saved[1])
    schedule_b.load_state_dict(saved[2])
    assert opt_b.lr == opt_a.lr and schedule_b.last_step == 50
    for g in grads_all[50:]:
        opt_b.step(g)
        schedule_b.step()
    for r, w in zip(resumed, whole):
        np.testing.assert_array_equal(r, w)
    assert opt_b.lr == opt.lr
    for key, value in schedule.state_dict().items():
        np.testing.assert_array_equal(schedule_b.state_dict()[key], value)


def test_plateau_resumes_bit_identically():
    metrics = [1.0, 0.9, 0.95, 0.93, 0.92, 0.94, 0.91, 0.96, 0.97, 0.98, 0.99, 0.95]

    def build():
        opt = make_optimizer("sgd", [np.zeros(1)], lr=0.1)
        return opt, ReduceOnPlateau(opt, factor=0.5, patience=1, cooldown=1)

    opt, s = build()
    whole = [s.step(m) for m in metrics]
    opt_a, s_a = build()
    for m in metrics[:5]:
        s_a.step(m)
    opt_b, s_b = build()
    s_b.load_state_dict(s_a.state_dict())
    assert [s_a.step(m) for m in metrics[5:]] == [s_b.step(m) for m in metrics[5:]] == whole[5:]
    assert (s_b.best, s_b.num_bad, s_b.cooldown_counter) == (s.best, s.num_bad, s.cooldown_counter)


def test_schedule_state_survives_a_checkpoint_file(tmp_path):
    from mlpkit.train.checkpoint import load_checkpoint, save_checkpoint

    opt = make_optimizer("sgd", [np.zeros(1)], lr=0.1)
    s = ReduceOnPlateau(opt, factor=0.5, patience=0)  # best is inf before the first metric
    save_checkpoint(tmp_path / "c.npz", {"schedule": s.state_dict()})
    s.step(1.0)
    s.step(2.0)
    assert opt.lr == 0.05
    s.load_state_dict(load_checkpoint(tmp_path / "c.npz")["schedule"])
    assert (opt.lr, s.best, s.last_step) == (0.1, math.inf, 0)


@pytest.mark.parametrize("key", ["step", "lr", "base_lr", "best", "num_bad", "cooldown_counter"])
def test_load_refuses_a_state_that_does_not_fit(key):
    opt = make_optimizer("sgd", [np.zeros(1)], lr=0.1)
    s = ReduceOnPlateau(opt)
    good = s.state_dict()
    with pytest.raises(CheckpointError, match=key):
        s.load_state_dict({k: v for k, v in good.items() if k != key})
    with pytest.raises(CheckpointError, match=key):
        s.load_state_dict({**good, key: np.zeros(2)})
    assert opt.lr == 0.1


# ------------------------------------------------------------------ registry


def test_registry_names():
    assert sorted(SCHEDULES) == ["cosine_warmup", "exponential", "one_cycle", "reduce_on_plateau", "step"]
    assert [SCHEDULES[n].needs_metric for n in sorted(SCHEDULES)] == [False, False, False, True, False]


@pytest.mark.parametrize(
    ("name", "options", "match"),
    [
        ("linear", {}, "unknown schedule 'linear'; choose one of cosine_warmup, exponential, one_cycle"),
        ("step", {"gamma": 0.5}, "schedule 'step' needs step_size"),
        (
            "step",
            {"step_size": 3, "decay": 0.5},
            "schedule 'step' has no option 'decay'; its options: step_size, gamma",
        ),
        ("step", {"step_size": 0}, "step_size must be >= 1, got 0"),
        ("step", {"step_size": 2.5}, "step_size must be an integer, got 2.5"),
        ("exponential", {"gamma": 0}, "gamma must be > 0"),
        ("cosine_warmup", {"warmup_steps": 10, "total_steps": 10}, "total_steps must be >= 11"),
        ("cosine_warmup", {"warmup_steps": -1, "total_steps": 10}, "warmup_steps must be >= 0"),
        ("cosine_warmup", {"warmup_steps": 1, "total_steps": 10, "min_lr": 1.0}, "min_lr must be at most"),
        ("one_cycle", {"max_lr": 0.1, "total_steps": 1}, "total_steps must be >= 2"),
        ("one_cycle", {"max_lr": 0.1, "total_steps": 10, "pct_start": 1.0}, r"pct_start must lie in \(0, 1\)"),
        ("one_cycle", {"max_lr": 0.1, "total_steps": 10, "pct_start": 0.1}, "pct_start x total_steps must be > 1"),
        ("one_cycle", {"max_lr": 0.1, "total_steps": 10, "anneal": "cosine"}, "anneal must be one of 'cos', 'linear'"),
        ("reduce_on_plateau", {"factor": 1.0}, r"factor must lie in \(0, 1\)"),
        ("reduce_on_plateau", {"patience": -1}, "patience must be >= 0"),
        ("reduce_on_plateau", {"mode": "up"}, "mode must be one of 'min', 'max'"),
    ],
)
def test_registry_refuses_bad_names_options_and_values(name, options, match):
    opt = make_optimizer("sgd", [np.zeros(1)], lr=0.1)
    with pytest.raises(ConfigError, match=match) as info:
        make_schedule(name, opt, **options)
    assert "\n" not in str(info.value)
    assert opt.lr == 0.1  # a refused schedule leaves the lr alone
