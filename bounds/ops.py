"""Numeric arithmetic backends for the closed forms of the dataflows.

Each dataflow's formulas are written once against a small set of operations (min,
max, ceiling and floor division, exact division, and the naming hooks of
bounds/named_forms.py) and evaluated with whichever backend fits: Python integers
(exact, unbounded), numpy int64 arrays (exact, vectorized) or float64 arrays (fast,
exact for integers below 2**52).  The sympy backend stays with each formula module,
since it decides how the printed forms look.
"""

from __future__ import annotations

from functools import reduce

import numpy as np

from bounds.named_forms import IDENTITY

__all__ = ["PyIntOps", "IntOps", "FloatOps"]


class PyIntOps:
    """Exact arithmetic on Python integers."""

    name = staticmethod(IDENTITY.name)
    func = staticmethod(IDENTITY.func)
    min = staticmethod(min)
    max = staticmethod(max)

    @staticmethod
    def cdiv(a, b):
        return -((-a) // b)

    @staticmethod
    def fdiv(a, b):
        return a // b

    @staticmethod
    def exact(a, b):  # a / b, known to be an integer
        return a // b


class IntOps(PyIntOps):
    """Exact arithmetic on numpy integer arrays (element-wise min and max)."""

    @staticmethod
    def min(*a):
        return np.minimum(*a) if len(a) == 2 else reduce(np.minimum, a)

    @staticmethod
    def max(*a):
        return np.maximum(*a) if len(a) == 2 else reduce(np.maximum, a)


class FloatOps(IntOps):
    """float64 arrays: floor and ceiling of a quotient of integers below 2**52 are exact."""

    @staticmethod
    def cdiv(a, b):
        return np.ceil(a / b)

    @staticmethod
    def fdiv(a, b):
        return np.floor(a / b)

    @staticmethod
    def exact(a, b):
        return a / b
