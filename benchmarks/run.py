#!/usr/bin/env python
"""mlpkit against PyTorch (CPU) and scikit-learn on the seed's workloads, side by side.

    python benchmarks/run.py            # the full run
    python benchmarks/run.py --quick    # 3 rounds, slices of the seed and large epochs

Every engine runs every workload in its own process with the same thread count (float32,
the same model and the same initial weights where the engine lets us set them). After one
warm-up unit per engine, the engines take turns, unit by unit, for several rounds (the
order rotates each round), so a busy spell on a shared machine hits all of them alike; each
round gives a ratio to PyTorch, and the table shows medians with min-max. A matrix-multiply
rate measured in the same rounds gives the FLOP floors: an epoch's dense matrix products at
numpy's and at the best float32 rate of the machine's BLAS libraries, and the work-done floor
(the products mlpkit's chosen path really computes, e.g. only the entries of a sparse first
layer) at the best rate. Then, each in a fresh process: the cold start of ``mlpkit train``
(empty kernel cache) against a warm one, and the peak memory of whole task3c and mnist-fast
runs. Every target of issues 3 and 14 is printed as met / not met (targets.py). Results go to
benchmarks/results/.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from printing import machine_info, print_summary, print_workload  # noqa: E402
from targets import best_rate, check_targets, cold_start, floors  # noqa: E402
from workloads import WORKLOADS, Workload  # noqa: E402

ENGINES = ("mlpkit", "pytorch", "sklearn")
REFERENCE = "pytorch"
#: Whole runs through run_experiment, each in a fresh process, for their peak memory:
#: (preset, epochs in --quick, epochs in the full run; None: the preset's own).
RECIPE_RUNS = [("task3c", 1, 1), ("mnist-fast", 1, None)]


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
        if engine.startswith("mlpkit") and "OPENBLAS_THREAD_TIMEOUT" not in env:
            # what ``import mlpkit`` asks for when it comes before NumPy, as in the ``mlpkit``
            # command; the worker imports NumPy first (see mlpkit.core.blas_env)
            env["OPENBLAS_THREAD_TIMEOUT"] = "4"
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
    for data, split_name in (("seed", "seed"), ("split", "full")):  # "split": the full split, 55,000 / 5,000
        if data not in needed:
            continue
        split = make_split(mnist, split_name)
        norm = Normalizer.fit(split.x_train)
        np.save(out / f"{data}_x_train.npy", norm.apply(split.x_train, dtype=np.float32))
        np.save(out / f"{data}_x_val.npy", norm.apply(split.x_val, dtype=np.float32))
        np.save(out / f"{data}_y_train.npy", np.asarray(split.y_train, dtype=np.int64))
        np.save(out / f"{data}_y_val.npy", np.asarray(split.y_val, dtype=np.int64))
        if data == "split":  # raw images for the augmentation feed
            np.save(out / "split_images.npy", np.asarray(split.x_train, dtype=np.uint8).reshape(-1, 28, 28))
    if "full" in needed:
        images = np.asarray(mnist.train_images).reshape(len(mnist.train_images), -1)
        norm = Normalizer.fit(images)
        np.save(out / "full_x_train.npy", norm.apply(images, dtype=np.float32))
        np.save(out / "full_y_train.npy", np.asarray(mnist.train_labels, dtype=np.int64))


# --------------------------------------------------------------------------- measuring
def summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "values": values}


def run_workload(name: str, engines: list[str], args, data_dir: Path, blas: Worker, best_so_far: float) -> dict:
    w: Workload = WORKLOADS[name]
    engines = [e for e in engines if e in w.engines]
    if "mlpkit" in engines and "mlpkit-plain" in w.engines:  # mlpkit without augmentation, same rounds
        engines.insert(engines.index("mlpkit") + 1, "mlpkit-plain")
    rounds = args.rounds or (3 if args.quick or name in ("large", "modern", "augmented") else 7)
    workers = {e: Worker(e, name, args.mode, data_dir, args.threads, args.seed) for e in engines}
    try:
        ready = {e: worker.ready() for e, worker in workers.items()}
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
    if "pytorch" in engines:
        res["engines"]["pytorch"]["threads"] = ready["pytorch"].get("torch_threads")
    work = None
    if "mlpkit" in engines:  # what mlpkit's path computes: from its ready message and its units
        last = times["mlpkit"][-1]
        res["engines"]["mlpkit"]["engine"] = last.get("engine")
        res["engines"]["mlpkit"]["fallback_reason"] = last.get("fallback_reason")
        mode_train = w.mode == "train"
        work = {
            "engine": last.get("engine", "compiled"),
            "sparse_steps": bool(last.get("sparse_steps")) and mode_train,
            **{k: ready["mlpkit"][k] for k in ("sparse_validation", "nnz_train", "nnz_val")},
        }
    if REFERENCE in engines:
        ref = times[REFERENCE]
        for e in engines:
            res["ratios"][e] = {
                k: summary([t[k] / rt[k] for t, rt in zip(times[e], ref)])
                for k in ("whole", "train")
                if all(rt[k] > 0 for rt in ref)
            }
    if "mlpkit-plain" in engines:  # what augmentation adds to mlpkit's epoch, round by round
        res["augment_cost"] = summary([t["whole"] / p["whole"] for t, p in zip(times["mlpkit"], times["mlpkit-plain"])])
    res["floor"] = floors(name, rates, work, max(best_so_far, best_rate(rates)))
    return res


def recipe_runs(args, mnist_dir: Path | None) -> dict:
    """Each of RECIPE_RUNS in a fresh process: its peak memory (VmHWM) and wall time."""
    runs = {}
    for preset, quick_epochs, full_epochs in RECIPE_RUNS:
        epochs = quick_epochs if args.quick else full_epochs
        worker = Worker("recipe", f"{preset}:{epochs or ''}", args.mode, mnist_dir or "-", args.threads, args.seed)
        try:
            worker.ready()
            msg = worker.quit()
            runs[preset] = {"peak_rss_mb": msg["peak_rss_mb"], **msg["final"]}
        finally:
            worker.kill()
        r = runs[preset]
        print(
            f"\n{preset} run ({r['epochs']} epoch(s), run_experiment with plots"
            f"{', test evaluation' if r.get('test_accuracy') is not None else ''}): peak memory"
            f" {r['peak_rss_mb']:.0f} MB, {r['wall_s']:.1f} s wall, engine {r.get('engine')}",
            flush=True,
        )
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="3 rounds; a fifth of the seed epochs, 39 steps of the large one"
    )
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count(), help="threads for every engine (default: all cores)"
    )
    parser.add_argument(
        "--rounds", type=int, default=None, help="timed rounds per workload (default 7; quick 3; large, modern 3)"
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
    parser.add_argument(
        "--no-runs", action="store_true", help="skip the whole runs (task3c, mnist-fast) measured for peak memory"
    )
    parser.add_argument("--no-cold-start", action="store_true", help="skip the cold-start measurement")
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
    runs: dict = {}
    cold = None
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
            best = 0.0
            for name in names:  # each workload's floors printed at the best rate so far, then all at the run's
                results[name] = run_workload(name, engines, args, data_dir, blas, best)
                best = results[name]["floor"]["best_gflops"]
                print_workload(name, results[name])
            for name, res in results.items():
                f = res["floor"]
                res["floor"] = floors(name, f["rates"], f.get("work"), best)
            blas.quit()
        finally:
            blas.kill()
        if not args.no_runs and "mlpkit" in engines:
            runs = recipe_runs(args, mnist_dir)
        if not args.no_cold_start and "mlpkit" in engines:
            cold = cold_start(mnist_dir, REPO)
            print(
                f"\ncold start (mlpkit train task3c --set epochs=1, empty kernel cache): {cold['cold_s']:.1f} s,"
                f" warm {cold['warm_s']:.1f} s: {cold['ratio']:.1f}x",
                flush=True,
            )
    info["loadavg_end"] = os.getloadavg()
    if results:
        print(f"\nfloors below: at the run's best BLAS rate, {best:.0f} GFLOP/s (float32, any library, any round)")
    print_summary(results, ENGINES)
    checks = check_targets(results, runs, cold)
    print("\ntargets (ratios: medians of per-round ratios; floors: at the best BLAS rate for the work done):")
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
                "runs": runs,
                "seed_run": runs.get("task3c"),
                "cold_start": cold,
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
