#!/usr/bin/env python
"""One of mlpkit's recipes trained by mlpkit and by PyTorch, seed by seed, on this machine.

    python benchmarks/recipe_vs_torch.py                          # mnist-fast, seeds 0,1,2, 2 threads
    python benchmarks/recipe_vs_torch.py --recipe mnist-best --seeds 0
    python benchmarks/recipe_vs_torch.py --set train.epochs=1     # a smoke run (applies to both)

mlpkit runs as ``mlpkit train RECIPE --set seed=S --threads T`` does (`run_experiment` in this
process, a temporary folder); ``test_accuracy`` and ``wall_time_s`` come from ``metrics.json``.
``wall_time_s`` is ``Trainer.fit``: the background augmentation feed, the steps, each validation
(validation and whole training set, both curves) and the checkpoints; not the data loading, the
final writes nor the test evaluation. PyTorch is timed over the same work, with:

- the arrays of `experiment_data(cfg)` (split and normalization, read once for both sides), the
  test images normalized with the same statistics;
- each epoch's augmented images from mlpkit's own `augment_feed` (`augmented_epoch` +
  normalization on a background thread): both sides pay for augmentation, off the training thread;
- nn.Sequential([Dropout(input)], Linear, ReLU, Dropout(hidden), ..., Linear), weights
  kaiming_normal_(fan_in, relu) as ``he_normal``, biases zero as ``per_layer`` starts them;
- SGD (momentum, Nesterov, weight decay), Adam / AdamW (lr, betas, eps, weight decay); ``cosine_warmup``
  as a LambdaLR of the formula of
  `CosineWithWarmup`, stepped every step and checked against mlpkit's schedule over the whole run
  before anything is timed; max-norm on hidden units after every step; CrossEntropyLoss(label_smoothing);
- a new permutation each epoch, batches of ``batch_size``, ``drop_last`` as configured; the same
  validation cadence (eval mode, no grad); ``torch.save`` checkpoints where mlpkit writes them;
- ``torch.set_num_threads(threads)``; mlpkit gets ``train.threads = threads``.

Both are evaluated once, at the end, on the 10,000 test images. One untimed one-epoch warm-up
of each side comes first; which side goes first alternates between seeds. Output: a Markdown
table (per seed, mean +- std) and benchmarks/results/recipe-vs-torch-<recipe>-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
from mlpkit.core.errors import ConfigError  # noqa: E402
from mlpkit.data.prepare import PreparedData  # noqa: E402
from mlpkit.runs.config import Config  # noqa: E402
from mlpkit.runs.training_options import steps_per_epoch  # noqa: E402
from mlpkit.workflows.configs import resolve_config  # noqa: E402
from mlpkit.workflows.experiment import run_experiment  # noqa: E402
from mlpkit.workflows.experiment_data import augment_feed, experiment_data, load_experiment_dataset  # noqa: E402

EVAL_ROWS = 10_000
TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def check_supported(cfg: Config) -> None:
    """Refuse a recipe using something the PyTorch side does not implement (rather than run another recipe)."""
    m, t = cfg.model, cfg.train
    problems = [
        f"{what} = {value!r}"
        for what, value, ok in (
            ("model.activation", m.activation, m.activation == "relu"),
            ("model.init", m.init, m.init == "he_normal"),
            ("model.bias", m.bias, m.bias == "per_layer"),
            ("train.optimizer", t.optimizer, t.optimizer in ("adam", "adamw", "sgd")),
            ("train.schedule", t.schedule, t.schedule in ("cosine_warmup", "none")),
            ("train.clip_norm", t.clip_norm, t.clip_norm is None),
            ("train.early_stopping_patience", t.early_stopping_patience, not t.early_stopping_patience),
            ("data.shuffle", cfg.data.shuffle, cfg.data.shuffle),
        )
        if not ok
    ]
    if problems:
        raise ConfigError(f"the PyTorch side does not implement {', '.join(problems)}")


def cosine_warmup_factor(warmup: int, total: int, base_lr: float, min_lr: float) -> Callable[[int], float]:
    """LambdaLR's factor for `CosineWithWarmup`'s lr after t steps (the same formula, over base_lr)."""

    def factor(t: int) -> float:
        if t < warmup:
            return t / warmup
        if t >= total:
            return min_lr / base_lr
        progress = (t - warmup) / (total - warmup)
        return (min_lr + (base_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))) / base_lr

    return factor


def check_schedule(cfg: Config, n_train: int) -> int:
    """Step mlpkit's schedule (built as a run builds it) and the LambdaLR side by side over the whole
    run; raise if an lr differs (beyond the rounding of base * factor). Returns the steps checked."""
    from types import SimpleNamespace

    from mlpkit.runs.training_options import build_step_options

    t = cfg.train
    ours = SimpleNamespace(lr=t.learning_rate)
    options, _ = build_step_options(cfg, ours, n_train=n_train)
    theirs = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=t.learning_rate)
    total = steps_per_epoch(n_train, t) * t.epochs
    schedule = None
    if t.schedule == "cosine_warmup":
        factor = cosine_warmup_factor(
            round(t.warmup_epochs * steps_per_epoch(n_train, t)), total, t.learning_rate, t.min_lr
        )
        schedule = torch.optim.lr_scheduler.LambdaLR(theirs, factor)
    for step in range(total + 1):
        lr = theirs.param_groups[0]["lr"]
        if not math.isclose(ours.lr, lr, rel_tol=1e-12, abs_tol=1e-18):
            raise RuntimeError(f"the PyTorch schedule differs from mlpkit's at step {step}: {lr} != {ours.lr}")
        if options.schedule is not None:
            options.schedule.step()
        if schedule is not None:
            theirs.step()
            schedule.step()
    return total


def torch_model(cfg: Config, n_features: int, n_classes: int) -> nn.Sequential:
    """The recipe's network in PyTorch, initialized as mlpkit's ``he_normal`` + ``per_layer`` bias."""
    m = cfg.model
    layers: list[nn.Module] = [nn.Dropout(m.dropout_input)] if m.dropout_input else []
    width = n_features
    for units in m.hidden:
        layers += [nn.Linear(width, units), nn.ReLU()] + ([nn.Dropout(m.dropout_hidden)] if m.dropout_hidden else [])
        width = units
    layers.append(nn.Linear(width, n_classes))
    model = nn.Sequential(*layers).to(TORCH_DTYPES[cfg.train.dtype])
    for layer in model:
        if isinstance(layer, nn.Linear):
            nn.init.kaiming_normal_(layer.weight, mode="fan_in", nonlinearity="relu")
            nn.init.zeros_(layer.bias)
    return model


@torch.no_grad()
def torch_evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Mean cross-entropy (no smoothing) and accuracy, in eval mode, in chunks."""
    model.eval()
    loss, hits = 0.0, 0
    for s in range(0, len(x), EVAL_ROWS):
        logits = model(x[s : s + EVAL_ROWS])
        loss += float(nn.functional.cross_entropy(logits, y[s : s + EVAL_ROWS], reduction="sum"))
        hits += int((logits.argmax(1) == y[s : s + EVAL_ROWS]).sum())
    model.train()
    return loss / len(x), hits / len(x)


