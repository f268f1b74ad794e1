"""OS dataflow: closed forms == reference executor, sympy == numeric, search == brute force."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
import sympy as sp

from bounds import symbols as S
from bounds.executor_os import run_os, tile_lines
from bounds.machine_sim import BufferOverflow
from bounds.output_stationary import (LAYER_FIELDS, OSTileError, OSTiles, os_best, os_best_np,
                                      os_continuous_optimum, os_counts, os_expressions, os_footprint,
                                      os_min_M, os_parts)
from bounds.reference_conv import conv2d_numpy, random_operands
from bounds.result import InfeasibleError
from complexity.layer import Layer, out_size
from complexity.machine import Machine


def _axis_configs(nmax=6, kmax=3, smax=3):
    """Every valid (n, k, s, p) of one spatial axis: p < k <= n + 2p."""
    return [(n, k, s, p) for n in range(1, nmax + 1) for k in range(1, kmax + 1)
            for s in range(1, smax + 1) for p in range(k) if k <= n + 2 * p]


# (c, d, groups): single, dense rectangular, depthwise, grouped, depthwise multiplier
_CHANNELS = [(1, 1, 1), (2, 3, 1), (3, 2, 1), (3, 3, 3), (4, 4, 2), (2, 4, 2)]


def _sweep_layers():
    ax = _axis_configs()
    out = []
    for t in range(5):
        for i, (h, kh, sh, ph) in enumerate(ax):
            w, kw, sw, pw = ax[(11 * i + 37 * t + 3) % len(ax)]
            c, d, g = _CHANNELS[(i + t) % len(_CHANNELS)]
            out.append(Layer(b=1 + (i // 2 + t) % 2, c=c, d=d, h=h, w=w, kh=kh, kw=kw, sh=sh, sw=sw,
                             ph=ph, pw=pw, groups=g))
    return out


def _tiles_of(L, rng, cap=14):
    """Every tile of L, or a deterministic sample of ``cap`` of them that keeps the extremes."""
    allt = list(itertools.product(range(1, L.b + 1), range(1, L.dg + 1), range(1, L.nh + 1),
                                  range(1, L.nw + 1), range(1, L.cg + 1)))
    if len(allt) <= cap:
        return [OSTiles(*t) for t in allt]
    pick = [allt[0], allt[-1]] + rng.sample(allt[1:-1], cap - 2)
    return [OSTiles(*t) for t in pick]


def test_exhaustive_sweep_executor_equals_closed_forms():
    """Every layer of the grid x (all or a fixed sample of) its tiles, M = footprint and footprint - 1."""
    rng = random.Random(12345)
    cases = 0
    seen = set()
    for L in _sweep_layers():
        x, w = random_operands(L, seed=cases)
        ref = conv2d_numpy(L, x, w)
        for t in _tiles_of(L, rng):
            p = os_parts(L, t)
            y, cnt = run_os(L, t, p["footprint"], x, w)
            assert np.array_equal(y, ref), (L, t)
            assert (cnt.Q, cnt.A, cnt.F) == (p["Q"], p["A"], p["F"]), (L, t, cnt, p)
            assert cnt.loads == p["loads_X"] + p["loads_W"] and cnt.stores == p["stores"] == L.Y
            assert cnt.peak == p["footprint"], (L, t, cnt.peak, p["footprint"])
            assert cnt.F == L.F and cnt.A == cnt.Q + 3 * cnt.F
            with pytest.raises(BufferOverflow):
                run_os(L, t, p["footprint"] - 1, x, w)
            cases += 1
            seen.add(("stride>kernel", L.sh > L.kh or L.sw > L.kw))
            seen.add(("padding spans tiles", L.ph > t.Th * L.sh or L.pw > t.Tw * L.sw))
            seen.add(("depthwise", L.groups == L.c > 1))
            seen.add(("kh!=kw", L.kh != L.kw))
            seen.add(("Bt>1", t.Bt > 1))
            seen.add(("C<cg", t.C < L.cg))
            seen.add(("ph>sh", L.ph > L.sh))
    assert cases >= 5000, cases
    assert all((k, True) in seen for k, _ in seen), seen


def test_input_lines_match_executor_on_wide_axes():
    """Summed real lines (closed form) == the executor's clipped line sets, on larger axes."""
    rng = random.Random(7)
    for _ in range(400):
        k = rng.randint(1, 7)
        n, s, p = rng.randint(1, 30), rng.randint(1, 9), rng.randint(0, k - 1)
        if k > n + 2 * p:
            continue
        o = out_size(n, k, s, p)
        T = rng.randint(1, o)
        L = Layer(c=1, d=1, h=n, w=1, kh=k, kw=1, sh=s, ph=p)
        got = os_parts(L, OSTiles(1, 1, T, 1, 1))["rows_loaded"]
        want = sum(len(tile_lines(i0, min(i0 + T, o) - 1, n, k, s, p)) for i0 in range(0, o, T))
        assert got == want, (n, k, s, p, T)


