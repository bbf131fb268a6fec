import json

from click.testing import CliRunner

from mlpkit.cli import main


def test_reproduce_subset_writes_summary_and_figures(mnist_path, tmp_path):
    out = tmp_path / "repro"
    result = CliRunner().invoke(
        main,
        [
            "reproduce",
            "--out",
            str(out),
            "--presets",
            "task2c,task3a,task2c-noshuffle",
            "--set",
            "epochs=1",
            "--set",
            "n_train=1000",
            "--data-dir",
            str(mnist_path),
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["presets"]) == {"task2c", "task3a", "task2c-noshuffle"}
    assert summary["data"]["n_train"] == 1000 and summary["data"]["n_val"] == 10000
    for name in summary["presets"]:
        assert (out / name / "metrics.json").exists()
    names = {c["name"] for c in summary["comparisons"]}
    assert names == {"task2c-3a-3b-3c", "task2c-shuffle"}
    for comp in summary["comparisons"]:
        for fig in comp["figures"]:
            assert (out / fig).stat().st_size > 1000
    checks = {c["check"]: c for c in summary["checks"]}
    assert "best val loss task3a < task2c" in checks
    text = (out / "summary.md").read_text()
    assert "| task3a | 50880 |" in text and "33.55" in text and "Acceptance checks" in text
    assert "figures/task2c-shuffle-loss.png" in text


def test_reproduce_rejects_unknown_preset_before_work(tmp_path):
    result = CliRunner().invoke(main, ["reproduce", "--out", str(tmp_path / "r"), "--presets", "task9"])
    assert result.exit_code == 2 and "unknown preset(s) task9" in result.output
    assert not (tmp_path / "r").exists()


# ------------------------------------------------------------------ reproducing into a folder that has runs
FAST = ["epochs=1", "n_train=1000"]


def _metrics(path):
    m = json.loads(path.read_text())
    m.pop("wall_time_s")
    return m


def test_reproduce_into_an_existing_folder_keeps_resumes_and_refuses(mnist_path, tmp_path):
    """A second reproduce adds to the folder: complete runs with the same config are kept (not
    retrained), interrupted ones resumed, changed ones refused unless forced; summary, figures and
    report always cover every run in the folder."""
    import pytest

    from mlpkit.core.errors import ConfigError
    from mlpkit.workflows.reproduce import reproduce_all

    out = tmp_path / "repro"
    quiet = {"data_dir": mnist_path, "progress": False, "log": lambda *_: None}
    reproduce_all(out, presets=["task2c", "task3a", "task2c-noshuffle"], overrides=FAST, **quiet)
    first = {n: _metrics(out / n / "metrics.json") for n in ("task2c", "task3a", "task2c-noshuffle")}
    stamp = (out / "task3a" / "metrics.json").stat().st_mtime_ns
    (out / "figures" / "gone-loss.png").write_bytes(b"stale")
    (out / "report_files" / "gone.svg").write_bytes(b"stale")
    # task2c-noshuffle interrupted: its final files and newest checkpoint gone
    (out / "task2c-noshuffle" / "metrics.json").unlink()
    max((out / "task2c-noshuffle" / "checkpoints").glob("step-*.npz")).unlink()

    lines: list[str] = []
    reproduce_all(
        out,
        presets=["task3a", "task2c-noshuffle"],
        overrides=FAST,
        data_dir=mnist_path,
        progress=False,
        log=lines.append,
    )
    assert "[task3a] kept: complete, same config" in "\n".join(lines)
    assert any(line.startswith(f"resuming {out / 'task2c-noshuffle'}") for line in lines), lines
    assert (out / "task3a" / "metrics.json").stat().st_mtime_ns == stamp  # not trained again
    assert _metrics(out / "task2c-noshuffle" / "metrics.json") == first["task2c-noshuffle"]  # resumed exactly
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["presets"]) == ["task2c", "task2c-noshuffle", "task3a"]  # task2c: from the first call
    assert {c["name"] for c in summary["comparisons"]} == {"task2c-3a-3b-3c", "task2c-shuffle"}
    assert not (out / "figures" / "gone-loss.png").exists() and not (out / "report_files" / "gone.svg").exists()
    text = (out / "summary.md").read_text()
    assert all(f"| {n} |" in text for n in first)
    html_text = (out / "report.html").read_text()
    assert "Not in this reproduce folder: task2c" not in html_text

    # another config for task3a: refused before any work, nothing touched
    before = (out / "summary.md").read_bytes()
    with pytest.raises(ConfigError, match=r"task3a \(train\.epochs: 1 -> 2\).*force=True \(--force\)"):
        reproduce_all(out, presets=["task3a"], overrides=["epochs=2", "n_train=1000"], **quiet)
    assert (out / "summary.md").read_bytes() == before
    assert (out / "task3a" / "metrics.json").stat().st_mtime_ns == stamp
    # forced: replaced, the other runs stay in the summary
    reproduce_all(out, presets=["task3a"], overrides=["epochs=2", "n_train=1000"], force=True, **quiet)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["presets"]["task3a"]["metrics"]["epochs_completed"] == 2
    assert _metrics(out / "task2c" / "metrics.json") == first["task2c"] and len(summary["presets"]) == 3


def test_plan_decides_per_folder_before_any_work(tmp_path):
    import pytest

    from mlpkit.core.errors import ConfigError
    from mlpkit.runs.config import with_overrides
    from mlpkit.workflows.configs import resolve_config as load_config
    from mlpkit.workflows.reproduce import plan
    from report_fakes import write_fake_run

    write_fake_run(tmp_path / "task3c", "task3c")  # complete
    write_fake_run(tmp_path / "task4a", "task4a", overrides=["train.threads=3"])
    (tmp_path / "task4a" / "metrics.json").unlink()  # interrupted; another thread count only
    write_fake_run(tmp_path / "task4b", "task4b", overrides=["momentum=0.8"])  # another config
    (tmp_path / "task4d").mkdir()
    (tmp_path / "task4d" / "notes.txt").write_text("mine")  # not a run folder
    configs = {n: load_config(n) for n in ("task3c", "task4a", "task4b", "task4d", "task4e")}
    with pytest.raises(ConfigError) as info:
        plan(tmp_path, configs)
    message = str(info.value)
    assert "task4b (train.momentum: 0.8 -> 0.9)" in message and "task4d (its config.toml cannot be used" in message
    assert "task3c" not in message and "task4a" not in message
    actions = {p.name: (p.action, p.changed) for p in plan(tmp_path, configs, force=True)}
    assert actions["task3c"] == ("keep", []) and actions["task4a"] == ("resume", []) and actions["task4e"][0] == "run"
    assert actions["task4b"] == ("replace", ["train.momentum: 0.8 -> 0.9"]) and actions["task4d"][0] == "replace"
    assert plan(tmp_path, {"task3c": with_overrides(load_config("task3c"), ["train.threads=2"])})[0].action == "keep"
