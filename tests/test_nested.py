"""Nested tiling on a memory hierarchy: closed-form counts == executor, output == numpy, search, bounds."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest

from bounds.executor_nested import run_nested
from bounds.machine_sim import BufferOverflow
from bounds.nested import (DIMS, ORDERS, LevelMapping, NestedInfeasibleError, NestedSchedule,
                           NestedScheduleError, best_nested, fits, mac_levels, nest_architecture, nested_counts,
                           nested_energy, nested_footprints)
from bounds.output_stationary import os_best, os_min_M
from bounds.reference_conv import conv2d_numpy, random_operands
from complexity.architecture import Architecture
from complexity.layer import Layer
from complexity.machine import Machine


# ----- small hierarchies ----------------------------------------------------------------
def _arch(spec, *, mac_reads=None, bypass=True, caps=None, seed=0, name="h"):
    """Levels from ``spec`` (operand strings, innermost first) + DRAM, distinct per-operand costs."""
    rng = random.Random(seed)
    levels = []
    for i, ops in enumerate(spec):
        levels.append({"name": f"l{i}", "capacity": (caps[i] if caps else 10 ** 6), "instances": 1 + i % 2,
                       "operands": list(ops),
                       "read_pJ": {t: round(0.2 + 3 * rng.random() * (i + 1), 3) for t in ops},
                       "write_pJ": {t: round(0.3 + 3 * rng.random() * (i + 1), 3) for t in ops}})
    levels.append({"name": "dram", "operands": ["X", "W", "Y"], "read_pJ": 100, "write_pJ": 120})
    d = {"name": name, "mac_pJ": 0.7, "levels": levels, "bypass": bypass}
    if mac_reads:
        d["mac_reads"] = mac_reads
    return Architecture.from_dict(d)


#: shared levels, per-operand levels, partial sharing, MACs reading above a level holding the
#: operand (it must be bypassed), and level-by-level movement (no optional bypass)
SPECS = [
    dict(spec=("XWY",)),
    dict(spec=("XWY", "XWY")),
    dict(spec=("X", "W", "Y", "XWY")),
    dict(spec=("Y", "XW", "XWY")),
    dict(spec=("XWY", "W", "XY")),
    dict(spec=("XWY", "XY", "W"), mac_reads={"X": "l1", "W": "l0", "Y": "l1"}),
    dict(spec=("X", "W", "Y", "XWY"), bypass=False),
]


def _archs(seed=0):
    return [_arch(**s, seed=seed + i, name=f"h{i}") for i, s in enumerate(SPECS)]


def _with_caps(arch, caps: dict):
    levels = tuple(dataclasses.replace(lv, capacity=caps[lv.name]) if lv.name in caps else lv for lv in arch.levels)
    return dataclasses.replace(arch, levels=levels)


# ----- small layers ----------------------------------------------------------------------
def _axis_configs(nmax=5, kmax=3, smax=3):
    return [(n, k, s, p) for n in range(1, nmax + 1) for k in range(1, kmax + 1)
            for s in range(1, smax + 1) for p in range(k) if k <= n + 2 * p]


_CHANNELS = [(1, 1, 1), (2, 3, 1), (3, 2, 1), (3, 3, 3), (4, 4, 2), (2, 4, 2)]


def _layers(count, seed=0):
    ax = _axis_configs()
    rng = random.Random(seed)
    out = []
    for i in range(count):
        h, kh, sh, ph = ax[(7 * i + seed) % len(ax)]
        w, kw, sw, pw = ax[(13 * i + 5 + 3 * seed) % len(ax)]
        c, d, g = _CHANNELS[i % len(_CHANNELS)]
        out.append(Layer(b=1 + rng.randrange(2), c=c, d=d, h=h, w=w, kh=kh, kw=kw, sh=sh, sw=sw, ph=ph, pw=pw,
                         groups=g))
    return out


def _extent(L):
    return {"b": L.b, "d": L.dg, "h": L.nh, "w": L.nw, "c": L.cg, "r": L.kh, "s": L.kw}


def _random_nest(arch, rng):
    """A random nesting order that keeps every operand's levels in order (None if the draw breaks one)."""
    names = [lv.name for lv in arch.onchip]
    rng.shuffle(names)
    try:
        nest_architecture(arch, names)
    except NestedScheduleError:
        return None
    return tuple(names)


