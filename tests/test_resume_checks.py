"""A resumed run never trusts what it reads (issue 11): through ``mlpkit train --resume`` on a
tiny real-MNIST run, a config edited since the checkpoint is refused by key (only the safe keys
may change: ``--set epochs=3`` extends a run bit-identically), every tampered checkpoint is set
aside with a warning and the previous one used, and a folder whose checkpoints were all set
aside is refused rather than restarted.
"""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import numpy as np
import pytest
import tomli_w
from click.testing import CliRunner, Result

from mlpkit.cli import main
from mlpkit.nn.mlp import MLP
from mlpkit.optim.sgd import SGD
from mlpkit.runs.checkpoints import RUN_CONFIG_KEY, last_good_checkpoint
from mlpkit.train.callbacks import Checkpointer
from mlpkit.train.checkpoint import load_checkpoint, save_checkpoint
from mlpkit.train.trainer import Trainer
from run_files import assert_same_run, weights_bytes

TINY = [
    "--set",
    "n_train=2000",
    "--set",
    "data.n_val=1000",
    "--set",
    "train.checkpoint_every=1",
    "--threads",
    "1",
    "--no-progress",
]
SPE = 2000 // 32  # 62 steps an epoch; validations every 12 steps, a checkpoint at each
MID = 120  # the newest checkpoint of an epochs=2 run before its final one (step 124): mid-epoch
FINAL_FILES = ("weights.npz", "metrics.json", "predictions.npz", "history.json", "environment.json")
_DATA: list[str] = []


def train(*args: str | Path) -> Result:
    return CliRunner().invoke(main, ["train", *map(str, args), "--data-dir", _DATA[0]])


def shown(result: Result) -> str:
    return f"exit {result.exit_code}\n{result.output}\n{result.exception!r}"


def ckpt(step: int) -> str:
    return f"step-{step:09d}.npz"


@pytest.fixture(scope="module")
def runs(tmp_path_factory, mnist_path: Path) -> dict[str, Path]:
    """Finished runs: 2 and 3 epochs of the same config, and 1 epoch on 1,000 samples."""
    _DATA[:] = [str(mnist_path)]
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for name, extra in {
        "two": ["--set", "epochs=2"],
        "three": ["--set", "epochs=3"],
        "small": ["--set", "epochs=1", "--set", "n_train=1000"],
    }.items():
        result = train("task3c", *TINY, *extra, "--out", root / name)
        assert result.exit_code == 0, shown(result)
        out[name] = root / name
    return out


def interrupted(run: Path, tmp_path: Path) -> Path:
    """A copy of ``run`` as if it had been killed just after its checkpoint at step MID."""
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    for name in FINAL_FILES:
        (copy / name).unlink()
    shutil.rmtree(copy / "figures")
    (copy / "checkpoints" / ckpt(2 * SPE)).unlink()
    assert sorted(p.name for p in (copy / "checkpoints").iterdir()) == [ckpt(MID)]
    return copy


def edit_config(run_dir: Path, section: str, key: str, value) -> bytes:
    path = run_dir / "config.toml"
    cfg = tomllib.loads(path.read_text())
    cfg[section][key] = value
    path.write_text(tomli_w.dumps(cfg))
    return path.read_bytes()


# ------------------------------------------------------------------ item 1: config edits
CONFIG_EDITS = {  # the reliability review: segfault, ValueError, IndexError, or applied silently
    "n_train": [("data", "n_train", 5000)],
    "batch_size": [("train", "batch_size", 64)],
    "n_train with engine numpy": [("data", "n_train", 5000), ("train", "engine", "numpy")],
    "learning_rate": [("train", "learning_rate", 0.03)],
    "dtype": [("train", "dtype", "float64")],
    "shuffle": [("data", "shuffle", False)],
    "engine": [("train", "engine", "numpy")],
}


@pytest.mark.parametrize("case", sorted(CONFIG_EDITS))
def test_resume_refuses_a_config_edited_since_the_checkpoint(runs, tmp_path: Path, case: str) -> None:
    run_dir = interrupted(runs["two"], tmp_path)
    for section, key, value in CONFIG_EDITS[case]:
        edited = edit_config(run_dir, section, key, value)
    result = train("--resume", run_dir)
    assert result.exit_code == 2, shown(result)
    assert "error: cannot resume" in result.stderr and "Traceback" not in result.output
    for section, key, value in CONFIG_EDITS[case]:
        assert f"{section}.{key}: " in result.stderr and f" -> {value!r}" in result.stderr
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == [ckpt(MID)]  # nothing set aside
    assert (run_dir / "config.toml").read_bytes() == edited


def test_resume_refuses_an_unsafe_set_override(runs, tmp_path: Path) -> None:
    run_dir = interrupted(runs["two"], tmp_path)
    before = (run_dir / "config.toml").read_bytes()
    result = train("--resume", run_dir, "--set", "lr=0.03")
    assert result.exit_code == 2 and "train.learning_rate: 0.02 -> 0.03" in result.stderr, shown(result)
    assert (run_dir / "config.toml").read_bytes() == before
    result = train("task3c", "--resume", run_dir)
    assert result.exit_code == 2 and "do not give a preset" in result.stderr, shown(result)


