"""The lower bound: closed forms, symbolic == numeric, FC reductions, and LB <= real executions.

Executions come from the dataflow executors (run_os, run_ws) and from a generic
executor below that runs the MACs in an arbitrary order with LRU replacement on the
capacity-checked machine, so the bound is checked against orders no dataflow uses.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import OrderedDict

import numpy as np
import pytest
import sympy as sp

from bounds import symbols as sy
from bounds.lower_bound import (M_MIN, lb_expressions, lower_bound, lower_bound_np,
                                real_taps_1d_expr, real_taps_1d_np, used_inputs_1d_expr,
                                used_inputs_1d_np)
from bounds.machine_sim import TwoLevelMachine
from bounds.reference_conv import conv2d_numpy, random_operands
from bounds.result import InfeasibleError
from complexity.layer import Layer, real_taps_1d, used_inputs_1d
from complexity.machine import Machine

FIELDS = ("b", "c", "d", "h", "w", "kh", "kw", "sh", "sw", "ph", "pw", "groups")


def axis_cases(nmax=12, kmax=6, smax=5):
    for n, k, s in itertools.product(range(1, nmax + 1), range(1, kmax + 1), range(1, smax + 1)):
        for p in range(0, k):
            if k <= n + 2 * p:
                yield n, k, s, p


def random_layer(rng: random.Random, small=False) -> Layer:
    """A random valid layer (realistic ranges, or tiny ones for executors)."""
    while True:
        g = rng.choice([1, 1, 1, 2, 4]) if not small else rng.choice([1, 1, 2])
        cg = rng.randint(1, 3 if small else 64)
        dg = rng.randint(1, 3 if small else 64)
        k = rng.choice([1, 2, 3] if small else [1, 3, 5, 7, 11])
        kw = k if rng.random() < 0.7 else rng.choice([1, 2, 3])
        s = rng.choice([1, 1, 2, 3] if small else [1, 1, 2, 4])
        sw = s if rng.random() < 0.7 else rng.choice([1, 2])
        h = rng.randint(1, 6 if small else 112)
        w = rng.randint(1, 6 if small else 112)
        ph = rng.randint(0, k - 1)
        pw = rng.randint(0, kw - 1)
        try:
            return Layer(b=rng.choice([1, 1, 2]), c=g * cg, d=g * dg, h=h, w=w, kh=k, kw=kw,
                         sh=s, sw=sw, ph=ph, pw=pw, groups=g)
        except Exception:
            continue


def subs_of(layer: Layer, M: int) -> dict:
    out = {sy.LAYER_SYMBOLS[f]: sp.Integer(getattr(layer, f)) for f in FIELDS}
    out[sy.M] = sp.Integer(M)
    return out


# ----- closed forms of the 1-D counts ------------------------------------------------

def test_used_inputs_and_real_taps_closed_forms_match_the_loops():
    cases = np.array(list(axis_cases()), dtype=np.int64)
    n, k, s, p = cases.T
    want_u = np.array([used_inputs_1d(*map(int, r)) for r in cases])
    want_t = np.array([real_taps_1d(*map(int, r)) for r in cases])
    assert len(cases) > 1000
    np.testing.assert_array_equal(used_inputs_1d_np(n, k, s, p), want_u)
    np.testing.assert_array_equal(real_taps_1d_np(n, k, s, p), want_t)
    N, K, S_, P_ = sp.symbols("n k s p", integer=True, positive=True)
    eu, et = used_inputs_1d_expr(N, K, S_, P_), real_taps_1d_expr(N, K, S_, P_)
    for r in cases[::37]:
        sub = dict(zip((N, K, S_, P_), map(sp.Integer, map(int, r))))
        assert int(eu.xreplace(sub)) == used_inputs_1d(*map(int, r))
        assert int(et.xreplace(sub)) == real_taps_1d(*map(int, r))


# ----- symbolic == numeric --------------------------------------------------------

def test_symbolic_equals_numeric_on_random_layers():
    e = lb_expressions()
    rng = random.Random(7)
    for _ in range(20):
        L = random_layer(rng)
        M = rng.choice([3, 50, 1024, 16384, 65536, 10 ** 6])
        cost = lower_bound(L, Machine(M=M))
        sub = subs_of(L, M)
        assert int(e["X_used"].xreplace(sub)) == L.X_used
        assert int(e["F_real"].xreplace(sub)) == L.F_real
        assert int(e["Q_comp"].xreplace(sub)) == cost.parts["Q_comp"]
        Q_cap = int(e["Q_cap"].xreplace(sub))
        assert Q_cap == cost.parts["Q_cap"]
        assert max(Q_cap, cost.parts["Q_comp"]) == cost.Q
        assert cost.A == cost.Q + 3 * L.F
    # the full expressions (Q, A, E) once, at a capacity-bound point
    L, M = Layer.conv(64, 64, 56, 3, pad=1), 16384
    cost, sub = lower_bound(L, Machine(M=M)), subs_of(L, M)
    assert cost.parts["Q_cap"] > cost.parts["Q_comp"]
    assert int(e["Q"].xreplace(sub)) == cost.Q and int(e["A"].xreplace(sub)) == cost.A
    E = float(e["E"].xreplace({**sub, sy.eD: sp.Integer(200), sy.eB: sp.Integer(6), sy.eM: sp.Integer(1)}))
    assert math.isclose(E, cost.E, rel_tol=1e-12)


def test_vectorized_equals_scalar():
    rng = random.Random(3)
    layers = [random_layer(rng) for _ in range(300)]
    Ms = np.array([rng.choice([3, 100, 4096, 65536, 262144]) for _ in layers], dtype=np.int64)
    P = {f: np.array([getattr(L, f) for L in layers], dtype=np.int64) for f in FIELDS}
    r = lower_bound_np(P, Ms)
    for i, L in enumerate(layers):
        c = lower_bound(L, Machine(M=int(Ms[i])))
        assert (r["Q"][i], r["A"][i], r["F"][i]) == (c.Q, c.A, c.F)


# ----- special cases ----------------------------------------------------------------

@pytest.mark.parametrize("layer", [
    Layer.conv(64, 64, 56, 3, pad=1), Layer.conv(32, 32, 17, 3, stride=2),  # the latter skips a row
    Layer.conv(96, 96, 28, 3, pad=1, groups=96), Layer.conv(3, 64, 224, 11, stride=4, pad=2),
    Layer.conv(16, 8, 9, 1, stride=3), Layer.fc(4096, 1000, b=8)])
def test_large_buffer_gives_compulsory_traffic(layer):
    c = lower_bound(layer, Machine(M=10 * layer.F + 10 ** 6))
    assert c.Q == layer.X_used + layer.W + layer.Y
    assert c.A == c.Q + 3 * layer.F and c.F == layer.F
    if layer.X_used == layer.X:
        assert c.Q == layer.X + layer.W + layer.Y


def test_skipped_inputs_are_not_compulsory():
    L = Layer.conv(4, 4, 10, 1, stride=3)  # rows/cols 0, 3, 6, 9 used
    assert L.X_used == 4 * 16 < L.X
    assert lower_bound(L, Machine(M=10 ** 6)).Q == L.X_used + L.W + L.Y


@pytest.mark.parametrize("n_in,n_out", [(4096, 4096), (9216, 4096), (1000, 10), (3, 3)])
@pytest.mark.parametrize("M", [4, 5, 64, 1024, 65536])
def test_fc_matrix_vector_is_compulsory(n_in, n_out, M):
    L = Layer.fc(n_in, n_out, b=1)
    c = lower_bound(L, Machine(M=M))
    assert c.Q == L.X + L.W + L.Y == n_in + n_in * n_out + n_out
    assert c.parts["Q_cap"] <= c.parts["Q_comp"]


@pytest.mark.parametrize("n,M", [(512, 1024), (2048, 4096), (4096, 16384), (1024, 256)])
def test_fc_matrix_matrix_is_hong_kung(n, M):
    """b x n times n x n: with S = 2M the bound is 2M (ceil(F / M^1.5) - 1) >= 2F/sqrt(M) - 2M (Smith et al.)."""
    L = Layer.fc(n, n, b=n)
    c = lower_bound(L, Machine(M=M))
    F = L.F
    assert c.Q >= 2 * M * (math.ceil(F / M ** 1.5) - 1) >= 2 * F / math.sqrt(M) - 2 * M
    assert c.Q <= 2.01 * F / math.sqrt(M)  # no stronger than the proof gives
    if F / math.sqrt(M) > 100 * M:
        assert c.Q / (F / math.sqrt(M)) > 1.99


def test_too_small_buffer_raises_naming_M():
    with pytest.raises(InfeasibleError, match="M"):
        lower_bound(Layer.conv(4, 4, 5, 3), Machine(M=2))
    r = lower_bound_np({"c": np.array([4]), "d": np.array([4])}, np.array([2]))
    assert np.isinf(r["Q"][0])


def test_bound_never_negative_and_monotone_in_M():
    L = Layer.conv(128, 256, 28, 3, pad=1)
    Ms = np.array([M_MIN, 16, 256, 4096, 16384, 65536, 262144, 10 ** 7])
    Q = lower_bound_np({f: np.int64(getattr(L, f)) for f in FIELDS}, Ms)["Q"]
    assert np.all(Q >= L.X_used + L.W + L.Y)
    assert np.all(np.diff(Q) <= 0)


# ----- LB <= executions in arbitrary orders ------------------------------------------

def mac_list(L: Layer):
    """Every MAC as (y key, w key, x key or None for a padding zero)."""
    out = []
    for n, o in itertools.product(range(L.b), range(L.d)):
        grp = o // L.dg
        for ci, i, j, r, s in itertools.product(range(L.cg), range(L.nh), range(L.nw), range(L.kh), range(L.kw)):
            y, x = i * L.sh - L.ph + r, j * L.sw - L.pw + s
            c = grp * L.cg + ci
            xk = ("X", n, c, y, x) if 0 <= y < L.h and 0 <= x < L.w else None
            out.append((("Y", n, o, i, j), ("W", o, ci, r, s), xk))
    return out


def run_order(L: Layer, macs, M: int, x, w, policy: str = "lru"):
    """Execute the MACs in the given order; partial sums are stored on eviction.

    ``policy`` picks the word to evict: "lru" (least recently used) or "belady" (the word
    whose next use is farthest away, optimal for a fixed order when all words cost the same).
    """
    dram = {("X", n, c, i, j): x[n, c, i, j] for n, c, i, j in itertools.product(*map(range, x.shape))}
    dram.update({("W", o, c, r, s): w[o, c, r, s] for o, c, r, s in itertools.product(*map(range, w.shape))})
    m = TwoLevelMachine(M, dram)
    left: dict = {}
    uses: dict = {}
    for t, (yk, wk, xk) in enumerate(macs):
        left[yk] = left.get(yk, 0) + 1
        for k in (yk, wk, xk):
            if k is not None:
                uses.setdefault(k, []).append(t)
    ptr = {k: 0 for k in uses}
    lru: OrderedDict = OrderedDict()

    def next_use(k):
        u, i = uses[k], ptr[k]
        return u[i] if i < len(u) else math.inf

    def make_room(keep):
        while m.occupancy() >= M:
            cands = [k for k in lru if k not in keep]
            victim = cands[0] if policy == "lru" else max(cands, key=next_use)
            del lru[victim]
            if victim[0] == "Y":
                m.store(victim)
            else:
                m.evict(victim)

    for yk, wk, xk in macs:
        need = [k for k in (wk, xk, yk) if k is not None]
        for k in need:
            ptr[k] += 1
            if k in lru:
                lru.move_to_end(k)
                continue
            make_room(need)
            if k[0] != "Y" or k in m.dram:
                m.load(k)
            lru[k] = True
        m.mac(yk, wk, xk)
        left[yk] -= 1
        if left[yk] == 0:
            m.store(yk)
            del lru[yk]
    y = np.zeros((L.b, L.d, L.nh, L.nw))
    for (_, n, o, i, j) in left:
        y[n, o, i, j] = m.dram[("Y", n, o, i, j)]
    return y, m.counts()


def blocked_order(macs, L: Layer, By: int, Bo: int):
    """MACs grouped in output tiles of By output rows x Bo filters (an OS-like order)."""
    return sorted(macs, key=lambda m: (m[0][2] // Bo, m[0][3] // By, m[0][1], str(m[2]), m[0]))


def test_lb_below_arbitrary_execution_orders():
    rng = random.Random(11)
    checked = 0
    for t in range(40):
        L = random_layer(rng, small=True)
        x, w = random_operands(L, seed=t)
        ref = conv2d_numpy(L, x, w)
        macs = mac_list(L)
        shuffled = list(macs)
        rng.shuffle(shuffled)
        orders = [macs, sorted(macs, key=lambda m: (m[1], m[0])), sorted(macs, key=lambda m: (str(m[2]), m[0])),
                  shuffled, blocked_order(macs, L, 1, 2), blocked_order(macs, L, 2, 1)]
        for M in (3, 4, 7, 16, 64):
            lb = lower_bound(L, Machine(M=M))
            for order in orders:
                for policy in ("lru", "belady"):
                    y, cnt = run_order(L, order, M, x, w, policy)
                    np.testing.assert_array_equal(y, ref)
                    assert cnt.A == cnt.Q + 3 * cnt.F and cnt.F == L.F
                    assert lb.Q <= cnt.Q, (L, M, policy)
                    checked += 1
    assert checked == 40 * 5 * 6 * 2


# ----- LB <= the dataflows (closed forms, executors, best tiles) ---------------------

from hypothesis import given, settings, strategies as st  # noqa: E402

from bounds.executor_os import run_os  # noqa: E402
from bounds.executor_ws import run_ws  # noqa: E402
from bounds.output_stationary import OSTiles, os_best, os_best_np, os_parts  # noqa: E402
from bounds.weight_stationary import WSTiles, ws_best, ws_best_np, ws_parts  # noqa: E402


def all_os_tiles(L: Layer):
    for t in itertools.product(range(1, L.b + 1), range(1, L.dg + 1), range(1, L.nh + 1),
                               range(1, L.nw + 1), range(1, L.cg + 1)):
        yield OSTiles(*t)


def all_ws_tiles(L: Layer):
    for D, C in itertools.product(range(1, L.dg + 1), range(1, L.cg + 1)):
        yield WSTiles(D, C)


def test_lb_below_every_closed_form_tile_at_its_own_footprint():
    """The tightest case: M = the tile's footprint (the smallest Buffer in which it runs), and a bit more."""
    rng = random.Random(5)
    rows, Ms, Qs, As = [], [], [], []
    for _ in range(250):
        L = random_layer(rng, small=True)
        for parts in [os_parts(L, t) for t in all_os_tiles(L)] + [ws_parts(L, t) for t in all_ws_tiles(L)]:
            for M in (parts["footprint"], parts["footprint"] + 1, 2 * parts["footprint"]):
                rows.append([getattr(L, f) for f in FIELDS])
                Ms.append(max(M_MIN, M)); Qs.append(parts["Q"]); As.append(parts["A"])
    assert len(Ms) > 20_000
    arr = np.array(rows, dtype=np.int64)
    lb = lower_bound_np({f: arr[:, i] for i, f in enumerate(FIELDS)}, np.array(Ms))
    assert np.all(lb["Q"] <= np.array(Qs)) and np.all(lb["A"] <= np.array(As))
    assert np.mean(lb["Q"] == np.array(Qs)) > 0.01  # the bound is attained somewhere


