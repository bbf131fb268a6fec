"""Compiled training steps with the modern options: dropout, label smoothing, a learning rate per
step (a schedule), SGD with Nesterov or weight decay, Adam and AdamW, gradient clipping and the
max-norm constraint. :func:`mlpkit.engine.kernels.train_steps` stays the seed's plain SGD step.

Why a second kernel: these updates need the gradient itself (Adam's moments, a global clipping
norm), where plain SGD's update rides on the gradient's ``gemm``. Each layer's gradient is
written into the flat ``grad`` buffer and, without clipping, that layer is updated at once,
while its gradient is still in cache (after the delta below it was computed from the old
weights, as the NumPy engine does). With clipping every layer's gradient comes first.

Dropout masks are not drawn here: the runner (:mod:`mlpkit.engine.option_steps`) draws each
step's uniform numbers from the training loop's generator exactly as ``DropoutMasks.draw`` does
(same calls, same order), and the kernel turns them into masks with the same comparison.
"""

from __future__ import annotations

import numpy as np

from mlpkit.engine.dense_kernels import (
    FAST,
    ONE,
    ZERO,
    backprop,
    gemm_product,
    gemm_update,
    softmax_xent,
)
from mlpkit.engine.kernel_cache import kernel_jit
from mlpkit.engine.kernels import BIAS_OFFSET, FAN_IN, FAN_OUT, WEIGHT_OFFSET, gather_batch, layer_forward
from mlpkit.engine.sparse_kernels import (
    PACK_COLUMNS,
    prefetch_rows,
    sparse_product,
    sparse_weight_gradient,
    wide_weight_gradient,
)
from mlpkit.engine.split_kernels import layer_update, split_product, split_weight_gradient
from mlpkit.engine.update_kernels import (
    H_CLIP,
    H_HIDDEN_RATE,
    H_HIDDEN_SCALE,
    H_INPUT_RATE,
    H_INPUT_SCALE,
    H_MAX_NORM,
    H_SMOOTHING,
    apply_mask,
    cast_row,
    clip_gradient,
    mask_backprop,
    max_norm_columns,
    smoothed_xent,
)

#: Entries of ``plan`` (int64).
P_FIRST_STEP, P_STEPS, P_BATCH_SIZE, P_ACTIVATION, P_OPTIMIZER, P_FLAGS = range(6)
P_CLIP, P_MAX_NORM, P_BIAS_ROW, P_INPUT_MASKED, P_HIDDEN_MASKED, P_MASK_STRIDE, P_N_FEATURES = range(6, 13)
N_PLAN = 13


@kernel_jit(inline="always", **FAST)
def _layer(layout, i):
    """Layer i's row of ``layout``: (weight offset, fan_in, fan_out, bias offset or -1)."""
    return layout[i, WEIGHT_OFFSET], layout[i, FAN_IN], layout[i, FAN_OUT], layout[i, BIAS_OFFSET]


@kernel_jit(**FAST)
def _layer_range(layout, i):
    """Where layer i's weights (and bias, just after them) lie in the flat buffers: [a, b)."""
    a = layout[i, WEIGHT_OFFSET]
    b = a + layout[i, FAN_IN] * layout[i, FAN_OUT]
    if layout[i, BIAS_OFFSET] >= 0:
        b = layout[i, BIAS_OFFSET] + layout[i, FAN_OUT]
    return a, b


