"""OS-lean dataflow: executor == closed forms, sympy == numeric, search == brute force, API and CLI keys."""

from __future__ import annotations

import itertools
import json
import random

import numpy as np
import pytest
import sympy as sp

from bounds import symbols as S
from bounds.api import TABLE_COLUMNS, evaluate, evaluate_network, evaluate_table
from bounds.executor_os_lean import run_os_lean
from bounds.machine_sim import BufferOverflow
from bounds.output_stationary import OSTiles, os_best, os_best_exact_np, os_best_np, os_parts
from bounds.output_stationary_lean import (LAYER_FIELDS, OSLTileError, OSLTiles, osl_best, osl_best_exact_np,
                                           osl_best_np, osl_continuous_optimum, osl_counts, osl_expressions,
                                           osl_footprint, osl_min_M, osl_parts, osl_stream)
from bounds.reference_conv import conv2d_numpy, random_operands
from bounds.result import InfeasibleError
from bounds.weight_stationary import ws_best
from complexity.layer import Layer
from complexity.machine import Machine
from complexity.zoo import get_network
from energy_complexity.cli import main

# (c, d, groups): single, dense rectangular, depthwise, grouped, depthwise multiplier
_CHANNELS = [(1, 1, 1), (2, 3, 1), (3, 2, 1), (3, 3, 3), (4, 4, 2), (2, 4, 2)]


def _random_layer(rng, hi=7, kmax=4, smax=4, bmax=3):
    while True:
        kh, kw = rng.randint(1, kmax), rng.randint(1, kmax)
        c, d, g = rng.choice(_CHANNELS)
        try:
            return Layer(b=rng.randint(1, bmax), c=c, d=d, h=rng.randint(1, hi), w=rng.randint(1, hi), kh=kh, kw=kw,
                         sh=rng.randint(1, smax), sw=rng.randint(1, smax), ph=rng.randint(0, kh - 1),
                         pw=rng.randint(0, kw - 1), groups=g)
        except ValueError:
            continue


def _random_tile(rng, L):
    return OSLTiles(rng.randint(1, L.b), rng.randint(1, L.dg), rng.randint(1, L.nh), rng.randint(1, L.nw))


def test_executor_equals_closed_forms_on_a_random_sweep():
    """Both streams, M = footprint (peak equal to it) and footprint - 1 (overflow), output == numpy conv."""
    rng = random.Random(2024)
    seen = set()
    cases = 0
    for i in range(300):
        L = _random_layer(rng)
        x, w = random_operands(L, seed=i)
        ref = conv2d_numpy(L, x, w)
        t = _random_tile(rng, L)
        p = osl_parts(L, t)
        for stream in ("X", "W"):
            fp = p[f"footprint_{stream}"]
            y, cnt = run_os_lean(L, t, fp, x, w, stream=stream)
            assert np.array_equal(y, ref), (L, t, stream)
            assert (cnt.Q, cnt.A, cnt.F) == (p["Q"], p["A"], p["F"]), (L, t, stream, cnt, p)
            assert cnt.loads == p["loads_X"] + p["loads_W"] and cnt.stores == p["stores"] == L.Y
            assert cnt.peak == fp, (L, t, stream, cnt.peak, fp)
            assert cnt.F == L.F and cnt.A == cnt.Q + 3 * cnt.F
            with pytest.raises(BufferOverflow):
                run_os_lean(L, t, fp - 1, x, w, stream=stream)
            cases += 1
        # the default stream is the one of the smaller footprint, and that is the footprint
        assert p["footprint"] == min(p["footprint_X"], p["footprint_W"])
        assert p["footprint"] == p[f"footprint_{osl_stream(L, t)}"] == osl_footprint(L, t)
        seen.add(("stride>kernel", L.sh > L.kh or L.sw > L.kw))
        seen.add(("padding spans tiles", L.ph > t.Th * L.sh or L.pw > t.Tw * L.sw))
        seen.add(("depthwise", L.groups == L.c > 1))
        seen.add(("grouped", 1 < L.groups < L.c))
        seen.add(("Bt>1", t.Bt > 1))
        seen.add(("tile does not divide", L.nh % t.Th != 0 or L.nw % t.Tw != 0 or L.dg % t.D != 0
                   or L.b % t.Bt != 0))
        seen.add(("kh!=kw", L.kh != L.kw))
        seen.add(("stream W smaller", p["footprint_W"] < p["footprint_X"]))
        seen.add(("stream X smaller", p["footprint_X"] < p["footprint_W"]))
    assert cases == 600
    assert all((k, True) in seen for k, _ in seen), seen


