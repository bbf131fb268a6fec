"""Experiment commands: presets, describe, gradcheck, train, reproduce, report."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
import numpy as np

from mlpkit.cli.app import data_dir_option, main, on_interrupt, set_option, threads_option
from mlpkit.cli.sweep_commands import scheduler_option, workers_option

if TYPE_CHECKING:
    from mlpkit.runs.config import Config


# -------------------------------------------------------------------- presets
@main.command()
def presets() -> None:
    """List the shipped presets (the seed report's experiments)."""
    from mlpkit.workflows.configs import preset_names, resolve_config

    for name in preset_names():
        click.echo(f"{name:<18} {resolve_config(name).description}")


def _config(name_or_path: str, overrides: tuple[str, ...] = (), threads: int | None = None) -> Config:
    """The config named on the command line, ``--set`` items and ``--threads`` applied (validated)."""
    from mlpkit.workflows.configs import resolve_config

    items = list(overrides) + ([f"train.threads={threads}"] if threads else [])
    return resolve_config(name_or_path, items)


@main.command()
@click.argument("preset")
@set_option
def describe(preset: str, overrides: tuple[str, ...]) -> None:
    """Layers and parameter count of PRESET (a preset name or a .toml config)."""
    from mlpkit.workflows.experiment import build_model

    cfg = _config(preset, overrides)
    model = build_model(cfg)
    click.echo(f"{cfg.name}: {cfg.description}")
    click.echo(model.describe())
    t, m, d = cfg.train, cfg.model, cfg.data
    optimizer = f"{t.optimizer} lr {t.learning_rate}" + (f", momentum {t.momentum}" if t.momentum else "")
    extras = [
        "nesterov" if t.nesterov else "",
        f"weight decay {t.weight_decay}" if t.weight_decay else "",
        f"schedule {t.schedule}" if t.schedule != "none" else "",
        f"dropout {m.dropout_input}/{m.dropout_hidden} (input/hidden)" if m.dropout_input or m.dropout_hidden else "",
        f"max-norm {m.max_norm}" if m.max_norm else "",
        f"label smoothing {t.label_smoothing}" if t.label_smoothing else "",
        f"clip norm {t.clip_norm}" if t.clip_norm else "",
        f"augment {d.augment}" if d.augment != "none" else "",
    ]
    click.echo(
        f"training: {t.epochs} epochs, batch {t.batch_size}, {optimizer}, data {d.dataset} split {d.split},"
        f" shuffle {d.shuffle}, early stopping patience {t.early_stopping_patience or 'off'},"
        f" init {m.init}, seed {cfg.seed}" + "".join(f", {e}" for e in extras if e)
    )


# ------------------------------------------------------------------ gradcheck
@main.command()
@click.argument("preset")
@click.option("--hidden", default=None, help="Hidden sizes, e.g. 64 or 64,64 (default: the preset's).")
@click.option("--activation", default=None, help="Hidden activation (default: the preset's).")
@click.option("--images", default=100, show_default=True, type=click.IntRange(min=1), help="Images checked.")
@click.option("--epsilon", default=1e-3, show_default=True, type=float)
@click.option("--tolerance", default=None, type=float, help="Default 1e-3 (absolute) or 1e-6 (relative).")
@click.option("--mode", type=click.Choice(["absolute", "relative"]), default="absolute", show_default=True)
@click.option(
    "--max-per-parameter",
    default=None,
    type=click.IntRange(min=1),
    help="Check a random subset of each parameter's entries (default: all).",
)
@click.option("--seed", default=0, show_default=True, type=int)
@data_dir_option
def gradcheck(
    preset: str,
    hidden: str | None,
    activation: str | None,
    images: int,
    epsilon: float,
    tolerance: float | None,
    mode: str,
    max_per_parameter: int | None,
    seed: int,
    data_dir: Path | None,
) -> None:
    """Check backprop against central differences on MNIST images, weights uniform(-1, 1).

    Exits 0 when every gradient passes, 1 otherwise; prints the largest error.
    """
    from mlpkit.core.errors import ConfigError
    from mlpkit.data import Normalizer, load_mnist, make_split
    from mlpkit.nn.gradcheck import check_gradients
    from mlpkit.nn.mlp import MLP

    cfg = _config(preset)
    sizes = cfg.model.hidden
    if hidden:
        try:
            sizes = tuple(int(h) for h in hidden.split(","))
        except ValueError:
            raise ConfigError(f"--hidden must be comma-separated integers, got {hidden!r}") from None
    act = activation or cfg.model.activation
    model = MLP(sizes, activation=act, bias=cfg.model.bias, dtype="float64")
    rng = np.random.default_rng(seed)
    model.init_weights(rng, "uniform")
    split = make_split(load_mnist(data_dir), "seed")
    norm = Normalizer.fit(split.x_train)
    n = min(images, len(split.x_train))
    x = model.prepare_inputs(norm.apply(split.x_train[:n], dtype=np.float64))
    y = np.asarray(split.y_train[:n], dtype=np.intp)
    tol = tolerance if tolerance is not None else (1e-3 if mode == "absolute" else 1e-6)
    click.echo(
        f"gradient check: hidden {list(sizes)}, {act}, {model.num_parameters} parameters, {n} images,"
        f" epsilon {epsilon}, {mode} tolerance {tol}"
    )
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):  # thousands of tiny products: one BLAS thread is fastest
        result = check_gradients(
            model, x, y, epsilon=epsilon, tolerance=tol, mode=mode, max_per_parameter=max_per_parameter, rng=rng
        )
    click.echo(f"checked {result.num_checked} gradients")
    where = f"{result.worst_parameter}{list(result.worst_index)}"
    click.echo(f"largest absolute error: {result.max_abs_error:.3e}  (at {where})")
    click.echo(f"largest relative error: {result.max_rel_error:.3e}")
    click.echo("PASS" if result.passed else "FAIL")
    sys.exit(0 if result.passed else 1)


