"""Float32 uniform draws equal, bit for bit, to ``Generator.random(shape, dtype=np.float32)`` of
NumPy's PCG64 generator (what ``np.random.default_rng`` makes), compiled.

Why: NumPy fills float32 draws one function-pointer call per value; the elastic fields draw
1,568 values an image, and on a MNIST epoch that call overhead was the largest CPU cost of
augmentation left. Here the same PCG64 stream (128-bit LCG step, XSL-RR output, two float32 from
each 64-bit output, low half first, NumPy's carried half-word included) runs in one loop, and the
generator's state is set to where NumPy's own fill would leave it, so the draws after it are
unchanged too. Any other bit generator goes through ``rng.random``.

Used by augmentation (its elastic fields) and by the compiled steps' dropout masks; in ``core``
so that both layers can. Like `mlpkit.data.warp`, this module imports Numba at import time and
uses no code from other files (Numba's on-disk cache is keyed on the file).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

__all__ = ["fill_float32", "random_float32"]

_MASK64 = (1 << 64) - 1
#: PCG's default 128-bit multiplier (``PCG_DEFAULT_MULTIPLIER_128``), as high and low words.
_MULT_HI, _MULT_LO = np.uint64(2549297995355413924), np.uint64(4865540595714422341)
_ONE, _8, _32, _58, _63, _64 = (np.uint64(v) for v in (1, 8, 32, 58, 63, 64))
_LOW32 = np.uint64(0xFFFFFFFF)
#: ``(u >> 8) * 2**-24``: NumPy's float32 from a 32-bit word.
_SCALE = np.float32(1.0 / 16777216.0)


@intrinsic
def _mul_high(typingctx, a, b):
    """The high 64 bits of the 128-bit product of two uint64."""
    sig = types.uint64(types.uint64, types.uint64)

    def codegen(context, builder, sig, args):
        wide = ir.IntType(128)
        product = builder.mul(builder.zext(args[0], wide), builder.zext(args[1], wide))
        return builder.trunc(builder.lshr(product, ir.Constant(wide, 64)), ir.IntType(64))

    return sig, codegen


@njit(nogil=True, cache=True)
def _fill(words, out):  # pragma: no cover - compiled
    """Fill ``out`` from the PCG64 state ``words`` = (state high, state low, increment high,
    increment low, has a carried half-word, the half-word), updated in place."""
    hi, lo, inc_hi, inc_lo = words[0], words[1], words[2], words[3]
    n, i = out.size, 0
    if words[4] != 0 and n > 0:  # the upper half of the last 64-bit output, not yet used
        out[0] = np.float32(words[5] >> _8) * _SCALE
        words[4] = 0
        i = 1
    while i < n:
        # state = state * multiplier + increment (mod 2^128)
        new_lo = lo * _MULT_LO
        new_hi = _mul_high(lo, _MULT_LO) + hi * _MULT_LO + lo * _MULT_HI
        lo = new_lo + inc_lo
        hi = new_hi + inc_hi + (_ONE if lo < new_lo else np.uint64(0))
        # XSL-RR output: (high ^ low) rotated right by the top 6 bits of the state
        x, rot = hi ^ lo, hi >> _58
        x = (x >> rot) | (x << ((_64 - rot) & _63))
        out[i] = np.float32((x & _LOW32) >> _8) * _SCALE
        words[5] = x >> _32  # NumPy keeps the upper half (the next 32-bit draw when it is unused)
        if i + 1 < n:
            out[i + 1] = np.float32(words[5] >> _8) * _SCALE
        else:
            words[4] = 1
        i += 2
    words[0], words[1] = hi, lo


def random_float32(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """``rng.random(shape, dtype=np.float32)``: the same values, and ``rng`` left in the same state.

    Parameters
    ----------
    rng : numpy.random.Generator
        Compiled when its bit generator is PCG64; any other goes through ``rng.random``.
    shape : tuple of int
        Of the result.

    Returns
    -------
    np.ndarray
        float32 ``shape``, values ``k / 2**24`` in [0, 1).
    """
    out = np.empty(shape, dtype=np.float32)
    fill_float32(rng, out.reshape(-1))
    return out


def fill_float32(rng: np.random.Generator, out: np.ndarray) -> None:
    """``rng.random(out=out, dtype=np.float32)`` for a contiguous 1-D float32 ``out``: the same
    values, and ``rng`` left in the same state (compiled for PCG64, else NumPy's own call)."""
    bits = rng.bit_generator
    if type(bits) is not np.random.PCG64:
        rng.random(out=out, dtype=np.float32)
        return
    state = bits.state
    s, inc = state["state"]["state"], state["state"]["inc"]
    words = np.array(
        [s >> 64, s & _MASK64, inc >> 64, inc & _MASK64, state["has_uint32"], state["uinteger"]], dtype=np.uint64
    )
    _fill(words, out)
    state["state"]["state"] = (int(words[0]) << 64) | int(words[1])
    state["has_uint32"], state["uinteger"] = int(words[4]), int(words[5])
    bits.state = state
