"""Tests of the Eyeriss-style estimator: exact access counts against an independent
simulation, sparsity and bitwidth monotonicity, breakdowns, the CLI."""

from __future__ import annotations

import itertools
import json
import math

import pytest

from complexity.layer import Layer
from energy_complexity.cli import main
from estimation import EyerissConfig, MappingError, RSMapping, access_counts, estimate_layer, estimate_network
from estimation.eyeriss_config import DEFAULT_COSTS, scaled_costs
from estimation.sparsity import rlc_factor


# ---------------------------------------------------------------------------
# an independent count: walk the loop nest word by word
# ---------------------------------------------------------------------------
def simulate(layer: Layer, cfg: EyerissConfig, m: RSMapping):
    """Count accesses by executing the mapping's loop nest on explicit sets of words.

    DRAM level: a tensor's GLB tile is (re)loaded whenever the tile needed differs from
    the resident one; output tiles are written back when replaced and re-read if seen
    before.  Pass level: weights enter the RFs once per GLB block and (filter, channel,
    fold) pass shape; inputs are read from the GLB once per pass (shared by the filter
    copies) and delivered to every PE whose row needs them; each psum hops through the
    chain of PEs that add into it and goes to the GLB after every pass.  Returns
    (counts[level][data], macs, largest GLB tile of each tensor summed).
    """
    G = layer.groups
    N, M, C, E, F = layer.b, layer.dg, layer.cg, layer.nh, layer.nw
    R, S, H, W = layer.kh, layer.kw, layer.h, layer.w
    fr = math.ceil(R / cfg.rows)
    rr = math.ceil(R / fr)
    mt, ct = m.pm * m.p, m.pc * m.q
    mb, cb, eb = min(M, m.km * mt), min(C, m.kc * ct), min(E, m.ke * m.e)
    nb = min(N, m.nb)
    cols_used = sorted({f * layer.sw + s - layer.pw for f in range(F) for s in range(S)} & set(range(W)))
    z = {lv: {d: 0 for d in ("input", "weight", "psum")} for lv in ("dram", "buffer", "array", "rf")}
    macs = 0
    maxw = maxx = maxy = 0
    ranges = {"n": (N, nb), "m": (M, mb), "c": (C, cb), "e": (E, eb)}
    for grp in range(G):
        res = {"weight": None, "input": None, "psum": None}
        seen_out: set = set()
        cur_y: set = set()
        contrib: dict = {}
        loops = [range(0, ranges[L][0], ranges[L][1]) for L in m.order]
        for idx in itertools.product(*loops):
            s0 = dict(zip(m.order, idx))
            nr_ = range(s0["n"], min(N, s0["n"] + nb))
            mr = range(s0["m"], min(M, s0["m"] + mb))
            cr = range(s0["c"], min(C, s0["c"] + cb))
            er = range(s0["e"], min(E, s0["e"] + eb))
            wt = {(grp, a, c, r, s) for a in mr for c in cr for r in range(R) for s in range(S)}
            rows = {j * layer.sh + i - layer.ph for j in er for i in range(R)} & set(range(H))
            xt = {(grp, n, c, y, x) for n in nr_ for c in cr for y in rows for x in cols_used}
            yt = {(grp, n, a, j, f) for n in nr_ for a in mr for j in er for f in range(F)}
            maxw, maxx, maxy = max(maxw, len(wt)), max(maxx, len(xt)), max(maxy, len(yt))
            for key, tile in (("weight", wt), ("input", xt)):
                if res[key] != tile:
                    res[key] = tile
                    z["dram"][key] += len(tile)
                    z["buffer"][key] += len(tile)
            if res["psum"] != yt:
                if res["psum"] is not None:
                    z["dram"]["psum"] += len(cur_y); z["buffer"]["psum"] += len(cur_y)
                if yt & seen_out:
                    z["dram"]["psum"] += len(yt); z["buffer"]["psum"] += len(yt)
                seen_out |= yt
                res["psum"] = cur_y = yt
            # passes inside the GLB block
            for m1 in range(mr.start, mr.stop, mt):
                for c1 in range(cr.start, cr.stop, ct):
                    for f in range(fr):
                        i0, nrow = f * rr, min(rr, R - f * rr)
                        copies = [(range(m1 + a * m.p, min(mr.stop, m1 + mt, m1 + (a + 1) * m.p)),
                                   range(c1 + b * m.q, min(cr.stop, c1 + ct, c1 + (b + 1) * m.q)))
                                  for a in range(m.pm) for b in range(m.pc)]
                        copies = [(fa, cb_) for fa, cb_ in copies if len(fa) and len(cb_)]
                        pw_ = {(a, c, r, s) for fa, cb_ in copies for a in fa for c in cb_
                               for r in range(i0, i0 + nrow) for s in range(S)}
                        z["buffer"]["weight"] += len(pw_)
                        z["array"]["weight"] += m.e * len(pw_)
                        for n in nr_:
                            for j0 in range(er.start, er.stop, m.e):
                                strip = range(j0, min(er.stop, j0 + m.e))
                                glb_x = set()
                                for fa, cb_ in copies:
                                    for i in range(i0, i0 + nrow):
                                        for j in strip:
                                            y = j * layer.sh + i - layer.ph
                                            if 0 <= y < H:
                                                words = {(n, c, y, x) for c in cb_ for x in cols_used}
                                                z["array"]["input"] += len(words)
                                                glb_x |= words
                                    k = len(fa) * len(cb_) * len(strip) * F * nrow * S
                                    macs += k
                                z["buffer"]["input"] += len(glb_x)
                                nchan_copies = {b for b in range(m.pc)
                                                if len(range(c1 + b * m.q, min(cr.stop, c1 + ct, c1 + (b + 1) * m.q)))}
                                outs = {(n, a, j, fx) for fa, _ in copies for a in fa for j in strip for fx in range(F)}
                                for o in outs:
                                    z["array"]["psum"] += len(nchan_copies) * nrow
                                    if contrib.get(o, 0):
                                        z["buffer"]["psum"] += 1; z["array"]["psum"] += 1
                                    z["buffer"]["psum"] += 1
                                    contrib[o] = contrib.get(o, 0) + 1
        z["dram"]["psum"] += len(cur_y); z["buffer"]["psum"] += len(cur_y)
    z["rf"] = {"weight": macs, "input": macs, "psum": 2 * macs}
    return z, macs, maxw + maxx + maxy


