"""Dense pieces of the compiled steps: matrix products, activations, the fused loss, the bias update.

The arithmetic is the NumPy engine's (``nn/activations.py``, ``nn/losses.py``, ``optim/sgd.py``):
the same formulas in the same dtype, so results agree to rounding (tests/test_kernels.py).

Every number the kernels use comes from a ``constants`` array in the model dtype (so that no
float64 scalar sneaks into float32 arithmetic), indexed by the names below (``consts[ONE]``).
Activations are selected by the kernel code each :class:`mlpkit.nn.activations.Activation`
names (``KERNEL_*``); ``NO_ACTIVATION`` leaves a layer linear (the logits).
"""

from __future__ import annotations

import numpy as np

from mlpkit.engine.kernel_cache import kernel_jit
from mlpkit.nn.activations import (
    IMPROVED_SIGMOID_A,
    IMPROVED_SIGMOID_B,
    KERNEL_IMPROVED_SIGMOID,
    KERNEL_RELU,
    KERNEL_SIGMOID,
    KERNEL_TANH,
)

#: Reassociation lets LLVM vectorize the reductions (softmax sums, bias gradients) and
#: contraction allows fused multiply-adds. No "no-NaN"/"no-inf" flags: divergence must show.
FAST = {"nogil": True, "fastmath": {"reassoc", "contract"}, "error_model": "numpy"}

#: Where each constant sits in the array ``constants`` makes: 1/2, 1, the improved sigmoid's
#: A, B, A^2 and B/A (f = A tanh(B z)), 0, then the learning rate and momentum of a run.
HALF, ONE, ISIG_A, ISIG_B, ISIG_A_SQUARED, ISIG_B_OVER_A, ZERO, LR, MOMENTUM = range(9)
#: The activation code of a layer without one (the output layer's logits).
NO_ACTIVATION = -1

# CBLAS enums (C ints)
_ROW_MAJOR, _NO_TRANS, _TRANS = np.int32(101), np.int32(111), np.int32(112)


def constants(dtype: np.dtype, lr: float = 0.0, momentum: float = 0.0) -> np.ndarray:
    """The constants array in the model dtype, laid out as the indices above say."""
    a, b = IMPROVED_SIGMOID_A, IMPROVED_SIGMOID_B
    return np.array([0.5, 1.0, a, b, a * a, b / a, 0.0, lr, momentum], dtype=dtype)


@kernel_jit(**FAST)
def gemm_product(gemm, a, b, c, trans_a, trans_b, consts):
    """c = op(a) @ op(b) for C-ordered 2-D arrays (op: transpose when asked)."""
    gemm_update(gemm, a, b, c, trans_a, trans_b, consts[ONE], consts[ZERO])


#: Below this many entries ``w -= lr v`` runs in ``add_scaled`` on the calling thread. Why:
#: OpenBLAS hands an axpy of more than 10,000 entries to its second thread, and that handoff
#: cost a seed step (50k parameters) ~20 us: one-thread epochs of 625 steps with momentum
#: 43.6-44.4 -> 30.0-30.5 ms (seed-tricks' model), 105.6-111.8 -> 95.6-98.1 ms (deep10). Two
#: 784-w-w-10 layers with momentum, us a step, BLAS threads / this loop: w = 128 (118k
#: entries) 155 / 143 at batch 32; w = 300 (329k) 424 / 426 and 1110 / 1080 at batch 128;
#: w = 600 (838k) 1014 / 1060 and 2894 / 3343: from about half a million on, two threads
#: win (memory bandwidth), so BLAS keeps those.
AXPY_THREADS_MIN = 1 << 19


@kernel_jit(**FAST)
def add_scaled(y, alpha, x):
    """y += alpha x: BLAS's axpy on this thread (a fused multiply-add each, as OpenBLAS's)."""
    for k in range(y.shape[0]):
        y[k] = y[k] + alpha * x[k]