def _random_schedule(L, arch, rng):
    """A random nested schedule: tiles inside the level above, random orders, keeps, kernel splits,
    and (when the draw keeps every operand's levels in order) a random nesting order of the levels."""
    nest = _random_nest(arch, rng)
    arch = nest_architecture(arch, nest)
    E = _extent(L)
    mac = mac_levels(arch)
    K = len(arch.levels)
    par = dict(E)
    ms = [None] * (K - 1)
    for l in range(K - 2, -1, -1):
        t = {}
        for x in DIMS:
            if x in "rs":
                v = rng.choice([1, par[x]])
                t[x] = None if v == E[x] else v
            else:
                t[x] = rng.randint(1, par[x])
        order = rng.choice(list(ORDERS) + ["".join(rng.sample("bdhwcrs", 7))])
        lv = arch.levels[l]
        keep = None
        if rng.random() < 0.5:
            keep = tuple(o for o in lv.operands if mac[o] == l or (mac[o] < l and rng.random() < 0.6))
        ms[l] = LevelMapping(**t, order=order, keep=keep)
        par = {x: (t[x] if t[x] is not None else par[x]) for x in DIMS}
    return NestedSchedule(tuple(ms), nest=nest)


def _ones(arch, order):
    """Hand-made: every level one output, one filter, one channel, one kernel tap."""
    return NestedSchedule(tuple(LevelMapping(r=1, s=1, order=order) for _ in arch.onchip))


def _counts_only(c):
    return {k: v for k, v in c.items() if k != "peak"}


# ----- counts == executor ---------------------------------------------------------------
def test_sweep_counts_equal_executor_and_output_equals_numpy():
    """Every case: nested_counts == the executor's counts word for word, y == numpy, peak <= footprint,
    and the run at capacity = footprint (per level) never overflows."""
    rng = random.Random(2024)
    archs = _archs()
    cases = equal_peak = 0
    for i, L in enumerate(_layers(140)):
        x, w = random_operands(L, seed=i)
        ref = conv2d_numpy(L, x, w)
        for a in (archs[i % len(archs)], archs[(3 * i + 1) % len(archs)]):
            sch = _random_schedule(L, a, rng)
            fp = nested_footprints(L, a, sch)
            tight = _with_caps(a, fp)
            assert fits(L, tight, sch)
            y, got = run_nested(L, tight, sch, x, w)
            assert np.array_equal(y, ref), (L, sch)
            assert _counts_only(got) == nested_counts(L, a, sch), (L, a.name, sch)
            assert all(got["peak"][k] <= fp[k] for k in fp)
            equal_peak += all(got["peak"][k] == fp[k] for k in fp)
            cases += 1
    assert cases == 280
    assert equal_peak >= 0.8 * cases          # the footprint is usually attained exactly


def test_exhaustive_small_layer_every_level_tile():
    """One grouped, strided, padded, batched layer on a 2-level-on-chip hierarchy: every tile of the
    outer level (the order presets in turn) x a fixed inner tile; counts and outputs checked."""
    L = Layer(b=2, c=4, d=4, h=5, w=4, kh=3, kw=2, sh=2, sw=1, ph=1, pw=1, groups=2)
    a = _arch(("XWY", "XWY"), seed=3)
    x, w = random_operands(L, seed=3)
    ref = conv2d_numpy(L, x, w)
    E = _extent(L)
    n = 0
    import itertools
    for b, d, h, ww, c in itertools.product(range(1, E["b"] + 1), range(1, E["d"] + 1), range(1, E["h"] + 1),
                                            range(1, E["w"] + 1), range(1, E["c"] + 1)):
        order = list(ORDERS)[n % len(ORDERS)]
        outer = LevelMapping(b=b, d=d, h=h, w=ww, c=c, order=order)
        inner = LevelMapping(b=1, d=1, h=1, w=min(2, ww), c=1, r=1, order="WS")
        sch = NestedSchedule((inner, outer))
        y, got = run_nested(L, a, sch, x, w)
        assert np.array_equal(y, ref)
        assert _counts_only(got) == nested_counts(L, a, sch)
        n += 1
    assert n == E["b"] * E["d"] * E["h"] * E["w"] * E["c"] == 120


