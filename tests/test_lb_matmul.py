"""The entry-phase capacity term (docs/theory.md, 3.2-3.6): matrix products and strided layers.

- the closed form of the light taps (residue classes of the taps) equals its loop;
- the per-phase lemma with residue classes holds on random touched sets, including the
  issue's example where q = (k/s)^2 would be false;
- fully-connected layers: Q_LB >= 2M (ceil(F / M^1.5) - 1) >= 2F/sqrt(M) - 2M (Smith et al.),
  binding and exact on 4096^3; the stronger "+|Y|" form is refuted by a real execution;
- no execution is below the bound: blocked matrix products that spill and reload
  partial sums, the OS/WS executors, and every closed-form OS/WS tile of small strided
  layers at its own footprint, in the cases where the capacity term binds;
- the new term is never below the old one; the linear count never binds; symbolic ==
  numeric == vectorized.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random

import numpy as np
import pytest
import sympy as sp

from bounds import symbols as sy
from bounds.executor_os import run_os
from bounds.executor_ws import run_ws
from bounds.lower_bound import (M_MIN, S_FACTORS, _S_of, class_weight_1d_np, lb_expressions, light_taps_1d_expr,
                                light_taps_1d_np, lower_bound, lower_bound_np, real_taps_1d_np)
from bounds.machine_sim import TwoLevelMachine
from bounds.output_stationary import OSTiles, os_best, os_parts
from bounds.reference_conv import conv2d_numpy, random_operands
from bounds.weight_stationary import WSTiles, ws_best, ws_parts
from complexity.layer import Layer, out_size
from complexity.machine import Machine

FIELDS = ("b", "c", "d", "h", "w", "kh", "kw", "sh", "sw", "ph", "pw", "groups")


def arrays(layers):
    return {f: np.array([getattr(L, f) for L in layers], dtype=np.int64) for f in FIELDS}


def light_taps_loop(n, k, s, p):
    """(output, tap) pairs with a real input and a tap r with r mod s >= k mod s (a light class)."""
    m, e = out_size(n, k, s, p), k % s
    return sum(1 for o in range(m) for r in range(k) if 0 <= o * s - p + r < n and r % s >= e)


# ----- residue classes of the taps ---------------------------------------------------

def test_light_taps_closed_form_matches_the_loop():
    cases = [(n, k, s, p) for n, k, s in itertools.product(range(1, 15), range(1, 8), range(1, 7))
             for p in range(k) if k <= n + 2 * p]
    assert len(cases) > 2000
    got = light_taps_1d_np(*np.array(cases).T)
    np.testing.assert_array_equal(got, [light_taps_loop(*c) for c in cases])
    N, K, S_, P_ = sp.symbols("n k s p", integer=True, positive=True)
    e = light_taps_1d_expr(N, K, S_, P_)
    for c in cases[::41]:
        assert int(e.xreplace(dict(zip((N, K, S_, P_), map(sp.Integer, c))))) == light_taps_loop(*c)


def _phi(T, q, Wg):
    return math.sqrt(q) * ((T / 3) ** 1.5 if T <= 3 * Wg else math.sqrt(Wg) * (T - Wg) / 2)


def _class_weighted_macs(L: Layer, X, Wt, Y):
    """Sum over the real MACs among the touched words of sqrt(q / q_rho) (rho: the residue class of the tap)."""
    q1h, q1w = -(-L.kh // L.sh), -(-L.kw // L.sw)
    qh = [len(range(r % L.sh, L.kh, L.sh)) for r in range(L.kh)]  # taps of the class of tap r
    qw = [len(range(r % L.sw, L.kw, L.sw)) for r in range(L.kw)]
    tot, plain = 0.0, 0
    for (n, o, i, j) in Y:
        grp = o // L.dg
        for ci, r, s in itertools.product(range(L.cg), range(L.kh), range(L.kw)):
            yy, xx = i * L.sh - L.ph + r, j * L.sw - L.pw + s
            if (o, ci, r, s) in Wt and (n, grp * L.cg + ci, yy, xx) in X:
                tot += math.sqrt(q1h / qh[r] * q1w / qw[s])
                plain += 1
    return tot, plain


def test_residue_class_phase_lemma_on_random_touched_sets():
    """sum over MACs of sqrt(q/q_rho) <= phi(T) for any touched sets (docs/theory.md, 3.2)."""
    rng = random.Random(21)
    checked = 0
    for _ in range(300):
        k, s = rng.choice([2, 3, 4, 5]), rng.choice([1, 2, 2, 3])
        kw, sw = rng.choice([1, k]), rng.choice([1, s])
        try:
            L = Layer(b=rng.choice([1, 2]), c=rng.choice([1, 2]), d=rng.choice([1, 2]), h=rng.randint(k, 9),
                      w=rng.randint(kw, 9), kh=k, kw=kw, sh=s, sw=sw, ph=rng.randint(0, k - 1),
                      pw=rng.randint(0, kw - 1), groups=1)
        except Exception:
            continue
        allX = list(itertools.product(range(L.b), range(L.c), range(L.h), range(L.w)))
        allW = list(itertools.product(range(L.d), range(L.cg), range(L.kh), range(L.kw)))
        allY = list(itertools.product(range(L.b), range(L.d), range(L.nh), range(L.nw)))
        for dens in (0.3, 0.7, 1.0):
            X = {x for x in allX if rng.random() < dens}
            Wt = {w for w in allW if rng.random() < dens}
            Y = {y for y in allY if rng.random() < dens}
            if rng.random() < 0.5:  # a structured set: one parity of the inputs, the heavy taps only
                X = {x for x in X if (x[2] + L.ph) % L.sh == 0}
                Wt = {w for w in Wt if w[2] % L.sh == 0}
            T = len(X) + len(Wt) + len(Y)
            tot, plain = _class_weighted_macs(L, X, Wt, Y)
            q = -(-L.kh // L.sh) * -(-L.kw // L.sw)
            assert tot <= _phi(T, q, L.dg * L.cg * L.kh * L.kw) * (1 + 1e-12) + 1e-9, (L, T, tot)
            assert plain <= tot + 1e-9
            checked += 1
    assert checked > 600


def test_the_issue_example_breaks_q_equal_to_k_over_s_squared_but_not_the_classes():
    """k = 3, s = 2, taps {0, 2}: 2P MACs on P outputs and P + 1 inputs (one axis)."""
    P = 20
    L = Layer(b=1, c=1, d=1, h=2 * P + 1, w=1, kh=3, kw=1, sh=2, sw=1, ph=0, pw=0, groups=1)
    assert L.nh == P
    X = {(0, 0, 2 * i, 0) for i in range(P + 1)}
    Wt = {(0, 0, 0, 0), (0, 0, 2, 0)}
    Y = {(0, 0, i, 0) for i in range(P)}
    tot, plain = _class_weighted_macs(L, X, Wt, Y)
    assert plain == 2 * P and tot == pytest.approx(2 * P)  # taps {0, 2} are the heavy class: weight 1
    assert plain > math.sqrt(1.5 * len(Y) * len(Wt) * len(X))  # q = k/s = 1.5 per axis would be false
    assert tot <= math.sqrt(2 * len(Y) * len(Wt) * len(X))    # q = ceil(k/s) = 2 holds


def test_F_q_weights_the_light_classes():
    L = Layer.conv(128, 128, 56, 3, stride=2, pad=1)  # ResNet-50 layer2.0.conv2
    parts = lower_bound(L, Machine(M=16384)).parts
    t = int(real_taps_1d_np(56, 3, 2, 1))
    lo = int(light_taps_1d_np(56, 3, 2, 1))
    assert (t, lo) == (83, 28)  # tap 1 is the light class (1 tap); taps {0, 2} the heavy one
    tau = t + lo * (math.sqrt(2) - 1)
    F_q = 128 * 128 * tau * tau
    assert F_q / parts["F_real"] == pytest.approx((tau / t) ** 2) and (tau / t) ** 2 > 1.29
    assert float(class_weight_1d_np(3, 1)) == 0.0 and float(class_weight_1d_np(4, 2)) == 0.0
    assert float(class_weight_1d_np(3, 5)) == 0.0  # s > k: every class has <= 1 tap


# ----- fully-connected layers: the matrix-product bound -------------------------------

@pytest.mark.parametrize("M", [1024, 4096])
def test_fc_4096_cubed_binds_at_exactly_2F_over_sqrt_M_minus_2M(M):
    L = Layer.fc(4096, 4096, b=4096)
    c = lower_bound(L, Machine(M=M))
    assert L.F % round(M ** 1.5) == 0
    want = 2 * M * (L.F // round(M ** 1.5) - 1)  # S = 2M, k = F / M^1.5 phases
    assert want == 2 * L.F // math.isqrt(M) - 2 * M
    assert c.Q == c.parts["Q_cap"] == want and c.parts["S"] == 2 * M
    assert c.parts["Q_cap"] > c.parts["Q_comp"]


def test_fc_and_1x1_layers_are_at_least_smith_et_al():
    """Q_LB >= 2M (ceil(F_real / (sqrt(q) M^1.5)) - 1) >= 2 F_real / sqrt(q M) - 2M on every layer."""
    r = np.random.default_rng(5)
    n = 20_000
    fc = r.random(n) < 0.5
    k = np.where(fc, 1, r.choice([1, 1, 3, 5], n))
    s = np.where(k == 1, r.choice([1, 1, 2], n), r.choice([1, 2], n))
    hw = np.where(fc, 1, r.integers(1, 60, n))
    k = np.minimum(k, hw)
    g = np.where(r.random(n) < 0.2, 4, 1)
    P = {"b": r.integers(1, 600, n), "c": g * r.integers(1, 600, n), "d": g * r.integers(1, 600, n), "h": hw,
         "w": hw, "kh": k, "kw": k, "sh": s, "sw": s, "ph": np.zeros(n, dtype=np.int64),
         "pw": np.zeros(n, dtype=np.int64), "groups": g}
    P = {f: np.asarray(v, dtype=np.int64) for f, v in P.items()}
    M = (2 ** r.uniform(2, 17, n)).astype(np.int64)
    Q = lower_bound_np(P, M)["Q"]
    m = (P["h"] - k) // s + 1
    F = (P["b"] * P["d"] * (P["c"] // g) * (m * k) ** 2).astype(np.float64)  # no padding: F_real = F
    q = ((k + s - 1) // s) ** 2
    smith = 2 * F / np.sqrt(q * M) - 2 * M
    v = F / (np.sqrt(q) * M ** 1.5)
    # with the code's rounding margin: every ceil is taken of v - 1e-9 |v| (it can only lower the bound)
    assert np.all(Q >= 2 * M * (np.ceil(v * (1 - 1e-9)) - 1))
    assert np.all(Q >= smith - 2e-9 * F / np.sqrt(q * M))
    assert np.mean(Q < 1.02 * np.maximum(smith, 0)) > 0.1  # ... and often close to it


def test_the_stronger_form_with_Y_added_is_refuted_by_an_execution():
    """'2F/sqrt(M) - 2M loads plus |Y| stores' is false here: WS runs c = 1 below it (each output has one MAC)."""
    L, M = Layer.fc(1, 64, b=64), 16
    claim = 2 * L.F / math.sqrt(M) - 2 * M + L.Y
    x, w = random_operands(L, seed=1)
    y, cnt = run_ws(L, WSTiles(13, 1), M, x, w)
    np.testing.assert_allclose(y, conv2d_numpy(L, x, w))
    assert cnt.Q == 4480 < claim == 6112
    assert lower_bound(L, Machine(M=M)).Q <= cnt.Q


# ----- no execution below the bound where the capacity term binds --------------------

def run_blocked_matmul(L: Layer, M: int, Bb: int, Bd: int, Bc: int, x, w, c_outer: bool):
    """C = A B blocked Bb x Bd x Bc; with ``c_outer`` the partial sums are spilled and reloaded per c-block."""
    m = TwoLevelMachine.for_layer(L, M, x, w)
    blocks = [(b0, d0, c0) for b0 in range(0, L.b, Bb) for d0 in range(0, L.d, Bd) for c0 in range(0, L.c, Bc)]
    if c_outer:
        blocks.sort(key=lambda t: (t[2], t[0], t[1]))
    for b0, d0, c0 in blocks:
        bs, ds, cs = range(b0, min(L.b, b0 + Bb)), range(d0, min(L.d, d0 + Bd)), range(c0, min(L.c, c0 + Bc))
        for n, o in itertools.product(bs, ds):
            if c0 > 0 and not m.resident(("Y", n, o, 0, 0)):
                m.load(("Y", n, o, 0, 0))  # a reload of a partial sum is a load
        for n, ci in itertools.product(bs, cs):
            m.load(("X", n, ci, 0, 0))
        for o, ci in itertools.product(ds, cs):
            m.load(("W", o, ci, 0, 0))
        for n, o, ci in itertools.product(bs, ds, cs):
            m.mac(("Y", n, o, 0, 0), ("W", o, ci, 0, 0), ("X", n, ci, 0, 0))
        for key in [("X", n, ci, 0, 0) for n in bs for ci in cs] + [("W", o, ci, 0, 0) for o in ds for ci in cs]:
            m.evict(key)
        last = c0 + Bc >= L.c
        if c_outer or last:
            for n, o in itertools.product(bs, ds):
                m.store(("Y", n, o, 0, 0))
    return m.output(L), m.counts()


def test_blocked_matrix_products_with_spilled_partial_sums_are_above_the_bound():
    checked = binding = 0
    for (b, c, d), M in itertools.product([(8, 8, 8), (10, 6, 8), (6, 10, 9)], (8, 12, 16)):
        L = Layer.fc(c, d, b=b)
        x, w = random_operands(L, seed=b + c + d)
        ref = conv2d_numpy(L, x, w)
        lb = lower_bound(L, Machine(M=M))
        binding += lb.parts["Q_cap"] > lb.parts["Q_comp"]
        sizes = [1, 2, 3, 4, 6]
        for Bb, Bd, Bc in itertools.product(sizes, sizes, sizes):
            if Bb * Bc + Bd * Bc + Bb * Bd > M:
                continue
            for c_outer in (False, True):
                y, cnt = run_blocked_matmul(L, M, Bb, Bd, Bc, x, w, c_outer)
                np.testing.assert_allclose(y, ref)
                assert lb.Q <= cnt.Q, (L, M, Bb, Bd, Bc, c_outer)
                checked += 1
    assert checked > 300 and binding >= 6


def test_executors_above_the_bound_on_fc_and_strided_layers_where_the_capacity_term_binds():
    cases = [(Layer.fc(12, 12, b=12), 16), (Layer.fc(10, 20, b=8), 24),
             (Layer.conv(8, 8, 15, 3, stride=2), 63), (Layer.conv(4, 6, 13, 3, stride=2, pad=1), 57),
             (Layer.conv(6, 6, 21, 3, stride=2, pad=1), 81)]
    for L, M in cases:
        lb = lower_bound(L, Machine(M=M))
        assert lb.parts["Q_cap"] > lb.parts["Q_comp"], L
        x, w = random_operands(L, seed=3)
        ref = conv2d_numpy(L, x, w)
        o, ws = os_best(L, Machine(M=M)), ws_best(L, Machine(M=M))
        for run, tiles in ((run_os, OSTiles(**{"Bt": o.tiles["b"], "D": o.tiles["d"], "Th": o.tiles["th"],
                                               "Tw": o.tiles["tw"], "C": o.tiles["c"]})),
                           (run_ws, WSTiles(ws.tiles["d"], ws.tiles["c"]))):
            y, cnt = run(L, tiles, M, x, w)
            np.testing.assert_allclose(y, ref)
            assert lb.Q <= cnt.Q and lb.A <= cnt.A, (L, M, tiles)


def test_every_tile_of_small_strided_layers_at_its_own_footprint_is_above_the_bound():
    """The tightest Buffers: M = the tile's footprint (and one word more); strides 2-3 exercise F_q."""
    rng = random.Random(17)
    rows, Ms, Qs = [], [], []
    for _ in range(60):
        k, s = rng.choice([3, 4, 5]), rng.choice([2, 3])
        L = Layer(b=rng.choice([1, 2]), c=rng.randint(4, 12), d=rng.randint(4, 12), h=rng.randint(k, 24),
                  w=rng.randint(k, 24), kh=k, kw=rng.choice([k, 3]), sh=s, sw=rng.choice([s, 2]),
                  ph=rng.randint(0, k - 1), pw=rng.randint(0, 2), groups=1)
        os_tiles = [OSTiles(*t) for t in itertools.product(range(1, L.b + 1), range(1, L.dg + 1), range(1, L.nh + 1),
                                                          range(1, L.nw + 1), range(1, L.cg + 1))]
        tiles = [os_parts(L, t) for t in rng.sample(os_tiles, min(300, len(os_tiles)))]
        tiles += [ws_parts(L, WSTiles(D, C)) for D, C in itertools.product(range(1, L.dg + 1), range(1, L.cg + 1))]
        for p in tiles:
            for M in (p["footprint"], p["footprint"] + 1):
                rows.append([getattr(L, f) for f in FIELDS]); Ms.append(max(M_MIN, M)); Qs.append(p["Q"])
    arr = np.array(rows, dtype=np.int64)
    P = {f: arr[:, i] for i, f in enumerate(FIELDS)}
    from bounds.lower_bound import _lb_parts
    parts = _lb_parts(P, np.array(Ms))
    lb = lower_bound_np(P, np.array(Ms))["Q"]
    assert len(Ms) > 30_000
    assert np.all(lb <= np.array(Qs))
    assert np.mean(parts["Q_cap"] > parts["Q_comp"]) > 0.05  # the capacity term binds in thousands of them
    assert np.mean(parts["F_q"] > parts["F_real"]) > 0.5    # ... and F_q > F_real there


