"""One writer per run folder: an exclusive lock held for as long as a process writes the folder.

Why ``flock`` on a lock file rather than "create the file, delete it when done": the kernel
releases an flock when its process ends in any way (SIGKILL included), so a lock can never be
left stale by a crash; the file itself may stay behind and means nothing without the lock.
The file holds the owner's PID, host and start time, to name the owner in the refusal.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from types import TracebackType

from mlpkit.core.errors import MlpkitError
from mlpkit.core.fileio import RunIOError
from mlpkit.runs.schema import LOCK

try:  # POSIX; elsewhere the lock is advisory-free (documented in docs/reliability.md)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

#: The lock file's name inside a run folder (never a run file; readers ignore it).
LOCK_NAME = LOCK


class RunFolderBusyError(MlpkitError):
    """Another process is writing this run folder."""


class RunLock:
    """An exclusive, non-blocking lock on ``folder`` (created if missing).

    Use as a context manager; a second writer gets :class:`RunFolderBusyError` at once, naming
    the process that holds the folder.

    Parameters
    ----------
    folder : path
        The run folder (or reproduce folder) to guard.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        """Take the lock or raise :class:`RunFolderBusyError`, or :class:`RunIOError` naming the
        folder if it cannot be created or written (read-only, under a file, ...)."""
        if self._fd is not None:
            return self
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise RunIOError(self.folder, exc) from exc
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise RunFolderBusyError(
                        f"run folder {self.folder} is in use by {self._owner(fd)};"
                        " wait for it to finish or stop it first"
                    ) from None
            info = json.dumps(
                {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            ).encode()
            os.ftruncate(fd, 0)
            os.pwrite(fd, info, 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    @staticmethod
    def _owner(fd: int, attempts: int = 20, pause_s: float = 0.01) -> str:
        """Name the lock holder. The holder writes its details just after taking the lock, so a
        refusal in that instant finds the file empty: read again for up to ``attempts`` pauses."""
        for attempt in range(attempts):
            try:
                info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
                return f"process {info['pid']} on {info['host']} (since {info['since']})"
            except (OSError, ValueError, KeyError, TypeError):
                if attempt + 1 < attempts:
                    time.sleep(pause_s)
        return "another process"

    def release(self) -> None:
        """Give the lock up (the file stays; it is meaningless without the lock)."""
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
