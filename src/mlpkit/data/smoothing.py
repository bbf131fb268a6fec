"""Gaussian smoothing of many small fields at once (the elastic distortions' displacements), as
explicit vector code: each field is ``G_h @ F @ G_w.T`` (`gaussian_matrix`), computed in register
tiles of 4 rows x 32 columns of fused multiply-adds.

Why vector code: the augmentation's background feed shares the cores with the training, so every
CPU second it spends is taken from the training; Numba's own loops kept the sums in memory
(a load and a store per multiply-add). Here 8 vector registers hold a tile's sums over the whole
inner product, the zero band of G (beyond the Gaussian's radius) is skipped by the loop bounds,
and masked loads and stores read and write the fields in place (no padded copies). Sums run in a
fixed order per output value, always fused (in software on a CPU without FMA), image by image:
the result depends neither on how the images are cut into blocks nor on the thread or the machine.

This module imports Numba at import time; the modules above it import it inside functions, so
importing ``mlpkit.data`` stays cheap. Its compiled code uses no code from other files, so Numba's
own on-disk cache (keyed on this file) cannot load stale machine code.
"""

from __future__ import annotations

import functools

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from mlpkit.core.errors import InputError

__all__ = ["gaussian_matrix", "smooth_fields"]


def gaussian_matrix(size: int, sigma: float, *, truncate: float = 4.0) -> np.ndarray:
    """(size, size) float64 matrix G with ``G @ u`` = ``u`` filtered by a Gaussian of ``sigma``.

    The kernel is scipy.ndimage's (weights exp(-x^2 / 2 sigma^2) over |x| <= round(truncate *
    sigma), normalized to sum 1) with zeros outside the signal (``mode="constant"``), so
    ``G @ U @ G.T`` equals ``scipy.ndimage.gaussian_filter(U, sigma, mode="constant")``.
    """
    radius = int(truncate * sigma + 0.5)
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    weights = np.exp(-0.5 * (offsets / sigma) ** 2)
    weights /= weights.sum()
    g = np.zeros((size, size))
    for i in range(size):
        lo, hi = max(0, i - radius), min(size, i + radius + 1)
        g[i, lo:hi] = weights[lo - i + radius : hi - i + radius]
    return g


# ------------------------------------------------------------------------- vector helpers
_I64, _I32, _F32, _PTR = ir.IntType(64), ir.IntType(32), ir.FloatType(), ir.PointerType()


def _as_i64(builder: ir.IRBuilder, value: ir.Value) -> ir.Value:
    return builder.sext(value, _I64) if value.type.width < 64 else value


def _splat(builder: ir.IRBuilder, value: ir.Value, lanes: int) -> ir.Value:
    """A vector of ``lanes`` copies of the scalar ``value``."""
    ty = ir.VectorType(value.type, lanes)
    one = builder.insert_element(ir.Constant(ty, ir.Undefined), value, ir.Constant(_I32, 0))
    return builder.shuffle_vector(
        one, ir.Constant(ty, ir.Undefined), ir.Constant(ir.VectorType(_I32, lanes), [0] * lanes)
    )


def _function(builder: ir.IRBuilder, name: str, ret: ir.Type, params: list[ir.Type]) -> ir.Function:
    """An LLVM intrinsic, declared in the module once (the masked loads and stores take the
    alignment as an argument here; LLVM moves it to an attribute)."""
    return cgutils.get_or_insert_function(builder.module, ir.FunctionType(ret, params), name)


# ------------------------------------------------------------------------------- smoothing
#: float32 lanes of one 512-bit vector (LLVM splits it on CPUs with narrower vectors).
VECTOR = 16
#: A tile: TILE_ROWS output rows x TILE_COLS columns, held in 8 vector registers.
TILE_ROWS, TILE_COLS = 4, 2 * VECTOR


