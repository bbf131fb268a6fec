#!/usr/bin/env python
"""mlpkit against PyTorch (CPU) and scikit-learn on the seed's workloads, side by side.

    python benchmarks/run.py            # the full run (about 10 minutes on 2 cores)
    python benchmarks/run.py --quick    # under 2 minutes: 3 rounds, a slice of the large epoch

Every engine runs every workload in its own process with the same thread count (float32,
the same model and the same initial weights where the engine lets us set them). After one
warm-up unit per engine, the engines take turns, unit by unit, for several rounds (the
order rotates each round), so a busy spell on a shared machine hits all of them alike; each
round gives a ratio to PyTorch, and the table shows medians with min-max. A matrix-multiply
rate measured in the same rounds gives the FLOP floor: an epoch's matrix products alone at
the best float32 rate of the machine's BLAS libraries. Results go to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from workloads import WORKLOADS, Workload  # noqa: E402

ENGINES = ("mlpkit", "pytorch", "sklearn")
REFERENCE = "pytorch"
#: The issue's targets: ratio to PyTorch (medians of per-round ratios), floor multiple, memory.
TARGETS = [
    ("seed-base", "whole", 0.40),
    ("seed-base", "train", 0.30),
    ("seed-tricks", "whole", 0.40),
    ("seed-tricks", "train", 0.30),
    ("deep10", "whole", 0.30),
    ("large", "train", 1.00),
]
FLOOR_TARGET = ("seed-tricks", 1.6)
SEED_RUN_MB = 300.0


# ----------------------------------------------------------------------------- workers
class WorkerError(RuntimeError):
    pass


class Worker:
    """One engine process, driven line by line (see engines.py)."""

    def __init__(self, engine: str, workload: str, run_mode: str, data_dir: Path, threads: int, seed: int) -> None:
        self.name = f"{engine}/{workload}"
        self.log = tempfile.TemporaryFile(mode="w+")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO / "src"), env.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(HERE / "engines.py"),
                engine,
                workload,
                run_mode,
                str(data_dir),
                str(threads),
                str(seed),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            bufsize=1,
            env=env,
            cwd=REPO,
        )

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            self.log.seek(0)
            raise WorkerError(f"{self.name} exited ({self.proc.returncode}):\n{self.log.read()[-3000:]}")
        return json.loads(line)

    def ready(self) -> dict:
        return self._read()

    def run(self, settle: float = 0.0) -> dict:
        # BLAS and OpenMP threads of the process that ran before keep spinning for up to
        # ~0.1-0.2 s after their last job (OpenBLAS THREAD_TIMEOUT, GOMP spin count); let them
        # go idle first, so that no engine pays for its predecessor.
        time.sleep(settle)
        self.proc.stdin.write("run\n")
        self.proc.stdin.flush()
        return self._read()

    def quit(self) -> dict:
        self.proc.stdin.write("quit\n")
        self.proc.stdin.flush()
        while "done" not in (msg := self._read()):
            pass
        self.proc.wait()
        return msg

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# -------------------------------------------------------------------------------- data
def find_mnist(explicit: str | None) -> Path | None:
    for candidate in (explicit, os.environ.get("MLPKIT_DATA"), REPO.parent / "shared" / "data" / "mnist"):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None  # mlpkit's own cache (downloading into it if needed)


def write_arrays(mnist_dir: Path | None, out: Path, needed: set[str]) -> None:
    """Normalized float32 (n, 784) images and int64 labels, as .npy for the workers."""
    from mlpkit.data import Normalizer, load_mnist, make_split

    mnist = load_mnist(mnist_dir)
    if "seed" in needed:
        split = make_split(mnist, "seed")
        norm = Normalizer.fit(split.x_train)
        np.save(out / "seed_x_train.npy", norm.apply(split.x_train, dtype=np.float32))
        np.save(out / "seed_x_val.npy", norm.apply(split.x_val, dtype=np.float32))
        np.save(out / "seed_y_train.npy", np.asarray(split.y_train, dtype=np.int64))
        np.save(out / "seed_y_val.npy", np.asarray(split.y_val, dtype=np.int64))
    if "full" in needed:
        images = np.asarray(mnist.train_images).reshape(len(mnist.train_images), -1)
        norm = Normalizer.fit(images)
        np.save(out / "full_x_train.npy", norm.apply(images, dtype=np.float32))
        np.save(out / "full_y_train.npy", np.asarray(mnist.train_labels, dtype=np.int64))


# --------------------------------------------------------------------------- reporting
def summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "values": values}


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
    line = (
        f"   {'floor':<9}{f['whole_s']:<24.3f}{train_floor:<24}"
        f"({f['train_gflop']:.1f} + {f['validation_gflop']:.1f} GFLOP at numpy's {f['gflops']:.0f} GFLOP/s;"
        f" {f['whole_s_best_rate']:.3f} s at the best BLAS, {f['best_gflops']:.0f} GFLOP/s)"
    )
    print(line)
    if "mlpkit" in res["engines"]:
        print(f"   mlpkit whole epoch / floor: {res['engines']['mlpkit']['whole']['median'] / f['whole_s']:.2f}")


# -------------------------------------------------------------------------------- main
def print_summary(results: dict) -> None:
    """One line per workload: medians, and mlpkit's per-round ratios to PyTorch."""
    print("\nsummary (seconds per epoch, medians; ratios: median of per-round mlpkit / PyTorch)")
    print(
        f"   {'workload':<12}{'mlpkit':>8}{'pytorch':>9}{'sklearn':>9}{'floor':>8}"
        f"{'x PyTorch whole':>17}{'x PyTorch train':>17}{'x floor':>9}"
    )
    for name, res in results.items():
        e, r, f = res["engines"], res["ratios"].get("mlpkit", {}), res["floor"]
        med = {
            k: (f"{v['whole']['median']:.3f}" if k in e else "-")
            for k, v in ((k, e.get(k, {"whole": {"median": 0}})) for k in ENGINES)
        }
        train = f"{r['train']['median']:.2f}" if "train" in r and WORKLOADS[name].mode == "train" else "-"
        whole = f"{r['whole']['median']:.2f}" if "whole" in r else "-"
        floor = f"{e['mlpkit']['whole']['median'] / f['whole_s']:.2f}" if "mlpkit" in e else "-"
        print(
            f"   {name:<12}{med['mlpkit']:>8}{med['pytorch']:>9}{med['sklearn']:>9}{f['whole_s']:>8.3f}"
            f"{whole:>17}{train:>17}{floor:>9}"
        )


