"""Adapters at the edge: mlpkit behind other libraries' interfaces (scikit-learn's estimator, ONNX).

Nothing in mlpkit imports this package, and importing it imports no third-party library: each
adapter loads its library when its name is first used (PEP 562).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlpkit.core.lazy import lazy_exports

if TYPE_CHECKING:  # pragma: no cover
    from mlpkit.adapters.onnx_export import export_onnx, to_onnx
    from mlpkit.adapters.sklearn import MLPClassifier

_LAZY = {
    "MLPClassifier": "mlpkit.adapters.sklearn",
    "export_onnx": "mlpkit.adapters.onnx_export",
    "to_onnx": "mlpkit.adapters.onnx_export",
}

__all__ = ["MLPClassifier", "export_onnx", "to_onnx"]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
