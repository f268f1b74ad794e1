"""``energy-complexity derive``: the closed forms of the lower bound and both dataflows.

Every layer flag (and --M) that is given is substituted; the others stay symbolic.
Prints Q, A, E, the footprint and the continuous optimum of OS and WS, and the parts of
the lower bound, as plain text or LaTeX (--latex).  Proofs: docs/theory.md,
docs/dataflow_os.md, docs/dataflow_ws.md.
"""

from __future__ import annotations

import argparse

import sympy as sp

from bounds import symbols as sy
from complexity.layer import Layer, LayerError
from complexity.machine import MachineError
from energy_complexity.layer_args import add_layer_arguments, layer_values

NAME = "derive"
HELP = "print the closed forms of the lower bound and of the OS / WS dataflows"
DESCRIPTION = ("Closed forms (sympy) of the energy lower bound and of the output-stationary and "
               "weight-stationary dataflows: Q, A, E, footprint and continuous optimum. Layer flags "
               "that are given are substituted; omitted ones stay symbolic.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_layer_arguments(parser, sources=False)
    g = parser.add_argument_group("machine and output")
    g.add_argument("--M", type=int, help="Buffer capacity in words (symbolic when omitted)")
    g.add_argument("--latex", action="store_true", help="print LaTeX instead of plain text")


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


def _show(expr, sub, latex: bool) -> str:
    e = expr.xreplace(sub) if isinstance(expr, sp.Basic) else expr
    return sp.latex(e) if latex else sp.sstr(e)


def _section(title: str, items: list, sub: dict, latex: bool) -> None:
    print(f"== {title} ==")
    for name, expr in items:
        text = _show(expr, sub, latex)
        print(f"{name} = {text}" if not latex else f"{name} &= {text} \\\\")
    print()


def run(args: argparse.Namespace) -> int:
    from bounds.lower_bound import S_FACTORS, lb_expressions
    from bounds.output_stationary import os_continuous_optimum, os_expressions
    from bounds.weight_stationary import ws_continuous_optimum, ws_expressions

    sub = _substitution(args)
    latex = args.latex
    given = ", ".join(f"{k} = {v}" for k, v in sub.items()) or "nothing (all symbolic)"
    print(f"# closed forms; substituted: {given}")
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
    _section("Output-stationary tiling (docs/dataflow_os.md), tiles " +
             ", ".join(str(s) for s in o["tile_symbols"].values()), [
        ("Q", o["Q"]), ("A", o["A"]), ("F", o["F"]), ("E", sy.energy(o["Q"], o["A"], o["F"])),
        ("footprint", o["footprint"])], sub, latex)
    _section("Output-stationary continuous optimum", [(k, v) for k, v in oc.items()], sub, latex)
    w, wc = ws_expressions(), ws_continuous_optimum()
    _section("Weight-stationary blocking (docs/dataflow_ws.md), tiles " +
             ", ".join(str(s) for s in w["tile_symbols"]), [
        ("Q", w["Q"]), ("A", w["A"]), ("F", w["F"]), ("E", sy.energy(w["Q"], w["A"], w["F"])),
        ("footprint", w["footprint"])], sub, latex)
    _section("Weight-stationary continuous optimum", [(k, v) for k, v in wc.items()], sub, latex)
    return 0
