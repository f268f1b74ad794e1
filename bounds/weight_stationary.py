"""The weight-stationary (WS) blocking dataflow: exact cost, footprint and optimal tiles.

A block of D filters x C input channels of one group stays resident while the input
of those C channels streams over it, row window by row window, for every batch item;
partial sums go back to DRAM between channel blocks.  The loop nest, the proofs of
every count and the continuous optimum are in docs/dataflow_ws.md; the executor that
runs the loop nest word by word is bounds/executor_ws.py.

One source of truth: every formula is written once, in ``_formulas``, against a tiny
table of operations (floor/ceil division, min, max); the same code builds the sympy
expressions, the exact Python-int counts and the vectorized numpy arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from types import SimpleNamespace

import numpy as np

from bounds._lazy import LazyModule
from bounds.named_forms import IDENTITY, Namer, full_values
from bounds.ops import FloatOps, IntOps, PyIntOps, ceil_classes
from bounds.result import Cost, InfeasibleError
from complexity.layer import Layer

__all__ = ["WSTiles", "ws_expressions", "ws_continuous_optimum", "ws_counts", "ws_parts",
           "ws_footprint", "ws_min_M", "ws_best", "ws_best_np", "ws_best_exact_np", "ws_axis_terms", "ws_named_forms",
           "D_SYM", "C_SYM"]

#: Tile symbols: filters per block and input channels per block.
# imported on first use, so that the numeric search (and the one-layer CLI) never loads sympy
sp = LazyModule("sympy")
S = LazyModule("bounds.symbols")


@lru_cache(maxsize=1)
def _tile_symbols() -> tuple:
    """The sympy block symbols (D, C), made on first use."""
    return tuple(sp.symbols("D C", integer=True, positive=True))


def __getattr__(name: str):
    """D_SYM and C_SYM, made with sympy on first access (PEP 562)."""
    if name in ("D_SYM", "C_SYM"):
        return _tile_symbols()[name == "C_SYM"]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

LAYER_FIELDS = ("b", "c", "d", "h", "w", "kh", "kw", "sh", "sw", "ph", "pw", "groups")


@dataclass(frozen=True)
class WSTiles:
    """A WS block: ``D`` filters (1..d/g) x ``C`` input channels (1..c/g) of one group."""

    D: int
    C: int

    def as_dict(self) -> dict:
        return {"d": int(self.D), "c": int(self.C)}

    def check(self, layer: Layer) -> None:
        """Raise ValueError naming the tile parameter when the block does not fit the layer's group."""
        for name, v, hi, what in (("D", self.D, layer.dg, "d/g"), ("C", self.C, layer.cg, "c/g")):
            if isinstance(v, bool) or int(v) != v or not 1 <= v <= hi:
                raise ValueError(f"invalid WS tile: {name}: must be an integer from 1 to {what}={hi}, got {v!r}")


# ----- the formulas, written once --------------------------------------------------

def _sp_ops(namer=IDENTITY):
    """Sympy operations; with a Namer the named quantities stay symbols (the readable forms)."""
    return SimpleNamespace(fdiv=lambda a, b: sp.floor(a / b), cdiv=lambda a, b: sp.ceiling(a / b),
                           exact=lambda a, b: a / b, min=sp.Min, max=sp.Max, name=namer.name)


def _axis(n, k, s, p, o, ax="h"):
    """One spatial axis: (outputs m, used inputs u, max real rows in one window R).

    Window i covers a = i*s - p .. a + k - 1; its real part has min(n, k, n - a, a + k)
    positions, a concave function of a that is maximal on [min(n,k) - k, n - min(n,k)];
    the maximum over the windows is at the last window i1 starting at or before the
    right end of that plateau, or the next one (docs/dataflow_ws.md, "Window rows").
    ``ax`` suffixes the names of the readable forms (n_h, u_h, i^win_h, R^win_h).
    """
    m = o.name(f"n_{ax}", o.fdiv(n + 2 * p - k, s) + 1)
    u = o.name(f"u_{ax}", (m - 1) * o.min(s, k) + k - p - o.max(0, (m - 1) * s - p + k - n))
    i1 = o.name(f"i^win_{ax}", o.min(m - 1, o.fdiv(n - o.min(n, k) + p, s)))
    i2 = o.min(m - 1, i1 + 1)

    def real(i):
        a = i * s - p
        return o.min(n, k, n - a, a + k)

    return m, u, o.name(f"R^win_{ax}", o.max(real(i1), real(i2)))