# ----- exact optimum of tiny layers (every execution) -------------------------------

def _mac_table(L):
    macs = []
    for n, o in itertools.product(range(L.b), range(L.d)):
        grp = o // L.dg
        for ci, i, j, r, s in itertools.product(range(L.cg), range(L.nh), range(L.nw), range(L.kh), range(L.kw)):
            yy, xx = i * L.sh - L.ph + r, j * L.sw - L.pw + s
            c = grp * L.cg + ci
            xk = ("X", n, c, yy, xx) if 0 <= yy < L.h and 0 <= xx < L.w else None
            macs.append((("Y", n, o, i, j), ("W", o, ci, r, s), xk))
    return macs


def exact_min_Q(L, M, limit=2_000_000):
    """The least Q over all executions of ``L`` on a Buffer of ``M`` words (Dijkstra over Buffer states).

    Dominance reductions (each keeps an optimal execution): a MAC whose three words are
    resident is done at once; a finished output is stored at once; a word with no MAC left
    is dropped at once; a word is dropped only to make room for one that enters.
    """
    macs = _mac_table(L)
    words = sorted({k for m in macs for k in m if k is not None})
    idx = {w: i for i, w in enumerate(words)}
    F = len(macs)
    mw = [(idx[y], idx[w], None if x is None else idx[x]) for y, w, x in macs]
    is_y = [w[0] == "Y" for w in words]
    uses = [0] * len(words)  # MAC bitmask of each word
    for i, (y, w, x) in enumerate(mw):
        for u in (y, w, x):
            if u is not None:
                uses[u] |= 1 << i
    full = (1 << F) - 1

    def settle(done, res, cost):
        while True:
            changed = False
            for i, (y, w, x) in enumerate(mw):
                if not (done >> i) & 1 and (res >> y) & 1 and (res >> w) & 1 and (x is None or (res >> x) & 1):
                    done |= 1 << i
                    changed = True
            for u in range(len(words)):
                if (res >> u) & 1 and (uses[u] & ~done) == 0:
                    res &= ~(1 << u)
                    cost += is_y[u]  # a finished output is stored; an input/weight is dropped
            if not changed:
                return done, res, cost

    def victims(res):
        for v in range(len(words)):
            if (res >> v) & 1:
                yield v, int(is_y[v])  # dropping a partial sum costs its store

    dist = {}
    heap = [(0, 0, 0)]
    seen = 0
    while heap:
        d, done, res = heapq.heappop(heap)
        if dist.get((done, res), 1 << 60) < d:
            continue
        if done == full:
            return d
        seen += 1
        if seen > limit:
            raise RuntimeError("state limit")
        occ = bin(res).count("1")
        entries = []  # (cost, word entering, MAC done on entry or None)
        for u in range(len(words)):
            if (res >> u) & 1 or (uses[u] & ~done) == 0:
                continue
            if is_y[u]:
                if uses[u] & done:
                    entries.append((1, u, None))  # reload a partial sum
            else:
                entries.append((1, u, None))
        for i, (y, w, x) in enumerate(mw):  # create a partial sum by its first MAC
            if not (uses[y] & done) and (res >> w) & 1 and (x is None or (res >> x) & 1):
                entries.append((0, y, i))
        for c, u, mac in entries:
            opts = [(0, res)] if occ < M else [(vc, res & ~(1 << v)) for v, vc in victims(res)
                                               if mac is None or v not in (mw[mac][1], mw[mac][2])]
            for vc, r0 in opts:
                dn = done | (1 << mac) if mac is not None else done
                dn, rs, extra = settle(dn, r0 | (1 << u), d + c + vc)
                if extra < dist.get((dn, rs), 1 << 60):
                    dist[(dn, rs)] = extra
                    heapq.heappush(heap, (extra, dn, rs))
    raise RuntimeError("no execution")

