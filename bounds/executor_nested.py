"""Reference executor of a nested-tiling schedule on a multi-level hierarchy, word by word.

Every on-chip level is a dict of at most ``capacity`` words (one instance: the execution
is serial, see docs/dataflow_nested.md); DRAM holds the inputs and weights at the start
and must hold every output at the end.  The loop nest of the schedule is run literally:
each level refills an operand at every iteration of its refill loop (the innermost loop
at or above it that changes the operand's words), copying each word from the next level
out that keeps the operand, and drops (X, W) or writes back (Y) the words at the end of
the iteration.  Every MAC reads its operands where the architecture says.  Every read
and write is counted, the occupancy of every level is checked after every step, and the
output is compared with bounds/reference_conv.py by the tests.
"""

from __future__ import annotations

import numpy as np

from bounds.machine_sim import BufferOverflow, ModelViolation
from bounds.nested import DIMS, RELEVANT, NestedSchedule, _plan, nest_architecture
from complexity.architecture import Architecture
from complexity.layer import Layer

__all__ = ["run_nested"]


def _lines(i0: int, th: int, r0: int, tr: int, n: int, s: int, p: int) -> list[int]:
    """Real input lines read by output lines i0..i0+th-1 through kernel taps r0..r0+tr-1 (by enumeration)."""
    return sorted({i * s - p + r for i in range(i0, i0 + th) for r in range(r0, r0 + tr)
                   if 0 <= i * s - p + r < n})


