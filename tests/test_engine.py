"""The fast float32 engine computes what a plain float64 implementation computes.

The reference below is written the obvious way (fresh arrays, f'(z) from z, one-hot
matrices, np.argmax) and shares no code with mlpkit. The engine's float32 results must match
it to float32 tolerance: forward, loss, every gradient, SGD-momentum steps and evaluate(),
for every activation, 1-3 hidden layers and both bias modes. No timings are asserted; the
last tests check that a training step allocates no arrays and that the parallel and blocked
paths give bit-identical numbers.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from mlpkit.core.arrays import ALIGNMENT, flat_span
from mlpkit.engine.evaluator import Evaluator
from mlpkit.engine.numpy_steps import BLOCKED_MIN, BlockedSGDUpdate
from mlpkit.engine.threads import WorkerPool
from mlpkit.nn.losses import LossScratch, cross_entropy_sum_and_hits, softmax_cross_entropy
from mlpkit.nn.mlp import MLP
from mlpkit.optim.sgd import SGD
from mlpkit.train.callbacks import Callback, History
from mlpkit.train.trainer import Trainer

A, B = 1.7159, 2.0 / 3.0
ACTIVATIONS = {  # f(z), f'(z) from z
    "sigmoid": (lambda z: 1 / (1 + np.exp(-z)), lambda z: np.exp(-z) / (1 + np.exp(-z)) ** 2),
    "improved_sigmoid": (lambda z: A * np.tanh(B * z), lambda z: A * B / np.cosh(B * z) ** 2),
    "tanh": (np.tanh, lambda z: 1 / np.cosh(z) ** 2),
    "relu": (lambda z: np.maximum(z, 0), lambda z: (z > 0).astype(float)),
}
HIDDEN = [[16], [12, 9], [8, 7, 6]]


# ------------------------------------------------------------------ float64 reference
def ref_forward(weights, biases, x, activation):
    """Pre-activations z_i and outputs a_i of every layer; the last z is the logits."""
    f, _ = ACTIVATIONS[activation]
    a, zs, outs = x, [], [x]
    for i, w in enumerate(weights):
        z = a @ w + (biases[i] if biases is not None else 0.0)
        zs.append(z)
        a = f(z) if i < len(weights) - 1 else z
        outs.append(a)
    return zs, outs


def ref_loss_and_gradients(weights, biases, x, y, activation, n_classes):
    _, df = ACTIVATIONS[activation]
    zs, outs = ref_forward(weights, biases, x, activation)
    logits = zs[-1]
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    onehot = np.eye(n_classes)[y]
    loss = -np.mean(np.log(p[np.arange(len(y)), y]))
    delta = (p - onehot) / len(y)
    gw, gb = [None] * len(weights), [None] * len(weights)
    for i in range(len(weights) - 1, -1, -1):
        gw[i] = outs[i].T @ delta
        gb[i] = delta.sum(axis=0)
        if i > 0:
            delta = (delta @ weights[i].T) * df(zs[i - 1])
    return loss, gw, gb


def ref_evaluate(weights, biases, x, y, activation):
    logits = ref_forward(weights, biases, x, activation)[0][-1]
    shifted = logits - logits.max(axis=1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -np.mean(logp[np.arange(len(y)), y]), np.mean(np.argmax(logits, axis=1) == y)


# ------------------------------------------------------------------------ helpers
def make(activation, hidden, bias, *, n_features=20, n_classes=10, seed=0):
    rng = np.random.default_rng(seed)
    model = MLP(hidden, n_features=n_features, n_classes=n_classes, activation=activation, bias=bias, dtype="float32")
    sizes = [n_features, *hidden, n_classes]
    weights = [rng.normal(size=(i, o)) / np.sqrt(i) for i, o in zip(sizes[:-1], sizes[1:])]
    biases = [rng.normal(scale=0.1, size=o) for o in sizes[1:]]
    if bias == "input_column":  # the bias lives in the first matrix's last row
        weights[0] = np.vstack([weights[0], biases[0]])
        biases = None
    # the float32 model gets the reference's float64 numbers rounded once
    params = [w for pair in zip(weights, biases) for w in pair] if biases is not None else weights
    for p, value in zip(model.parameters(), params):
        p[...] = value
    ref_weights = [w.astype(np.float32).astype(np.float64) for w in weights]
    ref_biases = None if biases is None else [b.astype(np.float32).astype(np.float64) for b in biases]
    x_raw = rng.normal(size=(37, n_features))
    y = rng.integers(0, n_classes, 37)
    x32 = model.prepare_inputs(x_raw.astype(np.float32))
    return model, ref_weights, ref_biases, x32, x32.astype(np.float64), y


def close(fast, ref, rtol=2e-4):
    """float32 tolerance, relative to the size of the reference array."""
    ref = np.asarray(ref, dtype=np.float64)
    np.testing.assert_allclose(
        np.asarray(fast, dtype=np.float64), ref, rtol=rtol, atol=rtol * max(1.0, float(np.abs(ref).max(initial=0.0)))
    )


def fast_gradients(model, grads):
    per = 2 if model.biases is not None else 1
    return grads[::per], (grads[1::per] if per == 2 else None)


# -------------------------------------------------------------------------- tests
@pytest.mark.parametrize("bias", ["input_column", "per_layer"])
@pytest.mark.parametrize("hidden", HIDDEN, ids=lambda h: "x".join(map(str, h)))
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_forward_loss_and_every_gradient_match_float64(activation, hidden, bias):
    model, W, b, x32, x64, y = make(activation, hidden, bias)
    ws, grads = model.workspace(len(x32)), model.new_gradients()

    logits = model.forward(x32, ws).copy()
    assert logits.dtype == np.float32
    close(logits, ref_forward(W, b, x64, activation)[0][-1])

    loss = model.loss_and_gradients(x32, y, ws, grads)
    ref_loss, ref_gw, ref_gb = ref_loss_and_gradients(W, b, x64, y, activation, 10)
    assert loss == pytest.approx(ref_loss, rel=2e-5)
    gw, gb = fast_gradients(model, grads)
    for i, (g, r) in enumerate(zip(gw, ref_gw)):
        assert g.dtype == np.float32
        close(g, r), f"dW_{i}"
    if gb is not None:
        for g, r in zip(gb, ref_gb):
            close(g, r)


@pytest.mark.parametrize("bias", ["input_column", "per_layer"])
@pytest.mark.parametrize("hidden", HIDDEN, ids=lambda h: "x".join(map(str, h)))
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_sgd_momentum_steps_match_float64(activation, hidden, bias):
    """Five steps of v = g + m v, w -= lr v on the same batch, in float32 and float64."""
    model, W, b, x32, x64, y = make(activation, hidden, bias, seed=1)
    lr, m = 0.05, 0.9
    ws, grads = model.workspace(len(x32)), model.new_gradients()
    opt = SGD(model.parameters(), lr=lr, momentum=m)
    vw = [np.zeros_like(w) for w in W]
    vb = None if b is None else [np.zeros_like(v) for v in b]
    for _ in range(5):
        fast_loss = model.loss_and_gradients(x32, y, ws, grads)
        opt.step(grads)
        ref_loss, gw, gb = ref_loss_and_gradients(W, b, x64, y, activation, 10)
        assert fast_loss == pytest.approx(ref_loss, rel=1e-4)
        for i in range(len(W)):
            vw[i] = gw[i] + m * vw[i]
            W[i] = W[i] - lr * vw[i]
            if b is not None:
                vb[i] = gb[i] + m * vb[i]
                b[i] = b[i] - lr * vb[i]
    fw, fb = fast_gradients(model, model.parameters())
    for p, r in zip(fw, W):
        close(p, r, rtol=5e-4)
    if fb is not None:
        for p, r in zip(fb, b):
            close(p, r, rtol=5e-4)
    fv, _ = fast_gradients(model, opt.velocity)
    for v, r in zip(fv, vw):
        close(v, r, rtol=5e-4)


@pytest.mark.parametrize("bias", ["input_column", "per_layer"])
@pytest.mark.parametrize("hidden", HIDDEN, ids=lambda h: "x".join(map(str, h)))
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_evaluate_matches_float64(activation, hidden, bias):
    model, W, b, x32, x64, y = make(activation, hidden, bias, seed=2)
    ref_loss, ref_acc = ref_evaluate(W, b, x64, y, activation)
    for capacity in (len(x32), 8, 5):  # one chunk, and chunks with a short last one
        loss, acc = model.evaluate(x32, y, model.workspace(capacity))
        assert loss == pytest.approx(ref_loss, rel=2e-5)
        assert acc == ref_acc


@pytest.mark.parametrize(
    "hidden, block_rows", [([16, 14, 12, 10], 128), ([300, 12, 10, 9], 256), ([12, 9], 256)], ids=str
)
def test_compiled_evaluation_of_deep_narrow_stacks_uses_smaller_blocks_with_the_same_numbers(hidden, block_rows):
    """Deep stacks of narrow layers are evaluated 128 rows at a time (their products are small
    and their outputs fill the cache sooner), others 256; either way the float64 numbers."""
    model, W, b, x32, x64, y = make("improved_sigmoid", hidden, "per_layer", seed=4)
    rng = np.random.default_rng(4)
    x32 = rng.normal(size=(700, 20)).astype(np.float32)  # several blocks and a short last one
    y = rng.integers(0, 10, 700)
    ref_loss, ref_acc = ref_evaluate(W, b, x32.astype(np.float64), y, "improved_sigmoid")
    with Evaluator(model, max_rows=700, chunk=700, workers=1, engine="auto") as ev:
        compiled = ev.compiled_evaluation
        assert compiled is not None and compiled.block_rows == block_rows
        assert len(compiled.scratch()) == block_rows * sum(f for _, f in model.shapes)
        loss, acc = ev.evaluate(model.prepare_inputs(x32), y)
    assert loss == pytest.approx(ref_loss, rel=2e-5)
    assert acc == ref_acc


def test_evaluator_threads_give_the_numbers_of_evaluate():
    """The NumPy engine gives model.evaluate's numbers bit for bit whatever the thread count;
    the compiled one gives its own numbers, equal to those to float32 rounding, also bit for
    bit whatever the thread count (chunk sums are added in chunk order)."""
    model, *_ = make("improved_sigmoid", [12, 9], "input_column", seed=3)
    rng = np.random.default_rng(3)
    x = model.prepare_inputs(rng.normal(size=(1000, 20)).astype(np.float32))
    y = rng.integers(0, 10, 1000)
    expected = model.evaluate(x, y, model.workspace(64))
    head = model.evaluate(x[:130], y[:130], model.workspace(64))
    compiled_numbers = []
    for engine in ("numpy", "auto"):
        for workers in (1, 2, 3):
            with Evaluator(model, max_rows=1000, chunk=64, workers=workers, engine=engine) as ev:
                assert ev.compiled == (engine == "auto")
                full, part = ev.evaluate(x, y), ev.evaluate(x[:130], y[:130])
                both = ev.evaluate_many([(x[:130], y[:130]), (x, y)])  # one job, as a validation runs
                assert both == [part, full]
                if engine == "numpy":
                    assert (full, part) == (expected, head)  # bit for bit
                else:
                    assert full[0] == pytest.approx(expected[0], rel=1e-6) and full[1] == expected[1]
                    assert part[0] == pytest.approx(head[0], rel=1e-6) and part[1] == head[1]
                    compiled_numbers.append((full, part))
    assert all(n == compiled_numbers[0] for n in compiled_numbers)


def _ref_hits_and_loss(logits, labels):
    z = logits.astype(np.float64)
    shifted = z - z.max(axis=1, keepdims=True)
    loss = np.sum(np.log(np.exp(shifted).sum(axis=1)) - shifted[np.arange(len(labels)), labels])
    return loss, int(np.count_nonzero(np.argmax(logits, axis=1) == labels))


@pytest.mark.parametrize("transposed", [False, True])
def test_accuracy_counts_ties_like_argmax(transposed):
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 10, 40)
    logits = rng.normal(size=(40, 10)).astype(np.float32)
    logits[3] = 0.0  # a full tie: np.argmax says class 0
    logits[5, [2, 7]] = logits[5].max() + 1  # a tie between two classes
    labels[3], labels[5] = 0, 7
    for case in (logits, np.zeros_like(logits)):
        ref_loss, ref_hits = _ref_hits_and_loss(case, labels)
        z = np.ascontiguousarray(case.T).T if transposed else case.copy()
        loss, hits = cross_entropy_sum_and_hits(z, labels, scratch=LossScratch(64, 10, np.float32))
        assert hits == ref_hits
        assert loss == pytest.approx(ref_loss, rel=1e-5)


def test_loss_is_the_same_for_every_memory_layout():
    rng = np.random.default_rng(5)
    logits = (rng.normal(size=(9, 10)) * 5).astype(np.float32)
    labels = rng.integers(0, 10, 9)
    c_loss, c_grad = softmax_cross_entropy(logits.copy(), labels)
    t = np.ascontiguousarray(logits.T).T  # the model's layout: a (K, N) buffer's transpose
    t_loss, t_grad = softmax_cross_entropy(t, labels, out=t, scratch=LossScratch(16, 10, np.float32))
    strided = np.zeros((9, 20), np.float32)[:, ::2]
    s_loss, s_grad = softmax_cross_entropy(logits, labels, out=strided)
    assert s_grad is strided
    for loss, grad in ((t_loss, t_grad), (s_loss, s_grad)):
        assert loss == pytest.approx(c_loss, rel=1e-6)
        np.testing.assert_allclose(grad, c_grad, rtol=1e-6, atol=1e-8)


def test_flat_blocked_and_threaded_sgd_are_bit_identical():
    """SGD.step on one flat buffer, SGD.step per array, and the NumPy engine's blocked update on
    one and on two threads: the same numbers, bit for bit."""
    rng = np.random.default_rng(6)
    model = MLP([400, 300], n_features=784, n_classes=10, bias="per_layer").init_weights(rng, "fan_in_normal")
    assert model.num_parameters > BLOCKED_MIN
    twins = []
    for _ in range(3):
        twin = MLP([400, 300], n_features=784, n_classes=10, bias="per_layer")
        twin.load_state_dict(model.state_dict())
        twins.append(twin)
    loose = [p.copy() for p in model.parameters()]  # separate arrays: the per-array loop
    flat = SGD(model.parameters(), lr=0.1, momentum=0.9)
    per_array = SGD(loose, lr=0.1, momentum=0.9)
    grads = model.new_gradients()
    blocked = []
    for twin, workers in zip(twins[:2], (1, 2)):
        opt = SGD(twin.parameters(), lr=0.1, momentum=0.9)
        blocked.append((opt, BlockedSGDUpdate(opt, flat_span(grads), WorkerPool(workers))))
    assert len(blocked[1][1].parts) == 2
    for _ in range(3):
        for g in grads:
            g[...] = rng.normal(size=g.shape)
        flat.step(grads)
        per_array.step(grads)
        for _, update in blocked:
            update(grads)
    for arrays in [t.parameters() for t in twins[:2]] + [loose]:
        assert all(np.array_equal(a, b) for a, b in zip(model.parameters(), arrays))
    for opt in [per_array] + [opt for opt, _ in blocked]:
        assert all(np.array_equal(a, b) for a, b in zip(flat.velocity, opt.velocity))
    for _, update in blocked:
        update.pool.close()


class _AllocationProbe(Callback):
    """Traces allocations over three windows of 35 steps (10..115) of a real Trainer.fit run.

    The least of the three peaks is what the steps themselves allocate: an allocation made by
    every step shows in every window, while a one-off one elsewhere in the process (the
    interpreter, a library's background thread on a loaded machine) spoils at most one.
    """

    WINDOWS = (10, 45, 80, 115)

    def __init__(self) -> None:
        self.peaks: list[int] = []

    def on_step_end(self, trainer, step, loss) -> None:
        if step not in self.WINDOWS:
            return
        if step != self.WINDOWS[0]:
            self.peaks.append(tracemalloc.get_traced_memory()[1] - self.base)
            tracemalloc.stop()
        if step != self.WINDOWS[-1]:
            tracemalloc.start()
            tracemalloc.reset_peak()
            self.base = tracemalloc.get_traced_memory()[0]

    @property
    def peak(self) -> int | None:
        return min(self.peaks) if len(self.peaks) == len(self.WINDOWS) - 1 else None


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_a_training_step_allocates_no_arrays(momentum):
    """35-step windows of the real loop (batch 32, 785-512-10) stay far below one batch-sized array.

    (numpy's iterators allocate a few kB of bookkeeping per call; an array of hidden
    activations is 64 kB, a batch of inputs 100 kB.)
    """
    rng = np.random.default_rng(7)
    model = MLP([512], activation="improved_sigmoid").init_weights(rng, "fan_in_normal")
    x = model.prepare_inputs(rng.normal(size=(4000, 784)).astype(np.float32))
    y = rng.integers(0, 10, 4000)
    probe = _AllocationProbe()
    trainer = Trainer(
        model,
        SGD(model.parameters(), lr=0.01, momentum=momentum),
        rng=rng,
        epochs=1,
        batch_size=32,
        validations_per_epoch=0,
        callbacks=[History(), probe],
    )
    trainer.fit(x, y, x[:100], y[:100])
    smallest_array = 32 * 512 * 4  # one batch of hidden activations
    assert probe.peak is not None and probe.peak < smallest_array // 2, probe.peak


def test_no_validation_when_validations_per_epoch_is_zero():
    rng = np.random.default_rng(8)
    model = MLP([8], n_features=6, n_classes=3).init_weights(rng, "fan_in_normal")
    x, y = model.prepare_inputs(rng.normal(size=(64, 6))), rng.integers(0, 3, 64)
    history = History()
    trainer = Trainer(
        model,
        SGD(model.parameters(), lr=0.1),
        rng=rng,
        epochs=2,
        batch_size=16,
        validations_per_epoch=0,
        callbacks=[history],
    )
    trainer.fit(x, y, x, y)
    assert history.num_steps == 8 and history.validation["step"] == []


def test_parameters_and_gradients_share_one_buffer_each():
    model = MLP([5, 4], n_features=6, n_classes=3, bias="per_layer")
    params, grads = model.parameters(), model.new_gradients()
    for arrays in (params, grads):
        base = arrays[0].base
        assert all(a.base is base for a in arrays)
        assert flat_span(arrays).size == model.num_parameters  # consecutive, nothing between them
    assert model.flat_parameters.ctypes.data % ALIGNMENT == 0
    model.weights[1][...] = 7.0  # views: writing through the list reaches the flat buffer
    assert (model.state_dict()["layers.1.weight"] == 7.0).all()
