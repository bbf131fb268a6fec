#!/usr/bin/env python
"""mlpkit.MLPClassifier against sklearn.neural_network.MLPClassifier on MNIST and digits.

    python benchmarks/estimator_vs_sklearn.py            # full: MNIST 20 epochs, digits 30, 3 repeats
    python benchmarks/estimator_vs_sklearn.py --quick    # a smoke run: MNIST 2 epochs, 1 repeat

Both estimators get the same network (one hidden layer of 64 units, tanh or logistic, softmax
output), the same plain SGD (lr 0.02, heavy-ball momentum 0.9, no Nesterov, batch 32, shuffled
every epoch), no L2, no early stopping and exactly the same number of epochs (scikit-learn's
convergence test is switched off, and both ``n_iter_`` are checked). Each library keeps its own
Glorot-uniform initializer (mlpkit's ``init="glorot_uniform"``; scikit-learn narrows it for
logistic). Inputs are scaled as a scikit-learn user would: MNIST's pixels / 255 (60,000
training and 10,000 test images, read through ``MLPKIT_DATA``), digits standardized on its
training 75%. Each case runs in float32
and float64 (scikit-learn keeps float32 inputs in float32), and is given its inputs already in
that dtype, so neither fit pays for a conversion the other skips.

Both fits run in this process under the same BLAS thread limit (``--threads``, default 1: the
products of a 32-row batch are too small for more). After one untimed warm-up fit per case
(Numba compiles mlpkit's kernels once per dtype), every repeat fits each case with both
libraries back to back, which goes first alternating between repeats, so a busy spell on a shared machine hits both
alike. Repeat ``r`` uses ``random_state=r``. The table shows the mean test accuracy over the
repeats, the median fit time, and the median of the per-repeat time ratios. Results go to
benchmarks/results/estimator-vs-sklearn-{quick,full}-DATE.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from importlib import metadata
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SklearnMLP
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_info, threadpool_limits

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
import mlpkit  # noqa: E402
from mlpkit.data import load_mnist  # noqa: E402

HIDDEN = (64,)
LEARNING_RATE = 0.02
MOMENTUM = 0.9
BATCH_SIZE = 32
#: mlpkit's activation name -> scikit-learn's
ACTIVATIONS = {"tanh": "tanh", "sigmoid": "logistic"}
DTYPES = ("float32", "float64")
LIBRARIES = ("mlpkit", "sklearn")
#: (MNIST epochs, digits epochs, repeats) per mode
MODES = {"full": (20, 30, 3), "quick": (2, 10, 1)}


@dataclass(frozen=True)
class Split:
    """One dataset's scaled arrays (float64; each case casts them to its dtype)."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    scaling: str


@dataclass(frozen=True)
class Fit:
    """One timed fit and its test accuracy."""

    dataset: str
    activation: str
    dtype: str
    library: str
    seed: int
    epochs: int
    fit_s: float
    accuracy: float


def mnist_split() -> Split:
    """MNIST's 60,000 / 10,000 images flattened and divided by 255, as scikit-learn users do."""
    mnist = load_mnist()
    flat = [images.reshape(len(images), -1) / 255.0 for images in (mnist.train_images, mnist.test_images)]
    return Split("mnist", flat[0], mnist.train_labels.copy(), flat[1], mnist.test_labels.copy(), "pixels / 255")


def digits_split() -> Split:
    """scikit-learn's 8x8 digits: a stratified 25% held out, standardized on the other 75% (as docs/benchmarks.md)."""
    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    scaler = StandardScaler().fit(x_train)
    return Split("digits", scaler.transform(x_train), y_train, scaler.transform(x_test), y_test, "StandardScaler")


def make_estimator(library: str, activation: str, dtype: str, epochs: int, seed: int, threads: int) -> object:
    """The two estimators with the same network, optimizer, batch and epochs."""
    if library == "mlpkit":
        return mlpkit.MLPClassifier(
            hidden_layer_sizes=HIDDEN,
            activation=activation,
            init="glorot_uniform",
            learning_rate_init=LEARNING_RATE,
            momentum=MOMENTUM,
            batch_size=BATCH_SIZE,
            max_iter=epochs,
            shuffle=True,
            early_stopping=False,
            random_state=seed,
            dtype=dtype,
            threads=threads,
        )
    # dtype: scikit-learn trains in the dtype of X (float32 is kept since 1.1)
    return SklearnMLP(
        hidden_layer_sizes=HIDDEN,
        activation=ACTIVATIONS[activation],
        solver="sgd",
        alpha=0.0,
        batch_size=BATCH_SIZE,
        learning_rate="constant",
        learning_rate_init=LEARNING_RATE,
        momentum=MOMENTUM,
        nesterovs_momentum=False,
        max_iter=epochs,
        shuffle=True,
        early_stopping=False,
        tol=0.0,
        n_iter_no_change=epochs + 1,  # never stop before max_iter
        random_state=seed,
    )


