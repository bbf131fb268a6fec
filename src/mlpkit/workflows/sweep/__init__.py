"""Sweeps: many trials (grid x random samples x seeds) of one base config, run as ordinary run
folders on Dask distributed, fault tolerant through exact resume (``mlpkit sweep``).

Names are imported on first use (PEP 562): importing this package imports neither Dask nor the
training code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlpkit.core.lazy import lazy_exports

if TYPE_CHECKING:
    from mlpkit.workflows.sweep.driver import SweepResult, plan_sweep, run_sweep
    from mlpkit.workflows.sweep.executor import dask_client
    from mlpkit.workflows.sweep.spec import SweepSpec, load_spec, parse_spec
    from mlpkit.workflows.sweep.trials import Trial, expand

_HOMES = {
    "SweepResult": "driver",
    "plan_sweep": "driver",
    "run_sweep": "driver",
    "dask_client": "executor",
    "SweepSpec": "spec",
    "load_spec": "spec",
    "parse_spec": "spec",
    "Trial": "trials",
    "expand": "trials",
}
__all__ = [
    "SweepResult",
    "SweepSpec",
    "Trial",
    "dask_client",
    "expand",
    "load_spec",
    "parse_spec",
    "plan_sweep",
    "run_sweep",
]

__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
