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

import itertools
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from bounds.result import InfeasibleError
from complexity.architecture import OPERANDS, Architecture
from complexity.layer import Layer

__all__ = ["DIMS", "RELEVANT", "ORDERS", "LevelMapping", "NestedSchedule", "NestedScheduleError",
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
    """One LevelMapping per on-chip level of the architecture, innermost first (DRAM has none)."""

    levels: tuple[LevelMapping, ...]

    def tiles(self, arch: Architecture) -> dict:
        """Flat {"<level>.<B|D|Th|Tw|C|Kh|Kw>": int} for JSON (kernel None stays None -> omitted)."""
        out = {}
        for lv, m in zip(arch.onchip, self.levels):
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
    return {"b": L.b, "d": L.dg, "h": L.nh, "w": L.nw, "c": L.cg, "r": L.kh, "s": L.kw}


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


def _plan(layer: Layer, arch: Architecture, sched: NestedSchedule) -> _Plan:
    K = len(arch.levels)
    if not isinstance(sched, NestedSchedule):
        raise NestedScheduleError("schedule", f"must be a NestedSchedule, got {type(sched).__name__}")
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
            if x in "rs" and v != E[x] and (l != 0 or v != 1):
                raise NestedScheduleError(f"{key}.{x}", "the kernel is split only at the innermost level, "
                                                         "into single taps (1)")
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
            if mac[op] == l:
                kp.add(op)
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


def _positions(E: int, chain) -> tuple[np.ndarray, np.ndarray]:
    """Tile positions after splitting [0, E) by the tile sizes ``chain`` (outermost first)."""
    st, sz = np.array([0], dtype=np.int64), np.array([E], dtype=np.int64)
    for T in chain:
        st, sz = _split(st, sz, int(T))
    return st, sz


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
    u = np.unique(pairs, axis=0)
    keep = [not np.any((u[:, 0] >= a) & (u[:, 1] >= b) & ((u[:, 0] > a) | (u[:, 1] > b))) for a, b in u]
    return u[np.array(keep, dtype=bool)]


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
            chain = [plan.T[m][x] for m in range(K - 2, l - 1, -1)]
            st, sz = _positions(E[x], chain)
            counts[l][x] = len(st)
            if x in "hw":
                n, k, s, p = _axis_params(layer, x)
                Tk = plan.T[l]["r" if x == "h" else "s"]
                RL[l][x], pairs[l][x] = _axis_terms(st, sz, n, k, s, p, Tk)
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
    an = _analysis(layer, arch, plan)
    return {arch.levels[l].name: _footprint(layer, plan, an, l) for l in range(len(arch.levels) - 1)}


def fits(layer: Layer, arch: Architecture, schedule: NestedSchedule) -> bool:
    """True when every on-chip level's peak stays within its capacity per instance."""
    fp = nested_footprints(layer, arch, schedule)
    return all(fp[lv.name] <= lv.capacity for lv in arch.onchip)
