"""Compiled (Numba) training steps: many SGD steps per call, no Python in between.

Why: at the seed's batch of 32 a step is ~6.5 MFLOP (~70 microseconds of BLAS), and calling
NumPy three dozen times per step cost more than that. Here a whole run of steps (up to the
next validation) is one call: the matrix products go straight to the BLAS library NumPy
itself uses (its CBLAS ``gemm``, found by :mod:`mlpkit.engine.blas`), and everything between them
(gathering the batch, activations, the fused softmax-cross-entropy gradient) is a compiled
loop over buffers allocated once; the SGD update rides on the gradient's ``gemm`` (see
``train_steps``).

The arithmetic is the model's (``model.py``, ``activations.py``, ``losses.py``, ``optim.py``):
the same formulas in the same dtype, so results agree to rounding (tests/test_kernels.py).
Parameters and velocities are the optimizer's flat buffers; ``layout`` says where each
layer lives in them: one row (weight offset, fan_in, fan_out, bias offset or -1) per layer.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from mlpkit.engine.simd import TILE_VECTORS, gather1, gather2, gather3, gather4, lanes, scatter1, scatter2, scatter3, scatter4

#: Activation codes the kernels understand, by mlpkit name.
ACTIVATION_CODES = {"sigmoid": 0, "improved_sigmoid": 1, "tanh": 2, "relu": 3}
#: Reassociation lets LLVM vectorize the reductions (softmax sums, bias gradients) and
#: contraction allows fused multiply-adds. No "no-NaN"/"no-inf" flags: divergence must show.
_JIT = dict(cache=True, nogil=True, fastmath={"reassoc", "contract"}, error_model="numpy")

# CBLAS enums (C ints)
_ROW_MAJOR, _NO_TRANS, _TRANS = np.int32(101), np.int32(111), np.int32(112)


def layer_layout(model) -> np.ndarray:
    """(layers, 4) int64: weight offset, fan_in, fan_out, bias offset (-1: none) in the flat buffer."""
    rows, offset = [], 0
    for fan_in, fan_out in model.shapes:
        w_off = offset
        offset += fan_in * fan_out
        b_off = -1
        if model.bias == "per_layer":
            b_off = offset
            offset += fan_out
        rows.append((w_off, fan_in, fan_out, b_off))
    return np.array(rows, dtype=np.int64)


#: Where ``train_steps`` finds the learning rate and momentum in ``k``.
LR, MOMENTUM = 7, 8


def constants(dtype: np.dtype, lr: float = 0.0, momentum: float = 0.0) -> np.ndarray:
    """Constants in the model dtype (so that no float64 scalar sneaks into float32 arithmetic):
    0.5, 1, A, B, A^2, B/A of the improved sigmoid A tanh(B z), 0, then lr and momentum."""
    a, b = 1.7159, 2.0 / 3.0
    return np.array([0.5, 1.0, a, b, a * a, b / a, 0.0, lr, momentum], dtype=dtype)


# ----------------------------------------------------------------------- pieces
@njit(**_JIT)
def _gemm(gemm, a, b, c, trans_a, trans_b, k):
    """c = op(a) @ op(b) for C-ordered 2-D arrays (op: transpose when asked)."""
    _gemm_update(gemm, a, b, c, trans_a, trans_b, k[1], k[6])


@njit(**_JIT)
def _gemm_update(gemm, a, b, c, trans_a, trans_b, alpha, beta):
    """c = alpha op(a) @ op(b) + beta c: lets an optimizer update ride on the gradient's product."""
    m, n = c.shape
    inner = a.shape[0] if trans_a else a.shape[1]
    gemm(_ROW_MAJOR, _TRANS if trans_a else _NO_TRANS, _TRANS if trans_b else _NO_TRANS, m, n, inner,
         alpha, a.ctypes.data, a.shape[1], b.ctypes.data, b.shape[1], beta, c.ctypes.data, n)