def _formulas(L, D, C, o):
    """Every WS count for layer parameters ``L`` (dict by field name) and tiles D, C."""
    b, c, d, g = L["b"], L["c"], L["d"], L["groups"]
    kh, kw = L["kh"], L["kw"]
    nh, uh, Rh = _axis(L["h"], kh, L["sh"], L["ph"], o, "h")
    nw, uw, _ = _axis(L["w"], kw, L["sw"], L["pw"], o, "w")
    cg, dg = o.name("c_g", o.exact(c, g)), o.name("d_g", o.exact(d, g))
    Y = o.name("Y", b * d * nh * nw)
    W = o.name("W", d * cg * kh * kw)
    F = o.name("F", Y * cg * kh * kw)
    Xu = o.name("X_used", b * c * uh * uw)
    nD, nC = o.cdiv(dg, D), o.cdiv(cg, C)
    loads = W + nD * Xu + (nC - 1) * Y
    stores = nC * Y
    Q = W + nD * Xu + (2 * nC - 1) * Y  # = loads + stores
    return {"Q": Q, "A": Q + 3 * F, "F": F, "loads": loads, "stores": stores,
            "footprint": D * C * kh * kw + C * uw * Rh + 1,
            "X_used": Xu, "W": W, "Y": Y, "window_rows": Rh, "used_width": uw,
            "filter_blocks": nD, "channel_blocks": nC}


def _layer_symbols():
    return {k: S.LAYER_SYMBOLS[k] for k in LAYER_FIELDS}


@lru_cache(maxsize=1)
def ws_named_forms() -> dict:
    """Readable forms: "defs" (ordered {symbol: definition}) and "short" (every count of ``_formulas``).

    Built by the same ``_formulas`` as ``ws_expressions`` with the named quantities (n_h,
    u_h, R^win_h, c_g, d_g, Y, W, F, X_used) kept as symbols;
    ``bounds.named_forms.expand(short, defs)`` gives the full form.
    """
    namer = Namer()
    f = _formulas(_layer_symbols(), *_tile_symbols(), _sp_ops(namer))
    return {"defs": dict(namer.defs), "short": f}


@lru_cache(maxsize=1)
def ws_expressions() -> dict:
    """Exact sympy expressions of the WS dataflow in the layer symbols and D, C.

    Keys: "Q", "A", "F", "footprint" (peak resident words), "loads", "stores",
    "X_used", "window_rows", "used_width", "tile_symbols" = (D, C), and the readable
    forms of ``ws_named_forms``: "defs", "short" (every count in the named symbols) and
    "aux" (each named symbol -> its full expression, so ``short.xreplace(aux)`` is the
    full form).  Valid for 1 <= D <= d/g, 1 <= C <= c/g (docs/dataflow_ws.md).
    """
    out = _formulas(_layer_symbols(), *_tile_symbols(), _sp_ops())
    out["tile_symbols"] = _tile_symbols()
    named = ws_named_forms()
    out["defs"], out["short"] = named["defs"], named["short"]
    out["aux"] = full_values(named["defs"])
    return out