class _Run:
    def __init__(self, layer: Layer, arch: Architecture, schedule: NestedSchedule, x, w):
        L = layer
        if x.shape != (L.b, L.c, L.h, L.w):
            raise ValueError(f"x has shape {x.shape}, expected {(L.b, L.c, L.h, L.w)}")
        if w.shape != (L.d, L.cg, L.kh, L.kw):
            raise ValueError(f"w has shape {w.shape}, expected {(L.d, L.cg, L.kh, L.kw)}")
        self.plan = _plan(layer, arch, schedule)
        arch = nest_architecture(arch, schedule.nest)       # levels in the order their tiles nest
        self.L, self.arch = L, arch
        self.K = len(arch.levels)
        self.names = [lv.name for lv in arch.levels]
        self.cap = [lv.capacity for lv in arch.levels]
        self.store = [dict() for _ in range(self.K)]
        self.store[-1].update({("X",) + i: float(v) for i, v in np.ndenumerate(x)})
        self.store[-1].update({("W",) + i: float(v) for i, v in np.ndenumerate(w)})
        self.counts = {lv.name: {t: {"reads": 0, "writes": 0} for t in lv.operands} for lv in arch.levels}
        self.peak = {n: 0 for n in self.names[:-1]}
        self.started: set = set()
        self.macs = 0
        self.resident = {}
        # refill loop of each (level, operand): innermost non-trivial loop relevant to it, at levels >= l
        T = self.plan.T
        self.at: dict = {}
        for l in range(self.K - 1):
            for t in self.plan.keep[l]:
                where = (None, None)
                for m in range(l, self.K - 1):
                    hit = [x for x in self.plan.orders[m] if x in RELEVANT[t] and T[m][x] != T[m + 1][x]]
                    if hit:
                        where = (m, hit[-1])
                        break
                self.at.setdefault(where, []).append((l, t))

    # ----- storage --------------------------------------------------------------------
    def _put(self, l: int, key, value) -> None:
        st = self.store[l]
        if key not in st and self.cap[l] is not None and len(st) >= self.cap[l]:
            raise BufferOverflow(f"level {self.names[l]!r} of {self.cap[l]} words is full; cannot hold {key!r}")
        st[key] = value
        if l < self.K - 1 and len(st) > self.peak[self.names[l]]:
            self.peak[self.names[l]] = len(st)

    def _count(self, l: int, t: str, what: str) -> None:
        self.counts[self.names[l]][t][what] += 1

    def _parent(self, t: str, l: int) -> int:
        return next(m for m in range(l + 1, self.K) if t in self.plan.keep[m])

    # ----- the words of an operand in the current tile ----------------------------------------
    def _keys(self, t: str, g: int, rng: dict) -> list:
        L = self.L
        R = {x: range(rng[x][0], rng[x][0] + rng[x][1]) for x in DIMS}
        if t == "W":
            return [("W", g * L.dg + o, ci, r, s) for o in R["d"] for ci in R["c"] for r in R["r"] for s in R["s"]]
        if t == "Y":
            return [("Y", n, g * L.dg + o, i, j) for n in R["b"] for o in R["d"] for i in R["h"] for j in R["w"]]
        rows = _lines(rng["h"][0], rng["h"][1], rng["r"][0], rng["r"][1], L.h, L.sh, L.ph)
        cols = _lines(rng["w"][0], rng["w"][1], rng["s"][0], rng["s"][1], L.w, L.sw, L.pw)
        return [("X", n, g * L.cg + ci, y, q) for n in R["b"] for ci in R["c"] for y in rows for q in cols]

    def _fill(self, l: int, t: str, g: int, rng: dict) -> None:
        p = self._parent(t, l)
        keys = self._keys(t, g, rng)
        for k in keys:
            if t == "Y" and k not in self.started:
                continue                       # created by its first MAC (or a spill from below)
            if k not in self.store[p]:
                raise ModelViolation(f"{self.names[l]} refills {k!r}, which {self.names[p]} does not hold")
            self._count(p, t, "reads")
            self._put(l, k, self.store[p][k])
            self._count(l, t, "writes")
        self.resident[(l, t)] = keys

    def _drop(self, l: int, t: str) -> None:
        keys = self.resident.pop((l, t))
        st = self.store[l]
        if t != "Y":
            for k in keys:
                del st[k]
            return
        p = self._parent(t, l)
        for k in keys:                          # write every partial sum back to the level above
            if k not in st:
                raise ModelViolation(f"output {k!r} missing from {self.names[l]} at the end of its tile")
            self._count(l, t, "reads")
            self._put(p, k, st.pop(k))
            self._count(p, t, "writes")

    # ----- the loop nest ---------------------------------------------------------------
    def run(self) -> None:
        L = self.L
        full = {"b": (0, L.b), "d": (0, L.dg), "h": (0, L.nh), "w": (0, L.nw), "c": (0, L.cg),
                "r": (0, L.kh), "s": (0, L.kw)}
        for g in range(L.groups):
            ev = self.at.get((None, None), [])
            for l, t in sorted(ev, key=lambda e: -e[0]):
                self._fill(l, t, g, full)
            self._level(self.K - 2, g, full)
            for l, t in sorted(ev, key=lambda e: e[0]):
                self._drop(l, t)

    def _level(self, m: int, g: int, rng: dict) -> None:
        order, T = self.plan.orders[m], self.plan.T[m]

        def rec(i: int, rng: dict) -> None:
            if i == len(order):
                if m == 0:
                    self._macs(g, rng)
                else:
                    self._level(m - 1, g, rng)
                return
            x = order[i]
            a, size = rng[x]
            ev = self.at.get((m, x), [])
            for st in range(a, a + size, T[x]):
                r2 = dict(rng)
                r2[x] = (st, min(T[x], a + size - st))
                for l, t in sorted(ev, key=lambda e: -e[0]):   # outer levels first
                    self._fill(l, t, g, r2)
                rec(i + 1, r2)
                for l, t in sorted(ev, key=lambda e: e[0]):    # inner levels write back first
                    self._drop(l, t)

        rec(0, rng)

    def _macs(self, g: int, rng: dict) -> None:
        L, mac = self.L, self.plan.mac
        sx, sw_, sy = self.store[mac["X"]], self.store[mac["W"]], self.store[mac["Y"]]
        R = {x: range(rng[x][0], rng[x][0] + rng[x][1]) for x in DIMS}
        for n in R["b"]:
            for od in R["d"]:
                o = g * L.dg + od
                for i in R["h"]:
                    for j in R["w"]:
                        yk = ("Y", n, o, i, j)
                        for ci in R["c"]:
                            for r in R["r"]:
                                row = i * L.sh - L.ph + r
                                for s in R["s"]:
                                    col = j * L.sw - L.pw + s
                                    wk = ("W", o, ci, r, s)
                                    if wk not in sw_:
                                        raise ModelViolation(f"MAC needs {wk!r} in {self.names[mac['W']]}")
                                    self._count(mac["W"], "W", "reads")
                                    xv = 0.0
                                    if 0 <= row < L.h and 0 <= col < L.w:
                                        xk = ("X", n, g * L.cg + ci, row, col)
                                        if xk not in sx:
                                            raise ModelViolation(f"MAC needs {xk!r} in {self.names[mac['X']]}")
                                        self._count(mac["X"], "X", "reads")
                                        xv = sx[xk]
                                    if yk in sy:
                                        self._count(mac["Y"], "Y", "reads")
                                        self._put(mac["Y"], yk, sy[yk] + sw_[wk] * xv)
                                    else:
                                        if yk in self.started:
                                            raise ModelViolation(f"partial sum {yk!r} not in {self.names[mac['Y']]}")
                                        self.started.add(yk)
                                        self._put(mac["Y"], yk, sw_[wk] * xv)
                                    self._count(mac["Y"], "Y", "writes")
                                    self.macs += 1

    def output(self) -> np.ndarray:
        L = self.L
        y = np.empty((L.b, L.d, L.nh, L.nw))
        dram = self.store[-1]
        for idx in np.ndindex(y.shape):
            key = ("Y",) + idx
            if key not in dram:
                raise ModelViolation(f"output {key!r} was never written to DRAM")
            y[idx] = dram[key]
        for l in range(self.K - 1):
            if self.store[l]:
                raise ModelViolation(f"level {self.names[l]!r} still holds {len(self.store[l])} words at the end")
        return y


def run_nested(layer: Layer, arch: Architecture, schedule: NestedSchedule, x: np.ndarray,
               w: np.ndarray) -> tuple[np.ndarray, dict]:
    """Run ``schedule`` word by word; return the output (b, d, nh, nw) and the counts.

    Counts: {level name: {operand: {"reads", "writes"}}, "macs": MACs done, "peak":
    {on-chip level name: most words held at once}}.  Raises BufferOverflow when a level
    would exceed its capacity, ModelViolation when a word is missing where it is needed.
    """
    run = _Run(layer, arch, schedule, x, w)
    run.run()
    y = run.output()
    counts = dict(run.counts)
    counts["macs"] = run.macs
    counts["peak"] = dict(run.peak)
    return y, counts
