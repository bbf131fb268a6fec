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


def test_the_floors_use_the_best_rate_they_are_given(monkeypatch):
    """Work-done floors are taken at the run's best BLAS rate (every workload at the same one), the
    issue-3 dense floor at the median of numpy's rate over the workload's own rounds."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    before = set(sys.modules)
    try:
        targets = runpy.run_path(str(BENCHMARKS / "targets.py"), run_name="benchmark_floor_check")
    finally:
        for module in (set(sys.modules) - before) & MODULES:
            del sys.modules[module]
    rates = [{"numpy_gflops": 100.0, "torch_gflops": 50.0}, {"numpy_gflops": 80.0, "torch_gflops": 300.0}]
    assert targets["best_rate"](rates) == 300.0
    work = {"sparse_steps": True, "sparse_validation": True, "nnz_train": 150.0, "nnz_val": 150.0}
    at_200, at_400 = (targets["floors"]("seed-base", rates, work, best) for best in (200.0, 400.0))
    assert at_200["gflops"] == at_400["gflops"] == 90.0
    assert at_200["work_whole_s"] == pytest.approx(2 * at_400["work_whole_s"])
    assert at_200["work_whole_s"] == pytest.approx(
        (at_200["work_train_gflop"] + at_200["work_validation_gflop"]) / 200.0
    )
