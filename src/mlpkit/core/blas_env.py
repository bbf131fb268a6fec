"""How long OpenBLAS's idle threads spin: set before NumPy loads OpenBLAS, read by the planner.

Why: after each product, OpenBLAS's worker threads spin for ``2**OPENBLAS_THREAD_TIMEOUT``
cycles (default 2**28, a tenth of a second) waiting for the next one. The engine's own
threads (the split sparse first layer, :mod:`mlpkit.engine.split_kernels`) then find the
other core taken: measured on the team's 2-core VM, a 784-1024-1024-10 step with the split
first layer took 7.7 ms with the default spin (no faster than dense BLAS) and 6.5 ms with
``OPENBLAS_THREAD_TIMEOUT=4`` (a few cycles, then the threads sleep until woken), while the
dense step stayed at 7.7 ms either way. OpenBLAS reads the variable once, when it loads, so
``import mlpkit`` sets it when NumPy is not loaded yet (a value the user set is kept), and the
planner splits the first layer only when the short spin is in force (``short_spin``).
"""

from __future__ import annotations

import os
import sys

#: The spin (a power of two of cycles) mlpkit asks for, and the longest it still splits with.
SHORT_SPIN = "4"
LONGEST_SPLIT_SPIN = 8

_in_force: bool | None = None


def shorten_spin() -> None:
    """Ask OpenBLAS for ``SHORT_SPIN`` unless NumPy is loaded already or the user set a value;
    remember whether a short spin is in force. Called by ``import mlpkit``."""
    global _in_force
    if _in_force is not None:
        return
    value = os.environ.get("OPENBLAS_THREAD_TIMEOUT")
    loaded = "numpy" in sys.modules
    if value is None and not loaded:
        os.environ["OPENBLAS_THREAD_TIMEOUT"] = value = SHORT_SPIN
    try:
        _in_force = value is not None and int(value) <= LONGEST_SPLIT_SPIN
    except ValueError:
        _in_force = False


def short_spin() -> bool:
    """Whether OpenBLAS's idle threads spin briefly (see the module docstring)."""
    if _in_force is None:
        shorten_spin()
    return bool(_in_force)
