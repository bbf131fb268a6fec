"""The memory a config needs, estimated before anything is allocated, and the memory there is.

Why: a config is only numbers, and some numbers are enormous (``epochs=10**12`` wants a
per-step loss history of petabytes, ``hidden=[10**9]`` terabytes of weights). Such a run must
be refused with the estimate and the machine's available memory, before it creates a run
folder or announces anything, not die later in an allocation traceback.

The estimate adds the arrays a run holds at its peak, each rounded up rather than down:

- the parameters and everything shaped like them (gradients, SGD's velocity and scratch,
  the best weights kept by early stopping, the copies a checkpoint makes);
- the training workspaces (one batch through every layer, forward and backward) and the
  evaluation workspaces (a chunk of rows per worker thread);
- the data: the raw images while they are prepared, the prepared arrays, and their sparse
  form (counted at its largest: half the entries);
- the per-step history (a float64 array plus its JSON lists), one entry per step of the
  whole run, and the validation predictions.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mlpkit.core.errors import ConfigError

if TYPE_CHECKING:
    from mlpkit.runs.config import Config

__all__ = ["Footprint", "available_memory", "check_footprint", "estimate_footprint", "parameter_count"]

#: Arrays shaped like the parameters: the parameters, gradients, SGD velocity and scratch,
#: best weights (early stopping) and the parameter and velocity copies of a checkpoint.
PARAMETER_COPIES = 7
#: Bytes per step of training history: the float64 loss, the engine's per-step loss buffer,
#: and the step number and loss as Python objects in the lists written to history.json.
HISTORY_BYTES_PER_STEP = 8 + 8 + 2 * (8 + 32)
#: Rows per evaluation chunk (as ``mlpkit.train.trainer.EVAL_CHUNK``).
EVAL_CHUNK_ROWS = 2048


@dataclass(frozen=True)
class Footprint:
    """An estimate of the memory a run needs, by part.

    Parameters
    ----------
    parts : dict of str to int
        Bytes per part (``"parameters"``, ``"workspaces"``, ``"data"``, ``"history"``).
    """

    parts: dict[str, int]

    @property
    def total(self) -> int:
        """All parts together, in bytes."""
        return sum(self.parts.values())

    def describe(self) -> str:
        """The parts, largest first, e.g. ``history 4.4 PiB, data 239 MiB, ...``."""
        ordered = sorted(self.parts.items(), key=lambda item: -item[1])
        return ", ".join(f"{name} {format_bytes(n)}" for name, n in ordered)


def parameter_count(hidden: tuple[int, ...] | list[int], *, n_features: int, n_classes: int, bias: str) -> int:
    """Weights (and biases) of an MLP, from its layout, without building it.

    ``bias="input_column"`` adds one input (a column of ones) and no bias vectors;
    ``"per_layer"`` adds a bias vector of ``fan_out`` entries to every layer.
    """
    sizes = [n_features + (1 if bias == "input_column" else 0), *hidden, n_classes]
    count = sum(fan_in * fan_out for fan_in, fan_out in zip(sizes[:-1], sizes[1:]))
    if bias == "per_layer":
        count += sum(sizes[1:])
    return count


def estimate_footprint(
    cfg: Config,
    *,
    n_train: int,
    n_val: int,
    n_features: int = 784,
    n_classes: int = 10,
    raw_bytes: int = 0,
    workers: int | None = None,
) -> Footprint:
    """The memory a run of ``cfg`` needs at its peak (see the module docstring for what counts).

    Parameters
    ----------
    cfg : Config
        The run's config.
    n_train, n_val : int
        Training and validation set sizes (see `mlpkit.data.splits.split_sizes`).
    n_features, n_classes : int
        Inputs and outputs of the model.
    raw_bytes : int
        The source data held while the arrays are prepared (0 when they are prepared already).
    workers : int or None
        Evaluation threads; None: ``train.threads``, else the number of CPUs.

    Returns
    -------
    Footprint
    """
    m, t = cfg.model, cfg.train
    itemsize = np.dtype(t.dtype).itemsize
    input_width = n_features + (1 if m.bias == "input_column" else 0)
    widths = [*m.hidden, n_classes]
    params = parameter_count(m.hidden, n_features=n_features, n_classes=n_classes, bias=m.bias)
    # per row of a workspace: layer outputs, deltas and derivative scratch, the input row, the label
    row = (3 * sum(widths) + input_width) * itemsize + 8
    batch = min(t.batch_size, n_train)
    chunk = min(EVAL_CHUNK_ROWS, max(n_train, n_val))
    workers = workers or t.threads or os.cpu_count() or 1
    steps_per_epoch = n_train // batch if t.drop_last else math.ceil(n_train / batch)
    rows = n_train + n_val
    return Footprint(
        {
            "parameters": PARAMETER_COPIES * params * itemsize,
            "workspaces": (2 * batch + workers * chunk) * row,
            "data": raw_bytes
            + rows * (input_width * itemsize + 8)
            + rows * _sparse_row_bytes(input_width, itemsize)
            + n_train * 8,
            "history": t.epochs * steps_per_epoch * HISTORY_BYTES_PER_STEP + n_val * n_classes * (itemsize + 4),
        }
    )


def _sparse_row_bytes(width: int, itemsize: int) -> int:
    """Most bytes a row's sparse form takes (``mlpkit.engine.sparse``): inputs go sparse only when
    at most half their entries are exceptions (a value and a 2-byte column number each), plus
    the row's block offsets."""
    return width // 2 * (itemsize + 2) + 8 * (width // 128 + 2)


def available_memory() -> int | None:
    """Bytes this process can still allocate: the smallest of the system's available memory and
    the room left under a cgroup (container) limit; None where neither can be read."""
    limits = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                limits.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        try:
            limit = Path(limit_file).read_text().strip()
            if limit != "max" and int(limit) < 1 << 60:
                limits.append(max(0, int(limit) - int(Path(usage_file).read_text().strip())))
            break
        except (OSError, ValueError):
            continue
    if not limits:
        try:
            limits.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            return None
    return min(limits)


def check_footprint(footprint: Footprint, *, available: int | None = None, what: str = "this config") -> None:
    """Refuse a run whose estimated memory exceeds what is available.

    Parameters
    ----------
    footprint : Footprint
        From `estimate_footprint`.
    available : int or None
        Bytes available; None: `available_memory` (and no check if that is unknown).
    what : str
        Names the run in the message.

    Raises
    ------
    ConfigError
        With the estimate, its largest parts and the available memory.
    """
    if available is None:
        available = available_memory()
    if available is not None and footprint.total > available:
        raise ConfigError(
            f"{what} needs about {format_bytes(footprint.total)} of memory ({footprint.describe()}),"
            f" more than the {format_bytes(available)} available on this machine;"
            " choose fewer epochs, smaller layers or less data"
        )


def format_bytes(n: int) -> str:
    """``n`` bytes in binary units with three significant digits, e.g. ``4.4 PiB``, ``239 MiB``."""
    value, unit = float(n), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if value < 1024 or unit == "EiB":
            break
        value /= 1024
    return f"{n} B" if unit == "B" else f"{value:.3g} {unit}"