def run_workload(name: str, engines: list[str], args, data_dir: Path, blas: Worker) -> dict:
    w: Workload = WORKLOADS[name]
    rounds = args.rounds or (3 if args.quick or name == "large" else 7)
    workers = {e: Worker(e, name, args.mode, data_dir, args.threads, args.seed) for e in engines}
    try:
        for worker in workers.values():
            worker.ready()
        for worker in workers.values():  # warm-up unit, not recorded
            worker.run(args.settle)
        times: dict[str, list[dict]] = {e: [] for e in engines}
        rates = []
        for r in range(rounds):
            order = engines[r % len(engines) :] + engines[: r % len(engines)]
            for e in order:
                times[e].append(workers[e].run(args.settle))
            rates.append(blas.run(args.settle))
            print(
                f"   {name} round {r + 1}/{rounds}: " + ", ".join(f"{e} {times[e][-1]['whole']:.3f}s" for e in engines),
                flush=True,
            )
        finals = {e: workers[e].quit() for e in engines}
    finally:
        for worker in workers.values():
            worker.kill()
    res: dict = {
        "title": w.title,
        "rounds": rounds,
        "steps_per_epoch": w.steps_per_epoch,
        "steps_per_unit": w.steps_per_unit(args.mode),
        "engines": {},
        "ratios": {},
    }
    for e in engines:
        res["engines"][e] = {
            "whole": summary([t["whole"] for t in times[e]]),
            "train": summary([t["train"] for t in times[e]]),
            "validation": summary([t["validation"] for t in times[e]]),
            "peak_rss_mb": finals[e]["peak_rss_mb"],
            "final": finals[e]["final"],
        }
    if REFERENCE in engines:
        ref = times[REFERENCE]
        for e in engines:
            res["ratios"][e] = {
                k: summary([t[k] / rt[k] for t, rt in zip(times[e], ref)])
                for k in ("whole", "train")
                if all(rt[k] > 0 for rt in ref)
            }
    flops = w.epoch_flops()
    # The floor: the epoch's matrix products at the float32 rate of numpy's BLAS (the one
    # mlpkit runs on), measured in the same rounds; also at the best rate of any BLAS here.
    gflops = statistics.median([r["numpy_gflops"] for r in rates])
    best = statistics.median([max(v for v in r.values() if v) for r in rates])
    total = flops["train"] + flops["validation"]
    res["floor"] = {
        "gflops": gflops,
        "best_gflops": best,
        "rates": rates,
        "train_gflop": flops["train"] / 1e9,
        "validation_gflop": flops["validation"] / 1e9,
        "train_s": flops["train"] / gflops / 1e9,
        "whole_s": total / gflops / 1e9,
        "whole_s_best_rate": total / best / 1e9,
    }
    return res


