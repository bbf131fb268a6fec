"""Ctrl-C as a request to stop between two steps, so that an interrupted run can be resumed exactly.

A KeyboardInterrupt raised in the middle of a step (say, between the weight update and the
step counter) would leave a state that cannot be resumed exactly; a flag read between runs of
steps cannot. While :func:`deferred_interrupts` is active, the first Ctrl-C (SIGINT) only sets
the flag and gives the previous handler back, so a second Ctrl-C interrupts at once, as usual.
The handler is installed only in the main thread (the only one Python delivers signals to)
and only where the current one can be restored.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType


class InterruptRequest:
    """Whether a stop was requested (by Ctrl-C, or by calling :meth:`request`)."""

    def __init__(self) -> None:
        self.requested = False

    def request(self) -> None:
        self.requested = True


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[InterruptRequest]:
    """Inside the block the first SIGINT sets ``requested`` instead of raising KeyboardInterrupt.

    The previous handler is restored when the first SIGINT arrives and when the block ends.
    Outside the main thread, or when the current handler was not installed from Python (it
    could not be restored), nothing is installed and the flag is only set by ``request()``.
    """
    flag = InterruptRequest()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is None:
        yield flag
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        flag.request()
        signal.signal(signal.SIGINT, previous)  # the next Ctrl-C is not deferred

    signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        if signal.getsignal(signal.SIGINT) is handler:
            signal.signal(signal.SIGINT, previous)
