"""``mlpkit serve``: the local web app (draw a digit, follow training live, browse runs).

Starlette and uvicorn are imported only when the command runs.
"""

from __future__ import annotations

from pathlib import Path

import click

from mlpkit.cli.app import main

LOOPBACK = ("127.0.0.1", "::1", "localhost")


@main.command()
@click.argument("models", nargs=-1, type=click.Path(path_type=Path), metavar="[MODEL_OR_RUN]...")
@click.option(
    "--runs",
    "runs_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("runs"),
    show_default=True,
    help="The folder of run folders the runs and live pages show.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (another one is reachable "
              "from other machines: a warning is printed).")  # fmt: skip
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port (0: a free one).")
def serve(models: tuple[Path, ...], runs_dir: Path, host: str, port: int) -> None:
    """Serve the web app for MODEL_OR_RUN (model files or run folders; none: the models of the
    runs under --runs) until Ctrl-C. Read-only: it writes no file and starts no training."""
    from mlpkit.web.app import create_app
    from mlpkit.web.models import ModelSet
    from mlpkit.web.server import bind
    from mlpkit.web.server import serve as serve_app

    model_set = ModelSet.load(models) if models else ModelSet.from_runs(runs_dir)
    sock = bind(host, port)
    port = sock.getsockname()[1]
    app = create_app(model_set, runs=runs_dir, host=host, port=port)
    if host not in LOOPBACK:
        click.echo(
            f"warning: listening on {host}, not 127.0.0.1: other machines can reach this server (no authentication)",
            err=True,
        )
    shown = f"[{host}]" if ":" in host else host
    names = ", ".join(model_set.models) or "none"
    click.echo(f"mlpkit serve: http://{shown}:{port}/  (models: {names}; runs: {runs_dir}); Ctrl-C stops it")
    serve_app(app, sock)
