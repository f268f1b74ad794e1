"""Bounded, exact searches at any size (issue 10): each fast search against the old exhaustive one.

The old algorithms are kept here verbatim (brute force over 1..n, dense grids) as references:
the new searches must give the same optimum wherever the old ones ran, and finish with
small memory where they did not.
"""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest

from bounds import api
from bounds import lower_bound as lbmod
from bounds import output_stationary as osm
from bounds import weight_stationary as wsm
from bounds.ops import IntOps, ceil_classes
from bounds.result import InfeasibleError
from complexity.layer import Layer
from complexity.machine import Machine
from estimation import row_stationary as rs

FIELDS = ("b", "c", "d", "h", "w", "kh", "kw", "sh", "sw", "ph", "pw", "groups")


# ----------------------------------------------------------------------------------------
# The old exhaustive searches (before issue 10), verbatim up to names: dense over 1..n.
# ----------------------------------------------------------------------------------------
def _old_pareto_axis(n, k, s, p, o) -> dict:
    T = np.arange(1, o + 1, dtype=np.int64)
    a = osm._axis(IntOps, np.int64(n), np.int64(k), np.int64(s), np.int64(p), T)
    keys = ("N", "R", "thF", "RF", "thL", "RL")
    V = np.stack([np.broadcast_to(a[q], T.shape) for q in keys], axis=1)
    _, first = np.unique(V, axis=0, return_index=True)
    keep = np.sort(first)
    V = V[keep]
    le = (V[:, None, :] <= V[None, :, :]).all(axis=2)
    dominated = (le & ~np.eye(len(V), dtype=bool)).any(axis=0)
    sel = keep[~dominated]
    out = {q: np.broadcast_to(a[q], T.shape)[sel] for q in keys}
    out["T"] = T[sel]
    return out