@kernel_jit(**FAST)
def train_steps_options(gemm, x, sp, y, order, plan, params, layout, consts, work, losses, opt, hyper, masks):
    """Run ``plan[P_STEPS]`` steps from step ``plan[P_FIRST_STEP]`` of the epoch's ``order``.

    ``work``: (xb, yb, scratch) as for ``kernels.train_steps``; ``opt``: (grad, s1, s2), the flat
    gradient, all zeros between steps (the updates zero it), and the optimizer's flat state
    (see ``update_kernels.update_range``); ``hyper``:
    (run constants, per-step table), float64 (``update_kernels.H_*``, ``S_*``); ``masks``:
    (uniform draws, offset of each layer input's draws within a step or -1, buffers of the
    masked layer inputs, offset of each). Step s's draws start at s * plan[P_MASK_STRIDE].
    Returns how many steps were applied (fewer when a loss is not finite: it is in ``losses``,
    its update not applied).
    """
    xb, yb, scratch = work
    grad, s1, s2 = opt
    table, per_step = hyper
    uniform, mask_at, dropped, dropped_at = masks
    first_step, n_steps, batch_size, code = plan[P_FIRST_STEP], plan[P_STEPS], plan[P_BATCH_SIZE], plan[P_ACTIVATION]
    kind, flags, clip, max_norm = plan[P_OPTIMIZER], plan[P_FLAGS], plan[P_CLIP] != 0, plan[P_MAX_NORM] != 0
    input_masked, hidden_masked = plan[P_INPUT_MASKED] != 0, plan[P_HIDDEN_MASKED] != 0
    stride, n_features = plan[P_MASK_STRIDE], plan[P_N_FEATURES]
    half = scratch.shape[0] // 2
    acts, deltas = scratch[:half], scratch[half:]
    n_layers = layout.shape[0]
    run = np.empty(table.shape[0], dtype=consts.dtype)
    cast_row(table, run)
    step = np.empty(per_step.shape[1], dtype=consts.dtype)
    typed = np.empty(3, dtype=consts.dtype)
    widest = 0
    for i in range(n_layers):
        widest = max(widest, layout[i, FAN_OUT])
    sums = np.empty(widest, dtype=np.float64)
    scale = np.empty(widest, dtype=consts.dtype)
    smoothing = table[H_SMOOTHING]
    sparse = sp[0].shape[0] > 0
    for s in range(n_steps):
        cast_row(per_step[s], step)
        start = (first_step + s) * batch_size
        m = min(batch_size, order.shape[0] - start)
        xs, ys, rows = xb[:m], yb[:m], order[start : start + m]
        gather_batch(x, y, rows, sparse, xs, ys)
        prefetch_rows(sp, order[start + m : start + m + batch_size])  # as in kernels.train_steps
        u0 = s * stride
        a_in = xs
        if input_masked:
            width = xs.shape[1]
            a_in = dropped[dropped_at[0] : dropped_at[0] + m * width].reshape((m, width))
            u = uniform[u0 + mask_at[0] : u0 + mask_at[0] + m * n_features]
            apply_mask(xs, u, n_features, run[H_INPUT_RATE], run[H_INPUT_SCALE], a_in)
        # forward: acts holds every layer's output f(z) (unmasked), dropped the masked inputs
        prev = a_in
        offset = 0
        for i in range(n_layers):
            fan_out = layout[i, FAN_OUT]
            out = acts[offset : offset + m * fan_out].reshape((m, fan_out))
            if i == 0 and sparse:  # as in kernels.forward
                if len(sp) == 6:
                    split_product(
                        gemm, sp, rows, 0, m, params, layout[0, WEIGHT_OFFSET], layout[0, FAN_IN], fan_out, out, consts
                    )
                else:
                    sparse_product(
                        gemm, sp, rows, 0, m, params, layout[0, WEIGHT_OFFSET], layout[0, FAN_IN], fan_out, out, consts
                    )
            layer_forward(gemm, prev, sp, rows, 0, m, params, layout, i, code, consts, out)
            prev = out
            if hidden_masked and i < n_layers - 1:
                masked = dropped[dropped_at[i + 1] : dropped_at[i + 1] + m * fan_out].reshape((m, fan_out))
                u = uniform[u0 + mask_at[i + 1] : u0 + mask_at[i + 1] + m * fan_out]
                apply_mask(out, u, fan_out, run[H_HIDDEN_RATE], run[H_HIDDEN_SCALE], masked)
                prev = masked
            offset += m * fan_out
        fan_out = layout[n_layers - 1, FAN_OUT]
        offset -= m * fan_out
        delta = deltas[offset : offset + m * fan_out].reshape((m, fan_out))
        if smoothing != 0:
            loss = smoothed_xent(prev, ys, delta, smoothing, typed) / m
        else:
            loss = softmax_xent(prev, ys, delta, consts, typed) / m
        losses[s] = loss
        if not np.isfinite(loss):
            return s
        # backward, top layer first: delta_below = (delta W^T) * mask * f'(a) with the old W,
        # then the layer's gradient (and, without clipping, its update)
        for i in range(n_layers - 1, -1, -1):
            w_off, fan_in, fan_out, b_off = _layer(layout, i)
            w = params[w_off : w_off + fan_in * fan_out].reshape((fan_in, fan_out))
            below = offset - m * fan_in
            if i == 0:
                a_used = a_in
            elif hidden_masked:
                a_used = dropped[dropped_at[i] : dropped_at[i] + m * fan_in].reshape((m, fan_in))
            else:
                a_used = acts[below:offset].reshape((m, fan_in))
            if i > 0:
                d_in = deltas[below:offset].reshape((m, fan_in))
                gemm_product(gemm, delta, w, d_in, False, True, consts)
                if hidden_masked:
                    u = uniform[u0 + mask_at[i] : u0 + mask_at[i] + m * fan_in]
                    mask_backprop(d_in, u, fan_in, run[H_HIDDEN_RATE], run[H_HIDDEN_SCALE])
                backprop(d_in, acts[below:offset].reshape((m, fan_in)), code, consts)
            g = grad[w_off : w_off + fan_in * fan_out]
            if i == 0 and sparse:  # beta 0: the gradient overwrites g (see gradient_columns)
                one, zero = consts[ONE], consts[ZERO]
                if len(sp) == 6:
                    split_weight_gradient(sp, rows, m, delta, grad, w_off, fan_in, fan_out, one, zero, consts)
                elif fan_out >= PACK_COLUMNS:
                    wide_weight_gradient(sp, rows, m, delta, grad, w_off, fan_in, fan_out, one, zero, consts)
                else:
                    sparse_weight_gradient(sp, rows, m, delta, grad, w_off, fan_in, fan_out, one, zero, consts)
            else:  # g is zero here (update_range zeroes what it reads): BLAS adds onto it
                gemm_update(gemm, a_used, delta, g.reshape((fan_in, fan_out)), True, False, consts[ONE], consts[ONE])
            if b_off >= 0:
                gb = grad[b_off : b_off + fan_out]
                for q in range(fan_out):
                    gb[q] = delta[0, q]
                for r in range(1, m):
                    dr = delta[r]
                    for q in range(fan_out):
                        gb[q] += dr[q]
            if not clip:
                a, b = _layer_range(layout, i)
                layer_update(sp, params, grad, s1, s2, a, b, kind, flags, run, step)
            if i > 0:
                delta = d_in
                offset = below
        if clip:
            clip_gradient(grad, table[H_CLIP])
            layer_update(sp, params, grad, s1, s2, 0, params.shape[0], kind, flags, run, step)
        if max_norm:
            for i in range(n_layers - 1):
                w_off, fan_in, fan_out = layout[i, WEIGHT_OFFSET], layout[i, FAN_IN], layout[i, FAN_OUT]
                w = params[w_off : w_off + fan_in * fan_out].reshape((fan_in, fan_out))
                rows_used = fan_in - 1 if (i == 0 and plan[P_BIAS_ROW] != 0) else fan_in
                max_norm_columns(w, rows_used, run[H_MAX_NORM], sums, scale)
    return n_steps
