"""Random affine distortions of images: shift, rotation, scale and shear, one draw per image.

Conventions, in (row, column) pixel coordinates about the image centre c = ((h-1)/2, (w-1)/2):
the picture is transformed by F = R(rotation) @ H(shear) @ S(scale), then shifted by
(dy, dx), so a point u of the input lands at F (u - c) + c + (dy, dx). Rotation is
counter-clockwise as displayed (rows pointing down; +90 degrees is ``np.rot90``), a shear of
phi moves row y to the right by tan(phi) (y - c), a scale above 1 enlarges, a positive shift
moves the picture down and right. Each output pixel reads the input at F^-1 (p - c - t) + c
(bilinear, zero outside), so one resampling does all four.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from mlpkit.core.errors import ConfigError, InputError

__all__ = ["affine_maps", "affine_problems", "check_images", "draw_affine_maps", "random_affine"]


def affine_problems(max_shift: float, max_rotation: float, scale: Sequence[float], max_shear: float) -> list[str]:
    """One line per bad affine parameter (empty when all are valid)."""
    problems = []
    for name, value, high in (
        ("max_shift", max_shift, None),
        ("max_rotation", max_rotation, 180.0),
        ("max_shear", max_shear, 60.0),
    ):
        if not _real(value) or value < 0 or (high is not None and value > high):
            limit = f" and <= {high:g}" if high is not None else ""
            problems.append(f"{name} must be a number >= 0{limit}, got {value!r}")
    if (
        not isinstance(scale, Sequence)
        or isinstance(scale, str)
        or len(scale) != 2
        or not all(_real(s) and s > 0 for s in scale)
        or scale[0] > scale[1]
    ):
        problems.append(f"scale must be two numbers 0 < low <= high, e.g. [0.9, 1.1], got {scale!r}")
    return problems


def _real(value: object) -> bool:
    return (
        not isinstance(value, bool)
        and isinstance(value, int | float | np.integer | np.floating)
        and math.isfinite(value)
    )


def affine_maps(
    image_shape: tuple[int, int],
    shift: np.ndarray,
    rotation: np.ndarray,
    scale: np.ndarray,
    shear: np.ndarray,
) -> np.ndarray:
    """The (n, 2, 3) source maps of given transforms, for `mlpkit.data.warp.warp_images`.

    Parameters
    ----------
    image_shape : (int, int)
        Rows and columns of the images.
    shift : np.ndarray
        (n, 2) row and column shifts in pixels.
    rotation, shear : np.ndarray
        (n,) angles in degrees.
    scale : np.ndarray
        (n,) factors > 0.

    Returns
    -------
    np.ndarray
        float64 (n, 2, 3): output (row, column, 1) -> input (row, column). Zero angles, scale 1
        and zero shift give exactly the identity.
    """
    shift = np.asarray(shift, dtype=np.float64).reshape(-1, 2)
    theta, phi = np.radians(np.asarray(rotation, dtype=np.float64)), np.radians(np.asarray(shear, dtype=np.float64))
    cos, sin, tan = np.cos(theta), np.sin(theta), np.tan(phi)
    inv_scale = 1.0 / np.asarray(scale, dtype=np.float64)
    # F^-1 = S^-1 H^-1 R^-1, with R^-1 = [[cos, sin], [-sin, cos]] and H^-1 = [[1, 0], [-tan, 1]]
    maps = np.empty((len(shift), 2, 3))
    maps[:, 0, 0] = inv_scale * cos
    maps[:, 0, 1] = inv_scale * sin
    maps[:, 1, 0] = inv_scale * (-tan * cos - sin)
    maps[:, 1, 1] = inv_scale * (cos - tan * sin)
    centre = (np.asarray(image_shape, dtype=np.float64) - 1.0) / 2.0
    moved = centre + shift  # F^-1 (p - c - t) + c = F^-1 p + (c - F^-1 (c + t))
    maps[:, :, 2] = centre - np.einsum("nij,nj->ni", maps[:, :, :2], moved)
    return maps


def draw_affine_maps(
    rng: np.random.Generator,
    n: int,
    image_shape: tuple[int, int],
    *,
    max_shift: float,
    max_rotation: float,
    scale: Sequence[float],
    max_shear: float,
) -> np.ndarray:
    """Draw ``n`` transforms (one ``rng.random((n, 5))`` call) and return their maps (`affine_maps`).

    Each parameter is uniform: shifts in [-max_shift, max_shift] per axis, rotation in
    [-max_rotation, max_rotation], scale in [low, high], shear in [-max_shear, max_shear].
    """
    u = rng.random((n, 5))
    low, high = float(scale[0]), float(scale[1])
    return affine_maps(
        image_shape,
        shift=(2.0 * u[:, 0:2] - 1.0) * max_shift,
        rotation=(2.0 * u[:, 2] - 1.0) * max_rotation,
        scale=low + (high - low) * u[:, 3],
        shear=(2.0 * u[:, 4] - 1.0) * max_shear,
    )


def random_affine(
    images: np.ndarray,
    rng: np.random.Generator,
    *,
    max_shift: float = 2.0,
    max_rotation: float = 15.0,
    scale: Sequence[float] = (0.9, 1.1),
    max_shear: float = 10.0,
) -> np.ndarray:
    """Each image shifted, rotated, scaled and sheared by its own random amounts.

    Parameters
    ----------
    images : np.ndarray
        uint8 (n, h, w).
    rng : numpy.random.Generator
        Draws the parameters (see `draw_affine_maps`).
    max_shift : float, default 2.0
        Largest shift in pixels, along each axis.
    max_rotation : float, default 15.0
        Largest rotation in degrees, either way.
    scale : (float, float), default (0.9, 1.1)
        Range of the zoom factor.
    max_shear : float, default 10.0
        Largest shear angle in degrees, either way.

    Returns
    -------
    np.ndarray
        uint8 (n, h, w): bilinear resampling, zero where the source falls outside the image.

    Raises
    ------
    ConfigError
        One line per bad parameter.
    InputError
        If ``images`` is not a uint8 (n, h, w) array.
    """
    from mlpkit.data.warp import warp_images

    check_images(images)
    problems = affine_problems(max_shift, max_rotation, scale, max_shear)
    if problems:
        raise ConfigError("\n".join(problems))
    maps = draw_affine_maps(
        rng,
        len(images),
        images.shape[1:],
        max_shift=max_shift,
        max_rotation=max_rotation,
        scale=scale,
        max_shear=max_shear,
    )
    return warp_images(images, maps)


def check_images(images: object) -> None:
    """Raise InputError unless ``images`` is a uint8 (n, h, w) array."""
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 3:
        what = (
            f"{images.dtype} array of shape {images.shape}" if isinstance(images, np.ndarray) else type(images).__name__
        )
        raise InputError(f"augmentation needs uint8 images of shape (n, height, width), got a {what}")
