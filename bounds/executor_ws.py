"""Reference executor of the weight-stationary dataflow: the loop nest of docs/dataflow_ws.md, word by word.

It runs on bounds.machine_sim.TwoLevelMachine, which refuses to hold more than M words
and counts every load, store, Buffer access and MAC, so the closed forms of
bounds/weight_stationary.py can be checked against a real execution.
"""

from __future__ import annotations

import numpy as np

from bounds.machine_sim import Counts, TwoLevelMachine
from bounds.weight_stationary import WSTiles
from complexity.layer import Layer

__all__ = ["run_ws"]


def _window(i: int, s: int, p: int, k: int, n: int) -> range:
    """Real input positions (padding excluded) of output position ``i`` along one axis."""
    a = i * s - p
    return range(max(0, a), min(n, a + k))


def run_ws(layer: Layer, tiles: WSTiles, M: int, x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, Counts]:
    """Execute WS with Buffer capacity ``M``; return (y read from DRAM, counts).

    Raises bounds.machine_sim.BufferOverflow when the tiles do not fit in ``M``.
    """
    L = layer
    tiles.check(L)
    D, C = int(tiles.D), int(tiles.C)
    nh, nw, cg, dg = L.nh, L.nw, L.cg, L.dg
    m = TwoLevelMachine.for_layer(L, M, x, w)

    # used columns: read by some output column's window (padding and skipped columns never loaded)
    used_cols = sorted({col for j in range(nw) for col in _window(j, L.sw, L.pw, L.kw, L.w)})
    rows_of = [set(_window(i, L.sh, L.ph, L.kh, L.h)) for i in range(nh)]

    for grp in range(L.groups):                      # groups one after another
        for d0 in range(0, dg, D):                   # filter block
            filters = range(grp * dg + d0, grp * dg + min(dg, d0 + D))
            for c0 in range(0, cg, C):               # channel block (local channel indices)
                chans = range(c0, min(cg, c0 + C))
                first = c0 == 0                  # the first channel block creates the partial sums
                wkeys = [("W", o, ci, r, s) for o in filters for ci in chans
                         for r in range(L.kh) for s in range(L.kw)]
                for k in wkeys:
                    m.load(k)
                for n in range(L.b):                 # batch inside the block
                    resident: set = set()
                    for i in range(nh):              # slide the row window by sh
                        need = rows_of[i]
                        for r in sorted(resident - need):
                            for ci in chans:
                                for col in used_cols:
                                    m.evict(("X", n, grp * cg + ci, r, col))
                        for r in sorted(need - resident):
                            for ci in chans:
                                for col in used_cols:
                                    m.load(("X", n, grp * cg + ci, r, col))
                        resident = need
                        for j in range(nw):
                            for o in filters:        # one partial sum resident at a time
                                yk = ("Y", n, o, i, j)
                                if not first:
                                    m.load(yk)
                                for ci in chans:
                                    for r in range(L.kh):
                                        xr = i * L.sh - L.ph + r
                                        for s in range(L.kw):
                                            xc = j * L.sw - L.pw + s
                                            xk = (("X", n, grp * cg + ci, xr, xc)
                                                  if 0 <= xr < L.h and 0 <= xc < L.w else None)
                                            wk = ("W", o, ci, r, s)
                                            m.mac(yk, wk, xk, tag=(yk, wk))
                                m.store(yk)          # partial (not last) or final (last) value
                    for r in sorted(resident):
                        for ci in chans:
                            for col in used_cols:
                                m.evict(("X", n, grp * cg + ci, r, col))
                for k in wkeys:
                    m.evict(k)
    return m.output(L), m.counts()