def test_lb_below_executed_dataflows():
    rng = random.Random(9)
    for t in range(40):
        L = random_layer(rng, small=True)
        x, w = random_operands(L, seed=t)
        ref = conv2d_numpy(L, x, w)
        os_t = rng.choice(list(all_os_tiles(L)))
        ws_t = rng.choice(list(all_ws_tiles(L)))
        for run, tiles, parts in ((run_os, os_t, os_parts(L, os_t)), (run_ws, ws_t, ws_parts(L, ws_t))):
            M = max(M_MIN, parts["footprint"])
            y, cnt = run(L, tiles, M, x, w)
            np.testing.assert_allclose(y, ref)
            lb = lower_bound(L, Machine(M=M))
            assert lb.Q <= cnt.Q and lb.A <= cnt.A and lb.F == cnt.F


layer_strategy = st.builds(
    lambda g, cg, dg, hw, k, s, pad, b, M: (g, cg, dg, hw, k, s, pad, b, M),
    st.sampled_from([1, 1, 1, 2, 4, 32]), st.integers(1, 128), st.integers(1, 128),
    st.integers(1, 112), st.sampled_from([1, 3, 5, 7, 11]), st.sampled_from([1, 1, 2, 4]),
    st.integers(0, 5), st.sampled_from([1, 1, 2, 8]), st.sampled_from([256, 1024, 4096, 16384, 65536, 262144]))


