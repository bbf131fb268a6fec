"""The ``mlpkit`` command line: wiring only; the work lives in the library modules.

Exit status: 0 done, 1 a check failed (gradcheck), 2 an error the user can fix (one ``error:``
line: an MlpkitError, or an OSError naming the path and the system's reason), 130 Ctrl-C.
Importing this package registers every command on `main`.
"""

from mlpkit.cli import (  # noqa: F401  (each registers its commands)
    data_commands,
    experiments,
    models,
    serve_command,
    sweep_commands,
)
from mlpkit.cli.app import main

__all__ = ["main"]