def _ws_optimum(e) -> dict:
    """The continuous optimum from the counts ``e`` (full or named): one formula for both forms."""
    Lsym = _layer_symbols()
    c, d, g, kh, kw = Lsym["c"], Lsym["d"], Lsym["groups"], Lsym["kh"], Lsym["kw"]
    Mp = S.M - 1
    a = (d / g) * e["X_used"]
    y = 2 * (c / g) * e["Y"]
    K = kh * kw
    B = e["used_width"] * e["window_rows"]
    D_opt = sp.sqrt(a * Mp / (K * y))
    C_opt = Mp / (K * D_opt + B)
    Q_opt = e["W"] - e["Y"] + 2 * sp.sqrt(a * y * K / Mp) + y * B / Mp
    D_SYM, C_SYM = _tile_symbols()
    all_fit = sp.Le(e["footprint"].xreplace({D_SYM: d / g, C_SYM: c / g}), S.M)
    return {"D": D_opt, "C": C_opt, "Q": Q_opt, "all_fit": all_fit,
            "Q_all_fit": e["X_used"] + e["W"] + e["Y"]}


@lru_cache(maxsize=1)
def ws_continuous_optimum() -> dict:
    """Real-valued optimal (D, C) under D C kh kw + C uw R + 1 <= M and the resulting Q.

    With a = (d/g) |X_used| and y = 2 (c/g) |Y| (ceilings dropped), Q ~ |W| - |Y| + a/D + y/C
    is minimized on the footprint boundary at D* = sqrt(a (M-1) / (kh kw y)),
    C* = (M-1) / (kh kw D* + uw R), giving Q* = |W| - |Y| + 2 sqrt(a y kh kw / (M-1))
    + y uw R / (M-1).  Valid while D* <= d/g and C* <= c/g; when all weights fit
    (key "all_fit") Q is exactly the compulsory traffic "Q_all_fit" = |X_used| + |W| + |Y|.
    "short" holds the same in the named symbols of ``ws_named_forms``.
    Derivation: docs/dataflow_ws.md, "Continuous optimum".
    """
    out = _ws_optimum(ws_expressions())
    out["short"] = _ws_optimum(ws_named_forms()["short"])
    return out


# ----- exact numbers for one layer -----------------------------------------------

def _layer_ints(layer: Layer) -> dict:
    return {k: int(getattr(layer, k)) for k in LAYER_FIELDS}


def ws_axis_terms(layer: Layer) -> dict:
    """Window rows R (max real input rows of one output row's window) and used width, exactly."""
    f = _formulas(_layer_ints(layer), 1, 1, PyIntOps)
    return {"window_rows": f["window_rows"], "used_width": f["used_width"]}


def ws_parts(layer: Layer, tiles: WSTiles) -> dict:
    """All exact WS counts (Python ints) for ``layer`` and ``tiles``."""
    tiles.check(layer)
    return _formulas(_layer_ints(layer), int(tiles.D), int(tiles.C), PyIntOps)


def ws_counts(layer: Layer, tiles: WSTiles) -> tuple[int, int, int]:
    """Exact (Q, A, F) of the WS loop nest (docs/dataflow_ws.md, "Counts")."""
    f = ws_parts(layer, tiles)
    return f["Q"], f["A"], f["F"]


def ws_footprint(layer: Layer, tiles: WSTiles) -> int:
    """Peak resident words: D C kh kw weights + C uw R window inputs + 1 partial sum."""
    return ws_parts(layer, tiles)["footprint"]


def ws_min_M(layer: Layer) -> int:
    """Smallest Buffer that runs WS: the footprint of D = C = 1."""
    return ws_footprint(layer, WSTiles(1, 1))


def _best_exhaustive(layer: Layer, M: int):
    """The exhaustive optimum tile of one layer (one row of ``ws_best_exact_np``), or None if nothing fits."""
    P = {k: np.array([v], dtype=np.int64) for k, v in _layer_ints(layer).items()}
    r = ws_best_exact_np(P, np.array([M], dtype=np.int64))
    return WSTiles(int(r["d"][0]), int(r["c"][0])) if r["fit"][0] else None


#: D candidates (over all rows) evaluated at once by ws_best_exact_np (bounded memory).
_EXACT_CHUNK = 1 << 19


