"""Bilinear resampling of many small images at once: one warp per image that applies an affine
map and a displacement field (`mlpkit.data.smoothing`) together, as explicit vector code.

Why compiled (Numba) rather than ``scipy.ndimage``: one epoch of MNIST is 55,000 small images, and
per-image calls into scipy cost more in call overhead than in arithmetic (see
``benchmarks/augment.py``); here a block of images is one call that releases the GIL, so the
background feed (`mlpkit.train.augment_feed`) overlaps training for real. The training uses every
core, so the feed's CPU time is taken from it: each output row is computed 8 pixels at a time,
with no test per corner (the image is read from a copy with zeros around it) and one 8-byte
gather per pair of neighbouring corners. The arithmetic is the plain scalar loop's, operation for
operation (see `_warp`), image by image: the result does not depend on how the images are cut
into blocks or on which thread runs them.

This module imports Numba at import time; the modules above it import it inside functions, so
importing ``mlpkit.data`` stays cheap. Its compiled code uses no code from other files (the few
code-generation helpers are repeated from `mlpkit.data.smoothing` for that reason), so Numba's
own on-disk cache (keyed on this file) cannot load stale machine code.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from mlpkit.core.errors import InputError

__all__ = ["warp_images"]


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


# ------------------------------------------------------------------------------------ warp
#: Zero rows and columns around the float32 copy of an image that `_warp` reads: a source point
#: with all four corners off the image reads zeros, with no test per corner.
PAD = 2
#: Output pixels per vector of `_warp_row` (8 float64 lanes of a 512-bit vector).
PIXELS = 8


def _make_warp_row(displaced: bool):
    """One output row of `_warp` as vector code (with or without a displacement field)."""

    @intrinsic
    def warp_row(typingctx, padded, wp, disp, dy_off, dx_off, out, out_off, y, h, w, coef):
        """Output pixels ``out[out_off + x]``, x < w, of row ``y``, ``PIXELS`` at a time: the same
        float64 operations, in the same order, as the scalar loop in `_warp`'s docstring.
        ``padded``: the float32 image with `PAD` zeros around it, ``wp`` wide; ``coef``: the
        map's six numbers; ``disp[dy_off + x]``, ``disp[dx_off + x]``: the displacement."""
        sig = types.void(padded, wp, disp, dy_off, dx_off, out, out_off, y, h, w, coef)

        def codegen(context, builder, sig, args):
            b = builder
            pd, dd, od, cd = (context.make_array(sig.args[i])(context, b, args[i]).data for i in (0, 2, 5, 10))
            wp, dy_off, dx_off, out_off, y, h, w = (_as_i64(b, args[i]) for i in (1, 3, 4, 6, 7, 8, 9))
            f64, i64 = ir.VectorType(ir.DoubleType(), PIXELS), ir.VectorType(_I64, PIXELS)
            f32, mask_t, ptrs = (
                ir.VectorType(_F32, PIXELS),
                ir.VectorType(ir.IntType(1), PIXELS),
                ir.VectorType(_PTR, PIXELS),
            )
            floor = _function(b, "llvm.floor.v8f64", f64, [f64])
            clamp = [_function(b, f"llvm.{name}.v8f64", f64, [f64, f64]) for name in ("maxnum", "minnum")]
            load = _function(b, "llvm.masked.load.v8f32.p0", f32, [_PTR, _I32, mask_t, f32])
            gather = _function(b, "llvm.masked.gather.v8i64.v8p0", i64, [ptrs, _I32, mask_t, i64])
            i8 = ir.VectorType(ir.IntType(8), PIXELS)
            store = _function(b, "llvm.masked.store.v8i8.p0", ir.VoidType(), [i8, _PTR, _I32, mask_t])

            def const(value, ty=f64):
                return ir.Constant(ty, [value] * PIXELS)

            a00, a01, b0, a10, a11, b1 = (
                _splat(b, b.load(b.gep(cd, [ir.Constant(_I64, i)])), PIXELS) for i in range(6)
            )
            qy0, rows, cols = (_splat(b, b.sitofp(v, ir.DoubleType()), PIXELS) for v in (y, h, w))
            wp_v, base = _splat(b, wp, PIXELS), _splat(b, b.ptrtoint(pd, _I64), PIXELS)
            two_floats = ir.VectorType(_F32, 2 * PIXELS)
            halves = [ir.Constant(ir.VectorType(_I32, PIXELS), list(range(k, 2 * PIXELS, 2))) for k in (0, 1)]
            lane = ir.Constant(i64, list(range(PIXELS)))

            def corners(index, mask):
                """padded[index], padded[index + 1] as float64 vectors: one 8-byte gather."""
                at = b.inttoptr(b.add(base, b.mul(index, const(4, i64))), ptrs)
                both = b.bitcast(b.call(gather, [at, ir.Constant(_I32, 4), mask, ir.Constant(i64, None)]), two_floats)
                undef = ir.Constant(two_floats, ir.Undefined)
                return [b.fpext(b.shuffle_vector(both, undef, half), f64) for half in halves]

            chunks = b.sdiv(b.add(w, ir.Constant(_I64, PIXELS - 1)), ir.Constant(_I64, PIXELS))
            with cgutils.for_range(b, chunks) as loop:
                x0 = b.mul(loop.index, ir.Constant(_I64, PIXELS))
                xs = b.add(_splat(b, x0, PIXELS), lane)
                mask = b.icmp_signed("<", xs, _splat(b, w, PIXELS))
                qy, qx = qy0, b.sitofp(xs, f64)
                if displaced:
                    zeros = ir.Constant(f32, None)
                    for off, is_y in ((dy_off, True), (dx_off, False)):
                        d = b.call(load, [b.gep(dd, [b.add(off, x0)]), ir.Constant(_I32, 4), mask, zeros])
                        if is_y:
                            qy = b.fadd(qy, b.fpext(d, f64))
                        else:
                            qx = b.fadd(qx, b.fpext(d, f64))
                sy = b.fadd(b.fadd(b.fmul(a00, qy), b.fmul(a01, qx)), b0)
                sx = b.fadd(b.fadd(b.fmul(a10, qy), b.fmul(a11, qx)), b1)
                y0, x0f = b.call(floor, [sy]), b.call(floor, [sx])
                fy, fx = b.fsub(sy, y0), b.fsub(sx, x0f)
                iy, ix = (
                    b.fptosi(b.call(clamp[1], [b.call(clamp[0], [v, const(-float(PAD))]), top]), i64)
                    for v, top in ((y0, rows), (x0f, cols))
                )
                at = b.add(b.mul(b.add(iy, const(PAD, i64)), wp_v), b.add(ix, const(PAD, i64)))
                p00, p01 = corners(at, mask)
                p10, p11 = corners(b.add(at, wp_v), mask)
                gy, gx = b.fsub(const(1.0), fy), b.fsub(const(1.0), fx)
                v = b.fadd(const(0.0), b.fmul(b.fmul(gy, gx), p00))
                v = b.fadd(v, b.fmul(b.fmul(gy, fx), p01))
                v = b.fadd(v, b.fmul(b.fmul(fy, gx), p10))
                v = b.fadd(v, b.fmul(b.fmul(fy, fx), p11))
                v = b.call(floor, [b.fadd(v, const(0.5))])
                v = b.select(b.fcmp_ordered("<", v, const(255.0)), v, const(255.0))
                b.call(store, [b.fptoui(v, i8), b.gep(od, [b.add(out_off, x0)]), ir.Constant(_I32, 1), mask])
            return context.get_dummy_value()

        return sig, codegen

    return warp_row