SMALL_CFG = EyerissConfig(rows=2, cols=8, rf_weight=32, rf_input=8, rf_psum=4, glb_words=10 ** 6)

CASES = [
    # (layer, mapping): folds (R=3 > rows=2), partial strips, partial filter/channel blocks, orders
    (Layer(b=2, c=3, d=5, h=7, w=6, kh=3, kw=3, ph=1, pw=1), RSMapping(e=2, p=2, q=1, pm=2, pc=2, nb=1, km=1, kc=1, ke=2, order="nmce")),
    (Layer(b=2, c=3, d=5, h=7, w=6, kh=3, kw=3, ph=1, pw=1), RSMapping(e=3, p=1, q=2, pm=1, pc=2, nb=2, km=2, kc=1, ke=1, order="ecmn")),
    (Layer(b=1, c=4, d=4, h=9, w=9, kh=3, kw=2, sh=2, sw=2, ph=1, pw=1, groups=2), RSMapping(e=1, p=2, q=1, pm=1, pc=1, nb=1, km=1, kc=1, ke=3, order="cenm")),
    (Layer(b=2, c=5, d=3, h=6, w=5, kh=2, kw=2, sh=3, sw=3), RSMapping(e=2, p=1, q=2, pm=3, pc=1, nb=1, km=1, kc=2, ke=1, order="mnec")),
    (Layer.fc(6, 5, b=3), RSMapping(e=1, p=2, q=3, pm=2, pc=1, nb=2, km=1, kc=1, ke=1, order="cmne")),
]


