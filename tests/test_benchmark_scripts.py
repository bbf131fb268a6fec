"""The scripts of benchmarks/ still import: they are run by hand (README, docs/benchmarks.md),
not by the suite, so a module they use that moves would otherwise go unnoticed until the next
measurement (benchmarks/augment.py once imported ``mlpkit.data.uniform`` long after it became
``mlpkit.core.pcg64``)."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
SCRIPTS = sorted(p.name for p in BENCHMARKS.glob("*.py"))
MODULES = {Path(name).stem for name in SCRIPTS}


def test_the_benchmark_folder_has_its_scripts():
    assert {"run.py", "augment.py", "workloads.py", "targets.py"} <= set(SCRIPTS)


@pytest.mark.parametrize("name", SCRIPTS)
def test_a_benchmark_script_imports_and_defines_its_entry_point(name, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # the scripts import each other by name
    before = set(sys.modules)
    try:
        namespace = runpy.run_path(str(BENCHMARKS / name), run_name="benchmark_import_check")
    finally:
        for module in (set(sys.modules) - before) & MODULES:  # leave no benchmark module behind for other tests
            del sys.modules[module]
    source = (BENCHMARKS / name).read_text()
    if '__name__ == "__main__"' in source:
        assert callable(namespace.get("main")), f"{name} runs main() as a script but defines none"