def test_same_traffic_as_os_with_one_channel_and_never_a_larger_footprint():
    rng = random.Random(11)
    for _ in range(300):
        L = _random_layer(rng, hi=20, kmax=7, smax=8, bmax=5)
        t = _random_tile(rng, L)
        p = osl_parts(L, t)
        for C in {1, L.cg}:
            o = os_parts(L, OSTiles(t.Bt, t.D, t.Th, t.Tw, C))
            assert (p["Q"], p["A"], p["F"]) == (o["Q"], o["A"], o["F"])
            assert (p["loads_X"], p["loads_W"], p["stores"]) == (o["loads_X"], o["loads_W"], o["stores"])
            assert p["footprint"] <= o["footprint"]
            if t.D * L.kh * L.kw > 1 or C > 1:
                assert p["footprint"] < o["footprint"]
        o1 = os_parts(L, OSTiles(t.Bt, t.D, t.Th, t.Tw, 1))["footprint"]
        # stream W replaces OS's D kh kw weights by one word; stream X replaces the Bt patches by one word
        assert p["footprint_W"] == o1 - t.D * L.kh * L.kw + 1
        assert p["footprint_X"] <= o1 - t.Bt + 1


def test_sympy_expressions_equal_numeric():
    E = osl_expressions()
    keys = ("Q", "A", "F", "footprint", "footprint_X", "footprint_W", "loads_X", "loads_W", "stores")
    free = set(S.LAYER_SYMBOLS.values()) | set(E["tile_symbols"].values())
    assert set(E["tile_symbols"]) == {"b", "d", "th", "tw"}
    for key in keys:
        assert E[key].free_symbols <= free, key
    rng = random.Random(99)
    for i in range(25):
        L = _random_layer(rng, hi=60 if i % 2 else 12, kmax=7, smax=8, bmax=5)
        t = _random_tile(rng, L)
        p = osl_parts(L, t)
        sub = {S.LAYER_SYMBOLS[f]: sp.Integer(getattr(L, f)) for f in S.LAYER_SYMBOLS}
        sub.update({E["tile_symbols"][k]: sp.Integer(v) for k, v in t.as_dict().items()})
        for key in keys:
            assert E[key].xreplace(sub) == p[key], (key, L, t)
    assert sp.simplify(E["A"] - E["Q"] - 3 * E["F"]) == 0
    from bounds.named_forms import expand
    assert sp.simplify(expand(E["short"]["footprint_X"], E["defs"]) - E["footprint_X"]) == 0


def _all_tiles(L):
    return [OSLTiles(*t) for t in itertools.product(range(1, L.b + 1), range(1, L.dg + 1), range(1, L.nh + 1),
                                                     range(1, L.nw + 1))]


def test_best_is_the_exhaustive_optimum_and_fits():
    rng = random.Random(5)
    checked = 0
    for _ in range(30):
        while True:
            L = _random_layer(rng, hi=12, kmax=7, smax=8, bmax=5)
            if L.b * L.dg * L.nh * L.nw <= 300:
                break
        parts = {t: osl_parts(L, t) for t in _all_tiles(L)}
        fps = sorted({p["footprint"] for p in parts.values()})
        assert osl_min_M(L) == fps[0]
        for M in rng.sample(fps, min(4, len(fps))) + [fps[-1] + 3]:
            m = Machine(M=M)
            want = min((p["Q"], p["footprint"]) for p in parts.values() if p["footprint"] <= M)
            c = osl_best(L, m)
            assert (c.Q, c.parts["footprint"]) == want, (L, M)
            assert c.A == c.Q + 3 * L.F and c.F == L.F and c.E == pytest.approx(m.energy(c.Q, c.A, c.F))
            t = OSLTiles(c.tiles["b"], c.tiles["d"], c.tiles["th"], c.tiles["tw"])
            assert parts[t]["Q"] == c.Q and parts[t]["footprint"] <= M
            fast = osl_best(L, m, exhaustive=False)
            assert fast.Q >= c.Q and osl_footprint(L, fast.tiles) <= M
            checked += 1
        with pytest.raises(InfeasibleError) as e:
            osl_best(L, Machine(M=fps[0] - 1))
        assert e.value.M_min == fps[0] and e.value.dataflow == "OS-lean"
    assert checked >= 140


