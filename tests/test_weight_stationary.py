"""WS dataflow: closed forms == reference executor, sympy == numeric, search == brute force."""

from __future__ import annotations

import random

import numpy as np
import pytest

from bounds import symbols as S
from bounds.executor_ws import run_ws
from bounds.machine_sim import BufferOverflow
from bounds.reference_conv import conv2d_numpy, random_operands
from bounds.result import InfeasibleError
from bounds.weight_stationary import (LAYER_FIELDS, WSTiles, ws_axis_terms, ws_best, ws_best_np,
                                      ws_continuous_optimum, ws_counts, ws_expressions, ws_footprint,
                                      ws_min_M, ws_parts)
from complexity.layer import Layer, LayerError, out_size
from complexity.machine import Machine


def _axis_configs(nmax=6, kmax=3, smax=3):
    """Every valid (n, k, s, p) of one spatial axis: p < k <= n + 2p."""
    return [(n, k, s, p) for n in range(1, nmax + 1) for k in range(1, kmax + 1)
            for s in range(1, smax + 1) for p in range(k) if k <= n + 2 * p]


# (c, d, groups): dense, rectangular, depthwise, grouped, depthwise multiplier
_CHANNELS = [(1, 1, 1), (2, 3, 1), (3, 2, 1), (3, 3, 3), (4, 6, 2), (2, 4, 2), (3, 4, 1)]


def _sweep_layers():
    ax = _axis_configs()
    out = []
    for t in range(11):
        for i, (h, kh, sh, ph) in enumerate(ax):
            w, kw, sw, pw = ax[(7 * i + 31 * t + 5) % len(ax)]
            c, d, g = _CHANNELS[(i + t) % len(_CHANNELS)]
            out.append(Layer(b=1 + (i + t) % 2, c=c, d=d, h=h, w=w, kh=kh, kw=kw, sh=sh, sw=sw,
                             ph=ph, pw=pw, groups=g))
    return out


def _brute_window_rows(n, k, s, p):
    return max(len(range(max(0, i * s - p), min(n, i * s - p + k))) for i in range(out_size(n, k, s, p)))


def test_exhaustive_sweep_executor_equals_closed_forms():
    """Every layer of the grid x every tile, at M = footprint (and footprint - 1: overflow)."""
    cases = 0
    shapes = set()
    for L in _sweep_layers():
        x, w = random_operands(L, seed=cases)
        ref = conv2d_numpy(L, x, w)
        shapes.add((L.kh != L.kw, L.sh > L.kh, L.groups == L.c and L.c > 1, L.ph > 0))
        for D in range(1, L.dg + 1):
            for C in range(1, L.cg + 1):
                t = WSTiles(D, C)
                f = ws_parts(L, t)
                y, cnt = run_ws(L, t, f["footprint"], x, w)
                assert (cnt.Q, cnt.A, cnt.F) == ws_counts(L, t), (L, t)
                assert (cnt.loads, cnt.stores) == (f["loads"], f["stores"]), (L, t)
                assert cnt.peak == f["footprint"], (L, t)
                assert np.array_equal(y, ref), (L, t)
                with pytest.raises(BufferOverflow):
                    run_ws(L, t, f["footprint"] - 1, x, w)
                cases += 1
    assert cases >= 5000, cases  # 5,300+ (layer, tile) cases
    assert len(shapes) == 16  # all combinations of kh!=kw, stride>kernel, depthwise, padding occur


def test_axis_terms_match_brute_force_and_layer_sizes():
    for n, k, s, p in _axis_configs(nmax=14, kmax=5, smax=6):
        L = Layer(c=1, d=1, h=n, w=n, kh=k, kw=k, sh=s, sw=s, ph=p, pw=p)
        a = ws_axis_terms(L)
        assert a["window_rows"] == _brute_window_rows(n, k, s, p), (n, k, s, p)
        f = ws_parts(L, WSTiles(1, 1))
        assert (f["X_used"], f["W"], f["Y"], f["F"]) == (L.X_used, L.W, L.Y, L.F)