@pytest.mark.parametrize("layer,mapping", CASES)
def test_access_counts_match_simulation(layer, mapping):
    sim, macs, occ = simulate(layer, SMALL_CFG, mapping)
    ac = access_counts(layer, SMALL_CFG, mapping)
    assert macs == layer.F == ac.macs
    for lv in sim:
        for dt in sim[lv]:
            assert ac.counts[lv][dt] == sim[lv][dt], (lv, dt)
    # the GLB check uses the largest tile of each tensor: fits at occ words, not at occ - 1
    access_counts(layer, EyerissConfig(**{**SMALL_CFG.to_dict(), "glb_words": occ}), mapping)
    with pytest.raises(MappingError, match="glb_words"):
        access_counts(layer, EyerissConfig(**{**SMALL_CFG.to_dict(), "glb_words": occ - 1}), mapping)


def test_infeasible_mappings_are_rejected():
    layer = CASES[0][0]
    with pytest.raises(MappingError, match="rf_input"):
        access_counts(layer, SMALL_CFG, RSMapping(e=1, p=1, q=3))
    with pytest.raises(MappingError, match="copies"):
        access_counts(layer, SMALL_CFG, RSMapping(e=4, p=1, q=1, pm=2, pc=2))


def test_search_is_no_worse_than_any_simulated_mapping():
    for layer, mapping in CASES[:2]:
        best = estimate_layer(layer, SMALL_CFG)
        total, _, _ = access_counts(layer, SMALL_CFG, mapping).energy(DEFAULT_COSTS)
        assert best.total <= total


LAYERS = [Layer.conv(16, 32, 14, 3, pad=1, name="conv"), Layer.conv(32, 32, 14, 3, pad=1, groups=32, name="dw"),
          Layer.fc(512, 100, name="fc"), Layer.conv(3, 16, 31, 11, stride=4, name="big")]


@pytest.mark.parametrize("layer", LAYERS, ids=lambda l: l.name)
def test_breakdowns_sum_to_total(layer):
    est = estimate_layer(layer, density_w=0.6, density_a=0.4, bits=8)
    assert math.isclose(sum(est.by_level.values()), est.total, rel_tol=1e-12)
    assert math.isclose(sum(est.by_data.values()), est.total, rel_tol=1e-12)
    assert set(est.by_level) == {"dram", "buffer", "array", "rf", "mac"}
    assert set(est.by_data) == {"input", "weight", "psum", "mac"}
    d = json.loads(est.to_json())
    assert d["name"] == layer.name and d["total"] == est.total


@pytest.mark.parametrize("layer", LAYERS, ids=lambda l: l.name)
def test_dense_16bit_reproduces_the_dense_estimate(layer):
    dense = estimate_layer(layer)
    same = estimate_layer(layer, density_w=1.0, density_a=1.0, bits=16)
    assert same.total == dense.total and same.by_level == dense.by_level
    # and it is the plain cost-weighted access count of its mapping (no compression, no skipping)
    ac = access_counts(layer, EyerissConfig(), dense.mapping)
    assert ac.macs == layer.F
    assert ac.counts["rf"]["psum"] == 2 * layer.F
    assert ac.counts["dram"]["weight"] % layer.W == 0  # whole refetches of uncompressed weights
    assert ac.energy(DEFAULT_COSTS)[0] == dense.total


@pytest.mark.parametrize("layer", LAYERS[:3], ids=lambda l: l.name)
def test_energy_monotone_in_density_and_bits(layer):
    assert estimate_layer(layer).search_exact  # monotonicity is guaranteed for proved optima
    grid = [0.05, 0.2, 0.5, 0.8, 1.0]
    for fixed in (1.0, 0.3):
        ew = [estimate_layer(layer, density_w=d, density_a=fixed).total for d in grid]
        ea = [estimate_layer(layer, density_w=fixed, density_a=d).total for d in grid]
        assert all(x < y for x, y in zip(ew, ew[1:])), ew
        assert all(x < y for x, y in zip(ea, ea[1:])), ea
    eb = [estimate_layer(layer, bits=b).total for b in (4, 8, 12, 16, 32)]
    assert all(x < y for x, y in zip(eb, eb[1:])), eb