def timed_fit(
    library: str, split: Split, activation: str, dtype: str, epochs: int, seed: int, threads: int, arrays: dict
) -> Fit:
    """Fit one estimator on the training arrays (already cast to ``dtype``) and score it on the test arrays."""
    x_train, x_test = arrays[dtype]
    estimator = make_estimator(library, activation, dtype, epochs, seed, threads)
    with threadpool_limits(threads), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # scikit-learn's "max_iter reached"
        start = time.perf_counter()
        estimator.fit(x_train, split.y_train)  # type: ignore[attr-defined]
        fit_s = time.perf_counter() - start
        accuracy = float(estimator.score(x_test, split.y_test))  # type: ignore[attr-defined]
    n_iter = estimator.n_iter_  # type: ignore[attr-defined]
    if n_iter != epochs:
        raise RuntimeError(f"{library} ran {n_iter} epochs, not {epochs}")
    if library == "sklearn" and estimator.coefs_[0].dtype != np.dtype(dtype):  # type: ignore[attr-defined]
        raise RuntimeError(f"scikit-learn trained in {estimator.coefs_[0].dtype}, not {dtype}")  # type: ignore[attr-defined]
    return Fit(split.name, activation, dtype, library, seed, epochs, fit_s, accuracy)


def run_dataset(
    split: Split, epochs: int, repeats: int, threads: int, dtypes: tuple[str, ...], log: Callable
) -> list[Fit]:
    """Every case of one dataset: warm-ups, then ``repeats`` rounds of both libraries side by side."""
    arrays = {d: (split.x_train.astype(d), split.x_test.astype(d)) for d in dtypes}
    cases = [(a, d) for a in ACTIVATIONS for d in dtypes]
    warm = Split(split.name, split.x_train[:256], split.y_train[:256], split.x_test[:64], split.y_test[:64], "")
    warm_arrays = {d: (warm.x_train.astype(d), warm.x_test.astype(d)) for d in dtypes}
    for activation, dtype in cases:
        for library in LIBRARIES:
            timed_fit(library, warm, activation, dtype, 1, 0, threads, warm_arrays)
    fits: list[Fit] = []
    for seed in range(repeats):
        for index, (activation, dtype) in enumerate(cases):
            order = LIBRARIES if (seed + index) % 2 == 0 else LIBRARIES[::-1]
            for library in order:
                fit = timed_fit(library, split, activation, dtype, epochs, seed, threads, arrays)
                what = f"{split.name} {activation:7} {dtype} {library:7} seed {seed}"
                log(f"  {what}: {fit.fit_s:7.2f} s, accuracy {fit.accuracy:.4f}")
                fits.append(fit)
    return fits


def summarize(fits: list[Fit]) -> list[dict]:
    """One row per (dataset, activation, dtype): mean accuracy, median fit time, median time ratio."""
    rows = []
    keys = list(dict.fromkeys((f.dataset, f.activation, f.dtype) for f in fits))
    for dataset, activation, dtype in keys:
        by_lib = {
            lib: sorted(
                (f for f in fits if (f.dataset, f.activation, f.dtype, f.library) == (dataset, activation, dtype, lib)),
                key=lambda f: f.seed,
            )
            for lib in LIBRARIES
        }
        ratios = [s.fit_s / m.fit_s for m, s in zip(by_lib["mlpkit"], by_lib["sklearn"], strict=True)]
        row: dict = {"dataset": dataset, "activation": activation, "dtype": dtype, "epochs": by_lib["mlpkit"][0].epochs}
        for lib, runs in by_lib.items():
            row[f"{lib}_accuracy"] = statistics.fmean(f.accuracy for f in runs)
            row[f"{lib}_accuracy_range"] = [min(f.accuracy for f in runs), max(f.accuracy for f in runs)]
            row[f"{lib}_fit_s"] = statistics.median(f.fit_s for f in runs)
        row["time_ratio_sklearn_over_mlpkit"] = statistics.median(ratios)
        row["time_ratio_range"] = [min(ratios), max(ratios)]
        rows.append(row)
    return rows