def _make_tile(shift: bool):
    """A register tile of ``out = x @ y`` (``y`` read as ``2 y - 1`` when ``shift``)."""

    @intrinsic
    def tile(typingctx, x, x_off, ldx, y, y_off, ldy, k0, k1, y_cols, out, out_off, ldo, rows, cols):
        """``out[out_off + i ldo + c] = sum(x[x_off + i ldx + k] * y[y_off + k ldy + c])`` over k
        in ``k0 .. k1 - 1`` ascending (fused multiply-adds from 0), for rows ``i < rows`` (at most
        `TILE_ROWS`) and columns ``c < cols`` (at most `TILE_COLS`); ``y``'s columns from
        ``y_cols`` on are not read (0). Flat float32 arrays, offsets in elements, no bounds checks."""
        sig = types.void(x, x_off, ldx, y, y_off, ldy, k0, k1, y_cols, out, out_off, ldo, rows, cols)

        def codegen(context, builder, sig, args):
            b = builder
            xd, yd, od = (context.make_array(sig.args[i])(context, b, args[i]).data for i in (0, 3, 9))
            x_off, ldx, y_off, ldy, k0, k1, y_cols, out_off, ldo, rows, cols = (
                _as_i64(b, args[i]) for i in (1, 2, 4, 5, 6, 7, 8, 10, 11, 12, 13)
            )
            vec, mask_t = ir.VectorType(_F32, VECTOR), ir.VectorType(ir.IntType(1), VECTOR)
            fma = _function(b, "llvm.fma.v16f32", vec, [vec] * 3)  # fused on every machine: the same sums
            load = _function(b, "llvm.masked.load.v16f32.p0", vec, [_PTR, _I32, mask_t, vec])
            store = _function(b, "llvm.masked.store.v16f32.p0", ir.VoidType(), [vec, _PTR, _I32, mask_t])
            lane = ir.Constant(ir.VectorType(_I64, VECTOR), list(range(VECTOR)))

            def masks(n):
                return [
                    b.icmp_signed("<", lane, _splat(b, b.sub(n, ir.Constant(_I64, v * VECTOR)), VECTOR)) for v in (0, 1)
                ]

            def at(data, offset, v=0):
                return b.gep(data, [b.add(offset, ir.Constant(_I64, v * VECTOR))])

            y_masks, out_masks = masks(y_cols), masks(cols)
            zero, align = ir.Constant(vec, None), ir.Constant(_I32, 4)
            two, minus_one = ir.Constant(vec, [2.0] * VECTOR), ir.Constant(vec, [-1.0] * VECTOR)
            acc = [cgutils.alloca_once(b, vec) for _ in range(2 * TILE_ROWS)]  # LLVM keeps them in registers
            for a in acc:
                b.store(zero, a)
            with cgutils.for_range(b, b.sub(k1, k0)) as loop:
                k = b.add(k0, loop.index)
                row = b.add(y_off, b.mul(k, ldy))
                ys = [b.call(load, [at(yd, row, v), align, y_masks[v], zero]) for v in (0, 1)]
                if shift:
                    ys = [b.call(fma, [two, value, minus_one]) for value in ys]  # exact: u is k / 2^24
                for i in range(TILE_ROWS):
                    s = _splat(b, b.load(at(xd, b.add(b.add(x_off, b.mul(ir.Constant(_I64, i), ldx)), k))), VECTOR)
                    for v in (0, 1):
                        b.store(b.call(fma, [s, ys[v], b.load(acc[2 * i + v])]), acc[2 * i + v])
            for i in range(TILE_ROWS):
                with b.if_then(b.icmp_signed("<", ir.Constant(_I64, i), rows)):
                    row = b.add(out_off, b.mul(ir.Constant(_I64, i), ldo))
                    for v in (0, 1):
                        b.call(store, [b.load(acc[2 * i + v]), at(od, row, v), align, out_masks[v]])
            return context.get_dummy_value()

        return sig, codegen

    return tile


_tile, _tile_shifted = _make_tile(False), _make_tile(True)


