"""A clean end for every user-caused failure of the CLI (issue 11): Ctrl-C anywhere exits 130
with one line (the resume hint when there is something to resume), an output folder the system
will not let us write is one ``error:`` line naming the path and the reason, and a full disk at
any write loses nothing: the folder stays resumable and the resumed run is exact.
"""

from __future__ import annotations

import errno
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
from mlpkit.core import fileio
from mlpkit.runs import schema
from mlpkit.runs.completion import IncompleteRunError
from mlpkit.runs.folder import is_empty, load_run
from mlpkit.workflows.configs import resolve_config
from mlpkit.workflows.experiment import run_experiment
from run_files import weights_bytes

#: How a Ctrl-C'd run may end: status 130, or (rarely, on a heavily loaded machine) killed by the
#: SIGINT itself once its one line is printed; a shell reports both as 130. Never a traceback.
INTERRUPTED = (130, -signal.SIGINT)

SMALL = ["epochs=2", "n_train=640", "data.n_val=300", "train.checkpoint_every=1", "train.validations_per_epoch=4"]
TOTAL_STEPS = 2 * (640 // 32)
CLI_SMALL = [a for s in SMALL for a in ("--set", s)] + ["--threads", "1", "--no-progress"]


def invoke(*args: str, mnist_path: Path | None = None):
    return CliRunner().invoke(main, list(args), env={"MLPKIT_DATA": str(mnist_path or "")}, catch_exceptions=False)


def env(mnist_path: Path) -> dict[str, str]:
    return {**os.environ, "MLPKIT_DATA": str(mnist_path), "PYTHONWARNINGS": "ignore"}


@pytest.fixture(scope="module")
def reference(mnist_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("reference") / "run"
    run_experiment(resolve_config("task3c", SMALL), out, data_dir=mnist_path, progress=False, log=lambda *_: None)
    return out


def assert_same_results(run_dir: Path, reference: Path) -> None:
    assert load_run(run_dir).metrics["steps"] == TOTAL_STEPS
    assert weights_bytes(run_dir) == weights_bytes(reference)
    assert (run_dir / schema.HISTORY).read_bytes() == (reference / schema.HISTORY).read_bytes()


# ------------------------------------------------------------------------------ Ctrl-C
# The CLI in a subprocess that presses Ctrl-C (SIGINT to itself) when FUNCTION is called,
# PRESSES times in a row: a moment chosen exactly, whatever the machine's speed.
CTRL_C_AT = """
import importlib, os, signal, sys
target, presses = sys.argv[1], int(sys.argv[2])
module, name = target.rsplit(".", 1)
home = importlib.import_module(module)
original = getattr(home, name)
def pressed(*args, **kwargs):
    for _ in range(presses):
        os.kill(os.getpid(), signal.SIGINT)
    return original(*args, **kwargs)
setattr(home, name, pressed)
from mlpkit.cli import main
main(sys.argv[3:], prog_name="mlpkit")
"""


def ctrl_c_at(target: str, presses: int, *args: str, mnist_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", CTRL_C_AT, target, str(presses), *args],
        env=env(mnist_path),
        capture_output=True,
        text=True,
        timeout=300,
    )


def assert_interrupted(proc: subprocess.CompletedProcess, line: str) -> None:
    assert proc.returncode == 130, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and "Aborted!" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == line, proc.stderr


@pytest.mark.parametrize(
    ("moment", "target"),
    [
        ("start-up", "mlpkit.workflows.experiment.check_experiment"),
        ("data loading", "mlpkit.workflows.experiment_data.load_dataset"),
        ("writing the config", "mlpkit.workflows.experiment.environment_info"),
    ],
)
def test_ctrl_c_before_training_exits_130_and_the_folder_can_be_used_again(
    mnist_path: Path, reference: Path, tmp_path: Path, moment: str, target: str
) -> None:
    out = tmp_path / "run"
    proc = ctrl_c_at(target, 1, "train", "task3c", *CLI_SMALL, "--out", str(out), mnist_path=mnist_path)
    assert_interrupted(proc, "interrupted")
    if (out / schema.CONFIG).exists():  # a run folder without a checkpoint: --resume starts it afresh
        again = invoke("train", "--resume", str(out), mnist_path=mnist_path)
    else:
        assert is_empty(out)
        again = invoke("train", "task3c", *CLI_SMALL, "--out", str(out), mnist_path=mnist_path)
    assert again.exit_code == 0, again.output
    assert_same_results(out, reference)


def test_ctrl_c_during_the_final_writes_waits_for_the_commit(mnist_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = ctrl_c_at(
        "mlpkit.workflows.experiment.save_weights",
        1,
        "train",
        "task3c",
        *CLI_SMALL,
        "--out",
        str(out),
        mnist_path=mnist_path,
    )
    assert_interrupted(proc, f"interrupted after the run was written; {out} is complete")
    assert load_run(out).metrics["steps"] == TOTAL_STEPS


def test_a_second_ctrl_c_during_the_final_writes_leaves_a_resumable_folder(
    mnist_path: Path, reference: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    proc = ctrl_c_at(
        "mlpkit.workflows.experiment.save_weights",
        2,
        "train",
        "task3c",
        *CLI_SMALL,
        "--out",
        str(out),
        mnist_path=mnist_path,
    )
    assert_interrupted(proc, f"interrupted; resume with: mlpkit train --resume {out}")
    with pytest.raises(IncompleteRunError, match="interrupted while writing its results"):
        load_run(out)
    resumed = invoke("train", "--resume", str(out), mnist_path=mnist_path)
    assert resumed.exit_code == 0, resumed.output
    assert_same_results(out, reference)


def test_ctrl_c_while_reproduce_prepares_its_data_exits_130(mnist_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "repro"
    proc = ctrl_c_at(
        "mlpkit.workflows.reproduce.experiment_data",
        1,
        "reproduce",
        "--out",
        str(out),
        "--presets",
        "task3c",
        *CLI_SMALL,
        mnist_path=mnist_path,
    )
    assert_interrupted(proc, f"interrupted; continue with the same command (complete runs in {out} are kept)")


def test_ctrl_c_at_random_moments_of_a_run_always_exits_130_and_resumes_exactly(
    mnist_path: Path, reference: Path, tmp_path: Path
) -> None:
    """A real SIGINT from outside, at moments spread over the run after it was announced."""
    rng = np.random.default_rng(20240612)

    def start(out: Path) -> tuple[subprocess.Popen, float]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlpkit.cli", "train", "task3c", *CLI_SMALL, "--out", str(out)],
            env=env(mnist_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        announced = proc.stdout.readline()
        assert announced.startswith("training task3c"), announced
        return proc, time.monotonic()

    proc, began = start(tmp_path / "timed")  # how long a run lasts after its announcement, here and now
    proc.communicate(timeout=120)
    duration = time.monotonic() - began
    codes = []
    for i, fraction in enumerate(np.sort(rng.uniform(0.0, 0.9, 4))):
        out = tmp_path / f"run{i}"
        proc, began = start(out)
        time.sleep(max(0.0, began + float(fraction) * duration - time.monotonic()))
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
        # 0: it had finished already. -SIGINT: see INTERRUPTED below (a shell shows 130 for both)
        assert proc.returncode in (0, *INTERRUPTED), (proc.returncode, stdout, stderr)
        codes.append(130 if proc.returncode in INTERRUPTED else proc.returncode)
        assert "Traceback" not in stderr and "Aborted!" not in stderr, stderr
        if proc.returncode == 130:
            assert "interrupted" in stdout + stderr
        if not (out / schema.METRICS).exists():
            resumed = invoke("train", "--resume", str(out), mnist_path=mnist_path)
            assert resumed.exit_code == 0, resumed.output
        assert_same_results(out, reference)
    print("exit codes:", codes)
    assert codes.count(130) >= 2, codes

    proc, _ = start(tmp_path / "exiting")  # and as it exits, its work done: never a death by the signal
    while not proc.stdout.readline().startswith("run folder:"):
        assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode in (0, 130) and "Traceback" not in stderr, (proc.returncode, stderr)
    assert_same_results(tmp_path / "exiting", reference)


# -------------------------------------------------------------------- operating-system errors
def _read_only_dir(tmp_path: Path) -> Path:
    if os.geteuid() == 0:  # root may write a chmod-ed folder: use one the kernel refuses
        return Path("/sys/mlpkit-test-run")
    folder = tmp_path / "read-only"
    folder.mkdir(mode=0o500)
    return folder / "run"


@pytest.mark.parametrize(
    ("where", "reason"),
    [
        ("under-a-file", "Not a directory"),
        ("proc", "No such file or directory"),
        ("read-only", None),
    ],
)
def test_an_output_folder_that_cannot_be_written_is_one_error_line(
    mnist_path: Path, tmp_path: Path, where: str, reason: str | None
) -> None:
    (tmp_path / "file").write_text("x")
    out = {
        "under-a-file": tmp_path / "file" / "run",
        "proc": Path(f"/proc/mlpkit-test-{os.getpid()}/run"),
        "read-only": _read_only_dir(tmp_path),
    }[where]
    result = invoke("train", "task3c", *CLI_SMALL, "--out", str(out), mnist_path=mnist_path)
    assert result.exit_code == 2, result.output
    line = result.output.strip().splitlines()[-1]
    assert line.startswith("error: cannot write ") and str(out) in line, result.output
    assert line.endswith(reason or ("Permission denied" if os.geteuid() else "Operation not permitted")), line
    assert "Traceback" not in result.output
    assert (tmp_path / "file").read_text() == "x"


def full_disk(monkeypatch: pytest.MonkeyPatch, refuse) -> None:
    """Make the low-level write of atomic files fail with ENOSPC for temporaries ``refuse(name)`` picks."""
    write = fileio._write_payload

    def payload(fh, data: bytes) -> None:
        if refuse(os.path.basename(os.readlink(f"/proc/self/fd/{fh.fileno()}"))):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        write(fh, data)

    monkeypatch.setattr(fileio, "_write_payload", payload)


def _step(name: str) -> int:
    return int(name.split("-")[1].split(".")[0]) if name.startswith(".step-") else -1


@pytest.mark.parametrize(
    ("phase", "refuse", "named"),
    [
        ("training start", lambda n: n.startswith(f".{schema.CONFIG}."), schema.CONFIG),
        ("checkpointing", lambda n: _step(n) >= 20, "checkpoints/step-000000020.npz"),
        ("final writes", lambda n: n.startswith(f".{schema.WEIGHTS}."), schema.WEIGHTS),
    ],
)
def test_a_full_disk_is_one_error_line_and_loses_nothing(
    mnist_path: Path, reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, phase: str, refuse, named: str
) -> None:
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        full_disk(m, refuse)
        result = invoke("train", "task3c", *CLI_SMALL, "--out", str(out), mnist_path=mnist_path)
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines()[-1] == f"error: cannot write {out / named}: No space left on device"
    assert "Traceback" not in result.output
    assert not list(out.rglob(schema.TEMPORARY_GLOB))
    if phase == "checkpointing":  # the checkpoints before the full disk are intact
        assert sorted(p.name for p in (out / schema.CHECKPOINTS).glob(schema.CHECKPOINT_GLOB))[-1] < "step-000000020"
    if phase == "training start":
        assert not (out / schema.CONFIG).exists()
        again = invoke("train", "task3c", *CLI_SMALL, "--out", str(shutil.rmtree(out) or out), mnist_path=mnist_path)
    else:
        with pytest.raises(IncompleteRunError):
            load_run(out)
        again = invoke("train", "--resume", str(out), mnist_path=mnist_path)
    assert again.exit_code == 0, again.output
    assert_same_results(out, reference)


# ------------------------------------------------------------------------ reproduce --force
def test_reproduce_force_reruns_presets_whose_config_changed(mnist_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "repro"
    base = [
        "reproduce",
        "--out",
        str(out),
        "--presets",
        "task3a",
        "--no-progress",
        "--threads",
        "1",
        "--set",
        "n_train=640",
        "--set",
        "data.n_val=300",
    ]
    first = invoke(*base, "--set", "epochs=1", mnist_path=mnist_path)
    assert first.exit_code == 0, first.output
    refused = invoke(*base, "--set", "epochs=2", mnist_path=mnist_path)
    assert refused.exit_code == 2 and "train.epochs: 1 -> 2" in refused.output and "--force" in refused.output
    assert tomllib.loads((out / "task3a" / schema.CONFIG).read_text())["train"]["epochs"] == 1
    forced = invoke(*base, "--set", "epochs=2", "--force", mnist_path=mnist_path)
    assert forced.exit_code == 0, forced.output
    assert "[task3a] replacing the run made with another config" in forced.output
    assert tomllib.loads((out / "task3a" / schema.CONFIG).read_text())["train"]["epochs"] == 2
    assert load_run(out / "task3a").metrics["epochs_completed"] == 2
    assert "Rerun presets whose config changed" in invoke("reproduce", "--help").output


def test_ctrl_c_while_the_command_is_still_importing_exits_130_with_one_line() -> None:
    """The entry point (mlpkit.__main__) owns Ctrl-C from its first line, before NumPy and click load."""
    import signal
    import subprocess
    import time

    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    for delay in (0.1, 0.2, 0.3, 0.45):
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlpkit", "presets"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert "Traceback" not in err, (delay, err)
        # either the signal came while starting or running (130, one line) or after the command finished (0)
        assert proc.returncode in (0, *INTERRUPTED), (delay, proc.returncode, err)
        if proc.returncode in INTERRUPTED:
            assert err.strip().splitlines()[-1].startswith("interrupted"), err


def _wrapped_interrupt() -> list[str]:
    """What dataclasses does with a Ctrl-C that lands while it builds a class: re-raise it as a
    RuntimeError caused by the KeyboardInterrupt (seen in CI on a lazy import)."""
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt as exc:
        raise RuntimeError("Error calling __set_name__ on 'Field' instance 'model' in 'Config'") from exc


@pytest.mark.parametrize("chain", ["cause", "context"])
def test_ctrl_c_that_comes_back_as_another_error_still_exits_130_with_one_line(
    chain: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlpkit.workflows.configs as configs

    def interrupted_inside_a_library() -> list[str]:
        if chain == "cause":
            _wrapped_interrupt()
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise ValueError("raised while handling the interrupt")  # noqa: B904 (context only)

    monkeypatch.setattr(configs, "preset_names", interrupted_inside_a_library)
    result = CliRunner().invoke(main, ["presets"], catch_exceptions=False)
    assert result.exit_code == 130
    assert result.output.strip() == "interrupted"


def test_an_error_not_caused_by_ctrl_c_is_not_taken_for_one(monkeypatch: pytest.MonkeyPatch) -> None:
    import mlpkit.workflows.configs as configs

    def broken() -> list[str]:
        raise RuntimeError("a real bug")

    monkeypatch.setattr(configs, "preset_names", broken)
    with pytest.raises(RuntimeError, match="a real bug"):
        CliRunner().invoke(main, ["presets"], catch_exceptions=False)
