"""The closed forms of a typed layer as MathML, for the page (browsers render MathML natively).

The expressions are those ``energy-complexity derive`` prints: ``derive.derive_named`` on the substitution
built from the same parsed flags; sympy's presentation-MathML printer renders them.
"""

from __future__ import annotations

import sympy as sp
from sympy.printing.mathml import mathml



def _mathml(expr) -> str:
    if not isinstance(expr, sp.Basic):
        expr = sp.sympify(expr)
    return mathml(expr, printer="presentation")


def _head_mathml(head) -> str:
    return _mathml(sp.Symbol(head) if isinstance(head, str) else head)


def closed_forms_mathml(args) -> dict:
    """{"substituted", "sections": [{"title", "rows": [{"name", "text", "mathml"}]}]} for the parsed flags of
    ``derive ... --json``; ``text`` is the string ``derive --json`` prints.  Raises what the CLI would report."""
    from energy_complexity.commands import derive

    sub = derive._substitution(args)
    parts = derive.derive_named(sub)
    out = []
    for title, rows in parts:
        items = []
        for head, e in rows:
            body = f"<mrow>{_head_mathml(head)}<mo>=</mo>{_mathml(e)}</mrow>"
            items.append({"name": derive._name_text(head), "text": sp.sstr(e),
                          "mathml": f'<math display="block">{body}</math>'})
        out.append({"title": title, "rows": items})
    return {"substituted": {str(k): int(v) for k, v in sub.items()}, "sections": out}