def test_min_M_and_huge_buffer():
    # the smallest tile: 1 partial sum + 1 streamed weight + the most real inputs of one window
    assert osl_min_M(Layer.conv(5, 7, 12, 3, pad=1)) == 2 + 9
    assert osl_min_M(Layer(c=1, d=1, h=2, w=2, kh=3, kw=3, sh=3, sw=3, ph=2, pw=2)) == 2 + 1
    assert osl_min_M(Layer.fc(64, 8)) == 3
    assert osl_min_M(Layer.conv(3, 96, 227, 11, stride=4)) == 2 + 121
    rng = random.Random(21)
    for _ in range(100):
        L = _random_layer(rng, hi=60, kmax=7, smax=8, bmax=5)
        assert osl_counts(L, OSLTiles(L.b, L.dg, L.nh, L.nw))[0] == L.X_used + L.W + L.Y
        assert osl_best(L, Machine(M=10**9)).Q == L.X_used + L.W + L.Y


def _zoo_rows():
    layers = []
    for net in ("vgg16", "resnet50", "mobilenet_v2", "alexnet"):
        layers += list(get_network(net))
    rows = [(L, b, M) for L in layers for b in (1, 8) for M in (512, 4096, 16384, 65536, 262144)]
    P = {f: np.array([b if f == "b" else getattr(L, f) for L, b, _ in rows], dtype=np.int64) for f in LAYER_FIELDS}
    return rows, P, np.array([M for _, _, M in rows], dtype=np.int64)


def test_zoo_searches_fit_dominate_os_and_fast_is_close():
    rows, P, M = _zoo_rows()
    ex, fa = osl_best_exact_np(P, M), osl_best_np(P, M)
    oex, ofa = os_best_exact_np(P, M), os_best_np(P, M)
    assert ex["fit"].all()
    assert (ex["Q"] <= oex["Q"]).all() and (ex["Q"][oex["fit"]] <= oex["Q"][oex["fit"]]).all()
    assert (fa["Q"] <= ofa["Q"]).all()                      # OS's own fast tile is one of the candidates
    assert (fa["Q"] >= ex["Q"]).all()
    ratio = fa["Q"] / ex["Q"]
    assert np.median(ratio) < 1.01 and ratio.max() < 1.5, (np.median(ratio), ratio.max())
    rng = random.Random(3)
    for i in rng.sample(range(len(rows)), 60):              # the returned tiles, checked with the closed form
        L0, b, _ = rows[i]
        L = Layer(**{**{f: getattr(L0, f) for f in LAYER_FIELDS}, "b": b})
        for r in (ex, fa):
            t = OSLTiles(*(int(r[k][i]) for k in ("Bt", "D", "Th", "Tw")))
            p = osl_parts(L, t)
            assert p["Q"] == r["Q"][i] and p["footprint"] <= M[i]
        assert ex["footprint"][i] == osl_parts(L, OSLTiles(*(int(ex[k][i]) for k in ("Bt", "D", "Th", "Tw"))))[
            "footprint"]


def test_counts_beyond_int64_stay_exact():
    L = Layer(b=8, c=2**24, d=2**24, h=2**10, w=2**10, kh=3, kw=3, ph=1, pw=1)
    P = {f: np.array([getattr(L, f)]) for f in LAYER_FIELDS}
    r = osl_best_exact_np(P, np.array([1 << 12]))
    assert r["Q"].dtype == object and r["fit"][0]
    t = OSLTiles(*(int(r[k][0]) for k in ("Bt", "D", "Th", "Tw")))
    p = osl_parts(L, t)
    assert p["Q"] == r["Q"][0] > 2**63 and p["footprint"] == r["footprint"][0] <= 1 << 12
    assert r["Q"][0] <= os_best_exact_np(P, np.array([1 << 12]))["Q"][0]


