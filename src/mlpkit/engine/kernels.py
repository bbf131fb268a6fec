"""Compiled (Numba) entry points: many SGD steps per call, and whole validation chunks.

Why: at the seed's batch of 32 a step is ~6.5 MFLOP, and calling NumPy three dozen times per
step cost more than the arithmetic. Here a whole run of steps (up to the next validation) is
one call: the matrix products go straight to the BLAS library NumPy itself uses (its CBLAS
``gemm``, found by :mod:`mlpkit.engine.cblas`), and everything between them (gathering the
batch, activations, the fused softmax-cross-entropy gradient) is a compiled loop over buffers
allocated once; the SGD update rides on the gradient's ``gemm`` (see ``train_steps``).
The pieces live in :mod:`mlpkit.engine.dense_kernels` and :mod:`mlpkit.engine.sparse_kernels`.

Parameters and velocities are the optimizer's flat buffers; ``layout`` says where each layer
lives in them: one row (weight offset, fan_in, fan_out, bias offset or -1) per layer, made
from the model's own ``MLP.layout`` (:func:`mlpkit.engine.compiled.kernel_layout`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlpkit.engine.dense_kernels import (
    AXPY_THREADS_MIN,
    FAST,
    LR,
    MOMENTUM,
    NO_ACTIVATION,
    ONE,
    add_bias_and_activate,
    add_scaled,
    backprop,
    bias_update,
    gemm_product,
    gemm_update,
    softmax_xent,
    xent_and_hits,
)
from mlpkit.engine.kernel_cache import kernel_jit
from mlpkit.engine.sparse_kernels import PACK_COLUMNS, narrow_sparse_product, prefetch_rows, sparse_product
from mlpkit.engine.split_kernels import split_product, split_weight_gradient

#: Columns of a ``layout`` row.
WEIGHT_OFFSET, FAN_IN, FAN_OUT, BIAS_OFFSET = range(4)
#: Entries of ``train_steps``'s ``plan``.
PLAN_FIRST_STEP, PLAN_STEPS, PLAN_BATCH_SIZE, PLAN_ACTIVATION = range(4)


@kernel_jit(**FAST)
def forward(gemm, x, sp, rows, row0, m, params, layout, code, consts, acts):
    """Every layer's output for ``m`` input rows, one after the other in ``acts`` (the logits
    last); returns where the logits start in ``acts``, plus one. Its callers call it through its
    address (:mod:`mlpkit.engine.entry_points`), where 0 means that it failed.

    The inputs are the rows of dense ``x`` or, when ``sp`` (see
    :mod:`mlpkit.engine.sparse_kernels`) is not empty, its rows ``rows`` (or
    ``row0 .. row0 + m - 1`` when ``rows`` is empty). ``forward_kernel`` says which of this and
    ``narrow_forward`` a model takes.
    """
    if len(sp) == 6:  # (see split_kernels: len(sp) is a constant, one branch compiles)
        return forward_layers(split_product, gemm, x, sp, rows, row0, m, params, layout, code, consts, acts)
    return forward_layers(sparse_product, gemm, x, sp, rows, row0, m, params, layout, code, consts, acts)


@kernel_jit(**FAST)
def narrow_forward(gemm, x, sp, rows, row0, m, params, layout, code, consts, acts):
    """``forward`` for first layers narrower than ``PACK_COLUMNS``: the same results, but its
    sparse product (``narrow_sparse_product``) has no packed path to compile."""
    if len(sp) == 6:
        return forward_layers(split_product, gemm, x, sp, rows, row0, m, params, layout, code, consts, acts)
    return forward_layers(narrow_sparse_product, gemm, x, sp, rows, row0, m, params, layout, code, consts, acts)


def forward_kernel(first_width: int) -> Any:
    """``forward`` or ``narrow_forward``: which a model whose first layer has ``first_width``
    units takes (both compute the same; the narrow one compiles faster)."""
    return narrow_forward if first_width < PACK_COLUMNS else forward


@kernel_jit(inline="always", **FAST)
def forward_layers(first_product, gemm, x, sp, rows, row0, m, params, layout, code, consts, acts):
    """``forward``'s loop over the layers; ``first_product`` computes the first layer's product
    from sparse inputs (its choice is made where ``sp`` is an argument, see split_kernels)."""
    n_layers = layout.shape[0]
    offset = 0
    prev = x
    for i in range(n_layers):
        fan_out = layout[i, FAN_OUT]
        out = acts[offset : offset + m * fan_out].reshape((m, fan_out))
        if i == 0 and sp[0].shape[0] > 0:
            first_product(
                gemm, sp, rows, row0, m, params, layout[0, WEIGHT_OFFSET], layout[0, FAN_IN], fan_out, out, consts
            )
        layer_forward(gemm, prev, sp, rows, row0, m, params, layout, i, code, consts, out)
        prev = out
        offset += m * fan_out
    return offset - m * layout[n_layers - 1, FAN_OUT] + 1


@kernel_jit(inline="always", **FAST)
def layer_forward(gemm, prev, sp, rows, row0, m, params, layout, i, code, consts, out):
    """out (m, fan_out) = f(prev W_i + b_i) for layer i (no f on the last layer). With sparse inputs
    ``sp``, the caller has already put the first layer's product prev W_0 into ``out``
    (``sparse_product``, or ``split_kernels.split_product``: the choice must be made where ``sp``
    is an argument, see mlpkit.engine.split_kernels)."""
    w_off, fan_in = layout[i, WEIGHT_OFFSET], layout[i, FAN_IN]
    fan_out, b_off = layout[i, FAN_OUT], layout[i, BIAS_OFFSET]
    if not (i == 0 and sp[0].shape[0] > 0):
        w = params[w_off : w_off + fan_in * fan_out].reshape((fan_in, fan_out))
        gemm_product(gemm, prev, w, out, False, False, consts)
    bias = params[b_off : b_off + fan_out] if b_off >= 0 else params[:0]
    add_bias_and_activate(out, bias, b_off >= 0, code if i < layout.shape[0] - 1 else NO_ACTIVATION, consts)


@kernel_jit(inline="always", **FAST)
def gather_batch(x, y, rows, sparse, xs, ys):
    """The step's labels ys[r] = y[rows[r]] and, unless the steps read the sparse form, its inputs
    xs[r] = x[rows[r]] (element by element: a row assignment compiles a shape-mismatch message)."""
    for r in range(rows.shape[0]):
        i = rows[r]
        if not sparse:
            xr, xi = xs[r], x[i]
            for q in range(xr.shape[0]):
                xr[q] = xi[q]
        ys[r] = y[i]


@kernel_jit(**FAST)
def train_steps(
    gemm,
    axpy,
    forward_fn,
    gradient_fn,
    x,
    sp,
    y,
    order,
    plan,
    params,
    velocity,
    layout,
    consts,
    xb,
    yb,
    scratch,
    losses,
):
    """Run ``n_steps`` SGD steps from step ``first_step`` of the epoch whose sample order is ``order``.

    ``plan``: int64 (first_step, n_steps, batch_size, activation code), see ``PLAN_*``;
    ``consts``: :func:`~mlpkit.engine.dense_kernels.constants` with the learning rate and
    momentum at LR, MOMENTUM. (Few arguments: Numba's dispatcher leaks a little memory per
    call of functions with about 20 array arguments.)

    Each step gathers rows ``order[step * batch_size : ...]`` of ``x``/``y`` into ``xb``/``yb``
    (with sparse inputs ``sp``, see ``forward``, the first layer reads those rows of ``sp``
    instead, and its weight gradient is ``gradient_fn``: ``sparse_weight_gradient`` through its
    address, or, with ``sp`` of six entries, ``split_weight_gradient``),
    computes the mean loss (into ``losses``) and the gradients, and updates ``params`` as
    ``optim.SGD`` does: v = momentum v + g, w -= lr v (momentum 0: w -= lr g). The update
    rides on the weight gradient's product, ``gemm``'s C = alpha A B + beta C: with momentum
    it writes v = 1 * (a^T delta) + momentum * v, then one ``axpy`` does w -= lr v for all
    parameters (``add_scaled`` below ``AXPY_THREADS_MIN`` of them); without, w = -lr *
    (a^T delta) + 1 * w directly. So no gradient array is written or read back. Each layer's
    delta below is computed before its weights move.
    Returns how many steps were applied: fewer than ``n_steps`` when a loss is not finite
    (that loss is in ``losses``, its update not applied); -1 when ``forward_fn`` (``forward``
    through its address, see mlpkit.engine.entry_points) or ``gradient_fn`` failed.
    ``scratch``: 2 * batch_size * (sum of layer widths) elements (outputs, then deltas).
    """
    first_step, n_steps = plan[PLAN_FIRST_STEP], plan[PLAN_STEPS]
    batch_size, code = plan[PLAN_BATCH_SIZE], plan[PLAN_ACTIVATION]
    lr, momentum = consts[LR], consts[MOMENTUM]
    half = scratch.shape[0] // 2
    acts, deltas = scratch[:half], scratch[half:]
    n_layers = layout.shape[0]
    typed = np.empty(2, dtype=consts.dtype)
    neg_lr = -lr
    sparse = sp[0].shape[0] > 0
    for s in range(n_steps):
        start = (first_step + s) * batch_size
        m = min(batch_size, order.shape[0] - start)
        xs, ys, rows = xb[:m], yb[:m], order[start : start + m]
        gather_batch(x, y, rows, sparse, xs, ys)
        prefetch_rows(sp, order[start + m : start + m + batch_size])  # the next step's, while this one runs
        offset = forward_fn(gemm, xs, sp, rows, 0, m, params, layout, code, consts, acts) - 1
        if offset < 0:
            return -1
        # loss and dL/dlogits
        fan_out = layout[n_layers - 1, FAN_OUT]
        logits = acts[offset : offset + m * fan_out].reshape((m, fan_out))
        delta = deltas[offset : offset + m * fan_out].reshape((m, fan_out))
        loss = softmax_xent(logits, ys, delta, consts, typed) / m
        losses[s] = loss
        if not np.isfinite(loss):
            return s
        # backward, top layer first: delta_below = delta W^T * f'(a) with the old W, then
        # W's update from dW = a^T delta, and the bias's from db = sum(delta)
        for i in range(n_layers - 1, -1, -1):
            w_off, fan_in = layout[i, WEIGHT_OFFSET], layout[i, FAN_IN]
            fan_out, b_off = layout[i, FAN_OUT], layout[i, BIAS_OFFSET]
            w = params[w_off : w_off + fan_in * fan_out].reshape((fan_in, fan_out))
            below = offset - m * fan_in
            a_in = xs if i == 0 else acts[below:offset].reshape((m, fan_in))
            if i > 0:
                d_in = deltas[below:offset].reshape((m, fan_in))
                gemm_product(gemm, delta, w, d_in, False, True, consts)
                backprop(d_in, a_in, code, consts)
            if i == 0 and sparse:
                dst, alpha, beta = (velocity, consts[ONE], momentum) if momentum != 0 else (params, neg_lr, consts[ONE])
                if len(sp) == 6:
                    split_weight_gradient(sp, rows, m, delta, dst, w_off, fan_in, fan_out, alpha, beta, consts)
                elif gradient_fn(sp, rows, m, delta, dst, w_off, fan_in, fan_out, alpha, beta, consts) == 0:
                    return -1
            elif momentum != 0:
                v = velocity[w_off : w_off + fan_in * fan_out].reshape((fan_in, fan_out))
                gemm_update(gemm, a_in, delta, v, True, False, consts[ONE], momentum)
            else:
                gemm_update(gemm, a_in, delta, w, True, False, neg_lr, consts[ONE])
            if b_off >= 0:
                bias_update(delta, params[b_off : b_off + fan_out], velocity[b_off : b_off + fan_out], lr, momentum)
            if i > 0:
                delta = d_in
                offset = below
        if momentum != 0:
            if params.shape[0] < AXPY_THREADS_MIN:
                add_scaled(params, neg_lr, velocity)
            else:
                axpy(params.shape[0], neg_lr, velocity.ctypes.data, 1, params.ctypes.data, 1)
    return n_steps


@kernel_jit(**FAST)
def evaluate_rows(gemm, forward_fn, x, sp, row0, y, params, layout, code, consts, acts):
    """(summed cross-entropy, hits) of all rows of ``x``/``y``, in blocks that fit ``acts``
    (scratch of at least one row's worth of every layer's outputs). With sparse inputs ``sp``
    (see ``forward``) the rows are ``row0 .. row0 + len(y) - 1`` of ``sp`` and ``x`` is not read.
    ``forward_fn``: ``forward`` through its address (see ``train_steps``); hits -1 when it failed."""
    n_layers = layout.shape[0]
    width = 0
    for i in range(n_layers):
        width += layout[i, FAN_OUT]
    block = max(1, acts.shape[0] // width)
    total = 0.0
    hits = 0
    no_rows = np.empty(0, dtype=np.intp)
    n_classes = layout[n_layers - 1, FAN_OUT]
    for start in range(0, y.shape[0], block):
        stop = min(start + block, y.shape[0])
        m = stop - start
        at = forward_fn(gemm, x[start:stop], sp, no_rows, row0 + start, m, params, layout, code, consts, acts) - 1
        if at < 0:
            return total, -1
        loss_sum, h = xent_and_hits(acts[at : at + m * n_classes].reshape((m, n_classes)), y[start:stop])
        total += loss_sum
        hits += h
    return total, hits
