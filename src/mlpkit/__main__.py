"""The ``mlpkit`` command's entry point (also ``python -m mlpkit``).

Why a module of its own: a Ctrl-C while Python is still importing NumPy, click and the rest
would end in a traceback and death by the signal. This module imports nothing heavy: it
first makes Ctrl-C end the process with status 130 and one line, then imports the command
line (:mod:`mlpkit.cli`), which from there on handles Ctrl-C itself (resume hints, exit 130).
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType


def _interrupted_while_starting(signum: int, frame: FrameType | None) -> None:
    # Nothing is open or written yet: leave at once, without unwinding half-done imports
    # (an exception raised inside an import can be swallowed or re-raised as another one).
    sys.stderr.write("interrupted\n")
    sys.stderr.flush()
    os._exit(130)


def main() -> None:
    """Run the ``mlpkit`` command line with the process's arguments."""
    previous = signal.signal(signal.SIGINT, _interrupted_while_starting)
    from mlpkit.cli import main as cli_main

    try:
        signal.signal(signal.SIGINT, previous)
        cli_main(prog_name="mlpkit")
    except KeyboardInterrupt:  # between the two lines above, before the CLI's own handling
        _interrupted_while_starting(signal.SIGINT, None)


if __name__ == "__main__":
    main()
