"""The closed forms of a typed layer as MathML, for the page (browsers render MathML natively).

The forms are those ``energy-complexity derive --json`` prints: ``bounds.render.closed_forms`` on the
parsed layer flags and --M, exactly as the derive command calls it; sympy's presentation-MathML printer
renders each one.
"""

from __future__ import annotations

import html

import sympy as sp
from sympy.core.function import AppliedUndef
from sympy.printing.mathml import MathMLPresentationPrinter

from energy_complexity.layer_args import layer_values


def _name(head) -> str:
    """The printed name of a row, as in ``derive --json``."""
    return head if isinstance(head, str) else sp.sstr(head)


class _Printer(MathMLPresentationPrinter):
    """sympy's presentation MathML, plus Piecewise as a brace of cases and r_h(t)-style helper names
    with their subscripts (sympy 1.14 prints both as plain text)."""

    def _print_Piecewise(self, expr):
        mrow = self.dom.createElement("mrow")
        brace = self.dom.createElement("mo")
        brace.setAttribute("stretchy", "true")
        brace.appendChild(self.dom.createTextNode("{"))
        mrow.appendChild(brace)
        table = self.dom.createElement("mtable")
        table.setAttribute("columnalign", "left left")
        for e, c in expr.args:
            tr = self.dom.createElement("mtr")
            for cell in (e, c):
                td = self.dom.createElement("mtd")
                if cell is sp.true:
                    txt = self.dom.createElement("mtext")
                    txt.appendChild(self.dom.createTextNode("otherwise"))
                    td.appendChild(txt)
                else:
                    td.appendChild(self._print(cell))
                tr.appendChild(td)
            table.appendChild(tr)
        mrow.appendChild(table)
        return mrow

    def _print_Function(self, e):
        if not isinstance(e, AppliedUndef):
            return super()._print_Function(e)
        mrow = self.dom.createElement("mrow")
        mrow.appendChild(self._print(sp.Symbol(e.func.__name__)))
        mrow.appendChild(self._paren_comma_separated(*e.args))
        return mrow


def _mathml(expr) -> str:
    if isinstance(expr, str):
        return f"<mtext>{html.escape(expr)}</mtext>"
    return _Printer().doprint(expr)


def _head_mathml(head) -> str:
    return _mathml(sp.Symbol(head) if isinstance(head, str) else head)


def closed_forms_mathml(args) -> dict:
    """``derive --json`` of the parsed flags, plus every row as MathML.

    {"substituted", "sections": [{"title", "rows": [{"name", "text", "note", "mathml"}]}]}: ``text`` is the
    string ``derive --json`` prints for the row.  Raises what the derive command would report.
    """
    from bounds.render import closed_forms

    cf = closed_forms(layer_values(args), args.M)
    doc = cf.to_json()
    out = []
    for title, rows in cf.sections:
        items = []
        for head, e, note in rows:
            body = f"<mrow>{_head_mathml(head)}<mo>=</mo>{_mathml(e)}</mrow>"
            items.append({"name": _name(head), "text": doc["sections"][title][_name(head)], "note": note,
                          "mathml": f'<math display="block">{body}</math>'})
        out.append({"title": title, "rows": items})
    return {"substituted": doc["substituted"], "sections": out}
