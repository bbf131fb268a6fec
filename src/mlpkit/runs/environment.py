"""What a run depends on beyond its config, recorded beside it: versions, BLAS, threads, machine."""

from __future__ import annotations

import os
import platform
import sys
import time
from typing import Any

__all__ = ["environment_info"]


def environment_info(*, seed: int, threads: int | None) -> dict[str, Any]:
    """The content of a run's ``environment.json``.

    Parameters
    ----------
    seed : int
        The run's seed.
    threads : int or None
        The BLAS thread limit the run was given (None: the library's own choice).

    Returns
    -------
    dict
        seed, threads, versions (mlpkit, Python, NumPy), the BLAS libraries threadpoolctl sees,
        platform, machine, processor, CPU count and the start time.
    """
    import numpy

    from mlpkit.core.version import __version__

    try:
        from threadpoolctl import threadpool_info

        blas = [
            {k: i.get(k) for k in ("internal_api", "version", "num_threads", "architecture", "filepath")}
            for i in threadpool_info()
        ]
    except Exception:  # pragma: no cover - threadpoolctl is a dependency
        blas = []
    return {
        "seed": seed,
        "threads": threads,
        "mlpkit": __version__,
        "python": sys.version.split()[0],
        "numpy": numpy.__version__,
        "blas": blas,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