def ws_best_exact_np(P: dict, M) -> dict:
    """Exhaustive (exact) WS optimum for every row of a batch of layers, vectorized over rows.

    Q = |W| + ceil(dg/D) |X_used| + (2 ceil(cg/C) - 1) |Y| depends on D and C only through
    their block counts while the footprint D C kh kw + C uw R + 1 grows with both, so only
    the smallest D of each block count (bounds.ops.ceil_classes, O(sqrt(dg)) per row) need
    be tried.  For each such D the best C is closed-form: the largest that fits,
    C_max = (M-1) // (D kh kw + uw R), lowered to the smallest C with the same count (|Y| > 0,
    so fewer channel blocks is always better).  This is the minimum over all dg*cg tiles;
    ties go to the smaller footprint, then the smaller D.

    ``P`` maps the Layer field names to int64 arrays (valid layers), ``M`` an int64 array.
    Returns exact integers "Q", "A", "F", "footprint" (int64, or Python ints in an object
    array where int64 could overflow), tiles "d", "c" and "fit" (False where not even
    D = C = 1 fits; there the others are 0).
    """
    L = {k: np.broadcast_to(np.asarray(P[k], dtype=np.int64), np.shape(M)).ravel() for k in LAYER_FIELDS}
    M = np.asarray(M, dtype=np.int64).ravel()
    n = M.size
    keys = ("Q", "A", "F", "footprint", "d", "c")
    out = {k: np.zeros(n, dtype=np.int64) for k in keys}
    out["fit"] = np.zeros(n, dtype=bool)
    if n == 0:
        return out
    f = {k: v.astype(np.float64) for k, v in L.items()}
    nh = np.floor((f["h"] + 2 * f["ph"] - f["kh"]) / f["sh"]) + 1
    nw = np.floor((f["w"] + 2 * f["pw"] - f["kw"]) / f["sw"]) + 1
    cg, dg = f["c"] / f["groups"], f["d"] / f["groups"]
    Yf = f["b"] * f["d"] * nh * nw
    bound = Yf * (2 * cg + cg * f["kh"] * f["kw"] * 3) + f["d"] * cg * f["kh"] * f["kw"] * 4 \
        + dg * f["b"] * f["c"] * (f["h"] + f["kh"]) * (f["w"] + f["kw"])
    big = (bound >= 2.0 ** 61) | (M >= 1 << 61)
    for rows, dtype in ((np.flatnonzero(~big), np.int64), (np.flatnonzero(big), object)):
        if rows.size:
            r = _ws_exact_rows({k: v[rows].astype(dtype) for k, v in L.items()}, M[rows].astype(dtype))
            if dtype is object:
                for k in keys:
                    out[k] = out[k].astype(object)
            for k in keys + ("fit",):
                out[k][rows] = r[k]
    return out