@torch.no_grad()
def max_norm_(model: nn.Sequential, c: float) -> None:
    """mlpkit's max-norm: each hidden unit's incoming weights (a row of a Linear's weight) to norm <= c."""
    linears = [layer for layer in model if isinstance(layer, nn.Linear)][:-1]
    for layer in linears:
        norms = layer.weight.norm(dim=1, keepdim=True)
        layer.weight.mul_(c / norms.clamp(min=c))


def torch_optimizer(cfg: Config, model: nn.Module) -> torch.optim.Optimizer:
    """The recipe's optimizer in torch.optim (mlpkit's SGD, Adam and AdamW follow its update rules)."""
    t = cfg.train
    if t.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(),
            lr=t.learning_rate,
            momentum=t.momentum,
            nesterov=t.nesterov,
            weight_decay=t.weight_decay,
        )
    kind = torch.optim.Adam if t.optimizer == "adam" else torch.optim.AdamW
    return kind(
        model.parameters(), lr=t.learning_rate, betas=(t.beta1, t.beta2), eps=t.eps, weight_decay=t.weight_decay
    )


def torch_run(cfg: Config, data: PreparedData, x_test: np.ndarray, y_test: np.ndarray, threads: int, folder: Path):
    """Train the recipe with PyTorch; the timed part as mlpkit's ``wall_time_s`` (see the module)."""
    torch.set_num_threads(threads)
    torch.manual_seed(cfg.seed)
    m, t = cfg.model, cfg.train
    model = torch_model(cfg, data.n_features, len(data.classes))
    optimizer = torch_optimizer(cfg, model)
    n_train = len(data.x_train)
    spe = steps_per_epoch(n_train, t)
    schedule = None
    if t.schedule == "cosine_warmup":
        factor = cosine_warmup_factor(round(t.warmup_epochs * spe), spe * t.epochs, t.learning_rate, t.min_lr)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=t.label_smoothing)
    x_train, y_train = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train.astype(np.int64))
    x_val, y_val = torch.from_numpy(data.x_val), torch.from_numpy(data.y_val.astype(np.int64))
    every = spe // t.validations_per_epoch if t.validations_per_epoch else 0
    history: list[dict] = []
    checks = 0

    def checkpoint(name: str) -> None:
        state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step}
        if schedule is not None:
            state["schedule"] = schedule.state_dict()
        torch.save(state, folder / f"{name}.pt")

    step = 0
    start = time.perf_counter()
    feed = augment_feed(cfg, data, first_epoch=0)
    try:
        if t.checkpoint_every:
            checkpoint("start")
        for epoch in range(t.epochs):
            x_epoch = torch.from_numpy(feed.get(epoch)) if feed is not None else x_train
            perm = torch.randperm(n_train)
            for b in range(spe):
                rows = perm[b * t.batch_size : (b + 1) * t.batch_size]
                loss = loss_fn(model(x_epoch[rows]), y_train[rows])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if m.max_norm is not None:
                    max_norm_(model, m.max_norm)
                if schedule is not None:
                    schedule.step()
                step += 1
                if every and step % every == 0:
                    (val_loss, val_acc), (train_loss, train_acc) = (
                        torch_evaluate(model, x_val, y_val),
                        torch_evaluate(model, x_train, y_train),
                    )
                    history.append(
                        {
                            "step": step,
                            "val_loss": val_loss,
                            "val_accuracy": val_acc,
                            "train_loss": train_loss,
                            "train_accuracy": train_acc,
                        }
                    )
                    checks += 1
                    if t.checkpoint_every and checks % t.checkpoint_every == 0:
                        checkpoint(f"step-{step}")
        checkpoint("end")
    finally:
        if feed is not None:
            feed.close()
    wall = time.perf_counter() - start
    test_loss, test_acc = torch_evaluate(model, torch.from_numpy(x_test), torch.from_numpy(y_test.astype(np.int64)))
    return {
        "test_accuracy": test_acc,
        "test_loss": test_loss,
        "wall_time_s": wall,
        "steps": step,
        "val_accuracy": history[-1]["val_accuracy"] if history else None,
        "history": history,
    }


