"""A module imported on first attribute access, so that numeric callers never load sympy.

``sp = LazyModule("sympy")`` at the top of a formula module keeps ``sp.Min(...)`` working
unchanged while ``import bounds.api`` (and the one-layer CLI) stays free of sympy's
~0.3 s import; the symbolic code pays it on its first use.
"""

from __future__ import annotations

import importlib


class LazyModule:
    """Stands for the module ``name``: any attribute read imports it (once) and returns the real attribute."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str):
        return getattr(importlib.import_module(self._name), attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"