def _random_layer(rng, big=False):
    while True:
        kh, kw = rng.randint(1, 7), rng.randint(1, 7)
        g = rng.choice([1, 1, 2, 3])
        hi = 60 if big else 12
        try:
            return Layer(b=rng.randint(1, 5), c=g * rng.randint(1, 5), d=g * rng.randint(1, 6),
                         h=rng.randint(1, hi), w=rng.randint(1, hi), kh=kh, kw=kw, sh=rng.randint(1, 8),
                         sw=rng.randint(1, 8), ph=rng.randint(0, kh - 1), pw=rng.randint(0, kw - 1), groups=g)
        except ValueError:
            continue


def _random_tile(rng, L):
    return OSTiles(rng.randint(1, L.b), rng.randint(1, L.dg), rng.randint(1, L.nh), rng.randint(1, L.nw),
                   rng.randint(1, L.cg))


def _subs_map(L, t):
    E = os_expressions()
    m = {S.LAYER_SYMBOLS[f]: sp.Integer(getattr(L, f)) for f in S.LAYER_SYMBOLS}
    m.update({E["tile_symbols"][k]: sp.Integer(v) for k, v in t.as_dict().items()})
    return m


def test_sympy_expressions_equal_numeric():
    """xreplace (simultaneous exact substitution) on many points, Expr.subs on a few."""
    E = os_expressions()
    rng = random.Random(99)
    free = set(S.LAYER_SYMBOLS.values()) | set(E["tile_symbols"].values())
    for key in ("Q", "A", "F", "footprint", "loads_X", "loads_W", "stores"):
        assert E[key].free_symbols <= free, key
    for i in range(60):
        L = _random_layer(rng, big=i % 2 == 0)
        t = _random_tile(rng, L)
        p = os_parts(L, t)
        sub = _subs_map(L, t)
        for key in ("Q", "A", "F", "footprint", "loads_X", "loads_W", "stores"):
            assert E[key].xreplace(sub) == p[key], (key, L, t)
    for _ in range(2):
        L = _random_layer(rng)
        t = _random_tile(rng, L)
        sub = _subs_map(L, t)
        assert E["Q"].subs(sub) == os_counts(L, t)[0]
        assert E["F"].subs(sub) == L.F
    assert sp.simplify(E["A"] - E["Q"] - 3 * E["F"]) == 0


def _all_tiles(L):
    return [OSTiles(*t) for t in itertools.product(range(1, L.b + 1), range(1, L.dg + 1),
                                                    range(1, L.nh + 1), range(1, L.nw + 1),
                                                    range(1, L.cg + 1))]


def test_os_best_exhaustive_equals_brute_force():
    rng = random.Random(5)
    checked = 0
    for _ in range(60):
        while True:
            L = _random_layer(rng)
            if L.b * L.dg * L.nh * L.nw * L.cg <= 600:
                break
        parts = {t: os_parts(L, t) for t in _all_tiles(L)}
        fps = sorted({p["footprint"] for p in parts.values()})
        assert os_min_M(L) == fps[0]
        for M in rng.sample(fps, min(5, len(fps))) + [fps[-1] + 3]:
            machine = Machine(M=M)
            best = min(p["Q"] for p in parts.values() if p["footprint"] <= M)
            c = os_best(L, machine)
            assert c.Q == best and c.A == c.Q + 3 * L.F and c.F == L.F
            assert c.E == pytest.approx(machine.energy(c.Q, c.A, c.F))
            t = OSTiles(c.tiles["b"], c.tiles["d"], c.tiles["th"], c.tiles["tw"], c.tiles["c"])
            assert parts[t]["Q"] == c.Q and parts[t]["footprint"] <= M
            cf = os_best(L, machine, exhaustive=False)
            assert cf.Q >= c.Q and os_footprint(L, cf.tiles) <= M
            checked += 1
        with pytest.raises(InfeasibleError) as e:
            os_best(L, Machine(M=fps[0] - 1))
        assert e.value.M_min == fps[0]
    assert checked >= 300


def test_infeasible_below_min_M():
    for L in (Layer.conv(3, 8, 10, 3, pad=1), Layer.conv(4, 4, 9, 5, stride=2, pad=2, groups=4),
              Layer(c=2, d=2, h=2, w=2, kh=3, kw=3, sh=3, sw=3, ph=2, pw=2)):
        m = os_min_M(L)
        with pytest.raises(InfeasibleError) as e:
            os_best(L, Machine(M=m - 1))
        assert e.value.M_min == m and e.value.dataflow == "OS" and "M" in str(e.value)
        assert os_best(L, Machine(M=m)).Q >= L.Y + L.W + L.X_used
        r = os_best_np({f: np.array([getattr(L, f)] * 2) for f in LAYER_FIELDS}, np.array([m - 1, m]))
        assert r["Q"][0] == np.inf and r["Bt"][0] == 0 and np.isfinite(r["Q"][1])
        assert r["Q"][1] == os_counts(L, OSTiles(*(int(r[k][1]) for k in ("Bt", "D", "Th", "Tw", "C"))))[0]


