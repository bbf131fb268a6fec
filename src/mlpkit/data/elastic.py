"""Elastic distortions (Simard, Steinkraus and Platt 2003): smooth random displacement fields.

Each image gets a field of independent uniform values in [-1, 1] per pixel and axis, smoothed
by a Gaussian of ``sigma`` (zero outside the image, as ``scipy.ndimage.gaussian_filter`` with
``mode="constant"``) and scaled by ``alpha``; output pixel p reads the input at p + d(p),
bilinearly, zero outside. Small ``sigma`` gives noise-like fields, large ``sigma`` nearly a
translation; Simard's MNIST values are ``sigma`` ~4-6 and ``alpha`` ~34-38.
"""

from __future__ import annotations

import math

import numpy as np

from mlpkit.core.errors import ConfigError
from mlpkit.data.affine import check_images

__all__ = ["draw_displacements", "elastic", "elastic_problems", "identity_maps"]


def elastic_problems(alpha: float, sigma: float) -> list[str]:
    """One line per bad elastic parameter (empty when both are valid)."""
    problems = []
    for name, value, low in (("alpha", alpha, ">= 0"), ("sigma", sigma, "> 0")):
        real = not isinstance(value, bool) and isinstance(value, int | float | np.integer | np.floating)
        if not real or not math.isfinite(value) or value < 0 or (low == "> 0" and value == 0):
            problems.append(f"{name} must be a number {low}, got {value!r}")
    return problems


def draw_displacements(
    rng: np.random.Generator, n: int, image_shape: tuple[int, int], *, alpha: float, sigma: float
) -> np.ndarray:
    """(n, 2, h, w) float32 row and column displacements: one ``rng.random((n, 2, h, w), float32)``
    draw u (compiled, the same values: `mlpkit.data.uniform`), each field 2u - 1 smoothed by a
    Gaussian of ``sigma`` and scaled by ``alpha``."""
    from mlpkit.core.pcg64 import random_float32
    from mlpkit.data.smoothing import smooth_fields

    uniform = random_float32(rng, (n, 2, *image_shape))
    return smooth_fields(uniform, sigma, alpha)


def identity_maps(n: int) -> np.ndarray:
    """(n, 2, 3) source maps that leave coordinates unchanged."""
    maps = np.zeros((n, 2, 3))
    maps[:, 0, 0] = maps[:, 1, 1] = 1.0
    return maps


def elastic(images: np.ndarray, rng: np.random.Generator, *, alpha: float = 36.0, sigma: float = 5.0) -> np.ndarray:
    """Each image distorted by its own smooth random displacement field.

    Parameters
    ----------
    images : np.ndarray
        uint8 (n, h, w).
    rng : numpy.random.Generator
        Draws the fields (see `draw_displacements`).
    alpha : float, default 36.0
        Scale of the smoothed field, in pixels per unit; 0 leaves the images unchanged.
    sigma : float, default 5.0
        Standard deviation of the Gaussian that smooths the field, in pixels; > 0.

    Returns
    -------
    np.ndarray
        uint8 (n, h, w).

    Raises
    ------
    ConfigError
        One line per bad parameter.
    InputError
        If ``images`` is not a uint8 (n, h, w) array.
    """
    from mlpkit.data.warp import warp_images

    check_images(images)
    problems = elastic_problems(alpha, sigma)
    if problems:
        raise ConfigError("\n".join(problems))
    fields = draw_displacements(rng, len(images), images.shape[1:], alpha=alpha, sigma=sigma)
    return warp_images(images, identity_maps(len(images)), fields)