def test_bits_scale_costs_linearly_for_memory_and_quadratically_for_macs():
    c = scaled_costs(DEFAULT_COSTS, 8)
    assert c == {"dram": 100.0, "buffer": 3.0, "array": 1.0, "rf": 0.5, "mac": 0.25}
    layer = LAYERS[0]
    e8 = estimate_layer(layer, bits=8)
    assert e8.by_level["mac"] == layer.F * 0.25
    assert e8.by_level["rf"] == 4 * layer.F * 0.5


def test_sparsity_skips_macs_and_compresses_dram():
    layer = LAYERS[0]
    est = estimate_layer(layer, density_w=0.5, density_a=0.25)
    assert est.macs == layer.F * 0.125
    assert est.by_level["rf"] == 4 * layer.F * 0.125
    # RLC: expected pairs density/(1-(1-density)^32), 21 bits each for 16-bit words
    assert rlc_factor(0.25, 16) == pytest.approx(0.25 / (1 - 0.75 ** 32) * 21 / 16)
    assert rlc_factor(1.0, 16) == 1.0 and rlc_factor(0.9, 16) == 1.0  # no gain: stored raw
    ac = access_counts(layer, EyerissConfig(), est.mapping, 0.5, 0.25)
    dense = access_counts(layer, EyerissConfig(), est.mapping)
    assert ac.counts["dram"]["weight"] == pytest.approx(dense.counts["dram"]["weight"] * rlc_factor(0.5, 16))
    assert ac.counts["buffer"] == dense.counts["buffer"]  # on chip data is not compressed


def test_bad_density_and_bits_raise_naming_the_parameter():
    with pytest.raises(ValueError, match="density_w"):
        estimate_layer(LAYERS[0], density_w=0.0)
    with pytest.raises(ValueError, match="density_a"):
        estimate_layer(LAYERS[0], density_a=1.5)
    with pytest.raises(ValueError, match="bits"):
        estimate_layer(LAYERS[0], bits=0)


def test_network_totals_and_fc_and_depthwise_work():
    net = estimate_network(LAYERS)
    assert net.total == pytest.approx(sum(le.total for le in net.layers))
    assert net.macs == sum(l.F for l in LAYERS) and net.weights == sum(l.W for l in LAYERS)
    fc = net.layers[2]
    # every FC weight is used once at batch 1: it crosses DRAM exactly once
    assert fc.counts["dram"]["weight"] == LAYERS[2].W
    assert fc.energy_per_mac > 200  # DRAM-bound
    dw = net.layers[1]
    assert dw.counts["dram"]["weight"] == LAYERS[1].W