def test_exact_optimum_of_a_tiny_matrix_product_is_above_the_bound():
    """All executions of the 2 x 2 x 2 product: the optimum is 17 (M = 3) and 14 (M = 4), Q_LB = 12."""
    L = Layer.fc(2, 2, b=2)
    x, w = random_operands(L, seed=2)
    for M, want in ((3, 17), (4, 14)):
        opt = exact_min_Q(L, M)
        assert opt == want >= lower_bound(L, Machine(M=M)).Q == L.X + L.W + L.Y == 12
        # the search misses no execution: a blocked product is not below it
        y, cnt = run_blocked_matmul(L, M, 1, 1, 1, x, w, c_outer=False)
        assert opt <= cnt.Q


# ----- the new term against the old, the linear count, symbolic == numeric -----------

def _old_cap(P, M):
    """The capacity term before the entry phases (load+store phases, T_j <= M - r_j + r_{j+1} + S)."""
    from bounds.lower_bound import _lb_parts
    parts = _lb_parts(P, M)
    L = {f: np.asarray(P[f], dtype=np.int64) for f in FIELDS}
    q = parts["q"].astype(float)
    Wg = (L["d"] // L["groups"] * (L["c"] // L["groups"]) * L["kh"] * L["kw"]).astype(float)
    Fr, Mf = parts["F_real"].astype(float), np.asarray(M, dtype=float)

    def phi(T):
        return np.sqrt(q) * np.where(T <= 3 * Wg, (T / 3) ** 1.5, np.sqrt(Wg) * (T - Wg) / 2)

    cap = np.zeros_like(Fr)
    for f in S_FACTORS:
        S = _S_of(f, np.asarray(M)).astype(float)
        a, b = phi(2 * Mf + S), phi(S)
        k = np.ceil((2 * Fr - a + b) / (a + b) * (1 - 1e-9))
        cap = np.maximum(cap, S * (np.maximum(k, 1) - 1))
    return cap, parts


def test_the_entry_phase_term_is_never_below_the_old_term():
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from bench_bounds import random_pairs
    P, M = random_pairs(100_000, seed=3)
    old, parts = _old_cap(P, M)
    assert np.all(parts["Q_cap"] >= old)
    assert np.mean(parts["Q_cap"] > old) > 0.2
    assert np.all(parts["F_q"] >= parts["F_real"] * (1 - 1e-12))


def test_the_linear_count_never_binds():
    """F_real / lambda <= Q_comp, so S (ceil(F_real / (lambda (M + S))) - 1) < Q_comp (docs/theory.md, 3.5)."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from bench_bounds import random_pairs
    P, M = random_pairs(100_000, seed=4)
    from bounds.lower_bound import _lb_parts
    p = _lb_parts(P, M)
    L = {f: np.asarray(P[f], dtype=np.int64) for f in FIELDS}
    nh = (L["h"] + 2 * L["ph"] - L["kh"]) // L["sh"] + 1
    nw = (L["w"] + 2 * L["pw"] - L["kw"]) // L["sw"] + 1
    cg, dg = L["c"] // L["groups"], L["d"] // L["groups"]
    Fr = p["F_real"].astype(float)
    lin = Fr / (L["b"] * nh * nw) + Fr / (cg * L["kh"] * L["kw"]) + Fr / (p["q"] * dg)
    assert np.all(lin <= p["Q_comp"] * (1 + 1e-12))


def test_symbolic_equals_numeric_on_strided_layers():
    e = lb_expressions()
    rng = random.Random(8)
    layers = []
    for _ in range(12):
        k, s = rng.choice([3, 5, 7]), rng.choice([2, 3, 4])
        hw = rng.randint(k, 60)
        layers.append(Layer.conv(rng.randint(1, 96), rng.randint(1, 96), hw, k, stride=s, pad=rng.randint(0, k - 1),
                                 b=rng.choice([1, 2])))
    for L in layers:
        M = rng.choice([64, 1024, 16384])
        sub = {sy.LAYER_SYMBOLS[f]: sp.Integer(getattr(L, f)) for f in FIELDS} | {sy.M: sp.Integer(M)}
        c = lower_bound(L, Machine(M=M))
        assert int(e["Q_cap"].xreplace(sub)) == c.parts["Q_cap"], (L, M)
        assert int(e["Q"].xreplace(sub)) == c.Q
        assert float(e["F_q"].xreplace(sub)) == pytest.approx(_F_q(L), rel=1e-12)
    r = lower_bound_np(arrays(layers), np.full(len(layers), 4096))
    for i, L in enumerate(layers):
        assert r["Q"][i] == lower_bound(L, Machine(M=4096)).Q


def _F_q(L: Layer) -> float:
    from bounds.lower_bound import _lb_parts
    return float(_lb_parts(arrays([L]), M_MIN)["F_q"][0])