# ---------------------------------------------------------------------- train
@main.command()
@click.argument("preset", required=False)
@set_option
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Run folder (default: runs/NAME-TIMESTAMP).",
)
@click.option(
    "--resume",
    "resume_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Continue the run in this folder from its newest usable checkpoint (--set: only safe keys, e.g. epochs).",
)
@data_dir_option
@threads_option
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: only on a terminal).")
def train(
    preset: str | None,
    overrides: tuple[str, ...],
    out: Path | None,
    resume_dir: Path | None,
    data_dir: Path | None,
    threads: int | None,
    progress: bool | None,
) -> None:
    """Train PRESET (a preset name or a .toml config) and write a run folder."""
    from mlpkit.core.errors import ConfigError
    from mlpkit.runs.completion import interrupted_message
    from mlpkit.runs.folder import new_run_dir
    from mlpkit.workflows.experiment import check_experiment, resume_experiment, run_experiment

    if resume_dir is not None:
        if preset:
            raise ConfigError(
                "--resume takes the run folder's own config; do not give a preset (--set may change"
                " the keys that are safe on resume, e.g. --set epochs=80)"
            )
        items = list(overrides) + ([f"train.threads={threads}"] if threads else [])
        on_interrupt(lambda: interrupted_message(resume_dir))
        result = resume_experiment(resume_dir, items, data_dir=data_dir, progress=progress, log=click.echo)
    else:
        if not preset:
            raise ConfigError("give a preset name or a .toml config (see 'mlpkit presets'), or --resume RUN_DIR")
        cfg = _config(preset, overrides, threads)
        run_dir = out or new_run_dir("runs", cfg.name)
        check_experiment(cfg, run_dir, data_dir=data_dir)  # refuse before announcing anything
        on_interrupt(lambda: interrupted_message(run_dir))
        click.echo(f"training {cfg.name} -> {run_dir}")
        result = run_experiment(cfg, run_dir, data_dir=data_dir, progress=progress, log=click.echo)
    m = result.metrics
    if result.interrupted:
        click.echo(f"interrupted at step {m['steps']}; resume with: mlpkit train --resume {result.run_dir}")
    click.echo(
        f"train loss {m['train_loss']:.4f}  train acc {m['train_accuracy']:.4f}  "
        f"val loss {m['val_loss']:.4f}  val acc {m['val_accuracy']:.4f}"
    )
    click.echo(
        f"parameters {m['num_parameters']}  steps {m['steps']}  early stop "
        f"{m['early_stop_step'] if m['early_stop_step'] is not None else '-'}  wall {m['wall_time_s']:.1f} s"
    )
    click.echo(f"run folder: {result.run_dir}")
    if result.interrupted:
        sys.exit(130)


# ------------------------------------------------------------------ reproduce
@main.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("runs/reproduce"),
              show_default=True, help="Folder for every preset's run, the figures and summary.")  # fmt: skip
@click.option("--presets", "only", default=None, help="Comma-separated subset of presets (default: all).")
@set_option
@data_dir_option
@threads_option
@click.option("--progress/--no-progress", default=None, help="Progress bars (default: only on a terminal).")
@click.option(
    "--force",
    is_flag=True,
    default=False,
    help="Rerun presets whose config changed (their runs in --out are replaced); without it they are refused.",
)
@click.option(
    "--seeds",
    type=click.IntRange(min=1),
    default=None,
    help="Run every preset with N seeds on Dask (its own and the next N-1) and add mean +- std and"
    " significance across seeds to the summary and report.",
)
@scheduler_option
@workers_option
def reproduce(
    out: Path,
    only: str | None,
    overrides: tuple[str, ...],
    data_dir: Path | None,
    threads: int | None,
    progress: bool | None,
    force: bool,
    seeds: int | None,
    scheduler: str | None,
    workers: int | None,
) -> None:
    """Run every experiment of the seed report; write comparison figures, summary.md and report.html.

    Into an existing --out it resumes: complete runs with the same config are kept, interrupted
    ones resumed; the summary and report cover every run in the folder.
    """
    from mlpkit.core.errors import ConfigError
    from mlpkit.workflows.reproduce import reproduce_all

    names = [p.strip() for p in only.split(",")] if only else None
    on_interrupt(lambda: f"interrupted; continue with the same command (complete runs in {out} are kept)")
    if seeds is None and (scheduler or workers):
        raise ConfigError("--scheduler and --workers go with --seeds (a plain reproduce runs in this process)")
    if seeds is not None:
        from mlpkit.workflows.reproduce_seeds import reproduce_seeds

        summary = reproduce_seeds(
            out,
            seeds=seeds,
            presets=names,
            overrides=list(overrides),
            data_dir=data_dir,
            threads=threads,
            progress=progress,
            force=force,
            scheduler=scheduler,
            workers=workers,
            log=click.echo,
        )
        click.echo(f"summary: {summary}")
        return
    summary = reproduce_all(
        out,
        presets=names,
        overrides=list(overrides),
        data_dir=data_dir,
        threads=threads,
        progress=progress,
        force=force,
        log=click.echo,
    )
    click.echo(f"summary: {summary}")


# --------------------------------------------------------------------- report
@main.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("report.html"), show_default=True, help="The HTML file to write.")  # fmt: skip
def report(run_dirs: tuple[Path, ...], out: Path) -> None:
    """One self-contained HTML report from one or more run folders."""
    from mlpkit.report import build_report
    from mlpkit.seed.presets import preset_config

    path = build_report(list(run_dirs), out, base_configs=preset_config)
    click.echo(f"report: {path}")