@kernel_jit(**FAST)
def gemm_update(gemm, a, b, c, trans_a, trans_b, alpha, beta):
    """c = alpha op(a) @ op(b) + beta c: lets an optimizer update ride on the gradient's product."""
    m, n = c.shape
    inner = a.shape[0] if trans_a else a.shape[1]
    gemm(
        _ROW_MAJOR,
        _TRANS if trans_a else _NO_TRANS,
        _TRANS if trans_b else _NO_TRANS,
        m,
        n,
        inner,
        alpha,
        a.ctypes.data,
        a.shape[1],
        b.ctypes.data,
        b.shape[1],
        beta,
        c.ctypes.data,
        n,
    )


_F = np.float32
_TANH_CLAMP = _F(7.90531110763549805)


@kernel_jit(inline="always", **FAST)
def _tanh32(v):
    """float32 tanh as a rational function (Eigen's): branch-free, so loops over it vectorize.

    Numba's np.tanh calls libm per element; this is a few instructions. Measured against a
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


@kernel_jit(**FAST)
def tanh32(z):
    """In place on a 1-D float32 array (for tests and the fast activations)."""
    for i in range(z.shape[0]):
        z[i] = _tanh32(z[i])


@kernel_jit(**FAST)
def add_bias_and_activate(z, bias, has_bias, code, consts):
    """z = f(z + bias) in place (code ``NO_ACTIVATION``: no f), with activations.py's formulas;
    float32 uses ``_tanh32``, float64 np.tanh."""
    m, n = z.shape
    fast = consts.itemsize == 4
    for r in range(m):
        zr = z[r]
        if has_bias:
            for q in range(n):
                zr[q] += bias[q]
        if code == KERNEL_SIGMOID:  # (1 + tanh(z / 2)) / 2
            if fast:
                for q in range(n):
                    zr[q] = (_tanh32(zr[q] * consts[HALF]) + consts[ONE]) * consts[HALF]
            else:
                for q in range(n):
                    zr[q] = (np.tanh(zr[q] * consts[HALF]) + consts[ONE]) * consts[HALF]
        elif code == KERNEL_IMPROVED_SIGMOID:  # A tanh(B z)
            if fast:
                for q in range(n):
                    zr[q] = _tanh32(zr[q] * consts[ISIG_B]) * consts[ISIG_A]
            else:
                for q in range(n):
                    zr[q] = np.tanh(zr[q] * consts[ISIG_B]) * consts[ISIG_A]
        elif code == KERNEL_TANH:
            if fast:
                for q in range(n):
                    zr[q] = _tanh32(zr[q])
            else:
                for q in range(n):
                    zr[q] = np.tanh(zr[q])
        elif code == KERNEL_RELU:
            for q in range(n):
                if zr[q] < 0:
                    zr[q] = 0


@kernel_jit(**FAST)
def backprop(d, a, code, consts):
    """d *= f'(z), with f'(z) written from the output a = f(z)."""
    m, n = d.shape
    for r in range(m):
        dr, ar = d[r], a[r]
        if code == KERNEL_SIGMOID:  # a (1 - a)
            for q in range(n):
                dr[q] *= (consts[ONE] - ar[q]) * ar[q]
        elif code == KERNEL_IMPROVED_SIGMOID:  # (B/A)(A^2 - a^2)
            for q in range(n):
                dr[q] *= (consts[ISIG_A_SQUARED] - ar[q] * ar[q]) * consts[ISIG_B_OVER_A]
        elif code == KERNEL_TANH:  # 1 - a^2
            for q in range(n):
                dr[q] *= consts[ONE] - ar[q] * ar[q]
        else:  # relu: 1 where a > 0
            for q in range(n):
                if not ar[q] > 0:
                    dr[q] = 0


@kernel_jit(**FAST)
def softmax_xent(z, labels, grad, consts, typed):
    """Summed cross-entropy of logits z (m, K); grad = (softmax(z) - onehot) / m.

    ``typed``: 2-element scratch that turns m and 1/m into the model dtype (in Numba,
    int * float32 is float64).
    """
    m, n_classes = z.shape
    total = 0.0
    typed[0] = m
    typed[1] = consts[ONE] / typed[0]
    m_, inv_m = typed[0], typed[1]
    for r in range(m):
        zr, gr, label = z[r], grad[r], labels[r]
        top = zr[0]
        for q in range(1, n_classes):
            if zr[q] > top:
                top = zr[q]
        s = consts[ZERO]
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


#: exp32_in_place's range: below EXP_LOW float32's exp is not normal (it returns exp(EXP_LOW)),
#: above EXP_HIGH it overflows (it returns exp(EXP_HIGH)).
_EXP_LOW, _EXP_HIGH = _F(-87.33654), _F(88.37626)


@kernel_jit(inline="always", **FAST)
def exp32_in_place(a, bits):
    """a = exp(a) for a 1-D float32 array, at most 1 ulp off on [-87, 0]: exp(r) 2^n with
    n = round(a / ln 2), r = a - n ln 2 reduced in float64 (exact enough whatever order LLVM
    gives the arithmetic) and Cephes' expf polynomial; NaN stays NaN. ``bits``: int32 scratch
    of a's length.

    Why: the evaluation's loss takes ten exps a row, and libm's expf, called one at a time,
    was half of its time; this loop vectorizes. Inlined into its caller: as a kernel of its
    own it added 0.55 s to a cold start's compile (0.33 s inlined)."""
    scale = bits.view(np.float32)
    for i in range(a.shape[0]):
        x = a[i]
        x = x if not x < _EXP_LOW else _EXP_LOW  # written so that NaN passes
        x = x if not x > _EXP_HIGH else _EXP_HIGH
        n = np.floor((x if x == x else _F(0.0)) * _F(1.44269504088896341) + _F(0.5))
        r = np.float32(np.float64(x) - np.float64(n) * 0.6931471805599453)
        p = _F(1.9875691500e-4)
        p = p * r + _F(1.3981999507e-3)
        p = p * r + _F(8.3334519073e-3)
        p = p * r + _F(4.1665795894e-2)
        p = p * r + _F(1.6666665459e-1)
        p = p * r + _F(5.0000001201e-1)
        bits[i] = (np.int32(n) + np.int32(127)) << np.int32(23)  # 2^n as float32 bits
        a[i] = (p * (r * r) + r + _F(1.0)) * scale[i]


