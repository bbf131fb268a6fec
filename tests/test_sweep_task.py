"""The Dask task of one trial, run in this process: it waits for a live holder of its folder (never
two writers), resumes what a killed task left, keeps what is finished; and one driver per sweep."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from mlpkit.runs.config import to_toml
from mlpkit.runs.lock import RunFolderBusyError, RunLock
from mlpkit.workflows.configs import resolve_config
from mlpkit.workflows.sweep.driver import run_sweep
from mlpkit.workflows.sweep.task import run_trial

CONFIG = to_toml(resolve_config("task3c", ["data.dataset=digits", "epochs=1", "hidden=[16]"]))


def test_a_live_holder_is_waited_for_then_the_trial_runs(tmp_path: Path) -> None:
    run_dir = tmp_path / "trial"
    lock = RunLock(run_dir).acquire()  # another live writer
    released = []

    def release() -> None:
        time.sleep(1.0)
        released.append(time.monotonic())
        lock.release()

    threading.Thread(target=release, daemon=True).start()
    result = run_trial("t", CONFIG, str(run_dir), lock_wait_s=60)
    assert released and result["status"] == "ran" and result["worker"] == "local"
    assert result["task_time_s"] >= 1.0  # it waited for the holder
    assert json.loads((run_dir / "metrics.json").read_text())["steps"] > 0
    again = run_trial("t", CONFIG, str(run_dir))
    assert again["status"] == "kept"


def test_a_holder_that_stays_is_an_error_after_the_wait(tmp_path: Path) -> None:
    run_dir = tmp_path / "trial"
    with RunLock(run_dir), pytest.raises(RunFolderBusyError):
        run_trial("t", CONFIG, str(run_dir), lock_wait_s=0.5)
    assert not (run_dir / "config.toml").exists()  # nothing written beside the holder


def test_a_partial_trial_is_resumed(tmp_path: Path) -> None:
    full, partial = tmp_path / "full", tmp_path / "partial"
    run_trial("t", CONFIG, str(full))
    run_trial("t", CONFIG, str(partial))
    (partial / "metrics.json").unlink()  # as if killed before committing: checkpoints remain
    assert run_trial("t", CONFIG, str(partial))["status"] == "resumed"
    assert (partial / "weights.npz").read_bytes() == (full / "weights.npz").read_bytes()


def test_one_driver_per_sweep_folder(tmp_path: Path) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text('preset = "task3c"\n[set]\n"data.dataset" = "digits"\n', encoding="utf-8")
    with RunLock(tmp_path / "out"), pytest.raises(RunFolderBusyError):
        run_sweep(spec, tmp_path / "out", progress=False, log=lambda line: None)