def test_known_counts_two_level_os():
    """Hand-derived: one Buffer, OS tile with C < cg -> the OS loads of bounds/output_stationary."""
    from bounds.output_stationary import os_parts
    L = Layer(b=2, c=4, d=6, h=5, w=6, kh=3, kw=2, sh=2, sw=1, ph=1, pw=1, groups=2)
    a = Architecture.two_level(Machine(M=10 ** 6))
    sch = NestedSchedule((LevelMapping(b=1, d=2, h=2, w=3, c=1, order="OS"),))
    c = nested_counts(L, a, sch)
    p = os_parts(L, (1, 2, 2, 3, 1))
    assert c["dram"]["X"]["reads"] == p["loads_X"]
    assert c["dram"]["W"]["reads"] == p["loads_W"]
    assert c["dram"]["Y"] == {"reads": 0, "writes": L.Y}
    assert c["buffer"]["X"] == {"reads": L.F_real, "writes": p["loads_X"]}
    assert c["buffer"]["Y"] == {"reads": L.F, "writes": L.F}          # F - |Y| MAC reads + |Y| spills
    assert nested_footprints(L, a, sch)["buffer"] == p["footprint"]


# ----- the search ---------------------------------------------------------------------------
def _real_caps(seed):
    """Hierarchies with small capacities (registers of one word per operand, small RFs)."""
    return [
        _arch(("X", "W", "Y", "XWY"), caps=(1, 1, 2, 60), mac_reads={"X": "l0", "W": "l1", "Y": "l2"}, seed=seed,
              bypass=False, name="regs"),
        _arch(("XWY", "XWY"), caps=(12, 200), seed=seed + 1, name="shared"),
        _arch(("Y", "XW", "XWY"), caps=(4, 30, 500), seed=seed + 2, name="mixed"),
        _arch(("XWY", "XY", "W"), caps=(3, 100, 40), mac_reads={"X": "l0", "W": "l0", "Y": "l0"},
              seed=seed + 3, name="bypassing"),
    ]


@pytest.mark.parametrize("ai", range(4))
def test_best_nested_fits_is_exact_and_beats_hand_made(ai):
    archs = _real_caps(7)
    a = archs[ai]
    checked = 0
    for i, L in enumerate(_layers(24, seed=11)):
        r = best_nested(L, a)
        assert fits(L, a, r.schedule)
        assert r.counts == nested_counts(L, a, r.schedule)
        assert r.E_pJ == pytest.approx(nested_energy(L, a, r.schedule), rel=1e-12)
        assert sum(e["E_pJ"] for e in r.levels) == pytest.approx(r.E_pJ, rel=1e-12)
        assert [e["name"] for e in r.levels] == [lv.name for lv in a.levels] + ["mac"]
        for e, lv in zip(r.levels, a.levels):
            assert e["words"] == sum(v["reads"] + v["writes"] for v in r.counts[lv.name].values())
        assert all(isinstance(v, int) for v in r.tiles.values())
        for order in ORDERS:
            hand = _ones(a, order)
            if fits(L, a, hand):
                assert r.E_pJ <= nested_energy(L, a, hand) * (1 + 1e-12), (L, order)
                checked += 1
        if i % 6 == 0:                                   # the executor runs the chosen schedule
            x, w = random_operands(L, seed=i)
            y, got = run_nested(L, a, r.schedule, x, w)
            assert np.array_equal(y, conv2d_numpy(L, x, w))
            assert _counts_only(got) == r.counts
    assert checked >= 24


def test_two_level_includes_the_os_dataflow():
    """On the paper's machine the nested family contains the OS loop nest.

    Derivation (docs/dataflow_nested.md, section 7): with the OS tile and C < cg the nested
    schedule moves exactly the OS words (Q), and at the Buffer it counts per MAC one input
    read (real inputs only: F_real), one weight read, and a partial-sum read (not for the
    first MAC: F - |Y|) and write (F), i.e. 3F + F_real - |Y| accesses where the two-level
    model counts 3F.  So E_nested(OS tile) = E_OS + eB (F_real - |Y|) (<= when C = cg), and
    best_nested (which tries the exhaustive OS tile) is at most that.
    """
    n = 0
    for L in _layers(60, seed=5):
        for M in (os_min_M(L), os_min_M(L) + 7, 3 * os_min_M(L), 10 ** 5):
            mach = Machine(M=M)
            a = Architecture.two_level(mach)
            os_c = os_best(L, mach)
            target = os_c.E + mach.e_buf * (L.F_real - L.Y)
            t = os_c.tiles
            sch = NestedSchedule((LevelMapping(b=t["b"], d=t["d"], h=t["th"], w=t["tw"], c=t["c"], order="OS"),))
            assert fits(L, a, sch)
            e = nested_energy(L, a, sch)
            if t["c"] < L.cg:
                assert e == pytest.approx(target, rel=1e-12)
            else:
                assert e <= target * (1 + 1e-12)
            r = best_nested(L, a)
            assert r.E_pJ <= target * (1 + 1e-12)
            n += 1
    assert n == 240