@njit(nogil=True, cache=True)
def _smooth(uniform, g_rows, row_bands, g_cols, col_bands, out):  # pragma: no cover - compiled
    n, k, h, w = uniform.shape
    hp, wp = g_rows.shape[0], g_cols.shape[1]
    u, f = uniform.reshape(-1), out.reshape(-1)
    gr, gc = g_rows.reshape(-1), g_cols.reshape(-1)
    t = np.zeros(hp * wp, np.float32)  # one field smoothed along its rows, padded
    for m in range(n * k):
        at = m * h * w
        for b in range(hp // TILE_ROWS):  # t = G_h (2u - 1)
            i0 = b * TILE_ROWS
            for c0 in range(0, wp, TILE_COLS):
                k0, k1 = row_bands[b, 0], row_bands[b, 1]
                _tile_shifted(gr, i0 * h, h, u, at + c0, w, k0, k1, w - c0, t, i0 * wp + c0, wp, TILE_ROWS, TILE_COLS)
        for b in range(hp // TILE_ROWS):  # out = t (alpha G_w^T)
            i0 = b * TILE_ROWS
            for c in range(wp // TILE_COLS):
                c0 = c * TILE_COLS
                k0, k1 = col_bands[c, 0], col_bands[c, 1]
                _tile(t, i0 * wp, wp, gc, c0, wp, k0, k1, TILE_COLS, f, at + i0 * w + c0, w, h - i0, w - c0)


def _bands(g: np.ndarray, size: int, axis: int) -> np.ndarray:
    """(tiles, 2) int64: per tile of ``size`` rows (axis 0) or columns (axis 1) of ``g``, the
    range of the other index where the tile has nonzeros: the products outside are all zero."""
    tiles = g.shape[axis] // size
    bands = np.zeros((tiles, 2), np.int64)
    for b in range(tiles):
        part = np.take(g, np.arange(b * size, (b + 1) * size), axis=axis)
        nonzero = np.flatnonzero(part.any(axis=axis))
        if len(nonzero):
            bands[b] = nonzero[0], nonzero[-1] + 1
    return bands


@functools.lru_cache(maxsize=8)
def _smoothing(h: int, w: int, sigma: float, alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`_smooth`'s matrices and bands (made once per shape and parameters, not per block)."""
    hp, wp = -(-h // TILE_ROWS) * TILE_ROWS, -(-w // TILE_COLS) * TILE_COLS
    g_rows = np.zeros((hp, h), np.float32)  # padded with zero rows to whole tiles
    g_rows[:h] = gaussian_matrix(h, sigma)
    g_cols = np.zeros((w, wp), np.float32)  # alpha G_w^T, padded with zero columns
    g_cols[:, :w] = alpha * gaussian_matrix(w, sigma).T
    row_bands, col_bands = _bands(g_rows, TILE_ROWS, 0), _bands(g_cols, TILE_COLS, 1)
    for a in (g_rows, row_bands, g_cols, col_bands):
        a.flags.writeable = False
    return g_rows, row_bands, g_cols, col_bands


def smooth_fields(uniform: np.ndarray, sigma: float, alpha: float, *, out: np.ndarray | None = None) -> np.ndarray:
    """Displacement fields from uniform draws: ``alpha`` x Gaussian-smoothed (2u - 1) per field.

    Parameters
    ----------
    uniform : np.ndarray
        float32 (n, k, h, w) values in [0, 1) (``rng.random(..., dtype=np.float32)``).
    sigma : float
        Of the Gaussian, in pixels.
    alpha : float
        Scale of the result.
    out : np.ndarray, optional
        C-contiguous float32 array of ``uniform``'s shape to write into (a new one by default).

    Returns
    -------
    np.ndarray
        float32 (n, k, h, w): each field equals, to float32 rounding,
        ``alpha * scipy.ndimage.gaussian_filter(2 * u - 1, sigma, mode="constant")``, computed as
        ``G_h @ (2u - 1) @ (alpha G_w).T`` (`gaussian_matrix`) with fused multiply-adds in a
        fixed order, so the same on every machine.

    Raises
    ------
    InputError
        If ``out`` does not fit.
    """
    uniform = np.ascontiguousarray(uniform, dtype=np.float32)
    _, _, h, w = uniform.shape
    out = _output(out, uniform.shape, np.float32)
    g_rows, row_bands, g_cols, col_bands = _smoothing(h, w, float(sigma), float(alpha))
    _smooth(uniform, g_rows, row_bands, g_cols, col_bands, out)
    return out


def _output(out: np.ndarray | None, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    """``out`` checked (C-contiguous, ``shape``, ``dtype``: the kernels write it flat), or a new array."""
    if out is None:
        return np.empty(shape, dtype)
    if out.shape != shape or out.dtype != dtype or not out.flags.c_contiguous or not out.flags.writeable:
        raise InputError(f"out must be a writable C-contiguous {np.dtype(dtype)} array of shape {shape}")
    return out
