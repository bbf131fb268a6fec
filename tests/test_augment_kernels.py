"""The augmentation's compiled kernels against plain float64 NumPy references: the smoothing's
register tiles (odd sizes, several tiles a row, images narrower than a vector, the Gaussian's zero
band), the vector warp (operation for operation the scalar loop, points on and far off the
border), writes that stay inside their output, and the compiled PCG64 draws (bit for bit
NumPy's, generator state included)."""

from __future__ import annotations

import numpy as np
import pytest

from mlpkit.core.errors import InputError
from mlpkit.core.pcg64 import random_float32
from mlpkit.data.affine import draw_affine_maps
from mlpkit.data.smoothing import gaussian_matrix, smooth_fields
from mlpkit.data.warp import warp_images

EPS32 = float(np.finfo(np.float32).eps)


# ------------------------------------------------------------------------------- smoothing
def smoothed_reference(uniform: np.ndarray, sigma: float, alpha: float) -> np.ndarray:
    """alpha G_h (2u - 1) G_w^T per field, in float64."""
    h, w = uniform.shape[2:]
    g_h, g_w = gaussian_matrix(h, sigma), gaussian_matrix(w, sigma)
    return alpha * np.einsum("ir,nkrs,js->nkij", g_h, 2.0 * uniform.astype(np.float64) - 1.0, g_w)


@pytest.mark.parametrize(
    "shape, sigma",
    [
        ((5, 2, 28, 28), 5.0),  # MNIST, radius 20: nearly full matrices
        ((3, 2, 28, 28), 1.0),  # radius 4: most of G is its zero band
        ((7, 2, 11, 7), 1.5),  # rows not a multiple of 4, narrower than a vector
        ((3, 1, 40, 37), 2.0),  # a second, partial column tile
        ((2, 2, 33, 65), 3.0),  # three column tiles, the last one column wide
        ((4, 2, 5, 3), 0.7),
        ((2, 1, 1, 1), 1.0),
        ((3, 2, 9, 17), 30.0),  # radius far beyond the image
    ],
)
def test_smoothing_is_the_float64_product_to_float32_rounding(shape, sigma):
    uniform = np.random.default_rng(1).random(shape, dtype=np.float32)
    alpha = 7.0
    got = smooth_fields(uniform, sigma, alpha)
    ref = smoothed_reference(uniform, sigma, alpha)
    assert got.dtype == np.float32 and got.shape == shape
    # sums of at most h + w rounded float32 terms of size <= alpha
    assert np.abs(got - ref).max() <= 2 * (shape[2] + shape[3]) * EPS32 * alpha
    assert np.abs(ref).max() > 0.001 * alpha  # not trivially zero


def test_each_field_depends_on_its_own_draws_only():
    uniform = np.random.default_rng(2).random((37, 2, 28, 28), dtype=np.float32)
    whole = smooth_fields(uniform, 5.0, 36.0)
    picked = np.array([0, 5, 6, 36, 17])
    assert np.array_equal(smooth_fields(uniform[picked], 5.0, 36.0), whole[picked])
    assert np.array_equal(smooth_fields(uniform[::-1], 5.0, 36.0), whole[::-1])


def test_smoothing_writes_only_its_output():
    uniform = np.random.default_rng(3).random((3, 2, 11, 7), dtype=np.float32)
    canvas = np.full((5, 2, 11, 7), 123.0, np.float32)
    out = smooth_fields(uniform, 1.5, 2.0, out=canvas[1:4])
    assert out.base is canvas
    assert (canvas[0] == 123.0).all() and (canvas[4] == 123.0).all()
    assert np.array_equal(canvas[1:4], smooth_fields(uniform, 1.5, 2.0))
    with pytest.raises(InputError, match="C-contiguous float32"):
        smooth_fields(uniform, 1.5, 2.0, out=np.empty((3, 2, 11, 7)))


# ------------------------------------------------------------------------------------ warp
def warped_reference(images: np.ndarray, maps: np.ndarray, disp: np.ndarray | None) -> np.ndarray:
    """The scalar loop the vector warp replaces, in NumPy: float64, the same operations in the
    same order, corners off the image read as zeros."""
    n, h, w = images.shape
    yy, xx = np.mgrid[:h, :w].astype(np.float64)
    out = np.empty_like(images)
    for m in range(n):
        qy, qx = (yy, xx) if disp is None else (yy + disp[m, 0].astype(np.float64), xx + disp[m, 1].astype(np.float64))
        sy = maps[m, 0, 0] * qy + maps[m, 0, 1] * qx + maps[m, 0, 2]
        sx = maps[m, 1, 0] * qy + maps[m, 1, 1] * qx + maps[m, 1, 2]
        y0, x0 = np.floor(sy), np.floor(sx)
        fy, fx = sy - y0, sx - x0
        iy, ix = np.clip(y0, -5, h + 5).astype(int), np.clip(x0, -5, w + 5).astype(int)

        def pixel(r, c, img=images[m]):
            inside = (r >= 0) & (r < h) & (c >= 0) & (c < w)
            return np.where(inside, img[np.clip(r, 0, h - 1), np.clip(c, 0, w - 1)], 0).astype(np.float64)

        v = 0.0 + (1.0 - fy) * (1.0 - fx) * pixel(iy, ix)
        v = v + (1.0 - fy) * fx * pixel(iy, ix + 1)
        v = v + fy * (1.0 - fx) * pixel(iy + 1, ix)
        v = v + fy * fx * pixel(iy + 1, ix + 1)
        out[m] = np.minimum(np.floor(v + 0.5), 255.0)
    return out