def test_infeasible_names_the_level():
    a = _arch(("XWY", "XWY"), caps=(2, 100), mac_reads={"X": "l0", "W": "l0", "Y": "l0"})
    with pytest.raises(NestedInfeasibleError, match=r"l0\.capacity") as e:
        best_nested(Layer.conv(c=2, d=2, hw=4, k=3), a)
    assert "\n" not in str(e.value)


def test_schedule_errors_name_the_field():
    L = Layer.conv(c=2, d=2, hw=4, k=3)
    a = _arch(("XWY", "XWY"))
    ok = LevelMapping(b=1, d=1, h=1, w=1, c=1)
    with pytest.raises(NestedScheduleError, match=r"levels\[0\]\.d"):
        nested_counts(L, a, NestedSchedule((LevelMapping(d=2), LevelMapping(d=1))))
    with pytest.raises(NestedScheduleError, match=r"levels\[1\]\.order"):
        nested_counts(L, a, NestedSchedule((ok, LevelMapping(order="bdhw"))))
    with pytest.raises(NestedScheduleError, match=r"levels\[0\]\.r"):
        nested_counts(L, a, NestedSchedule((LevelMapping(r=2), ok)))
    with pytest.raises(NestedScheduleError, match="levels"):
        nested_counts(L, a, NestedSchedule((ok,)))
    with pytest.raises(NestedScheduleError, match=r"levels\[0\]\.keep"):
        nested_counts(L, a, NestedSchedule((LevelMapping(keep=("X",)), ok)))
    with pytest.raises(NestedScheduleError, match="nest: changes the order of the levels holding X"):
        nested_counts(L, a, NestedSchedule((ok, ok), nest=("l1", "l0")))
    with pytest.raises(NestedScheduleError, match="nest: must name every on-chip level"):
        nested_counts(L, a, NestedSchedule((ok, ok), nest=("l0", "l0")))


def test_nesting_order_lets_a_weight_file_enclose_an_accumulator():
    """A W register file listed inside a Y file may enclose it: the W file then keeps weights
    across output positions (each weight read from DRAM once), which the architecture's
    order cannot do (a 2-word Y file bounds every tile inside it to 2 outputs)."""
    a = _arch(("XWY", "W", "Y", "XY"), caps=(3, 40, 2, 10 ** 5), mac_reads={"X": "l0", "W": "l0", "Y": "l0"},
              bypass=False)
    L = Layer(b=1, c=4, d=8, h=6, w=6, kh=3, kw=3, ph=1, pw=1)
    one = LevelMapping(r=1, s=1)
    top = LevelMapping(b=1, d=8, h=6, w=6, c=4)
    nested = NestedSchedule((one, LevelMapping(d=2, r=1, s=1), LevelMapping(d=4, h=6, w=6, c=1, order="WS"), top),
                            nest=("l0", "l2", "l1", "l3"))
    plain = NestedSchedule((one, LevelMapping(d=2, c=1), LevelMapping(d=2, c=4), top))
    x, w = random_operands(L, seed=5)
    runs = {}
    for name, sch in (("nested", nested), ("plain", plain)):
        assert fits(L, a, sch)
        y, got = run_nested(L, a, sch, x, w)
        assert np.array_equal(y, conv2d_numpy(L, x, w))
        assert _counts_only(got) == nested_counts(L, a, sch)
        runs[name] = got
    assert runs["nested"]["dram"]["W"]["reads"] == L.W
    assert runs["plain"]["dram"]["W"]["reads"] == L.W * L.nh * L.nw
    r = best_nested(L, a)
    assert r.E_pJ <= min(nested_energy(L, a, nested), nested_energy(L, a, plain)) * (1 + 1e-12)


def test_overflow_is_caught():
    L = Layer(b=1, c=2, d=2, h=4, w=4, kh=3, kw=3, ph=1, pw=1)
    a = _arch(("XWY",))
    sch = NestedSchedule((LevelMapping(b=1, d=2, h=2, w=2, c=2, order="OS"),))
    fp = nested_footprints(L, a, sch)["l0"]
    x, w = random_operands(L)
    run_nested(L, _with_caps(a, {"l0": fp}), sch, x, w)
    assert not fits(L, _with_caps(a, {"l0": fp - 1}), sch)
    with pytest.raises(BufferOverflow):
        run_nested(L, _with_caps(a, {"l0": fp - 1}), sch, x, w)