_warp_row, _warp_row_displaced = _make_warp_row(False), _make_warp_row(True)


@njit(nogil=True, cache=True)
def _warp(images, maps, disp, out):  # pragma: no cover - compiled
    """Per output pixel (y, x) of image m, what `_warp_row` computes 8 at a time::

        qy, qx = y + disp[m, 0, y, x], x + disp[m, 1, y, x]      # float64; no disp: y, x
        sy = a00 * qy + a01 * qx + b0;  sx = a10 * qy + a11 * qx + b1
        y0, x0 = floor(sy), floor(sx);  fy, fx = sy - y0, sx - x0
        v = 0.0 + (1 - fy) * (1 - fx) * p[y0, x0] + (1 - fy) * fx * p[y0, x0 + 1]
                + fy * (1 - fx) * p[y0 + 1, x0] + fy * fx * p[y0 + 1, x0 + 1]   # left to right
        out = min(floor(v + 0.5), 255)

    where p is the image with zeros outside (corner rows and columns clamped to [-PAD, h] and
    [-PAD, w] first: a point with all four corners off the image reads four zeros).
    """
    n, h, w = images.shape
    displaced = disp.shape[0] > 0
    wp = w + 2 * PAD
    padded = np.zeros((h + 2 * PAD) * wp, np.float32)  # the image, zeros around it
    coef = np.empty(6)
    d, o = disp.reshape(-1), out.reshape(-1)
    for m in range(n):
        for i in range(2):
            for j in range(3):
                coef[3 * i + j] = maps[m, i, j]
        for y in range(h):
            row, img = (y + PAD) * wp + PAD, images[m, y]
            for x in range(w):
                padded[row + x] = img[x]
        for y in range(h):
            at = (m * h + y) * w
            if displaced:
                _warp_row_displaced(padded, wp, d, at + m * h * w, at + (m + 1) * h * w, o, at, y, h, w, coef)
            else:
                _warp_row(padded, wp, d, 0, 0, o, at, y, h, w, coef)


