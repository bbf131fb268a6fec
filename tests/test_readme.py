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