def _random_layer(rng: random.Random) -> Layer:
    while True:
        g = rng.choice([1, 1, 2, 3, 4])
        k = (rng.randint(1, 7), rng.randint(1, 7))
        try:
            return Layer(b=rng.randint(1, 8), c=g * rng.randint(1, 40), d=g * rng.randint(1, 40),
                         h=rng.randint(1, 120), w=rng.randint(1, 120), kh=k[0], kw=k[1],
                         sh=rng.randint(1, 9), sw=rng.randint(1, 9), ph=rng.randint(0, k[0] - 1),
                         pw=rng.randint(0, k[1] - 1), groups=g)
        except LayerError:
            continue


def test_sympy_expressions_equal_numeric_functions():
    e = ws_expressions()
    Dsym, Csym = e["tile_symbols"]
    rng = random.Random(7)
    for i in range(150):
        L = _random_layer(rng)
        t = WSTiles(rng.randint(1, L.dg), rng.randint(1, L.cg))
        subs = {S.LAYER_SYMBOLS[k]: getattr(L, k) for k in LAYER_FIELDS}
        subs.update({Dsym: t.D, Csym: t.C})
        f = ws_parts(L, t)
        for key in ("Q", "A", "F", "footprint", "loads", "stores"):
            # subs on a few points, the (much faster, equally exact) xreplace on the rest
            v = e[key].subs(subs) if i < 3 else e[key].xreplace(subs)
            assert v == f[key], (key, L, t)
        for key in ("Q", "footprint"):  # the readable forms are the same numbers
            assert e["short"][key].xreplace(e["aux"]).xreplace(subs) == f[key], (key, L, t)
        assert (f["Q"], f["A"], f["F"]) == ws_counts(L, t)
        assert f["footprint"] == ws_footprint(L, t)
        assert f["X_used"] == L.X_used and f["F"] == L.F


def test_continuous_optimum_is_stationary_and_all_fit_is_compulsory():
    opt = ws_continuous_optimum()
    L = Layer.conv(256, 256, 14, 3, pad=1)
    subs = {S.LAYER_SYMBOLS[k]: getattr(L, k) for k in LAYER_FIELDS}
    subs[S.M] = 65536
    D, C, Q = (float(opt[k].subs(subs)) for k in ("D", "C", "Q"))
    a = L.dg * L.X_used
    y = 2 * L.cg * L.Y
    B = ws_axis_terms(L)["used_width"] * ws_axis_terms(L)["window_rows"]
    assert D * C * 9 + C * B == pytest.approx(65535)  # on the footprint boundary

    def q_of(Dv):  # continuous Q along the boundary
        Cv = 65535 / (9 * Dv + B)
        return L.W - L.Y + a / Dv + y / Cv
    assert Q == pytest.approx(q_of(D))
    assert q_of(D) < q_of(D * 1.05) and q_of(D) < q_of(D / 1.05)
    assert 1 <= D <= L.dg and 1 <= C <= L.cg
    assert opt["all_fit"].subs(subs) == (ws_footprint(L, WSTiles(L.dg, L.cg)) <= 65536)
    assert opt["Q_all_fit"].subs(subs) == L.X_used + L.W + L.Y


def _brute_best_Q(L, M):
    best = None
    for D in range(1, L.dg + 1):
        for C in range(1, L.cg + 1):
            t = WSTiles(D, C)
            if ws_footprint(L, t) <= M:
                q = ws_counts(L, t)[0]
                best = q if best is None else min(best, q)
    return best


