"""The PyTorch worker of the benchmark (see engines.py for the protocol): the loop a
practitioner writes, as fast as PyTorch goes on a CPU (inference mode for validation,
``zero_grad(set_to_none=True)``, fused AdamW, and for the modern workloads its fastest thread
count up to the benchmark's)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engines import (
    UnitClock,
    augment_feed,
    clock,
    command,
    init_weights,
    send,
    validate_loop,
    with_bias_column,
)
from workloads import SCHEDULE_EPOCHS, Workload


def run_pytorch(w: Workload, run_mode: str, data: dict, threads: int, seed: int, data_dir: Path) -> dict:
    import torch
    from torch import nn

    torch.set_num_threads(threads)
    torch.manual_seed(seed)

    class ImprovedSigmoid(nn.Module):
        def forward(self, z):
            return 1.7159 * torch.tanh(z * (2.0 / 3.0))

    act = {"sigmoid": nn.Sigmoid, "improved_sigmoid": ImprovedSigmoid, "relu": nn.ReLU}[w.activation]
    biased = w.bias == "per_layer"
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(w.layer_shapes):
        layers.append(nn.Linear(fan_in, fan_out, bias=biased))
        if i < len(w.layer_shapes) - 1:
            layers.append(act())
            if w.dropout:
                layers.append(nn.Dropout(w.dropout))
    model = nn.Sequential(*layers)
    with torch.no_grad():  # the same initial weights as mlpkit's
        linears = [m for m in model if isinstance(m, nn.Linear)]
        for lin, weight in zip(linears, init_weights(w, np.random.default_rng(seed))):
            lin.weight.copy_(torch.from_numpy(weight.T))
            if biased:
                lin.bias.zero_()
    prep = with_bias_column if w.bias == "input_column" else (lambda x: x)
    xt, yt = torch.from_numpy(prep(data.pop("x_train"))), torch.from_numpy(data.pop("y_train"))
    xv, yv = torch.from_numpy(prep(data.pop("x_val"))), torch.from_numpy(data.pop("y_val"))
    optimizer, schedule = torch_optimizer(w, model)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=w.label_smoothing)
    eval_loss = nn.CrossEntropyLoss(reduction="sum")
    chunk = 8192 if w.data == "split" else len(xt)  # the modern model's activations: 8,192 rows at a time

    def validate() -> dict:
        model.eval()
        with torch.inference_mode():
            out = {}
            for name, x, y in (("val", xv, yv), ("train", xt, yt)):
                loss, hits = 0.0, 0
                for s in range(0, len(x), chunk):
                    logits = model(x[s : s + chunk])
                    loss += eval_loss(logits, y[s : s + chunk]).item()
                    hits += int((logits.argmax(dim=1) == y[s : s + chunk]).sum())
                out[f"{name}_loss"] = loss / len(x)
                out[f"{name}_accuracy"] = hits / len(x)
        model.train()
        return out

    def step(xb, yb) -> float:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
        if schedule is not None:
            schedule.step()
        return loss.item()  # the loss of every step is recorded, as mlpkit does

    info = {"torch_threads": threads}
    if w.best_torch_threads:  # its fastest thread count, on steps of a throw-away copy
        info["torch_threads"] = best_thread_count(w, model, xt, yt, threads)
        torch.set_num_threads(info["torch_threads"])
    feed = augment_feed(data_dir, w, seed, bias_column=w.bias == "input_column") if w.augment else None
    send({"ready": True, **info})
    if w.mode == "validate":
        return validate_loop(validate, w, run_mode)
    if command() != "run":
        return {}
    steps = w.steps_per_unit(run_mode)
    clock_ = UnitClock(steps, w.steps_per_epoch / steps)
    clock_.info = info
    validate_every = w.steps_per_epoch // w.validations_per_epoch if w.validations_per_epoch else 0
    generator = torch.Generator().manual_seed(seed)
    n, bs, count, losses, epoch = len(xt), w.batch_size, 0, [], 0
    clock_.start = clock()
    try:
        while True:
            x_epoch = torch.from_numpy(feed.get(epoch)) if feed is not None else xt
            epoch += 1
            perm = torch.randperm(n, generator=generator)
            for k in range(w.steps_per_epoch):
                idx = perm[k * bs : (k + 1) * bs]
                losses.append(step(x_epoch[idx], yt[idx]))
                count += 1
                if validate_every and count % validate_every == 0:
                    v0 = clock()
                    clock_.metrics = validate()
                    clock_.validation += clock() - v0
                if count % steps == 0 and clock_.end_unit():
                    return {**clock_.metrics, "last_batch_loss": losses[-1]}
    finally:
        if feed is not None:
            feed.close()


def torch_optimizer(w: Workload, model):
    """torch.optim's SGD (the same momentum rule as mlpkit's) or AdamW (fused: its fastest CPU
    kernel), and the cosine schedule as a LambdaLR of mlpkit's formula."""
    import torch

    if w.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=w.lr, momentum=w.momentum), None  # v = g + m v; w -= lr v
    try:
        optimizer = torch.optim.AdamW(model.parameters(), lr=w.lr, fused=True)
    except (RuntimeError, TypeError):  # pragma: no cover - a torch without the fused CPU kernel
        optimizer = torch.optim.AdamW(model.parameters(), lr=w.lr, foreach=True)
    if w.schedule != "cosine":
        return optimizer, None
    warmup, total = w.steps_per_epoch // 2, SCHEDULE_EPOCHS * w.steps_per_epoch

    def factor(t: int) -> float:  # mlpkit.optim.schedules.CosineWithWarmup with min_lr 0
        if t < warmup:
            return t / warmup
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (t - warmup) / (total - warmup))))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def best_thread_count(w: Workload, model, xt, yt, threads: int, steps: int = 20) -> int:
    """PyTorch's fastest thread count (1 .. threads) on this workload's training steps (best of 3
    runs of ``steps`` each), measured on a copy of the model and optimizer before anything is timed."""
    import copy

    import torch

    trial = copy.deepcopy(model)
    optimizer, _ = torch_optimizer(w, trial)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=w.label_smoothing)
    best, best_t = 1, math.inf
    for t in range(1, threads + 1):
        torch.set_num_threads(t)
        times = []
        for _ in range(3):
            start = clock()
            for k in range(steps):
                rows = slice(k * w.batch_size, (k + 1) * w.batch_size)
                optimizer.zero_grad(set_to_none=True)
                loss_fn(trial(xt[rows]), yt[rows]).backward()
                optimizer.step()
            times.append(clock() - start)
        if min(times) < best_t:
            best, best_t = t, min(times)
    return best