# ----- the hierarchy lower bound is below every schedule the executor can run ---------------
def _energy_from(arch, counts):
    e = counts["macs"] * arch.mac_pJ
    for lv in arch.levels:
        for t in lv.operands:
            e += counts[lv.name][t]["reads"] * lv.read_pJ[t] + counts[lv.name][t]["writes"] * lv.write_pJ[t]
    return e


def test_lower_bound_below_every_nested_schedule():
    """hierarchy_lower_bound(layer, arch).E_pJ <= the energy of every schedule that fits, over
    >= 10^4 (layer, hierarchy, schedule) cases; a subset is also run by the executor.

    Capacities are tight: each level gets the largest footprint among the case's schedules
    (so every one of them fits and the bound is as high as it gets)."""
    hierarchy = pytest.importorskip("bounds.hierarchy")
    rng = random.Random(99)
    cases = executed = 0
    worst = float("inf")
    for i, L in enumerate(_layers(240, seed=21)):
        for j, spec in enumerate(SPECS):
            base = _arch(**spec, seed=i + j, name=f"p{j}")
            scheds = [_random_schedule(L, base, rng) for _ in range(6)]
            fps = [nested_footprints(L, base, s) for s in scheds]
            caps = {k: max(1, max(f[k] for f in fps)) for k in fps[0]}
            a = _with_caps(base, caps)
            lb = hierarchy.hierarchy_lower_bound(L, a).E_pJ
            for s in scheds:
                assert fits(L, a, s)
                e = nested_energy(L, a, s)
                assert lb <= e * (1 + 1e-9), (L, a, s, lb, e)
                worst = min(worst, e / lb)
                cases += 1
            if (i + j) % 40 == 0:
                x, w = random_operands(L, seed=i)
                y, got = run_nested(L, a, scheds[0], x, w)
                assert np.array_equal(y, conv2d_numpy(L, x, w))
                assert lb <= _energy_from(a, got) * (1 + 1e-9)
                executed += 1
    assert cases == 240 * len(SPECS) * 6 >= 10 ** 4
    assert executed >= 40
    assert worst >= 1.0


# ----- the fast search: exact bookkeeping on real hierarchies, two costing paths agree -------
def _zoo_shapes():
    from complexity.zoo import get_network
    res = list({L.replace(name=""): 0 for L in get_network("resnet50")})
    dw = [L for L in {L.replace(name=""): 0 for L in get_network("mobilenet_v2")} if L.groups > 1]
    return [res[0], res[3], res[-2], dw[0]]       # 7x7/2 stem, 3x3, 1x1 deep, depthwise


@pytest.mark.parametrize("name", ["eyeriss_like", "tpu_like", "edge_tpu_like", "simba_like"])
def test_best_nested_on_bundled_architectures_recosts_exactly(name):
    """On every bundled (ZigZag) hierarchy the search's own bookkeeping (the counts it returns)
    equals the closed forms recomputed from the schedule alone, the schedule fits, and its
    energy is nested_energy's (the search keeps the words it moved instead of recounting)."""
    from validation.architectures import get_architecture
    a = get_architecture(name)
    for L in _zoo_shapes():
        r = best_nested(L, a)
        assert fits(L, a, r.schedule)
        assert r.counts == nested_counts(L, a, r.schedule)
        assert r.E_pJ == pytest.approx(nested_energy(L, a, r.schedule), rel=1e-12)
        fp = nested_footprints(L, a, r.schedule)
        assert all(fp[lv.name] <= lv.capacity for lv in a.onchip)


def test_small_grid_costing_equals_numpy_costing(monkeypatch):
    """The plain-Python costing of tiny grids returns exactly what the numpy costing returns
    (estimates, volumes, orders, tiles, ties), on every search step of varied searches."""
    import bounds.nested as nested
    calls = []
    real = nested._expand_groups

    def spy(layer, l, groups, k=4, orders=nested._SEARCH_ORDERS):
        calls.append((layer, l, groups, k, orders))
        return real(layer, l, groups, k, orders)

    monkeypatch.setattr(nested, "_expand_groups", spy)
    nested._clear_caches()                               # every search step runs (none cached)
    archs = _real_caps(5) + _archs(2)[:3]
    for i, L in enumerate(_layers(24, seed=4)):
        nested.best_nested(L, archs[i % len(archs)], beam=3 + i % 4)
    monkeypatch.setattr(nested, "_expand_groups", real)
    monkeypatch.setattr(nested, "_SMALL", -1)           # the numpy path everywhere
    assert len(calls) > 50
    for layer, l, groups, k, orders in calls:
        assert nested._expand_small(layer, l, groups, k, orders) == real(layer, l, groups, k, orders)