def markdown(rows: list[dict], caption: str) -> str:
    """The side-by-side table, a caption above it."""
    lines = [
        caption,
        "",
        "| dataset (epochs) | activation | dtype | mlpkit accuracy | scikit-learn accuracy "
        "| mlpkit fit | scikit-learn fit | scikit-learn / mlpkit time |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        low, high = r["time_ratio_range"]
        spread = f" ({low:.1f}-{high:.1f})" if high > low else ""
        lines.append(
            f"| {r['dataset']} ({r['epochs']}) | {r['activation']} / {ACTIVATIONS[r['activation']]} | {r['dtype']} "
            f"| {r['mlpkit_accuracy']:.4f} | {r['sklearn_accuracy']:.4f} "
            f"| {r['mlpkit_fit_s']:.2f} s | {r['sklearn_fit_s']:.2f} s "
            f"| {r['time_ratio_sklearn_over_mlpkit']:.2f}x{spread} |"
        )
    return "\n".join(lines)


def machine(threads: int) -> dict:
    """What the numbers depend on: versions, cores, BLAS, load."""
    versions: dict[str, str | None] = {}
    for name in ("numpy", "numba", "scikit-learn", "threadpoolctl", "mlpkit"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "threads": threads,
        "versions": versions,
        "blas": [{k: v for k, v in lib.items() if k != "filepath"} for lib in threadpool_info()],
        "loadavg_start": list(os.getloadavg()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: few epochs, one repeat")
    parser.add_argument("--datasets", default="mnist,digits", help="comma-separated: mnist, digits")
    parser.add_argument("--dtypes", default=",".join(DTYPES), help="comma-separated: float32, float64")
    parser.add_argument("--repeats", type=int, help="fits per case and library (default: 3, quick 1)")
    parser.add_argument("--mnist-epochs", type=int, help="default: 20, quick 2")
    parser.add_argument("--digits-epochs", type=int, help="default: 30, quick 10")
    parser.add_argument("--threads", type=int, default=1, help="BLAS thread limit for both (default 1)")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="folder for the JSON")
    args = parser.parse_args(argv)
    mode = "quick" if args.quick else "full"
    mnist_epochs, digits_epochs, repeats = MODES[mode]
    mnist_epochs = args.mnist_epochs or mnist_epochs
    digits_epochs = args.digits_epochs or digits_epochs
    repeats = args.repeats or repeats
    dtypes = tuple(d for d in args.dtypes.split(",") if d)
    datasets = [d for d in args.datasets.split(",") if d]
    loaders = {"mnist": (mnist_split, mnist_epochs), "digits": (digits_split, digits_epochs)}
    if unknown := sorted(set(datasets) - set(loaders)) + sorted(set(dtypes) - set(DTYPES)):
        parser.error(f"unknown dataset or dtype: {', '.join(unknown)}")

    started = datetime.now()
    info = machine(args.threads)
    t0 = time.perf_counter()
    fits: list[Fit] = []
    for name in datasets:
        load, epochs = loaders[name]
        split = load()
        print(f"{name}: {len(split.x_train)} training, {len(split.x_test)} test rows, {epochs} epochs", flush=True)
        fits += run_dataset(split, epochs, repeats, args.threads, dtypes, lambda s: print(s, flush=True))
    wall_s = time.perf_counter() - t0
    info["loadavg_end"] = list(os.getloadavg())

    rows = summarize(fits)
    command = " ".join(["python benchmarks/estimator_vs_sklearn.py", *(sys.argv[1:] if argv is None else argv)])
    caption = (
        f"`{command}` ({mode}, {started:%Y-%m-%d}): one hidden layer of 64 units, SGD lr {LEARNING_RATE}, momentum "
        f"{MOMENTUM}, batch {BATCH_SIZE}, no L2, no early stopping, each library's "
        f"Glorot-uniform init (scikit-learn narrows it for logistic); MNIST "
        f"/255 (60,000 train, 10,000 test), digits standardized (25% held out). Accuracy: mean of {repeats} "
        f"seed(s); fit time: median of {repeats}, both in this run, BLAS on {args.threads} thread(s), "
        f"{info['cpu_count']} shared cores (1-minute load {info['loadavg_start'][0]:.1f} at the start, "
        f"{info['loadavg_end'][0]:.1f} at the end), Numba cache warm; "
        f"whole run {wall_s / 60:.1f} min."
    )
    table = markdown(rows, caption)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"estimator-vs-sklearn-{mode}-{started:%Y%m%d-%H%M%S}.json"
    record = {
        "mode": mode,
        "command": command,
        "date": started.isoformat(timespec="seconds"),
        "wall_s": wall_s,
        "settings": {
            "hidden_layer_sizes": list(HIDDEN),
            "learning_rate": LEARNING_RATE,
            "momentum": MOMENTUM,
            "batch_size": BATCH_SIZE,
            "repeats": repeats,
            "epochs": {name: loaders[name][1] for name in datasets},
            "scaling": {"mnist": "pixels / 255", "digits": "StandardScaler"},
            "dtypes": list(dtypes),
        },
        "machine": info,
        "summary": rows,
        "fits": [asdict(f) for f in fits],
        "markdown": table,
    }
    path.write_text(json.dumps(record, indent=1) + "\n")
    print()
    print(table)
    print(f"\nwrote {path.relative_to(HERE.parent) if path.is_relative_to(HERE.parent) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
