"""Readable closed forms: the named forms equal the full ones, and `derive` prints them.

The short forms of each bound ("defs" + "short") are built by the same code as the full
expressions; here substituting the definitions back must give the same numbers as the
full expressions and the numeric code on random layers and tiles.
"""

from __future__ import annotations

import json
import random
import re

import sympy as sp

from bounds import symbols as S
from bounds.lower_bound import lb_expressions, lb_named_forms, lower_bound
from bounds.named_forms import expand
from bounds.output_stationary import (TILE_SYMBOLS, OSTiles, os_continuous_optimum, os_counts, os_expressions,
                                      os_footprint, os_named_forms, os_parts)
from bounds.weight_stationary import (C_SYM, D_SYM, WSTiles, ws_continuous_optimum, ws_counts, ws_expressions,
                                      ws_footprint, ws_named_forms, ws_parts)
from complexity.layer import Layer, LayerError
from complexity.machine import Machine
from energy_complexity.cli import main
from energy_complexity.commands.derive import named_sections


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def random_layer(rng, big=False):
    while True:
        kh, kw = rng.randint(1, 5), rng.randint(1, 5)
        g = rng.choice([1, 1, 2, 3])
        n = 40 if big else 9
        try:
            return Layer(b=rng.randint(1, 3), c=g * rng.randint(1, 4), d=g * rng.randint(1, 4),
                         h=rng.randint(kh, n), w=rng.randint(kw, n), kh=kh, kw=kw, sh=rng.randint(1, 4),
                         sw=rng.randint(1, 4), ph=rng.randint(0, kh - 1), pw=rng.randint(0, kw - 1), groups=g)
        except LayerError:
            continue


def layer_sub(L: Layer, M: int | None = None) -> dict:
    sub = {S.LAYER_SYMBOLS[f]: sp.Integer(getattr(L, f)) for f in S.LAYER_SYMBOLS}
    if M is not None:
        sub[S.M] = sp.Integer(M)
    return sub


# ----- one source of truth: short forms with the defs substituted == full forms ----------

def test_lower_bound_short_forms_expand_to_the_full_forms():
    named, full = lb_named_forms(), lb_expressions()
    rng = random.Random(11)
    for i in range(8):
        L = random_layer(rng, big=i % 2 == 0)
        M = rng.choice([3, 64, 1024, 65536])
        sub = layer_sub(L, M)
        cost = lower_bound(L, Machine(M=M))
        for key in ("Q_comp", "Q_cap", "Q"):
            v = expand(named["short"][key], named["defs"], sub)
            assert v == full[key].xreplace(sub), (key, L, M)
        assert expand(named["short"]["Q"], named["defs"], sub) == cost.Q
        assert expand(named["short"]["A"], named["defs"], sub) == cost.A


def test_os_short_forms_expand_to_the_full_forms_and_the_counts():
    named, full = os_named_forms(), os_expressions()
    rng = random.Random(12)
    for i in range(25):
        L = random_layer(rng, big=i % 3 == 0)
        t = OSTiles(rng.randint(1, L.b), rng.randint(1, L.dg), rng.randint(1, L.nh), rng.randint(1, L.nw),
                    rng.randint(1, L.cg))
        sub = layer_sub(L)
        sub.update({TILE_SYMBOLS[k]: sp.Integer(v) for k, v in t.as_dict().items()})
        parts = os_parts(L, t)
        for key in ("Q", "A", "F", "footprint", "loads_X", "loads_W", "stores", "rows_loaded"):
            v = expand(named["short"][key], named["defs"], sub)
            assert v == parts[key] == full[key].xreplace(sub), (key, L, t)


def test_ws_short_forms_expand_to_the_full_forms_and_the_counts():
    named, full = ws_named_forms(), ws_expressions()
    rng = random.Random(13)
    for _ in range(40):
        L = random_layer(rng)
        t = WSTiles(rng.randint(1, L.dg), rng.randint(1, L.cg))
        sub = {**layer_sub(L), D_SYM: sp.Integer(t.D), C_SYM: sp.Integer(t.C)}
        f = ws_parts(L, t)
        for key in ("Q", "A", "F", "footprint", "loads", "stores", "window_rows", "X_used"):
            v = expand(named["short"][key], named["defs"], sub)
            assert v == f[key] == full[key].xreplace(sub), (key, L, t)


def test_continuous_optima_short_forms_equal_the_full_ones():
    L = Layer.conv(64, 128, 28, 3, stride=1, pad=1, b=2)
    sub = layer_sub(L, 16384)
    for opt, named in ((os_continuous_optimum(), os_named_forms()), (ws_continuous_optimum(), ws_named_forms())):
        for key in ("D", "C", "Q"):
            full = sp.N(opt[key].xreplace(sub), 30)
            short = sp.N(expand(opt["short"][key], named["defs"], sub), 30)
            assert abs(full - short) <= sp.Float(1e-20, 30) * abs(full), key