def warp_images(
    images: np.ndarray, maps: np.ndarray, displacement: np.ndarray | None = None, *, out: np.ndarray | None = None
) -> np.ndarray:
    """Resample each image at source points, bilinearly, with zeros outside the image.

    Output pixel (y, x) of image m reads its source at ``maps[m] @ (y + dy, x + dx, 1)``, where
    (dy, dx) = ``displacement[m, :, y, x]`` (zero without a displacement).

    Parameters
    ----------
    images : np.ndarray
        uint8 (n, h, w).
    maps : np.ndarray
        float64 (n, 2, 3): per image, the affine map from (row, column) output coordinates to
        source coordinates (the inverse of the transform applied to the picture).
    displacement : np.ndarray, optional
        float32 (n, 2, h, w): row and column displacements, applied before ``maps``.
    out : np.ndarray, optional
        C-contiguous uint8 (n, h, w) array to write into (not ``images``; a new one by default).

    Returns
    -------
    np.ndarray
        uint8 (n, h, w), rounded to the nearest integer.

    Raises
    ------
    InputError
        If ``out`` does not fit.
    """
    images = np.ascontiguousarray(images, dtype=np.uint8)
    n, h, w = images.shape
    maps = np.ascontiguousarray(maps, dtype=np.float64).reshape(n, 2, 3)
    disp = np.zeros((0, 2, h, w), np.float32)
    if displacement is not None:
        disp = np.ascontiguousarray(displacement, dtype=np.float32)
    out = _output(out, images.shape, np.uint8)
    if np.shares_memory(out, images):
        raise InputError("out must not share memory with images")
    _warp(images, maps, disp, out)
    return out


def _output(out: np.ndarray | None, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    """``out`` checked (C-contiguous, ``shape``, ``dtype``: the kernels write it flat), or a new array."""
    if out is None:
        return np.empty(shape, dtype)
    if out.shape != shape or out.dtype != dtype or not out.flags.c_contiguous or not out.flags.writeable:
        raise InputError(f"out must be a writable C-contiguous {np.dtype(dtype)} array of shape {shape}")
    return out
