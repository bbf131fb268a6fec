"""The driver's one progress bar: trials done, running and failed, with tqdm's ETA."""

from __future__ import annotations

import sys
from typing import Any


class SweepProgress:
    """A tqdm bar over a sweep's trials (or nothing, when disabled).

    Parameters
    ----------
    total : int
        Every trial of the sweep.
    done : int
        Trials finished before this invocation (the bar starts there).
    enabled : bool or None
        Show the bar; None: only when stderr is a terminal.
    """

    def __init__(self, total: int, *, done: int = 0, enabled: bool | None = None) -> None:
        self.failed = 0
        self.bar: Any = None
        if enabled if enabled is not None else sys.stderr.isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=done, desc="sweep", unit="trial", dynamic_ncols=True, leave=True)

    def running(self, pending: int, threads: int) -> None:
        """``pending`` trials not finished, at most ``threads`` of them running at a time."""
        if self.bar is not None:
            self.bar.set_postfix({"running": min(pending, threads), "failed": self.failed}, refresh=True)

    def finished(self, *, failed: bool = False) -> None:
        """One more trial ended (failed or not)."""
        self.failed += failed
        if self.bar is not None:
            self.bar.update(1)

    def write(self, line: str) -> None:
        """Print ``line`` above the bar (or plainly, without one)."""
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
