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

import copy
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
def _axis_cached(n: int, k: int, s: int, p: int, E: int, chain: tuple, Tk: int):
    """(tiles, summed real lines, (size, lines) pairs) of an output axis tiled by ``chain``."""
    st, sz = _pos(E, chain)
    lines, pairs = _axis_terms(st, sz, n, k, s, p, Tk)
    return len(st), lines, pairs


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
                counts[l][x] = len(_pos(E[x], chain)[0])
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
    keeping t so far; ``cost``: pJ of the refills of the levels chosen.
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


def _axis_info(L: Layer, ax: str, chain: tuple, Tk: int):
    E = _extents(L)[ax]
    if ax in "hw":
        n, k, s, p = _axis_params(L, ax)
        return _axis_cached(n, k, s, p, E, chain, Tk)
    return len(_pos(E, chain)[0]), 0, None


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
    E = _extents(layer)
    axes = {}
    for x in ("b", "d", "c"):
        vals = _cands(P[x]) if x in rel else [P[x]]
        axes[x] = {"T": np.array(vals), "N": np.array([_axis_info(layer, x, st.chains[x] + (v,), 0)[0]
                                                       for v in vals])}
    for ax, kx in (("h", "r"), ("w", "s")):
        vals = _cands(P[ax]) if ax in rel else [P[ax]]
        ks = ([1] if (kx in rel and P[kx] > 1) else []) + [P[kx]]   # smallest first (see _prune)
        combos = [(v, kv) for kv in ks for v in vals]
        rows = [_axis_info(layer, ax, st.chains[ax] + (v,), kv) for v, kv in combos]
        npair = max(len(r[2]) for r in rows)
        pairs = np.zeros((len(rows), npair, 2), dtype=np.int64)
        for i, r in enumerate(rows):
            pairs[i, :len(r[2])] = r[2]
        axes[ax] = {"T": np.array([c[0] for c in combos]), "K": np.array([c[1] for c in combos]),
                    "N": np.array([r[0] for r in rows]), "NK": np.array([E[kx] // c[1] for c in combos]),
                    "lines": np.array([r[1] for r in rows], dtype=np.float64), "pairs": pairs}
    return axes


def _prune(axes: dict, keep, cap: int) -> dict:
    """Drop the candidates of an axis that overflow even with every other axis at its smallest tile.

    The footprint is nondecreasing along every axis, so such a candidate never fits.
    """
    first = {x: 0 for x in axes}
    out = {}
    for x in axes:
        idx = {y: (slice(None) if y == x else slice(first[y], first[y] + 1)) for y in axes}

        def pick(y, key):
            return _along(y, axes[y][key][idx[y]])
        fp = _footprint_grid(keep, pick("b", "T"), pick("d", "T"), pick("c", "T"), pick("h", "K"),
                             pick("w", "K"), axes["h"]["pairs"][idx["h"]], axes["w"]["pairs"][idx["w"]])
        ok = np.flatnonzero(fp.ravel() <= cap)
        out[x] = {k: v[ok] for k, v in axes[x].items()}
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
        axes[x] = {k: v[keep] for k, v in axes[x].items()}
    return axes


def _next_inner(arch: Architecture, mac: dict, t: str, l: int) -> int:
    """The level that will refill ``t`` from above next, below level l (the MAC level when bypassing is allowed)."""
    if getattr(arch, "bypass", True):
        return mac[t]
    return max(m for m in range(mac[t], l) if t in arch.levels[m].operands)


def _expand(layer: Layer, arch: Architecture, st: _State, keep: frozenset, orders, axes: dict, mac: dict):
    """The best candidate tiles of level st.l - 1 for one keep set: [(estimate, -volume, order, tile)].

    The footprint is computed on the whole grid; the costs only on the tiles that fit
    (flat arrays, one entry per fitting tile).
    """
    l = st.l - 1
    cap = arch.levels[l].capacity
    P = st.T[l + 1]
    Tg = {x: _along(x, axes[x]["T"]) for x in ("b", "d", "c")}
    fp = _footprint_grid(keep, Tg["b"], Tg["d"], Tg["c"], _along("h", axes["h"]["K"]), _along("w", axes["w"]["K"]),
                         axes["h"]["pairs"], axes["w"]["pairs"])
    idx = np.flatnonzero(fp <= cap)
    if not idx.size:
        return []
    ib, id_, ih, iw, ic = np.unravel_index(idx, fp.shape)
    sel = {"b": ib, "d": id_, "h": ih, "w": iw, "c": ic}
    T = {x: axes[x]["T"][sel[x]] for x in ("b", "d", "c", "h", "w")}
    T["r"], T["s"] = axes["h"]["K"][ih], axes["w"]["K"][iw]
    N = {x: axes[x]["N"][sel[x]] for x in ("b", "d", "c", "h", "w")}
    N["r"], N["s"] = axes["h"]["NK"][ih], axes["w"]["NK"][iw]
    nontriv = {x: T[x] != P[x] for x in DIMS}
    inner = dict(st.inner)
    for t in keep:
        inner[t] = l
    base = st.cost
    # operands still to be fed to a level below: their next refills are estimated as if that
    # level refilled them at this level's loop structure (the fewest refills it can have)
    ahead = [t for t in OPERANDS if mac[t] < l]
    vol = -(T["b"] * T["d"] * T["h"] * T["w"] * T["c"] * T["r"] * T["s"]).astype(np.float64)
    lines = axes["h"]["lines"][ih] * axes["w"]["lines"][iw]
    zero = np.zeros(idx.size, dtype=bool)
    out = []
    seen = {}
    for order in orders:
        pos_o = {x: i for i, x in enumerate(ORDERS.get(order, order))}
        # the cost at this level depends on the order only through, per kept operand, which
        # irrelevant loops come before which relevant ones: orders with the same pattern share it
        pattern = tuple(tuple(x in RELEVANT[t] for x in ORDERS.get(order, order)) for t in OPERANDS)
        if pattern in seen:
            cost = seen[pattern]
        else:
            cost = np.zeros(idx.size)
            seq = ORDERS.get(order, order)
            for t in sorted(set(keep) | set(ahead)):
                # hit[k]: some non-trivial loop relevant to t at position >= k of this level's order
                hit = [zero] * (len(seq) + 1)
                for k in range(len(seq) - 1, -1, -1):
                    hit[k] = (hit[k + 1] | nontriv[seq[k]]) if seq[k] in RELEVANT[t] else hit[k + 1]
                fac = {}
                for y in DIMS:
                    if y in RELEVANT[t]:
                        continue
                    fac[y] = np.where(hit[pos_o[y] + 1], N[y], np.where(hit[0], st.counts[l + 1][y], st.fac[t][y]))
                if t == "X":
                    words = (layer.b * layer.c) * lines * fac["d"]
                elif t == "W":
                    words = layer.W * fac["b"] * fac["h"] * fac["w"]
                else:
                    words = layer.Y * fac["c"] * fac["r"] * fac["s"]
                if t in keep:
                    pin, pback = _prices(arch, l, st.inner[t], t)
                    cost = cost + words * pin + (words - layer.Y) * pback
                if t in ahead:
                    pin, pback = _prices(arch, _next_inner(arch, mac, t, l), inner[t], t)
                    cost = cost + words * pin + (words - layer.Y) * pback
            seen[pattern] = cost
        est = base + cost
        for j in np.lexsort((vol, est))[:4]:
            tile = {x: int(T[x][j]) for x in DIMS}
            out.append((float(est[j]), float(vol[j]), order, tile))
    return out


def _child(layer: Layer, arch: Architecture, st: _State, tile: dict, order: str, keep: frozenset) -> _State:
    """The state after fixing level st.l - 1 (exact scalar bookkeeping)."""
    l = st.l - 1
    T = list(st.T)
    T[l] = dict(tile)
    orders = list(st.orders)
    orders[l] = ORDERS.get(order, order)
    keeps = list(st.keeps)
    keeps[l] = keep
    counts = list(st.counts)
    chains = {x: st.chains[x] + (tile[x],) for x in DIMS}
    cnt, lines = {}, {}
    for x in DIMS:
        Tk = tile["r" if x == "h" else "s"] if x in "hw" else 0
        info = _axis_info(layer, x, chains[x], Tk) if x not in "rs" else (len(_pos(_extents(layer)[x], chains[x])[0]),)
        cnt[x] = info[0]
        if x in "hw":
            lines[x] = info[1]
    counts[l] = cnt
    fac, cost, inner = {}, st.cost, dict(st.inner)
    for t in OPERANDS:
        m0, x0 = fill_loops(T, orders, t, l)
        f = {}
        for y in DIMS:
            if y in RELEVANT[t]:
                continue
            if m0 is None:
                f[y] = 1
            elif m0 == l:
                f[y] = cnt[y] if orders[l].index(y) < orders[l].index(x0) else counts[l + 1][y]
            else:
                f[y] = st.fac[t][y]
        fac[t] = f
        if t in keep:
            if t == "X":
                words = layer.b * layer.c * lines["h"] * lines["w"] * f["d"]
            elif t == "W":
                words = layer.W * f["b"] * f["h"] * f["w"]
            else:
                words = layer.Y * f["c"] * f["r"] * f["s"]
            pin, pback = _prices(arch, l, st.inner[t], t)
            cost += words * pin + (words - layer.Y) * pback
            inner[t] = l
    return _State(l, T, orders, keeps, counts, chains, fac, inner, cost)


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
    shape = layer.replace(name="") if layer.name else layer
    r = _best_cached(shape, arch, beam, grid)
    # the cached result is shared: hand out copies of its mutable parts
    return dataclasses.replace(r, counts=copy.deepcopy(r.counts), tiles=dict(r.tiles), orders=dict(r.orders),
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
    scheds = []
    nests = _nests(arch)
    for nest in nests:     # two nesting orders: a narrower beam each (same total effort)
        scheds += _beam(layer, nest_architecture(arch, nest), max(1, beam - len(nests) + 1), grid, nest)
    scheds += _seeds(layer, arch, mac)
    best = None
    for sch in scheds:
        if not fits(layer, arch, sch):
            continue
        counts = nested_counts(layer, arch, sch)
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


def _beam(layer: Layer, arch: Architecture, beam: int, grid: int, nest) -> list:
    """The beam search on ``arch`` (levels already in nesting order): the final schedules."""
    mac = mac_levels(arch)
    states = [_root(layer, arch)]
    while states[0].l > 0:
        l = states[0].l - 1
        cands = []
        cap = arch.levels[l].capacity
        for si, st in enumerate(states):
            for keep in _keep_options(arch, mac, l):
                rel = set().union(*(RELEVANT[t] for t in keep)) if keep else set()
                axes = _axes(layer, st, l, rel)
                if math.prod(len(a["T"]) for a in axes.values()) > grid:
                    axes = _prune(axes, keep, cap)
                    if any(len(a["T"]) == 0 for a in axes.values()):
                        continue
                    axes = _thin(axes, grid)
                for est, nvol, order, tile in _expand(layer, arch, st, keep, _SEARCH_ORDERS, axes, mac):
                    cands.append((est, nvol, si, order, keep, tile))
        if not cands:
            lv = arch.levels[l]
            raise NestedInfeasibleError(lv.name, lv.capacity, _min_need(arch.levels[l].operands),
                                        "the operands it must keep")
        cands.sort(key=lambda c: (c[0], c[1]))
        picked, seen = [], set()
        for c in cands:
            # the order of trivial loops (tile = parent's) changes nothing: same schedule
            par = states[c[2]].T[l + 1]
            live = "".join(x for x in ORDERS.get(c[3], c[3]) if c[5][x] != par[x])
            sig = (c[2], live, c[4], tuple(sorted(c[5].items())))
            if sig in seen:
                continue
            seen.add(sig)
            picked.append(c)
            if len(picked) >= beam:
                break
        states = [_child(layer, arch, states[si], tile, order, keep) for _, _, si, order, keep, tile in picked]
    return [_schedule_of(arch, st, nest) for st in states]
