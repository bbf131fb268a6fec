"""What run.py prints: per-workload tables (times, ratios to PyTorch, both floors) and the summary."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path

from targets import mlpkit_floor_ratio
from workloads import WORKLOADS


def fmt(s: dict | None, digits: int = 3) -> str:
    if not s:
        return "-"
    return f"{s['median']:.{digits}f} [{s['min']:.{digits}f}-{s['max']:.{digits}f}]"


def machine_info(threads: int) -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for pkg in ("numpy", "torch", "scikit-learn", "threadpoolctl", "mlpkit"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "threads": threads,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
        "openblas_env": {k: v for k, v in os.environ.items() if k.startswith(("OPENBLAS", "OMP_", "MKL_"))},
        "loadavg_start": os.getloadavg(),
    }


def print_workload(name: str, res: dict) -> None:
    w = WORKLOADS[name]
    print(f"\n== {name}: {w.title}")
    print(
        f"   {'engine':<9}{'whole s/epoch':<24}{'train s/epoch':<24}{'x PyTorch whole':<22}"
        f"{'x PyTorch train':<22}{'peak MB':>8}"
    )
    for engine, e in res["engines"].items():
        r = res["ratios"].get(engine, {})
        train = e["train"] if w.mode == "train" else None
        print(
            f"   {engine:<9}{fmt(e['whole']):<24}{fmt(train):<24}{fmt(r.get('whole'), 2):<22}"
            f"{fmt(r.get('train') if w.mode == 'train' else None, 2):<22}{e['peak_rss_mb']:>8.0f}"
        )
    f = res["floor"]
    train_floor = f"{f['train_s']:.3f}" if w.mode == "train" else "-"
    print(
        f"   {'floor':<9}{f['whole_s']:<24.3f}{train_floor:<24}"
        f"(dense: {f['train_gflop']:.1f} + {f['validation_gflop']:.1f} GFLOP at numpy's {f['gflops']:.0f} GFLOP/s;"
        f" {f['whole_s_best_rate']:.3f} s at the best BLAS rate so far, {f['best_gflops']:.0f} GFLOP/s)"
    )
    if "work_whole_s" in f:
        wk = f["work"]
        print(
            f"   {'work':<9}{f['work_whole_s']:<24.3f}{f['work_train_s']:<24.3f}"
            f"(work done: {f['work_train_gflop']:.1f} + {f['work_validation_gflop']:.1f} GFLOP at that rate;"
            f" mlpkit {wk.get('engine')}, sparse steps {wk['sparse_steps']}, sparse validation"
            f" {wk['sparse_validation']}, {wk['nnz_train']:.0f} entries a training row)"
        )
    if "mlpkit" in res["engines"]:
        ratio = mlpkit_floor_ratio(res)
        work = f", work-done floor {ratio:.2f}" if ratio is not None else ""
        dense = res["engines"]["mlpkit"]["whole"]["median"] / f["whole_s"]
        print(f"   mlpkit whole epoch / dense floor: {dense:.2f}{work}")
        reason = res["engines"]["mlpkit"].get("fallback_reason")
        if reason:
            print(f"   mlpkit fell back to its NumPy engine: {reason}")
    torch_threads = res["engines"].get("pytorch", {}).get("threads")
    if torch_threads:
        print(f"   pytorch ran on {torch_threads} thread(s)")


def print_summary(results: dict, engines: tuple[str, ...]) -> None:
    """One line per workload: medians, and mlpkit's per-round ratios to PyTorch."""
    print("\nsummary (seconds per epoch, medians; ratios: median of per-round mlpkit / PyTorch)")
    print(
        f"   {'workload':<12}{'mlpkit':>8}{'pytorch':>9}{'sklearn':>9}{'floor':>8}"
        f"{'x PyTorch whole':>17}{'x PyTorch train':>17}{'x floor':>9}{'x work floor':>14}"
    )
    for name, res in results.items():
        e, r, f = res["engines"], res["ratios"].get("mlpkit", {}), res["floor"]
        med = {
            k: (f"{v['whole']['median']:.3f}" if k in e else "-")
            for k, v in ((k, e.get(k, {"whole": {"median": 0}})) for k in engines)
        }
        train = f"{r['train']['median']:.2f}" if "train" in r and WORKLOADS[name].mode == "train" else "-"
        whole = f"{r['whole']['median']:.2f}" if "whole" in r else "-"
        floor = f"{e['mlpkit']['whole']['median'] / f['whole_s']:.2f}" if "mlpkit" in e else "-"
        work = mlpkit_floor_ratio(res)
        print(
            f"   {name:<12}{med['mlpkit']:>8}{med['pytorch']:>9}{med['sklearn']:>9}{f['whole_s']:>8.3f}"
            f"{whole:>17}{train:>17}{floor:>9}{'-' if work is None else f'{work:.2f}':>14}"
        )