def test_vgg16_features19_at_16K_beats_os_and_ws():
    """The issue's number: 10,711,040 words against min(OS, WS) = OS = 11,141,120."""
    L = next(x for x in get_network("vgg16") if x.name == "features.19")
    m = Machine(M=16384)
    c, o, w = osl_best(L, m), os_best(L, m), ws_best(L, m)
    assert c.Q == 10_711_040 and o.Q == 11_141_120 and w.Q > o.Q
    assert c.tiles == {"b": 1, "d": 40, "th": 14, "tw": 28}
    # as an OS tile (C = 1) it needs 16,460 words > M; streaming the inputs it needs 16,041
    assert os_parts(L, OSTiles(1, 40, 14, 28, 1))["footprint"] == 16_460 > 16384
    assert c.parts["footprint"] == c.parts["footprint_X"] == 16_041 and osl_stream(L, c.tiles) == "X"
    r = evaluate(L, m)
    assert r.best_name == "os_lean" and r.best is r.os_lean and r.gap == c.Q / r.lower_bound.Q


def test_continuous_optimum():
    opt = osl_continuous_optimum()
    m2 = sp.Min(S.sh, S.kh) * sp.Min(S.sw, S.kw)
    assert sp.simplify(opt["D_X"] * (opt["T_X"] + S.kh * S.kw) - S.M) == 0
    assert sp.simplify((opt["D_W"] + m2) * opt["T_W"] - S.M) == 0
    for L in get_network("vgg16"):
        if L.nh < 28:
            continue
        for M in (16384, 65536):
            sub = {S.LAYER_SYMBOLS[f]: getattr(L, f) for f in S.LAYER_SYMBOLS}
            sub[S.M] = M
            ratio = osl_best(L, Machine(M=M)).Q / float(opt["Q"].xreplace(sub))
            assert 1.0 <= ratio <= 1.2, (L.describe(), M, ratio)


def test_tile_validation_names_the_parameter():
    L = Layer.conv(4, 6, 8, 3, pad=1, groups=2)
    with pytest.raises(OSLTileError, match="D"):
        osl_counts(L, OSLTiles(1, 4, 1, 1))
    with pytest.raises(OSLTileError, match="Th"):
        osl_footprint(L, OSLTiles(1, 1, 9, 1))
    with pytest.raises(OSLTileError, match="Bt"):
        OSLTiles(0, 1, 1, 1)
    with pytest.raises(ValueError, match="stream"):
        osl_footprint(L, OSLTiles(1, 1, 1, 1), stream="Y")
    assert OSLTiles(1, 2, 3, 4).as_dict() == {"b": 1, "d": 2, "th": 3, "tw": 4}


# ----- API and CLI -------------------------------------------------------------------------------

def test_api_reports_os_lean_and_takes_it_into_best():
    L, m = Layer.conv(64, 64, 56, 3, pad=1, name="c"), Machine(M=100)   # WS needs 178 words
    r = evaluate(L, m)
    assert r.os_lean == osl_best(L, m) and r.os == os_best(L, m) and r.ws is None
    assert r.best_name == min((n for n in ("os", "os_lean")), key=lambda n: getattr(r, n).E)
    assert r.gap == min(r.os.Q, r.os_lean.Q) / r.lower_bound.Q
    j = r.to_json()
    assert j["os_lean"] == r.os_lean.to_json() and set(j["os_lean"]["tiles"]) == {"b", "d", "th", "tw"}
    assert j["os"] == r.os.to_json() and j["ws"] is None
    row = r.row()
    assert (row["osl_Q"], row["osl_A"], row["osl_E"]) == (r.os_lean.Q, r.os_lean.A, r.os_lean.E)
    assert [row[f"osl_{k}"] for k in ("b", "d", "th", "tw")] == [r.os_lean.tiles[k] for k in ("b", "d", "th", "tw")]
    assert "OSL Q=" in repr(r) and "OSL" in r._repr_html_()
    # a Buffer where only OS-lean fits (OS needs 243 words, OS-lean 123)
    K = Layer.conv(3, 96, 227, 11, stride=4)
    r = evaluate(K, Machine(M=200))
    assert r.os is None and r.ws is None and r.best_name == "os_lean" and set(r.infeasible) == {"os", "ws"}
    r = evaluate(K, Machine(M=100))
    assert r.best is None and set(r.infeasible) == {"os", "ws", "os_lean"} and "123" in r.infeasible["os_lean"]
    net = evaluate_network([L, Layer.fc(64, 8)], Machine(M=100))
    assert net.totals["os_lean"]["Q"] == sum(x.os_lean.Q for x in net.layers)
    assert net.total_row()["osl_Q"] == net.totals["os_lean"]["Q"]