def test_cli_table_json_and_errors(capsys):
    assert main(["estimate", "--c", "16", "--d", "32", "--hw", "14", "--k", "3", "--pad", "1"]) == 0
    out = capsys.readouterr().out
    assert "TOTAL" in out and "E/MAC" in out
    assert main(["estimate", "--c", "16", "--d", "32", "--hw", "14", "--k", "3", "--json", "--density-a", "0.5"]) == 0
    d = json.loads(capsys.readouterr().out)
    le = d["layers"][0]
    assert {"name", "total", "by_level", "by_data"} <= set(le)
    assert le["total"] == estimate_layer(Layer.conv(16, 32, 14, 3), density_a=0.5).total
    for bad in (["--density-w", "0"], ["--density-a", "1.01"], ["--bits", "0"]):
        assert main(["estimate", "--c", "4", "--d", "4", *bad]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and bad[0] in err


def _brute_force_min(layer, cfg):
    """Least energy over every mapping (all pass shapes, GLB blocks and orders), by access_counts."""
    from estimation.row_stationary import ORDERS
    M, C, E, N = layer.dg, layer.cg, layer.nh, layer.b
    best = math.inf
    for e, p, q in itertools.product(range(1, min(E, cfg.cols) + 1), range(1, M + 1), range(1, C + 1)):
        for pm, pc, nb in itertools.product(range(1, math.ceil(M / p) + 1), range(1, math.ceil(C / q) + 1),
                                            range(1, N + 1)):
            for km, kc, ke in itertools.product(range(1, math.ceil(M / (p * pm)) + 1),
                                                range(1, math.ceil(C / (q * pc)) + 1), range(1, math.ceil(E / e) + 1)):
                for o in ORDERS:
                    try:
                        ac = access_counts(layer, cfg, RSMapping(e, p, q, pm, pc, nb, km, kc, ke, o))
                    except MappingError:
                        continue
                    best = min(best, ac.energy(cfg.costs)[0])
    return best


def test_search_finds_the_brute_force_optimum():
    cfg = EyerissConfig(rows=3, cols=3, rf_weight=12, rf_input=6, rf_psum=2, glb_words=150)
    for layer in (Layer(b=2, c=3, d=4, h=5, w=5, kh=3, kw=3, ph=1, pw=1), Layer(c=4, d=3, h=6, w=6, kh=2, kw=2, sh=2, sw=2)):
        est = estimate_layer(layer, cfg)
        assert est.search_exact
        assert est.total == _brute_force_min(layer, cfg)


def _real_rows_brute(g, j0, ne, i0, nr, distinct):
    """Real input rows j*sh + i - ph (0 <= row < H) of output rows j0..j0+ne-1, filter rows i0..i0+nr-1."""
    rows = [j * g.sh + i - g.ph for j in range(j0, j0 + ne) for i in range(i0, i0 + nr)]
    real = [r for r in rows if 0 <= r < g.H]
    return len(set(real)) if distinct else len(real)


def _strips_brute(g, e, i0, nr, fn):
    from estimation import row_stationary as rs
    vals = [_real_rows_brute(g, j0, min(e, g.E - j0), i0, nr, fn is rs._rows_real) for j0 in range(0, g.E, e)]
    return sum(vals), max(vals)


def test_strip_sums_equal_the_loop_over_every_strip():
    """The edge-only strip and row sums (no loop over E, issue 10) equal a count of every input row."""
    import random

    from estimation import row_stationary as rs
    rng = random.Random(7)
    n = 0
    while n < 400:
        k, s = rng.randint(1, 7), rng.randint(1, 4)
        p, h = rng.randint(0, k - 1), rng.randint(k, 40)
        try:
            L = Layer(c=2, d=2, h=h, w=h, kh=k, kw=k, sh=s, sw=s, ph=p, pw=p)
        except Exception:
            continue
        g = rs._geom(L)
        for e in range(1, 15):
            for i0 in range(k):
                for nr in range(1, k - i0 + 1):
                    for fn in (rs._rows_real, rs._pe_real):
                        assert rs._strip_values(g, e, i0, nr, fn) == _strips_brute(g, e, i0, nr, fn), (L, e, i0, nr)
        n += 1


def test_estimate_of_a_huge_input_is_fast():
    """h = w = 6.7M once took minutes (a Python loop over the output rows); now the strips near the edges only.
    The same for a 3.3e10-row input at stride 859 (one strip of all rows, a loop over them in it)."""
    import time
    L = Layer(b=139, c=930, d=6703, h=6721117, w=6721117, kh=5, kw=5)
    for kernel, wide in ((5, L), (3, Layer(b=139, c=930, d=6703, h=6721117, w=64, kh=3, kw=3)),
                         (4, Layer(b=4725, c=188, d=12, h=32957366675, w=16664, kh=4, kw=4, sh=859, sw=859,
                                   ph=2, pw=2, groups=4))):
        t = time.process_time()
        try:
            assert estimate_layer(wide).total > 0
        except MappingError as err:  # rows of millions of outputs fit no GLB: a clear refusal, not a hang
            assert "GLB" in str(err) and f"{wide.nw:,}" in str(err)
        assert time.process_time() - t < 5.0, kernel