def _ws_exact_rows(L: dict, M) -> dict:
    """ws_best_exact_np on rows of one dtype (int64, or object for Python integers)."""
    n = M.size
    e = _formulas(L, 1, 1, IntOps)
    K = L["kh"] * L["kw"]
    B = e["used_width"] * e["window_rows"]
    dg, cg = L["d"] // L["groups"], L["c"] // L["groups"]
    Xu, Y, W, F = e["X_used"], e["Y"], e["W"], e["F"]
    du, dinv = np.unique(dg.astype(np.int64), return_inverse=True)
    reps = [ceil_classes(int(x)) for x in du]
    ln = np.array([len(x) for x in reps], dtype=np.int64)
    st = np.concatenate([[0], np.cumsum(ln)[:-1]])
    DT = np.concatenate(reps).astype(M.dtype)
    dinv = dinv.reshape(-1)
    size = ln[dinv]
    res = {k: np.zeros(n, dtype=M.dtype) for k in ("Q", "footprint", "d", "c")}
    fit = np.zeros(n, dtype=bool)
    ends = np.cumsum(size)
    r0 = 0
    while r0 < n:
        base = ends[r0] - size[r0]
        r1 = max(r0 + 1, int(np.searchsorted(ends, base + _EXACT_CHUNK, side="right")))
        rows = np.arange(r0, r1)
        cnt = size[rows]
        row = np.repeat(rows, cnt)
        starts = np.concatenate([[0], np.cumsum(cnt)[:-1]])
        D = DT[st[dinv[row]] + np.arange(int(cnt.sum())) - np.repeat(starts, cnt)]   # ascending per row
        Mr, Kr, Br, cgr = M[row], K[row], B[row], cg[row]
        ok = D * Kr + Br + 1 <= Mr
        Cmax = np.minimum(np.maximum((Mr - 1) // (D * Kr + Br), 1), cgr)
        nC = -((-cgr) // Cmax)
        C = -((-cgr) // nC)
        Q = W[row] + (-((-dg[row]) // D)) * Xu[row] + (2 * nC - 1) * Y[row]
        fp = D * C * Kr + C * Br + 1
        top = (1 << 200) if Q.dtype == object else np.iinfo(np.int64).max
        Q = np.where(ok, Q, top)
        qmin = np.minimum.reduceat(Q, starts)
        fp = np.where(Q == np.repeat(qmin, cnt), fp, top)
        fmin = np.minimum.reduceat(fp, starts)
        hit = np.flatnonzero(fp == np.repeat(fmin, cnt))
        first = hit[np.unique(row[hit], return_index=True)[1]]   # least (Q, footprint), then least D
        good = ok[first]
        rr, pick = row[first][good], first[good]
        fit[rr] = True
        for k, v in (("Q", Q), ("footprint", fp), ("d", D), ("c", C)):
            res[k][rr] = v[pick]
        r0 = r1
    res["F"] = np.where(fit, F, 0)
    res["A"] = np.where(fit, res["Q"] + 3 * F, 0)
    res["fit"] = fit
    return res


def ws_best(layer: Layer, machine, exhaustive: bool = True) -> Cost:
    """Minimum-energy WS tile that fits in ``machine.M`` (exhaustive search, or ws_best_np's candidates).

    E = eD Q + eB (Q + 3F) + eM F grows with Q, so the tile minimizing Q minimizes E.
    Raises InfeasibleError("WS", M, ws_min_M(layer)) when even D = C = 1 does not fit.
    """
    M = int(machine.M)
    if exhaustive:
        tiles = _best_exhaustive(layer, M)
    else:
        P = {k: np.array([v], dtype=np.int64) for k, v in _layer_ints(layer).items()}
        r = ws_best_np(P, np.array([M], dtype=np.int64))
        tiles = None if not np.isfinite(r["Q"][0]) else WSTiles(int(r["d"][0]), int(r["c"][0]))
    if tiles is None:
        raise InfeasibleError("WS", M, ws_min_M(layer))
    f = ws_parts(layer, tiles)
    return Cost(Q=f["Q"], A=f["A"], F=f["F"], E=float(machine.energy(f["Q"], f["A"], f["F"])),
                tiles=tiles.as_dict(),
                parts={"loads": f["loads"], "stores": f["stores"], "footprint": f["footprint"],
                       "filter_blocks": f["filter_blocks"], "channel_blocks": f["channel_blocks"]})


# ----- vectorized over many layers -------------------------------------------------

_CHUNK = 1 << 14


def ws_best_np(P: dict, M) -> dict:
    """Best of a few candidate WS tiles for every row of a batch of layers (an upper bound).

    ``P`` maps the Layer field names to int64 arrays, ``M`` is an int64 array.  Seven
    candidates per row (docs/dataflow_ws.md, "Vectorized search"): the block counts around
    the continuous optimum (floor/ceil of dg/D*; floor/ceil/ceil+1 of cg/C*), all filters
    (the input streams once) and all channels (no partial-sum reloads); a D guess gets the
    largest fitting C, every C the largest fitting D, each snapped to the smallest block
    with the same block count.  Returns float64 "Q", "A", "F" (inf where nothing fits) and
    int64 tiles "d", "c" (0 there); every finite value is the exact cost of the returned
    tile, which fits in M.  Arithmetic is float64 on integers (exact below 2**52; fast),
    in chunks of rows that stay in cache.
    """
    M = np.asarray(M, dtype=np.int64)
    P = {k: np.broadcast_to(np.asarray(P[k], dtype=np.int64), M.shape).ravel() for k in LAYER_FIELDS}
    flat = M.ravel()
    parts = [_ws_best_chunk({k: v[i:i + _CHUNK] for k, v in P.items()}, flat[i:i + _CHUNK])
             for i in range(0, max(flat.size, 1), _CHUNK)]
    return {k: np.concatenate([p[k] for p in parts]).reshape(M.shape) for k in parts[0]}


def _ws_best_chunk(P: dict, M: np.ndarray) -> dict:
    """ws_best_np on one chunk of rows."""
    L = {k: np.asarray(P[k], dtype=np.float64) for k in LAYER_FIELDS}
    # a Buffer beyond 2**52 words only matters for absurd layers; clipping keeps floats exact
    Mp = np.minimum(np.asarray(M, dtype=np.int64), 1 << 52).astype(np.float64) - 1
    o = FloatOps
    g, kh, kw = L["groups"], L["kh"], L["kw"]
    cg, dg = L["c"] / g, L["d"] / g
    nh, uh, Rh = _axis(L["h"], kh, L["sh"], L["ph"], o)
    nw = np.floor((L["w"] + 2 * L["pw"] - kw) / L["sw"]) + 1
    mw = nw - 1
    uw = mw * np.minimum(L["sw"], kw) + kw - L["pw"] - np.maximum(0, mw * L["sw"] - L["pw"] + kw - L["w"])
    K = kh * kw
    B = uw * Rh
    Y = L["b"] * L["d"] * nh * nw
    X = L["b"] * L["c"] * uh * uw
    W = L["d"] * cg * K
    F = Y * cg * K

    def snap(x, n):
        """(smallest block with the block count of x, that count); x >= 1."""
        cnt = np.ceil(n / x)
        return np.ceil(n / cnt), cnt

    def from_C(C):
        """Tile from a channel block C (smallest for its block count): the largest fitting D."""
        nC = np.ceil(cg / C)
        Dm = np.minimum(dg, np.floor((Mp - C * B) / (C * K)))
        D, nD = snap(np.maximum(Dm, 1), dg)
        return D, C, nD * X + (2 * nC - 1) * Y, Dm >= 1

    def from_D(D0):
        """Tile from a filter-block guess D0 in [1, dg]: the largest fitting C, then D again."""
        C, _ = snap(np.clip(np.floor(Mp / (D0 * K + B)), 1, cg), cg)
        return from_C(C)

    # continuous optimum (docs/dataflow_ws.md, "Continuous optimum"), as block counts
    Dstar = np.sqrt(dg * X * np.maximum(Mp, 1) / (2 * K * cg * Y))
    nDs = np.maximum(dg / np.maximum(Dstar, 1), 1)
    nCs = np.maximum(cg * (K * Dstar + B) / np.maximum(Mp, 1), 1)
    cands = [from_D(np.ceil(dg / np.floor(nDs))), from_D(np.ceil(dg / np.ceil(nDs)))]
    cands += [from_C(np.ceil(cg / n)) for n in (np.floor(nCs), np.ceil(nCs), np.ceil(nCs) + 1)]
    cands += [from_D(dg), from_C(cg)]  # all filters (input streams once), all channels (no reloads)

    best = np.full(Mp.shape, np.inf)
    pick = np.zeros(Mp.shape, dtype=np.intp)
    for i, (_, _, q, ok) in enumerate(cands):
        np.copyto(q, np.inf, where=~ok)
        better = q < best
        np.minimum(best, q, out=best)
        pick[better] = i
    fin = np.isfinite(best)
    Dt = np.choose(pick, [cnd[0] for cnd in cands]).astype(np.int64) * fin
    Ct = np.choose(pick, [np.broadcast_to(cnd[1], Mp.shape) for cnd in cands]).astype(np.int64) * fin
    Q = best + W
    return {"Q": Q, "A": Q + 3 * F, "F": np.where(fin, F, np.inf), "d": Dt, "c": Ct}
