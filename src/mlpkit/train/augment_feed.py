"""A background thread that prepares the next epoch's training inputs while this one trains.

Why: augmenting and normalizing 55,000 images takes seconds an epoch; done in the loop, the
training would wait for it every epoch. The augmentation kernels and the engine's compiled steps
both release the GIL, so the two really run side by side.

Handover (double buffering, buffers allocated once, nothing else grows):

- epoch e lives in buffer ``e % 2``. The worker fills epochs ``first``, ``first + 1``, ... in
  order; it may write epoch e once the caller is done with epoch e - 2, which it signals by
  asking for epoch e - 1.
- ``get(e)`` (epochs in order, from ``first``) waits until epoch e is finished and returns its
  buffer; the array stays valid, unchanged, until the caller's next ``get``. Asking for e
  hands buffer ``(e - 1) % 2`` back, and the worker starts on epoch e + 1 there at once.
- Sparse forms (``read_sparse``, for compiled steps that read the first layer's inputs in the
  sparse form of :mod:`mlpkit.engine.sparse`): the worker also makes each epoch's sparse form,
  and the two sparse forms take the place of the second dense buffer (MNIST's are ~40% of its
  size): one dense buffer is refilled for each epoch as soon as the epoch before has its sparse
  form. So ``get``'s array is then only for its shape: ``sparse_form(e)`` is what to read
  (when it is None, too dense, the array stays valid until the next ``get``, as above). The
  worker makes only epoch ``first`` until the caller chooses (``read_sparse``, or ``get``).
- The worker runs at the lowest scheduling priority (``FEED_NICE``, Linux, where a nice value
  is a thread's own): the training's BLAS threads keep both cores while they compute, and the
  worker fills the moments a core would idle (Python between steps, one-thread parts of a
  step, the waits of a two-thread product). At the default priority it took a core from a
  two-thread product, whose other thread then waited: a modern epoch with augmentation took
  1.12-1.13x the plain epoch; at nice 19, 1.01-1.02x (medians of 6 rounds, MNIST, 2 cores).
  When the caller waits in ``get``, nothing else is runnable and the worker gets the cores.
- An error in the worker is raised by the ``get`` of the epoch it was making (the epochs
  finished before it are still handed out); ``close()`` stops the worker (after the chunk in
  progress) and joins it; the feed is also a context manager.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import DTypeLike

from mlpkit.core.arrays import input_array
from mlpkit.core.errors import InputError

if TYPE_CHECKING:
    from mlpkit.data.augment import Augmentation
    from mlpkit.data.normalize import Normalization

__all__ = ["AugmentFeed", "augmented_inputs"]

#: The worker thread's nice value (19: the lowest priority; see the module docstring).
FEED_NICE = 19
#: Images augmented and normalized per step of `augmented_inputs` (``close`` waits for one step).
CHUNK_IMAGES = 8192
#: Rows normalized at a time (a float64 scratch of this many rows stays in the core's cache).
NORMALIZE_ROWS = 256

#: ``produce(epoch, out, stop)`` writes epoch's inputs into ``out``; may return early once ``stop`` is set.
Producer = Callable[[int, np.ndarray, threading.Event], None]


class AugmentFeed:
    """Double-buffered producer of each epoch's inputs on a background thread (see the module).

    Parameters
    ----------
    produce : callable
        ``produce(epoch, out, stop)`` fills ``out`` (a buffer from ``input_array``) with the
        epoch's inputs; runs on the worker thread; may return early once the event ``stop`` is
        set (the feed is closing and discards the buffer).
    n_rows, n_features : int
        Shape of the inputs, without the bias column.
    dtype : dtype-like, default float32
        Of the buffers (the model's dtype).
    bias_column : bool, default True
        Buffers get a last column of ones (set once, by `mlpkit.core.arrays.input_array`).
    first : int, default 0
        The first epoch asked for (a resumed run starts at its epoch).
    stop : int, optional
        One past the last epoch the worker makes (default: until closed).

    Raises
    ------
    InputError
        If ``first`` is not an integer >= 0.

    Attributes
    ----------
    produce_s : dict
        Seconds the worker spent on each finished epoch.
    waited_s : float
        Seconds ``get`` spent waiting for the worker, in all.
    """

    def __init__(
        self,
        produce: Producer,
        n_rows: int,
        n_features: int,
        *,
        dtype: DTypeLike = np.float32,
        bias_column: bool = True,
        first: int = 0,
        stop: int | None = None,
    ) -> None:
        if isinstance(first, bool) or not isinstance(first, int) or first < 0:
            raise InputError(f"first must be an epoch >= 0, got {first!r}")
        self._produce = produce
        self.first = int(first)
        self._shape = (n_rows, n_features, np.dtype(dtype), bias_column)
        self._buffers: list[np.ndarray | None] = [None, None]
        self._one = self.first % 2  # the buffer of epoch first, and the only one with sparse forms
        self._buffers[self._one] = input_array(n_rows, n_features, dtype, bias_column=bias_column)
        self.stop = stop
        self.produce_s: dict[int, float] = {}
        self.waited_s = 0.0
        self.closing = threading.Event()
        self._cond = threading.Condition()
        self._taken = self.first - 1  # the last epoch handed out
        self._ready = self.first - 1  # the last epoch finished
        self._error: tuple[int, BaseException] | None = None
        self._closed = False
        self._asked = self.first - 1  # the last epoch asked for (handed out or being waited for)
        self._chosen = False  # whether the caller chose dense buffers (get) or sparse forms
        self._sparse_form: Callable[[np.ndarray], object] | None = None
        self._forms: list[object] = [None, None]  # sparse mode: epoch e's sparse form at e % 2
        self._thread = threading.Thread(target=self._work, name="mlpkit-augment-feed", daemon=True)
        self._thread.start()

    def _may_make(self, epoch: int) -> bool:
        """Whether the buffers epoch needs are free (the caller holds the lock)."""
        if epoch == self.first:
            return True
        if not self._chosen:
            return False
        if epoch - 2 >= self.first and self._taken < epoch - 1:  # the slot epoch - 2 used is still in use
            return False
        if self._sparse_form is not None and self._forms[(epoch - 1) % 2] is None:
            return self._asked >= epoch  # the dense buffer holds epoch - 1, read as it is
        return True

    def _buffer(self, epoch: int) -> np.ndarray:
        """Epoch's dense buffer (the caller holds the lock)."""
        slot = self._one if self._sparse_form is not None else epoch % 2
        buffer = self._buffers[slot]
        if buffer is None:  # the second dense buffer, made when first needed
            n_rows, n_features, dtype, bias_column = self._shape
            buffer = self._buffers[slot] = input_array(n_rows, n_features, dtype, bias_column=bias_column)
        return buffer

    def _work(self) -> None:
        _yield_to_training()
        epoch = self.first
        while self.stop is None or epoch < self.stop:
            with self._cond:
                while not self.closing.is_set() and not self._may_make(epoch):
                    self._cond.wait()
                form, buffer = self._sparse_form, self._buffer(epoch)
            if self.closing.is_set():
                return
            start = time.perf_counter()
            try:
                self._produce(epoch, buffer, self.closing)
                if form is not None and not self.closing.is_set():
                    self._forms[epoch % 2] = form(buffer)
            except BaseException as exc:  # handed to the caller by get(epoch)
                with self._cond:
                    self._error = (epoch, exc)
                    self._cond.notify_all()
                return
            with self._cond:
                self.produce_s[epoch] = time.perf_counter() - start
                self._ready = epoch
                self._cond.notify_all()
            epoch += 1

    def read_sparse(self, form: Callable[[np.ndarray], object] | None = None) -> bool:
        """Make each epoch's sparse form too, ``form(inputs)`` (default: the engine's
        ``sparse_rows``), and keep one dense buffer (see the module docstring); on the thread
        that imported the engine (not first on the worker). Returns whether the feed makes
        sparse forms: False once a ``get`` came first (the caller reads dense buffers)."""
        from mlpkit.engine.sparse import sparse_rows

        make = form or sparse_rows
        with self._cond:
            if self._chosen:
                return self._sparse_form is not None
            while self._ready < self.first and self._error is None and not self.closing.is_set():
                self._cond.wait()  # epoch first is being made, without its form
            if self._ready >= self.first:
                self._forms[self.first % 2] = make(self._buffers[self._one])  # type: ignore[arg-type]
            self._sparse_form, self._chosen = make, True
            self._cond.notify_all()
        return True

    def sparse_form(self, epoch: int) -> Any:
        """The sparse form of the epoch ``get`` last handed out (with ``read_sparse``), or None
        when its inputs were too dense (read ``get``'s array then)."""
        if self._sparse_form is None or epoch != self._taken:
            raise InputError(f"sparse_form({epoch}): after read_sparse, for the epoch last handed out")
        return self._forms[epoch % 2]

    def get(self, epoch: int) -> np.ndarray:
        """The inputs of ``epoch`` (waits until they are ready); valid until the next ``get``
        (with ``read_sparse``: read ``sparse_form(epoch)`` instead, see the module docstring).

        Raises
        ------
        InputError
            If the feed is closed, or ``epoch`` is not the next one (epochs come in order,
            from ``first``, up to ``stop``).
        BaseException
            Whatever the worker raised while making ``epoch``.
        """
        with self._cond:
            if self._closed:
                raise InputError("the augmentation feed is closed")
            if epoch != self._taken + 1 or (self.stop is not None and epoch >= self.stop):
                raise InputError(
                    f"the augmentation feed hands out epochs in order: expected {self._taken + 1}, got {epoch}"
                )
            self._asked, self._chosen = epoch, True
            self._cond.notify_all()
            start = time.perf_counter()
            while self._ready < epoch and self._error is None:
                self._cond.wait()
            self.waited_s += time.perf_counter() - start
            if self._ready < epoch:
                assert self._error is not None
                raise self._error[1]
            self._taken = epoch
            self._cond.notify_all()
            return self._buffer(epoch)

    def close(self) -> None:
        """Stop the worker and wait for it (after the step it is in); idempotent."""
        with self._cond:
            self._closed = True
            self.closing.set()
            self._cond.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join()

    def __enter__(self) -> AugmentFeed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _yield_to_training() -> None:
    """Lower the calling thread's priority to ``FEED_NICE`` (Linux only: elsewhere ``setpriority``
    on a thread id would name a process). A system that refuses keeps the default priority.
    Threads this one starts inherit it: the BLAS pool SciPy starts when Numba first loads it
    here (idle: the engine's products use NumPy's BLAS, whose threads start with the process,
    and Numba's parallel pool starts on the trainer's thread)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), FEED_NICE)


def augmented_inputs(
    images: np.ndarray,
    augmentation: Augmentation,
    seed: int,
    normalization: Normalization,
    *,
    threads: int = 1,
) -> Producer:
    """A producer for `AugmentFeed`: epoch e's inputs = ``normalization.apply(augmented_epoch(...))``.

    The values equal ``normalization.apply(augmented_epoch(images, augmentation, seed, e)
    .reshape(n, -1), dtype, bias_column=...)`` exactly (the same float64 arithmetic row by
    row), written straight into the feed's buffer a few rows at a time.

    Parameters
    ----------
    images : np.ndarray
        uint8 (n, h, w) raw training images.
    augmentation : Augmentation
        What to do to them.
    seed : int
        The run's seed.
    normalization : Normalization
        Fitted on the raw training images (augmentation does not refit it).
    threads : int, default 1
        Threads for `augmented_epoch` (the same result for any number).
    """
    from mlpkit.core.pcg64 import random_float32  # noqa: F401  (imports Numba here, on the caller's thread)
    from mlpkit.data.augment import BLOCK_IMAGES, augmented_epoch
    from mlpkit.data.warp import warp_images  # noqa: F401

    # Why import here: the producer runs on the feed's thread, and Numba imported on two threads
    # at once (the engine's on this one) breaks half-way ("partially initialized module").

    assert CHUNK_IMAGES % BLOCK_IMAGES == 0  # chunks start on block boundaries: the same draws
    n, d = len(images), int(np.prod(images.shape[1:]))
    normalization.check_features(d)
    raw = np.empty_like(images)
    scratch = np.empty((NORMALIZE_ROWS, d))  # float64, reused: no new arrays per chunk

    def produce(epoch: int, out: np.ndarray, stop: threading.Event) -> None:
        for start in range(0, n, CHUNK_IMAGES):
            if stop.is_set():
                return
            rows = slice(start, start + CHUNK_IMAGES)
            augmented_epoch(images, augmentation, seed, epoch, out=raw, threads=threads, rows=rows)
            for i in range(start, min(start + CHUNK_IMAGES, n), NORMALIZE_ROWS):
                block = raw[i : i + NORMALIZE_ROWS].reshape(-1, d)
                _normalize_into(normalization, block, out[i : i + len(block), :d], scratch)

    return produce


def _normalize_into(normalization: Normalization, raw: np.ndarray, out: np.ndarray, scratch: np.ndarray) -> None:
    """``out[:] = normalization.apply(raw)``: the same float64 arithmetic (subtract the mean,
    divide by the std, one rounding to ``out``'s dtype), written into ``out`` through ``scratch``
    (float64, at least ``raw``'s shape) instead of into new arrays."""
    work = scratch[: len(raw)]
    if normalization.mean is None or normalization.std is None:  # kind "none"
        out[...] = raw
        return
    np.subtract(raw, normalization.mean, out=work)
    np.divide(work, normalization.std, out=work)
    out[...] = work
