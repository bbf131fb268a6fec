"""Compiled image resampling for augmentation: Gaussian smoothing of displacement fields and one
bilinear warp per image that applies an affine map and a displacement field together.

Why compiled (Numba) rather than ``scipy.ndimage``: one epoch of MNIST is 55,000 small images, and
per-image calls into scipy cost more in call overhead than in arithmetic (see
``benchmarks/augment.py``); here a block of images is one call that releases the GIL, so the
background feed (`mlpkit.train.augment_feed`) overlaps training for real. Every kernel sums in a
fixed order and works image by image: the result does not depend on how the images are cut into
blocks or on which thread runs them.

This module imports Numba at import time; the modules above it import it inside functions, so
importing ``mlpkit.data`` stays cheap. It uses no code from other files, so Numba's own on-disk
cache (keyed on this file) cannot load stale machine code.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["gaussian_matrix", "smooth_fields", "warp_images"]


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


#: Images smoothed side by side: the innermost loops run over this many images, which vectorizes
#: (one image at a time, the 28-long rows leave most of each vector register idle).
LANES = 64


@njit(nogil=True, cache=True)
def _smooth(uniform, g_rows, g_cols, alpha, out):  # pragma: no cover - compiled
    n, k, h, w = uniform.shape
    a = np.zeros((h, w, LANES), dtype=np.float32)
    t = np.zeros((h, w, LANES), dtype=np.float32)
    for start in range(0, n, LANES):
        nb = min(LANES, n - start)
        for c in range(k):
            for b in range(nb):
                for i in range(h):
                    for j in range(w):
                        a[i, j, b] = np.float32(2.0) * uniform[start + b, c, i, j] - np.float32(1.0)
            for i in range(h):  # t[i, j] = sum_r g_rows[i, r] a[r, j], r in order: the same sums per lane
                for j in range(w):
                    tv = t[i, j]
                    tv[:] = 0.0
                    for r in range(h):
                        g = g_rows[i, r]
                        if g != 0.0:
                            av = a[r, j]
                            for b in range(LANES):
                                tv[b] += g * av[b]
            for i in range(h):  # a[i, j] = sum_s t[i, s] g_cols[j, s]
                for j in range(w):
                    av = a[i, j]
                    av[:] = 0.0
                    for s in range(w):
                        g = g_cols[j, s]
                        if g != 0.0:
                            tv = t[i, s]
                            for b in range(LANES):
                                av[b] += g * tv[b]
            for b in range(nb):
                for i in range(h):
                    for j in range(w):
                        out[start + b, c, i, j] = alpha * a[i, j, b]


def smooth_fields(uniform: np.ndarray, sigma: float, alpha: float) -> np.ndarray:
    """Displacement fields from uniform draws: ``alpha`` x Gaussian-smoothed (2u - 1) per field.

    Parameters
    ----------
    uniform : np.ndarray
        float32 (n, k, h, w) values in [0, 1) (``rng.random(..., dtype=np.float32)``).
    sigma : float
        Of the Gaussian, in pixels.
    alpha : float
        Scale of the result.

    Returns
    -------
    np.ndarray
        float32 (n, k, h, w): each field equals, to float32 rounding,
        ``alpha * scipy.ndimage.gaussian_filter(2 * u - 1, sigma, mode="constant")``, computed as
        ``G_h @ (2u - 1) @ G_w.T`` (`gaussian_matrix`) with sums in a fixed order.
    """
    uniform = np.ascontiguousarray(uniform, dtype=np.float32)
    _, _, h, w = uniform.shape
    out = np.empty_like(uniform)
    g_rows = gaussian_matrix(h, sigma).astype(np.float32)
    g_cols = gaussian_matrix(w, sigma).astype(np.float32)
    _smooth(uniform, g_rows, g_cols, np.float32(alpha), out)
    return out


@njit(nogil=True, cache=True)
def _warp(images, maps, disp, out):  # pragma: no cover - compiled
    n, h, w = images.shape
    fields = disp.shape[0] > 0
    for m in range(n):
        a00, a01, b0 = maps[m, 0, 0], maps[m, 0, 1], maps[m, 0, 2]
        a10, a11, b1 = maps[m, 1, 0], maps[m, 1, 1], maps[m, 1, 2]
        img = images[m]
        for y in range(h):
            for x in range(w):
                qy, qx = float(y), float(x)
                if fields:
                    qy += disp[m, 0, y, x]
                    qx += disp[m, 1, y, x]
                sy = a00 * qy + a01 * qx + b0
                sx = a10 * qy + a11 * qx + b1
                y0 = math.floor(sy)
                x0 = math.floor(sx)
                fy = sy - y0
                fx = sx - x0
                iy, ix = int(y0), int(x0)
                v = 0.0
                if iy >= -1 and iy < h and ix >= -1 and ix < w:  # else all four corners are outside: 0
                    if iy >= 0:
                        if ix >= 0:
                            v += (1.0 - fy) * (1.0 - fx) * img[iy, ix]
                        if ix + 1 < w:
                            v += (1.0 - fy) * fx * img[iy, ix + 1]
                    if iy + 1 < h:
                        if ix >= 0:
                            v += fy * (1.0 - fx) * img[iy + 1, ix]
                        if ix + 1 < w:
                            v += fy * fx * img[iy + 1, ix + 1]
                v = math.floor(v + 0.5)  # round half up; v >= 0
                out[m, y, x] = min(v, 255.0)


def warp_images(images: np.ndarray, maps: np.ndarray, displacement: np.ndarray | None = None) -> np.ndarray:
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

    Returns
    -------
    np.ndarray
        uint8 (n, h, w), rounded to the nearest integer.
    """
    images = np.ascontiguousarray(images, dtype=np.uint8)
    n, h, w = images.shape
    maps = np.ascontiguousarray(maps, dtype=np.float64).reshape(n, 2, 3)
    disp = np.zeros((0, 2, h, w), np.float32)
    if displacement is not None:
        disp = np.ascontiguousarray(displacement, dtype=np.float32)
    out = np.empty_like(images)
    _warp(images, maps, disp, out)
    return out