def test_shared_names_have_equal_definitions_in_every_module():
    """n_h, u_h, z_h, Y, ... are defined by several modules; derive prints the first: they must agree."""
    modules = [lb_named_forms()["defs"], os_named_forms()["defs"], ws_named_forms()["defs"]]
    shared = {}
    for defs in modules:
        for head in defs:
            if isinstance(head, sp.Symbol):
                shared.setdefault(head, []).append(defs)
    shared = {h: ds for h, ds in shared.items() if len(ds) > 1}
    assert {str(h) for h in shared} >= {"n_h", "n_w", "u_w", "z_h", "c_g", "d_g", "Y", "W", "F", "X_used"}
    rng = random.Random(14)
    for _ in range(30):
        sub = layer_sub(random_layer(rng))
        for head, ds in shared.items():
            vals = {expand(head, d, sub) for d in ds}
            assert len(vals) == 1, (head, vals, sub)


# ----- the derive command ---------------------------------------------------------------

def test_derive_prints_named_definitions_once_then_the_bounds(capsys):
    code, out, _ = run(capsys, "derive", "--k", "3", "--stride", "1")
    assert code == 0
    lines = [ln.split("    #")[0] for ln in out.splitlines() if ln and not ln.startswith(("#", "=="))]
    for expected in ("n_h = h + 2*p_h - 2", "u_h = h", "N_h = ceiling(n_h/T_h)", "Q_comp = W + X_used + Y",
                     "Q_OS = N_h*N_w*W*ceiling(b/B_t) + R_h*R_w*b*c*ceiling(d_g/D) + Y",
                     "Q_WS = W + X_used*ceiling(d_g/D) + Y*(2*ceiling(c_g/C) - 1)",
                     "Q_LB = Max(Q_cap, Q_comp)"):
        assert expected in lines, expected
    for prefix in ("R_h = ", "R^F_h = ", "r_h(t) = ", "footprint_OS = B_t*Max(", "lambda = ", "phi(T) = ",
                   "k(S) = ", "Q_cap = ", "R^win_h = ", "footprint_WS = "):
        assert any(ln.startswith(prefix) for ln in lines), prefix
    names = [ln.split(" = ")[0] for ln in lines]
    per_section = out.split("\n== ")
    for sec in per_section:  # a name is printed at most once per section, definitions once overall
        sec_names = [ln.split(" = ")[0] for ln in sec.splitlines()[1:] if " = " in ln]
        assert len(sec_names) == len(set(sec_names)), sec_names
    defs = [n for n in names if not n.endswith("^*") and n not in ("Q_OS", "A_OS", "Q_WS", "A_WS", "footprint_OS",
                                                                     "footprint_WS", "Q_LB", "A_LB")]
    assert len(defs) == len(set(defs))
    assert max(len(ln) for ln in lines) < 400  # readable: nothing like the expanded forms
    assert len(out) < 12000


def test_derive_latex_is_an_align_list_of_known_symbols(capsys):
    code, out, _ = run(capsys, "derive", "--k", "3", "--latex")
    assert code == 0
    defs, sections = named_sections()
    from energy_complexity.commands.derive import _LATEX_NAMES, _latex_names
    names = _latex_names()
    known = {sp.latex(h, symbol_names=names) for h in defs}
    known |= {_LATEX_NAMES.get(n, sp.latex(sp.Symbol(n))) for _, _, mains in sections for n, _ in mains}
    inside, blocks = False, 0
    for ln in out.splitlines():
        if ln == r"\begin{align*}":
            inside, blocks = True, blocks + 1
            continue
        if ln == r"\end{align*}":
            inside = False
            continue
        if not inside:
            assert ln == "" or ln.startswith("%"), ln
            continue
        lhs, _, rhs = ln.partition(" &= ")
        assert rhs and lhs in known, ln
        depth = 0
        for ch in ln.replace(r"\{", "").replace(r"\}", ""):
            depth += {"{": 1, "}": -1}.get(ch, 0)
            assert depth >= 0, ln
        assert depth == 0, ln
        assert ln.count(r"\left") == ln.count(r"\right"), ln
    assert blocks == len(sections) and not inside