_F = np.float32
_TANH_CLAMP = _F(7.90531110763549805)


@njit(inline="always", **_JIT)
def _tanh32(v):
    """float32 tanh as a rational function (Eigen's): branch-free, so loops over it vectorize.

    Numba's np.tanh calls libm per element (~10 ns); this is ~0.5 ns. Measured against a
    float64 tanh on [-12, 12]: at most 4.5 ulp (2.7e-7) off; NaN stays NaN (tests/test_kernels.py).
    """
    x = v if v < _TANH_CLAMP else _TANH_CLAMP
    x = x if x > -_TANH_CLAMP else -_TANH_CLAMP
    x2 = x * x
    p = _F(-2.76076847742355e-16)
    p = p * x2 + _F(2.00018790482477e-13)
    p = p * x2 + _F(-8.60467152213735e-11)
    p = p * x2 + _F(5.12229709037114e-08)
    p = p * x2 + _F(1.48572235717979e-05)
    p = p * x2 + _F(6.37261928875436e-04)
    p = p * x2 + _F(4.89352455891786e-03)
    q = _F(1.19825839466702e-06)
    q = q * x2 + _F(1.18534705686654e-04)
    q = q * x2 + _F(2.26843463243900e-03)
    q = q * x2 + _F(4.89352518554385e-03)
    t = x * p / q
    return v if ((v < _F(0.0004)) & (v > _F(-0.0004))) | (v != v) else t


@njit(**_JIT)
def tanh32(z):
    """In place on a 1-D float32 array (for tests and the fast activations)."""
    for i in range(z.shape[0]):
        z[i] = _tanh32(z[i])


@njit(**_JIT)
def _add_bias_and_activate(z, bias, has_bias, code, k):
    """z = f(z + bias) in place (code -1: no activation), with activations.py's formulas;
    float32 uses ``_tanh32``, float64 np.tanh."""
    m, n = z.shape
    fast = k.itemsize == 4
    for r in range(m):
        zr = z[r]
        if has_bias:
            for q in range(n):
                zr[q] += bias[q]
        if code == 0:  # sigmoid: (1 + tanh(z / 2)) / 2
            if fast:
                for q in range(n):
                    zr[q] = (_tanh32(zr[q] * k[0]) + k[1]) * k[0]
            else:
                for q in range(n):
                    zr[q] = (np.tanh(zr[q] * k[0]) + k[1]) * k[0]
        elif code == 1:  # A tanh(B z)
            if fast:
                for q in range(n):
                    zr[q] = _tanh32(zr[q] * k[3]) * k[2]
            else:
                for q in range(n):
                    zr[q] = np.tanh(zr[q] * k[3]) * k[2]
        elif code == 2:
            if fast:
                for q in range(n):
                    zr[q] = _tanh32(zr[q])
            else:
                for q in range(n):
                    zr[q] = np.tanh(zr[q])
        elif code == 3:
            for q in range(n):
                if zr[q] < 0:
                    zr[q] = 0


@njit(**_JIT)
def _backprop(d, a, code, k):
    """d *= f'(z), with f'(z) written from the output a = f(z)."""
    m, n = d.shape
    for r in range(m):
        dr, ar = d[r], a[r]
        if code == 0:
            for q in range(n):
                dr[q] *= (k[1] - ar[q]) * ar[q]
        elif code == 1:
            for q in range(n):
                dr[q] *= (k[4] - ar[q] * ar[q]) * k[5]
        elif code == 2:
            for q in range(n):
                dr[q] *= k[1] - ar[q] * ar[q]
        else:
            for q in range(n):
                if not ar[q] > 0:
                    dr[q] = 0