# ------------------------------------------------------------ item 2: extending a run
@pytest.mark.parametrize("state", ["finished", "interrupted"])
def test_set_epochs_extends_a_run_bit_identically(runs, tmp_path: Path, state: str) -> None:
    if state == "finished":
        run_dir = tmp_path / "run"
        shutil.copytree(runs["two"], run_dir)
    else:
        run_dir = interrupted(runs["two"], tmp_path)
    result = train("--resume", run_dir, "--set", "epochs=3")
    assert result.exit_code == 0, shown(result)
    assert "with train.epochs changed" in result.output
    assert tomllib.loads((run_dir / "config.toml").read_text())["train"]["epochs"] == 3
    assert_same_run(runs["three"], run_dir, predictions=False)
    assert load_checkpoint(run_dir / "checkpoints" / ckpt(3 * SPE))[RUN_CONFIG_KEY]["train"]["epochs"] == 3


def test_fewer_epochs_than_done_is_a_clear_error(runs, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(runs["two"], run_dir)
    before = (run_dir / "config.toml").read_bytes()
    result = train("--resume", run_dir, "--set", "epochs=1")
    assert result.exit_code == 2, shown(result)
    assert f"is at step {2 * SPE}" in result.stderr and "ask for at least 2" in result.stderr
    assert (run_dir / "config.toml").read_bytes() == before
    assert not list((run_dir / "checkpoints").glob("*.corrupt"))


def test_threads_given_with_resume_are_honoured(runs, tmp_path: Path, monkeypatch) -> None:
    from mlpkit.workflows import experiment

    asked: list[int | None] = []
    original = experiment._thread_limit
    monkeypatch.setattr(experiment, "_thread_limit", lambda threads: asked.append(threads) or original(threads))
    run_dir = interrupted(runs["two"], tmp_path)
    result = train("--resume", run_dir, "--threads", "2")
    assert result.exit_code == 0, shown(result)
    assert asked == [2]
    assert tomllib.loads((run_dir / "config.toml").read_text())["train"]["threads"] == 2


# ------------------------------------------------------------ item 3: tampered checkpoints
def _set(path: tuple[str, ...], value):
    def change(state):
        target = state
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value(target[path[-1]]) if callable(value) else value
        return state

    return change


def _poke(index: int, value: int):
    def change(perm):
        perm = perm.copy()
        perm[index] = value
        return perm

    return change


def _without_run_config(state):
    del state[RUN_CONFIG_KEY]
    return state


TAMPERED = {
    "out-of-range index": (_set(("perm",), _poke(-1, 2000)), "not a permutation of 0..1999"),
    "huge index": (_set(("perm",), _poke(-1, 10**9)), "not a permutation"),
    "negative index": (_set(("perm",), _poke(-1, -1)), "not a permutation"),
    "truncated order": (_set(("perm",), lambda p: p[:-100]), "1900 indices for a training set of 2000"),
    "all-zero order": (_set(("perm",), np.zeros_like), "not a permutation"),
    "step_in_epoch 10**6": (_set(("step_in_epoch",), 10**6), "step_in_epoch = 1000000"),
    "epoch 99": (_set(("epoch",), 99), "inconsistent counters"),
    "shortened loss history": (
        _set(("callbacks", "History", "step_loss"), lambda h: h[:-5]),
        f"loss history of {MID - 5} steps for step {MID}",
    ),
    "int64 weights": (_set(("model", "layers.0.weight"), lambda w: w.astype(np.int64)), "expected float32"),
    "NaN weights": (_set(("model", "layers.1.weight"), lambda w: np.full_like(w, np.nan)), "non-finite values"),
    "NaN first loss": (_set(("first_loss",), float("nan")), "first loss"),
    "no run config": (_without_run_config, "records no run config"),
}


@pytest.mark.parametrize("case", sorted(TAMPERED))
def test_a_tampered_newest_checkpoint_is_set_aside_and_the_previous_one_used(runs, tmp_path: Path, case: str) -> None:
    change, message = TAMPERED[case]
    run_dir = interrupted(runs["two"], tmp_path)
    state = change(load_checkpoint(run_dir / "checkpoints" / ckpt(MID)))
    save_checkpoint(run_dir / "checkpoints" / ckpt(2 * SPE), state)  # the newest file
    result = train("--resume", run_dir)
    assert result.exit_code == 0, shown(result)
    assert f"warning: skipping unusable checkpoint (renamed to {ckpt(2 * SPE)}.corrupt)" in result.output
    assert message in result.output and f"from {ckpt(MID)} (step {MID})" in result.output
    assert (run_dir / "checkpoints" / f"{ckpt(2 * SPE)}.corrupt").exists()
    assert_same_run(runs["two"], run_dir, predictions=False)


def test_a_checkpoint_of_an_n_train_1000_run_is_set_aside(runs, tmp_path: Path) -> None:
    run_dir = interrupted(runs["two"], tmp_path)
    foreign = load_checkpoint(sorted((runs["small"] / "checkpoints").glob("step-*.npz"))[0])  # mid-epoch
    foreign[RUN_CONFIG_KEY] = load_checkpoint(run_dir / "checkpoints" / ckpt(MID))[RUN_CONFIG_KEY]
    save_checkpoint(run_dir / "checkpoints" / ckpt(2 * SPE), foreign)
    result = train("--resume", run_dir)
    assert result.exit_code == 0, shown(result)
    assert "1000 indices for a training set of 2000" in result.output
    assert_same_run(runs["two"], run_dir, predictions=False)


def test_a_checkpoint_recording_another_config_is_refused(runs, tmp_path: Path) -> None:
    run_dir = interrupted(runs["two"], tmp_path)
    foreign = sorted((runs["small"] / "checkpoints").glob("step-*.npz"))[0]
    shutil.copy(foreign, run_dir / "checkpoints" / ckpt(2 * SPE))
    result = train("--resume", run_dir)
    assert result.exit_code == 2, shown(result)
    assert "data.n_train: 1000 -> 2000" in result.stderr
    assert not list((run_dir / "checkpoints").glob("*.corrupt"))


# -------------------------------------------------- item 4: only finite checkpoints are good
def test_last_good_checkpoint_skips_newer_ones_with_nan_weights(runs, tmp_path: Path) -> None:
    run_dir = interrupted(runs["two"], tmp_path)
    state = load_checkpoint(run_dir / "checkpoints" / ckpt(MID))
    state["model"]["layers.0.weight"][0, 0] = np.nan
    save_checkpoint(run_dir / "checkpoints" / ckpt(2 * SPE), state)
    assert last_good_checkpoint(run_dir) == run_dir / "checkpoints" / ckpt(MID)
    (run_dir / "checkpoints" / ckpt(MID)).write_bytes(b"damaged")
    assert last_good_checkpoint(run_dir) is None


def test_checkpointer_never_saves_a_state_with_non_finite_weights(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    model = MLP([4], n_features=3, n_classes=2).init_weights(rng)
    trainer = Trainer(model, SGD(model.parameters(), lr=0.1), rng=rng, epochs=1, batch_size=2)
    saver = Checkpointer(tmp_path, every=1, record={"run_config": {"seed": 0}})
    trainer.state.step = 3
    saver.on_train_end(trainer)
    assert load_checkpoint(tmp_path / ckpt(3))["run_config"] == {"seed": 0}
    model.weights[0][0, 0] = np.inf
    trainer.state.step = 4
    saver.on_train_end(trainer)
    assert not (tmp_path / ckpt(4)).exists() and saver.skipped == [4]


def test_a_diverged_run_names_a_finite_checkpoint_as_the_last_good_one(tmp_path: Path, mnist_path: Path) -> None:
    _DATA[:] = [str(mnist_path)]
    run_dir = tmp_path / "run"
    result = train("task3c", *TINY, "--set", "epochs=1", "--set", "lr=1e6", "--out", run_dir)
    assert result.exit_code == 2 and "training diverged" in result.stderr, shown(result)
    good = json.loads((run_dir / "diverged.json").read_text())["last_checkpoint"]
    assert good is not None and f"({good})" in result.stderr
    assert all(np.isfinite(w).all() for w in load_checkpoint(run_dir / good)["model"].values())


# --------------------------------------------------- item 5: every checkpoint set aside
def test_a_second_resume_after_every_checkpoint_was_set_aside_is_refused(runs, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(runs["two"], run_dir)
    for p in (run_dir / "checkpoints").glob("step-*.npz"):
        p.write_bytes(b"garbage")
    first = train("--resume", run_dir)
    assert first.exit_code == 2 and "error: every checkpoint" in first.stderr, shown(first)
    second = train("--resume", run_dir)
    assert second.exit_code == 2, shown(second)
    assert "found unusable by an earlier resume" in second.stderr and "start a new run" in second.stderr
    assert f"{ckpt(MID)}.corrupt" in second.stderr and f"{ckpt(2 * SPE)}.corrupt" in second.stderr
    assert "starting it from the beginning" not in second.output
    assert weights_bytes(run_dir) == weights_bytes(runs["two"])  # nothing was overwritten


def test_a_run_that_never_had_a_checkpoint_starts_again(runs, tmp_path: Path) -> None:
    run_dir = interrupted(runs["two"], tmp_path)
    shutil.rmtree(run_dir / "checkpoints")
    result = train("--resume", run_dir)
    assert result.exit_code == 0, shown(result)
    assert "has no checkpoint yet; starting it from the beginning" in result.output
    assert_same_run(runs["two"], run_dir, predictions=False)
