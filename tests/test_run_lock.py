"""One writer per run folder (mlpkit.runs.lock): a second writer is refused, naming the first;
a lock dies with its process, even a SIGKILLed one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from mlpkit.runs.lock import LOCK_NAME, RunFolderBusyError, RunLock


def test_second_writer_is_refused_and_told_who_holds_it(tmp_path):
    with RunLock(tmp_path / "run") as first:
        assert first.held and (tmp_path / "run" / LOCK_NAME).exists()
        with pytest.raises(RunFolderBusyError, match=rf"in use by process {os.getpid()}"):
            RunLock(tmp_path / "run").acquire()
    with RunLock(tmp_path / "run") as again:  # released on exit
        assert again.held


def test_lock_held_by_another_process_and_freed_by_sigkill(tmp_path):
    folder = tmp_path / "run"
    code = textwrap.dedent(f"""
        import sys, time
        from mlpkit.runs.lock import RunLock
        lock = RunLock({str(folder)!r}).acquire()
        print("locked", flush=True)
        time.sleep(60)
    """)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(RunFolderBusyError, match=rf"process {child.pid}"):
            RunLock(folder).acquire()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    with RunLock(folder) as lock:  # a killed owner leaves no stale lock
        assert lock.held


def test_refusal_in_the_instant_before_the_owner_writes_its_details_still_names_it(tmp_path):
    """The owner writes its PID just after its flock; a refusal in between re-reads briefly."""
    import fcntl
    import json
    import threading

    folder = tmp_path / "run"
    folder.mkdir()
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # locked, details not yet written
        details = json.dumps({"pid": 4242, "host": "h", "since": "t"}).encode()
        writer = threading.Timer(0.05, lambda: os.pwrite(fd, details, 0))
        writer.start()
        with pytest.raises(RunFolderBusyError, match=r"in use by process 4242 on h"):
            RunLock(folder).acquire()
        writer.join()
        os.ftruncate(fd, 0)  # an owner that never writes: the refusal still comes, unnamed
        with pytest.raises(RunFolderBusyError, match=r"in use by another process"):
            RunLock(folder).acquire()
    finally:
        os.close(fd)