def _old_classes(n: int) -> np.ndarray:
    x = np.arange(1, n + 1, dtype=np.int64)
    N = np.unique(-((-n) // x))
    return np.unique(-((-n) // N))


def _old_os_search(L: Layer, M: int):
    """The old OS search: every D class x the dense Pareto grid of (Th, Tw); returns (Q, footprint) or None."""
    ah = _old_pareto_axis(L.h, L.kh, L.sh, L.ph, L.nh)
    aw = _old_pareto_axis(L.w, L.kw, L.sw, L.pw, L.nw)
    k2 = L.kh * L.kw
    best = None
    H = {q: v[:, None] for q, v in ah.items()}
    Wd = {q: v[None, :] for q, v in aw.items()}
    NN, RR = H["N"] * Wd["N"], H["R"] * Wd["R"]
    for D in _old_classes(L.dg):
        D = int(D)
        room = M - D * k2
        if room <= 0:
            break
        phi = osm._peak_term(IntOps, D, 1, H, Wd)
        bt = np.minimum(room // phi, L.b)
        ok = bt >= 1
        if not ok.any():
            continue
        Nb = -((-L.b) // np.maximum(bt, 1))
        Q = L.Y + Nb * NN * L.W + (-(-L.dg // D)) * L.b * L.c * RR
        Q = np.where(ok, Q, np.iinfo(np.int64).max)
        i = np.unravel_index(np.argmin(Q), Q.shape)
        q = int(Q[i])
        fp = int(-(-L.b // Nb[i])) * int(phi[i]) + D * k2
        if best is None or (q, fp) < best:
            best = (q, fp)
    return best


def _old_ws_search(L: Layer, M: int):
    """The old WS search: the dense grid of D classes x C classes; returns the least Q or None."""
    Li = {f: getattr(L, f) for f in FIELDS}
    Ds = np.unique(-(-L.dg // np.arange(1, L.dg + 1, dtype=np.int64)))[:, None]
    Cs = np.unique(-(-L.cg // np.arange(1, L.cg + 1, dtype=np.int64)))[None, :]
    f = wsm._formulas(Li, Ds, Cs, IntOps)
    fp = np.broadcast_to(f["footprint"], (Ds.size, Cs.size))
    ok = fp <= M
    if not ok.any():
        return None
    return int(np.where(ok, np.broadcast_to(f["Q"], fp.shape), np.iinfo(np.int64).max).min())


def _old_trip_values(n: int) -> np.ndarray:
    ks, seen = [], set()
    for k in range(1, n + 1):
        t = -(-n // k)
        if t not in seen:
            seen.add(t)
            ks.append(k)
    return np.array(ks, dtype=np.int64)


def _random_layer(rng: random.Random, big: bool = False) -> Layer:
    g = rng.choice([1, 1, 1, 2, 4])
    kh, kw = rng.choice([1, 2, 3, 5, 7]), rng.choice([1, 3, 5])
    sh, sw = rng.randint(1, 4), rng.randint(1, 3)
    ph, pw = rng.randint(0, kh - 1), rng.randint(0, kw - 1)
    top = 120 if big else 30
    h = rng.randint(max(1, kh - 2 * ph), top)
    w = rng.randint(max(1, kw - 2 * pw), top)
    return Layer(b=rng.choice([1, 1, 2, 3, 8]), c=g * rng.randint(1, 40), d=g * rng.randint(1, 70 if big else 20),
                 h=h, w=w, kh=kh, kw=kw, sh=sh, sw=sw, ph=ph, pw=pw, groups=g)


# ----------------------------------------------------------------------------------------
def test_ceil_classes_equals_dense_classes():
    for n in list(range(1, 400)) + [997, 1024, 4099, 65536]:
        ref = _old_classes(n)
        assert np.array_equal(ceil_classes(n), ref), n
        for lim in (1, 2, 7, int(n ** 0.5), n // 2, n, 3 * n):
            assert np.array_equal(ceil_classes(n, lim), ref[ref <= lim]), (n, lim)
    big = ceil_classes(10 ** 12)
    assert big.size == 1_999_999 and big[0] == 1 and big[-1] == 10 ** 12
    assert big[-2] == 5 * 10 ** 11 and np.all(np.diff(big) > 0)
    assert ceil_classes(0).size == 0


def test_os_axis_candidates_dominate_every_other_tile_size():
    """Every T outside the candidates is matched by one with no more N, R, and smaller (tile, lines) pairs."""
    rng = random.Random(7)
    checked = 0
    for _ in range(250):
        k = rng.randint(1, 11)
        s, p = rng.randint(1, 5), rng.randint(0, k - 1)
        n = rng.randint(max(1, k - 2 * p), 160)
        o = (n + 2 * p - k) // s + 1
        T = np.arange(1, o + 1, dtype=np.int64)
        a = {q: np.broadcast_to(v, T.shape) for q, v in osm._axis(IntOps, n, k, s, p, T).items()}
        cand = osm._axis_candidates(n, k, s, p, o) - 1
        assert np.all(np.diff(cand) > 0) and cand[0] == 0
        for i in np.setdiff1d(np.arange(o), cand):
            pi = [(a["thF"][i], a["RF"][i]), (a["thL"][i], a["RL"][i])]
            assert any(a["N"][j] <= a["N"][i] and a["R"][j] <= a["R"][i]
                       and all(any(x <= y and r <= q for y, q in pi)
                               for x, r in ((a["thF"][j], a["RF"][j]), (a["thL"][j], a["RL"][j])))
                       for j in cand), (n, k, s, p, int(T[i]))
            checked += 1
    assert checked > 5000


def test_os_exhaustive_equals_old_search_on_random_layers():
    rng = random.Random(11)
    compared = 0
    for i in range(120):
        L = _random_layer(rng, big=i % 3 == 0)
        lo = osm.os_min_M(L)
        full = osm.os_footprint(L, osm.OSTiles(L.b, L.dg, L.nh, L.nw, 1))
        for M in sorted({lo, lo + 1, rng.randint(lo, max(lo, full)), rng.randint(lo, 4 * lo + 50),
                         full, full + 7}):
            old = _old_os_search(L, M)
            new = osm._search(L, M)
            assert old is not None and new is not None
            assert new[0] == old[0], (L, M)          # same least Q
            assert new[1] <= old[1]                    # least footprint among the least-Q tiles
            p = osm.os_parts(L, new[2])
            assert p["Q"] == new[0] and p["footprint"] == new[1] <= M
            compared += 1
        assert osm._search(L, lo - 1) is None and _old_os_search(L, lo - 1) is None
    assert compared >= 500


def test_ws_exhaustive_equals_old_search_on_random_layers():
    rng = random.Random(12)
    compared = 0
    for i in range(150):
        L = _random_layer(rng, big=i % 2 == 0)
        lo = wsm.ws_min_M(L)
        hi = wsm.ws_footprint(L, wsm.WSTiles(L.dg, L.cg))
        for M in sorted({lo, lo + 1, rng.randint(lo, hi), rng.randint(lo, hi), hi, hi + 3}):
            c = wsm.ws_best(L, Machine(M=M))
            t = wsm.WSTiles(c.tiles["d"], c.tiles["c"])
            assert c.Q == _old_ws_search(L, M), (L, M)
            assert wsm.ws_footprint(L, t) <= M and wsm.ws_counts(L, t)[0] == c.Q
            compared += 1
        assert _old_ws_search(L, lo - 1) is None
        with pytest.raises(InfeasibleError):
            wsm.ws_best(L, Machine(M=lo - 1))
    assert compared >= 600


def test_os_batch_equals_one_layer_search():
    rng = random.Random(13)
    rows = [(_random_layer(rng, big=i % 4 == 0)) for i in range(150)]
    Ms = [rng.choice([osm.os_min_M(L) - 1, osm.os_min_M(L), 4 * osm.os_min_M(L), 1 << 14, 1 << 17]) for L in rows]
    P = {f: np.array([getattr(L, f) for L in rows], dtype=np.int64) for f in FIELDS}
    r = osm.os_best_exact_np(P, np.array(Ms, dtype=np.int64))
    for i, (L, M) in enumerate(zip(rows, Ms)):
        old = _old_os_search(L, M)
        if old is None:
            assert not r["fit"][i] and r["Q"][i] == 0
            continue
        assert r["fit"][i] and r["Q"][i] == old[0] and r["footprint"][i] <= old[1]
        t = osm.OSTiles(*(int(r[k][i]) for k in ("Bt", "D", "Th", "Tw", "C")))
        p = osm.os_parts(L, t)
        assert (p["Q"], p["A"], p["F"], p["footprint"]) == (r["Q"][i], r["A"][i], r["F"][i], r["footprint"][i])


# ----- the commands of the issue, at full size ------------------------------------------
def _ws_reference_all_D(L: Layer, M: int) -> int:
    """Least WS Q by a loop over every D = 1..dg with the largest fitting C (dg small, cg any)."""
    K = L.kh * L.kw
    a = wsm.ws_axis_terms(L)
    B = a["window_rows"] * a["used_width"]
    best = None
    for D in range(1, L.dg + 1):
        C = min(L.cg, (M - 1) // (D * K + B))
        if C >= 1:
            q = wsm.ws_counts(L, wsm.WSTiles(D, C))[0]
            best = q if best is None else min(best, q)
    return best


@pytest.mark.parametrize("c", [10 ** 9, 10 ** 12])
def test_huge_channel_count_is_exact_and_small(c):
    L = Layer.conv(c=c, d=64, hw=56, k=3, pad=1)
    m = Machine(M=65536)
    ws = wsm.ws_best(L, m)
    assert ws.Q == _ws_reference_all_D(L, 65536)
    assert (ws.tiles["d"], ws.tiles["c"]) == (64, 88)
    os_ = osm.os_best(L, m)
    assert os_.Q == _old_os_search(L, 65536)[0]       # the old OS search ran here (only WS blew up)
    assert os_.tiles == {"b": 1, "d": 64, "th": 28, "tw": 28, "c": 1}


def test_huge_filters_and_channels_without_a_dense_grid():
    # old: a 19999 x 19999 WS grid (MemoryError) and 20,000 D classes for OS
    L = Layer.conv(c=10 ** 8, d=10 ** 8, hw=7, k=1)
    ws = wsm.ws_best(L, Machine(M=65536))
    t = wsm.WSTiles(ws.tiles["d"], ws.tiles["c"])
    assert wsm.ws_footprint(L, t) <= 65536 and wsm.ws_counts(L, t)[0] == ws.Q
    # closed form: footprint D C + 49 C + 1, Q = W + ceil(dg/D) X + (2 ceil(cg/C) - 1) Y; check its neighbours
    for D in (t.D - 1, t.D + 1, t.D * 2):
        C = min(L.cg, 65535 // (D + 49))
        if D >= 1 and C >= 1:
            assert wsm.ws_counts(L, wsm.WSTiles(D, C))[0] >= ws.Q
    os_ = osm.os_best(L, Machine(M=65536))
    assert os_.Q == 10374340400000000 and os_.tiles == {"b": 1, "d": 1309, "th": 7, "tw": 7, "c": 1}


def test_rs_trip_values_and_search_equal_the_loop_over_1_to_n(monkeypatch):
    for n in list(range(1, 300)) + [4096, 10007]:
        assert np.array_equal(rs._trip_values(n), _old_trip_values(n))
    layers = [Layer.conv(c=c, d=d, hw=hw, k=k, pad=k // 2) for c, d, hw, k in
              ((64, 64, 56, 3), (3, 96, 55, 11), (512, 128, 14, 3), (256, 64, 28, 1), (33, 17, 9, 3))]
    new = [rs.search_mapping(L) for L in layers]
    rs._search.cache_clear()
    rs._block_grid_cached.cache_clear()
    # the reference: every trip value 1..n, no GLB pre-filter
    monkeypatch.setattr(rs, "_block_grid", lambda g, glb, e, mt, ct: tuple(
        v.ravel() for v in np.meshgrid(_old_trip_values(g.N), _old_trip_values(-(-g.M // mt)),
                                       _old_trip_values(-(-g.C // ct)), _old_trip_values(-(-g.E // e)),
                                       indexing="ij")))
    old = [rs.search_mapping(L) for L in layers]
    rs._search.cache_clear()
    assert [(m.to_dict(), x) for m, x in new] == [(m.to_dict(), x) for m, x in old]


def test_rs_search_at_huge_channel_count():
    L = Layer.conv(c=10 ** 12, d=64, hw=56, k=3, pad=1)
    m, _ = rs.search_mapping(L)
    assert m.to_dict() == rs.search_mapping(Layer.conv(c=4096, d=64, hw=56, k=3, pad=1))[0].to_dict()
    from estimation import estimate_layer
    e = estimate_layer(L)
    assert np.isfinite(e.total) and e.total > 0 and e.macs == pytest.approx(L.F)


# ----- lower_bound_np in blocks ------------------------------------------------------------
def _random_table(n: int, seed: int):
    r = np.random.default_rng(seed)
    g = r.choice([1, 1, 2, 4], n)
    kh = r.choice([1, 3, 5, 7], n)
    kw = np.where(r.random(n) < 0.8, kh, r.choice([1, 3], n))
    ph, pw = (r.random(n) * kh).astype(np.int64), (r.random(n) * kw).astype(np.int64)
    h = r.integers(1, 120, n) + kh
    P = {"b": r.choice([1, 2, 8], n), "c": g * r.integers(1, 128, n), "d": g * r.integers(1, 128, n),
         "h": h, "w": np.where(r.random(n) < 0.7, np.maximum(h, kw), r.integers(1, 120, n) + kw), "kh": kh, "kw": kw,
         "sh": r.choice([1, 1, 2], n), "sw": r.choice([1, 1, 2], n), "ph": ph, "pw": pw, "groups": g}
    return {k: np.asarray(v, dtype=np.int64) for k, v in P.items()}, (2 ** r.uniform(1, 20, n)).astype(np.int64)


def test_lower_bound_np_chunked_equals_one_block():
    P, M = _random_table(3 * lbmod._LB_CHUNK + 123, 5)
    a = lbmod.lower_bound_np(P, M)
    b = lbmod._lower_bound_block(P, M)
    for k in ("Q", "A", "F"):
        assert a[k].shape == b[k].shape == M.shape and np.array_equal(a[k], b[k]), k
    assert np.isinf(a["Q"][M < 3]).all() and (M < 3).any()
    # a scalar layer against many M: F keeps the layer's shape, as one call gives
    one = {"c": 64, "d": 64, "h": 56, "w": 56, "kh": 3, "kw": 3, "ph": 1, "pw": 1}
    Ms = np.arange(3, 3 + 2 * lbmod._LB_CHUNK + 5)
    a, b = lbmod.lower_bound_np(one, Ms), lbmod._lower_bound_block(one, Ms)
    assert np.array_equal(a["Q"], b["Q"]) and np.shape(a["F"]) == np.shape(b["F"]) == ()
    assert float(a["F"]) == Layer.conv(c=64, d=64, hw=56, k=3, pad=1).F
    # and each row equals the one-layer bound
    Ls = [Layer(**{f: int(P[f][i]) for f in FIELDS}) for i in (0, 20000, 40000)]
    from bounds.lower_bound import lower_bound
    full = lbmod.lower_bound_np(P, M)
    for i, L in zip((0, 20000, 40000), Ls):
        if M[i] >= 3:
            assert full["Q"][i] == lower_bound(L, Machine(M=int(M[i]))).Q


def test_ws_batch_equals_old_search_and_object_rows():
    rng = random.Random(14)
    rows = [_random_layer(rng, big=i % 2 == 0) for i in range(200)]
    Ms = [rng.choice([wsm.ws_min_M(L) - 1, wsm.ws_min_M(L), 3 * wsm.ws_min_M(L), 1 << 12, 1 << 16]) for L in rows]
    P = {f: np.array([getattr(L, f) for L in rows], dtype=np.int64) for f in FIELDS}
    r = wsm.ws_best_exact_np(P, np.array(Ms, dtype=np.int64))
    for i, (L, M) in enumerate(zip(rows, Ms)):
        old = _old_ws_search(L, M)
        assert bool(r["fit"][i]) == (old is not None)
        if old is not None:
            t = wsm.WSTiles(int(r["d"][i]), int(r["c"][i]))
            assert r["Q"][i] == old == wsm.ws_counts(L, t)[0]
            assert r["footprint"][i] == wsm.ws_footprint(L, t) <= M and r["A"][i] == old + 3 * L.F
    # a row whose counts leave int64 is done in Python integers, exactly
    L = Layer.conv(c=10 ** 15, d=10 ** 6, hw=56, k=3, pad=1)
    P = {f: np.array([getattr(L, f)], dtype=np.int64) for f in FIELDS}
    r = wsm.ws_best_exact_np(P, np.array([1 << 20]))
    t = wsm.WSTiles(int(r["d"][0]), int(r["c"][0]))
    assert r["Q"].dtype == object and r["Q"][0] == wsm.ws_counts(L, t)[0] > 2 ** 63
    assert r["Q"][0] == _ws_reference_by_classes(L, 1 << 20)


def _ws_reference_by_classes(L: Layer, M: int) -> int:
    """Least WS Q in Python integers over every D class with its largest fitting C."""
    K = L.kh * L.kw
    a = wsm.ws_axis_terms(L)
    B = a["window_rows"] * a["used_width"]
    best = None
    for D in _old_classes(L.dg):
        C = min(L.cg, (M - 1) // (int(D) * K + B))
        if C >= 1:
            q = wsm.ws_counts(L, wsm.WSTiles(int(D), C))[0]
            best = q if best is None else min(best, q)
    return best


# ----- evaluate_table: exact at any size, integer counts, best tiles -------------------------
def test_evaluate_table_is_exact_beyond_the_old_row_limit():
    P, M = _random_table(6000, 8)
    M = np.maximum(M, 1 << 9)
    df = pd.DataFrame({**P, "M": M})
    assert len(df.drop_duplicates()) > 5000           # the old code went approximate here, silently
    out = api.evaluate_table(df)
    fast = api.evaluate_table(df, exact=False)
    assert list(out.columns) == list(df.columns) + list(api.TABLE_COLUMNS)
    for key in ("os", "ws"):
        q, qf = out[f"{key}_Q"].to_numpy(dtype=float), fast[f"{key}_Q"].to_numpy(dtype=float)
        assert np.array_equal(np.isinf(q), np.isinf(qf)) and (q <= qf).all()
    rng = random.Random(1)
    for i in rng.sample(range(len(df)), 40):
        row = out.iloc[i]
        L = Layer(**{f: int(row[f]) for f in FIELDS})
        m = Machine(M=int(row["M"]))
        for key, best, parts, tile in (
                ("os", osm.os_best, osm.os_parts,
                 lambda r: osm.OSTiles(r["os_b"], r["os_d"], r["os_th"], r["os_tw"], r["os_c"])),
                ("ws", wsm.ws_best, lambda L, t: wsm.ws_parts(L, t),
                 lambda r: wsm.WSTiles(int(r["ws_d"]), int(r["ws_c"])))):
            try:
                c = best(L, m)
            except InfeasibleError:
                assert np.isinf(row[f"{key}_Q"]) and row[f"{key}_d"] == 0
                continue
            assert (row[f"{key}_Q"], row[f"{key}_A"]) == (c.Q, c.A)
            p = parts(L, tile(row))
            assert p["Q"] == c.Q and p["footprint"] <= m.M


def test_evaluate_table_keeps_counts_integer():
    base = dict(c=64, d=64, h=56, w=56, kh=3, kw=3, ph=1, pw=1)
    all_fit = api.evaluate_table(pd.DataFrame([{**base, "M": M} for M in (4096, 65536)]))
    for col in ("F", "X", "W", "Y", "X_used", "lb_Q", "lb_A", "os_Q", "os_A", "ws_Q", "ws_A", "min_Q", "min_A",
                "os_b", "os_d", "os_th", "os_tw", "os_c", "ws_d", "ws_c"):
        assert all_fit[col].dtype == np.int64, col
    L = Layer.conv(c=64, d=64, hw=56, k=3, pad=1)
    ws = wsm.ws_best(L, Machine(M=65536))
    assert all_fit["ws_Q"].iloc[1] == ws.Q and (all_fit["ws_d"].iloc[1], all_fit["ws_c"].iloc[1]) == (64, 64)
    # WS does not fit in 100 words (its smallest tile needs 3 + 3 * 58 + 9 words... more than 100): inf there
    some = api.evaluate_table(pd.DataFrame([{**base, "M": M} for M in (100, 65536)]))
    assert some["ws_Q"].dtype == np.float64 and np.isinf(some["ws_Q"].iloc[0]) and some["ws_d"].iloc[0] == 0
    assert some["os_Q"].dtype == np.int64 and some["min_Q"].dtype == np.int64
    assert some["os_Q"].iloc[0] == osm.os_best(L, Machine(M=100)).Q
    # the cheapest there is OS-lean (same Q as OS per tile, smaller footprint: docs/dataflow_os_lean.md)
    from bounds.output_stationary_lean import osl_best
    assert some["min_Q"].iloc[0] == some["osl_Q"].iloc[0] == osl_best(L, Machine(M=100)).Q < some["os_Q"].iloc[0]


def test_evaluate_table_names_an_invalid_row():
    from complexity.layer import LayerError
    from complexity.machine import MachineError
    df = pd.DataFrame({"c": [8, 8], "d": [4, 4], "h": [5, 2], "w": [5, 2], "kh": [3, 3], "kw": [3, 3], "M": [999, 999]},
                      index=["ok", "bad"])
    with pytest.raises(LayerError, match=r"kh: row 'bad': kernel kh is larger than the padded input h\+2\*ph"):
        api.evaluate_table(df)
    df2 = df.assign(h=5, w=5, M=[999, 0])
    with pytest.raises(MachineError, match="M: row 'bad'"):
        api.evaluate_table(df2)


def test_os_search_in_python_integers_beyond_int64():
    # Q - |Y| = c/g [ceil(b/Bt) N_h N_w d kh kw + ceil(dg/D) b R_h R_w]: the best tile does not depend on c
    huge = Layer.conv(c=10 ** 15, d=10 ** 6, hw=56, k=3, pad=1, b=4)
    small = Layer.conv(c=1000, d=10 ** 6, hw=56, k=3, pad=1, b=4)
    q, fp, t = osm._search(huge, 1 << 20)
    assert q > 2 ** 63 and t == osm._search(small, 1 << 20)[2]
    p = osm.os_parts(huge, t)
    assert (p["Q"], p["footprint"]) == (q, fp) and fp <= 1 << 20
    c = osm.os_best(huge, Machine(M=1 << 20))
    assert c.Q == q and c.A == q + 3 * huge.F


def test_os_axis_candidates_numpy_path_equals_python_path():
    rng = random.Random(21)
    for _ in range(40):
        k = rng.randint(1, 11)
        s, p = rng.randint(1, 4), rng.randint(0, k - 1)
        n = rng.randint(4200 * s, 30000)
        o = (n + 2 * p - k) // s + 1
        assert o > 4096
        assert np.array_equal(osm._axis_candidates(n, k, s, p, o), osm._axis_candidates_small(n, k, s, p, o))


def test_rs_search_in_small_pieces_equals_one_piece(monkeypatch):
    """Cutting the block grids into pieces (bounded memory) changes no mapping."""
    layers = [Layer.conv(c=c, d=d, hw=hw, k=k, pad=k // 2) for c, d, hw, k in ((33, 17, 9, 3), (16, 24, 14, 3))]
    whole = [rs.search_mapping(L) for L in layers]
    rs._search.cache_clear()
    rs._block_grid_cached.cache_clear()
    monkeypatch.setattr(rs, "_BATCH_ROWS", 5)       # grids (up to 12 rows here) split across pieces
    monkeypatch.setattr(rs, "_CACHE_ROWS", 0)       # and nothing cached
    pieces = [rs.search_mapping(L) for L in layers]
    rs._search.cache_clear()
    assert [(m.to_dict(), x) for m, x in pieces] == [(m.to_dict(), x) for m, x in whole]
