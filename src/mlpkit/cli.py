"""The ``mlpkit`` command line: wiring only; the work lives in the library modules.

Exit status: 0 done, 1 a check failed (gradcheck), 2 an error the user can fix (one ``error:``
line: an MlpkitError, or an OSError naming the path and the system's reason), 130 Ctrl-C.
"""

from __future__ import annotations

import errno
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click
import numpy as np

from mlpkit.core.errors import MlpkitError

if TYPE_CHECKING:
    from mlpkit.runs.config import Config

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a program stopped by Ctrl-C
_INTERRUPT_MESSAGE = "mlpkit.interrupt_message"  # ctx.meta entry, shared by the group and its commands


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_ERROR)


def _interrupted(message: str = "interrupted") -> NoReturn:
    click.echo(message, err=True)
    sys.exit(EXIT_INTERRUPTED)


def _on_interrupt(message: Callable[[], str]) -> None:
    """From here on, a Ctrl-C that ends the command prints ``message()`` (say, how to resume)."""
    click.get_current_context().meta[_INTERRUPT_MESSAGE] = message


def _os_error_message(exc: OSError) -> str:
    """``PATH: reason`` from what the operating system said."""
    reason = exc.strerror or str(exc)
    return f"{exc.filename}: {reason}" if exc.filename is not None else reason


class _Group(click.Group):
    """Every MlpkitError or OSError becomes one ``error:`` line and exit status 2, Ctrl-C exit
    status 130 (never click's "Aborted!" and status 1, never a traceback)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MlpkitError as exc:
            _fail(str(exc))
        except OSError as exc:
            if exc.errno == errno.EPIPE:  # output piped into a closed reader: click's own handling
                raise
            _fail(_os_error_message(exc))
        except KeyboardInterrupt:
            _interrupted(ctx.meta.get(_INTERRUPT_MESSAGE, lambda: "interrupted")())

    def main(self, args: Any = None, *more: Any, **kwargs: Any) -> Any:
        """Also a Ctrl-C after the command's work (while click and Python exit) ends with status
        130, never with a traceback or death by the signal. Called without ``args`` it is the
        process's entry point (console script, ``python -m``): then a Ctrl-C once the command is
        over is ignored; a call from Python with ``args`` (tests) leaves the handler alone."""
        try:
            return super().main(args, *more, **kwargs)
        except KeyboardInterrupt:
            _interrupted()
        finally:
            if args is None:
                signal.signal(signal.SIGINT, signal.SIG_IGN)


data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder with the four MNIST files (default: $MLPKIT_DATA, then the user cache, else download).",
)
dataset_option = click.option(
    "--dataset", default="mnist", show_default=True, help="mnist, fashion-mnist or kmnist; --data-dir: its IDX files."
)
set_option = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a config key, e.g. --set epochs=5 --set model.hidden=[128].",
)
threads_option = click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="BLAS threads (threadpoolctl); default: the library's own choice.",
)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mlpkit")
def main() -> None:
    """Train, check and compare multilayer perceptrons on MNIST, backprop written by hand."""


# ---------------------------------------------------------------------- data
@main.group()
def data() -> None:
    """The IDX data sets (MNIST, Fashion-MNIST, KMNIST): statistics and download."""


@data.command("stats")
@dataset_option
@data_dir_option
@click.option("--split", default="seed", show_default=True, help="seed (first 20,000 train / 10,000 test) or full.")
def data_stats(dataset: str, data_dir: Path | None, split: str) -> None:
    """Split sizes and the training set's pixel mean and std."""
    from mlpkit.data import IDX_DATASETS, Normalizer, load_idx_arrays, make_split, resolve_idx_dir

    arrays = load_idx_arrays(dataset, data_dir)
    sp = make_split(arrays, split)
    norm = Normalizer.fit(sp.x_train)
    click.echo(f"data folder:     {resolve_idx_dir(dataset, data_dir) or '(downloaded to cache)'}")
    click.echo(f"split:           {split}")
    click.echo(f"training:        {len(sp.x_train)} images")
    click.echo(f"validation:      {len(sp.x_val)} images")
    if sp.x_test is not None:
        click.echo(f"test:            {len(sp.x_test)} images")
    click.echo(f"training mean:   {norm.mean!r}")
    click.echo(f"training std:    {norm.std!r}")
    counts = np.bincount(np.asarray(sp.y_train), minlength=IDX_DATASETS[dataset].n_classes)
    click.echo("training labels: " + " ".join(str(c) for c in counts))


