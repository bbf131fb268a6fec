"""Exact resume: a run killed with SIGKILL at random moments and resumed each time ends with
the same weights and history, bit for bit, as a run that was never interrupted; and no file
under its final name is ever partial. Also: Ctrl-C, a corrupt latest checkpoint, and a run
that early-stopped. Everything goes through ``mlpkit train`` in a subprocess, as a user would.
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

from mlpkit.train.checkpoint import load_checkpoint
from run_files import assert_same_run, weights_bytes

REPO = Path(__file__).resolve().parents[1]
SEED = 20240607  # drives the kill moments
TINY = [
    "--set",
    "n_train=2000",
    "--set",
    "data.n_val=1000",
    "--set",
    "epochs=3",
    "--set",
    "train.checkpoint_every=1",
    "--set",
    "train.validations_per_epoch=5",
    "--threads",
    "1",
    "--no-progress",
]
STEPS_PER_EPOCH = 2000 // 32
TOTAL_STEPS = 3 * STEPS_PER_EPOCH  # 186
VALIDATION_STEPS = list(range(STEPS_PER_EPOCH // 5, TOTAL_STEPS + 1, STEPS_PER_EPOCH // 5))


_MNIST: list[Path] = []  # the real MNIST folder, from the mnist_path fixture (conftest.py)


@pytest.fixture(scope="module", autouse=True)
def _real_mnist(mnist_path: Path) -> None:
    """Every test here runs the CLI on real MNIST."""
    _MNIST[:] = [mnist_path]


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "mlpkit.cli", "train", *args]


def env() -> dict[str, str]:
    return {**os.environ, "MLPKIT_DATA": str(_MNIST[0]), "PYTHONWARNINGS": "ignore"}


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(cli(*args), env=env(), capture_output=True, text=True, timeout=300)


def final_files(run_dir: Path) -> list[Path]:
    return [p for p in run_dir.rglob("*") if p.is_file() and not p.name.startswith(".")]


def assert_no_partial_file(run_dir: Path) -> None:
    """Every file under a final name is complete: it parses."""
    for p in final_files(run_dir):
        data = p.read_bytes()
        if p.suffix == ".npz":
            if p.parent.name == "checkpoints":
                load_checkpoint(p)
            else:
                with np.load(p, allow_pickle=False) as archive:
                    for k in archive.files:
                        archive[k]
        elif p.suffix == ".json":
            json.loads(data)
        elif p.suffix == ".toml":
            tomllib.loads(data.decode())
        elif p.suffix == ".png":
            assert data.startswith(b"\x89PNG") and data.endswith(b"IEND\xaeB`\x82"), p
        elif p.suffix == ".svg":
            assert data.rstrip().endswith(b"</svg>"), p
        elif p.suffix == ".safetensors":
            from mlpkit.runs.model_file import load_model

            load_model(p)
        else:
            assert p.name.endswith(".corrupt"), f"unexpected file {p}"


def checkpoint_steps(run_dir: Path) -> set[int]:
    return {int(p.stem.split("-")[1]) for p in (run_dir / "checkpoints").glob("step-*.npz")}


#: Issue 13's options, all at once: their states (Adam's moments, the schedule, the dropout
#: masks' generator, the augmentation's epoch) must resume as exactly as the seed's SGD.
MODERN = [
    *TINY,
    *("--set", "train.optimizer=adam", "--set", "train.momentum=0", "--set", "train.learning_rate=0.002"),
    *("--set", "train.schedule=cosine_warmup", "--set", "train.warmup_epochs=0.5", "--set", "model.dropout_hidden=0.2"),
    *("--set", "train.label_smoothing=0.1", "--set", "train.clip_norm=5", "--set", "model.max_norm=3"),
    *("--set", "data.augment=affine+elastic"),
]
#: GELU has no compiled kernel (the NumPy engine runs the options); ReLU runs them compiled.
MODERN_ENGINES = {"gelu": "numpy", "relu": "compiled"}


@pytest.fixture(scope="module")
def reference(tmp_path_factory, _real_mnist: None) -> tuple[Path, dict[str, float]]:
    """One uninterrupted run, with the moments (s after start) its phases began."""
    out = tmp_path_factory.mktemp("reference") / "run"
    start = time.perf_counter()
    proc = subprocess.Popen(cli("task3c", *TINY, "--out", str(out)), env=env(), stdout=subprocess.DEVNULL)
    marks: dict[str, float] = {}
    while proc.poll() is None:
        now = time.perf_counter() - start
        if "checkpoint" not in marks and (out / "checkpoints").exists() and checkpoint_steps(out):
            marks["checkpoint"] = now
        if "history" not in marks and (out / "history.json").exists():
            marks["history"] = now
        time.sleep(0.005)
    marks["end"] = time.perf_counter() - start
    assert proc.returncode == 0
    assert max(checkpoint_steps(out)) == TOTAL_STEPS
    return out, marks


class Killer:
    """Starts ``mlpkit train`` and SIGKILLs it when a condition holds (or lets it finish)."""

    def __init__(self, run_dir: Path, rng: np.random.Generator, recipe: list[str] = TINY) -> None:
        self.run_dir, self.rng, self.recipe = run_dir, rng, recipe
        self.log: list[str] = []
        self.temporaries_seen = 0

    def start(self) -> subprocess.Popen:
        args = (
            ("--resume", str(self.run_dir))
            if (self.run_dir / "config.toml").exists()
            else ("task3c", *self.recipe, "--out", str(self.run_dir))
        )
        return subprocess.Popen(cli(*args), env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def kill_when(self, proc: subprocess.Popen, condition, *, extra_delay: float) -> bool:
        """SIGKILL once ``condition()`` holds plus ``extra_delay`` s; False if it finished first."""
        deadline = time.monotonic() + 120
        while proc.poll() is None and not condition():
            assert time.monotonic() < deadline, "training made no progress"
            time.sleep(0.002)
        time.sleep(extra_delay)
        if proc.poll() is not None:
            self.log.append(f"finished before the kill: {proc.communicate()[0].strip().splitlines()[-1:]}")
            return False
        proc.send_signal(signal.SIGKILL)
        out = proc.communicate()[0]
        assert proc.returncode == -signal.SIGKILL
        stepped = sorted(checkpoint_steps(self.run_dir)) if (self.run_dir / "checkpoints").exists() else []
        tmp = [p.name for p in self.run_dir.rglob(".*.tmp")]
        self.temporaries_seen += bool(tmp)
        self.log.append(f"killed; checkpoints {stepped}; temporaries {tmp}; output {out.strip().splitlines()[-1:]}")
        if self.run_dir.exists():
            assert_no_partial_file(self.run_dir)
        return True


def test_sigkill_at_random_moments_then_resume_is_bit_identical(reference, tmp_path: Path) -> None:
    ref, marks = reference
    rng = np.random.default_rng(SEED)
    run_dir = tmp_path / "killed"
    k = Killer(run_dir, rng)
    kills = 0

    # 1. around the first checkpoint: the next start may find a run folder with none yet
    kills += k.kill_when(k.start(), lambda: (run_dir / "config.toml").exists(), extra_delay=float(rng.uniform(0, 0.02)))
    # 2-5. during training: right after a randomly chosen checkpoint, plus up to one step or so
    for target in sorted(rng.choice(VALIDATION_STEPS[:-2], size=4, replace=False)):
        before = set(checkpoint_steps(run_dir)) if (run_dir / "checkpoints").exists() else set()

        def reached(target=target, before=before):
            now = checkpoint_steps(run_dir) if (run_dir / "checkpoints").exists() else set()
            return any(s >= target for s in now - before)

        kills += k.kill_when(k.start(), reached, extra_delay=float(rng.uniform(0.0, 0.03)))
    # 6. after training, while the outputs and figures are written
    kills += k.kill_when(
        k.start(),
        lambda: (run_dir / "history.json").exists(),
        extra_delay=float(rng.uniform(0.0, marks["end"] - marks["history"])),
    )
    # then resume until it completes
    for _ in range(3):
        done = k.start()
        out = done.communicate(timeout=300)[0]
        if done.returncode == 0:
            break
        k.log.append(f"exit {done.returncode}: {out}")
    else:
        pytest.fail("resuming never completed:\n" + "\n".join(k.log))
    print("\n".join(k.log), f"\nkills: {kills}, with a temporary file present: {k.temporaries_seen}")
    assert kills >= 4, k.log
    assert_no_partial_file(run_dir)
    assert not list(run_dir.rglob(".*.tmp"))
    assert not (run_dir / "metrics.partial.json").exists()
    assert_same_run(ref, run_dir)


@pytest.mark.parametrize("activation", list(MODERN_ENGINES))
def test_sigkill_then_resume_is_bit_identical_with_modern_options(tmp_path: Path, activation: str) -> None:
    """Adam, a cosine schedule, dropout, label smoothing, clipping, max-norm, on-the-fly augmentation
    and GELU (the NumPy engine) or ReLU (compiled): killed after random checkpoints and resumed, the
    run ends as the uninterrupted one."""
    modern = [*MODERN, "--set", f"model.activation={activation}"]
    ref = tmp_path / "reference"
    assert run("task3c", *modern, "--out", str(ref)).returncode == 0
    metrics = json.loads((ref / "metrics.json").read_text())
    assert metrics["engine"] == MODERN_ENGINES[activation]
    assert (metrics["engine_fallback_reason"] is None) == (activation == "relu")
    rng = np.random.default_rng(SEED + 13)
    run_dir = tmp_path / "killed"
    k = Killer(run_dir, rng, modern)
    kills = 0
    for target in sorted(rng.choice(VALIDATION_STEPS[:-2], size=3, replace=False)):
        before = set(checkpoint_steps(run_dir)) if (run_dir / "checkpoints").exists() else set()

        def reached(target=target, before=before):
            now = checkpoint_steps(run_dir) if (run_dir / "checkpoints").exists() else set()
            return any(s >= target for s in now - before)

        kills += k.kill_when(k.start(), reached, extra_delay=float(rng.uniform(0.0, 0.03)))
    done = k.start()
    out = done.communicate(timeout=300)[0]
    assert done.returncode == 0, out
    assert kills >= 2, k.log
    assert_same_run(ref, run_dir)


def test_corrupt_latest_checkpoint_falls_back_with_a_warning(reference, tmp_path: Path) -> None:
    ref, _ = reference
    run_dir = tmp_path / "run"
    shutil.copytree(ref, run_dir)
    for name in ("weights.npz", "metrics.json", "predictions.npz", "history.json"):
        (run_dir / name).unlink()
    latest = run_dir / "checkpoints" / f"step-{TOTAL_STEPS:09d}.npz"
    blob = latest.read_bytes()
    latest.write_bytes(blob[: len(blob) // 2])  # as if a disk lost its tail
    proc = run("--resume", str(run_dir))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "warning: skipping unreadable checkpoint" in proc.stdout
    assert f"step-{TOTAL_STEPS:09d}.npz" in proc.stdout and f"(step {VALIDATION_STEPS[-1]})" in proc.stdout
    assert (run_dir / "checkpoints" / f"step-{TOTAL_STEPS:09d}.npz.corrupt").exists()
    assert_same_run(ref, run_dir)


def test_every_checkpoint_corrupt_is_a_clear_error(reference, tmp_path: Path) -> None:
    ref, _ = reference
    run_dir = tmp_path / "run"
    shutil.copytree(ref, run_dir)
    for p in (run_dir / "checkpoints").glob("step-*.npz"):
        p.write_bytes(b"garbage")
    proc = run("--resume", str(run_dir))
    assert proc.returncode == 2
    assert "error: every checkpoint" in proc.stderr and "Traceback" not in proc.stderr


def test_ctrl_c_leaves_a_resumable_folder_and_resume_is_exact(reference, tmp_path: Path) -> None:
    ref, _ = reference
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        cli("task3c", *TINY, "--out", str(run_dir)),
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not ((run_dir / "checkpoints").exists() and any(s >= 60 for s in checkpoint_steps(run_dir))):
        assert proc.poll() is None and time.monotonic() < deadline, "training ended before the interrupt"
        time.sleep(0.002)
    time.sleep(0.01)  # somewhere inside a step
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, out + err
    assert "interrupted at step" in out and f"mlpkit train --resume {run_dir}" in out
    assert "Traceback" not in err
    step = int(out.split("interrupted at step ")[1].split(";")[0])
    assert 60 <= step < TOTAL_STEPS
    assert step in checkpoint_steps(run_dir)
    assert json.loads((run_dir / "metrics.partial.json").read_text())["interrupted"] is True
    assert len(json.loads((run_dir / "history.json").read_text())["train"]["loss"]) == step
    assert_no_partial_file(run_dir)

    resumed = run("--resume", str(run_dir))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"(step {step})" in resumed.stdout
    assert not (run_dir / "metrics.partial.json").exists()
    assert_same_run(ref, run_dir)


def test_resuming_an_early_stopped_run_stays_stopped(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    args = [
        "task3c",
        "--set",
        "n_train=1000",
        "--set",
        "data.n_val=500",
        "--set",
        "epochs=20",
        "--set",
        "train.early_stopping_patience=2",
        "--set",
        "train.early_stopping_min_delta=1.0",
        "--set",
        "train.restore_best_weights=true",
        "--threads",
        "1",
        "--no-progress",
        "--out",
        str(run_dir),
    ]
    first = run(*args)
    assert first.returncode == 0, first.stdout + first.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["early_stop_step"] is not None and metrics["steps"] < 20 * (1000 // 32)
    before = weights_bytes(run_dir), (run_dir / "history.json").read_bytes()

    again = run("--resume", str(run_dir))
    assert again.returncode == 0, again.stdout + again.stderr
    after = json.loads((run_dir / "metrics.json").read_text())
    assert after["steps"] == metrics["steps"] and after["early_stop_step"] == metrics["early_stop_step"]
    assert (weights_bytes(run_dir), (run_dir / "history.json").read_bytes()) == before


def test_resume_of_a_folder_that_is_not_a_run_is_a_clear_error(tmp_path: Path) -> None:
    proc = run("--resume", str(tmp_path))
    assert proc.returncode == 2 and "error:" in proc.stderr and "not a run folder" in proc.stderr
    proc = run("task3c", "--resume", str(tmp_path))
    assert proc.returncode == 2 and "do not give a preset" in proc.stderr


WRITER = """
import sys, numpy as np
from mlpkit.core.fileio import atomic_save_npz
path = sys.argv[1]
versions = [{"x": np.full(1_000_000, v, dtype=np.float64), "tag": np.array([v])} for v in (0, 1)]
for i in range(10**6):
    atomic_save_npz(path, versions[i % 2])
