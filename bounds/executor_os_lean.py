"""Reference executor of the lean output-stationary (OSL) loop nest, word by word.

Runs exactly the loop nest of docs/dataflow_os_lean.md (section 2) on the capacity-checked
TwoLevelMachine: the output tile stays resident, the input channels come one at a time,
and per channel either the weights stream through one word over the resident input patch
(stream "W") or the inputs stream through one word over the resident weights (stream "X").
Its counts and peak are compared with bounds/output_stationary_lean.py, its output with
bounds/reference_conv.py.
"""

from __future__ import annotations

import numpy as np

from bounds.executor_os import tile_lines
from bounds.machine_sim import Counts, TwoLevelMachine
from bounds.output_stationary_lean import STREAMS, OSLTiles, _as_tiles, osl_stream
from complexity.layer import Layer

__all__ = ["run_os_lean"]


def run_os_lean(layer: Layer, tiles, M: int, x: np.ndarray, w: np.ndarray,
                stream: str | None = None) -> tuple[np.ndarray, Counts]:
    """Execute the OSL loop nest with ``tiles`` on a Buffer of ``M`` words.

    ``stream`` is "X" (inputs streamed, weights resident), "W" (weights streamed, input
    patch resident) or None: the stream of the smaller footprint (``osl_stream``).  ``x``
    has shape (b, c, h, w), ``w`` shape (d, c/g, kh, kw).  Returns the output read back
    from DRAM and the machine's counts; raises BufferOverflow when the tile does not fit.
    """
    L = layer
    t: OSLTiles = _as_tiles(tiles).check(L)
    if stream is None:
        stream = osl_stream(L, t)
    if stream not in STREAMS:
        raise ValueError(f"stream: expected 'X' or 'W', got {stream!r}")
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
                        for ci in range(cg):                      # one input channel at a time
                            if stream == "W":
                                _stream_weights(mach, L, batch, filt, I, J, rows, cols, grp * cg + ci, ci)
                            else:
                                _stream_inputs(mach, L, batch, filt, I, J, rows, cols, grp * cg + ci, ci)
                        for n in batch:                           # the finished tile
                            for o in filt:
                                for i in I:
                                    for j in J:
                                        mach.store(("Y", n, o, i, j))
    return mach.output(L), mach.counts()


def _stream_weights(mach, L, batch, filt, I, J, rows, cols, cabs, ci) -> None:
    """Stream W: the channel's input patch resident; each weight loaded, used by the whole tile, evicted."""
    xs = [("X", n, cabs, r, q) for n in batch for r in rows for q in cols]
    for key in xs:
        mach.load(key)
    for o in filt:
        for r in range(L.kh):
            for s in range(L.kw):
                wk = ("W", o, ci, r, s)
                mach.load(wk)
                for n in batch:
                    for i in I:
                        row = i * L.sh - L.ph + r
                        rin = 0 <= row < L.h
                        for j in J:
                            col = j * L.sw - L.pw + s
                            xk = ("X", n, cabs, row, col) if rin and 0 <= col < L.w else None
                            mach.mac(("Y", n, o, i, j), wk, xk)
                mach.evict(wk)
    for key in xs:
        mach.evict(key)


def _stream_inputs(mach, L, batch, filt, I, J, rows, cols, cabs, ci) -> None:
    """Stream X: the channel's D kh kw weights resident; padding MACs first, then each input word in turn."""
    ws = [("W", o, ci, r, s) for o in filt for r in range(L.kh) for s in range(L.kw)]
    for key in ws:
        mach.load(key)
    for n in batch:                                               # the MACs whose input is a padding zero
        for o in filt:
            for i in I:
                for j in J:
                    for r in range(L.kh):
                        row = i * L.sh - L.ph + r
                        for s in range(L.kw):
                            col = j * L.sw - L.pw + s
                            if not (0 <= row < L.h and 0 <= col < L.w):
                                mach.mac(("Y", n, o, i, j), ("W", o, ci, r, s), None)
    for n in batch:
        for row in rows:
            # (i, r): output row i of the tile and kernel row r with i sh - ph + r = row
            taps_h = [(i, r) for r in range(L.kh) for i in _hits(row + L.ph - r, L.sh, I)]
            for col in cols:
                taps_w = [(j, s) for s in range(L.kw) for j in _hits(col + L.pw - s, L.sw, J)]
                xk = ("X", n, cabs, row, col)
                mach.load(xk)
                for i, r in taps_h:
                    for j, s in taps_w:
                        for o in filt:
                            mach.mac(("Y", n, o, i, j), ("W", o, ci, r, s), xk)
                mach.evict(xk)
    for key in ws:
        mach.evict(key)


def _hits(num: int, s: int, span: range) -> list[int]:
    """[i] if num = i s for an output i of ``span``, else []."""
    if num < 0 or num % s:
        return []
    i = num // s
    return [i] if span.start <= i < span.stop else []
