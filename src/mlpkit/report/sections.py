"""The parts of a report page that compare runs: final metrics, configurations side by side,
overlaid loss and accuracy curves, wall time and machine. Each returns plain template data;
both the run report and pages built on it (the seed report) use them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlpkit.report.format import DASH, blas, flat_config, fmt, machine
from mlpkit.report.page import Assets, table
from mlpkit.report.plots import SMOOTH_WINDOW, comparison_figure
from mlpkit.runs.folder import Run

#: (metrics.json key, column title, format kind) of the final-metrics table.
METRIC_COLUMNS: list[tuple[str, str, str]] = [
    ("val_accuracy", "val accuracy", "acc"),
    ("val_loss", "val loss", "loss"),
    ("train_accuracy", "train accuracy", "acc"),
    ("train_loss", "train loss", "loss"),
    ("best_val_loss", "best val loss", "loss"),
    ("best_val_loss_step", "at step", "int"),
    ("num_parameters", "parameters", "int"),
    ("steps", "steps", "int"),
    ("epochs_completed", "epochs", ""),
    ("early_stop_step", "early stop at step", "int"),
    ("wall_time_s", "wall time", "s"),
]


def labels(runs: Sequence[Run]) -> list[str]:
    """Run names, made unique with the folder name where two runs share one."""
    names = [r.name for r in runs]
    out = [n if names.count(n) == 1 else f"{n} ({r.path.name})" for r, n in zip(runs, names)]
    if len(set(out)) < len(out):
        out = [f"{n} #{i + 1}" for i, n in enumerate(out)]
    return out


def history(run: Run) -> dict[str, Any]:
    """history.json with the training steps filled in when a compact file leaves them out."""
    h = run.history
    train = dict(h.get("train", {}))
    if "step" not in train:
        train["step"] = list(range(1, len(train.get("loss", [])) + 1))
    return {"train": train, "validation": h.get("validation", {})}


def epoch_of(metrics: dict[str, Any], step: Any) -> float | None:
    """The (fractional) epoch of gradient step ``step``; None without the steps per epoch."""
    spe = metrics.get("steps_per_epoch")
    return None if step is None or not spe else step / spe


def metrics_table(runs: Sequence[Run], names: Sequence[str]) -> dict[str, Any]:
    """The final metrics of each run (one row per run) and a note per interrupted run."""
    headers = ["run"] + [title for _, title, _ in METRIC_COLUMNS]
    rows = [
        [name] + [fmt(run.metrics.get(key), kind) for key, _, kind in METRIC_COLUMNS] for run, name in zip(runs, names)
    ]
    notes = [
        f"{name} was interrupted; its numbers are those of the last completed step."
        for run, name in zip(runs, names)
        if run.metrics.get("interrupted")
    ]
    return {"table": table(headers, rows, numeric=range(1, len(headers)), cls="metrics"), "notes": notes}


def config_table(runs: Sequence[Run], names: Sequence[str]) -> dict[str, Any]:
    """Every configuration key, one column per run; rows where the runs differ are marked."""
    flats = [flat_config(r.config) for r in runs]
    keys: list[str] = []
    for f in flats:
        keys += [k for k in f if k not in keys]
    rows, classes = [], []
    for key in keys:
        values = [fmt(f.get(key, "(default)")) for f in flats]
        rows.append([key] + values)
        classes.append("differs" if len(runs) > 1 and len(set(values)) > 1 else "")
    return {"table": table(["key"] + list(names), rows, row_classes=classes, cls="config"), "compared": len(runs) > 1}


def environment_table(runs: Sequence[Run], names: Sequence[str]) -> dict[str, Any]:
    """Wall time, machine, BLAS, threads and versions of each run."""
    rows = []
    for run, name in zip(runs, names):
        e = run.environment
        rows.append(
            [
                name,
                fmt(run.metrics.get("wall_time_s"), "s"),
                machine(e),
                blas(e),
                fmt(e.get("threads") or "all"),
                e.get("python", DASH),
                e.get("numpy", DASH),
                e.get("mlpkit", DASH),
                fmt(e.get("seed", run.config.get("seed"))),
                e.get("started", DASH),
                str(run.path),
            ]
        )
    return table(
        ["run", "wall time", "machine", "BLAS", "threads", "Python", "NumPy", "mlpkit", "seed", "started", "folder"],
        rows,
        numeric=[1],
        cls="environment",
    )


def curves(
    runs: Sequence[Run], names: Sequence[str], assets: Assets, *, prefix: str = "", title: str = ""
) -> list[dict[str, Any]]:
    """The loss and the accuracy figure of ``runs`` overlaid, captioned (two ``figure`` values).

    Parameters
    ----------
    runs : sequence of Run
        The runs to overlay.
    names : sequence of str
        Their legend labels.
    assets : Assets
        Where the PNG and SVG files go.
    prefix : str
        Prepended to the file names (``loss``, ``accuracy``), so several pairs share a folder.
    title : str
        Prepended to the figure titles and alt texts.

    Returns
    -------
    list of dict
        The loss figure, then the accuracy figure.
    """
    series = [(name, history(run), run.metrics) for run, name in zip(runs, names)]
    head = f"{title}: " if title else ""
    loss = comparison_figure(series, assets.path(f"{prefix}loss"), kind="loss", title=f"{head}cross-entropy loss")
    acc = comparison_figure(series, assets.path(f"{prefix}accuracy"), kind="accuracy", title=f"{head}accuracy")
    stops = [
        f"{name} at step {run.metrics['early_stop_step']:,}"
        for run, name in zip(runs, names)
        if run.metrics.get("early_stop_step")
    ]
    stop_text = (
        (" Early stopping (dotted line): " + "; ".join(stops) + ".") if stops else " Early stopping did not fire."
    )
    loss_cap = (
        f"Training loss: mean of each window of {SMOOTH_WINDOW} steps with a \u00b11 std band; validation "
        f"loss as a solid line.{stop_text}"
    )
    acc_cap = "Training accuracy dashed, validation accuracy solid, measured at every validation check."
    return [
        assets.figure(loss, alt=f"{head}loss against gradient step", caption=loss_cap),
        assets.figure(acc, alt=f"{head}accuracy against gradient step", caption=acc_cap),
    ]