@kernel_jit(**FAST)
def xent_and_hits(z, labels):
    """Summed cross-entropy of logits z (m, K) and how many rows' argmax is the label
    (first index on ties; a NaN wins, as in np.argmax). float32 logits take their exps from
    ``exp32_in_place``, all rows at once; float64 ones from np.exp."""
    m, n_classes = z.shape
    total = 0.0
    hits = 0
    shifted = np.empty(m * n_classes, dtype=z.dtype)  # z - the row's max, then its exp
    tops = np.empty(m, dtype=z.dtype)
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
        tops[r] = top
        sr = shifted[r * n_classes : (r + 1) * n_classes]
        for q in range(n_classes):
            sr[q] = zr[q] - top
    if z.itemsize == 4:
        exp32_in_place(shifted, np.empty(shifted.shape[0], dtype=np.int32))
    else:
        for i in range(shifted.shape[0]):
            shifted[i] = np.exp(shifted[i])
    for r in range(m):
        sr = shifted[r * n_classes : (r + 1) * n_classes]
        s = sr[0] - sr[0]
        for q in range(n_classes):
            s += sr[q]
        total += np.float64(np.log(s)) - np.float64(z[r, labels[r]] - tops[r])
    return total, hits


@kernel_jit(**FAST)
def bias_update(delta, b, v, lr, momentum):
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
