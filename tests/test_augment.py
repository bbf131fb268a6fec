"""Data augmentation: the affine and elastic transforms against NumPy/scipy references, the
Augmentation config, the epoch's images as a pure function of (seed, epoch), and the
background feed that prepares them."""

from __future__ import annotations

import os
import sys
import threading
import time

import numpy as np
import pytest
from scipy import ndimage

from mlpkit.core.errors import ConfigError, InputError
from mlpkit.data.affine import affine_maps, draw_affine_maps, random_affine
from mlpkit.data.augment import BLOCK_IMAGES, Augmentation, augmented_epoch
from mlpkit.data.elastic import draw_displacements, elastic, identity_maps
from mlpkit.data.normalize import Normalization
from mlpkit.data.smoothing import gaussian_matrix, smooth_fields
from mlpkit.data.warp import warp_images
from mlpkit.train.augment_feed import AugmentFeed, augmented_inputs

NO_AFFINE = dict(max_shift=0.0, max_rotation=0.0, scale=(1.0, 1.0), max_shear=0.0)


def pictures(n: int, size: int = 28, seed: int = 0) -> np.ndarray:
    """uint8 (n, size, size): random blobs on a blank border, like digits."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, size, size), np.uint8)
    inner = rng.integers(0, 256, (n, size - 8, size - 8))
    images[:, 4:-4, 4:-4] = np.where(rng.random(inner.shape) < 0.4, inner, 0)
    return images


def maps_of(n: int, *, shift=(0.0, 0.0), rotation=0.0, scale=1.0, shear=0.0, size=28) -> np.ndarray:
    return affine_maps((size, size), np.tile(shift, (n, 1)), np.full(n, rotation), np.full(n, scale), np.full(n, shear))


# ---------------------------------------------------------------------------------- affine
def test_identity_parameters_leave_the_images_unchanged():
    images = pictures(50)
    assert np.array_equal(random_affine(images, np.random.default_rng(1), **NO_AFFINE), images)
    assert np.array_equal(elastic(images, np.random.default_rng(1), alpha=0.0), images)
    assert np.array_equal(augmented_epoch(images, Augmentation(alpha=0.0, **NO_AFFINE), 3, 1), images)


def zero_filled_shift(images: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``images`` moved down by dy and right by dx, with zeros where nothing moved in."""
    out = np.zeros_like(images)
    h, w = images.shape[1:]
    out[:, max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = images[
        :, max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


@pytest.mark.parametrize("shift", [(0, 1), (1, 0), (-1, 0), (0, -1), (2, -3)])
def test_an_integer_shift_is_a_roll_with_zero_fill(shift):
    images = pictures(5)  # blank border: np.roll brings in only zeros
    assert np.array_equal(warp_images(images, maps_of(5, shift=shift)), np.roll(images, shift, axis=(1, 2)))
    full = np.random.default_rng(1).integers(1, 256, (2, 6, 6), dtype=np.uint8)
    shifted = warp_images(full, maps_of(2, shift=shift, size=6))
    assert np.array_equal(shifted, zero_filled_shift(full, *shift)) and (shifted == 0).any()


@pytest.mark.parametrize("size", [28, 7, 8])
@pytest.mark.parametrize("quarter_turns", [1, 2, -1])
def test_rotating_a_square_by_90_degrees_is_rot90(size, quarter_turns):
    images = np.random.default_rng(2).integers(0, 256, (4, size, size), dtype=np.uint8)
    rotated = warp_images(images, maps_of(4, rotation=90.0 * quarter_turns, size=size))
    assert np.array_equal(rotated, np.rot90(images, quarter_turns, axes=(1, 2)))


def test_maps_invert_the_documented_forward_transform():
    """u -> F (u - c) + c + t with F = R(rotation) H(shear) S(scale), in (row, column) coordinates."""
    rng = np.random.default_rng(3)
    n = 20
    shift, rot, scale, shear = (
        rng.normal(size=(n, 2)),
        rng.uniform(-40, 40, n),
        rng.uniform(0.5, 2, n),
        rng.uniform(-30, 30, n),
    )
    maps = affine_maps((28, 20), shift, rot, scale, shear)
    c = np.array([13.5, 9.5])
    for m in range(n):
        t, p = np.radians(rot[m]), np.tan(np.radians(shear[m]))
        r = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
        forward = r @ np.array([[1.0, 0.0], [p, 1.0]]) @ (scale[m] * np.eye(2))
        u = rng.uniform(0, 27, 2)
        landed = forward @ (u - c) + c + shift[m]
        assert np.allclose(maps[m, :, :2] @ landed + maps[m, :, 2], u)


def test_warp_is_scipy_bilinear_resampling_with_zeros_outside():
    images = pictures(6)
    maps = draw_affine_maps(
        np.random.default_rng(4), 6, (28, 28), max_shift=3, max_rotation=30, scale=(0.8, 1.2), max_shear=15
    )
    got = warp_images(images, maps)
    yy, xx = np.mgrid[:28, :28].astype(np.float64)
    for m in range(6):
        src = np.einsum("ij,jyx->iyx", maps[m, :, :2], np.stack([yy, xx])) + maps[m, :, 2, None, None]
        ref = ndimage.map_coordinates(images[m].astype(np.float64), src, order=1, mode="grid-constant", cval=0.0)
        assert np.abs(got[m].astype(int) - np.rint(ref)).max() <= 1  # ties at .5 may round either way
        assert np.mean(got[m] == np.rint(ref)) > 0.99


# --------------------------------------------------------------------------------- elastic
def test_smoothing_equals_scipy_gaussian_filter():
    u = np.random.default_rng(5).random((7, 2, 28, 28), dtype=np.float32)
    fields = smooth_fields(u, 5.0, 36.0)
    ref = 36.0 * ndimage.gaussian_filter(2.0 * u.astype(np.float64) - 1.0, (0, 0, 5, 5), mode="constant")
    assert fields.dtype == np.float32 and np.abs(fields - ref).max() < 1e-4
    g = gaussian_matrix(11, 1.5)
    assert np.allclose(g, ndimage.gaussian_filter1d(np.eye(11), 1.5, axis=0, mode="constant"))


def test_displacement_field_statistics():
    fields = draw_displacements(np.random.default_rng(6), 400, (28, 28), alpha=36.0, sigma=5.0).astype(np.float64)
    std = fields.std()
    assert 0.3 < std < 3.0  # a pixel or so: Simard's alpha and sigma
    assert abs(fields.mean()) < 0.05 * std
    assert abs(fields[:, 0].mean() - fields[:, 1].mean()) < 0.05 * std
    # smooth: neighbouring displacements nearly equal, far ones independent
    near = np.corrcoef(fields[:, :, 10:18, 10].ravel(), fields[:, :, 10:18, 11].ravel())[0, 1]
    far = np.corrcoef(fields[:, :, 3, 3].ravel(), fields[:, :, 24, 24].ravel())[0, 1]
    assert near > 0.95 and abs(far) < 0.2
    rough = draw_displacements(np.random.default_rng(6), 400, (28, 28), alpha=36.0, sigma=0.5)
    rough_near = np.corrcoef(rough[:, :, 10:18, 10].ravel(), rough[:, :, 10:18, 11].ravel())[0, 1]
    assert rough_near < 0.5


def test_elastic_is_scipy_map_coordinates_on_the_same_field():
    images = pictures(4)
    rng, twin = np.random.default_rng(7), np.random.default_rng(7)
    got = elastic(images, rng, alpha=34.0, sigma=4.0)
    fields = draw_displacements(twin, 4, (28, 28), alpha=34.0, sigma=4.0).astype(np.float64)
    yy, xx = np.mgrid[:28, :28].astype(np.float64)
    for m in range(4):
        src = np.stack([yy + fields[m, 0], xx + fields[m, 1]])
        ref = np.rint(ndimage.map_coordinates(images[m].astype(np.float64), src, order=1, mode="grid-constant"))
        assert np.abs(got[m] - ref).max() <= 1 and np.mean(got[m] == ref) > 0.99
    assert not np.array_equal(got, images)


def test_elastic_keeps_the_ink_roughly():
    images = pictures(200)
    out = elastic(images, np.random.default_rng(8))
    assert out.dtype == np.uint8 and out.shape == images.shape
    ratio = out.reshape(200, -1).sum(1) / images.reshape(200, -1).sum(1)
    assert abs(out.sum() / images.sum() - 1) < 0.1 and abs(np.median(ratio) - 1) < 0.1


@pytest.mark.parametrize(
    "kwargs, key",
    [
        (dict(max_shift=-1), "max_shift"),
        (dict(max_rotation=200), "max_rotation"),
        (dict(max_shear=float("nan")), "max_shear"),
        (dict(scale=(1.1, 0.9)), "scale"),
        (dict(scale=(0, 1)), "scale"),
        (dict(scale=1.0), "scale"),
        (dict(alpha=-1), "alpha"),
        (dict(sigma=0), "sigma"),
        (dict(probability=1.5), "probability"),
        (dict(probability=True), "probability"),
        (dict(transforms=("affine", "blur")), "blur"),
        (dict(transforms="affine"), "transforms"),
        (dict(transforms=("affine", "affine")), "repeat"),
    ],
)
def test_bad_augmentation_values_are_named(kwargs, key):
    with pytest.raises(ConfigError, match=key) as info:
        Augmentation(**kwargs)
    assert len(str(info.value).splitlines()) == 1


def test_each_bad_value_gets_its_own_line_and_unknown_keys_are_refused():
    with pytest.raises(ConfigError) as info:
        Augmentation(max_shift=-1, sigma=0, probability=2)
    lines = str(info.value).splitlines()
    assert len(lines) == 3 and [w in "".join(lines) for w in ("max_shift", "sigma", "probability")] == [True] * 3
    with pytest.raises(ConfigError, match="unknown augmentation key.*rotate.*valid: transforms"):
        Augmentation.from_dict({"rotate": 3})
    with pytest.raises(ConfigError, match="sigma"):
        elastic(pictures(1), np.random.default_rng(0), sigma=-2)
    with pytest.raises(InputError, match="uint8"):
        random_affine(pictures(2).astype(np.float32), np.random.default_rng(0))


def test_config_round_trips_through_a_dict():
    config = Augmentation(transforms=["elastic"], scale=[0.8, 1], alpha=34)
    assert config.transforms == ("elastic",) and config.scale == (0.8, 1.0)
    assert Augmentation.from_dict(config.to_dict()) == config
    assert config.to_dict()["scale"] == [0.8, 1.0]


# ----------------------------------------------------------------------------- determinism
def test_an_epoch_is_a_function_of_seed_and_epoch():
    images = pictures(2 * BLOCK_IMAGES + 100)
    config = Augmentation()
    a = augmented_epoch(images, config, 7, 3)
    assert np.array_equal(a, augmented_epoch(images, config, 7, 3))
    assert not np.array_equal(a, augmented_epoch(images, config, 7, 4))
    assert not np.array_equal(a, augmented_epoch(images, config, 8, 3))
    assert np.array_equal(a, augmented_epoch(images, config, 7, 3, threads=2))
    assert np.array_equal(a, augmented_epoch(images, config, 7, 3, threads=3))
    chunked = np.zeros_like(images)
    for start in range(0, len(images), BLOCK_IMAGES):
        augmented_epoch(images, config, 7, 3, out=chunked, rows=slice(start, start + BLOCK_IMAGES))
    assert np.array_equal(a, chunked)
    # a block's images depend on its index, not on the images after it
    assert np.array_equal(a[:BLOCK_IMAGES], augmented_epoch(images[:BLOCK_IMAGES], config, 7, 3))
    with pytest.raises(InputError, match="multiples"):
        augmented_epoch(images, config, 7, 3, rows=slice(10, 20))
    with pytest.raises(ConfigError, match="seed"):
        augmented_epoch(images, config, -1, 3)


def test_probability_picks_images_and_leaves_the_others_alone():
    images = pictures(400)
    assert np.array_equal(augmented_epoch(images, Augmentation(probability=0.0), 1, 0), images)
    half = augmented_epoch(images, Augmentation(probability=0.5), 1, 0)
    changed = (half != images).any(axis=(1, 2))
    assert 0.35 < changed.mean() < 0.65
    full = augmented_epoch(images, Augmentation(probability=1.0), 1, 0)
    assert np.array_equal(half[changed], full[changed])  # an image's draws do not depend on being picked


@pytest.mark.mnist
def test_real_digits_keep_their_ink_and_place(mnist_path):
    from mlpkit.data.mnist import load_mnist

    images = load_mnist(mnist_path).train_images[:1000].reshape(-1, 28, 28)
    out = augmented_epoch(images, Augmentation(), 0, 0)
    ink = out.reshape(1000, -1).sum(1) / images.reshape(1000, -1).sum(1)
    assert abs(out.sum() / images.sum() - 1) < 0.1 and abs(np.median(ink) - 1) < 0.1
    yy, xx = np.mgrid[:28, :28]

    def centre(a: np.ndarray) -> np.ndarray:
        a = a.astype(np.float64)
        mass = a.sum((1, 2))
        return np.stack([(a * yy).sum((1, 2)) / mass, (a * xx).sum((1, 2)) / mass], 1)

    moved = np.linalg.norm(centre(out) - centre(images), axis=1)
    assert np.median(moved) < 3.0 and moved.max() < 6.0
    assert (out != images).any(axis=(1, 2)).all()


# ------------------------------------------------------------------------------------ feed
def normalized(images: np.ndarray, config: Augmentation, seed: int, epoch: int, norm: Normalization) -> np.ndarray:
    return norm.apply(
        augmented_epoch(images, config, seed, epoch).reshape(len(images), -1), np.float32, bias_column=True
    )


def no_feed_threads() -> bool:
    return not any(t.name == "mlpkit-augment-feed" for t in threading.enumerate())


def test_the_feed_gives_the_pure_functions_arrays_and_closes_cleanly():
    images = pictures(3000)
    config, norm = Augmentation(), Normalization.fit(images.reshape(3000, -1))
    produce = augmented_inputs(images, config, 11, norm)
    with AugmentFeed(produce, 3000, 784, first=2, stop=6) as feed:
        for epoch in range(2, 6):
            x = feed.get(epoch)
            assert x.shape == (3000, 785) and x.dtype == np.float32
            assert np.array_equal(x, normalized(images, config, 11, epoch, norm)), epoch
        with pytest.raises(InputError, match="in order"):
            feed.get(6)
    assert no_feed_threads()
    with pytest.raises(InputError, match="closed"):
        feed.get(6)


@pytest.mark.parametrize("first", [0, 1])
def test_a_feed_of_sparse_forms_keeps_one_dense_buffer_and_waits_when_a_form_is_missing(first):
    """(first 1: a resumed run's feed starts at an odd epoch, in the other buffer.)"""
    made: list[tuple[int, str]] = []
    dense_epochs = {2}  # epochs whose form is None: read from the dense buffer

    def produce(epoch: int, out: np.ndarray, stop: threading.Event) -> None:
        out[:, :-1] = epoch

    def form(x: np.ndarray) -> tuple[float, str] | None:
        made.append((int(x[0, 0]), threading.current_thread().name))
        return None if int(x[0, 0]) in dense_epochs else (float(x[0, 0]), threading.current_thread().name)

    with AugmentFeed(produce, 10, 3, first=first, stop=5) as feed:
        time.sleep(0.05)  # the worker makes epoch first, then waits for the caller's choice
        assert feed.read_sparse(form) and feed.read_sparse(form)
        for epoch in range(first, 5):
            x = feed.get(epoch)
            if epoch in dense_epochs:
                assert feed.sparse_form(epoch) is None
                time.sleep(0.05)  # the worker must not refill the buffer while epoch 2 is read from it
                assert (x[:, :-1] == epoch).all()
            else:
                value, thread = feed.sparse_form(epoch)
                assert value == epoch
                if epoch >= 2:
                    assert thread == "mlpkit-augment-feed"
        assert feed._buffers[1 - first] is None  # one dense buffer
        with pytest.raises(InputError, match="last handed out"):
            feed.sparse_form(3)
    assert sorted(e for e, _ in made) == list(range(first, 5))

    with AugmentFeed(produce, 10, 3, stop=2) as feed:  # a get first: dense buffers, no forms
        feed.get(0)
        assert not feed.read_sparse(form)
        assert (feed.get(1)[:, :-1] == 1).all() and feed._buffers[1] is not None


def test_the_feed_works_ahead_while_the_caller_is_busy():
    started: dict[int, threading.Event] = {e: threading.Event() for e in range(4)}
    seen: list[int] = []

    def produce(epoch: int, out: np.ndarray, stop: threading.Event) -> None:
        started[epoch].set()
        seen.append(epoch)
        out[:, :-1] = epoch

    with AugmentFeed(produce, 10, 3, stop=4) as feed:
        for epoch in range(4):
            x = feed.get(epoch)
            assert (x[:, :-1] == epoch).all() and (x[:, -1] == 1).all()
            if epoch + 1 < 4:  # the worker starts the next epoch without being asked for it
                assert started[epoch + 1].wait(10)
        assert seen == [0, 1, 2, 3]

    # measured, not asserted: how much of the augmentation hides behind the caller's work
    images = pictures(4 * BLOCK_IMAGES)
    norm = Normalization.fit(images.reshape(len(images), -1))
    with AugmentFeed(augmented_inputs(images, Augmentation(), 0, norm), len(images), 784, stop=3) as feed:
        start = time.perf_counter()
        for epoch in range(3):
            feed.get(epoch)
            busy = time.perf_counter() + 0.3
            while time.perf_counter() < busy:  # the caller's "training": NumPy work, GIL released
                np.dot(np.ones((200, 200)), np.ones((200, 200)))
        total = time.perf_counter() - start
    print(f"feed: produced {sum(feed.produce_s.values()):.2f} s, caller waited {feed.waited_s:.2f} s of {total:.2f} s")
    assert set(feed.produce_s) == {0, 1, 2}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a thread's own nice value is Linux's")
def test_the_worker_yields_the_cores_to_training_and_the_callers_priority_is_unchanged():
    from mlpkit.train.augment_feed import FEED_NICE

    seen: dict[str, int] = {}

    def produce(epoch: int, out: np.ndarray, stop: threading.Event) -> None:
        seen["worker"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        out[:] = epoch

    caller = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    main = os.getpriority(os.PRIO_PROCESS, os.getpid())  # the process's main thread
    with AugmentFeed(produce, 4, 2, bias_column=False, stop=1) as feed:
        assert (feed.get(0) == 0).all()
    assert FEED_NICE == 19 and seen["worker"] == max(FEED_NICE, caller)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == caller
    assert os.getpriority(os.PRIO_PROCESS, os.getpid()) == main


def test_a_worker_error_is_raised_by_get_and_the_thread_ends():
    def produce(epoch: int, out: np.ndarray, stop: threading.Event) -> None:
        if epoch == 2:
            raise ZeroDivisionError("boom in epoch 2")
        out[:] = epoch

    feed = AugmentFeed(produce, 4, 2, bias_column=False)
    assert (feed.get(0) == 0).all() and (feed.get(1) == 1).all()
    with pytest.raises(ZeroDivisionError, match="boom in epoch 2"):
        feed.get(2)
    feed.close()
    assert no_feed_threads()


def test_close_stops_a_waiting_or_working_feed():
    gate = threading.Event()

    def slow(epoch: int, out: np.ndarray, stop: threading.Event) -> None:
        gate.wait(10)

    feed = AugmentFeed(slow, 4, 2)  # working on epoch 0
    gate.set()
    feed.close()
    feed.close()  # idempotent
    waiting = AugmentFeed(lambda e, out, stop: None, 4, 2)
    waiting.get(0)  # the worker made 0 and 1 and waits for a free buffer
    waiting.close()
    assert no_feed_threads()
    images = pictures(100)
    produce = augmented_inputs(images, Augmentation(), 0, Normalization.fit(images.reshape(len(images), -1)))
    stop = threading.Event()
    stop.set()
    out = np.full((len(images), 785), -7.0, np.float32)
    produce(0, out, stop)  # a closing feed: returns before the first chunk
    assert (out == -7.0).all()
    assert np.all(identity_maps(2)[:, :, :2] == np.eye(2))


@pytest.mark.parametrize("kind", ["global", "per_feature", "none"])
def test_the_feed_normalizes_as_each_kind_does(kind):
    images = pictures(700)  # blocks of NORMALIZE_ROWS and a partial one
    norm = Normalization.fit(images.reshape(700, -1), kind)
    out = np.full((700, 785), np.nan, np.float32)
    out[:, -1] = 1.0
    augmented_inputs(images, Augmentation(), 5, norm)(2, out, threading.Event())
    assert np.array_equal(out, normalized(images, Augmentation(), 5, 2, norm))