@data.command("download")
@dataset_option
@data_dir_option
def data_download(dataset: str, data_dir: Path | None) -> None:
    """Fetch an IDX data set (if not present) and verify every file's SHA-256."""
    from mlpkit.data import IDX_DATASETS, load_idx_arrays, resolve_idx_dir

    arrays = load_idx_arrays(dataset, data_dir, download=True, verify=True)
    click.echo(
        f"{IDX_DATASETS[dataset].title} verified: {len(arrays.train_images)} training and"
        f" {len(arrays.test_images)} test images in {resolve_idx_dir(dataset, data_dir)}"
    )


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
    t = cfg.train
    click.echo(
        f"training: {t.epochs} epochs, batch {t.batch_size}, lr {t.learning_rate}, momentum {t.momentum},"
        f" shuffle {cfg.data.shuffle}, early stopping patience {t.early_stopping_patience or 'off'},"
        f" init {cfg.model.init}, seed {cfg.seed}"
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
        _on_interrupt(lambda: interrupted_message(resume_dir))
        result = resume_experiment(resume_dir, items, data_dir=data_dir, progress=progress, log=click.echo)
    else:
        if not preset:
            raise ConfigError("give a preset name or a .toml config (see 'mlpkit presets'), or --resume RUN_DIR")
        cfg = _config(preset, overrides, threads)
        run_dir = out or new_run_dir("runs", cfg.name)
        check_experiment(cfg, run_dir, data_dir=data_dir)  # refuse before announcing anything
        _on_interrupt(lambda: interrupted_message(run_dir))
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
def reproduce(
    out: Path,
    only: str | None,
    overrides: tuple[str, ...],
    data_dir: Path | None,
    threads: int | None,
    progress: bool | None,
    force: bool,
) -> None:
    """Run every experiment of the seed report; write comparison figures, summary.md and report.html.

    Into an existing --out it resumes: complete runs with the same config are kept, interrupted
    ones resumed; the summary and report cover every run in the folder.
    """
    from mlpkit.workflows.reproduce import reproduce_all

    names = [p.strip() for p in only.split(",")] if only else None
    _on_interrupt(lambda: f"interrupted; continue with the same command (complete runs in {out} are kept)")
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


# -------------------------------------------------------------------- predict
@main.command()
@click.argument("model_or_run", type=click.Path(path_type=Path))
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--top", type=click.IntRange(min=1), default=1, show_default=True, help="Labels per input, best first.")
@click.option("--json", "as_json", is_flag=True, default=False, help="One JSON document (a list) instead of lines.")
def predict(model_or_run: Path, files: tuple[Path, ...], top: int, as_json: bool) -> None:
    """Label FILES (images: PNG, JPEG, BMP, GIF; batches of rows: .npy, .npz with x, .csv) with a
    model file or a run folder's model."""
    from mlpkit.workflows.predict import format_json, format_text, load_predictor, predict_files

    results = predict_files(load_predictor(model_or_run), files, top=top)
    click.echo(format_json(results) if as_json else format_text(results))


# --------------------------------------------------------------------- export
@main.command()
@click.argument("model_or_run", type=click.Path(path_type=Path))
@click.option("-o", "--output", "out", type=click.Path(path_type=Path), required=True, help="The .onnx file to write.")
@click.option("--opset", type=click.IntRange(min=17), default=17, show_default=True, help="The ONNX opset to declare.")
def export(model_or_run: Path, out: Path, opset: int) -> None:
    """Write the model of a model file or run folder as ONNX (raw inputs in; probabilities, labels out)."""
    from mlpkit.adapters.onnx_export import export_onnx
    from mlpkit.workflows.predict import load_predictor

    click.echo(export_onnx(load_predictor(model_or_run), out, opset=opset).summary())


if __name__ == "__main__":  # pragma: no cover
    main()