def mlpkit_run(cfg: Config, data: PreparedData, folder: Path) -> dict:
    """``mlpkit train`` in this process; what its ``metrics.json`` says."""
    run_experiment(cfg, folder, data=data, progress=False, log=lambda line: print(f"    mlpkit: {line}"))
    metrics = json.loads((folder / "metrics.json").read_text())
    keep = ("test_accuracy", "test_loss", "wall_time_s", "engine", "engine_fallback_reason", "val_accuracy")
    return {k: metrics.get(k) for k in keep}


def other_trainers() -> list[str]:
    """Other ``mlpkit train`` processes on the machine (they would share our cores)."""
    try:
        out = subprocess.run(["pgrep", "-af", "mlpkit train"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return []
    return [line for line in out.splitlines() if line and str(os.getpid()) != line.split()[0]]


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def markdown(rows: list[dict], caption: str) -> str:
    """Per seed, then mean +- std: the two accuracies, the two walls and their ratio."""
    lines = [
        caption,
        "",
        "| seed | mlpkit test accuracy | PyTorch test accuracy | mlpkit wall | PyTorch wall | mlpkit / PyTorch time |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        m, t = r["mlpkit"], r["torch"]
        lines.append(
            f"| {r['seed']} | {m['test_accuracy']:.4f} | {t['test_accuracy']:.4f} | {m['wall_time_s']:.1f} s "
            f"| {t['wall_time_s']:.1f} s | {r['ratio']:.2f} |"
        )
    keys = [
        ("mlpkit", "test_accuracy"),
        ("torch", "test_accuracy"),
        ("mlpkit", "wall_time_s"),
        ("torch", "wall_time_s"),
    ]
    stats = [mean_std([r[side][key] for r in rows]) for side, key in keys] + [mean_std([r["ratio"] for r in rows])]
    cells = [f"{m:.4f} +- {s:.4f}" for m, s in stats[:2]] + [f"{m:.1f} +- {s:.1f} s" for m, s in stats[2:4]]
    lines.append(f"| mean +- std | {' | '.join(cells)} | {stats[4][0]:.2f} +- {stats[4][1]:.2f} |")
    return "\n".join(lines)


def versions() -> dict:
    def version(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    return {name: version(name) for name in ("numpy", "numba", "torch", "threadpoolctl", "mlpkit")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipe", default="mnist-fast", help="a recipe or preset name, or a .toml file")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    parser.add_argument("--threads", type=int, default=2, help="mlpkit's train.threads and torch.set_num_threads")
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a config override for both sides (repeatable), e.g. train.epochs=1",
    )
    parser.add_argument("--no-warmup", action="store_true", help="skip the untimed one-epoch warm-ups")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="folder for the JSON")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s]
    os.environ.setdefault("MLPKIT_DATA", "/work/shared/data/mnist")

    def config(seed: int, extra: tuple[str, ...] = ()) -> Config:
        return resolve_config(args.recipe, [f"seed={seed}", f"train.threads={args.threads}", *args.sets, *extra])

    base = config(seeds[0])
    check_supported(base)
    started = datetime.now()
    busy = other_trainers()
    if busy:
        print("warning: other mlpkit training runs share this machine:\n  " + "\n  ".join(busy), flush=True)
    data = experiment_data(base)  # the full split does not depend on the seed (data_key)
    dataset = load_experiment_dataset(base)
    assert dataset.x_test is not None and dataset.y_test is not None
    x_test = data.normalization.apply(dataset.x_test, dtype=data.x_train.dtype)
    checked = check_schedule(base, len(data.x_train))
    y_test = np.asarray(dataset.y_test)
    print(
        f"{base.name}: {len(data.x_train)} training, {len(data.x_val)} validation, {len(x_test)} test images;"
        f" {base.train.epochs} epochs; seeds {seeds}; {args.threads} thread(s); lr schedule equal over {checked}"
        " steps",
        flush=True,
    )
    load_start = list(os.getloadavg())
    t0 = time.perf_counter()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="recipe-vs-torch-") as tmp:
        root = Path(tmp)
        if not args.no_warmup:
            # one epoch; a warm-up of the lr schedule may last longer than that, so it goes
            warm = config(
                seeds[0],
                ("train.epochs=1", *(("train.warmup_epochs=0",) if base.train.schedule == "cosine_warmup" else ())),
            )
            mlpkit_run(warm, data, root / "warm-mlpkit")
            (root / "warm-torch").mkdir()
            torch_run(warm, data, x_test, y_test, args.threads, root / "warm-torch")
            print(f"  warm-ups done ({time.perf_counter() - t0:.0f} s)", flush=True)
        for index, seed in enumerate(seeds):
            cfg = config(seed)
            result: dict = {"seed": seed}
            for side in ("mlpkit", "torch") if index % 2 == 0 else ("torch", "mlpkit"):
                folder = root / f"{side}-s{seed}"
                load = os.getloadavg()[0]
                if side == "mlpkit":
                    result[side] = mlpkit_run(cfg, data, folder)
                else:
                    folder.mkdir()
                    result[side] = torch_run(cfg, data, x_test, y_test, args.threads, folder)
                result[side]["loadavg_1min_before"] = load
                r = result[side]
                print(
                    f"  seed {seed} {side:6}: test accuracy {r['test_accuracy']:.4f}, wall {r['wall_time_s']:.1f} s"
                    f" (load {load:.2f})",
                    flush=True,
                )
            result["ratio"] = result["mlpkit"]["wall_time_s"] / result["torch"]["wall_time_s"]
            rows.append(result)
    wall_s = time.perf_counter() - t0
    load_end = list(os.getloadavg())
    command = " ".join(["python benchmarks/recipe_vs_torch.py", *(sys.argv[1:] if argv is None else argv)])
    caption = (
        f"`{command}` ({started:%Y-%m-%d}): recipe {base.name} ({base.train.epochs} epochs), mlpkit "
        f"(`run_experiment`, metrics.json) and PyTorch {torch.__version__} on the same split, normalization and "
        f"augmented images (mlpkit's background feed for both), {args.threads} thread(s) each; wall = training "
        f"incl. augmentation feed, per-epoch validation and checkpoints; test accuracy once at the end; "
        f"{os.cpu_count()} shared cores, 1-minute load {load_start[0]:.2f} at the start, {load_end[0]:.2f} at the "
        f"end; whole run {wall_s / 60:.1f} min."
    )
    table = markdown(rows, caption)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"recipe-vs-torch-{base.name}-{started:%Y%m%d-%H%M%S}.json"
    record = {
        "command": command,
        "date": started.isoformat(timespec="seconds"),
        "wall_s": wall_s,
        "settings": {
            "recipe": base.name,
            "config": base.to_dict(),
            "seeds": seeds,
            "threads": args.threads,
            "overrides": args.sets,
            "warmup": not args.no_warmup,
        },
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "versions": versions(),
            "torch_threads": torch.get_num_threads(),
            "loadavg_start": load_start,
            "loadavg_end": load_end,
            "other_trainers_at_start": busy,
        },
        "results": rows,
        "markdown": table,
    }
    path.write_text(json.dumps(record, indent=1) + "\n")
    print()
    print(table)
    print(f"\nwrote {path.relative_to(HERE.parent) if path.is_relative_to(HERE.parent) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