def test_derive_numeric_layer_prints_the_numbers_of_bounds(capsys):
    """A fully given layer with the tiles `bounds` chose: every def is a number, Q as in `bounds`."""
    flags = ["--b", "2", "--c", "32", "--d", "48", "--h", "30", "--w", "20", "--kh", "3", "--kw", "5",
             "--stride", "2", "--pad", "1", "--groups", "4", "--M", "4096"]
    code, out, _ = run(capsys, "bounds", *flags, "--json")
    assert code == 0
    j = json.loads(out)
    to, tw = j["os"]["tiles"], j["ws"]["tiles"]
    os_t = ",".join(str(to[k]) for k in ("b", "d", "th", "tw", "c"))
    code, out, _ = run(capsys, "derive", *flags, "--tiles-os", os_t, "--tiles-ws", f"{tw['d']},{tw['c']}")
    assert code == 0
    L = Layer(b=2, c=32, d=48, h=30, w=20, kh=3, kw=5, sh=2, sw=2, ph=1, pw=1, groups=4)
    vals = {}
    for ln in out.splitlines():
        if " = " in ln and not ln.startswith("#"):
            name, _, rhs = ln.split("    #")[0].partition(" = ")
            vals[name] = rhs
    section = out.split("== Output-stationary continuous")[0]
    for ln in section.splitlines():  # every def and bound of the layer, LB, OS and WS sections is a number
        if " = " in ln and not ln.startswith(("#", "==", "phi(", "k(")):
            assert re.fullmatch(r"-?\d+(/\d+)?", ln.split("    #")[0].partition(" = ")[2]), ln
    ot = OSTiles(to["b"], to["d"], to["th"], to["tw"], to["c"])
    wt = WSTiles(tw["d"], tw["c"])
    assert int(vals["Q_LB"]) == j["lower_bound"]["Q"] == lower_bound(L, Machine(M=4096)).Q
    assert int(vals["Q_OS"]) == j["os"]["Q"] == os_counts(L, ot)[0]
    assert int(vals["Q_WS"]) == j["ws"]["Q"] == ws_counts(L, wt)[0]
    assert int(vals["A_OS"]) == j["os"]["A"] and int(vals["A_WS"]) == j["ws"]["A"]
    assert int(vals["footprint_OS"]) == os_footprint(L, ot) and int(vals["footprint_WS"]) == ws_footprint(L, wt)
    assert int(vals["n_h"]) == L.nh and int(vals["X_used"]) == L.X_used and int(vals["F_real"]) == L.F_real


def test_derive_json_and_bad_tiles(capsys):
    code, out, _ = run(capsys, "derive", "--k", "3", "--stride", "1", "--pad", "1", "--json")
    assert code == 0
    j = json.loads(out)
    assert j["substituted"] == {"k_h": 3, "k_w": 3, "s_h": 1, "s_w": 1, "p_h": 1, "p_w": 1}
    flat = {k: v for sec in j["sections"].values() for k, v in sec.items()}
    assert flat["n_h"] == "h" and flat["u_h"] == "h"  # k = 3, s = 1, p = 1: same size
    assert "Q_OS" in flat and "footprint_WS" in flat and "Q_LB" in flat
    code, out, err = run(capsys, "derive", "--tiles-os", "1,2,3")
    assert code == 2 and out == "" and "--tiles-os" in err
    code, out, err = run(capsys, "derive", "--b", "1", "--c", "4", "--d", "4", "--hw", "5", "--k", "3", "--stride", "1",
                         "--pad", "0", "--groups", "1", "--tiles-ws", "5,1")
    assert code == 2 and "--tiles-ws" in err and "D" in err


# ----- numeric layers: defaults, decimals, clamped optima, impossible tiles ------------------------

ISSUE_FLAGS = ["--c", "64", "--d", "64", "--hw", "56", "--k", "3", "--pad", "1", "--M", "65536"]


def _rows(out: str) -> dict:
    """section title -> {name: (value text, note)} of derive's text output."""
    secs = {}
    for block in out.split("\n== ")[1:]:
        title, *lines = block.splitlines()
        rows = {}
        for ln in lines:
            if " = " in ln:
                lhs, _, rhs = ln.partition(" = ")
                val, _, note = rhs.partition("    # ")
                rows[lhs] = (val, note)
        secs[title.rstrip(" =")] = rows
    return secs


