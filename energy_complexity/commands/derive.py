"""``energy-complexity derive``: the closed forms of the lower bound and both dataflows.

Every layer flag (and --M, --tiles-os, --tiles-ws) that is given is substituted; the others
stay symbolic.  The output is structured: named intermediate quantities (n_h, u_h, R_h, ...)
are printed once each, then each bound in terms of them.  These are the readable forms of
bounds/lower_bound.py, bounds/output_stationary.py and bounds/weight_stationary.py
(``*_named_forms``), built by the same code as the expressions the numeric code is tested
against, so substituting the definitions gives the full forms exactly (tests/test_derive.py).
--full prints the fully expanded forms instead; --latex prints LaTeX (align* blocks);
--json prints {section: {name: expression}}.  Proofs: docs/theory.md, docs/dataflow_os.md,
docs/dataflow_ws.md.
"""

from __future__ import annotations

import argparse
import json
from functools import lru_cache

import sympy as sp
from sympy.core.function import AppliedUndef

from bounds import symbols as sy
from complexity.layer import Layer, LayerError
from complexity.machine import MachineError
from energy_complexity.errors import CLIError
from energy_complexity.layer_args import add_layer_arguments, layer_values

NAME = "derive"
HELP = "print the closed forms of the lower bound and of the OS / WS dataflows"
DESCRIPTION = ("Closed forms (sympy) of the energy lower bound and of the output-stationary and "
               "weight-stationary dataflows: named intermediate quantities, then Q, footprint and "
               "continuous optimum in terms of them. Layer flags, --M and tiles that are given are "
               "substituted; omitted ones stay symbolic.")

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
    "k": "phases of S loads+stores needed", "Q_comp": "compulsory traffic",
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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_layer_arguments(parser, sources=False)
    g = parser.add_argument_group("machine, tiles and output")
    g.add_argument("--M", type=int, help="Buffer capacity in words (symbolic when omitted)")
    g.add_argument("--tiles-os", metavar="Bt,D,Th,Tw,C",
                   help="substitute this output-stationary tile (5 integers)")
    g.add_argument("--tiles-ws", metavar="D,C", help="substitute this weight-stationary block (2 integers)")
    g.add_argument("--latex", action="store_true", help="print LaTeX (one align* block per section)")
    g.add_argument("--json", action="store_true", help="print JSON: {section: {name: expression}}")
    g.add_argument("--full", action="store_true",
                   help="print the fully expanded forms (long; slow) instead of the named ones")


# ----- substitution ------------------------------------------------------------------

def _substitution(args) -> dict:
    """Symbol -> value for the given flags, validated like a Layer (errors name the parameter)."""
    vals = layer_values(args)
    for f, v in vals.items():
        lo = 0 if f in ("ph", "pw") else 1
        if v < lo:
            raise LayerError(f, f"must be a {'non-negative' if lo == 0 else 'positive'} integer, got {v}")
    for k, p in (("kh", "ph"), ("kw", "pw")):
        if k in vals and p in vals and vals[p] >= vals[k]:
            raise LayerError(p, f"padding {p}={vals[p]} must be smaller than the kernel {k}={vals[k]}")
    if "c" in vals and "d" in vals:  # check the rest (divisibility, kernel vs input) on a full layer
        Layer(**{"h": vals.get("kh", 1), "w": vals.get("kw", 1), **vals})
    sub = {sy.LAYER_SYMBOLS[f]: sp.Integer(v) for f, v in vals.items()}
    if args.M is not None:
        if args.M < 1:
            raise MachineError("M", f"Buffer capacity must be a positive integer number of words, got {args.M}")
        sub[sy.M] = sp.Integer(args.M)
    return sub


def _full_layer(sub: dict) -> Layer | None:
    """The Layer when every layer parameter is given, else None."""
    if not all(s in sub for s in sy.LAYER_SYMBOLS.values()):
        return None
    return Layer(**{f: int(sub[s]) for f, s in sy.LAYER_SYMBOLS.items()})


def _parse_tiles(text: str | None, flag: str, names: tuple) -> list[int] | None:
    if text is None:
        return None
    try:
        vals = [int(v) for v in text.split(",")]
    except ValueError:
        vals = []
    if len(vals) != len(names) or min(vals) < 1:
        raise CLIError(f"{flag}: expected {len(names)} positive integers {','.join(names)}, got {text!r}")
    return vals


def _tile_substitutions(args, layer: Layer | None) -> tuple[dict, dict]:
    """(OS, WS) tile symbol -> value for --tiles-os / --tiles-ws, checked against a full layer."""
    from bounds.output_stationary import TILE_SYMBOLS, OSTiles, OSTileError
    from bounds.weight_stationary import C_SYM, D_SYM, WSTiles

    os_sub, ws_sub = {}, {}
    t = _parse_tiles(args.tiles_os, "--tiles-os", ("Bt", "D", "Th", "Tw", "C"))
    if t is not None:
        tiles = OSTiles(*t)
        if layer is not None:
            try:
                tiles.check(layer)
            except OSTileError as exc:
                raise CLIError(f"--tiles-os: {exc}") from None
        os_sub = {TILE_SYMBOLS[k]: sp.Integer(v) for k, v in tiles.as_dict().items()}
    t = _parse_tiles(args.tiles_ws, "--tiles-ws", ("D", "C"))
    if t is not None:
        if layer is not None:
            try:
                WSTiles(*t).check(layer)
            except ValueError as exc:
                raise CLIError(f"--tiles-ws: {exc}") from None
        ws_sub = {D_SYM: sp.Integer(t[0]), C_SYM: sp.Integer(t[1])}
    return os_sub, ws_sub


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


