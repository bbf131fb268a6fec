"""Data augmentation per epoch: which transforms, their parameters, and the epoch's images as a
pure function of (seed, epoch).

Why a pure function: a resumed run recomputes exactly the images the interrupted one trained
on, with no augmentation state in the checkpoint. The images are cut into blocks of
``BLOCK_IMAGES``; block b draws from its own generator ``default_rng([seed, epoch, 0xA06, b])``,
so the result depends neither on how many threads share the blocks nor on who runs them (the
background feed, `mlpkit.train.augment_feed`, or the caller). Affine maps and elastic fields
are composed and each image is resampled once (two resamplings would blur it twice).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from mlpkit.core.errors import ConfigError, InputError
from mlpkit.data.affine import affine_problems, check_images, draw_affine_maps
from mlpkit.data.elastic import elastic_problems, identity_maps

__all__ = ["BLOCK_IMAGES", "TRANSFORMS", "Augmentation", "augment_block", "augmented_epoch"]

#: The transforms an `Augmentation` may name, in the order they act on a picture.
TRANSFORMS = ("affine", "elastic")
#: Images per block, each with its own generator: part of what an epoch's images are.
BLOCK_IMAGES = 1024
#: Tells augmentation's generators apart from any other stream made from the same seed.
STREAM = 0xA06


@dataclass(frozen=True)
class Augmentation:
    """What to do to the training images each epoch.

    Parameters
    ----------
    transforms : sequence of {"affine", "elastic"}, default ("affine", "elastic")
        The transforms to apply (no repeats); an image picked for augmentation gets all of
        them, composed into one resampling (as if the affine transform acted first and the
        elastic distortion on its result).
    probability : float, default 1.0
        Chance, per image and epoch, that it is augmented; the others pass unchanged.
    max_shift : float, default 2.0
        Largest shift in pixels along each axis (affine).
    max_rotation : float, default 15.0
        Largest rotation in degrees, either way (affine; at most 180).
    scale : (float, float), default (0.9, 1.1)
        Range of the zoom factor (affine).
    max_shear : float, default 10.0
        Largest shear angle in degrees, either way (affine; at most 60).
    alpha : float, default 36.0
        Scale of the elastic displacement field, in pixels.
    sigma : float, default 5.0
        Standard deviation of the Gaussian that smooths the elastic field, in pixels.

    Raises
    ------
    ConfigError
        One line per bad value.
    """

    transforms: tuple[str, ...] = TRANSFORMS
    probability: float = 1.0
    max_shift: float = 2.0
    max_rotation: float = 15.0
    scale: tuple[float, float] = (0.9, 1.1)
    max_shear: float = 10.0
    alpha: float = 36.0
    sigma: float = 5.0

    def __post_init__(self) -> None:
        problems = []
        names = self.transforms
        if isinstance(names, str) or not isinstance(names, Sequence):
            problems.append(f"transforms must be a list of names among {', '.join(TRANSFORMS)}, got {names!r}")
            names = ()
        unknown = [n for n in names if n not in TRANSFORMS]
        if unknown:
            problems.append(f"unknown transform(s) {', '.join(map(repr, unknown))}; valid: {', '.join(TRANSFORMS)}")
        if len(set(names)) != len(names):
            problems.append(f"transforms must not repeat a name, got {list(names)!r}")
        p = self.probability
        if isinstance(p, bool) or not isinstance(p, int | float) or not (0.0 <= p <= 1.0):
            problems.append(f"probability must be a number in [0, 1], got {p!r}")
        problems += affine_problems(self.max_shift, self.max_rotation, self.scale, self.max_shear)
        problems += elastic_problems(self.alpha, self.sigma)
        if problems:
            raise ConfigError("\n".join(problems))
        object.__setattr__(self, "transforms", tuple(names))
        object.__setattr__(self, "scale", (float(self.scale[0]), float(self.scale[1])))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Augmentation:
        """From a config table (unknown keys are a ConfigError listing the valid ones)."""
        valid = [f.name for f in fields(cls)]
        unknown = sorted(set(values) - set(valid))
        if unknown:
            raise ConfigError(f"unknown augmentation key(s) {', '.join(unknown)}; valid: {', '.join(valid)}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Plain values for a config file or metrics.json (lists for tuples)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def augment_block(images: np.ndarray, config: Augmentation, rng: np.random.Generator) -> np.ndarray:
    """One block of images augmented with draws from ``rng``.

    Draws, in this order and for every image whether it is picked or not (so an image's draws do
    not depend on the others'): ``rng.random(n)`` (picked when below ``probability``), the
    affine parameters, the elastic fields' uniform values (each only if the transform is
    configured). Only the picked images' fields are smoothed, and only they are resampled.

    Parameters
    ----------
    images : np.ndarray
        uint8 (n, h, w).
    config : Augmentation
    rng : numpy.random.Generator

    Returns
    -------
    np.ndarray
        uint8 (n, h, w), a new array.
    """
    from mlpkit.core.pcg64 import random_float32
    from mlpkit.data.smoothing import smooth_fields
    from mlpkit.data.warp import warp_images

    n, shape = len(images), images.shape[1:]
    picked = rng.random(n) < config.probability
    maps = identity_maps(n)
    if "affine" in config.transforms:
        maps = draw_affine_maps(
            rng,
            n,
            shape,
            max_shift=config.max_shift,
            max_rotation=config.max_rotation,
            scale=config.scale,
            max_shear=config.max_shear,
        )
    uniform = None  # the elastic fields' draws, as `draw_displacements` makes them
    if "elastic" in config.transforms:
        uniform = random_float32(rng, (n, 2, *shape))
    if not picked.any() or not config.transforms:
        return images.copy()
    which: slice | np.ndarray = slice(None) if picked.all() else np.flatnonzero(picked)  # all: no copies
    fields_ = None if uniform is None else smooth_fields(uniform[which], config.sigma, config.alpha)
    warped = warp_images(images[which], maps[which], fields_)
    if isinstance(which, slice):
        return warped
    out = images.copy()
    out[which] = warped
    return out


def augmented_epoch(
    images: np.ndarray,
    config: Augmentation,
    seed: int,
    epoch: int,
    *,
    out: np.ndarray | None = None,
    threads: int = 1,
    rows: slice | None = None,
) -> np.ndarray:
    """The training images of ``epoch``, augmented: a function of (images, config, seed, epoch) only.

    Parameters
    ----------
    images : np.ndarray
        uint8 (n, h, w): the raw training images (``x.reshape(n, h, w)`` of flattened ones).
    config : Augmentation
        What to do.
    seed : int
        The run's seed (>= 0).
    epoch : int
        The epoch (>= 0); every epoch gets new draws.
    out : np.ndarray, optional
        uint8 (n, h, w) to write into (not ``images``); a new array by default.
    threads : int, default 1
        Threads sharing the blocks (the kernels release the GIL); the result is the same for
        any number.
    rows : slice, optional
        Make only these images (``slice(start, stop)``, both multiples of `BLOCK_IMAGES` or
        ``stop`` past the end), leaving the rest of ``out`` as it is: what a caller working a
        chunk at a time needs. The images made are the same as in the whole epoch.

    Returns
    -------
    np.ndarray
        ``out``, or a new uint8 (n, h, w) array.

    Raises
    ------
    InputError
        Images that are not uint8 (n, h, w), an ``out`` that does not fit, or ``rows`` off the
        block boundaries.
    ConfigError
        A seed or epoch that is not an integer >= 0, or ``threads`` < 1.
    """
    check_images(images)
    for name, value, low in (("seed", seed, 0), ("epoch", epoch, 0), ("threads", threads, 1)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
    if out is None:
        out = np.empty_like(images)
    elif out.shape != images.shape or out.dtype != np.uint8 or np.shares_memory(out, images):
        raise InputError(f"out must be a separate uint8 array of shape {images.shape}")
    n = len(images)
    first, stop = (0, n) if rows is None else (rows.start or 0, n if rows.stop is None else min(rows.stop, n))
    if rows is not None and (rows.step not in (None, 1) or first % BLOCK_IMAGES or (stop % BLOCK_IMAGES and stop != n)):
        raise InputError(f"rows must start and stop on multiples of {BLOCK_IMAGES} (or at {n}), got {rows}")
    blocks = range(first // BLOCK_IMAGES, math.ceil(stop / BLOCK_IMAGES))

    def run(b: int) -> None:
        rows = slice(b * BLOCK_IMAGES, (b + 1) * BLOCK_IMAGES)
        rng = np.random.default_rng([int(seed), int(epoch), STREAM, b])
        out[rows] = augment_block(images[rows], config, rng)

    if threads == 1 or len(blocks) < 2:
        for b in blocks:
            run(b)
    else:
        with ThreadPoolExecutor(max_workers=min(int(threads), len(blocks))) as pool:
            list(pool.map(run, blocks))  # list(): re-raises a block's error here
    return out
