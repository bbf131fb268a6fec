"""Sweeps on real Dask clusters, all on 127.0.0.1: a 4-trial sweep on a 2-worker LocalCluster, a
worker SIGKILLed mid-trial, the driver stopped by SIGINT and rerun, and a scheduler and two
workers started as separate ``dask`` processes (the shape of a real cluster).

Trials train scikit-learn's digits (no download) for a few epochs. Results of a disturbed sweep
must equal an undisturbed one's: metrics (wall time aside) and the weights files' bytes.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mlpkit.runs.lock import LOCK_NAME, RunLock
from mlpkit.workflows.sweep.driver import run_sweep

BIN = Path(sys.executable).parent
FAST = """
preset = "task3c"
seeds = [0, 1]
[set]
epochs = 2
"data.dataset" = "digits"
hidden = [16]
[grid]
learning_rate = [0.02, 0.05]
"""
# Slow enough to be caught mid-trial, checkpointing at every validation: ~9 s a trial on a quiet
# core (30 epochs took 0.9 s, less than the driver needs to stop its cluster after Ctrl-C).
SLOW = """
preset = "task3c"
seeds = [0]
[set]
epochs = 300
"data.dataset" = "digits"
hidden = [128]
"train.checkpoint_every" = 1
"train.early_stopping_patience" = 0
[grid]
learning_rate = [0.02, 0.05]
"""
TIMEOUT_S = 240
VOLATILE = ("wall_time_s", "sha256")  # time, and the checksums that cover it


def spec_file(tmp_path: Path, text: str, name: str = "spec.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def outcome(out: Path) -> dict[str, tuple[dict, bytes]]:
    """Per trial: metrics without the volatile keys, and the bytes of weights.npz."""
    found = {}
    for trial in sorted((out / "trials").iterdir()):
        metrics = json.loads((trial / "metrics.json").read_text())
        found[trial.name] = (
            {k: v for k, v in metrics.items() if k not in VOLATILE},
            (trial / "weights.npz").read_bytes(),
        )
    return found


def rows(out: Path) -> dict[str, dict]:
    return {r["trial"]: r for r in json.loads((out / "results.json").read_text())["rows"]}


def quiet(line: str) -> None:
    pass


@pytest.fixture(scope="module")
def slow_reference(tmp_path_factory) -> dict[str, tuple[dict, bytes]]:
    """The SLOW sweep undisturbed, on a 2-worker LocalCluster."""
    tmp = tmp_path_factory.mktemp("slow-reference")
    result = run_sweep(spec_file(tmp, SLOW), tmp / "out", workers=2, progress=False, log=quiet)
    assert not result.failed
    return outcome(tmp / "out")


@pytest.fixture(scope="module")
def fast_sweep(tmp_path_factory) -> Path:
    """The FAST sweep (4 trials) on a 2-worker LocalCluster: its folder."""
    tmp = tmp_path_factory.mktemp("fast")
    result = run_sweep(spec_file(tmp, FAST), tmp / "out", workers=2, progress=False, log=quiet)
    assert not result.failed and len(result.rows) == 4
    return tmp / "out"


def test_four_trials_on_a_two_worker_local_cluster(fast_sweep: Path, tmp_path: Path) -> None:
    out = fast_sweep
    table = rows(out)
    assert sorted(table) == ["lr=0.02_seed=0", "lr=0.02_seed=1", "lr=0.05_seed=0", "lr=0.05_seed=1"]
    workers = {r["worker"] for r in table.values()}
    assert all(w.startswith("tcp://127.0.0.1:") for w in workers)
    for name, row in table.items():
        metrics = json.loads((out / "trials" / name / "metrics.json").read_text())
        assert row["status"] == "done" and row["how"] == "ran"
        assert row["val_accuracy"] == metrics["val_accuracy"] and row["train.learning_rate"] in (0.02, 0.05)
        assert row["best_val_accuracy"] == max(
            json.loads((out / "trials" / name / "history.json").read_text())["validation"]["val_accuracy"]
        )
    csv_lines = (out / "results.csv").read_text().splitlines()
    assert csv_lines[0].startswith("trial,status,train.learning_rate,seed,val_accuracy") and len(csv_lines) == 5
    page = (out / "report.html").read_text()
    for needle in ('id="best"', 'id="hyperparameters"', 'id="curves"', "lr=0.05_seed=1", "\u00b1"):
        assert needle in page
    assert (out / "report_files" / "val_accuracy-vs-train-learning_rate.png").exists()
    # a rerun keeps every finished trial and starts no cluster
    before = outcome(out)
    lines: list[str] = []
    again = run_sweep(spec_file(tmp_path, FAST), out, progress=False, log=lines.append)
    assert {r["how"] for r in again.rows} == {"ran"} and outcome(out) == before
    assert "4 already done" in lines[0] and not any("Dask" in line for line in lines)


def _lock_holder(trial: Path) -> int | None:
    try:
        return int(json.loads((trial / LOCK_NAME).read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return None


def test_a_worker_killed_mid_trial_is_resumed_bit_identically(tmp_path: Path, slow_reference) -> None:
    out = tmp_path / "out"
    killed: list[tuple[str, int]] = []
    done = threading.Event()

    def killer() -> None:  # SIGKILL the worker that holds the first trial with a checkpoint
        while not done.is_set() and not killed:
            for trial in sorted((out / "trials").glob("*")) if (out / "trials").exists() else []:
                if list((trial / "checkpoints").glob("step-*.npz")) and not (trial / "metrics.json").exists():
                    pid = _lock_holder(trial)
                    if pid and pid != os.getpid():
                        os.kill(pid, signal.SIGKILL)
                        killed.append((trial.name, pid))
                        break
            time.sleep(0.02)

    watcher = threading.Thread(target=killer, daemon=True)
    watcher.start()
    try:
        result = run_sweep(spec_file(tmp_path, SLOW), out, workers=2, progress=False, log=quiet)
    finally:
        done.set()
        watcher.join(10)
    assert killed, "no worker was caught mid-trial"
    assert not result.failed
    name = killed[0][0]
    assert rows(out)[name]["how"] == "resumed"  # continued from its checkpoint, not restarted
    assert outcome(out) == slow_reference


def _cleanup_group(proc: subprocess.Popen) -> None:
    """Stop a process started in its own session, and everything it started (by its group id)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            continue


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_driver_ctrl_c_then_rerun_gives_the_same_results(tmp_path: Path, slow_reference, request) -> None:
    out = tmp_path / "out"
    spec = spec_file(tmp_path, SLOW)
    cmd = [str(BIN / "mlpkit"), "sweep", str(spec), "--out", str(out), "--workers", "2", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    request.addfinalizer(lambda: _cleanup_group(proc))
    deadline = time.monotonic() + TIMEOUT_S
    while not list(out.glob("trials/*/checkpoints/step-*.npz")):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1].startswith("interrupted; continue with the same command")
    deadline = time.monotonic() + 20  # exited workers may wait a moment to be reaped by init
    while _group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _group_alive(proc.pid), "the cluster's processes outlived the driver"
    for trial in (out / "trials").iterdir():
        RunLock(trial).acquire().release()  # nobody writes a trial any more
    assert any(not (t / "metrics.json").exists() for t in (out / "trials").iterdir())  # stopped mid-sweep
    run_sweep(spec, out, workers=2, progress=False, log=quiet)
    assert outcome(out) == slow_reference
    assert "resumed" in {r["how"] for r in rows(out).values()}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(request, *args: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [str(BIN / "dask"), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    request.addfinalizer(lambda: _cleanup_group(proc))
    return proc


def test_a_scheduler_and_two_workers_as_separate_processes(tmp_path: Path, request, fast_sweep: Path) -> None:
    from click.testing import CliRunner
    from distributed import Client

    from mlpkit.cli import main

    address = f"tcp://127.0.0.1:{_free_port()}"
    _start(request, "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1], "--no-dashboard")
    for _ in range(2):
        _start(request, "worker", address, "--host", "127.0.0.1", "--nthreads", "1", "--no-dashboard")
    with Client(address, timeout=60) as client:
        client.wait_for_workers(2, timeout=120)
        assert all(w.startswith("tcp://127.0.0.1:") for w in client.scheduler_info()["workers"])
    out = tmp_path / "out"
    args = ["sweep", str(spec_file(tmp_path, FAST)), "--out", str(out), "--scheduler", address]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "2 Dask workers" in result.output
    with Client(address, timeout=60) as client:
        workers = set(client.scheduler_info()["workers"])
    assert {r["worker"] for r in rows(out).values()} <= workers
    assert outcome(out) == outcome(fast_sweep)


def test_a_failing_trial_is_a_failed_row_and_the_others_finish(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from mlpkit.cli import main

    text = FAST.replace("seeds = [0, 1]", "seeds = [0]").replace("[0.02, 0.05]", "[0.02, 1e6]")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["sweep", str(spec_file(tmp_path, text)), "--out", str(out), "--workers", "1"])
    assert result.exit_code == 1, result.output
    table = rows(out)
    assert table["lr=0.02_seed=0"]["status"] == "done"
    bad = table["lr=1e+06_seed=0"]
    assert bad["status"] == "failed" and bad["error"].startswith("DivergenceError: training diverged")
    assert "1 of 2 trials failed: lr=1e+06_seed=0" in result.output
    assert 'class="off"' in (out / "report.html").read_text()
