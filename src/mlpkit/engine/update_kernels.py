"""Compiled pieces of a training step beyond SGD's fused update: dropout masks, the smoothed
loss, the optimizers' updates (SGD with Nesterov and weight decay, Adam, AdamW), gradient
clipping and the max-norm constraint.

Each follows its NumPy reference (``nn/dropout.py``, ``nn/losses.py``, ``optim/sgd.py``,
``optim/adam.py``, ``optim/clipping.py``, ``nn/max_norm.py``) operation for operation in the
model dtype: every Python-float hyperparameter of those references becomes the same number
cast to the dtype here (``run`` and ``step`` below are such casts of float64 tables made by
:mod:`mlpkit.engine.option_steps`), so results agree to rounding (tests/test_option_kernels.py).
"""

from __future__ import annotations

import numpy as np

from mlpkit.engine.dense_kernels import FAST
from mlpkit.engine.kernel_cache import kernel_jit

#: Entries of the run constants (float64 table ``hyper[0]``, cast to the dtype as ``run``).
H_MOMENTUM, H_WEIGHT_DECAY, H_ONE_MINUS_BETA1, H_BETA2, H_ONE_MINUS_BETA2, H_EPS = range(6)
H_SMOOTHING, H_CLIP, H_MAX_NORM, H_INPUT_RATE, H_INPUT_SCALE, H_HIDDEN_RATE, H_HIDDEN_SCALE = range(6, 13)
N_RUN_CONSTANTS = 13
#: Columns of the per-step table (float64 ``hyper[1]``, one row per step, cast as ``step``): the
#: step's learning rate, 1 - lr wd (AdamW's decay), lr / (1 - beta1^t), sqrt(1 - beta2^t).
S_LR, S_DECAY, S_STEP_SIZE, S_BC2_SQRT = range(4)
N_STEP_CONSTANTS = 4
#: Optimizer kinds (``plan`` entry ``P_OPTIMIZER`` of option_kernels).
OPT_SGD, OPT_ADAM = 0, 1


@kernel_jit(**FAST)
def cast_row(table, out):
    """out[k] = table[k] in out's dtype (a float64 -> float32 cast rounds as NumPy's does)."""
    for k in range(out.shape[0]):
        out[k] = table[k]


@kernel_jit(**FAST)
def apply_mask(a, uniform, units, rate, scale, out):
    """out = a * mask for rows of a (m, width): mask = scale where the row's uniform draw is
    >= rate, else 0, over the first ``units`` columns; 1 after them (the bias column is not a
    unit). ``uniform``: the m * units draws of ``DropoutMasks.draw``, C order."""
    m, width = a.shape
    zero = scale - scale
    for r in range(m):
        ar, orow, ur = a[r], out[r], uniform[r * units : (r + 1) * units]
        for q in range(units):
            orow[q] = ar[q] * (scale if ur[q] >= rate else zero)
        for q in range(units, width):
            orow[q] = ar[q]


@kernel_jit(**FAST)
def mask_backprop(d, uniform, units, rate, scale):
    """d *= mask in place (``DropoutMasks.backprop``); d is (m, units)."""
    m = d.shape[0]
    zero = scale - scale
    for r in range(m):
        dr, ur = d[r], uniform[r * units : (r + 1) * units]
        for q in range(units):
            dr[q] *= scale if ur[q] >= rate else zero


@kernel_jit(**FAST)
def smoothed_xent(z, labels, grad, e, typed):
    """Summed cross-entropy with label smoothing e of logits z (m, K) against the target
    (1 - e) onehot + e / K; grad = (softmax(z) - target) / m (``losses._smoothed``).
    ``typed``: scratch of 3 in the model dtype."""
    m, k = z.shape
    typed[0] = m
    typed[1] = e / (k * m)
    typed[2] = (1.0 - e) / m
    m_, uniform_part, label_part = typed[0], typed[1], typed[2]
    total = 0.0
    for r in range(m):
        zr, gr, label = z[r], grad[r], labels[r]
        top = zr[0]
        for q in range(1, k):
            if zr[q] > top:
                top = zr[q]
        s = top - top
        shifted = 0.0
        for q in range(k):
            sh = zr[q] - top
            shifted += np.float64(sh)
            ex = np.exp(sh)
            gr[q] = ex
            s += ex
        total += np.float64(np.log(s)) - (1.0 - e) * np.float64(zr[label] - top) - (e / k) * shifted
        s *= m_
        for q in range(k):
            gr[q] = gr[q] / s - uniform_part
        gr[label] -= label_part
    return total


@kernel_jit(**FAST)
def _adam_decoupled(w, g, m, v, decay, one_b1, b2, one_b2, eps, step_size, bc2):
    """Adam's step after AdamW's w *= decay (decay 1 - lr wd; exactly 1 without weight decay)."""
    for k in range(w.shape[0]):
        gk, mk = g[k], m[k]
        g[k] = 0
        mk = mk + (gk - mk) * one_b1
        vk = v[k] * b2 + gk * one_b2 * gk
        m[k] = mk
        v[k] = vk
        w[k] = w[k] * decay - (mk / (np.sqrt(vk) / bc2 + eps)) * step_size


