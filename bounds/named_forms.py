"""Named intermediate quantities for readable closed forms.

The formula code of each bound (bounds/lower_bound.py, output_stationary.py,
weight_stationary.py) passes every quantity worth naming through ``name(label, expr)``
and every per-tile helper through ``func(label, params, body)``.  With ``IDENTITY`` these
hooks return their argument, so the numeric code and the fully expanded sympy forms are
unchanged; with a ``Namer`` they record the definition and return a symbol (or an
undefined function), which yields the short forms.  ``expand`` substitutes the
definitions back: the full form is literally the short form with the defs substituted.
"""

from __future__ import annotations

from bounds._lazy import LazyModule

sp = LazyModule("sympy")  # imported on first use: IDENTITY (the numeric code's hook) needs no sympy

__all__ = ["IDENTITY", "Identity", "Namer", "expand", "defined_symbol"]

#: Assumptions of every named quantity: a non-negative integer unless the caller says otherwise.
_INT = {"integer": True, "nonnegative": True}


class Identity:
    """The no-op naming hooks: ``name`` returns the expression, ``func`` the Python function."""

    @staticmethod
    def name(label, expr, **assumptions):
        return expr

    @staticmethod
    def func(label, params, body, **assumptions):
        return body


IDENTITY = Identity()


def defined_symbol(label: str, **assumptions) -> sp.Symbol:
    """The symbol a Namer gives to ``label`` (integer and non-negative unless told otherwise)."""
    return sp.Symbol(label, **(assumptions or _INT))


class Namer:
    """Records ``label -> definition`` in order and hands back symbols / undefined functions.

    ``defs`` maps a Symbol, or an applied undefined function such as ``r_h(t)``, to its
    definition in terms of earlier entries and the layer, tile and machine symbols.
    A label named twice must get the same definition (checked).
    """

    def __init__(self):
        self.defs: dict = {}
        self._by_label: dict = {}

    def name(self, label, expr, **assumptions):
        sym = defined_symbol(label, **assumptions)
        old = self._by_label.get(label)
        if old is not None:
            if self.defs[old] != expr:
                raise ValueError(f"{label} named twice with different definitions")
            return old
        self._by_label[label] = sym
        self.defs[sym] = expr
        return sym

    def func(self, label, params, body, **assumptions):
        args = tuple(p if isinstance(p, sp.Symbol) else sp.Symbol(p, integer=True) for p in params)
        f = sp.Function(label, **(assumptions or _INT))
        head = f(*args)
        if label not in self._by_label:
            self._by_label[label] = head
            self.defs[head] = body(*args)
        return lambda *a: f(*a)


def expand(expr, defs: dict, sub: dict | None = None):
    """``expr`` with every named quantity of ``defs`` replaced by its full definition (and ``sub`` applied).

    Only the definitions ``expr`` needs are expanded, in order, so each is in the base
    symbols when it is used; symbols are replaced with ``xreplace`` (exact, fast),
    undefined functions by their Lambda.
    """
    need = _needed(expr, defs)
    values = full_values({h: b for h, b in defs.items() if h in need}, sub)
    return _apply(expr, values, sub or {})


def full_values(defs: dict, sub: dict | None = None) -> dict:
    """Each definition in ``defs`` in the base symbols (and with ``sub`` applied), in order."""
    sub = dict(sub or {})
    values: dict = {}
    for head, body in defs.items():
        values[head] = _apply(body, values, sub)
    return values


def _refs(expr, defs: dict) -> set:
    """The heads of ``defs`` that ``expr`` mentions directly."""
    if not isinstance(expr, sp.Basic):
        return set()
    from sympy.core.function import AppliedUndef
    funcs = {h.func: h for h in defs if not isinstance(h, sp.Symbol)}
    out = {s for s in expr.free_symbols if s in defs}
    return out | {funcs[f.func] for f in expr.atoms(AppliedUndef) if f.func in funcs}


def _needed(expr, defs: dict) -> set:
    need, stack = set(), list(_refs(expr, defs))
    while stack:
        h = stack.pop()
        if h not in need:
            need.add(h)
            stack.extend(_refs(defs[h], defs))
    return need


def _apply(expr, values, sub):
    if not isinstance(expr, sp.Basic):
        return expr
    syms = {k: v for k, v in values.items() if isinstance(k, sp.Symbol)}
    e = expr.xreplace({**sub, **syms})
    for head, body in values.items():
        if not isinstance(head, sp.Symbol) and e.has(head.func):
            e = e.replace(head.func, sp.Lambda(head.args, body))
    return e
