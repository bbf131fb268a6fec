"""One writer per run folder, and a finished folder is really finished (issue 11).

Two trainings into one folder never mix it (the second is refused, naming the first); a
resumed run's results are committed as one unit, so a crash or SIGKILL anywhere in its final
writes leaves either the committed unit or a folder that reads as incomplete, and
``--resume`` then finishes it exactly.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mlpkit.cli import main
from mlpkit.runs import schema
from mlpkit.runs.completion import IncompleteRunError
from mlpkit.runs.folder import is_empty, load_run
from mlpkit.runs.lock import RunLock
from mlpkit.train.callbacks import Checkpointer
from mlpkit.workflows.configs import resolve_config
from mlpkit.workflows.experiment import resume_experiment, run_experiment

SMALL = ["epochs=2", "n_train=640", "data.n_val=300", "train.checkpoint_every=1", "train.validations_per_epoch=4"]
TOTAL_STEPS = 2 * (640 // 32)
CLI_SMALL = [a for s in SMALL for a in ("--set", s)] + ["--threads", "1", "--no-progress"]
QUIET = {"progress": False, "log": lambda *_: None}


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "mlpkit.cli", *args]


def env(mnist_path: Path) -> dict[str, str]:
    return {**os.environ, "MLPKIT_DATA": str(mnist_path), "PYTHONWARNINGS": "ignore"}


def invoke(*args: str, mnist_path: Path | None = None):
    return CliRunner().invoke(main, list(args), env={"MLPKIT_DATA": str(mnist_path or "")}, catch_exceptions=False)


def weights_bytes(run_dir: Path) -> dict[str, bytes]:
    with np.load(run_dir / schema.WEIGHTS, allow_pickle=False) as archive:
        return {k: archive[k].tobytes() for k in archive.files}


@pytest.fixture(scope="module")
def reference(mnist_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted run of the small config."""
    out = tmp_path_factory.mktemp("reference") / "run"
    run_experiment(resolve_config("task3c", SMALL), out, data_dir=mnist_path, **QUIET)
    return out