@settings(max_examples=400, deadline=None)
@given(layer_strategy)
def test_lb_below_best_dataflows_property(p):
    g, cg, dg, hw, k, s, pad, b, M = p
    k = min(k, hw + 2 * min(pad, k - 1))
    L = Layer.conv(g * cg, g * dg, hw, k, stride=s, pad=min(pad, k - 1), b=b, groups=g)
    lb = lower_bound(L, Machine(M=M))
    for best in (os_best, ws_best):
        try:
            c = best(L, Machine(M=M))
        except InfeasibleError:
            continue
        assert lb.Q <= c.Q and lb.A <= c.A and lb.E <= c.E


def random_realistic_arrays(n: int, seed: int) -> tuple[dict, np.ndarray]:
    """n random valid (layer, M) pairs as arrays: CNN-like shapes, groups, strides, padding, batch."""
    r = np.random.default_rng(seed)
    g = r.choice([1, 1, 1, 2, 4, 8], n)
    dw = r.random(n) < 0.1
    cg = np.where(dw, 1, r.integers(1, 257, n))
    dg = np.where(dw, 1, r.integers(1, 257, n))
    g = np.where(dw, r.integers(8, 513, n), g)
    h = r.integers(1, 225, n)
    w = np.where(r.random(n) < 0.8, h, r.integers(1, 225, n))
    kh = r.choice([1, 1, 3, 3, 5, 7, 11], n)
    kw = np.where(r.random(n) < 0.9, kh, r.choice([1, 3], n))
    kh, kw = np.minimum(kh, h + 2 * (kh - 1)), np.minimum(kw, w + 2 * (kw - 1))
    sh = r.choice([1, 1, 1, 2, 4], n)
    sw = np.where(r.random(n) < 0.9, sh, r.choice([1, 2], n))
    ph = (r.random(n) * kh).astype(np.int64)
    pw = (r.random(n) * kw).astype(np.int64)
    kh, kw = np.minimum(kh, h + 2 * ph), np.minimum(kw, w + 2 * pw)
    ph, pw = np.minimum(ph, kh - 1), np.minimum(pw, kw - 1)
    P = {"b": r.choice([1, 1, 1, 2, 4, 32], n), "c": g * cg, "d": g * dg, "h": h, "w": w, "kh": kh, "kw": kw,
         "sh": sh, "sw": sw, "ph": ph, "pw": pw, "groups": g}
    P = {k_: np.asarray(v, dtype=np.int64) for k_, v in P.items()}
    M = (2 ** r.uniform(8, 20, n)).astype(np.int64)
    return P, M