def test_derive_with_every_layer_value_applies_the_defaults_and_prints_numbers(capsys):
    code, out, _ = run(capsys, "derive", *ISSUE_FLAGS, "--json")
    assert code == 0
    j = json.loads(out)
    assert {k: j["substituted"][k] for k in ("b", "s_h", "s_w", "g", "p_h", "M")} == \
        {"b": 1, "s_h": 1, "s_w": 1, "g": 1, "p_h": 1, "M": 65536}
    code, out, _ = run(capsys, "derive", *ISSUE_FLAGS)
    assert code == 0
    L = Layer.conv(64, 64, 56, 3, pad=1)
    secs = _rows(out)
    for title, rows in secs.items():
        for name, (val, _) in rows.items():
            if "continuous optimum" in title:
                assert "sqrt" not in val and "/" not in val, (name, val)  # decimals, never surds
            elif title.startswith(("Layer", "Lower bound")) and not name.startswith(("phi(", "k(")):
                assert re.fullmatch(r"-?\d+(/\d+)?", val), (title, name, val)
            # no layer symbol or M is left anywhere (the tiling sections keep only the tile symbols)
            idents = set(re.findall(r"[A-Za-z_][A-Za-z_0-9^]*", val))
            assert not idents & {"b", "c", "d", "h", "w", "k_h", "k_w", "s_h", "s_w", "p_h", "p_w", "g", "M"}, \
                (title, name, val)
    flat = {k: v for rows in secs.values() for k, v in rows.items()}
    assert int(flat["Q_LB"][0]) == lower_bound(L, Machine(M=65536)).Q == 438272


def test_printed_continuous_optima_are_clamped_and_never_below_the_lower_bound(capsys):
    code, out, _ = run(capsys, "derive", *ISSUE_FLAGS)
    assert code == 0
    ws = next(rows for t, rows in _rows(out).items() if t.startswith("Weight-stationary continuous"))
    os_ = next(rows for t, rows in _rows(out).items() if t.startswith("Output-stationary continuous"))
    assert ws["C^*"][0] == "92.1660" and "above c/g = 64" in ws["C^*"][1]  # the issue's C* = 92.2 > c = 64
    assert os_["D^*"][0] == "85.3333" and "above d/g = 64" in os_["D^*"][1]  # and D* = 256/3 > d = 64
    assert ws["tile^*"][0] == "D=64, C=64" and int(ws["Q^*"][0]) == 438272 == lower_bound(
        Layer.conv(64, 64, 56, 3, pad=1), Machine(M=65536)).Q
    # on random layers and buffers, each printed Q^* is the exact Q of a tile of the layer that fits M
    from bounds.render import optimum_rows
    rng = random.Random(5)
    checked = 0
    while checked < 30:
        L, M = random_layer(rng, big=True), rng.choice([64, 256, 1024, 4096, 65536])
        q_lb = lower_bound(L, Machine(M=M)).Q
        for key in ("os", "ws"):
            rows = {name: (v, note) for name, v, note in optimum_rows(key, L, M)}
            if rows["tile^*"][0] == "none":
                continue
            vals = dict(kv.split("=") for kv in rows["tile^*"][0].split(", "))
            if key == "os":
                t = OSTiles(*(int(vals[k]) for k in ("Bt", "D", "Th", "Tw", "C"))).check(L)
                assert os_footprint(L, t) <= M and int(rows["Q^*"][0]) == os_counts(L, t)[0]
            else:
                t = WSTiles(int(vals["D"]), int(vals["C"]))
                t.check(L)
                assert ws_footprint(L, t) <= M and int(rows["Q^*"][0]) == ws_counts(L, t)[0]
            assert int(rows["Q^*"][0]) >= q_lb, (L, M, key)
            if "Q_all_fit" in rows:
                assert int(rows["Q_all_fit"][0]) >= q_lb
            checked += 1


def test_derive_rejects_tiles_that_exceed_the_layer_or_do_not_fit(capsys):
    L = Layer.conv(64, 64, 56, 3, pad=1)
    code, out, err = run(capsys, "derive", *ISSUE_FLAGS, "--tiles-os", "1,64,56,56,64")
    fp = os_footprint(L, OSTiles(1, 64, 56, 56, 64))
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "--tiles-os" in err and "footprint" in err and f"{fp:,} words" in err and "M = 65,536" in err
    assert fp == 438272
    code, out, err = run(capsys, "derive", *ISSUE_FLAGS, "--tiles-ws", "64,64")  # fits: accepted
    assert code == 0 and "Q_WS = 438272" in out
    code, out, err = run(capsys, "derive", *ISSUE_FLAGS[:-2], "--M", "4096", "--tiles-ws", "64,64")
    assert code == 2 and f"{ws_footprint(L, WSTiles(64, 64)):,} words, more than M = 4,096" in err
    code, out, err = run(capsys, "derive", *ISSUE_FLAGS, "--tiles-ws", "8,100")
    assert code == 2 and "--tiles-ws: invalid WS tile: C:" in err and "c/g=64" in err
    code, out, err = run(capsys, "derive", *ISSUE_FLAGS, "--tiles-os", "1,1,1,1,65")
    assert code == 2 and "--tiles-os: invalid OS tile: C:" in err and "c/g=64" in err
    code, out, err = run(capsys, "derive", "--c", "64", "--tiles-ws", "1,100")  # partial layer: C > c
    assert code == 2 and err.strip().endswith("invalid WS tile: C: 100 exceeds c=64 of the layer")