@pytest.mark.parametrize("size", [(28, 28), (7, 9), (33, 17), (5, 40), (1, 1), (2, 8)])
@pytest.mark.parametrize("displaced", [False, True])
def test_warp_is_the_scalar_loop_bit_for_bit(size, displaced):
    rng = np.random.default_rng(4)
    n = 13  # not a multiple of anything the kernel works in
    images = rng.integers(0, 256, (n, *size), dtype=np.uint8)
    maps = draw_affine_maps(rng, n, size, max_shift=3.0, max_rotation=40.0, scale=(0.6, 1.5), max_shear=20.0)
    disp = (3.0 * rng.normal(size=(n, 2, *size))).astype(np.float32) if displaced else None
    got = warp_images(images, maps, disp)
    assert np.array_equal(got, warped_reference(images, maps, disp))


def test_warp_at_and_beyond_the_border():
    rng = np.random.default_rng(5)
    images = rng.integers(1, 256, (9, 6, 10), dtype=np.uint8)
    maps = np.zeros((9, 2, 3))
    maps[:, 0, 0] = maps[:, 1, 1] = 1.0
    # shifts that put sample points exactly on, half a pixel off, and far off every edge
    maps[:, :, 2] = [[-1, 0], [0, -1], [5, 0], [0, 9], [-0.5, 9.5], [6, 10], [-1e6, 3], [2, 1e9], [-2.25, -3.75]]
    disp = np.zeros((9, 2, 6, 10), np.float32)
    disp[:, 0, 0, 0], disp[:, 1, -1, -1] = -1.5, 2.5  # single points pushed out
    for d in (None, disp):
        got = warp_images(images, maps, d)
        assert np.array_equal(got, warped_reference(images, maps, d))
    assert (warp_images(images, maps)[6:8] == 0).all()  # far off: all zeros


def test_warp_writes_only_its_output():
    rng = np.random.default_rng(6)
    images = rng.integers(0, 256, (3, 7, 9), dtype=np.uint8)
    maps = draw_affine_maps(rng, 3, (7, 9), max_shift=2.0, max_rotation=10.0, scale=(0.9, 1.1), max_shear=5.0)
    canvas = np.full((5, 7, 9), 77, np.uint8)
    warp_images(images, maps, out=canvas[1:4])
    assert (canvas[0] == 77).all() and (canvas[4] == 77).all()
    assert np.array_equal(canvas[1:4], warp_images(images, maps))
    with pytest.raises(InputError, match="share memory"):
        warp_images(images, maps, out=images)


# ----------------------------------------------------------------------------------- draws
@pytest.mark.parametrize("seed", [0, [7, 3, 0xA06, 2]])
@pytest.mark.parametrize("before", [0, 1, 2, 5])  # odd: NumPy carries half of a 64-bit draw
@pytest.mark.parametrize("shape", [(0,), (1,), (2,), (7,), (3, 5), (4, 2, 28, 28), (1, 2, 5, 3)])
def test_compiled_draws_are_numpys_and_leave_the_same_state(seed, before, shape):
    ours, numpys = np.random.default_rng(seed), np.random.default_rng(seed)
    ours.random(before, dtype=np.float32)
    numpys.random(before, dtype=np.float32)
    got, want = random_float32(ours, shape), numpys.random(shape, dtype=np.float32)
    assert got.dtype == np.float32 and got.shape == want.shape and np.array_equal(got, want)
    assert ours.bit_generator.state == numpys.bit_generator.state
    assert np.array_equal(ours.random(3, dtype=np.float32), numpys.random(3, dtype=np.float32))
    assert ours.random() == numpys.random() and ours.integers(1 << 40) == numpys.integers(1 << 40)


def test_other_bit_generators_go_through_numpy():
    ours, numpys = np.random.Generator(np.random.MT19937(3)), np.random.Generator(np.random.MT19937(3))
    assert np.array_equal(random_float32(ours, (4, 5)), numpys.random((4, 5), dtype=np.float32))
    assert ours.bit_generator.state["state"]["pos"] == numpys.bit_generator.state["state"]["pos"]
