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


__all__ = ["PyIntOps", "IntOps", "FloatOps", "ceil_classes"]


def _name(label, expr, **assumptions):
    """The naming hook of bounds.named_forms.IDENTITY (kept here so numbers never import sympy)."""
    return expr


def _func(label, params, body, **assumptions):
    return body


class PyIntOps:
    """Exact arithmetic on Python integers."""

    name = staticmethod(_name)
    func = staticmethod(_func)
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


def ceil_classes(n: int, limit: int | None = None) -> np.ndarray:
    """Sorted smallest x of each distinct value of ceil(n/x), x = 1..n (at most ``limit``), in O(sqrt(n)).

    Those are exactly the values ceil(n/t), t = 1..n: ceil(n/ceil(n/x)) is the smallest x'
    with ceil(n/x') = ceil(n/x).  A tile or block size only matters through its count
    ceil(n/x) while its footprint grows with x, so these about 2 sqrt(n) sizes are all an
    exhaustive search needs, without ever building the array 1..n.
    """
    n = int(n)
    if n < 1 or (limit is not None and limit < 1):
        return np.zeros(0, dtype=np.int64)
    r = int(np.sqrt(n)) + 1                           # ceil(n/t) for t > r is <= r: reached by ceil(n/ceil(n/x)), x <= r
    r = min(r, n)
    # ceil(n/t) <= limit needs t >= n/limit: start there (O(min(limit, sqrt n)) work)
    t0 = 1 if limit is None else max(1, min(r, n // int(limit)))
    t = np.arange(t0, r + 1, dtype=np.int64)
    big = -((-n) // t)[::-1]                          # ceil(n/t), t0 <= t <= r, nondecreasing
    x = np.arange(1, (r if limit is None else min(r, int(limit))) + 1, dtype=np.int64)
    small = -((-n) // -((-n) // x))                   # the smallest member of the class of x <= r, nondecreasing
    small = small[np.concatenate([[True], small[1:] != small[:-1]])]
    big = big[np.concatenate([[True], big[1:] != big[:-1]])]
    out = np.concatenate([small, big[big > small[-1]]])
    if limit is not None:
        out = out[out <= limit]
    return out
