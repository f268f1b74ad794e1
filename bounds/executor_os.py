"""Reference executor of the output-stationary (OS) loop nest, word by word.

Runs exactly the loop nest of docs/dataflow_os.md (section 2) on a capacity-checked
TwoLevelMachine, so its counts can be compared with the closed forms of
bounds/output_stationary.py and its output with bounds/reference_conv.py.
"""

from __future__ import annotations

import numpy as np

from bounds.machine_sim import Counts, TwoLevelMachine
from bounds.output_stationary import OSTiles, _as_tiles
from complexity.layer import Layer

__all__ = ["run_os", "tile_lines"]


def tile_lines(first: int, last: int, n: int, k: int, s: int, p: int) -> list[int]:
    """Real input lines (0 <= line < n) read by the windows of outputs first..last of one axis."""
    need = set()
    for o in range(first, last + 1):
        lo = o * s - p
        need.update(range(max(0, lo), min(n, lo + k)))
    return sorted(need)


def run_os(layer: Layer, tiles, M: int, x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, Counts]:
    """Execute the OS loop nest with ``tiles`` on a Buffer of ``M`` words.

    ``x`` has shape (b, c, h, w), ``w`` shape (d, c/g, kh, kw).  Returns the output
    (b, d, nh, nw) read back from DRAM and the machine's counts.  Raises
    bounds.machine_sim.BufferOverflow when the tile does not fit in M words.
    """
    L = layer
    t: OSTiles = _as_tiles(tiles).check(L)
    mach = TwoLevelMachine.for_layer(L, M, x, w)
    nh, nw, cg, dg = L.nh, L.nw, L.cg, L.dg
    for grp in range(L.groups):                                   # groups: one after another
        for n0 in range(0, L.b, t.Bt):                            # batch tiles
            batch = range(n0, min(n0 + t.Bt, L.b))
            for o0 in range(0, dg, t.D):                          # filter tiles of this group
                filt = range(grp * dg + o0, grp * dg + min(o0 + t.D, dg))
                for i0 in range(0, nh, t.Th):                     # output row tiles
                    I = range(i0, min(i0 + t.Th, nh))
                    rows = tile_lines(I[0], I[-1], L.h, L.kh, L.sh, L.ph)
                    for j0 in range(0, nw, t.Tw):                 # output column tiles
                        J = range(j0, min(j0 + t.Tw, nw))
                        cols = tile_lines(J[0], J[-1], L.w, L.kw, L.sw, L.pw)
                        for c0 in range(0, cg, t.C):              # input-channel chunks
                            chans = range(c0, min(c0 + t.C, cg))
                            xs = [("X", n, grp * cg + ci, r, q) for n in batch for ci in chans
                                  for r in rows for q in cols]
                            ws = [("W", o, ci, r, s) for o in filt for ci in chans
                                  for r in range(L.kh) for s in range(L.kw)]
                            for key in xs:
                                mach.load(key)
                            for key in ws:
                                mach.load(key)
                            _macs(mach, L, batch, filt, I, J, grp * cg, chans)
                            for key in xs:
                                mach.evict(key)
                            for key in ws:
                                mach.evict(key)
                        for n in batch:                           # the finished tile
                            for o in filt:
                                for i in I:
                                    for j in J:
                                        mach.store(("Y", n, o, i, j))
    return mach.output(L), mach.counts()


def _macs(mach, L, batch, filt, I, J, cbase, chans) -> None:
    """All MACs of one (tile, chunk); a padding input is the None operand (no word)."""
    for n in batch:
        for o in filt:
            for i in I:
                for j in J:
                    yk = ("Y", n, o, i, j)
                    for ci in chans:
                        for r in range(L.kh):
                            row = i * L.sh - L.ph + r
                            rin = 0 <= row < L.h
                            for s in range(L.kw):
                                col = j * L.sw - L.pw + s
                                xk = ("X", n, cbase + ci, row, col) if rin and 0 <= col < L.w else None
                                mach.mac(yk, ("W", o, ci, r, s), xk)