@njit(**_JIT)
def _softmax_xent(z, labels, grad, k, typed):
    """Summed cross-entropy of logits z (m, K); grad = (softmax(z) - onehot) / m.

    ``typed``: 2-element scratch that turns m and 1/m into the model dtype (in Numba,
    int * float32 is float64).
    """
    m, n_classes = z.shape
    total = 0.0
    typed[0] = m
    typed[1] = k[1] / typed[0]
    m_, inv_m = typed[0], typed[1]
    for r in range(m):
        zr, gr, label = z[r], grad[r], labels[r]
        top = zr[0]
        for q in range(1, n_classes):
            if zr[q] > top:
                top = zr[q]
        s = k[6]
        for q in range(n_classes):
            e = np.exp(zr[q] - top)
            gr[q] = e
            s += e
        total += np.float64(np.log(s)) - np.float64(zr[label] - top)
        s *= m_
        for q in range(n_classes):
            gr[q] /= s
        gr[label] -= inv_m
    return total


@njit(**_JIT)
def _forward(gemm, x, sp, rows, row0, m, params, layout, code, k, acts):
    """Every layer's output for ``m`` input rows, one after the other in ``acts`` (the logits
    last); returns the logits and where they start in ``acts``.

    The inputs are the rows of dense ``x`` or, when ``sp`` (the (indptr, indices, values,
    base) of a :class:`mlpkit.engine.sparse.SparseRows`) is not empty, its rows ``rows`` (or
    ``row0 .. row0 + m - 1`` when ``rows`` is empty).
    """
    n_layers = layout.shape[0]
    offset = 0
    prev = x
    for i in range(n_layers):
        w_off, fan_in, fan_out, b_off = layout[i, 0], layout[i, 1], layout[i, 2], layout[i, 3]
        out = acts[offset : offset + m * fan_out].reshape((m, fan_out))
        if i == 0 and sp[0].shape[0] > 0:
            _sparse_product(gemm, sp, rows, row0, m, params, w_off, fan_in, fan_out, out, k)
        else:
            w = params[w_off : w_off + fan_in * fan_out].reshape((fan_in, fan_out))
            _gemm(gemm, prev, w, out, False, False, k)
        bias = params[b_off : b_off + fan_out] if b_off >= 0 else params[:0]
        _add_bias_and_activate(out, bias, b_off >= 0, code if i < n_layers - 1 else -1, k)
        prev = out
        offset += m * fan_out
    return prev, offset - m * layout[n_layers - 1, 2]


