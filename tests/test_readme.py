"""The README's Python example runs as written (with one epoch instead of five)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs(mnist_path, monkeypatch, capsys):
    code = re.search(r"## From Python\n\n```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert code is not None, "README lost its Python example"
    monkeypatch.setenv("MLPKIT_DATA", str(mnist_path))
    exec(compile(code.group(1).replace("epochs=5", "epochs=1"), "README.md", "exec"), {})
    accuracy = float(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0.9 < accuracy <= 1.0


def test_readme_estimator_example_runs(capsys):
    code = re.search(r"## A scikit-learn estimator\n.*?```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert code is not None, "README lost its estimator example"
    exec(compile(code.group(1), "README.md", "exec"), {})
    assert float(capsys.readouterr().out.strip().splitlines()[-1]) >= 0.95


def test_readme_own_data_examples_run(tmp_path, monkeypatch):
    """The "Your own data" script writes each kind of file; every `mlpkit train` line then trains
    on it (all but Fashion-MNIST's, which needs the network) to a useful accuracy."""
    import json
    import shlex

    from click.testing import CliRunner

    from mlpkit.cli import main

    text = README.read_text(encoding="utf-8")
    section = re.search(r"## Your own data\n(.*?)\n## ", text, re.S)
    assert section is not None, "README lost its own-data section"
    script = re.search(r"```python\n(.*?)```", section.group(1), re.S)
    commands = re.search(r"```bash\n(.*?)```", section.group(1), re.S)
    assert script is not None and commands is not None
    monkeypatch.chdir(tmp_path)
    exec(compile(script.group(1), "README.md", "exec"), {})
    lines = [line.split("#")[0].strip() for line in commands.group(1).strip().splitlines()]
    trained = 0
    for line in lines:
        args = shlex.split(line)
        assert args[:2] == ["mlpkit", "train"], line
        if "data.dataset=fashion-mnist" in args:
            continue  # downloads: the offline tests load Fashion-MNIST from small files instead
        result = CliRunner().invoke(main, [*args[1:], "--no-progress"], catch_exceptions=False)
        assert result.exit_code == 0, (line, result.output)
        out = Path(args[args.index("--out") + 1])
        assert json.loads((out / "metrics.json").read_text())["val_accuracy"] >= 0.95, line
        trained += 1
    assert trained == 5
