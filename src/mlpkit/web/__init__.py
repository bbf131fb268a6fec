"""The local web app of ``mlpkit serve``: draw a digit and watch the network answer, follow a
run while it trains, browse and compare run folders.

Starlette and uvicorn are imported on first use of a name, never by ``import mlpkit`` or the CLI.
"""

from __future__ import annotations

from mlpkit.core.lazy import lazy_exports

#: public name -> the module that defines it
_EXPORTS = {
    "create_app": "mlpkit.web.app",
    "ModelSet": "mlpkit.web.models",
    "bind": "mlpkit.web.server",
    "serve": "mlpkit.web.server",
    "start_in_thread": "mlpkit.web.server",
}

__all__ = ["ModelSet", "bind", "create_app", "serve", "start_in_thread"]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
