"""The ``mlpkit`` command group and what its commands share: one ``error:`` line per error,
exit statuses, Ctrl-C handling, common options. Commands live in the modules beside it.

Exit status: 0 done, 1 a check failed (gradcheck), 2 an error the user can fix (one ``error:``
line: an MlpkitError, or an OSError naming the path and the system's reason), 130 Ctrl-C.
"""

from __future__ import annotations

import errno
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

from mlpkit.core.errors import MlpkitError

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a program stopped by Ctrl-C
_INTERRUPT_MESSAGE = "mlpkit.interrupt_message"  # ctx.meta entry, shared by the group and its commands


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_ERROR)


def _interrupted(message: str = "interrupted") -> NoReturn:
    click.echo(message, err=True)
    sys.exit(EXIT_INTERRUPTED)


def _caused_by_interrupt(exc: BaseException) -> bool:
    """Whether a Ctrl-C is what raised ``exc``: a KeyboardInterrupt that lands inside some library
    code comes back re-raised as another error (dataclasses wraps one that hits a class body
    being built in RuntimeError), with the interrupt as its cause or context."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def on_interrupt(message: Callable[[], str]) -> None:
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
        except Exception as exc:
            if not _caused_by_interrupt(exc):
                raise
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
        except Exception as exc:
            if not _caused_by_interrupt(exc):
                raise
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
