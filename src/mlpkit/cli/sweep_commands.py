"""``mlpkit sweep``: many trials of one config on Dask (wiring only; see `mlpkit.workflows.sweep`)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mlpkit.cli.app import data_dir_option, main, on_interrupt

scheduler_option = click.option(
    "--scheduler",
    default=None,
    metavar="ADDRESS",
    help="A running Dask scheduler, e.g. tcp://127.0.0.1:8786 (default: a local cluster on this machine).",
)
workers_option = click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes of the local cluster (default: one per core); ignored with --scheduler.",
)


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="The sweep folder; the same command with the same folder continues a sweep.")  # fmt: skip
@scheduler_option
@workers_option
@data_dir_option
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: only on a terminal).")
def sweep(
    spec: Path, out: Path, scheduler: str | None, workers: int | None, data_dir: Path | None, progress: bool | None
) -> None:
    """Run the trials of SPEC (a sweep .toml: preset, [set], [grid], [random], seeds) into --out.

    Each trial is a run folder in OUT/trials; results.csv, results.json and report.html summarize
    them. Exit status 1 if some trials failed (rerun the command to retry them).
    """
    from mlpkit.workflows.sweep.driver import run_sweep

    on_interrupt(lambda: f"interrupted; continue with the same command (finished trials in {out} are kept)")
    result = run_sweep(
        spec, out, scheduler=scheduler, workers=workers, data_dir=data_dir, progress=progress, log=click.echo
    )
    click.echo(f"results: {out / 'results.csv'}")
    if result.failed:
        sys.exit(1)