def check_targets(results: dict, seed_run: dict | None) -> list[dict]:
    checks = []
    for name, kind, limit in TARGETS:
        ratio = results.get(name, {}).get("ratios", {}).get("mlpkit", {}).get(kind)
        if ratio:
            checks.append(
                {
                    "target": f"{name} {kind} <= {limit:.2f}x PyTorch",
                    "value": ratio["median"],
                    "met": ratio["median"] <= limit,
                }
            )
    name, limit = FLOOR_TARGET
    if name in results and "mlpkit" in results[name]["engines"]:
        value = results[name]["engines"]["mlpkit"]["whole"]["median"] / results[name]["floor"]["whole_s"]
        checks.append(
            {"target": f"{name} whole epoch <= {limit}x the FLOP floor", "value": value, "met": value <= limit}
        )
    if seed_run:
        value = seed_run["peak_rss_mb"]
        checks.append(
            {
                "target": f"seed run (task3c) peak memory <= {SEED_RUN_MB:.0f} MB",
                "value": value,
                "met": value <= SEED_RUN_MB,
            }
        )
    return checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds, 39 steps of the large epoch: < 2 minutes")
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count(), help="threads for every engine (default: all cores)"
    )
    parser.add_argument(
        "--rounds", type=int, default=None, help="timed rounds per workload (default 7; quick 3; large 3)"
    )
    parser.add_argument(
        "--workloads", default=",".join(WORKLOADS), help=f"comma-separated, from {', '.join(WORKLOADS)}"
    )
    parser.add_argument("--engines", default=",".join(ENGINES), help=f"comma-separated, from {', '.join(ENGINES)}")
    parser.add_argument(
        "--data", default=None, help="MNIST folder (default: $MLPKIT_DATA, ../shared/data/mnist, cache)"
    )
    parser.add_argument("--out", type=Path, default=HERE / "results", help="where the JSON goes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--settle",
        type=float,
        default=0.3,
        help="seconds of rest before each unit, so the previous engine's spinning threads stop",
    )
    parser.add_argument("--no-seed-run", action="store_true", help="skip the peak-memory run of preset task3c")
    args = parser.parse_args(argv)
    args.mode = "quick" if args.quick else "full"
    names = [n for n in args.workloads.split(",") if n]
    engines = [e for e in args.engines.split(",") if e]
    unknown = [n for n in names if n not in WORKLOADS] + [e for e in engines if e not in ENGINES]
    if unknown:
        parser.error(f"unknown workload or engine: {', '.join(unknown)}")
    for engine, module in (("pytorch", "torch"), ("sklearn", "sklearn")):
        if engine in engines and importlib.util.find_spec(module) is None:
            print(f"warning: {module} is not installed, skipping {engine} (pip install -e '.[bench]')", file=sys.stderr)
            engines.remove(engine)
    if any(os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")):
        print(
            "warning: OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE are set and may select a slower kernel; to benchmark, "
            "run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/run.py",
            file=sys.stderr,
        )
    started = time.perf_counter()
    info = machine_info(args.threads)
    mnist_dir = find_mnist(args.data)
    results: dict = {}
    seed_run = None
    with tempfile.TemporaryDirectory(prefix="mlpkit-bench-") as tmp:
        data_dir = Path(tmp)
        write_arrays(mnist_dir, data_dir, {WORKLOADS[n].data for n in names})
        blas = Worker("blas", "-", args.mode, data_dir, args.threads, args.seed)
        try:
            info["blas"] = blas.ready()["blas"]
            blas.run()
            print(
                f"mlpkit benchmark ({args.mode}): {info['cpu']}, {info['cpu_count']} cores, {args.threads} threads; "
                f"BLAS: "
                + ", ".join(f"{b['internal_api']} {b['version']} ({b['architecture']})" for b in info["blas"]),
                flush=True,
            )
            for name in names:
                results[name] = run_workload(name, engines, args, data_dir, blas)
                print_workload(name, results[name])
            blas.quit()
        finally:
            blas.kill()
        if not args.no_seed_run and "mlpkit" in engines:
            worker = Worker("seedrun", "1", args.mode, mnist_dir or "-", args.threads, args.seed)
            try:
                worker.ready()
                msg = worker.quit()
                seed_run = {"peak_rss_mb": msg["peak_rss_mb"], **msg["final"]}
            finally:
                worker.kill()
            print(
                f"\nseed run (preset task3c, 1 epoch, run_experiment with plots): peak memory "
                f"{seed_run['peak_rss_mb']:.0f} MB, {seed_run['wall_s']:.1f} s wall"
            )
    info["loadavg_end"] = os.getloadavg()
    print_summary(results)
    checks = check_targets(results, seed_run)
    print("\ntargets (medians of per-round ratios):")
    for c in checks:
        print(f"   [{'met' if c['met'] else 'NOT met':>7}] {c['target']}: {c['value']:.2f}")
    elapsed = time.perf_counter() - started
    print(
        f"\nload average {info['loadavg_start'][0]:.1f} at start, {info['loadavg_end'][0]:.1f} at end; "
        f"{elapsed:.0f} s in all"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{args.mode}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(
        json.dumps(
            {
                "mode": args.mode,
                "machine": info,
                "workloads": results,
                "seed_run": seed_run,
                "targets": checks,
                "elapsed_s": elapsed,
            },
            indent=1,
        )
        + "\n"
    )
    print(f"results: {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