def test_min_M_is_the_smallest_window_tile():
    # h=2, kh=3, sh=3, ph=2: both windows hold 1 real row, so the minimum is below 1 + kh*kw + k^2
    L = Layer(c=1, d=1, h=2, w=2, kh=3, kw=3, sh=3, sw=3, ph=2, pw=2)
    assert os_min_M(L) == 1 + 1 * 1 + 9
    assert os_min_M(Layer.conv(5, 7, 12, 3, pad=1)) == 1 + 9 + 9


def test_huge_buffer_reaches_compulsory_traffic():
    rng = random.Random(21)
    for _ in range(200):
        L = _random_layer(rng, big=True)
        whole = OSTiles(L.b, L.dg, L.nh, L.nw, L.cg)
        assert os_counts(L, whole)[0] == L.X_used + L.W + L.Y
        c = os_best(L, Machine(M=10**9))
        assert c.Q == L.X_used + L.W + L.Y


def _zoo_sample():
    from complexity.zoo import get_network
    layers = []
    for net in ("vgg16", "resnet50", "mobilenet_v2", "alexnet"):
        layers += list(get_network(net))
    return layers


def test_os_best_np_is_exact_feasible_and_an_upper_bound():
    rng = random.Random(3)
    layers = [_random_layer(rng, big=True) for _ in range(150)] + _zoo_sample()[::3]
    Ms = [rng.choice([64, 300, 1000, 4096, 65536]) for _ in layers]
    P = {f: np.array([getattr(L, f) for L in layers], dtype=np.int64) for f in LAYER_FIELDS}
    r = os_best_np(P, np.array(Ms, dtype=np.int64))
    ratios = []
    for i, (L, M) in enumerate(zip(layers, Ms)):
        if M < os_min_M(L):
            assert r["Q"][i] == np.inf and r["F"][i] == np.inf
            continue
        t = OSTiles(*(int(r[k][i]) for k in ("Bt", "D", "Th", "Tw", "C")))
        Q, A, F = os_counts(L, t)
        assert (r["Q"][i], r["A"][i], r["F"][i]) == (Q, A, F)
        assert os_footprint(L, t) <= M
        best = os_best(L, Machine(M=M)).Q
        assert Q >= best
        ratios.append(Q / best)
    assert len(ratios) > 150
    assert np.median(ratios) < 1.02 and max(ratios) < 2.0, (np.median(ratios), max(ratios))


def test_os_best_handles_vgg16_quickly():
    import time
    from complexity.zoo import get_network
    t0 = time.perf_counter()
    for L in get_network("vgg16"):
        c = os_best(L, Machine(M=65536))
        assert c.Q >= L.X_used + L.W + L.Y and os_footprint(L, c.tiles) <= 65536
    assert time.perf_counter() - t0 < 3.0  # ~0.2 s alone; generous for a shared machine


def test_continuous_optimum_predicts_large_layers():
    """Where the tile is not capped by the layer, exhaustive Q is within 1.35x of the leading-order Q*."""
    from complexity.zoo import get_network
    opt = os_continuous_optimum()
    assert set(opt) >= {"Bt", "D", "T", "Th", "Tw", "C", "Q"}
    assert sp.simplify(opt["D"] * opt["T"] - S.M) == 0
    checked = 0
    for L in get_network("vgg16"):
        if L.nh < 28:
            continue
        for M in (16384, 65536):
            sub = {S.LAYER_SYMBOLS[f]: getattr(L, f) for f in S.LAYER_SYMBOLS}
            sub[S.M] = M
            q = float(opt["Q"].xreplace(sub))
            ratio = os_best(L, Machine(M=M)).Q / q
            assert 1.0 <= ratio <= 1.35, (L.describe(), M, ratio)
            checked += 1
    assert checked == 20


def test_tile_validation_names_the_parameter():
    L = Layer.conv(4, 6, 8, 3, pad=1, groups=2)
    with pytest.raises(OSTileError, match="D"):
        os_counts(L, OSTiles(1, 4, 1, 1, 1))
    with pytest.raises(OSTileError, match="Th"):
        os_footprint(L, OSTiles(1, 1, 9, 1, 1))
    with pytest.raises(OSTileError, match="C"):
        OSTiles(1, 1, 1, 1, 0)
    assert OSTiles(1, 2, 3, 4, 5).as_dict() == {"b": 1, "d": 2, "th": 3, "tw": 4, "c": 5}