def test_ws_best_exhaustive_equals_brute_force():
    rng = random.Random(3)
    checked = 0
    for _ in range(60):
        g = rng.choice([1, 1, 2, 5])
        kh, kw = rng.randint(1, 3), rng.randint(1, 3)
        L = Layer(b=rng.randint(1, 3), c=g * rng.randint(1, 12), d=g * rng.randint(1, 12),
                  h=rng.randint(3, 12), w=rng.randint(3, 12), kh=kh, kw=kw, sh=rng.randint(1, 4),
                  sw=rng.randint(1, 4), ph=rng.randint(0, kh - 1), pw=rng.randint(0, kw - 1), groups=g)
        lo, hi = ws_min_M(L), ws_footprint(L, WSTiles(L.dg, L.cg))
        for M in sorted({lo, hi, hi + 5, rng.randint(lo, hi), rng.randint(lo, hi)}):
            mach = Machine(M=M)
            cost = ws_best(L, mach)
            t = WSTiles(cost.tiles["d"], cost.tiles["c"])
            assert cost.Q == _brute_best_Q(L, M)
            assert ws_footprint(L, t) <= M
            assert (cost.Q, cost.A, cost.F) == ws_counts(L, t)
            assert cost.E == pytest.approx(mach.energy(cost.Q, cost.A, cost.F))
            checked += 1
    assert checked >= 200


def test_all_weights_fit_reaches_compulsory_traffic():
    rng = random.Random(11)
    for _ in range(50):
        L = _random_layer(rng)
        M = ws_footprint(L, WSTiles(L.dg, L.cg)) + rng.randint(0, 3)
        cost = ws_best(L, Machine(M=M))
        assert cost.Q == L.X_used + L.W + L.Y
        assert ws_counts(L, WSTiles(L.dg, L.cg))[0] == L.X_used + L.W + L.Y


def test_infeasible_below_min_M():
    L = Layer.conv(3, 8, 10, 3, stride=2, pad=1)
    mmin = ws_min_M(L)
    assert mmin == ws_footprint(L, WSTiles(1, 1)) == 9 + 10 * 3 + 1
    with pytest.raises(InfeasibleError) as err:
        ws_best(L, Machine(M=mmin - 1))
    assert err.value.M_min == mmin and err.value.dataflow == "WS"
    assert ws_best(L, Machine(M=mmin)).tiles == {"d": 1, "c": 1}
    P = {k: np.array([getattr(L, k)] * 2, dtype=np.int64) for k in LAYER_FIELDS}
    r = ws_best_np(P, np.array([mmin - 1, mmin]))
    assert np.isinf(r["Q"][0]) and r["Q"][1] == ws_counts(L, WSTiles(1, 1))[0]
    with pytest.raises(ValueError, match="D"):
        ws_counts(L, WSTiles(0, 1))
    with pytest.raises(ValueError, match="C"):
        ws_footprint(L, WSTiles(1, 4))


def test_ws_best_np_exact_at_its_tiles_and_above_exhaustive():
    rng = random.Random(5)
    layers = [_random_layer(rng) for _ in range(300)]
    Ms = []
    for L in layers:
        lo, hi = ws_min_M(L), ws_footprint(L, WSTiles(L.dg, L.cg))
        Ms.append(rng.choice([lo - 1, lo, rng.randint(lo, hi), rng.randint(lo, hi), hi, 2 * hi]))
    P = {k: np.array([getattr(L, k) for L in layers], dtype=np.int64) for k in LAYER_FIELDS}
    r = ws_best_np(P, np.array(Ms, dtype=np.int64))
    finite = 0
    for i, (L, M) in enumerate(zip(layers, Ms)):
        if M < ws_min_M(L):
            assert np.isinf(r["Q"][i]) and np.isinf(r["A"][i])
            continue
        t = WSTiles(int(r["d"][i]), int(r["c"][i]))
        assert ws_footprint(L, t) <= M
        assert (r["Q"][i], r["A"][i], r["F"][i]) == ws_counts(L, t)
        assert r["Q"][i] >= ws_best(L, Machine(M=M)).Q
        finite += 1
    assert finite > 200
    # and ws_best(exhaustive=False) is the same candidate search
    L, M = layers[0], max(Ms[0], ws_min_M(layers[0]))
    assert ws_best(L, Machine(M=M), exhaustive=False).Q >= ws_best(L, Machine(M=M)).Q