@kernel_jit(**FAST)
def _adam_coupled(w, g, m, v, wd, one_b1, b2, one_b2, eps, step_size, bc2):
    """Adam's step on g + wd w (L2 weight decay coupled to the gradient). g is zeroed in a
    loop of its own: zeroed in this one, LLVM paired this loop's multiplies and adds into
    fused multiply-adds differently, and the results' last bits changed."""
    for k in range(w.shape[0]):
        wk = w[k]
        gk = wk * wd + g[k]
        mk = m[k]
        mk = mk + (gk - mk) * one_b1
        vk = v[k] * b2 + gk * one_b2 * gk
        m[k] = mk
        v[k] = vk
        w[k] = wk - (mk / (np.sqrt(vk) / bc2 + eps)) * step_size
    for k in range(g.shape[0]):
        g[k] = 0


@kernel_jit(**FAST)
def _sgd_momentum(w, g, v, momentum, lr):
    """v = momentum v + g; w -= lr v (the seed's rule)."""
    for k in range(w.shape[0]):
        vk = v[k] * momentum + g[k]
        g[k] = 0
        v[k] = vk
        w[k] -= vk * lr


@kernel_jit(**FAST)
def _sgd(w, g, v, wd, momentum, nesterov, lr):
    """PyTorch's SGD with any of weight decay, momentum and Nesterov."""
    for k in range(w.shape[0]):
        gk = g[k]
        g[k] = 0
        if wd != 0:
            gk = w[k] * wd + gk
        if momentum != 0:
            vk = v[k] * momentum + gk
            v[k] = vk
            d = vk * momentum + gk if nesterov else vk
        else:
            d = gk
        w[k] -= d * lr


@kernel_jit(**FAST)
def update_range(params, grad, s1, s2, a, b, kind, flags, run, step):
    """The optimizer's update of ``params[a:b]`` from ``grad[a:b]`` (its state ``s1``/``s2``).

    ``kind`` OPT_SGD: PyTorch's SGD (``optim.sgd.sgd_update``; s1 the velocity): g += wd w;
    v = momentum v + g; w -= lr (Nesterov: g + momentum v; else v; no momentum: g).
    ``kind`` OPT_ADAM (``optim.adam.adam_update``; s1, s2 the moments): AdamW's w *= 1 - lr wd,
    or Adam's g += wd w; m += (1 - b1)(g - m); v = b2 v + (1 - b2) g^2;
    w -= step_size m / (sqrt(v) / sqrt(1 - b2^t) + eps).
    ``flags``: bit 0 Nesterov, bit 1 decoupled weight decay. (One loop per case, with no
    branch inside: branches kept LLVM from vectorizing, about 7x slower.)

    Every loop also zeroes ``grad[a:b]`` as it reads it, so that the next step's products add
    their gradients onto zeros (BLAS's beta 1) instead of BLAS zeroing the buffer in a pass of
    its own (beta 0: a 4 MB memset a step for a 1024 x 1024 layer, ~4% of the step). Same bits:
    BLAS implements beta 0 as zeroing C, then the same sums onto it.
    """
    w, g, m, v = params[a:b], grad[a:b], s1[a:b], s2[a:b]
    wd = run[H_WEIGHT_DECAY]
    nesterov = (flags & 1) != 0
    if kind == OPT_ADAM:
        one_b1, b2, one_b2, eps = run[H_ONE_MINUS_BETA1], run[H_BETA2], run[H_ONE_MINUS_BETA2], run[H_EPS]
        step_size, bc2 = step[S_STEP_SIZE], step[S_BC2_SQRT]
        if wd != 0 and (flags & 2) == 0:
            _adam_coupled(w, g, m, v, wd, one_b1, b2, one_b2, eps, step_size, bc2)
        else:  # AdamW, or no decay at all: then S_DECAY is 1 - lr * 0 = 1, and w * 1 = w exactly
            _adam_decoupled(w, g, m, v, step[S_DECAY], one_b1, b2, one_b2, eps, step_size, bc2)
    elif wd == 0 and not nesterov and run[H_MOMENTUM] != 0:
        _sgd_momentum(w, g, m, run[H_MOMENTUM], step[S_LR])
    else:
        _sgd(w, g, m, wd, run[H_MOMENTUM], nesterov, step[S_LR])


@kernel_jit(**FAST)
def clip_gradient(grad, max_norm):
    """``optim.clipping.clip_grad_norm`` on the flat gradient: its global norm n (summed in
    float64); when max_norm / (n + 1e-6) < 1 (and n is finite) every entry is scaled by it."""
    total = 0.0
    for k in range(grad.shape[0]):
        v = np.float64(grad[k])
        total += v * v
    norm = np.sqrt(total)
    coef = max_norm / (norm + 1e-6)
    if np.isfinite(norm) and coef < 1.0:
        c = np.empty(1, dtype=grad.dtype)
        c[0] = coef
        for k in range(grad.shape[0]):
            grad[k] *= c[0]
    return norm


@kernel_jit(**FAST)
def max_norm_columns(w, rows, c, sums, scale):
    """``nn.max_norm.apply_max_norm`` on one weight matrix w (fan_in, fan_out): each column's
    norm over its first ``rows`` rows (squares summed in float64); columns above c are
    multiplied by c / norm (in the dtype), the others are left as they are (NumPy multiplies
    them by exactly 1). ``sums`` (float64) and ``scale`` (dtype): scratch of fan_out or more."""
    n = w.shape[1]
    for q in range(n):
        sums[q] = 0.0
    for r in range(rows):
        wr = w[r]
        for q in range(n):
            v = np.float64(wr[q])
            sums[q] += v * v
    any_over = False
    for q in range(n):
        scale[q] = np.sqrt(sums[q])
        if scale[q] > c:
            scale[q] = c / scale[q]
            any_over = True
        else:
            scale[q] = c / c
    if any_over:
        for r in range(rows):
            wr = w[r]
            for q in range(n):
                wr[q] *= scale[q]
