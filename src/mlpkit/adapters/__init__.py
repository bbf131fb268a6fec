"""Adapters at the edge: mlpkit behind other libraries' interfaces (scikit-learn's estimator).

Nothing in mlpkit imports this package, and importing it imports no third-party library: each
adapter loads its library when its name is first used (PEP 562).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from mlpkit.adapters.sklearn import MLPClassifier

_LAZY = {"MLPClassifier": "mlpkit.adapters.sklearn"}

__all__ = ["MLPClassifier"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mlpkit.adapters' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
