"""``mlpkit reproduce --seeds N``: every preset with N seeds through the sweep executor, seed 0 the
usual run folder (same numbers as a plain reproduce), mean +- std and significance across seeds."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlpkit.cli import main
from mlpkit.seed.seed_stats import mean_std, significance, welch_p

PRESETS = "task2c,task3a,task2c-noshuffle"
FAST = ["--set", "epochs=1", "--set", "n_train=1000"]
VOLATILE = ("wall_time_s", "sha256")


def test_mean_std_is_the_sample_std() -> None:
    s = mean_std([1.0, 2.0, 4.0])
    assert s["mean"] == pytest.approx(7 / 3) and s["n"] == 3
    assert s["std"] == pytest.approx(math.sqrt(((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2) / 2))
    assert mean_std([0.5])["std"] == 0.0


def test_welch_p_and_the_statements() -> None:
    from scipy.stats import ttest_ind

    a, b = [0.10, 0.11, 0.12], [0.20, 0.22, 0.19]
    assert welch_p(a, b) == pytest.approx(ttest_ind(a, b, equal_var=False).pvalue)
    assert welch_p([0.1], b) is None
    stats = {
        "task3a": {"metrics": {"best_val_loss": mean_std(a)}},
        "task2c": {"metrics": {"best_val_loss": mean_std(b)}},
        "task2c-noshuffle": {"metrics": {"best_val_loss": mean_std([0.21, 0.20, 0.215])}},
    }
    found = {(s["better"], s["worse"]): s for s in significance(stats)}
    assert set(found) == {("task3a", "task2c"), ("task2c", "task2c-noshuffle")}
    assert (
        found[("task3a", "task2c")]["significant"]
        and "significant across seeds" in found[("task3a", "task2c")]["statement"]
    )
    shuffle = found[("task2c", "task2c-noshuffle")]
    assert not shuffle["significant"] and "not significant" in shuffle["statement"]


def test_scheduler_without_seeds_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["reproduce", "--out", str(tmp_path / "r"), "--workers", "2"])
    assert result.exit_code == 2 and "go with --seeds" in result.output
    assert not (tmp_path / "r").exists()


def _metrics(path: Path) -> dict:
    return {k: v for k, v in json.loads(path.read_text()).items() if k not in VOLATILE}


def test_reproduce_with_seeds_on_two_workers(mnist_path: Path, tmp_path: Path) -> None:
    out, plain = tmp_path / "seeds", tmp_path / "plain"
    data = ["--data-dir", str(mnist_path), "--no-progress"]
    args = ["reproduce", "--out", str(out), "--presets", PRESETS, *FAST, *data, "--seeds", "2", "--workers", "2"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["reproduce", "--out", str(plain), "--presets", PRESETS, *FAST, *data])
    assert result.exit_code == 0, result.output
    for name in PRESETS.split(","):  # seed 0 through Dask: the plain reproduce's run, bit for bit
        assert _metrics(out / name / "metrics.json") == _metrics(plain / name / "metrics.json")
        assert (out / name / "weights.npz").read_bytes() == (plain / name / "weights.npz").read_bytes()
        other = json.loads((out / "seeds" / name / "seed=1" / "metrics.json").read_text())
        assert other["val_accuracy"] != json.loads((out / name / "metrics.json").read_text())["val_accuracy"]
    summary = json.loads((out / "summary.json").read_text())
    seeds = summary["seeds"]
    assert seeds["n"] == 2 and set(seeds["presets"]) == set(PRESETS.split(","))
    acc = seeds["presets"]["task3a"]["metrics"]["val_accuracy"]
    values = [json.loads((d / "metrics.json").read_text())["val_accuracy"] for d in
              (out / "task3a", out / "seeds" / "task3a" / "seed=1")]  # fmt: skip
    assert acc["values"] == values and acc["mean"] == pytest.approx(sum(values) / 2)
    claims = {(s["better"], s["worse"]) for s in seeds["significance"]}
    assert claims == {("task3a", "task2c"), ("task2c", "task2c-noshuffle")}
    assert all(s["p"] is not None for s in seeds["significance"])
    assert summary["presets"].keys() == set(PRESETS.split(","))  # the seed folders are not presets
    text = (out / "summary.md").read_text()
    assert "## Across seeds (2 seeds per preset)" in text and "| task3a | 2 |" in text and "Welch p" in text
    page = (out / "report.html").read_text()
    assert 'id="seeds"' in page and "Welch" in page and "significan" in page
    # a rerun keeps every run
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0 and "6 kept, 0 to run" in result.output
