"""An energy UPPER bound on a real memory hierarchy: a nested-tiling schedule and its exact counts.

A schedule gives every on-chip level of an Architecture (complexity/architecture.py) a
tile of (batch, filters, output rows, output columns, input channels, kernel rows, kernel
columns) inside the tile of the level above, a loop order (OS: reduction innermost, the
partial sums stay below; WS: output positions innermost, the weights stay below; IS:
filters innermost, the inputs stay below; or any permutation) and the operands the level
keeps (a subset of those it holds: the others bypass it).  ``nested_counts`` gives the
exact reads and writes of every level and operand (closed forms with ceilings, halos and
clipped padding, docs/dataflow_nested.md); bounds/executor_nested.py runs the same schedule
word by word on capacity-checked storage and the tests check the counts are equal.
``best_nested`` searches the tiles level by level (a small beam over candidate sizes,
vectorized with numpy) and returns the cheapest schedule it finds: its energy is the energy
of a real execution, hence an upper bound on the best execution of the layer.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from bounds.result import InfeasibleError
from complexity.architecture import OPERANDS, Architecture
from complexity.layer import Layer

__all__ = ["nest_architecture", "DIMS", "RELEVANT", "ORDERS", "LevelMapping", "NestedSchedule", "NestedScheduleError",
           "NestedInfeasibleError", "NestedResult", "nested_counts", "nested_energy", "nested_footprints",
           "fits", "best_nested", "fill_loops", "mac_levels"]

#: Loop dimensions: batch, filters (of one group), output rows, output columns, input channels
#: (of one group), kernel rows, kernel columns.
DIMS = ("b", "d", "h", "w", "c", "r", "s")
#: The dimensions whose index changes an operand's words (the others leave it unchanged).
RELEVANT = {"X": frozenset("bchwrs"), "W": frozenset("dcrs"), "Y": frozenset("bdhw")}
#: Named loop orders, outermost loop first.
ORDERS = {"OS": "bdhwcrs", "WS": "dcrsbhw", "IS": "bchwrsd"}
_TILE_KEYS = {"b": "B", "d": "D", "h": "Th", "w": "Tw", "c": "C", "r": "Kh", "s": "Kw"}


class NestedScheduleError(ValueError):
    """A schedule that does not describe a nested tiling of the layer; names the field."""

    def __init__(self, key: str, message: str):
        super().__init__(f"invalid nested schedule: {key}: {message}")
        self.parameter = key


class NestedInfeasibleError(InfeasibleError):
    """No schedule fits: a level that must keep an operand cannot hold its smallest tile."""

    def __init__(self, level: str, capacity: int, need: int, what: str):
        ValueError.__init__(self, f"invalid architecture: {level}.capacity: level {level!r} of {capacity} "
                                  f"words per instance is too small for the smallest nested tile of {what}, "
                                  f"which needs {need} words")
        self.parameter = f"{level}.capacity"
        self.dataflow = "nested"
        self.M_min = need


@dataclass(frozen=True)
class LevelMapping:
    """The tile of one on-chip level, its loop order and the operands it keeps.

    ``b, d, h, w, c``: batch items, filters, output rows, output columns and input channels
    of the tile (filters and channels of one group); ``r, s``: kernel rows and columns
    (None: the whole kernel; only the innermost level may take 1, one tap at a time).
    ``order``: "OS", "WS", "IS" or a permutation of "bdhwcrs", outermost loop first.
    ``keep``: the operands kept here (None: every operand the level holds).
    """

    b: int = 1
    d: int = 1
    h: int = 1
    w: int = 1
    c: int = 1
    r: int | None = None
    s: int | None = None
    order: str = "OS"
    keep: tuple[str, ...] | None = None

    @property
    def loop_order(self) -> str:
        o = ORDERS.get(self.order, self.order)
        if sorted(o) != sorted(DIMS):
            raise NestedScheduleError("order", f"{self.order!r} is neither OS, WS, IS nor a permutation of "
                                               f"{''.join(DIMS)}")
        return o


@dataclass(frozen=True)
class NestedSchedule:
    """One LevelMapping per on-chip level, innermost first (DRAM has none).

    ``nest``: the names of the on-chip levels in the order their tiles nest, innermost
    first, with ``levels[i]`` the mapping of level ``nest[i]``; None: the architecture's
    order.  Levels holding different operands may nest in either order (a weight register
    file may enclose an accumulator file listed after it), as long as every operand's own
    levels keep their order (``Architecture.chain``).
    """

    levels: tuple[LevelMapping, ...]
    nest: tuple[str, ...] | None = None

    def tiles(self, arch: Architecture) -> dict:
        """Flat {"<level>.<B|D|Th|Tw|C|Kh|Kw>": int} for JSON (kernel None stays None -> omitted)."""
        out = {}
        names = self.nest if self.nest is not None else [lv.name for lv in arch.onchip]
        for name, m in zip(names, self.levels):
            lv = arch.level(name)
            for x in DIMS:
                v = getattr(m, x)
                if v is not None:
                    out[f"{lv.name}.{_TILE_KEYS[x]}"] = int(v)
        return out


@dataclass(frozen=True)
class NestedResult:
    """The cheapest nested schedule found: its counts, energy and per-level breakdown."""

    schedule: NestedSchedule
    counts: dict
    E_pJ: float
    levels: tuple
    tiles: dict
    orders: dict

    def to_json(self) -> dict:
        return {"E_pJ": float(self.E_pJ), "levels": [dict(e) for e in self.levels],
                "tiles": dict(self.tiles), "orders": dict(self.orders)}


# ------------------------------------------------------------------------------------------
# The schedule, normalized: extents, tiles per level, keeps, orders.
# ------------------------------------------------------------------------------------------
def _extents(L: Layer) -> dict:
    return dict(_extents_cached(L))


@lru_cache(maxsize=4096)
def _sizes(L: Layer) -> tuple:
    """(b c, |W|, |Y|, F, F_real) of the layer (properties computed once per shape)."""
    return L.b * L.c, L.W, L.Y, L.F, L.F_real


@lru_cache(maxsize=4096)
def _extents_cached(L: Layer) -> tuple:
    return (("b", L.b), ("d", L.dg), ("h", L.nh), ("w", L.nw), ("c", L.cg), ("r", L.kh), ("s", L.kw))


@dataclass(frozen=True)
class _Plan:
    """A checked schedule: ``T[l][x]`` for levels 0..K-1 (K-1 = DRAM: the extents), orders, keeps."""

    T: tuple
    orders: tuple
    keep: tuple      # frozenset per level, DRAM keeps everything
    mac: dict        # operand -> level index MACs read it from


def mac_levels(arch: Architecture) -> dict:
    """The level index each MAC reads each operand from: ``arch.innermost(t)``."""
    return {t: arch.index(arch.innermost(t).name) for t in OPERANDS}


def nest_architecture(arch: Architecture, nest) -> Architecture:
    """The architecture with its on-chip levels in the nesting order ``nest`` (names, innermost first).

    Raises NestedScheduleError("nest") unless ``nest`` names every on-chip level once and
    keeps the order of every operand's levels.
    """
    if nest is None:
        return arch
    return _nest_cached(arch, tuple(nest))


@lru_cache(maxsize=256)
def _nest_cached(arch: Architecture, nest: tuple) -> Architecture:
    names = [lv.name for lv in arch.onchip]
    if sorted(nest) != sorted(names):
        raise NestedScheduleError("nest", f"must name every on-chip level once ({', '.join(names)}), got {list(nest)}")
    levels = tuple(arch.level(n) for n in nest) + (arch.dram,)
    for t in OPERANDS:
        a = [lv.name for lv in arch.levels if t in lv.operands]
        b = [lv.name for lv in levels if t in lv.operands]
        if a != b:
            raise NestedScheduleError("nest", f"changes the order of the levels holding {t}: {' < '.join(a)}")
    return dataclasses.replace(arch, levels=levels)


def _plan(layer: Layer, arch: Architecture, sched: NestedSchedule) -> _Plan:
    if not isinstance(sched, NestedSchedule):
        raise NestedScheduleError("schedule", f"must be a NestedSchedule, got {type(sched).__name__}")
    arch = nest_architecture(arch, sched.nest)
    K = len(arch.levels)
    if len(sched.levels) != K - 1:
        raise NestedScheduleError("levels", f"{len(sched.levels)} mappings for {K - 1} on-chip levels "
                                            f"({', '.join(lv.name for lv in arch.onchip)})")
    E = _extents(layer)
    T = [None] * K
    T[K - 1] = dict(E)
    orders, keeps = [None] * (K - 1), [None] * K
    keeps[K - 1] = frozenset(OPERANDS)
    mac = mac_levels(arch)
    for l in range(K - 2, -1, -1):
        m, lv = sched.levels[l], arch.levels[l]
        key = f"levels[{l}]"
        t = {}
        for x in DIMS:
            v = getattr(m, x)
            if x in "rs" and v is None:
                v = E[x]
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise NestedScheduleError(f"{key}.{x}", f"must be a positive integer, got {v!r}")
            v = int(v)
            if v > T[l + 1][x]:
                raise NestedScheduleError(f"{key}.{x}", f"{v} exceeds the tile {T[l + 1][x]} of the level above")
            if x in "rs" and v not in (1, E[x]):
                raise NestedScheduleError(f"{key}.{x}", f"a kernel tile is the whole kernel ({E[x]}) or one tap (1), "
                                                         f"got {v}")
            t[x] = v
        T[l] = t
        try:
            orders[l] = m.loop_order
        except NestedScheduleError as e:
            raise NestedScheduleError(f"{key}.order", str(e).split(": ", 2)[-1]) from None
        kp = lv.operands if m.keep is None else tuple(m.keep)
        for op in kp:
            if op not in lv.operands:
                raise NestedScheduleError(f"{key}.keep", f"level {lv.name!r} does not hold {op}")
        kp = set(kp)
        for op in OPERANDS:
            if mac[op] == l and m.keep is not None and op not in kp:
                raise NestedScheduleError(f"{key}.keep", f"MACs read {op} from level {lv.name!r}, which must keep it")
            if mac[op] == l or (not getattr(arch, "bypass", True) and op in lv.operands and l > mac[op]):
                kp.add(op)      # MACs read it here, or the architecture moves it level by level
            if l < mac[op]:
                kp.discard(op)      # below the level MACs read it from: nobody needs it there
        keeps[l] = frozenset(kp)
    return _Plan(tuple(T), tuple(orders), tuple(keeps), mac)


# ------------------------------------------------------------------------------------------
# Per-axis quantities: tile positions, real lines (halos, clipped padding).
# ------------------------------------------------------------------------------------------
def _split(starts: np.ndarray, sizes: np.ndarray, T: int):
    """Sub-tiles of size T (the last one of each parent smaller) of the tiles (starts, sizes)."""
    n = -(-sizes // T)
    first = np.repeat(starts, n)
    idx = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
    st = first + idx * T
    return st, np.minimum(T, np.repeat(starts + sizes, n) - st)


def _lines(i0, th, n: int, k: int, s: int, p: int, tap: int | None):
    """Real input lines of the output lines i0..i0+th-1 through the whole kernel (tap None) or one tap.

    Whole kernel: Lemma 1 of docs/dataflow_os.md, (th-1) min(s,k) + k - max(0, p - i0 s)
    - max(0, i1 s - p + k - n).  One tap r: output i reads line i s - p + r, real for
    ceil((p-r)/s) <= i <= floor((n-1+p-r)/s): the count of such i in the tile.
    """
    i1 = i0 + th - 1
    if tap is None:
        return (th - 1) * min(s, k) + k - np.maximum(0, p - i0 * s) - np.maximum(0, i1 * s - p + k - n)
    lo = max(0, -((tap - p) // s))
    hi = (n - 1 + p - tap) // s
    return np.maximum(0, np.minimum(i1, hi) - np.maximum(i0, lo) + 1)


def _axis_terms(st, sz, n, k, s, p, Tk):
    """(sum of real lines, sorted unique (tile size, real lines) pairs) over the tiles x taps of an axis."""
    if Tk == k:
        r = _lines(st, sz, n, k, s, p, None)
        pairs = np.stack([sz, r], axis=1)
    else:
        rs = [_lines(st, sz, n, k, s, p, tap) for tap in range(k)]
        r = np.concatenate(rs)
        pairs = np.stack([np.tile(sz, k), r], axis=1)
    return int(r.sum()), _pareto(pairs)


def _pareto(pairs: np.ndarray) -> np.ndarray:
    """The (size, lines) pairs not dominated by another (maxima of any nonnegative combination)."""
    o = np.lexsort((-pairs[:, 1], -pairs[:, 0]))       # size descending, then lines descending
    q = pairs[o]
    best = np.maximum.accumulate(q[:, 1])
    keep = np.ones(len(q), dtype=bool)
    keep[1:] = q[1:, 1] > best[:-1]
    return q[keep]


@lru_cache(maxsize=1 << 16)
def _pos(E: int, chain: tuple) -> tuple[np.ndarray, np.ndarray]:
    """The tiles (starts, sizes) of [0, E) after splitting by the nested tile sizes ``chain`` (outermost first)."""
    if not chain:
        return np.array([0], dtype=np.int64), np.array([E], dtype=np.int64)
    st, sz = _pos(E, chain[:-1])
    return _split(st, sz, int(chain[-1]))


@lru_cache(maxsize=1 << 16)
def _hist(E: int, chain: tuple) -> tuple:
    """The sizes of the tiles of [0, E) split by ``chain`` with their numbers: ((size, tiles), ...)."""
    if not chain:
        return ((E, 1),)
    T = chain[-1]
    out = {}
    for sz, m in _hist(E, chain[:-1]):
        q, r = divmod(sz, T)
        if q:
            out[T] = out.get(T, 0) + m * q
        if r:
            out[r] = out.get(r, 0) + m
    return tuple(out.items())


def _count(E: int, chain: tuple) -> int:
    """The number of tiles of [0, E) split by ``chain``: ``len(_pos(E, chain)[0])``."""
    return sum(m for _, m in _hist(E, _canon(E, chain)))


#: (n, k, s, p, E, chain, Tk) -> (tiles, summed real lines, (size, lines) pairs), and the batches of
#: _axis_batch by (n, k, s, p, E, parent chain, Tk), which fill it on demand (both bounded).
_AXIS: dict = {}
_AXIS_BATCHES: dict = {}
_MEMO_MAX = 1 << 16


@lru_cache(maxsize=1 << 16)
def _canon(E: int, chain: tuple) -> tuple:
    """``chain`` without the tile sizes that split nothing (equal to the one before, or E): the same tiles."""
    prev, out = E, None
    for i, T in enumerate(chain):
        if T >= prev:
            if out is None:
                out = list(chain[:i])
        else:
            prev = T
            if out is not None:
                out.append(T)
    return chain if out is None else tuple(out)


def _axis_cached(n: int, k: int, s: int, p: int, E: int, chain: tuple, Tk: int):
    """(tiles, summed real lines, (size, lines) pairs) of an output axis tiled by ``chain``."""
    key = (n, k, s, p, E, chain, Tk)
    r = _AXIS.get(key)
    if r is None:
        c = _canon(E, chain)
        r = _AXIS.get((n, k, s, p, E, c, Tk)) if c != chain else None
        if r is None:
            b = _AXIS_BATCHES.get((n, k, s, p, E, c[:-1], Tk)) if c else None
            i = None if b is None else b[0].get(c[-1])
            if i is not None:
                r = (b[1][i], b[2][i], b[3][i, :b[4][i]])
            else:
                st, sz = _pos(E, c)
                lines, pairs = _axis_terms(st, sz, n, k, s, p, Tk)
                r = (len(st), lines, pairs)
        if len(_AXIS) >= _MEMO_MAX:
            _AXIS.clear()
        _AXIS[key] = _AXIS[(n, k, s, p, E, c, Tk)] = r
    return r


def _axis_batch(n: int, k: int, s: int, p: int, E: int, chain: tuple, vals: tuple, Tk: int):
    """``_axis_cached`` for the chains ``chain + (v,)``, every v of ``vals`` at once: (tiles, summed real
    lines, pairs padded with zeros to (len(vals), P, 2), pairs per v), the pairs of each v as _pareto's."""
    chain = _canon(E, chain)
    if vals == ((chain[-1] if chain else E),):       # no split: the tiles of the level above
        N, lines, pairs = _axis_cached(n, k, s, p, E, chain, Tk)
        return [N], [lines], pairs[None], [len(pairs)]
    key = (n, k, s, p, E, chain, Tk)
    b = _AXIS_BATCHES.get(key)
    if b is not None and b[5] == vals:
        return b[1:5]
    st0, sz0 = _pos(E, chain)
    V, P0 = len(vals), len(sz0)
    v = np.array(vals, dtype=np.int64)
    nsub = -(-sz0[None, :] // v[:, None])                    # sub-tiles of each parent tile, per v
    flat = nsub.ravel()
    vv = np.repeat(np.repeat(v, P0), flat)
    first = np.repeat(np.tile(st0, V), flat)
    st = first + (np.arange(int(flat.sum())) - np.repeat(np.cumsum(flat) - flat, flat)) * vv
    sz = np.minimum(vv, np.repeat(np.tile(st0 + sz0, V), flat) - st)      # as _split, v by v
    seg = nsub.sum(axis=1)
    starts = np.cumsum(seg) - seg
    vid = np.repeat(np.arange(V), seg)
    if Tk == k:
        r = _lines(st, sz, n, k, s, p, None)
        lines = np.add.reduceat(r, starts)
        size, vid_r = sz, vid
    else:                                                     # every tap (as _lines, tap by tap)
        tap = np.arange(k)[:, None]
        lo = np.maximum(0, -((tap - p) // s))
        hi = (n - 1 + p - tap) // s
        rr = np.maximum(0, np.minimum(st + sz - 1, hi) - np.maximum(st, lo) + 1)
        lines = np.add.reduceat(rr, starts, axis=1).sum(axis=0)
        r, size, vid_r = rr.ravel(), np.tile(sz, k), np.tile(vid, k)
    # _pareto per v: sorted by v, size descending, lines descending; a pair is kept when its lines
    # exceed those of every pair before it of the same v (offsets per v keep the running max apart)
    o = np.lexsort((-r, -size, vid_r))
    qv, qs, qr = vid_r.take(o), size.take(o), r.take(o)
    off = qr + qv * (int(qr.max()) + 1)
    keep = np.ones(len(o), dtype=bool)
    keep[1:] = off[1:] > np.maximum.accumulate(off)[:-1]
    qv, qs, qr = qv.compress(keep), qs.compress(keep), qr.compress(keep)
    npair = np.bincount(qv, minlength=V)
    rank = np.arange(len(qv)) - np.repeat(np.cumsum(npair) - npair, npair)
    M = int(npair.max())
    pairs = np.zeros((V, M, 2), dtype=np.int64)
    at = (qv * M + rank) * 2
    pairs.put(at, qs)
    pairs.put(at + 1, qr)
    out = (seg.tolist(), lines.tolist(), pairs, npair.tolist())
    if len(_AXIS_BATCHES) >= _MEMO_MAX:
        _AXIS_BATCHES.clear()
    _AXIS_BATCHES[key] = ({x: i for i, x in enumerate(vals)},) + out + (vals,)
    return out


def _clear_caches() -> None:
    """Empty every cache of this module (benchmarks/bench_nested.py times the search from scratch)."""
    for f in (_best_cached, _pos, _hist, _extents_cached, _sizes, _grid_axis, _grid_axis_hw, _nest_cached,
              _order_pos, _loop_masks, _nests, _nest_static, _canon):
        f.cache_clear()
    _AXIS.clear()
    _AXIS_BATCHES.clear()


def _axis_params(L: Layer, ax: str):
    return (L.h, L.kh, L.sh, L.ph) if ax == "h" else (L.w, L.kw, L.sw, L.pw)


# ------------------------------------------------------------------------------------------
# Fill loops and the exact counts.
# ------------------------------------------------------------------------------------------
def fill_loops(plan_T, orders, t: str, l: int):
    """The loop (level m, dimension x) at each iteration of which level ``l`` refills operand ``t``.

    Loops run outermost first: level K-2's loops (in its order), ..., level ``l``'s loops.
    A loop is trivial when its tile equals the enclosing one (one iteration everywhere).
    The refill loop is the innermost loop at levels >= ``l`` that is non-trivial and
    relevant to ``t``; (None, None) means once per group.
    """
    K = len(plan_T)
    for m in range(l, K - 1):
        for x in reversed(orders[m]):
            if x in RELEVANT[t] and plan_T[m][x] != plan_T[m + 1][x]:
                return m, x
    return None, None


def _factors(T, orders, counts, t: str, l: int) -> dict:
    """For each dimension x irrelevant to ``t``: how many times level ``l``'s refills repeat along x.

    It is the number of tiles along x at the level of the innermost x-loop outside the
    refill loop (``counts[m][x]`` = tiles of level m along x; level K-1 has one).
    """
    K = len(T)
    m0, x0 = fill_loops(T, orders, t, l)
    fac = {}
    for x in DIMS:
        if x in RELEVANT[t]:
            continue
        if m0 is None:
            fac[x] = 1
            continue
        # the x-loops outside (m0, x0): those at levels > m0, and at level m0 if x comes before x0
        o = orders[m0]
        lev = m0 if o.index(x) < o.index(x0) else m0 + 1
        fac[x] = counts[lev][x] if lev < K else 1
    return fac


def _analysis(layer: Layer, arch: Architecture, plan: _Plan) -> dict:
    """Per level: tile counts per dimension, summed real lines per axis, (size, lines) pairs."""
    K = len(arch.levels)
    E = _extents(layer)
    counts = [dict.fromkeys(DIMS, 1) for _ in range(K)]
    RL = [dict() for _ in range(K)]
    pairs = [dict() for _ in range(K)]
    for x in DIMS:
        for l in range(K - 1):
            chain = tuple(int(plan.T[m][x]) for m in range(K - 2, l - 1, -1))
            if x in "hw":
                n, k, s, p = _axis_params(layer, x)
                Tk = plan.T[l]["r" if x == "h" else "s"]
                counts[l][x], RL[l][x], pairs[l][x] = _axis_cached(n, k, s, p, E[x], chain, Tk)
            else:
                counts[l][x] = _count(E[x], chain)
    return {"counts": counts, "lines": RL, "pairs": pairs}


def _words(layer: Layer, plan: _Plan, an: dict, t: str, l: int) -> int:
    """Words moved into level ``l`` at its refills of ``t`` over the whole layer (and, for Y, out)."""
    f = _factors(plan.T, plan.orders, an["counts"], t, l)
    if t == "X":
        return layer.b * layer.c * an["lines"][l]["h"] * an["lines"][l]["w"] * f["d"]
    if t == "W":
        return layer.W * f["b"] * f["h"] * f["w"]
    return layer.Y * f["c"] * f["r"] * f["s"]


def _footprint(layer: Layer, plan: _Plan, an: dict, l: int) -> int:
    """Peak words of level ``l``: max over its tiles of the kept operands' words (docs, section 5)."""
    T, kp = plan.T[l], plan.keep[l]
    yc = T["b"] * T["d"] if "Y" in kp else 0
    xc = T["b"] * T["c"] if "X" in kp else 0
    wc = T["d"] * T["c"] * T["r"] * T["s"] if "W" in kp else 0
    ph, pw = an["pairs"][l]["h"], an["pairs"][l]["w"]
    best = 0
    for th, rh in ph:
        for tw, rw in pw:
            best = max(best, yc * int(th) * int(tw) + xc * int(rh) * int(rw))
    return best + wc


def _count_table(arch: Architecture) -> dict:
    return {lv.name: {t: {"reads": 0, "writes": 0} for t in lv.operands} for lv in arch.levels}


def _parent(plan: _Plan, t: str, l: int) -> int:
    K = len(plan.keep)
    return next(m for m in range(l + 1, K) if t in plan.keep[m])


def nested_counts(layer: Layer, arch: Architecture, schedule: NestedSchedule) -> dict:
    """Exact reads and writes of every level and operand, and the MACs, of the schedule.

    Returns {level name: {operand: {"reads": int, "writes": int}}, "macs": F}.  Counts do
    not depend on the capacities (see ``fits``).
    """
    plan = _plan(layer, arch, schedule)
    arch = nest_architecture(arch, schedule.nest)
    an = _analysis(layer, arch, plan)
    return _counts_from(layer, arch, plan, an)


def _counts_from(layer, arch, plan, an) -> dict:
    K = len(arch.levels)
    C = _count_table(arch)
    names = [lv.name for lv in arch.levels]
    for l in range(K - 1):
        for t in sorted(plan.keep[l]):
            p = _parent(plan, t, l)
            words = _words(layer, plan, an, t, l)
            if t == "Y":     # spills: every period; read-ins: every period but an output's first
                C[names[l]]["Y"]["reads"] += words
                C[names[p]]["Y"]["writes"] += words
                C[names[l]]["Y"]["writes"] += words - layer.Y
                C[names[p]]["Y"]["reads"] += words - layer.Y
            else:
                C[names[l]][t]["writes"] += words
                C[names[p]][t]["reads"] += words
    F = layer.F
    C[names[plan.mac["X"]]]["X"]["reads"] += layer.F_real      # a padding zero is no word
    C[names[plan.mac["W"]]]["W"]["reads"] += F
    C[names[plan.mac["Y"]]]["Y"]["reads"] += F - layer.Y         # the first MAC creates the sum
    C[names[plan.mac["Y"]]]["Y"]["writes"] += F
    C["macs"] = F
    return C


def _energy_of(arch: Architecture, counts: dict) -> tuple[float, list]:
    E = 0.0
    rows = []
    for lv in arch.levels:
        e = sum(counts[lv.name][t]["reads"] * lv.read_pJ[t] + counts[lv.name][t]["writes"] * lv.write_pJ[t]
                for t in lv.operands)
        words = sum(counts[lv.name][t]["reads"] + counts[lv.name][t]["writes"] for t in lv.operands)
        rows.append({"name": lv.name, "words": int(words), "E_pJ": float(e)})
        E += e
    em = counts["macs"] * arch.mac_pJ
    rows.append({"name": "mac", "words": int(counts["macs"]), "E_pJ": float(em)})
    return E + em, rows


def nested_energy(layer: Layer, arch: Architecture, schedule: NestedSchedule) -> float:
    """Energy in pJ: every level's reads and writes at its per-word costs, plus F MACs."""
    return _energy_of(arch, nested_counts(layer, arch, schedule))[0]


def nested_footprints(layer: Layer, arch: Architecture, schedule: NestedSchedule) -> dict:
    """Peak words per instance of every on-chip level under the schedule {level name: words}."""
    plan = _plan(layer, arch, schedule)
    arch = nest_architecture(arch, schedule.nest)
    an = _analysis(layer, arch, plan)
    return {arch.levels[l].name: _footprint(layer, plan, an, l) for l in range(len(arch.levels) - 1)}


def fits(layer: Layer, arch: Architecture, schedule: NestedSchedule) -> bool:
    """True when every on-chip level's peak stays within its capacity per instance."""
    fp = nested_footprints(layer, arch, schedule)
    return all(fp[lv.name] <= lv.capacity for lv in arch.onchip)


def _refill_price(arch: Architecture, lv) -> float:
    """The dearest read of the level above that refills one of ``lv``'s operands (ties: cheap refills inside)."""
    i = arch.index(lv.name)
    out = 0.0
    for t in lv.operands:
        up = next(u for u in arch.levels[i + 1:] if t in u.operands)
        out = max(out, up.read_pJ[t])
    return out


@lru_cache(maxsize=256)
def _nests(arch: Architecture) -> list:
    """Nesting orders the search tries: the architecture's, and smallest capacity first among the
    levels whose operands' inner levels are already placed (so every chain keeps its order); among
    equal capacities the level refilled more cheaply goes inside, so the dearer one can keep its
    words across the loops of the cheaper."""
    chains = {t: [lv.name for lv in arch.onchip if t in lv.operands] for t in OPERANDS}
    placed, left = [], list(arch.onchip)
    while left:
        ready = [lv for lv in left if all(c.index(lv.name) == 0 or c[c.index(lv.name) - 1] in placed
                                          for t, c in chains.items() if lv.name in c)]
        nxt = min(ready, key=lambda lv: (lv.capacity, _refill_price(arch, lv)))
        placed.append(nxt.name)
        left.remove(nxt)
    by_cap = tuple(placed)
    return [None] if by_cap == tuple(lv.name for lv in arch.onchip) else [None, by_cap]


# ------------------------------------------------------------------------------------------
# Search: a beam over the levels, from DRAM inwards, candidate tiles evaluated with numpy.
# ------------------------------------------------------------------------------------------
#: Tile counts tried per dimension: a tile of ceil(P/n) for these n (P: the tile of the level above).
_SPLITS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128, 256, 512, 1024, 2048, 4096)
_SEARCH_ORDERS = ("OS", "WS", "IS")


def _cands(P: int) -> list[int]:
    return sorted({-(-P // n) for n in _SPLITS if n <= P} | {1})


@dataclass
class _State:
    """A partial schedule: levels l..K-2 chosen (``T``, ``orders``, ``keeps`` indexed by level).

    ``chains[x]``: the tile sizes along x from the outermost on-chip level down to level l;
    ``counts[m][x]``: tiles of level m along x; ``fac[t]``: the repeat factors a level below
    gets for operand t when its refill loop is above it; ``inner[t]``: innermost level
    keeping t so far; ``cost``: pJ of the refills of the levels chosen; ``moved``: ((level,
    operand, words moved into it at its refills: _words), ...) of the levels chosen.
    """

    l: int
    T: list
    orders: list
    keeps: list
    counts: list
    chains: dict
    fac: dict
    inner: dict
    cost: float
    moved: tuple = ()
    fills: dict | None = None       # operand -> fill_loops(T, orders, t, l) (None: none at the root)


_DIM_INDEX = {x: i for i, x in enumerate(DIMS)}


def _axis_info(L: Layer, ax: str, chain: tuple, Tk: int):
    E = _extents_cached(L)[_DIM_INDEX[ax]][1]
    if ax in "hw":
        n, k, s, p = _axis_params(L, ax)
        return _axis_cached(n, k, s, p, E, chain, Tk)
    return _count(E, chain), 0, None


def _root(layer: Layer, arch: Architecture) -> _State:
    K = len(arch.levels)
    E = _extents(layer)
    T = [None] * K
    T[K - 1] = dict(E)
    counts = [None] * K
    counts[K - 1] = dict.fromkeys(DIMS, 1)
    keeps = [None] * K
    keeps[K - 1] = frozenset(OPERANDS)
    return _State(K - 1, T, [None] * (K - 1), keeps, counts, {x: () for x in DIMS},
                  {t: dict.fromkeys(DIMS, 1) for t in OPERANDS}, dict.fromkeys(OPERANDS, K - 1), 0.0)


def _prices(arch: Architecture, l: int, p: int, t: str) -> tuple[float, float]:
    """(price per word refilled into level l from p, price per partial sum read back) for operand t."""
    a, b = arch.levels[l], arch.levels[p]
    if t == "Y":
        return a.read_pJ[t] + b.write_pJ[t], b.read_pJ[t] + a.write_pJ[t]
    return a.write_pJ[t] + b.read_pJ[t], 0.0


def _keep_options(arch: Architecture, mac: dict, l: int) -> list[frozenset]:
    lv = arch.levels[l]
    bypass = getattr(arch, "bypass", True)
    forced = [t for t in lv.operands if mac[t] == l or (mac[t] < l and not bypass)]
    optional = [t for t in lv.operands if mac[t] < l and bypass]
    opts = []
    for k in range(len(optional), -1, -1):
        for sub in itertools.combinations(optional, k):
            opts.append(frozenset(forced) | frozenset(sub))
    return opts


def _footprint_grid(keep, Tb, Td, Tc, Tr, Ts, ph, pw):
    """Peak words of candidate tiles (broadcast arrays over the grid; pairs: (n, P, 2) per axis)."""
    yc = Tb * Td if "Y" in keep else 0 * Tb
    xc = Tb * Tc if "X" in keep else 0 * Tb
    wc = Td * Tc * Tr * Ts if "W" in keep else 0 * Td
    nd = np.ndim(yc) if np.ndim(yc) else 5
    th = ph[:, :, 0].reshape(1, 1, -1, 1, 1, ph.shape[1], 1)
    rh = ph[:, :, 1].reshape(1, 1, -1, 1, 1, ph.shape[1], 1)
    tw = pw[:, :, 0].reshape(1, 1, 1, -1, 1, 1, pw.shape[1])
    rw = pw[:, :, 1].reshape(1, 1, 1, -1, 1, 1, pw.shape[1])
    yc7 = np.asarray(yc).reshape(np.shape(yc) + (1, 1)) if nd else yc
    xc7 = np.asarray(xc).reshape(np.shape(xc) + (1, 1)) if nd else xc
    return (yc7 * th * tw + xc7 * rh * rw).max(axis=(5, 6)) + wc


_AXIS_POS = {"b": 0, "d": 1, "h": 2, "w": 3, "c": 4}


def _along(a: str, v) -> np.ndarray:
    sh = [1] * 5
    sh[_AXIS_POS[a]] = len(v)
    return np.asarray(v).reshape(sh)


def _axes(layer: Layer, st: _State, l: int, rel: set) -> dict:
    """Candidate tiles per grid axis of level l: sizes, tile counts, real lines and (size, lines) pairs."""
    P = st.T[l + 1]
    E = _extents_cached(layer)
    axes = {}
    for x, i in (("b", 0), ("d", 1), ("c", 4)):
        axes[x] = _grid_axis(E[i][1], _canon(E[i][1], st.chains[x]), x in rel)
    for ax, kx, i, ki in (("h", "r", 2, 5), ("w", "s", 3, 6)):
        n, k, s, p = _axis_params(layer, ax)
        axes[ax] = _grid_axis_hw(n, k, s, p, E[i][1], _canon(E[i][1], st.chains[ax]), ax in rel,
                                 kx in rel and P[kx] > 1, P[kx], E[ki][1])
    return axes


def _frozen(**arrays) -> dict:
    for v in arrays.values():
        v.setflags(write=False)         # shared by the cache: nobody may change them
    return arrays


@lru_cache(maxsize=1 << 15)
def _grid_axis(E: int, chain: tuple, searched: bool) -> dict:
    """Candidates of a b, d or c axis below the tiles ``chain``: {"T": sizes, "N": tile counts, "tabT":
    rows T, N, the candidate's non-trivial loop as bit 0, 1 and 4 (b, d, c in DIMS), T}."""
    P = chain[-1] if chain else E
    vals = _cands(P) if searched else [P]
    hist = _hist(E, chain)
    N = [sum(m * -(-sz // v) for sz, m in hist) for v in vals]
    nt = [int(v != P) for v in vals]
    tab = np.array([vals, N, nt, [x << 1 for x in nt], [x << 4 for x in nt], vals], dtype=np.int64)
    return _frozen(T=tab[0], N=tab[1], tabT=tab)


@lru_cache(maxsize=1 << 15)
def _grid_axis_hw(n: int, k: int, s: int, p: int, E: int, chain: tuple, searched: bool, split_kernel: bool,
                  Pk: int, Ek: int) -> dict:
    """Candidates of an output axis (with its kernel axis) below the tiles ``chain``: sizes T, kernel tiles
    K, tile counts N and NK, summed real lines, the (size, lines) pairs padded with zeros and their maxima;
    "tabT": rows T, K, N, NK, lines, the non-trivial loops as bits for h (2, r 5) and for w (3, s 6), T K."""
    P = chain[-1] if chain else E
    vals = tuple(_cands(P)) if searched else (P,)
    ks = ([1] if split_kernel else []) + [Pk]   # smallest first (see _prune)
    parts = [_axis_batch(n, k, s, p, E, chain, vals, kv) for kv in ks]
    if len(parts) == 1:
        pairs = parts[0][2]
    else:
        npair = max(b[2].shape[1] for b in parts)
        pairs = np.zeros((len(vals) * len(ks), npair, 2), dtype=np.int64)
        for i, b in enumerate(parts):
            pairs[i * len(vals):(i + 1) * len(vals), :b[2].shape[1]] = b[2]
    T = list(vals) * len(ks)
    K = [kv for kv in ks for _ in vals]
    N = [c for b in parts for c in b[0]]
    NK = [Ek // kv for kv in K]
    lines = [x for b in parts for x in b[1]]
    nt = [int(v != P) for v in T]
    ntk = [int(kv != Pk) for kv in K]
    tab = np.array([T, K, N, NK, lines, [(a << 2) + (b << 5) for a, b in zip(nt, ntk)],
                    [(a << 3) + (b << 6) for a, b in zip(nt, ntk)], [t * kv for t, kv in zip(T, K)]], dtype=np.int64)
    return _frozen(T=tab[0], K=tab[1], N=tab[2], NK=tab[3], lines=tab[4].astype(np.float64), pairs=pairs,
                   pmax=pairs.max(axis=1), tabT=tab)


def _prune(axes: dict, keep, cap: int) -> dict:
    """Drop the candidates of an axis that overflow even with every other axis at its smallest tile.

    The footprint is nondecreasing along every axis, so such a candidate never fits.
    """
    first = {y: {f: a[f][:1] for f in ("T", "K", "pmax", "pairs") if f in a} for y, a in axes.items()}
    out = {}
    for x in axes:
        one = dict(first)
        one[x] = axes[x]
        shape = tuple(len(one[y]["T"]) for y in ("b", "d", "h", "w", "c"))
        ok = _fits_grid(keep, one, cap, shape)
        out[x] = {k: v.take(ok, axis=1 if k == "tabT" else 0) for k, v in axes[x].items()}
    return out


def _thin(axes: dict, grid: int) -> dict:
    """Keep at most ``grid`` candidate tiles: halve the longest axis (every other interior value) until then."""
    axes = dict(axes)
    while math.prod(len(a["T"]) for a in axes.values()) > grid:
        x = max(axes, key=lambda y: len(axes[y]["T"]))
        n = len(axes[x]["T"])
        if n <= 2:
            break
        keep = sorted(set(range(0, n, 2)) | {n - 1})
        axes[x] = {k: v.take(keep, axis=1 if k == "tabT" else 0) for k, v in axes[x].items()}
    return axes


def _next_inner(arch: Architecture, mac: dict, t: str, l: int) -> int:
    """The level that will refill ``t`` from above next, below level l (the MAC level when bypassing is allowed)."""
    if getattr(arch, "bypass", True):
        return mac[t]
    return max(m for m in range(mac[t], l) if t in arch.levels[m].operands)


#: Per loop order: the position of each dimension (DIMS order) in it, plus one.
@lru_cache(maxsize=64)
def _order_pos(orders: tuple) -> np.ndarray:
    return np.array([[ORDERS.get(o, o).index(x) + 1 for x in DIMS] for o in orders], dtype=np.int64)


#: The operand to which each dimension is irrelevant (each dimension is irrelevant to exactly one).
_OWNER = {y: next(t for t in OPERANDS if y not in RELEVANT[t]) for y in DIMS}


@lru_cache(maxsize=64)
def _loop_masks(orders: tuple) -> tuple:
    """(inside (DIMS, orders, 1), relevant (DIMS, 1)) bit masks over DIMS for the operand t = _OWNER[y]
    of each dimension y: ``inside[y, o]`` the loops relevant to t inside the loop of y in order o,
    ``relevant[y]`` those relevant to t.  With ``code`` the non-trivial loops of a tile, its repeat
    factor for t along y (_factors at this level) is its own tile count when ``code & inside`` (the
    loop is outside the refill loop, the innermost non-trivial loop relevant to t), else the tiles of
    the level above when ``code & relevant`` (the refill loop is here), else the level above's factor."""
    pos = _order_pos(orders)
    rel = {t: [i for i, x in enumerate(DIMS) if x in RELEVANT[t]] for t in OPERANDS}
    inside = np.array([[[sum(1 << i for i in rel[_OWNER[y]] if pos[o, i] > pos[o, j])] for o in range(len(orders))]
                       for j, y in enumerate(DIMS)], dtype=np.uint8)
    relevant = np.array([[sum(1 << i for i in rel[_OWNER[y]])] for y in DIMS], dtype=np.uint8)
    return inside, relevant


#: Rows of a group's candidate table: the axes' "tabT" rows stacked (b, d, h, w, c; 6 rows for b, d
#: and c, 8 for h and w): tiles and tile counts in DIMS order, the real lines of h and w, each axis's
#: non-trivial-loop bits and volume factor.
_OFF = {"b": 0, "d": 6, "h": 12, "w": 20, "c": 28}
_ROW_T = [_OFF[x] for x in "bdhwc"] + [_OFF["h"] + 1, _OFF["w"] + 1]
_ROW_N = [_OFF[x] + (2 if x in "hw" else 1) for x in "bdhwc"] + [_OFF["h"] + 3, _OFF["w"] + 3]
_ROW_LINES = (_OFF["h"] + 4, _OFF["w"] + 4)
_ROW_BITS = (_OFF["b"] + 2, _OFF["d"] + 3, _OFF["h"] + 5, _OFF["w"] + 6, _OFF["c"] + 4)
_ROW_VOL = (_OFF["b"] + 5, _OFF["d"] + 5, _OFF["h"] + 7, _OFF["w"] + 7, _OFF["c"] + 5)
#: What a picked candidate hands to _child: its tiles, tile counts (DIMS order) and real lines of h and w.
_ROW_PICK = np.array(_ROW_T + _ROW_N + list(_ROW_LINES))


def _fits_grid(keep, axes: dict, cap: int, shape: tuple) -> np.ndarray:
    """Flat (C order over b, d, h, w, c: ``shape``) indices of the grid's tiles whose peak words fit ``cap``.

    The footprint of _footprint_grid; with one of X and Y kept the max over the (size,
    lines) pairs separates into a product of per-axis maxima (all terms nonnegative).
    """
    ah, aw = axes["h"], axes["w"]
    if "X" in keep and "Y" in keep:
        fp = _footprint_grid(keep, _along("b", axes["b"]["T"]), _along("d", axes["d"]["T"]),
                             _along("c", axes["c"]["T"]), _along("h", ah["K"]), _along("w", aw["K"]),
                             ah["pairs"], aw["pairs"])
    else:
        if "Y" in keep:
            fp = (axes["b"]["T"].reshape(-1, 1, 1, 1, 1) * axes["d"]["T"].reshape(-1, 1, 1, 1)
                  * ah["pmax"][:, 0].reshape(-1, 1, 1) * aw["pmax"][:, 0].reshape(-1, 1))
        elif "X" in keep:
            fp = (axes["b"]["T"].reshape(-1, 1, 1, 1, 1) * ah["pmax"][:, 1].reshape(-1, 1, 1)
                  * aw["pmax"][:, 1].reshape(-1, 1) * axes["c"]["T"])
        else:
            fp = None
        if "W" in keep:
            w = (axes["d"]["T"].reshape(-1, 1, 1, 1) * ah["K"].reshape(-1, 1, 1) * aw["K"].reshape(-1, 1)
                 * axes["c"]["T"])
            fp = w if fp is None else fp + w
        if fp is None:
            fp = np.zeros(1, dtype=np.int64)
    ok = fp <= cap
    if ok.shape != shape:         # an axis no kept operand depends on (it has one candidate)
        full = np.empty(shape, dtype=bool)
        full[...] = ok
        ok = full
    return np.flatnonzero(ok)


def _column(values: list, counts: list):
    """One value per group -> the value (all equal) or one per column (the columns of each group in turn)."""
    v0 = values[0]
    if all(v == v0 for v in values):
        return v0
    return np.repeat(np.array(values).T, counts, axis=-1)


#: Grids of at most this many tiles in all (the one-word register levels) are costed in plain Python.
_SMALL = 48


def _expand_small(layer: Layer, l: int, groups: list, k: int, orders) -> list:
    """``_expand_groups`` in plain Python, group by group (for tiny grids, where numpy's calls cost
    more than the arithmetic): the same integers and the same float operations in the same order,
    so the same numbers and the same ties."""
    inside, relevant = _loop_masks(tuple(orders))
    inside, relevant = inside[:, :, 0].tolist(), relevant[:, 0].tolist()
    b_c, W, Y = _sizes(layer)[:3]
    out = []
    for arch, mac, st, keep, axes in groups:
        cap = arch.levels[l].capacity
        ab, ad, ah, aw, ac = (axes[x]["tabT"].T.tolist() for x in ("b", "d", "h", "w", "c"))
        pmh, pmw = axes["h"]["pmax"].tolist(), axes["w"]["pmax"].tolist()
        both = "X" in keep and "Y" in keep
        if both:
            ph, pw = axes["h"]["pairs"].tolist(), axes["w"]["pairs"].tolist()
        kY, kX, kW = "Y" in keep, "X" in keep, "W" in keep
        cands = []
        for cb in ab:
            for cd in ad:
                for ih, ch in enumerate(ah):
                    for iw, cw in enumerate(aw):
                        for cc in ac:
                            Tb, Td, Tc = cb[0], cd[0], cc[0]
                            w = Td * ch[1] * cw[1] * Tc if kW else 0
                            if both:
                                fp = max(Tb * Td * th * tw + Tb * Tc * rh * rw
                                         for th, rh in ph[ih] for tw, rw in pw[iw]) + w
                            elif kY:
                                fp = Tb * Td * pmh[ih][0] * pmw[iw][0] + w
                            elif kX:
                                fp = Tb * pmh[ih][1] * pmw[iw][1] * Tc + w
                            else:
                                fp = w
                            if fp <= cap:
                                cands.append((cb, cd, ch, cw, cc))
        res = []
        if cands:
            ahead = [t for t in OPERANDS if mac[t] < l]
            up, fac_up = st.counts[l + 1], st.fac
            above = [up[y] for y in DIMS]
            mine = [fac_up[_OWNER[y]][y] for y in DIMS]
            terms = []              # per operand: (prices of the refills here, of the next ones below)
            for t in sorted(set(keep) | set(ahead)):
                parts = []
                if t in keep:
                    parts.append(_prices(arch, l, st.inner[t], t))
                if t in ahead:
                    parts.append(_prices(arch, _next_inner(arch, mac, t, l), l if t in keep else st.inner[t], t))
                terms.append((t, parts))
            rows = []
            for j, (cb, cd, ch, cw, cc) in enumerate(cands):
                code = cb[2] + cd[3] + ch[5] + cw[6] + cc[4]
                N = (cb[1], cd[1], ch[2], cw[2], cc[1], ch[3], cw[3])
                other = [above[y] if code & relevant[y] else mine[y] for y in range(7)]
                lin = float(ch[4]) * float(cw[4])
                vol = -float(cb[5] * cd[5] * ch[7] * cw[7] * cc[5])
                ests = []
                for o in range(len(orders)):
                    f = [N[y] if code & inside[y][o] else other[y] for y in range(7)]
                    cost = None
                    for t, parts in terms:
                        if t == "X":
                            words = b_c * lin * f[1]
                        elif t == "W":
                            words = W * f[0] * f[2] * f[3]
                        else:
                            words = Y * f[4] * f[5] * f[6]
                        for pin, pback in parts:
                            cost = words * pin if cost is None else cost + words * pin
                            if pback != 0.0:
                                cost = cost + (words - Y) * pback
                    ests.append(st.cost + (0.0 if cost is None else cost))
                tile = (cb[0], cd[0], ch[0], cw[0], cc[0], ch[1], cw[1])
                rows.append((ests, vol, j, tile, list(N) + [ch[4], cw[4]]))
            for o, order in enumerate(orders):
                for ests, vol, j, tile, info in sorted(rows, key=lambda r: (r[0][o], r[1], r[2]))[:k]:
                    res.append((ests[o], vol, order, tile, info))
        out.append(res)
    return out


def _expand_groups(layer: Layer, l: int, groups: list, k: int = 4, orders=_SEARCH_ORDERS) -> list:
    """The best candidate tiles of level l for each group (arch, mac, state, keep, axes), all costed at once.

    Per group and order: the k cheapest fitting tiles by (estimate, -volume), ties in grid
    order, as [(estimate, -volume, order, tile, info)] (orders in turn; tile: the sizes in
    DIMS order; info: the tile counts in DIMS order and the summed real lines of h and w,
    for _child).  The footprint is computed on each group's grid; the costs only on the
    tiles that fit, in arrays of one row per order and one column per fitting tile of any
    group (the estimate of a group adds the same terms in the same order as one group alone:
    another group's prices are exact zeros for it).
    """
    if sum(math.prod(len(axes[x]["T"]) for x in "bdhwc") for *_, axes in groups) <= _SMALL \
            and _sizes(layer)[3] < 1 << 50:       # exact integers in int64 and in float64 alike
        return _expand_small(layer, l, groups, k, orders)
    cols, live, sizes = [], [], []
    for gi, (arch, mac, st, keep, axes) in enumerate(groups):
        ab, ad, ah, aw, ac = axes["b"], axes["d"], axes["h"], axes["w"], axes["c"]
        shape = (len(ab["T"]), len(ad["T"]), len(ah["T"]), len(aw["T"]), len(ac["T"]))
        idx = _fits_grid(keep, axes, arch.levels[l].capacity, shape)
        if not idx.size:
            continue
        ib, id_, ih, iw, ic = np.unravel_index(idx, shape)
        cols.append(np.concatenate((ab["tabT"].take(ib, axis=1), ad["tabT"].take(id_, axis=1),
                                    ah["tabT"].take(ih, axis=1), aw["tabT"].take(iw, axis=1),
                                    ac["tabT"].take(ic, axis=1))))
        live.append(gi)
        sizes.append(idx.size)
    out = [[] for _ in groups]
    if not live:
        return out
    A = np.concatenate(cols, axis=1) if len(cols) > 1 else cols[0]      # one column per fitting candidate
    G = [groups[gi] for gi in live]
    one = len(G) == 1
    b0, b1, b2, b3, b4 = _ROW_BITS
    code = (A[b0] + A[b1] + A[b2] + A[b3] + A[b4]).astype(np.uint8)    # the non-trivial loops (bit i: DIMS[i])
    v0, v1, v2, v3, v4 = _ROW_VOL
    vol = -(A[v0] * A[v1] * A[v2] * A[v3] * A[v4]).astype(np.float64)
    inside, relevant = _loop_masks(tuple(orders))
    # operands still to be fed to a level below: their next refills are estimated as if that
    # level refilled them at this level's loop structure (the fewest refills it can have)
    aheads = [[t for t in OPERANDS if mac[t] < l] for _, mac, _, _, _ in G]
    b_c, W, Y = _sizes(layer)[:3]
    # the repeat factors (_factors at this level) along every dimension, each irrelevant to exactly
    # one operand (_OWNER): the tile's own count when its loop is outside the refill loop (the
    # innermost non-trivial loop relevant to that operand), else the tiles of the level above when
    # the refill loop is here, else the factor of the level above
    above = [[st.counts[l + 1][y] for y in DIMS] for _, _, st, _, _ in G]
    mine = [[st.fac[_OWNER[y]][y] for y in DIMS] for _, _, st, _, _ in G]
    if above == mine:
        other = _column(above, sizes)
        other = np.array(other)[:, None] if isinstance(other, list) else other
    else:
        a_, m_ = _column(above, sizes), _column(mine, sizes)
        other = np.where((code & relevant) != 0, np.array(a_)[:, None] if isinstance(a_, list) else a_,
                         np.array(m_)[:, None] if isinstance(m_, list) else m_)
    fac = np.where((code & inside) != 0, A.take(_ROW_N, axis=0)[:, None], other[:, None])  # (DIMS, orders, columns)
    cost = None
    for t in sorted(set().union(*(set(kp) | set(a) for (_, _, _, kp, _), a in zip(G, aheads)))):
        if t == "X":
            words = b_c * (A[_ROW_LINES[0]].astype(np.float64) * A[_ROW_LINES[1]].astype(np.float64)) * fac[1]
        elif t == "W":
            words = W * fac[0] * fac[2] * fac[3]
        else:
            words = Y * fac[4] * fac[5] * fac[6]
        # the refills into this level, then the next ones of a level below, at per-group prices
        # (0 for a group that does not keep / feed t: it adds exact zeros, the sum is unchanged)
        kept = [t in keep for _, _, _, keep, _ in G]
        fed = [t in a for a in aheads]
        parts = []
        if any(kept):
            parts.append([_prices(arch, l, st.inner[t], t) if kt else (0.0, 0.0)
                          for (arch, _, st, _, _), kt in zip(G, kept)])
        if any(fed):
            parts.append([_prices(arch, _next_inner(arch, mac, t, l), l if kt else st.inner[t], t) if ft else (0.0, 0.0)
                          for (arch, mac, st, _, _), kt, ft in zip(G, kept, fed)])
        for pr in parts:
            p0 = pr[0]
            if one or all(p == p0 for p in pr):
                pin, pback = p0
            else:
                pin = _column([p[0] for p in pr], sizes)
                pback = _column([p[1] for p in pr], sizes)
            # cost + words * pin + (words - Y) * pback, as for one group; 0 + x and x + 0 * y are x
            cost = words * pin if cost is None else cost + words * pin
            if isinstance(pback, np.ndarray) or pback != 0.0:
                cost = cost + (words - Y) * pback
    base = _column([st.cost for _, _, st, _, _ in G], sizes)
    est = base + cost if cost is not None else np.zeros((len(orders), len(vol))) + base
    # per (order, group) block the first k by (estimate, -volume), ties by column: one sort of the
    # (order, column) pairs by (block, estimate, -volume); with many columns only those at or below
    # their block's k-th smallest estimate are sorted (the others cannot be among its first k)
    n, O, Gn = len(vol), len(orders), len(sizes)
    gcol = np.zeros(n, dtype=np.int64) if one else np.repeat(np.arange(Gn), sizes)
    block = np.arange(O)[:, None] * Gn + gcol
    if n > 64:
        thr = np.empty((O, Gn))
        s0 = 0
        for j, m in enumerate(sizes):
            seg = est[:, s0:s0 + m]
            thr[:, j] = seg.max(axis=1) if m <= k else np.partition(seg, k - 1, axis=1)[:, k - 1]
            s0 += m
        flat = np.flatnonzero(est <= thr.take(gcol, axis=1))
        srt = flat.take(np.lexsort((vol.take(flat % n), est.take(flat), block.take(flat))))
    else:
        srt = np.lexsort((np.tile(vol, O), est.ravel(), block.ravel()))
    cnt = np.bincount(block.take(srt), minlength=O * Gn).tolist()
    pos, where = [], []
    s0 = 0
    for o in range(O):
        for j in range(Gn):
            c = cnt[o * Gn + j]
            pos += range(s0, s0 + min(k, c))
            where += [(live[j], o)] * min(k, c)
            s0 += c
    flat = srt.take(pos)
    picks = flat % n
    vals = est.take(flat).tolist()
    for (gi, o), e, v, col in zip(where, vals, vol.take(picks).tolist(),
                                  A.take(picks, axis=1).take(_ROW_PICK, axis=0).T.tolist()):
        out[gi].append((e, v, orders[o], tuple(col[:7]), col[7:]))
    return out


def _child(layer: Layer, arch: Architecture, st: _State, tile: dict, order: str, keep: frozenset,
           info: list) -> _State:
    """The state after fixing level st.l - 1 (exact scalar bookkeeping); ``info``: the tile's counts
    per dimension (DIMS order) and summed real lines of h and w (_axis_info of its chains)."""
    l = st.l - 1
    T = list(st.T)
    T[l] = dict(tile)
    orders = list(st.orders)
    seq = orders[l] = ORDERS.get(order, order)
    keeps = list(st.keeps)
    keeps[l] = keep
    counts = list(st.counts)
    chains = {x: st.chains[x] + (tile[x],) for x in DIMS}
    cnt = counts[l] = dict(zip(DIMS, info[:7]))
    lh, lw = info[7], info[8]
    up = counts[l + 1]
    b_c, W, Y = _sizes(layer)[:3]
    fac, cost, inner, moved, fills = {}, st.cost, dict(st.inner), st.moved, {}
    par = T[l + 1]
    for t in OPERANDS:
        # fill_loops(T, orders, t, l): the innermost non-trivial loop relevant to t at this level,
        # else the one the level above found (its scan goes on from level l + 1)
        rel = RELEVANT[t]
        m0, x0 = next(((l, x) for x in reversed(seq) if x in rel and tile[x] != par[x]),
                      st.fills[t] if st.fills else (None, None))
        fills[t] = (m0, x0)
        if m0 is None:
            f = {y: 1 for y in DIMS if y not in RELEVANT[t]}
        elif m0 == l:
            i0 = seq.index(x0)
            f = {y: (cnt[y] if seq.index(y) < i0 else up[y]) for y in DIMS if y not in RELEVANT[t]}
        else:
            f = st.fac[t]
        fac[t] = f
        if t in keep:
            if t == "X":
                words = b_c * lh * lw * f["d"]
            elif t == "W":
                words = W * f["b"] * f["h"] * f["w"]
            else:
                words = Y * f["c"] * f["r"] * f["s"]
            pin, pback = _prices(arch, l, st.inner[t], t)
            cost += words * pin + (words - Y) * pback
            inner[t] = l
            moved = moved + ((l, t, words),)
    return _State(l, T, orders, keeps, counts, chains, fac, inner, cost, moved, fills)


def _state_counts(layer: Layer, arch: Architecture, st: _State, mac: dict):
    """nested_counts of a final search state's schedule (``arch``: levels in nesting order), from the words
    the search moved (the same closed forms); None if a level overflows (``fits``; it cannot happen)."""
    K = len(arch.levels)
    for l in range(K - 1):
        T, kp = st.T[l], st.keeps[l]
        yc = T["b"] * T["d"] if "Y" in kp else 0
        xc = T["b"] * T["c"] if "X" in kp else 0
        wc = T["d"] * T["c"] * T["r"] * T["s"] if "W" in kp else 0
        if yc or xc:
            ph = _axis_info(layer, "h", st.chains["h"][:K - 1 - l], T["r"])[2].tolist()
            pw = _axis_info(layer, "w", st.chains["w"][:K - 1 - l], T["s"])[2].tolist()
            if not xc:          # one operand: the max over the pairs is the product of the axes' maxima
                wc += yc * max(th for th, _ in ph) * max(tw for tw, _ in pw)
            elif not yc:
                wc += xc * max(rh for _, rh in ph) * max(rw for _, rw in pw)
            else:
                wc += max(yc * th * tw + xc * rh * rw for th, rh in ph for tw, rw in pw)
        if wc > arch.levels[l].capacity:
            return None
    C = _count_table(arch)
    names = [lv.name for lv in arch.levels]
    words = {(l, t): w for l, t, w in st.moved}
    _, _, Y, F, F_real = _sizes(layer)
    for l in range(K - 1):
        for t in sorted(st.keeps[l]):
            p = next(m for m in range(l + 1, K) if t in st.keeps[m])
            w = words[(l, t)]
            if t == "Y":
                C[names[l]]["Y"]["reads"] += w
                C[names[p]]["Y"]["writes"] += w
                C[names[l]]["Y"]["writes"] += w - Y
                C[names[p]]["Y"]["reads"] += w - Y
            else:
                C[names[l]][t]["writes"] += w
                C[names[p]][t]["reads"] += w
    C[names[mac["X"]]]["X"]["reads"] += F_real
    C[names[mac["W"]]]["W"]["reads"] += F
    C[names[mac["Y"]]]["Y"]["reads"] += F - Y
    C[names[mac["Y"]]]["Y"]["writes"] += F
    C["macs"] = F
    return C


def _schedule_of(arch: Architecture, st: _State, nest=None) -> NestedSchedule:
    E = st.T[-1]
    ms = []
    for l in range(len(arch.levels) - 1):
        t = st.T[l]
        ms.append(LevelMapping(b=t["b"], d=t["d"], h=t["h"], w=t["w"], c=t["c"],
                               r=None if t["r"] == E["r"] else t["r"], s=None if t["s"] == E["s"] else t["s"],
                               order=st.orders[l], keep=tuple(x for x in OPERANDS if x in st.keeps[l])))
    return NestedSchedule(tuple(ms), nest=None if nest is None else tuple(nest))


def _min_need(ops) -> int:
    """Words the smallest tile (one output, channel, filter and kernel tap) needs for operands ``ops``."""
    return len(set(ops))


def _seeds(layer: Layer, arch: Architecture, mac: dict) -> list[NestedSchedule]:
    """The exhaustive two-level OS optimum, when the hierarchy is one on-chip level keeping everything."""
    if len(arch.levels) != 2 or set(mac.values()) != {0}:
        return []
    from bounds.output_stationary import os_best
    from complexity.machine import Machine
    try:     # the exhaustive minimum of Q over OS tiles (costs do not matter for the tile)
        t = os_best(layer, Machine(M=arch.levels[0].capacity)).tiles
    except InfeasibleError:
        return []
    return [NestedSchedule((LevelMapping(b=t["b"], d=t["d"], h=t["th"], w=t["tw"], c=t["c"], order="OS"),))]


def best_nested(layer: Layer, arch: Architecture, beam: int = 3, grid: int = 2000) -> NestedResult:
    """The cheapest nested schedule found (docs/dataflow_nested.md, section 6); its energy is an upper bound.

    Beam search from the outermost on-chip level inwards: at each level every kept-operand
    subset, order (OS, WS, IS) and tile from a small grid (ceil(P/n) for the parent's tile
    P, at most ``grid`` per level) is costed with numpy; the ``beam`` cheapest partial
    schedules go on.  Layers of the same shape share the result (cached).  Raises
    NestedInfeasibleError naming the level when a level cannot hold its smallest tile.
    """
    shape = dataclasses.replace(layer, name="") if layer.name else layer
    r = _best_cached(shape, arch, beam, grid)
    # the cached result is shared: hand out copies of its mutable parts
    counts = {k: (v if k == "macs" else {t: dict(rw) for t, rw in v.items()}) for k, v in r.counts.items()}
    return dataclasses.replace(r, counts=counts, tiles=dict(r.tiles), orders=dict(r.orders),
                               levels=tuple(dict(e) for e in r.levels))


@lru_cache(maxsize=1024)
def _best_cached(layer: Layer, arch: Architecture, beam: int, grid: int) -> NestedResult:
    """best_nested for one layer shape (names stripped so that equal shapes share the entry)."""
    mac = mac_levels(arch)
    for l in range(len(arch.levels) - 1):
        must = [t for t in OPERANDS if mac[t] == l]
        need = _min_need(must)
        if must and need > arch.levels[l].capacity:
            raise NestedInfeasibleError(arch.levels[l].name, arch.levels[l].capacity, need,
                                        "the operands MACs read from it (" + ", ".join(must) + ")")
    nests = _nests(arch)
    # two nesting orders: a narrower beam each (same total effort)
    scheds = _beams(layer, arch, nests, max(1, beam - len(nests) + 1), grid)
    scheds += [(sch, _counts_if_fits(layer, arch, sch)) for sch in _seeds(layer, arch, mac)]
    best = None
    for sch, counts in scheds:
        if counts is None:
            continue
        E, rows = _energy_of(arch, counts)
        if best is None or E < best[0]:
            best = (E, rows, counts, sch)
    if best is None:                      # cannot happen: every candidate was checked to fit
        lv = arch.onchip[0]
        raise NestedInfeasibleError(lv.name, lv.capacity, _min_need(lv.operands), "its operands")
    E, rows, counts, sch = best
    names = sch.nest if sch.nest is not None else [lv.name for lv in arch.onchip]
    return NestedResult(schedule=sch, counts=counts, E_pJ=E, levels=tuple(rows), tiles=sch.tiles(arch),
                        orders={n: m.order for n, m in zip(names, sch.levels)})


def _counts_if_fits(layer: Layer, arch: Architecture, sch: NestedSchedule):
    """nested_counts of the schedule, or None when it does not fit (``fits``); one plan and analysis for both."""
    plan = _plan(layer, arch, sch)
    arch = nest_architecture(arch, sch.nest)
    an = _analysis(layer, arch, plan)
    if any(_footprint(layer, plan, an, l) > arch.levels[l].capacity for l in range(len(arch.levels) - 1)):
        return None
    return _counts_from(layer, arch, plan, an)


def _level_key(arch: Architecture, mac: dict, l: int) -> tuple:
    """What the search step at level l takes from the architecture besides the levels above it: the level,
    which operands MACs read from it or below, and the levels below that the estimates refill them into."""
    return (arch.levels[l].name,) + tuple(
        (mac[t] < l, mac[t] == l, arch.levels[_next_inner(arch, mac, t, l)].name if mac[t] < l else None)
        for t in OPERANDS)


class _Beam:
    """The beam search of one nesting order: its architecture (levels in nesting order) and states."""

    def __init__(self, layer: Layer, arch: Architecture, nest):
        self.nest = nest
        self.arch, self.mac, self.keeps, self.level_keys = _nest_static(arch, nest)
        self.states = [_root(layer, self.arch)]
        self.key = ()           # the levels searched so far (_level_key): equal keys, equal states
        self.error = None


@lru_cache(maxsize=256)
def _nest_static(arch: Architecture, nest) -> tuple:
    """(architecture in nesting order, mac_levels, keep options per level, _level_key per level)."""
    a = nest_architecture(arch, nest)
    mac = mac_levels(a)
    K = len(a.levels)
    return a, mac, [_keep_options(a, mac, l) for l in range(K - 1)], [_level_key(a, mac, l) for l in range(K - 1)]


def _beams(layer: Layer, arch: Architecture, nests, beam: int, grid: int) -> list:
    """The beam search for every nesting order, level by level from the outermost: the final schedules
    (those of the first nesting order first), each with its counts (None if it does not fit).

    The nesting orders differ in the inner levels only: while the levels searched so far
    are the same (equal ``_level_key``), the searches are one; every level's tiles of all
    searches, states and keep sets are costed in one call (_expand_groups).  A search
    that finds no tile for a level raises NestedInfeasibleError naming it (the first
    nesting order's error first).
    """
    beams = [_Beam(layer, arch, nest) for nest in nests]
    for l in range(len(arch.levels) - 2, -1, -1):
        runs = {}                       # key -> the search that runs it (the others share its states)
        for b in beams:
            if b.error is None:
                b.key = b.key + (b.level_keys[l],)
                runs.setdefault(b.key, b)
        groups, owner = [], []
        for b in runs.values():
            cap = b.arch.levels[l].capacity
            for si, st in enumerate(b.states):
                for keep in b.keeps[l]:
                    rel = set().union(*(RELEVANT[t] for t in keep)) if keep else set()
                    axes = _axes(layer, st, l, rel)
                    if math.prod(len(a["T"]) for a in axes.values()) > grid:
                        axes = _prune(axes, keep, cap)
                        if any(len(a["T"]) == 0 for a in axes.values()):
                            continue
                        axes = _thin(axes, grid)
                    groups.append((b.arch, b.mac, st, keep, axes))
                    owner.append((b, si, keep))
        # the beam takes the first ``beam`` distinct schedules of the candidates sorted by (estimate,
        # -volume); the first ``beam`` of each (state, keep set, order) are distinct, so no later
        # one of them can be taken: min(4, beam) per block suffice (4: the original list's length)
        found = _expand_groups(layer, l, groups, min(4, beam)) if groups else []
        for b in runs.values():
            cands = [(est, nvol, si, order, keep, tile, info)
                     for (ob, si, keep), res in zip(owner, found) if ob is b for est, nvol, order, tile, info in res]
            if not cands:
                lv = b.arch.levels[l]
                b.error = NestedInfeasibleError(lv.name, lv.capacity, _min_need(lv.operands),
                                                "the operands it must keep")
                continue
            cands.sort(key=lambda c: (c[0], c[1]))
            picked, seen = [], set()
            for c in cands:
                # the order of trivial loops (tile = parent's) changes nothing: same schedule
                par = b.states[c[2]].T[l + 1]
                tile = c[5]
                live = "".join(x for x in ORDERS.get(c[3], c[3]) if tile[_DIM_INDEX[x]] != par[x])
                sig = (c[2], live, c[4], tile)
                if sig in seen:
                    continue
                seen.add(sig)
                picked.append(c)
                if len(picked) >= beam:
                    break
            b.states = [_child(layer, b.arch, b.states[si], dict(zip(DIMS, tile)), order, keep, info)
                        for _, _, si, order, keep, tile, info in picked]
        for b in beams:
            if b.error is None and runs[b.key] is not b:
                b.states, b.error = runs[b.key].states, runs[b.key].error
    for b in beams:
        if b.error is not None:
            raise b.error
    return [(_schedule_of(b.arch, st, b.nest), _state_counts(layer, b.arch, st, b.mac))
            for b in beams for st in b.states]
