"""Closed forms for people: the named forms of every bound, substituted and printed as text, LaTeX or JSON.

``closed_forms(values, M, os_tiles, ws_tiles)`` returns a ``ClosedForms`` (``.text()``,
``.latex()``, ``.to_json()``; it shows itself in a notebook) with the readable forms of
bounds/lower_bound.py, bounds/output_stationary.py and bounds/weight_stationary.py
(``*_named_forms``): named intermediate quantities (n_h, u_h, R_h, ...) once each, then
each bound in terms of them.  They are built by the same code as the expressions the
numeric code is tested against, so substituting the definitions gives the full forms
exactly (tests/test_derive.py); ``full=True`` gives the fully expanded forms instead.
``evaluate_expression(expr, layer, M)`` evaluates any closed form for a Layer.
The ``derive`` command only parses its flags and prints a ClosedForms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import sympy as sp
from sympy.core.function import AppliedUndef

from bounds import symbols as sy
from complexity.layer import Layer, LayerError
from complexity.machine import Machine, MachineError

__all__ = ["ClosedForms", "closed_forms", "evaluate_expression", "ExpressionError", "TileError", "optimum_rows",
           "layer_substitution", "tile_substitutions",
           "named_sections", "derive_named", "LAYER_LABELS", "DESCRIPTIONS"]

#: Named quantities printed in the "Layer" section (in the order they are defined).
LAYER_LABELS = ("n_h", "n_w", "u_h", "u_w", "a^top_h", "z_h", "a^bot_h", "t_h", "a^top_w", "z_w", "a^bot_w",
                "t_w", "c_g", "d_g", "X_used", "W", "Y", "F", "F_real")

#: What each named quantity is (text output only), by label without its axis suffix.
DESCRIPTIONS = {
    "n": "outputs along the axis", "u": "real input lines read by some window",
    "a^top": "windows cut by the leading padding", "z": "overhang of the last window past the input",
    "a^bot": "windows cut at the far end", "t": "(output, tap) pairs reading a real input",
    "c_g": "input channels per group", "d_g": "filters per group", "X_used": "input words read by some MAC",
    "W": "weight words", "Y": "output words", "F": "MACs", "F_real": "MACs with a real (non-padding) input",
    "q": "most outputs one input feeds per (batch, filter)", "W_g": "weights of one group",
    "lambda": "word-reuse rate of the linear phase count", "phi": "most real MACs among T touched words",
    "k": "phases of S entries (loads, opening partial-sum creations) needed", "Q_comp": "compulsory traffic",
    "Q_cap": "capacity term, phase length S in {M, 2M, 3M}",
    "m": "input lines per output step", "N": "tiles along the axis", "J": "positive terms of G",
    "G": "sum_{t<N} max(0, B - a t)", "R": "real input lines loaded, summed over the tiles",
    "tau": "size of tile t", "r": "real input lines of tile t", "t^pad": "first tile clear of the padding",
    "T^F": "size of the fullest tile", "R^F": "real lines of the fullest tile",
    "T^L": "size of the last tile", "R^L": "real lines of the last tile",
    "i^win": "first window at the end of the real-rows plateau", "R^win": "most real input rows of one window",
}

_LATEX_NAMES = {"X_used": r"|X_{\mathrm{used}}|", "W": "|W|", "Y": "|Y|", "F_real": r"F_{\mathrm{real}}",
                "Q_comp": r"Q_{\mathrm{comp}}", "Q_cap": r"Q_{\mathrm{cap}}", "Q_LB": r"Q_{\mathrm{LB}}",
                "A_LB": r"A_{\mathrm{LB}}", "Q_OS": r"Q_{\mathrm{OS}}", "A_OS": r"A_{\mathrm{OS}}",
                "Q_WS": r"Q_{\mathrm{WS}}", "A_WS": r"A_{\mathrm{WS}}",
                "footprint_OS": r"\mathrm{footprint}_{\mathrm{OS}}",
                "footprint_WS": r"\mathrm{footprint}_{\mathrm{WS}}", "W_g": "W_g", "t^pad_h": r"t^{\mathrm{pad}}_h",
                "t^pad_w": r"t^{\mathrm{pad}}_w", "R^win_h": r"R^{\mathrm{win}}_h", "i^win_h": r"i^{\mathrm{win}}_h",
                "a^top_h": r"a^{\mathrm{top}}_h", "a^top_w": r"a^{\mathrm{top}}_w",
                "a^bot_h": r"a^{\mathrm{bot}}_h", "a^bot_w": r"a^{\mathrm{bot}}_w",
                "all_fit": r"\mathrm{all\ weights\ fit}", "Q_all_fit": r"Q_{\mathrm{all\ fit}}"}

#: Largest expression (in tree nodes) expanded to the base symbols; past it the named form is kept.
_MAX_NODES = 150
#: Largest expression handed to sympy's simplify.
_SIMPLIFY_NODES = 30

# ----- the named forms ---------------------------------------------------------------

@lru_cache(maxsize=1)
def named_sections() -> tuple:
    """(merged defs, sections): every named quantity once, and per section its main formulas.

    A section is (title, key, [(name, expression)]) with ``key`` selecting the tile
    substitution ("os", "ws" or None).  Definitions come from the bound modules' named
    forms; a label they share (n_h, Y, ...) is taken from the first (the lower bound's).
    """
    from bounds.lower_bound import S_FACTORS, lb_named_forms
    from bounds.output_stationary import TILE_SYMBOLS, os_continuous_optimum, os_named_forms
    from bounds.weight_stationary import ws_continuous_optimum, ws_named_forms

    lb, os_, ws = lb_named_forms(), os_named_forms(), ws_named_forms()
    defs: dict = {}
    for part in (lb, os_, ws):
        for head, body in part["defs"].items():
            defs.setdefault(head, body)
    F = _sym("F")
    S_set = ", ".join((f"{n}M" if n > 1 else "M") + (f"/{d}" if d > 1 else "") for n, d in S_FACTORS)
    oc, wc = os_continuous_optimum()["short"], ws_continuous_optimum()["short"]
    tiles_os = ", ".join(str(s) for s in TILE_SYMBOLS.values())
    sections = [
        ("Layer (docs/theory.md, section 1); every execution has A = Q + 3F, E = e_D Q + e_B A + e_M F",
         None, []),
        (f"Lower bound, any execution order (docs/theory.md, section 3); S in {{{S_set}}}", None,
         [("Q_LB", lb["short"]["Q"]), ("A_LB", lb["short"]["A"])]),
        (f"Output-stationary tiling (docs/dataflow_os.md), tiles {tiles_os}", "os",
         [("Q_OS", os_["short"]["Q"]), ("A_OS", os_["short"]["Q"] + 3 * F),
          ("footprint_OS", os_["short"]["footprint"])]),
        ("Output-stationary continuous optimum (docs/dataflow_os.md, section 6)", None,
         [(f"{k}^*" if k in ("D", "T", "Th", "Tw", "Q") else k, oc[k])
          for k in ("D", "T", "Th", "Tw", "Q", "D_fit", "T_fit")]),
        ("Weight-stationary blocking (docs/dataflow_ws.md), tiles D, C", "ws",
         [("Q_WS", ws["short"]["Q"]), ("A_WS", ws["short"]["Q"] + 3 * F),
          ("footprint_WS", ws["short"]["footprint"])]),
        ("Weight-stationary continuous optimum (docs/dataflow_ws.md)", None,
         [("D^*", wc["D"]), ("C^*", wc["C"]), ("Q^*", wc["Q"]), ("all_fit", wc["all_fit"]),
          ("Q_all_fit", wc["Q_all_fit"])]),
    ]
    return defs, sections


def _sym(label):
    from bounds.named_forms import defined_symbol
    return defined_symbol(label)


def _heads_in(expr, heads_by_func: dict, symbols: set) -> list:
    """The def heads that ``expr`` refers to directly (symbols and undefined functions)."""
    if not isinstance(expr, sp.Basic):
        return []
    out = [s for s in expr.free_symbols if s in symbols]
    out += [heads_by_func[f.func] for f in expr.atoms(AppliedUndef) if f.func in heads_by_func]
    return out


def _size(expr, limit: int) -> int:
    """Number of nodes of ``expr``, counting stops past ``limit``."""
    n = 0
    for _ in sp.preorder_traversal(expr):
        n += 1
        if n > limit:
            break
    return n


def _canon(expr):
    """Re-evaluate Min/Max so that nested ones flatten and decided ones disappear."""
    if not isinstance(expr, sp.Basic) or not expr.has(sp.Min, sp.Max):
        return expr
    return expr.replace(lambda x: isinstance(x, (sp.Min, sp.Max)), lambda x: x.func(*x.args))


def _tidy(expr):
    """Cheap simplification: only small expressions free of Min/Max/floor/ceiling go through simplify."""
    if isinstance(expr, sp.Expr) and not expr.is_Number and _size(expr, _SIMPLIFY_NODES) <= _SIMPLIFY_NODES \
            and not expr.has(sp.Piecewise, sp.Min, sp.Max, sp.floor, sp.ceiling):
        try:
            s = sp.simplify(expr)
        except Exception:  # pragma: no cover - simplify is best effort
            return expr
        if len(sp.sstr(s)) < len(sp.sstr(expr)):
            return s
    return expr


class _Renderer:
    """Substitutes the given values into the named forms, section by section.

    Each definition is printed once, where it is first needed, in the shortest of its
    named form and its expansion into the base symbols; a definition that becomes a
    number (or a bare symbol) is inlined in the ones after it.
    """

    def __init__(self, defs: dict, base_sub: dict):
        self.defs = defs
        self.base = base_sub
        self.symbols = {h for h in defs if isinstance(h, sp.Symbol)}
        self.funcs = {h.func: h for h in defs if not isinstance(h, sp.Symbol)}
        self.params = {a for h in self.funcs.values() for a in h.args}
        self.inline: dict = {}
        self.values: dict = {}
        self.sizes: dict = {}
        self.done: set = set()

    def _value(self, expr, sub):
        """``expr`` in the base symbols, or None when a dependency is unknown or it grows too big."""
        deps = _heads_in(expr, self.funcs, self.symbols)
        if any(self.values.get(d) is None for d in deps):
            return None
        if not self._closed(expr, deps, sub):
            # estimate the expanded size first: building a big Min/Max is what costs time
            est = _size(expr, _MAX_NODES)
            for d in deps:
                uses = expr.count(d) if isinstance(d, sp.Symbol) else len([a for a in expr.atoms(AppliedUndef)
                                                                              if a.func == d.func])
                est += uses * self.sizes[d]
            if est > _MAX_NODES:
                return None
        e = expr.xreplace({**sub, **{d: self.values[d] for d in deps if isinstance(d, sp.Symbol)}})
        for d in deps:
            if not isinstance(d, sp.Symbol):
                e = e.replace(d.func, sp.Lambda(d.args, self.values[d]))
        if _size(e, _MAX_NODES) > _MAX_NODES:
            return None
        e = _tidy(e)
        return e

    def _closed(self, expr, deps, sub) -> bool:
        """True when ``expr`` becomes a number: every symbol given, every dependency a number or a closed function."""
        free = expr.free_symbols - set(sub) - self.symbols
        if free and not free <= self.params:
            return False
        for d in deps:
            v = self.values[d]
            if isinstance(d, sp.Symbol):
                if not v.is_Number:
                    return False
            elif not v.free_symbols <= set(d.args):
                return False
        return True

    def render(self, head, body, sub) -> sp.Basic:
        """The expression to print for ``head``, recording its value for later definitions."""
        short = _canon(body.xreplace({**sub, **self.inline})) if isinstance(body, sp.Basic) else body
        value = self._value(body, sub) if isinstance(body, sp.Basic) else body
        self.values[head] = value
        self.sizes[head] = _size(value, _MAX_NODES) if value is not None else None
        if value is None:
            return short
        if isinstance(head, sp.Symbol) and (value.is_Number or isinstance(value, sp.Symbol)):
            self.inline[head] = value
        if value.is_Number or len(sp.sstr(value)) < len(sp.sstr(short)):
            return value
        return short

    def needed(self, exprs) -> list:
        """Heads that ``exprs`` need, transitively, not printed yet, in definition order."""
        need, stack = set(), [h for e in exprs for h in _heads_in(e, self.funcs, self.symbols)]
        while stack:
            h = stack.pop()
            if h in need or h in self.done:
                continue
            need.add(h)
            stack.extend(_heads_in(self.defs[h], self.funcs, self.symbols))
        return [h for h in self.defs if h in need]


def derive_named(sub: dict, os_sub: dict | None = None, ws_sub: dict | None = None) -> list:
    """[(section title, [(head, expression)])]: the named forms with ``sub`` (and the tiles) substituted.

    ``head`` is a sympy Symbol, an applied undefined function (for a helper like r_h(t)), or
    the name of a main formula (Q_OS, footprint_WS, ...).
    """
    defs, sections = named_sections()
    r = _Renderer(defs, sub)
    tiles = {"os": os_sub or {}, "ws": ws_sub or {}}
    out = []
    by_label = {str(h): h for h in defs if isinstance(h, sp.Symbol)}
    for i, (title, key, mains) in enumerate(sections):
        ssub = {**sub, **tiles.get(key, {})}
        rows = []
        seeds = [by_label[x] for x in LAYER_LABELS if x in by_label] if i == 0 else []
        heads = r.needed(seeds + [e for _, e in mains])
        for h in heads:
            rows.append((h, r.render(h, defs[h], ssub)))
            r.done.add(h)
        for name, e in mains:
            rows.append((name, r.render(sp.Symbol(name), e, ssub)))
        rows = _drop_unused_functions(rows)
        out.append((title, rows))
    return out


def _drop_unused_functions(rows: list) -> list:
    """Drop the helper-function rows (G, r_h, ...) whose every use was evaluated to a number."""
    def calls(e):
        return {f.func for f in e.atoms(AppliedUndef)} if isinstance(e, sp.Basic) else set()

    funcs = {h.func: e for h, e in rows if not isinstance(h, (str, sp.Symbol))}
    used = set().union(*(calls(e) for h, e in rows if isinstance(h, (str, sp.Symbol))))
    stack = list(used)
    while stack:
        for f in calls(funcs.get(stack.pop(), sp.S.Zero)) - used:
            used.add(f)
            stack.append(f)
    return [(h, e) for h, e in rows if isinstance(h, (str, sp.Symbol)) or h.func in used]


# ----- printing ----------------------------------------------------------------------

def _name_text(head) -> str:
    return head if isinstance(head, str) else sp.sstr(head)


def _latex_names() -> dict:
    return {sp.Symbol(k, **a): v for k, v in _LATEX_NAMES.items()
            for a in ({}, {"integer": True, "nonnegative": True}, {"positive": True})}


def _name_latex(head, names) -> str:
    if isinstance(head, str):
        if head in _LATEX_NAMES:
            return _LATEX_NAMES[head]
        return sp.latex(sp.Symbol(head))
    return sp.latex(head, symbol_names=names)


def _describe(head) -> str:
    label = _name_text(head).split("(")[0]
    for key in (label, label.rsplit("_", 1)[0]):
        if key in DESCRIPTIONS:
            return DESCRIPTIONS[key]
    return ""




# ----- errors ------------------------------------------------------------------------

class TileError(ValueError):
    """A dataflow tile that does not exist for the layer or does not fit in M; the message names it."""

    def __init__(self, dataflow: str, parameter: str, message: str):
        super().__init__(f"invalid {dataflow} tile: {parameter}: {message}")
        self.dataflow = dataflow
        self.parameter = parameter


class ExpressionError(ValueError):
    """A closed form that cannot be evaluated as asked; the message names the symbols left without a value."""

    def __init__(self, parameter: str, message: str):
        super().__init__(f"cannot evaluate the expression: {parameter}: {message}")
        self.parameter = parameter


# ----- evaluating a closed form for a layer ------------------------------------------

def _tile_values(tiles) -> dict:
    """Tile symbol -> value for an OSTiles, a WSTiles, or a Cost's tiles dict (OS keys b d th tw c, WS keys d c)."""
    from bounds.output_stationary import TILE_SYMBOLS, OSTiles
    from bounds.weight_stationary import C_SYM, D_SYM, WSTiles

    if tiles is None:
        return {}
    if isinstance(tiles, OSTiles):
        tiles = tiles.as_dict()
    elif isinstance(tiles, WSTiles):
        tiles = tiles.as_dict()
    if not isinstance(tiles, dict):
        raise ExpressionError("tiles", f"expected OSTiles, WSTiles or a dict of tile sizes, got {tiles!r}")
    if set(tiles) == {"d", "c"}:
        return {D_SYM: sp.Integer(int(tiles["d"])), C_SYM: sp.Integer(int(tiles["c"]))}
    if set(tiles) == set(TILE_SYMBOLS):
        return {TILE_SYMBOLS[k]: sp.Integer(int(v)) for k, v in tiles.items()}
    raise ExpressionError("tiles", f"keys {sorted(tiles)} are neither the OS tile (b, d, th, tw, c) "
                                   "nor the WS tile (d, c)")


def evaluate_expression(expr, layer: Layer | dict, M: int | None = None, *, machine: Machine | None = None,
                        tiles=None, exact: bool = False):
    """The value of a closed form (in the symbols of bounds/symbols.py) for ``layer``.

    ``layer``: a Layer or a dict of its fields (``Layer.from_dict``).  Substitutes ``layer.symbols()``, ``M`` (or ``machine.M``), with ``machine`` its per-word
    costs for e_D, e_B, e_M (so an "E" form equals ``Machine.energy``), and a dataflow tile
    ``tiles`` (OSTiles, WSTiles, or a Cost's ``tiles`` dict).  Uses ``xreplace``, which is
    exact and fast; ``expr.subs(layer.symbols() | {M: ...})`` gives the same value but can
    take minutes on the lower bound's large form.  Returns an int for an integer value, a bool
    for a relation, else a float (``exact=True``: the sympy number).  Raises ExpressionError
    naming the symbols still free (e.g. M, or D and C when a tile is needed).

        >>> from bounds.lower_bound import lb_expressions
        >>> evaluate_expression(lb_expressions()["Q"], Layer.conv(64, 64, 56, 3, pad=1), M=65536)
        438272
    """
    if isinstance(layer, dict):  # e.g. layer.to_dict(): field names, validated as a Layer
        layer = Layer.from_dict(layer)
    if not isinstance(layer, Layer):
        raise ExpressionError("layer", f"expected a Layer or a dict of its fields, got {type(layer).__name__}")
    if not isinstance(expr, sp.Basic):
        try:
            expr = sp.sympify(expr)
        except (sp.SympifyError, TypeError):
            raise ExpressionError("expr", f"expected a sympy expression, got {expr!r}") from None
    sub = {s: sp.Integer(v) for s, v in layer.symbols().items()}
    if machine is not None:
        if M is not None and int(M) != machine.M:
            raise ExpressionError("M", f"M={M} differs from machine.M={machine.M}; give one of them")
        M = machine.M
        sub.update({sy.eD: sp.Float(machine.e_dram), sy.eB: sp.Float(machine.e_buf), sy.eM: sp.Float(machine.e_mac)})
    if M is not None:
        if isinstance(M, bool) or int(M) != M or M < 1:
            raise MachineError("M", f"Buffer capacity must be a positive integer number of words, got {M!r}")
        sub[sy.M] = sp.Integer(int(M))
    sub.update(_tile_values(tiles))
    value = expr.xreplace(sub)
    if isinstance(value, sp.Basic) and value.free_symbols:
        names = ", ".join(sorted(str(s) for s in value.free_symbols))
        hint = " (give M or machine)" if sy.M in value.free_symbols else ""
        hint += " (give tiles)" if any(str(s) in ("D", "C", "B_t", "T_h", "T_w") for s in value.free_symbols) else ""
        raise ExpressionError("symbols", f"{names} have no value{hint}")
    if exact:
        return value
    if value in (sp.true, sp.false) or isinstance(value, bool):
        return bool(value)
    if isinstance(value, sp.Basic) and not value.is_number:
        raise ExpressionError("expr", f"does not evaluate to a number: {sp.sstr(value)[:80]}")
    if getattr(value, "is_Integer", False) or isinstance(value, int):
        return int(value)
    return float(value)


# ----- substitution and tile checks ---------------------------------------------------

#: Layer fields that make a numeric layer when all are given (the rest then take Layer's defaults).
CORE_FIELDS = ("c", "d", "h", "w", "kh", "kw")


def layer_substitution(values: dict | None = None, M: int | None = None) -> tuple[dict, Layer | None]:
    """(symbol -> value, Layer or None) for the given layer fields and Buffer size M.

    When c, d, h, w, kh and kw are all given the layer is numeric: b, sh, sw, ph, pw and
    groups take Layer's defaults (1, 1, 1, 0, 0, 1) and every layer symbol is substituted.
    Otherwise only the given fields are substituted, the rest stay symbolic.  Errors
    (LayerError, MachineError) name the field.
    """
    vals = dict(values or {})
    for f in vals:
        if f not in sy.LAYER_SYMBOLS:
            raise LayerError(f, f"unknown layer field; known: {', '.join(sy.LAYER_SYMBOLS)}")
    for f, v in vals.items():
        lo = 0 if f in ("ph", "pw") else 1
        if isinstance(v, bool) or int(v) != v or v < lo:
            raise LayerError(f, f"must be a {'non-negative' if lo == 0 else 'positive'} integer, got {v!r}")
    vals = {f: int(v) for f, v in vals.items()}
    for k, p in (("kh", "ph"), ("kw", "pw")):
        if k in vals and p in vals and vals[p] >= vals[k]:
            raise LayerError(p, f"padding {p}={vals[p]} must be smaller than the kernel {k}={vals[k]}")
    layer = None
    if all(f in vals for f in CORE_FIELDS):
        layer = Layer(**vals)
        vals = {f: getattr(layer, f) for f in sy.LAYER_SYMBOLS}
    elif "c" in vals and "d" in vals:  # check the rest (divisibility, kernel vs input) on a full layer
        Layer(**{"h": vals.get("kh", 1), "w": vals.get("kw", 1), **vals})
    sub = {sy.LAYER_SYMBOLS[f]: sp.Integer(v) for f, v in vals.items()}
    if M is not None:
        if isinstance(M, bool) or int(M) != M or M < 1:
            raise MachineError("M", f"Buffer capacity must be a positive integer number of words, got {M!r}")
        sub[sy.M] = sp.Integer(int(M))
    return sub, layer


def _os_tiles(tiles):
    from bounds.output_stationary import OSTiles
    if isinstance(tiles, OSTiles):
        return tiles
    if isinstance(tiles, dict):
        return OSTiles(tiles["b"], tiles["d"], tiles["th"], tiles["tw"], tiles["c"])
    return OSTiles(*tiles)


def _ws_tiles(tiles):
    from bounds.weight_stationary import WSTiles
    if isinstance(tiles, WSTiles):
        return tiles
    if isinstance(tiles, dict):
        return WSTiles(tiles["d"], tiles["c"])
    D, C = tiles
    for name, v in (("D", D), ("C", C)):
        if isinstance(v, bool) or int(v) != v or v < 1:
            raise TileError("WS", name, f"must be a positive integer, got {v!r}")
    return WSTiles(int(D), int(C))


def _tile_text(d: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in d.items())


def tile_substitutions(sub: dict, layer: Layer | None, os_tiles=None, ws_tiles=None) -> tuple[dict, dict]:
    """(OS, WS) tile symbol -> value, each tile checked against what is known of the layer and M.

    A tile larger than the layer (e.g. C > c/g) raises OSTileError / TileError naming the tile
    size; with a numeric layer and M, a tile whose footprint exceeds M raises TileError
    ("footprint").  With a partial layer only the given sizes are checked (C <= c, D <= d, Bt <= b).
    """
    from bounds.output_stationary import TILE_SYMBOLS, OSTileError, os_footprint
    from bounds.weight_stationary import C_SYM, D_SYM, ws_footprint

    M = int(sub[sy.M]) if sy.M in sub else None
    given = {f: int(sub[s]) for f, s in sy.LAYER_SYMBOLS.items() if s in sub}
    os_sub, ws_sub = {}, {}
    if os_tiles is not None:
        t = _os_tiles(os_tiles)
        if layer is not None:
            t.check(layer)
            if M is not None and (fp := os_footprint(layer, t)) > M:
                raise TileError("OS", "footprint", f"tile Bt={t.Bt}, D={t.D}, Th={t.Th}, Tw={t.Tw}, C={t.C} needs "
                                                   f"{fp:,} words, more than M = {M:,}")
        else:
            for attr, f in (("Bt", "b"), ("D", "d"), ("C", "c")):
                if f in given and getattr(t, attr) > given[f]:
                    raise OSTileError(attr, f"{getattr(t, attr)} exceeds {f}={given[f]} of the layer")
        os_sub = {TILE_SYMBOLS[k]: sp.Integer(v) for k, v in t.as_dict().items()}
    if ws_tiles is not None:
        t = _ws_tiles(ws_tiles)
        if layer is not None:
            try:
                t.check(layer)
            except ValueError as exc:
                msg = str(exc).removeprefix("invalid WS tile: ")
                param, _, rest = msg.partition(": ")
                raise TileError("WS", param, rest) from None
            if M is not None and (fp := ws_footprint(layer, t)) > M:
                raise TileError("WS", "footprint", f"tile D={t.D}, C={t.C} needs {fp:,} words, more than M = {M:,}")
        else:
            for attr, f in (("D", "d"), ("C", "c")):
                if f in given and getattr(t, attr) > given[f]:
                    raise TileError("WS", attr, f"{getattr(t, attr)} exceeds {f}={given[f]} of the layer")
        ws_sub = {D_SYM: sp.Integer(t.D), C_SYM: sp.Integer(t.C)}
    return os_sub, ws_sub


# ----- the continuous optima for a numeric layer ----------------------------------------

def _num(x: float) -> sp.Float:
    """A decimal for printing (6 significant digits)."""
    return sp.Float(x, 6)


def _relaxed_note(value: float, limit: int | None, what: str) -> str:
    base = "real-valued optimum (ceilings dropped)"
    return f"{base}; above {what} = {limit:,}: not a tile of this layer" if limit is not None and value > limit \
        else base


def _largest(lo: int, hi: int, ok) -> int:
    """The largest x in [lo, hi] with ok(x), given ok(lo) and ok monotone (true then false)."""
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def _os_tile_near(layer: Layer, M: int, D: float, Th: float, Tw: float):
    """The OS tile (Bt = C = 1) at the relaxed optimum rounded down, clamped to the layer and shrunk to fit M."""
    from bounds.output_stationary import OSTiles, os_footprint

    def clamp(x, hi):
        return int(min(max(1, math.floor(x)), hi))

    D, Th, Tw = clamp(D, layer.dg), clamp(Th, layer.nh), clamp(Tw, layer.nw)

    def fits(d, th, tw):
        return os_footprint(layer, OSTiles(1, d, th, tw, 1)) <= M

    while not fits(D, Th, Tw):
        if max(Th, Tw) > 1 and max(Th, Tw) >= D:
            if Tw >= Th:
                Tw -= max(1, Tw // 8)
            else:
                Th -= max(1, Th // 8)
        elif D > 1:
            D -= max(1, D // 8)
        elif Tw > 1 or Th > 1:
            Tw, Th = max(1, Tw - max(1, Tw // 8)), max(1, Th - max(1, Th // 8))
        else:
            return None
    D = _largest(D, layer.dg, lambda d: fits(d, Th, Tw))  # room left by the clamps goes to more filters
    return OSTiles(1, D, Th, Tw, 1)


def _ws_tile_near(layer: Layer, M: int, D: float):
    """The WS block at the relaxed optimum: D rounded down and clamped, then the most channels C that fit M."""
    from bounds.weight_stationary import WSTiles, ws_footprint

    D = int(min(max(1, math.floor(D)), layer.dg))
    while ws_footprint(layer, WSTiles(D, 1)) > M:
        if D == 1:
            return None
        D = max(1, D // 2)
    C = _largest(1, layer.cg, lambda c: ws_footprint(layer, WSTiles(D, c)) <= M)
    D = _largest(D, layer.dg, lambda d: ws_footprint(layer, WSTiles(d, C)) <= M)
    return WSTiles(D, C)


def optimum_rows(key: str, layer: Layer, M: int) -> list:
    """The rows of the "os" or "ws" continuous-optimum section for a numeric layer and M.

    Each row is (name, value, note): decimals, flagged when outside the layer, the tile and its exact Q.

    The relaxed optimum drops the ceilings and ignores the layer's limits, so its Q can lie
    below the proven Q_LB (e.g. C* = 92.2 > c = 64).  Printed instead: the relaxed sizes as
    decimals flagged when outside the layer, the tile they round to (clamped to the layer and
    fitted to M), and that tile's exact Q, which no execution beats: Q^* >= Q_LB always.
    """
    from bounds.lower_bound import lower_bound
    from bounds.output_stationary import os_continuous_optimum, os_counts
    from bounds.weight_stationary import ws_continuous_optimum, ws_counts

    sub = {s: sp.Integer(v) for s, v in layer.symbols().items()} | {sy.M: sp.Integer(M)}
    q_lb = lower_bound(layer, Machine(M=M)).Q if M >= 3 else None
    lb_note = f" (Q_LB = {q_lb:,})" if q_lb is not None else ""
    rows = []
    if key == "os":
        oc = os_continuous_optimum()
        rel = {k: float(oc[k].xreplace(sub)) for k in ("D", "T", "Th", "Tw", "D_fit", "T_fit")}
        limits = {"D": (layer.dg, "d/g"), "T": (layer.nh * layer.nw, "n_h n_w"), "Th": (layer.nh, "n_h"),
                  "Tw": (layer.nw, "n_w"), "D_fit": (layer.dg, "d/g"), "T_fit": (layer.nh * layer.nw, "n_h n_w")}
        for k in ("D", "T", "Th", "Tw", "D_fit", "T_fit"):
            lim, what = limits[k]
            rows.append((f"{k}^*" if k in ("D", "T", "Th", "Tw") else k, _num(rel[k]), _relaxed_note(rel[k], lim, what)))
        scale = math.sqrt(rel["T_fit"] / rel["T"]) if rel["T"] > 0 else 1.0
        t = _os_tile_near(layer, M, rel["D_fit"], rel["Th"] * scale, rel["Tw"] * scale)
        if t is None:
            rows.append(("tile^*", "none", f"no OS tile fits in M = {M:,}"))
            return rows
        rows.append(("tile^*", f"Bt={t.Bt}, D={t.D}, Th={t.Th}, Tw={t.Tw}, C={t.C}",
                     "D_fit, T_fit rounded down, clamped to the layer, fitted to M"))
        rows.append(("Q^*", sp.Integer(os_counts(layer, t)[0]), "exact Q of tile^*" + lb_note))
        return rows
    wc = ws_continuous_optimum()
    rel = {k: float(wc[k].xreplace(sub)) for k in ("D", "C")}
    rows.append(("D^*", _num(rel["D"]), _relaxed_note(rel["D"], layer.dg, "d/g")))
    rows.append(("C^*", _num(rel["C"]), _relaxed_note(rel["C"], layer.cg, "c/g")))
    t = _ws_tile_near(layer, M, rel["D"])
    if t is None:
        rows.append(("tile^*", "none", f"no WS block fits in M = {M:,}"))
    else:
        rows.append(("tile^*", f"D={t.D}, C={t.C}", "D^* rounded down and clamped, then the most channels that fit M"))
        rows.append(("Q^*", sp.Integer(ws_counts(layer, t)[0]), "exact Q of tile^*" + lb_note))
    all_fit = bool(wc["all_fit"].xreplace(sub))
    rows.append(("all_fit", sp.true if all_fit else sp.false, "every weight of a group fits with its window"))
    if all_fit:
        rows.append(("Q_all_fit", sp.Integer(int(wc["Q_all_fit"].xreplace(sub))),
                     "the compulsory traffic, the exact WS Q with D = d/g, C = c/g"))
    return rows


# ----- the result ---------------------------------------------------------------------

@dataclass(frozen=True)
class ClosedForms:
    """The closed forms with the given values substituted, section by section.

    ``sections``: ((title, ((name, expression, note), ...)), ...) where ``name`` is a sympy
    Symbol, an applied undefined function (a helper such as r_h(t)) or a string (a main
    formula such as Q_OS); ``note`` says what the quantity is.  ``given`` maps the printed
    names of the substituted symbols (and "OS D", "WS C", ... for tiles) to their values.
    ``text()``, ``latex()`` and ``to_json()`` are what ``derive`` prints.
    """

    given: dict
    given_text: str
    sections: tuple
    full: bool = False

    def header(self) -> list[str]:
        if self.full:
            return [f"closed forms, fully expanded; substituted: {self.given_text}",
                    "F = b d nh nw (c/g) kh kw, nh = floor((h + 2 ph - kh)/sh) + 1; every execution has A = Q + 3F"]
        return [f"closed forms; substituted: {self.given_text}",
                "named quantities are defined once, then used; the full forms (--full, full=True) expand them"]

    def text(self) -> str:
        """Plain text: "name = expression    # note" lines under "== title ==" headings."""
        out = [f"# {h}" for h in self.header()] + [""]
        for title, rows in self.sections:
            out.append(f"== {title} ==")
            for head, e, note in rows:
                line = f"{_name_text(head)} = {sp.sstr(e)}"
                out.append(f"{line}    # {note}" if note else line)
            out.append("")
        return "\n".join(out)

    def latex(self) -> str:
        """LaTeX: one align* block per section, titles as % comments."""
        names = _latex_names()
        out = [f"% {h}" for h in self.header()[:1]]
        for title, rows in self.sections:
            out += [f"% == {title} ==", r"\begin{align*}"]
            for j, (head, e, _) in enumerate(rows):
                end = r" \\" if j < len(rows) - 1 else ""
                out.append(f"{_name_latex(head, names)} &= {_latex_value(e, names)}{end}")
            out += [r"\end{align*}", ""]
        return "\n".join(out)

    def to_json(self) -> dict:
        """{"substituted": given, "sections": {title: {name: expression as text}}}."""
        return {"substituted": dict(self.given),
                "sections": {title: {_name_text(h): sp.sstr(e) for h, e, _ in rows} for title, rows in self.sections}}

    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:
        n = sum(len(rows) for _, rows in self.sections)
        return f"ClosedForms({len(self.sections)} sections, {n} formulas; substituted: {self.given_text})"

    def _repr_markdown_(self) -> str:
        names = _latex_names()
        out = [f"*{self.header()[0]}*", ""]
        for title, rows in self.sections:
            body = r" \\ ".join(f"{_name_latex(h, names)} &= {_latex_value(e, names)}" for h, e, _ in rows)
            out += [f"**{title}**", "", f"$$\\begin{{aligned}}{body}\\end{{aligned}}$$", ""]
        return "\n".join(out)


def _latex_value(e, names) -> str:
    if isinstance(e, str):
        return r"\text{" + e.replace("_", r"\_") + "}"
    return sp.latex(e, symbol_names=names)


def _given(sub: dict, os_sub: dict, ws_sub: dict) -> tuple[dict, str]:
    given = {str(k): int(v) for k, v in sub.items()}
    given.update({f"OS {k}": int(v) for k, v in os_sub.items()})
    given.update({f"WS {k}": int(v) for k, v in ws_sub.items()})
    text = ", ".join(f"{k} = {v}" for k, v in sub.items()) or "nothing (all symbolic)"
    if os_sub:
        text += "; OS tile " + ", ".join(f"{k} = {v}" for k, v in os_sub.items())
    if ws_sub:
        text += "; WS tile " + ", ".join(f"{k} = {v}" for k, v in ws_sub.items())
    return given, text


#: Title prefixes of the continuous-optimum sections (replaced by numbers for a numeric layer and M).
_OPTIMUM_SECTIONS = {"Output-stationary continuous optimum": "os", "Weight-stationary continuous optimum": "ws"}


def _optimum_key(title: str) -> str | None:
    return next((k for prefix, k in _OPTIMUM_SECTIONS.items() if title.startswith(prefix)), None)


def closed_forms(values: dict | Layer | None = None, M: int | None = None, os_tiles=None, ws_tiles=None,
                 *, full: bool = False) -> ClosedForms:
    """The closed forms of the lower bound and both dataflows with the given values substituted.

    ``values``: a Layer, or a dict of some Layer fields (the others stay symbolic; when c, d,
    h, w, kh, kw are all given the rest take Layer's defaults and every number is printed);
    ``M``: the Buffer in words (symbolic when None); ``os_tiles`` (OSTiles, (Bt, D, Th, Tw, C)
    or a Cost's tiles dict) and ``ws_tiles`` (WSTiles or (D, C)) are substituted into their
    dataflow's section, after checking them against the layer and M (TileError / OSTileError).
    For a numeric layer and M the continuous optima are decimals, flagged when outside the
    layer, with the tile they round to and its exact Q (never below Q_LB).
    ``full`` expands every named quantity (long).
    """
    if isinstance(values, Layer):
        values = {f: getattr(values, f) for f in sy.LAYER_SYMBOLS}
    sub, layer = layer_substitution(values, M)
    os_sub, ws_sub = tile_substitutions(sub, layer, os_tiles, ws_tiles)
    numeric = layer is not None and M is not None
    if full:
        sections = _full_sections(sub, os_sub, ws_sub, layer)
    else:
        sections = [(title, [(h, e, _describe(h)) for h, e in rows]) for title, rows in derive_named(sub, os_sub, ws_sub)]
    if numeric:
        sections = [(title, optimum_rows(_optimum_key(title), layer, int(M))
                     if _optimum_key(title) else rows) for title, rows in sections]
    given, text = _given(sub, os_sub, ws_sub)
    return ClosedForms(given=given, given_text=text, sections=tuple((t, tuple(r)) for t, r in sections), full=full)


def _full_sections(sub: dict, os_sub: dict, ws_sub: dict, layer: Layer | None) -> list:
    """The fully expanded closed forms (every named quantity substituted), as sections."""
    from bounds.lower_bound import S_FACTORS, lb_expressions
    from bounds.output_stationary import os_continuous_optimum, os_expressions
    from bounds.weight_stationary import ws_continuous_optimum, ws_expressions

    def rows(items, s):
        return [(name, e.xreplace(s) if isinstance(e, sp.Basic) else e, "") for name, e in items]

    lb = lb_expressions()
    T, S = sp.symbols("T S", positive=True)
    Sset = ", ".join((f"{n}M" if n > 1 else "M") + (f"/{d}" if d > 1 else "") for n, d in S_FACTORS)
    out = [("Lower bound, any execution order (docs/theory.md)", rows([
        ("X_used", lb["X_used"]), ("F_real", lb["F_real"]), ("q", lb["q"]), ("lam", lb["lam"]),
        ("phi(T)", lb["phi"](T)), ("Q_comp", lb["Q_comp"]),
        (f"Q_cap(S), S in {{{Sset}}}", lb["Q_cap_S"](S)),
        ("Q", sp.Symbol("Max(Q_comp, Q_cap(S) over S)")),
        ("A", sp.Symbol("Q") + 3 * sy.F), ("E", sy.energy(sp.Symbol("Q"), sp.Symbol("A"), sy.F)),
        ("F", sy.F)], sub))]
    if layer is not None and sy.M in sub:
        out.append(("Lower bound, numbers", rows([("Q", lb["Q"]), ("A", lb["A"])], sub)))
    o, oc = os_expressions(), os_continuous_optimum()
    out.append(("Output-stationary tiling (docs/dataflow_os.md), tiles " +
                ", ".join(str(s) for s in o["tile_symbols"].values()), rows([
                    ("Q", o["Q"]), ("A", o["A"]), ("F", o["F"]), ("E", sy.energy(o["Q"], o["A"], o["F"])),
                    ("footprint", o["footprint"])], {**sub, **os_sub})))
    out.append(("Output-stationary continuous optimum", rows([(k, v) for k, v in oc.items() if k != "short"], sub)))
    w, wc = ws_expressions(), ws_continuous_optimum()
    out.append(("Weight-stationary blocking (docs/dataflow_ws.md), tiles " +
                ", ".join(str(s) for s in w["tile_symbols"]), rows([
                    ("Q", w["Q"]), ("A", w["A"]), ("F", w["F"]), ("E", sy.energy(w["Q"], w["A"], w["F"])),
                    ("footprint", w["footprint"])], {**sub, **ws_sub})))
    out.append(("Weight-stationary continuous optimum", rows([(k, v) for k, v in wc.items() if k != "short"], sub)))
    return out