# ------------------------------------------------------------------ sparse inputs
@njit(**_JIT)
def _tile(n, t, width):
    """The tile of columns that starts at column t of a row of n: (columns, vectors, offset of
    the last vector, lanes of it that the vector before already covers).

    Four vectors while four fit; then the vectors the rest needs, the last one ending at column
    n (so it may overlap the one before, or the tile before); 0 vectors when the whole row is
    narrower than one vector (the callers then loop over its columns)."""
    if n - t >= TILE_VECTORS * width:
        return TILE_VECTORS * width, TILE_VECTORS, (TILE_VECTORS - 1) * width, 0
    rest = n - t
    if n < width:
        return rest, 0, 0, 0
    k = -(-rest // width)
    return rest, k, rest - width, k * width - rest


@njit(inline="always", **_JIT)
def _gather(k, indices, values, p0, p1, src, src_off, ld, init, init_off, out, out_off, last):
    if k == 4:
        gather4(indices, values, p0, p1, src, src_off, ld, init, init_off, out, out_off, last)
    elif k == 3:
        gather3(indices, values, p0, p1, src, src_off, ld, init, init_off, out, out_off, last)
    elif k == 2:
        gather2(indices, values, p0, p1, src, src_off, ld, init, init_off, out, out_off, last)
    else:
        gather1(indices, values, p0, p1, src, src_off, ld, init, init_off, out, out_off, last)


@njit(inline="always", **_JIT)
def _scatter(k, indices, values, p0, p1, dst, dst_off, ld, d, d_off, alpha, last, skip):
    if k == 4:
        scatter4(indices, values, p0, p1, dst, dst_off, ld, d, d_off, alpha, last, skip)
    elif k == 3:
        scatter3(indices, values, p0, p1, dst, dst_off, ld, d, d_off, alpha, last, skip)
    elif k == 2:
        scatter2(indices, values, p0, p1, dst, dst_off, ld, d, d_off, alpha, last, skip)
    else:
        scatter1(indices, values, p0, p1, dst, dst_off, ld, d, d_off, alpha, last, skip)


@njit(**_JIT)
def _sparse_product(gemm, sp, rows, row0, m, params, w_off, fan_in, n, out, k):
    """out (m, n) = X @ W for m rows of sparse inputs X = V + 1 base^T (see mlpkit.engine.sparse):
    c = base @ W once (one small product), then each row's nonzeros of V added to c.

    Loops: tiles of columns (``_tile``), then blocks of W's rows (``block`` of them, which stay
    in L1 cache), then the m input rows, each adding its nonzeros in that block (simd.gather,
    accumulators in registers). Row i of the inputs is ``rows[r]``, or ``row0 + r`` when
    ``rows`` is empty. Columns that two tiles share are recomputed from c across the blocks,
    in the same order, so they end with the same values."""
    blocks, indices, values, base, block = sp
    c = np.empty(n, dtype=params.dtype)
    w = params[w_off : w_off + fan_in * n].reshape((fan_in, n))
    _gemm(gemm, base.reshape((1, fan_in)), w, c.reshape((1, n)), False, False, k)
    flat = out.reshape(-1)
    width = lanes(k.itemsize)
    n_blocks = blocks.shape[1] - 1
    t = 0
    while t < n:
        tw, vectors, last, _ = _tile(n, t, width)
        for b in range(n_blocks):
            for r in range(m):
                i = rows[r] if rows.shape[0] > 0 else row0 + r
                p0, p1 = blocks[i, b], blocks[i, b + 1]
                init, at = (c, t) if b == 0 else (flat, r * n + t)
                if vectors > 0:
                    _gather(vectors, indices, values, p0, p1, params, w_off + t, n, init, at, flat, r * n + t, last)
                else:  # a layer narrower than a vector
                    o, start = out[r, t : t + tw], init[at : at + tw]
                    for q in range(tw):
                        o[q] = start[q]
                    for p in range(p0, p1):
                        row, v = w_off + indices[p] * n + t, values[p]
                        w_row = params[row : row + tw]
                        for q in range(tw):
                            o[q] += v * w_row[q]
        t += tw


@njit(**_JIT)
def _sparse_weight_gradient(sp, rows, m, delta, dst, w_off, fan_in, n, alpha, beta, k):
    """W' = beta W' + alpha X^T delta into ``dst[w_off:]`` (the weights, or their velocity),
    for sparse inputs X = V + 1 base^T: X^T delta = base (1^T delta) + V^T delta, the first an
    outer product (fused with beta), the second one row of W' per nonzero of V
    (simd.scatter). Same loops as ``_sparse_product``: per tile and block of W' rows, the
    block's outer product, then every row's nonzeros in it, while the block is in L1. Columns
    that two tiles share are added once (simd.scatter's ``skip``)."""
    blocks, indices, values, base, block = sp
    s = np.zeros(n, dtype=dst.dtype)
    for r in range(m):
        dr = delta[r]
        for q in range(n):
            s[q] += dr[q]
    for q in range(n):
        s[q] *= alpha
    flat = delta.reshape(-1)
    width = lanes(k.itemsize)
    n_blocks = blocks.shape[1] - 1
    keep = beta == k[1]
    t = 0
    while t < n:
        tw, vectors, last, skip = _tile(n, t, width)
        for b in range(n_blocks):
            for j in range(b * block, min(fan_in, (b + 1) * block)):
                at, bj = w_off + j * n + t, base[j]
                row, st = dst[at : at + tw], s[t : t + tw]  # slices: the loops vectorize
                if keep:
                    for q in range(tw):
                        row[q] += bj * st[q]
                else:
                    for q in range(tw):
                        row[q] = beta * row[q] + bj * st[q]
            for r in range(m):
                i = rows[r]
                p0, p1 = blocks[i, b], blocks[i, b + 1]
                if vectors > 0:
                    _scatter(vectors, indices, values, p0, p1, dst, w_off + t, n, flat, r * n + t, alpha, last, skip)
                else:  # a layer narrower than a vector
                    dr = delta[r, t : t + tw]
                    for p in range(p0, p1):
                        at, v = w_off + indices[p] * n + t, alpha * values[p]
                        row = dst[at : at + tw]
                        for q in range(tw):
                            row[q] += v * dr[q]
        t += tw


# ------------------------------------------------------------------------ kernel
@njit(**_JIT)
def train_steps(gemm, axpy, x, sp, y, order, plan, params, velocity, layout, k, xb, yb, scratch, losses):
    """Run ``n_steps`` SGD steps from step ``first_step`` of the epoch whose sample order is ``order``.

    ``plan``: int64 (first_step, n_steps, batch_size, activation code); ``k``: ``constants``
    with the learning rate and momentum at LR, MOMENTUM. (Few arguments: Numba's dispatcher
    leaks a little memory per call of functions with about 20 array arguments.)

    Each step gathers rows ``order[step * batch_size : ...]`` of ``x``/``y`` into ``xb``/``yb``
    (with sparse inputs ``sp``, see ``_forward``, the first layer reads those rows of ``sp``
    instead, and its weight gradient is ``_sparse_weight_gradient``),
    computes the mean loss (into ``losses``) and the gradients, and updates ``params`` as
    ``optim.SGD`` does: v = momentum v + g, w -= lr v (momentum 0: w -= lr g). The update
    rides on the weight gradient's product, ``gemm``'s C = alpha A B + beta C: with momentum
    it writes v = 1 * (a^T delta) + momentum * v, then one ``axpy`` does w -= lr v for all
    parameters; without, w = -lr * (a^T delta) + 1 * w directly. So no gradient array is
    written or read back. Each layer's delta below is computed before its weights move.
    Returns how many steps were applied: fewer than ``n_steps`` when a loss is not finite
    (that loss is in ``losses``, its update not applied).
    ``scratch``: 2 * batch_size * (sum of layer widths) elements (outputs, then deltas).
    """
    first_step, n_steps, batch_size, code = plan[0], plan[1], plan[2], plan[3]
    lr, momentum = k[LR], k[MOMENTUM]
    half = scratch.shape[0] // 2
    acts, deltas = scratch[:half], scratch[half:]
    n_layers = layout.shape[0]
    typed = np.empty(2, dtype=k.dtype)
    neg_lr = -lr
    sparse = sp[0].shape[0] > 0
    for s in range(n_steps):
        start = (first_step + s) * batch_size
        m = min(batch_size, order.shape[0] - start)
        xs, ys, rows = xb[:m], yb[:m], order[start : start + m]
        for r in range(m):
            i = rows[r]
            if not sparse:
                xs[r] = x[i]
            ys[r] = y[i]
        logits, offset = _forward(gemm, xs, sp, rows, 0, m, params, layout, code, k, acts)
        # loss and dL/dlogits
        fan_out = layout[n_layers - 1, 2]
        delta = deltas[offset : offset + m * fan_out].reshape((m, fan_out))
        loss = _softmax_xent(logits, ys, delta, k, typed) / m
        losses[s] = loss
        if not np.isfinite(loss):
            return s
        # backward, top layer first: delta_below = delta W^T * f'(a) with the old W, then
        # W's update from dW = a^T delta, and the bias's from db = sum(delta)
        for i in range(n_layers - 1, -1, -1):
            w_off, fan_in, fan_out, b_off = layout[i, 0], layout[i, 1], layout[i, 2], layout[i, 3]
            w = params[w_off : w_off + fan_in * fan_out].reshape((fan_in, fan_out))
            below = offset - m * fan_in
            a_in = xs if i == 0 else acts[below:offset].reshape((m, fan_in))
            if i > 0:
                d_in = deltas[below:offset].reshape((m, fan_in))
                _gemm(gemm, delta, w, d_in, False, True, k)
                _backprop(d_in, a_in, code, k)
            if i == 0 and sparse:
                if momentum != 0:
                    _sparse_weight_gradient(sp, rows, m, delta, velocity, w_off, fan_in, fan_out, k[1], momentum, k)
                else:
                    _sparse_weight_gradient(sp, rows, m, delta, params, w_off, fan_in, fan_out, neg_lr, k[1], k)
            elif momentum != 0:
                v = velocity[w_off : w_off + fan_in * fan_out].reshape((fan_in, fan_out))
                _gemm_update(gemm, a_in, delta, v, True, False, k[1], momentum)
            else:
                _gemm_update(gemm, a_in, delta, w, True, False, neg_lr, k[1])
            if b_off >= 0:
                _bias_update(delta, params[b_off : b_off + fan_out], velocity[b_off : b_off + fan_out],
                             lr, momentum)
            if i > 0:
                delta = d_in
                offset = below
        if momentum != 0:
            axpy(params.shape[0], neg_lr, velocity.ctypes.data, 1, params.ctypes.data, 1)
    return n_steps


@njit(**_JIT)
def _bias_update(delta, b, v, lr, momentum):
    """db = sum over rows of delta; v = momentum v + db (then axpy does b -= lr v), or b -= lr db."""
    m, n = delta.shape
    if momentum != 0:
        for q in range(n):
            v[q] *= momentum
        for r in range(m):
            dr = delta[r]
            for q in range(n):
                v[q] += dr[q]
    else:
        for q in range(n):
            acc = delta[0, q] - delta[0, q]
            for r in range(m):
                acc += delta[r, q]
            b[q] -= lr * acc


@njit(**_JIT)
def _xent_and_hits(z, labels):
    """Summed cross-entropy of logits z (m, K) and how many rows' argmax is the label
    (first index on ties; a NaN wins, as in np.argmax)."""
    m, n_classes = z.shape
    total = 0.0
    hits = 0
    for r in range(m):
        zr, label = z[r], labels[r]
        top = zr[0]
        best = 0
        for q in range(1, n_classes):
            v = zr[q]
            if v > top or (np.isnan(v) and not np.isnan(top)):
                top = v
                best = q
        if best == label:
            hits += 1
        s = zr[0] - zr[0]
        for q in range(n_classes):
            s += np.exp(zr[q] - top)
        total += np.float64(np.log(s)) - np.float64(zr[label] - top)
    return total, hits


@njit(**_JIT)
def evaluate_rows(gemm, x, sp, row0, y, params, layout, code, k, acts):
    """(summed cross-entropy, hits) of all rows of ``x``/``y``, in blocks that fit ``acts``
    (scratch of at least one row's worth of every layer's outputs). With sparse inputs ``sp``
    (see ``_forward``) the rows are ``row0 .. row0 + len(y) - 1`` of ``sp`` and ``x`` is not read."""
    n_layers = layout.shape[0]
    width = 0
    for i in range(n_layers):
        width += layout[i, 2]
    block = max(1, acts.shape[0] // width)
    total = 0.0
    hits = 0
    no_rows = np.empty(0, dtype=np.intp)
    for start in range(0, y.shape[0], block):
        stop = min(start + block, y.shape[0])
        logits, _ = _forward(gemm, x[start:stop], sp, no_rows, row0 + start, stop - start, params, layout, code,
                             k, acts)
        loss_sum, h = _xent_and_hits(logits, y[start:stop])
        total += loss_sum
        hits += h
    return total, hits