def _print_text(given: str, parts: list) -> None:
    print(f"# closed forms; substituted: {given}")
    print("# named quantities are defined once, then used; --full prints everything expanded")
    print()
    for title, rows in parts:
        print(f"== {title} ==")
        for head, e in rows:
            text = f"{_name_text(head)} = {sp.sstr(e)}"
            desc = _describe(head)
            print(f"{text}    # {desc}" if desc else text)
        print()


def _print_latex(given: str, parts: list) -> None:
    names = _latex_names()
    print(f"% closed forms; substituted: {given}")
    for title, rows in parts:
        print(f"% == {title} ==")
        print(r"\begin{align*}")
        for j, (head, e) in enumerate(rows):
            end = r" \\" if j < len(rows) - 1 else ""
            print(f"{_name_latex(head, names)} &= {sp.latex(e, symbol_names=names)}{end}")
        print(r"\end{align*}")
        print()


def _print_json(given: dict, parts: list) -> None:
    doc = {"substituted": given, "sections": {title: {_name_text(h): sp.sstr(e) for h, e in rows}
                                              for title, rows in parts}}
    print(json.dumps(doc, indent=2))


def run(args: argparse.Namespace) -> int:
    sub = _substitution(args)
    os_sub, ws_sub = _tile_substitutions(args, _full_layer(sub))
    if args.full:
        return _run_full(args, sub, os_sub, ws_sub)
    parts = derive_named(sub, os_sub, ws_sub)
    given = {str(k): int(v) for k, v in sub.items()}
    if args.json:
        given.update({f"OS {k}": int(v) for k, v in os_sub.items()})
        given.update({f"WS {k}": int(v) for k, v in ws_sub.items()})
        _print_json(given, parts)
        return 0
    text = _given_text(sub, os_sub, ws_sub)
    (_print_latex if args.latex else _print_text)(text, parts)
    return 0


def _given_text(sub, os_sub, ws_sub) -> str:
    text = ", ".join(f"{k} = {v}" for k, v in sub.items()) or "nothing (all symbolic)"
    if os_sub:
        text += "; OS tile " + ", ".join(f"{k} = {v}" for k, v in os_sub.items())
    if ws_sub:
        text += "; WS tile " + ", ".join(f"{k} = {v}" for k, v in ws_sub.items())
    return text


# ----- --full: everything expanded -----------------------------------------------------

def _show(expr, sub, latex: bool) -> str:
    e = expr.xreplace(sub) if isinstance(expr, sp.Basic) else expr
    return sp.latex(e) if latex else sp.sstr(e)


def _section(title: str, items: list, sub: dict, latex: bool) -> None:
    print(f"== {title} ==")
    for name, expr in items:
        text = _show(expr, sub, latex)
        print(f"{name} = {text}" if not latex else f"{name} &= {text} \\\\")
    print()


def _run_full(args, sub: dict, os_sub: dict, ws_sub: dict) -> int:
    """The fully expanded closed forms (every named quantity substituted)."""
    from bounds.lower_bound import S_FACTORS, lb_expressions
    from bounds.output_stationary import os_continuous_optimum, os_expressions
    from bounds.weight_stationary import ws_continuous_optimum, ws_expressions

    latex = args.latex
    print(f"# closed forms, fully expanded; substituted: {_given_text(sub, os_sub, ws_sub)}")
    print("# F = b d nh nw (c/g) kh kw, nh = floor((h + 2 ph - kh)/sh) + 1; every execution has A = Q + 3F")
    print()
    lb = lb_expressions()
    T, S = sp.symbols("T S", positive=True)
    Sset = ", ".join((f"{n}M" if n > 1 else "M") + (f"/{d}" if d > 1 else "") for n, d in S_FACTORS)
    _section("Lower bound, any execution order (docs/theory.md)", [
        ("X_used", lb["X_used"]), ("F_real", lb["F_real"]), ("q", lb["q"]), ("lam", lb["lam"]),
        ("phi(T)", lb["phi"](T)),
        ("Q_comp", lb["Q_comp"]),
        (f"Q_cap(S), S in {{{Sset}}}", lb["Q_cap_S"](S)),
        ("Q", sp.Symbol("Max(Q_comp, Q_cap(S) over S)")),
        ("A", sp.Symbol("Q") + 3 * sy.F), ("E", sy.energy(sp.Symbol("Q"), sp.Symbol("A"), sy.F)),
        ("F", sy.F)], sub, latex)
    if len(sub) == 13:  # everything given: the numbers too
        _section("Lower bound, numbers", [("Q", lb["Q"]), ("A", lb["A"])], sub, latex)
    o, oc = os_expressions(), os_continuous_optimum()
    osub = {**sub, **os_sub}
    _section("Output-stationary tiling (docs/dataflow_os.md), tiles " +
             ", ".join(str(s) for s in o["tile_symbols"].values()), [
        ("Q", o["Q"]), ("A", o["A"]), ("F", o["F"]), ("E", sy.energy(o["Q"], o["A"], o["F"])),
        ("footprint", o["footprint"])], osub, latex)
    _section("Output-stationary continuous optimum", [(k, v) for k, v in oc.items() if k != "short"], sub, latex)
    w, wc = ws_expressions(), ws_continuous_optimum()
    wsub = {**sub, **ws_sub}
    _section("Weight-stationary blocking (docs/dataflow_ws.md), tiles " +
             ", ".join(str(s) for s in w["tile_symbols"]), [
        ("Q", w["Q"]), ("A", w["A"]), ("F", w["F"]), ("E", sy.energy(w["Q"], w["A"], w["F"])),
        ("footprint", w["footprint"])], wsub, latex)
    _section("Weight-stationary continuous optimum", [(k, v) for k, v in wc.items() if k != "short"], sub, latex)
    return 0
