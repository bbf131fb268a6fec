import json

from click.testing import CliRunner

from mlpkit.cli import main


def test_reproduce_subset_writes_summary_and_figures(mnist_path, tmp_path):
    out = tmp_path / "repro"
    result = CliRunner().invoke(main, ["reproduce", "--out", str(out), "--presets", "task2c,task3a,task2c-noshuffle",
                                       "--set", "epochs=1", "--set", "n_train=1000", "--data-dir", str(mnist_path)],
                                catch_exceptions=False)
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