def test_evaluate_table_has_the_os_lean_columns_and_min_over_three():
    import pandas as pd
    layers = [Layer.conv(16, 32, 20, 3, pad=1), Layer.conv(32, 32, 15, 3, stride=2, groups=4),
              Layer.conv(512, 512, 28, 3, pad=1), Layer.fc(1024, 100, b=4), Layer.conv(3, 16, 64, 7, stride=2, pad=3)]
    Ms = [100, 1024, 16384]
    df = pd.DataFrame([{**{f: getattr(L, f) for f in LAYER_FIELDS}, "M": M} for L in layers for M in Ms])
    for exact in (True, False):
        out = evaluate_table(df, exact=exact)
        assert list(out.columns) == list(df.columns) + list(TABLE_COLUMNS)
        assert {"osl_Q", "osl_A", "osl_E", "osl_b", "osl_d", "osl_th", "osl_tw"} <= set(TABLE_COLUMNS)
        for (_, row), L in zip(out.iterrows(), [L for L in layers for _ in Ms]):
            m = Machine(M=int(row["M"]))
            c = osl_best(L, m, exhaustive=exact)
            assert (row["osl_Q"], row["osl_A"]) == (c.Q, c.A) and row["osl_E"] == pytest.approx(c.E, rel=1e-12)
            assert [row[f"osl_{k}"] for k in ("b", "d", "th", "tw")] == [c.tiles[k] for k in ("b", "d", "th", "tw")]
            Es = [row["os_E"], row["ws_E"], row["osl_E"]]
            use = ("os", "ws", "osl")[int(np.argmin(Es))]
            assert (row["min_Q"], row["min_E"]) == (row[f"{use}_Q"], row[f"{use}_E"])
            if exact:
                r = evaluate(L, m)
                assert row["min_Q"] == r.best.Q


def _cli(capsys, *argv):
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_cli_json_key_and_text_line(capsys):
    argv = ["bounds", "--c", "512", "--d", "512", "--hw", "28", "--k", "3", "--pad", "1", "--M", "16384"]
    code, out = _cli(capsys, *argv, "--json")
    assert code == 0
    j = json.loads(out)
    L, m = Layer.conv(512, 512, 28, 3, pad=1), Machine(M=16384)
    assert j["os_lean"]["Q"] == 10_711_040 and j["os_lean"]["tiles"] == osl_best(L, m).tiles
    assert j["os"]["Q"] == os_best(L, m).Q == 11_141_120 and j["os"]["tiles"] == os_best(L, m).tiles
    assert j["ws"]["Q"] == ws_best(L, m).Q and j["best"] == "os_lean"
    assert {"footprint", "footprint_X", "footprint_W"} <= set(j["os_lean"]["parts"])
    code, out = _cli(capsys, *argv)
    lines = {ln.split()[0]: ln for ln in out.splitlines() if ln.strip()}
    assert "10,711,040" in lines["OSL"] and "streams inputs" in lines["OSL"] and "th=14" in lines["OSL"]
    assert "best    OSL; gap min(OS,WS,OSL)/LB" in out
    code, out = _cli(capsys, "bounds", "--network", "alexnet", "--M", "65536", "--json", "--json-totals")
    d = json.loads(out)
    assert all("os_lean" in it and "os" in it and "ws" in it for it in d["layers"])
    assert d["totals"]["os_lean"]["Q"] == sum(it["os_lean"]["Q"] for it in d["layers"])
    code, out = _cli(capsys, "bounds", "--network", "alexnet", "--M", "65536")
    assert "OSL Q" in out.splitlines()[1]
