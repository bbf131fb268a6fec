"""Package ``__init__``s that re-export their modules' names on first use (PEP 562).

Why: importing a package must stay cheap (``import mlpkit`` loads neither NumPy, Numba,
matplotlib nor Jinja2), yet each package lists its public names in ``__all__`` and makes them
available as attributes. One helper instead of a hand-written ``__getattr__`` in every package.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, homes: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``, loading each name from its home module.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    homes : mapping of str to str
        Public name -> the module that defines it: a full dotted name (``"mlpkit.nn.mlp"``) or
        one relative to the package (``"planner"``).

    Returns
    -------
    (callable, callable)
        Assign them to the package's ``__getattr__`` and ``__dir__``. A name, once loaded, is
        stored on the package, so later lookups do not come back here.
    """

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(home if home.startswith("mlpkit") else f"{package}.{home}")
        value = getattr(module, name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(homes))

    return __getattr__, __dir__
