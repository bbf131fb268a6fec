"""Adapters at the edge: mlpkit behind other libraries' interfaces (scikit-learn's estimator).

Nothing in mlpkit imports this package, and importing it imports no third-party library: each
adapter loads its library when its name is first used (PEP 562).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlpkit.core.lazy import lazy_exports

if TYPE_CHECKING:  # pragma: no cover
    from mlpkit.adapters.sklearn import MLPClassifier

_LAZY = {"MLPClassifier": "mlpkit.adapters.sklearn"}

__all__ = ["MLPClassifier"]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
