#!/usr/bin/env python
"""How long one epoch of augmentation takes on MNIST's 55,000 training images: mlpkit's compiled
kernels against ``scipy.ndimage`` doing the same work.

    python benchmarks/augment.py            # 55,000 images, best of 3 rounds
    python benchmarks/augment.py --quick    # 11,000 images, 2 rounds

Rows (seconds per epoch, the least over the rounds; a shared machine makes the others noise):

- ``affine``: random shift, rotation, scale and shear. scipy: one ``affine_transform`` per
  image (order 1, zeros outside), the only way it takes a matrix per image. mlpkit:
  `random_affine`.
- ``elastic``: Simard's smoothed random fields. scipy: one ``gaussian_filter`` over all fields
  (sigma 0 along the image axis) and one ``map_coordinates`` over the stack (integer image
  coordinate, so bilinear within each image), i.e. scipy at its most batched. mlpkit: `elastic`.
- ``kernels``: the parts of mlpkit's elastic path, block by block as `augmented_epoch` runs them:
  the fields' uniform draws (NumPy's ``Generator.random`` against mlpkit's compiled PCG64,
  the same numbers), the smoothing of the fields, and the warp of the images through their
  fields and affine maps.
- ``affine+elastic``: mlpkit's `augmented_epoch` (one composed resampling), on 1 and 2 threads.
- ``feed epoch``: `augmented_inputs` (augment + normalize into a float32 buffer with the bias
  column), what the background feed runs per epoch.
- ``overlap``: one epoch of training (``Trainer.fit``, [800] hidden units, batch 128, the
  engine's choice) on an augmented epoch from `AugmentFeed`, alone and while the feed makes
  the next epoch in the background (alternating, least of the rounds); the feed's epoch
  beside training, and the longest a ``get`` right after a training epoch would wait.

Results go to benchmarks/results/augment-<time>.json and are printed as a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy import ndimage

from mlpkit.core.pcg64 import random_float32
from mlpkit.data.affine import draw_affine_maps, random_affine
from mlpkit.data.augment import BLOCK_IMAGES, Augmentation, augmented_epoch
from mlpkit.data.elastic import elastic
from mlpkit.data.mnist import load_mnist
from mlpkit.data.normalize import Normalization
from mlpkit.data.smoothing import smooth_fields
from mlpkit.data.warp import warp_images
from mlpkit.nn.mlp import MLP
from mlpkit.optim.sgd import SGD
from mlpkit.train.augment_feed import AugmentFeed, augmented_inputs
from mlpkit.train.trainer import Trainer

HERE = Path(__file__).resolve().parent
CONFIG = Augmentation()


def scipy_affine(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    maps = draw_affine_maps(
        rng,
        len(images),
        images.shape[1:],
        max_shift=CONFIG.max_shift,
        max_rotation=CONFIG.max_rotation,
        scale=CONFIG.scale,
        max_shear=CONFIG.max_shear,
    )
    out = np.empty_like(images)
    for m in range(len(images)):
        warped = ndimage.affine_transform(
            images[m].astype(np.float32), maps[m, :, :2], offset=maps[m, :, 2], order=1, mode="grid-constant"
        )
        out[m] = np.clip(np.rint(warped), 0, 255)
    return out


def scipy_elastic(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n, h, w = images.shape
    uniform = rng.uniform(-1.0, 1.0, size=(n, 2, h, w)).astype(np.float32)
    fields = CONFIG.alpha * ndimage.gaussian_filter(uniform, (0, 0, CONFIG.sigma, CONFIG.sigma), mode="constant")
    index, yy, xx = np.meshgrid(np.arange(n), np.arange(h), np.arange(w), indexing="ij")
    coords = np.stack([index.astype(np.float32), yy + fields[:, 0], xx + fields[:, 1]])
    warped = ndimage.map_coordinates(images.astype(np.float32), coords, order=1, mode="grid-constant")
    return np.clip(np.rint(warped), 0, 255).astype(np.uint8)


def kernel_rows(images: np.ndarray, rounds: int) -> dict[str, float]:
    """Seconds per epoch of each part of the elastic path, on blocks of BLOCK_IMAGES images."""
    n, shape = len(images), images.shape[1:]
    blocks = [slice(b, b + BLOCK_IMAGES) for b in range(0, n, BLOCK_IMAGES)]
    uniform = np.random.default_rng(0).random((n, 2, *shape), dtype=np.float32)
    maps = draw_affine_maps(
        np.random.default_rng(1),
        n,
        shape,
        max_shift=CONFIG.max_shift,
        max_rotation=CONFIG.max_rotation,
        scale=CONFIG.scale,
        max_shear=CONFIG.max_shear,
    )
    fields = smooth_fields(uniform, CONFIG.sigma, CONFIG.alpha)

    def each_block(fn: Callable[[slice], object]) -> Callable[[], None]:
        def run() -> None:
            for rows in blocks:
                fn(rows)

        return run

    size = (2, *shape)
    return {
        "kernels: field draws / numpy": best_of(
            rounds,
            each_block(lambda r: np.random.default_rng(r.start).random((len(images[r]), *size), dtype=np.float32)),
        ),
        "kernels: field draws / mlpkit": best_of(
            rounds, each_block(lambda r: random_float32(np.random.default_rng(r.start), (len(images[r]), *size)))
        ),
        "kernels: smoothing / mlpkit": best_of(
            rounds, each_block(lambda r: smooth_fields(uniform[r], CONFIG.sigma, CONFIG.alpha))
        ),
        "kernels: warp (map + field) / mlpkit": best_of(
            rounds, each_block(lambda r: warp_images(images[r], maps[r], fields[r]))
        ),
    }


def best_of(rounds: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def overlap(images: np.ndarray, labels: np.ndarray, norm: Normalization, rounds: int) -> dict[str, float]:
    """Seconds (least over rounds, alternating): a training epoch alone, one while the feed
    makes the next epoch, the feed's epoch beside training, and the longest ``get`` would wait."""
    n = len(images)
    rng = np.random.default_rng(0)
    model = MLP([800], activation="improved_sigmoid").init_weights(rng, "fan_in_normal")
    optimizer = SGD(model.parameters(), lr=0.05, momentum=0.9)

    def train(x: np.ndarray) -> float:
        trainer = Trainer(model, optimizer, rng=rng, epochs=1, batch_size=128, validations_per_epoch=0)
        start = time.perf_counter()
        trainer.fit(x, labels)
        return time.perf_counter() - start

    alone, beside, waits = [], [], []
    produce = augmented_inputs(images, CONFIG, 0, norm)
    with AugmentFeed(produce, n, 784, bias_column=model.bias == "input_column") as feed:
        x = feed.get(0)
        train(x)  # warm-up: compile or load the engine's kernels
        for epoch in range(1, rounds + 1):
            start = time.perf_counter()
            while epoch not in feed.produce_s:  # the worker is done and waits for a free buffer
                time.sleep(0.01)
            if epoch > 1:  # what a get() right after the previous (beside) training epoch would wait
                waits.append(time.perf_counter() - start)
            alone.append(train(x))
            x = feed.get(epoch)  # the worker starts epoch + 1 now, beside this epoch's training
            beside.append(train(x))
        while rounds + 1 not in feed.produce_s:
            time.sleep(0.01)
        made = [feed.produce_s[e] for e in range(2, rounds + 2)]
    return {
        "train alone": min(alone),
        "train beside feed": min(beside),
        "feed epoch beside training": min(made),
        "get would wait": max(waits, default=0.0),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="11,000 images, 2 rounds")
    args = parser.parse_args(argv)
    n, rounds = (11_000, 2) if args.quick else (55_000, 3)
    images = load_mnist().train_images[:n].reshape(n, 28, 28)
    rng = np.random.default_rng(0)
    random_affine(images[:8], rng)  # compile (or load from Numba's cache) outside the clock
    elastic(images[:8], rng)
    norm = Normalization.fit(images.reshape(n, -1))
    produce = augmented_inputs(images, CONFIG, 0, norm)
    buffer = np.empty((n, 785), np.float32)
    rows = {
        "affine / scipy.ndimage": best_of(rounds, lambda: scipy_affine(images, rng)),
        "affine / mlpkit": best_of(rounds, lambda: random_affine(images, rng)),
        "elastic / scipy.ndimage": best_of(rounds, lambda: scipy_elastic(images, rng)),
        "elastic / mlpkit": best_of(rounds, lambda: elastic(images, rng)),
        **kernel_rows(images, rounds),
        "affine+elastic / mlpkit, 1 thread": best_of(rounds, lambda: augmented_epoch(images, CONFIG, 0, 1)),
        "affine+elastic / mlpkit, 2 threads": best_of(rounds, lambda: augmented_epoch(images, CONFIG, 0, 1, threads=2)),
        "feed epoch (augment + normalize) / mlpkit": best_of(rounds, lambda: produce(1, buffer, threading.Event())),
    }
    labels = load_mnist().train_labels[:n]
    rows.update({f"overlap: {k}": v for k, v in overlap(images, labels, norm, rounds).items()})
    print(f"{n} images, {os.cpu_count()} cores, least of {rounds} rounds")
    for name, seconds in rows.items():
        print(f"  {name:<45} {seconds:7.2f} s")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = HERE / "results" / f"augment-{'quick' if args.quick else 'full'}-{stamp}.json"
    out.parent.mkdir(exist_ok=True)
    record = {"images": n, "rounds": rounds, "cpus": os.cpu_count(), "machine": platform.processor(), "seconds": rows}
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {out.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