@pytest.fixture(scope="module")
def interrupted(mnist_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small config stopped by Ctrl-C at step 10 (its partial results written, as the CLI leaves them)."""
    out = tmp_path_factory.mktemp("interrupted") / "run"

    class CtrlC(Checkpointer):  # one Ctrl-C right after the checkpoint of step 10
        pressed = False

        def _save(self, trainer):
            super()._save(trainer)
            if trainer.state.step == 10 and not CtrlC.pressed:
                CtrlC.pressed = True
                os.kill(os.getpid(), signal.SIGINT)

    mp = pytest.MonkeyPatch()
    mp.setattr("mlpkit.workflows.experiment.Checkpointer", CtrlC)
    try:
        result = run_experiment(resolve_config("task3c", SMALL), out, data_dir=mnist_path, **QUIET)
    finally:
        mp.undo()
    assert result.interrupted and result.metrics["steps"] == 10
    assert (out / schema.METRICS_PARTIAL).exists() and not (out / schema.METRICS).exists()
    return out


# ---------------------------------------------------------------------------- the lock
def test_two_trainings_started_together_never_mix_a_folder(mnist_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "C"
    procs = [
        subprocess.Popen(
            cli("train", "task3c", *CLI_SMALL, "--set", f"seed={seed}", "--out", str(out)),
            env=env(mnist_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in (1, 2)
    ]
    results = [(p, *p.communicate(timeout=300)) for p in procs]
    codes = sorted(p.returncode for p, _, _ in results)
    assert codes == [0, 2], [(p.returncode, o, e) for p, o, e in results]
    winner = next(i for i, (p, _, _) in enumerate(results) if p.returncode == 0)
    loser_err = results[1 - winner][2]
    assert loser_err.startswith("error: ") and "Traceback" not in loser_err
    # "process N on HOST" once the winner has written its details; "another process" if the
    # refusal fell in the instant between the winner's flock and that write.
    assert "is in use by" in loser_err or "already exists and is not empty" in loser_err, loser_err
    # one run's files only: config, weights' own config, and metrics (checksums) agree
    seed = (1, 2)[winner]
    assert tomllib.loads((out / schema.CONFIG).read_text())["seed"] == seed
    run = load_run(out)  # verifies history, weights and predictions against metrics.json
    assert run.metrics["steps"] == TOTAL_STEPS
    alone = tmp_path / "alone"  # the winner's run, trained alone: the folder holds exactly its files
    run_experiment(resolve_config("task3c", [*SMALL, f"seed={seed}"]), alone, data_dir=mnist_path, **QUIET)
    for name in schema.COMMITTED:
        assert (out / name).read_bytes() == (alone / name).read_bytes(), name
    print("refused:", loser_err.strip())


def test_a_writer_is_refused_while_another_process_holds_the_folder(
    mnist_path: Path, reference: Path, tmp_path: Path
) -> None:
    new, done, repro = tmp_path / "new", tmp_path / "done", tmp_path / "repro"
    shutil.copytree(reference, done)
    before = {p: p.read_bytes() for p in done.rglob("*") if p.is_file() and p.name != schema.LOCK}
    for folder, args in (
        (new, ["train", "task3c", *CLI_SMALL, "--out", str(new)]),
        (done, ["train", "--resume", str(done)]),
        (repro, ["reproduce", "--out", str(repro), "--presets", "task3c", "--set", "epochs=1", "--no-progress"]),
    ):
        with RunLock(folder):
            result = invoke(*args, mnist_path=mnist_path)
        assert result.exit_code == 2, result.output
        assert f"run folder {folder} is in use by process {os.getpid()}" in result.output
        assert "Traceback" not in result.output
    assert is_empty(new) and is_empty(repro)  # nothing but the lock file
    assert {p: p.read_bytes() for p in done.rglob("*") if p.is_file() and p.name != schema.LOCK} == before


def test_a_left_over_lock_file_does_not_make_a_folder_busy_or_non_empty(mnist_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    RunLock(out).acquire().release()  # as a killed writer leaves it: the file, no lock
    assert (out / schema.LOCK).exists() and is_empty(out)
    result = invoke("train", "task3c", *CLI_SMALL, "--out", str(out), mnist_path=mnist_path)
    assert result.exit_code == 0, result.output
    assert load_run(out).metrics["steps"] == TOTAL_STEPS


# ------------------------------------------------------------ the results as one unit
@pytest.mark.parametrize(
    "crash_in", ["save_weights", "save_predictions", "save_run_model", "run_figures", "commit_results"]
)
def test_a_crash_between_the_final_writes_leaves_an_incomplete_folder_that_resume_finishes(
    mnist_path: Path,
    interrupted: Path,
    reference: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    crash_in: str,
) -> None:
    """The issue's case: Ctrl-C, --resume, then a crash while the resumed run writes its results.
    Before, metrics.json (written first) said "complete" beside weights from step 10."""
    run_dir = Path(shutil.copytree(interrupted, tmp_path / "run"))

    def crash(*args, **kwargs):
        raise RuntimeError("simulated crash")

    with monkeypatch.context() as m:
        m.setattr(f"mlpkit.workflows.experiment.{crash_in}", crash)
        with pytest.raises(RuntimeError, match="simulated crash"):
            resume_experiment(run_dir, data_dir=mnist_path, **QUIET)
    assert not (run_dir / schema.METRICS).exists() and not (run_dir / schema.METRICS_PARTIAL).exists()
    with pytest.raises(IncompleteRunError, match=rf"interrupted while writing its results.*--resume {run_dir}$"):
        load_run(run_dir)
    report = invoke("report", str(run_dir), "-o", str(tmp_path / "r.html"))
    assert report.exit_code == 2 and report.output.count("\n") == 1, report.output
    assert report.output.startswith(f"error: run folder {run_dir} is incomplete") and "--resume" in report.output
    assert not (tmp_path / "r.html").exists()

    resume_experiment(run_dir, data_dir=mnist_path, **QUIET)
    assert load_run(run_dir).metrics["steps"] == TOTAL_STEPS
    assert weights_bytes(run_dir) == weights_bytes(reference)
    assert (run_dir / schema.HISTORY).read_bytes() == (reference / schema.HISTORY).read_bytes()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / schema.METRICS).unlink(), "interrupted while writing its results: missing metrics.json"),
        (lambda d: shutil.copy(d / schema.WEIGHTS, d / "w"), None),  # no change: still complete
        (lambda d: _replace_weights_with_an_older_step(d), "weights.npz does not match the checksum"),
        (lambda d: (d / schema.PREDICTIONS).unlink(), "predictions.npz missing"),
        (lambda d: _drop_checksums(d), "metrics.json records no checksums"),
        (lambda d: (d / schema.METRICS).rename(d / schema.METRICS_PARTIAL), "was stopped by Ctrl-C"),
    ],
)
def test_load_run_accepts_only_the_committed_unit(reference: Path, tmp_path: Path, damage, message) -> None:
    run_dir = Path(shutil.copytree(reference, tmp_path / "run"))
    damage(run_dir)
    if message is None:
        assert load_run(run_dir).metrics["steps"] == TOTAL_STEPS
        return
    with pytest.raises(IncompleteRunError, match=message) as info:
        load_run(run_dir)
    assert str(info.value).endswith(f"finish it with: mlpkit train --resume {run_dir}")


def _replace_weights_with_an_older_step(run_dir: Path) -> None:
    """A whole weights file of another step: what an interrupted commit used to leave."""
    from mlpkit.core.fileio import atomic_save_npz

    with np.load(run_dir / schema.WEIGHTS, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    arrays["layers.0.weight"] = arrays["layers.0.weight"] * 0.5
    atomic_save_npz(run_dir / schema.WEIGHTS, arrays)


def _drop_checksums(run_dir: Path) -> None:
    metrics = json.loads((run_dir / schema.METRICS).read_text())
    del metrics[schema.CHECKSUMS]
    (run_dir / schema.METRICS).write_text(json.dumps(metrics))


def test_equal_runs_write_equal_result_files(reference: Path, mnist_path: Path, tmp_path: Path) -> None:
    """The .npz files carry no time stamp, so a resumed run's checksums equal an uninterrupted one's."""
    again = tmp_path / "again"
    run_experiment(resolve_config("task3c", SMALL), again, data_dir=mnist_path, **QUIET)
    for name in schema.COMMITTED:
        assert (again / name).read_bytes() == (reference / name).read_bytes(), name
    sums = [json.loads((d / schema.METRICS).read_text())[schema.CHECKSUMS] for d in (reference, again)]
    assert sums[0] == sums[1] and set(sums[0]) == set(schema.COMMITTED)


SIGKILLS = 8
SEED = 20240611


def test_sigkill_anywhere_in_a_resumed_runs_final_writes(
    mnist_path: Path, interrupted: Path, reference: Path, tmp_path: Path
) -> None:
    """SIGKILL at random moments after the resumed run began its final writes (its marker
    withdrawn): the folder reads as the committed unit or as incomplete, never a mix; each
    killed folder is then finished by --resume, bit-identical to the uninterrupted run."""
    rng = np.random.default_rng(SEED)
    outcomes = {"incomplete": 0, "complete": 0}
    for i in range(SIGKILLS):
        run_dir = Path(shutil.copytree(interrupted, tmp_path / f"run{i}"))
        proc = subprocess.Popen(
            cli("train", "--resume", str(run_dir)),
            env=env(mnist_path),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while (run_dir / schema.METRICS_PARTIAL).exists() and proc.poll() is None:  # final writes not begun
            assert time.monotonic() < deadline, "the resumed run never reached its final writes"
            time.sleep(0.001)
        time.sleep(float(rng.uniform(0.0, 1.5)) * (i / SIGKILLS))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        try:
            run = load_run(run_dir)
        except IncompleteRunError as exc:
            assert f"--resume {run_dir}" in str(exc)
            outcomes["incomplete"] += 1
            finish = subprocess.run(
                cli("train", "--resume", str(run_dir)), env=env(mnist_path), capture_output=True, text=True, timeout=300
            )
            assert finish.returncode == 0, finish.stdout + finish.stderr
            run = load_run(run_dir)
        else:
            outcomes["complete"] += 1
        assert run.metrics["steps"] == TOTAL_STEPS
        assert weights_bytes(run_dir) == weights_bytes(reference)
        assert (run_dir / schema.HISTORY).read_bytes() == (reference / schema.HISTORY).read_bytes()
    print(outcomes)
    assert outcomes["incomplete"] >= SIGKILLS // 4, outcomes
