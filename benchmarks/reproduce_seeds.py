#!/usr/bin/env python
"""Issue 15's acceptance measurement: ``mlpkit reproduce --seeds N`` on Dask against N sequential
single-seed reproduces.

    python benchmarks/reproduce_seeds.py                 # 9 presets x 5 seeds, both cores (long)
    python benchmarks/reproduce_seeds.py --quick         # 2 presets x 2 seeds, 1 epoch, 2,000 images

Runs, each into a fresh folder under a temporary directory (or ``--work DIR``):

- ``sequential``: ``mlpkit reproduce --set seed=S`` for S = 0 .. N-1, one after another (the
  plain reproduce, one process, as today);
- ``seeds``: ``mlpkit reproduce --seeds N --workers W`` (a LocalCluster of W worker processes,
  one per core by default).

The target: ``seeds`` wall time <= 2.2 x (``sequential`` total / 2), i.e. the engine adds little
and both cores are used. Needs quiet cores: anything else running skews both sides. Prints the
ratio and writes benchmarks/results/reproduce-seeds-<time>.json. MLPKIT_DATA must name MNIST.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
QUICK = ["--presets", "task3c,task4a", "--set", "epochs=1", "--set", "n_train=2000"]
TARGET = 2.2


def mlpkit() -> list[str]:
    exe = Path(sys.executable).parent / "mlpkit"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "mlpkit"]


def timed(cmd: list[str]) -> float:
    """Wall seconds of ``cmd`` (its output discarded; a failure stops the benchmark)."""
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=None, help="LocalCluster workers (default: one per core)")
    parser.add_argument("--quick", action="store_true", help="2 presets, 1 epoch, 2,000 images: a smoke test")
    parser.add_argument("--work", type=Path, default=None, help="Folder for the runs (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="Keep the run folders")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="reproduce-seeds-"))
    work.mkdir(parents=True, exist_ok=True)
    extra = (QUICK if args.quick else []) + ["--no-progress"]
    try:
        sequential = []
        for seed in range(args.seeds):
            out = work / f"sequential-seed{seed}"
            sequential.append(timed([*mlpkit(), "reproduce", "--out", str(out), "--set", f"seed={seed}", *extra]))
            print(f"sequential seed {seed}: {sequential[-1]:.1f} s", flush=True)
        workers = ["--workers", str(args.workers)] if args.workers else []
        cmd = [*mlpkit(), "reproduce", "--out", str(work / "seeds"), "--seeds", str(args.seeds), *workers, *extra]
        seeds = timed(cmd)
        print(f"reproduce --seeds {args.seeds}: {seeds:.1f} s", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    total = sum(sequential)
    ratio = seeds / (total / 2)
    verdict = "PASS" if ratio <= TARGET else "FAIL"
    print(f"ratio: {seeds:.1f} s / ({total:.1f} s / 2) = {ratio:.3f} (target <= {TARGET}): {verdict}")
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"reproduce-seeds-{time.strftime('%Y%m%d-%H%M%S')}.json"
    record = {
        "seeds": args.seeds,
        "quick": args.quick,
        "workers": args.workers,
        "sequential_s": sequential,
        "sequential_total_s": total,
        "seeds_s": seeds,
        "ratio": ratio,
        "target": TARGET,
        "passed": ratio <= TARGET,
        "cpus": len(os.sched_getaffinity(0)),
        "machine": platform.platform(),
    }
    path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(f"written: {path}")


if __name__ == "__main__":
    main()
