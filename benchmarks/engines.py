"""One benchmark worker: one engine, one workload, in its own process.

    python benchmarks/engines.py ENGINE WORKLOAD RUN_MODE DATA_DIR THREADS SEED

Engines: ``mlpkit`` (Trainer.fit, the path ``mlpkit train`` uses), ``pytorch`` (a plain
nn.Module + torch.optim loop, as a practitioner writes it: torch_engine.py), ``sklearn``
(MLPClassifier.partial_fit), ``blas`` (matrix-multiply rate, for the FLOP floors) and
``recipe`` (a preset or recipe through ``run_experiment``, for its peak memory).

Protocol (driven by run.py): the worker sets up, prints {"ready": ...} and then, for each
line "run" on stdin, runs one unit (an epoch, or ``unit_steps`` steps) and prints its times
as one JSON line; "quit" makes it print its peak memory and last metrics and exit. Training
runs continuously across units: the worker just waits at the end of each one.
"""

from __future__ import annotations

import dataclasses
import json
import math
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workloads import SCHEDULE_EPOCHS, WORKLOADS, Workload

clock = time.perf_counter


def send(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def command() -> str:
    line = sys.stdin.readline()
    return line.strip() or "quit"


def peak_rss_mb() -> float:
    """Peak resident memory of this process since it started (VmHWM; ru_maxrss would include
    the parent's memory at fork time, which Linux carries across exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:  # pragma: no cover - not Linux
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024.0 if sys.platform != "darwin" else 2**20)


def load(data_dir: Path, w: Workload) -> dict[str, np.ndarray]:
    """Normalized float32 (n, 784) images and int64 labels written by run.py."""
    names = ["x_train", "y_train"] + (["x_val", "y_val"] if w.n_val else [])
    arrays = {k: np.load(data_dir / f"{w.data}_{k}.npy") for k in names}
    if not w.n_val:  # training only: a token validation set (never evaluated)
        arrays["x_val"], arrays["y_val"] = arrays["x_train"][:100], arrays["y_train"][:100]
    return arrays


def augment_feed(data_dir: Path, w: Workload, seed: int, bias_column: bool):
    """mlpkit's background feed of each epoch's affine + elastic images (both engines use it, as
    recipe_vs_torch.py does: augmentation is paid by both, off the training thread)."""
    from mlpkit.data.augment import Augmentation
    from mlpkit.data.normalize import Normalization
    from mlpkit.train.augment_feed import AugmentFeed, augmented_inputs

    images = np.load(data_dir / f"{w.data}_images.npy")
    norm = Normalization.fit(images.reshape(len(images), -1))
    produce = augmented_inputs(images, Augmentation(), seed, norm)
    return AugmentFeed(produce, len(images), images[0].size, bias_column=bias_column)


def with_bias_column(x: np.ndarray) -> np.ndarray:
    out = np.empty((x.shape[0], x.shape[1] + 1), dtype=np.float32)
    out[:, :-1] = x
    out[:, -1] = 1.0
    return out


def init_weights(w: Workload, rng: np.random.Generator) -> list[np.ndarray]:
    """The seed's initializers, drawn the same way for every engine that lets us set weights."""
    weights = []
    for fan_in, fan_out in w.layer_shapes:
        if w.init == "uniform":
            weights.append(rng.uniform(-1, 1, size=(fan_in, fan_out)).astype(np.float32))
        else:
            gain = math.sqrt(2.0) if w.init == "he_normal" else 1.0
            weights.append((rng.normal(size=(fan_in, fan_out)) * gain / math.sqrt(fan_in)).astype(np.float32))
    return weights


class UnitClock:
    """Times units: whole = wall time of the unit, train = whole minus its validations."""

    def __init__(self, unit_steps: int, scale: float) -> None:
        self.unit_steps, self.scale = unit_steps, scale
        self.start = clock()
        self.validation = 0.0
        self.metrics: dict[str, float] = {}
        self.info: dict = {}  # sent with every unit (e.g. which engine mlpkit chose)

    def end_unit(self) -> bool:
        """Report the unit and wait for the next command; True if the worker should stop."""
        now = clock()
        whole = now - self.start
        send(
            {
                "whole": whole * self.scale,
                "train": (whole - self.validation) * self.scale,
                "validation": self.validation * self.scale,
                **self.info,
            }
        )
        stop = command() != "run"
        self.start, self.validation = clock(), 0.0
        return stop


# --------------------------------------------------------------------------- mlpkit
def run_mlpkit(w: Workload, run_mode: str, data: dict, threads: int, seed: int, data_dir: Path) -> dict:
    from threadpoolctl import threadpool_limits

    from mlpkit.engine.evaluator import Evaluator
    from mlpkit.engine.sparse import sparse_rows
    from mlpkit.nn.mlp import MLP
    from mlpkit.train.callbacks import Callback, History
    from mlpkit.train.trainer import Trainer

    model = MLP(list(w.hidden), activation=w.activation, bias=w.bias, dtype="float32")
    rng = np.random.default_rng(seed)
    model.init_weights(rng, w.init)
    x_train, y_train = model.prepare_inputs(data.pop("x_train")), data.pop("y_train")
    x_val, y_val = model.prepare_inputs(data.pop("x_val")), data.pop("y_val")
    send({"ready": True, **sparse_work(model, w, x_train, x_val)})
    with threadpool_limits(limits=threads):
        if w.mode == "validate":
            evaluator = Evaluator(model, max_rows=max(len(x_train), len(x_val)))
            for x in (x_train, x_val):  # as Trainer.fit does, once per run (not timed: ~0.1 s)
                evaluator.use_sparse(x, sparse_rows(x))
            return validate_loop(lambda: _mlpkit_validate(evaluator, x_train, y_train, x_val, y_val), w, run_mode)
        if command() != "run":
            return {}
        steps = w.steps_per_unit(run_mode)
        clock_ = UnitClock(steps, w.steps_per_epoch / steps)

        class Clock(Callback):
            def on_train_begin(self, trainer) -> None:
                clock_.start = clock()
                clock_.info = {
                    "engine": trainer.engine_used,
                    "sparse_steps": trainer.sparse_used,
                    "fallback_reason": trainer.fallback_reason,
                }

            def on_step_end(self, trainer, step, loss) -> None:
                if trainer.validate_every and step % trainer.validate_every == 0:
                    self.v0 = clock()
                elif not trainer.validate_every and step % steps == 0 and clock_.end_unit():
                    trainer.stop_training = True

            def on_steps_end(self, trainer, first_step, losses) -> None:
                # the engines report runs of steps; they end at every validation, and for large
                # models every few steps (engine.planner.SEGMENT_MACS): a unit ends with the run
                # that holds its last step, so per-unit times telescope to the true total
                last = first_step + len(losses) - 1
                if trainer.validate_every:
                    self.on_step_end(trainer, last, losses[-1])
                elif last // steps > (first_step - 1) // steps and clock_.end_unit():
                    trainer.stop_training = True

            def on_validation_end(self, trainer, logs) -> None:
                clock_.validation += clock() - self.v0
                clock_.metrics = {
                    "val_accuracy": logs["val_accuracy"],
                    "val_loss": logs["val_loss"],
                    "train_accuracy": logs["train_accuracy"],
                }
                if trainer.state.step % steps == 0 and clock_.end_unit():
                    trainer.stop_training = True

        history = History()
        optimizer, options = mlpkit_recipe(model, w)
        feed = augment_feed(data_dir, w, seed, bias_column=w.bias == "input_column") if w.augment else None
        trainer = Trainer(
            model,
            optimizer,
            rng=rng,
            epochs=10_000,
            batch_size=w.batch_size,
            validations_per_epoch=w.validations_per_epoch,
            callbacks=[history, Clock()],
            options=options,
            augment=feed,
        )
        trainer.segment_steps = steps  # compiled runs of steps end at unit boundaries
        try:
            trainer.fit(x_train, y_train, x_val, y_val)
        finally:
            if feed is not None:
                feed.close()
        return {**clock_.metrics, "last_batch_loss": float(history.train_loss[-1])}


def mlpkit_recipe(model, w: Workload):
    """The workload's optimizer and step options, as ``mlpkit train`` builds them from a config."""
    from mlpkit.engine.step_options import StepOptions
    from mlpkit.nn.dropout import Dropout
    from mlpkit.optim.adam import AdamW
    from mlpkit.optim.schedules import CosineWithWarmup
    from mlpkit.optim.sgd import SGD

    if w.optimizer == "adamw":
        optimizer = AdamW(model.parameters(), lr=w.lr)
    else:
        optimizer = SGD(model.parameters(), lr=w.lr, momentum=w.momentum)
    schedule = None
    if w.schedule == "cosine":
        spe = w.steps_per_epoch
        schedule = CosineWithWarmup(optimizer, warmup_steps=spe // 2, total_steps=SCHEDULE_EPOCHS * spe)
    dropout = Dropout(hidden_rate=w.dropout) if w.dropout else None
    return optimizer, StepOptions(dropout=dropout, label_smoothing=w.label_smoothing, schedule=schedule)


def sparse_work(model, w: Workload, x_train: np.ndarray, x_val: np.ndarray) -> dict:
    """What the work-done floor needs: entries per row off their column's base (the sparse first
    layer's work), and whether validation reads the sparse form (it does wherever the compiled
    evaluation runs, with augmentation too: validation reads the fixed, unaugmented sets; the
    steps' choice comes with each unit)."""
    import os

    from mlpkit.engine.compiled import model_reason
    from mlpkit.engine.sparse import sparse_rows

    compiled = os.environ.get("MLPKIT_ENGINE", "").strip().lower() != "numpy" and model_reason(model) is None
    if not compiled:
        return {"sparse_validation": False, "nnz_train": float(x_train.shape[1]), "nnz_val": float(x_val.shape[1])}
    out: dict = {"sparse_validation": True}
    for name, x in (("train", x_train), ("val", x_val)):
        sp = sparse_rows(x)
        out["sparse_validation"] = out["sparse_validation"] and sp is not None
        out[f"nnz_{name}"] = float(x.shape[1]) if sp is None else sp.density * sp.shape[1]
        del sp
    return out


def _mlpkit_validate(evaluator, x_train, y_train, x_val, y_val) -> dict:
    """One validation pass, as Trainer._validate does it."""
    (val_loss, val_acc), (train_loss, train_acc) = evaluator.evaluate_many([(x_val, y_val), (x_train, y_train)])
    return {"val_loss": val_loss, "val_accuracy": val_acc, "train_accuracy": train_acc}


def validate_loop(one_pass, w: Workload, run_mode: str) -> dict:
    """The 'validation' workload: a unit is the epoch's validation passes (a fifth with --quick)."""
    metrics: dict = {}
    passes = w.validations_per_unit(run_mode)
    scale = w.validations_per_epoch / passes
    while command() == "run":
        start = clock()
        for _ in range(passes):
            metrics = one_pass()
        elapsed = (clock() - start) * scale
        send({"whole": elapsed, "train": 0.0, "validation": elapsed})
    return metrics


# -------------------------------------------------------------------------- sklearn
def run_sklearn(w: Workload, run_mode: str, data: dict, threads: int, seed: int) -> dict:
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits

    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    # sklearn has no scaled tanh and no bias trick: tanh for the improved sigmoid, per-layer biases.
    activation = {"sigmoid": "logistic", "improved_sigmoid": "tanh", "relu": "relu"}[w.activation]
    clf = MLPClassifier(
        hidden_layer_sizes=w.hidden,
        activation=activation,
        solver="sgd",
        alpha=0.0,
        batch_size=w.batch_size,
        learning_rate_init=w.lr,
        momentum=w.momentum,
        nesterovs_momentum=False,
        shuffle=True,
        random_state=seed,
    )
    xt, yt, xv, yv = data.pop("x_train"), data.pop("y_train"), data.pop("x_val"), data.pop("y_val")
    classes = np.arange(10)
    rng = np.random.default_rng(seed)

    def validate() -> dict:
        out = {}
        for name, x, y in (("val", xv, yv), ("train", xt, yt)):
            proba = clf.predict_proba(x)
            out[f"{name}_loss"] = float(-np.mean(np.log(np.maximum(proba[np.arange(len(y)), y], 1e-12))))
            out[f"{name}_accuracy"] = float(np.mean(proba.argmax(axis=1) == y))
        return out

    send({"ready": True})
    with threadpool_limits(limits=threads):
        if w.mode == "validate":
            clf.partial_fit(xt[:4000], yt[:4000], classes=classes)
            return validate_loop(validate, w, run_mode)
        if command() != "run":
            return {}
        steps = w.steps_per_unit(run_mode)
        clock_ = UnitClock(steps, w.steps_per_epoch / steps)
        # partial_fit runs one pass over what it is given: hand it the samples of the steps
        # up to the next validation (or unit end), from this epoch's permutation.
        every = w.steps_per_epoch // w.validations_per_epoch if w.validations_per_epoch else steps
        bs, step = w.batch_size, 0
        clock_.start = clock()
        while True:
            perm = rng.permutation(len(xt))
            for k in range(0, w.steps_per_epoch, every):
                idx = perm[k * bs : (k + every) * bs]
                clf.partial_fit(xt[idx], yt[idx], classes=classes)
                step += every
                if w.validations_per_epoch:
                    v0 = clock()
                    clock_.metrics = validate()
                    clock_.validation += clock() - v0
                if step % steps == 0 and clock_.end_unit():
                    return {**clock_.metrics, "dtype": str(clf.coefs_[0].dtype)}


# ----------------------------------------------------------------------------- blas
def run_blas(threads: int) -> dict:
    """Best float32 matrix-multiply rate (GFLOP/s) of numpy's BLAS and of PyTorch's, per unit."""
    from threadpoolctl import threadpool_info, threadpool_limits

    size, reps = 1024, 6
    a = np.random.default_rng(0).standard_normal((size, size), dtype=np.float32)
    b, c = a.copy(), np.empty_like(a)
    torch = None
    try:
        import torch

        torch.set_num_threads(threads)
        ta, tb, tc = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(c)
    except ImportError:  # pragma: no cover
        pass
    blas = [
        {k: lib.get(k) for k in ("internal_api", "version", "architecture", "num_threads", "filepath")}
        for lib in threadpool_info()
        if lib.get("user_api") == "blas"
    ]
    send({"ready": True, "blas": blas})
    flops = 2.0 * size**3
    with threadpool_limits(limits=threads):
        while command() == "run":
            best_np = best_torch = math.inf
            for _ in range(reps):
                t = clock()
                np.matmul(a, b, out=c)
                best_np = min(best_np, clock() - t)
                if torch is not None:
                    t = clock()
                    torch.matmul(ta, tb, out=tc)
                    best_torch = min(best_torch, clock() - t)
            send(
                {
                    "numpy_gflops": flops / best_np / 1e9,
                    "torch_gflops": flops / best_torch / 1e9 if torch is not None else None,
                }
            )
    return {}


# ---------------------------------------------------------------------------- recipe
def run_recipe(mnist_dir: str, threads: int, preset: str, epochs: int | None) -> dict:
    """A real run of a preset or recipe through run_experiment (the path of ``mlpkit train``;
    with a test part, e.g. the ``full`` split, that includes the test evaluation): its wall time and
    this process's peak memory, plots and run folder included. ``epochs``: None keeps the preset's."""
    import tempfile

    from mlpkit.runs.config import with_overrides
    from mlpkit.workflows.configs import resolve_config
    from mlpkit.workflows.experiment import run_experiment

    overrides = [f"train.threads={threads}"] + ([f"train.epochs={epochs}"] if epochs else [])
    cfg = with_overrides(resolve_config(preset), overrides)
    send({"ready": True})
    command()
    with tempfile.TemporaryDirectory() as tmp:
        start = clock()
        result = run_experiment(
            cfg,
            Path(tmp) / "run",
            data_dir=mnist_dir if mnist_dir != "-" else None,
            progress=False,
            log=lambda *a: None,
        )
        wall = clock() - start
    keep = ("val_accuracy", "test_accuracy", "engine", "engine_fallback_reason")
    return {"wall_s": wall, "epochs": cfg.train.epochs, **{k: result.metrics.get(k) for k in keep}}


def main() -> None:
    engine, workload, run_mode, data_dir, threads, seed = sys.argv[1:7]
    threads, seed = int(threads), int(seed)
    if engine == "blas":
        final = run_blas(threads)
    elif engine == "recipe":  # workload: PRESET or PRESET:EPOCHS
        preset, _, epochs = workload.partition(":")
        final = run_recipe(data_dir, threads, preset, int(epochs) if epochs else None)
    else:
        w = WORKLOADS[workload]
        data = load(Path(data_dir), w)
        if engine == "sklearn":
            final = run_sklearn(w, run_mode, data, threads, seed)
        elif engine == "pytorch":
            from torch_engine import run_pytorch

            final = run_pytorch(w, run_mode, data, threads, seed, Path(data_dir))
        elif engine == "mlpkit-plain":  # the same workload without its augmentation
            final = run_mlpkit(dataclasses.replace(w, augment=False), run_mode, data, threads, seed, Path(data_dir))
        else:
            final = run_mlpkit(w, run_mode, data, threads, seed, Path(data_dir))
    send({"done": True, "peak_rss_mb": peak_rss_mb(), "final": final})


if __name__ == "__main__":
    main()