def test_lb_below_min_dataflow_on_1e5_random_layers():
    P, M = random_realistic_arrays(100_000, seed=2024)
    for i in range(0, 100_000, 997):  # every row is a valid layer
        Layer(**{k: int(v[i]) for k, v in P.items()})
    lb = lower_bound_np(P, M)
    os_, ws_ = os_best_np(P, M), ws_best_np(P, M)
    best = np.minimum(os_["Q"], ws_["Q"])
    feasible = np.isfinite(best)
    assert feasible.mean() > 0.9
    assert np.all(lb["Q"][feasible] <= best[feasible])
    assert np.all(lb["A"][feasible] <= np.minimum(os_["A"], ws_["A"])[feasible])
    np.testing.assert_array_equal(lb["F"], os_["F"])


@pytest.mark.parametrize("layer", [
    Layer.conv(16, 32, 14, 3, pad=1), Layer.conv(8, 8, 15, 3, stride=2), Layer.conv(12, 12, 9, 3, pad=1, groups=12),
    Layer.conv(3, 16, 31, 5, stride=4, pad=2), Layer.fc(256, 100, b=4), Layer.conv(6, 4, 10, 1, stride=3, b=2)])
def test_large_buffer_lb_equals_os_equals_compulsory(layer):
    m = Machine(M=layer.X + layer.W + layer.Y + 10 ** 4)
    lb, os_ = lower_bound(layer, m), os_best(layer, m)
    assert lb.Q == os_.Q == layer.X_used + layer.W + layer.Y
    assert lb.A == os_.A and lb.E == os_.E
    if layer.X_used == layer.X:
        assert lb.Q == layer.X + layer.W + layer.Y