"""
WRITER_KILLS = 12


def test_sigkill_during_atomic_writes_never_leaves_a_partial_file(tmp_path: Path) -> None:
    """A process rewriting an 8 MB file in a loop is killed, half the time at a random moment,
    half the time as soon as its temporary file is seen (so surely in the middle of a write):
    the final name always holds one complete version (it loads; all values equal its tag)."""
    rng = np.random.default_rng(SEED + 1)
    path = tmp_path / "data.npz"
    mid_write = 0
    for i in range(WRITER_KILLS):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], env=env())
        deadline = time.monotonic() + 60
        while not path.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.002)
        if i % 2:
            while not list(tmp_path.glob(".*.tmp")):
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.0005)
            time.sleep(float(rng.uniform(0.0, 0.005)))
        else:
            time.sleep(float(rng.uniform(0.0, 0.2)))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        mid_write += bool(list(tmp_path.glob(".*.tmp")))
        with np.load(path, allow_pickle=False) as archive:
            x, tag = archive["x"], archive["tag"]
        assert x.shape == (1_000_000,) and np.all(x == tag[0])
        for tmp in tmp_path.glob(".*.tmp"):
            tmp.unlink()
    print(f"killed {WRITER_KILLS} writers; {mid_write} with a temporary file present")
    assert mid_write >= WRITER_KILLS // 4
