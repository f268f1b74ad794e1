"""Lean output-stationary (OSL) dataflow: the OS loop nest with one input channel at a time, streamed.

A tile of Bt batch items x D filters of one group x Th x Tw output positions keeps its
partial sums resident until complete (as in OS, bounds/output_stationary.py), and takes
the input channels of its group one at a time.  For each channel it keeps only one of
the two operand blocks resident and streams the other through a single Buffer word:

- stream "W" (patch resident): load the channel's clipped input patch of the Bt items,
  then each of the D kh kw weights in turn: load it, do every MAC of the tile that uses
  it (padding MACs included), evict it;
- stream "X" (weights resident): load the channel's D kh kw weights, do the padding MACs,
  then each input word of the patch in turn: load it, do every MAC of the tile that
  uses it, evict it.

Every word is loaded exactly as often as in OS with C = 1, so Q and A are OS's; the
footprint is the output tile plus min(patch + 1, D kh kw + 1) instead of plus
patch + D kh kw: the schedule dominates OS tile by tile.  Each tile runs the stream of
the smaller footprint ("X" on ties).  Proofs: docs/dataflow_os_lean.md; executor:
bounds/executor_os_lean.py.

The formulas are written ONCE (``_osl_forms``, on top of OS's per-axis forms) over the
ops interface of bounds/ops.py and instantiated with sympy (``osl_expressions``) and with
exact integers / numpy (``osl_parts``, ``osl_best``, ``osl_best_exact_np``, ``osl_best_np``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from bounds._lazy import LazyModule
from bounds.named_forms import Namer
from bounds.named_forms import defined_symbol as namer_symbol
from bounds.ops import FloatOps, PyIntOps, ceil_classes
from bounds.output_stationary import (LAYER_FIELDS, OSTileError, _axis, _axis_tables, _NamedSymOps, _os_forms,
                                      _peak_term, _ragged, _SymOps, _tile_symbols, os_best_np)
from bounds.result import Cost, InfeasibleError
from complexity.layer import Layer

__all__ = ["OSLTiles", "OSLTileError", "LAYER_FIELDS", "osl_expressions", "osl_named_forms",
           "osl_continuous_optimum", "osl_parts", "osl_counts", "osl_footprint", "osl_stream", "osl_min_M",
           "osl_best", "osl_best_np", "osl_best_exact_np", "TILE_KEYS"]

sp = LazyModule("sympy")
S = LazyModule("bounds.symbols")

#: Keys of ``Cost.tiles`` of this dataflow (batch items, filters, output rows, output columns).
TILE_KEYS = ("b", "d", "th", "tw")
_TILE_FIELDS = ("Bt", "D", "Th", "Tw")
#: The two streams: "X" streams the inputs (weights resident), "W" the weights (input patch resident).
STREAMS = ("X", "W")


class OSLTileError(OSTileError):
    """A tile that does not exist for the layer; the message names the tile parameter."""

    def __init__(self, parameter: str, message: str):
        ValueError.__init__(self, f"invalid OS-lean tile: {parameter}: {message}")
        self.parameter = parameter


@dataclass(frozen=True)
class OSLTiles:
    """OSL tile: ``Bt`` batch items x ``D`` filters x ``Th`` x ``Tw`` outputs (one input channel at a time)."""

    Bt: int
    D: int
    Th: int
    Tw: int

    def __post_init__(self) -> None:
        for f in _TILE_FIELDS:
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise OSLTileError(f, f"must be a positive integer, got {v!r}")
            object.__setattr__(self, f, int(v))

    def as_dict(self) -> dict:
        return {"b": self.Bt, "d": self.D, "th": self.Th, "tw": self.Tw}

    def check(self, layer: Layer) -> "OSLTiles":
        """Raise OSLTileError unless Bt <= b, D <= d/g, Th <= nh, Tw <= nw."""
        for f, lim, name in (("Bt", layer.b, "b"), ("D", layer.dg, "d/g"), ("Th", layer.nh, "nh"),
                             ("Tw", layer.nw, "nw")):
            if getattr(self, f) > lim:
                raise OSLTileError(f, f"{getattr(self, f)} exceeds {name}={lim} of the layer")
        return self


def _as_tiles(tiles) -> OSLTiles:
    if isinstance(tiles, OSLTiles):
        return tiles
    if isinstance(tiles, dict):
        return OSLTiles(tiles["b"], tiles["d"], tiles["th"], tiles["tw"])
    return OSLTiles(*tiles)


# ----------------------------------------------------------------------------------------
# The formulas, written once over an ops backend.
# ----------------------------------------------------------------------------------------
def _osl_forms(ops, L: dict, t: dict) -> dict:
    """Q, A, F, the footprints of both streams and their parts for layer fields ``L`` and tile ``t``.

    The per-axis quantities (outputs o, tiles N, summed real lines R, the (tile size, real
    lines) pairs of the full and the last tile) are OS's (bounds/output_stationary._axis,
    docs/dataflow_os.md sections 3-5).
    """
    os_c1 = _os_forms(ops, L, {**t, "C": 1})  # Q and A are OS's with one input channel per step
    ah = _axis(ops, L["h"], L["kh"], L["sh"], L["ph"], t["Th"], ax="h")
    aw = _axis(ops, L["w"], L["kw"], L["sw"], L["pw"], t["Tw"], ax="w")
    # stream W: Bt x (partial sums + patch) of the worst (full/last) tile pair, plus the one weight
    fp_W = t["Bt"] * _peak_term(ops, t["D"], 1, ah, aw) + 1
    # stream X: partial sums of the largest tile, the D kh kw weights of one channel, the one input
    fp_X = t["Bt"] * t["D"] * ah["thF"] * aw["thF"] + t["D"] * L["kh"] * L["kw"] + 1
    keep = ("Q", "A", "F", "loads_X", "loads_W", "stores", "rows_loaded", "cols_loaded")
    return {**{k: os_c1[k] for k in keep}, "footprint": ops.min(fp_X, fp_W), "footprint_X": fp_X,
            "footprint_W": fp_W}


_TILE_KEYS = {"Bt": "b", "D": "d", "Th": "th", "Tw": "tw"}


@lru_cache(maxsize=1)
def _sym_forms() -> dict:
    L = dict(S.LAYER_SYMBOLS)
    t = {k: _tile_symbols()[v] for k, v in _TILE_KEYS.items()}
    return _osl_forms(_SymOps, L, t)


@lru_cache(maxsize=1)
def osl_named_forms() -> dict:
    """Readable forms: "defs" ({symbol or f(args): definition}) and "short" (Q, A, footprint, ...)."""
    namer = Namer()
    L = dict(S.LAYER_SYMBOLS)
    t = {k: _tile_symbols()[v] for k, v in _TILE_KEYS.items()}
    f = _osl_forms(_NamedSymOps(namer), L, t)
    return {"defs": dict(namer.defs), "short": f}


def osl_expressions() -> dict:
    """Exact sympy expressions of the OSL dataflow in the layer symbols and the tile (B_t, D, T_h, T_w).

    Keys: "Q", "A", "F", "footprint" (= Min(footprint_X, footprint_W)), "footprint_X",
    "footprint_W", "loads_X", "loads_W", "stores", "rows_loaded", "cols_loaded",
    "tile_symbols" ({"b","d","th","tw"} -> symbol), and the readable "defs" / "short".
    """
    out = dict(_sym_forms())
    out["tile_symbols"] = {k: v for k, v in _tile_symbols().items() if k in TILE_KEYS}
    out.update(osl_named_forms())
    return out


def osl_continuous_optimum() -> dict:
    """Real-valued optimal OSL tiles for large layers (docs/dataflow_os_lean.md, section 6).

    With m = sqrt(min(sh,kh) min(sw,kw)), k = sqrt(kh kw) and Q - |Y| ~ F (1/T + m^2/(k^2 D)):
    stream X, D (T + k^2) = M: D_X = m M / (k (sqrt(M) + m k)), T_X = k sqrt(M) / m;
    stream W, (D + m^2) T = M: D_W = m sqrt(M) / k, T_W = M / (D_W + m^2).
    Both give Q* = |Y| + 2 F m / (k sqrt(M)) + F m^2 / M.
    """
    out = _osl_optimum(S.Y, S.F, sp.Min(S.sh, S.kh), sp.Min(S.sw, S.kw))
    out["short"] = _osl_optimum(*(namer_symbol(x) for x in ("Y", "F", "m_h", "m_w")))
    return out


def _osl_optimum(Y, F, mh, mw) -> dict:
    m = sp.sqrt(mh * mw)
    k = sp.sqrt(S.kh * S.kw)
    D_X = m * S.M / (k * (sp.sqrt(S.M) + m * k))
    T_X = k * sp.sqrt(S.M) / m
    D_W = m * sp.sqrt(S.M) / k
    T_W = S.M / (D_W + m**2)
    Q = Y + 2 * F * m / (k * sp.sqrt(S.M)) + F * m**2 / S.M
    return {"Bt": sp.Integer(1), "D_X": D_X, "T_X": T_X, "D_W": D_W, "T_W": T_W, "Q": Q, "A": Q + 3 * F, "F": F}


# ----------------------------------------------------------------------------------------
# Exact numeric evaluation (Python integers).
# ----------------------------------------------------------------------------------------
def _layer_dict(layer: Layer) -> dict:
    return {f: getattr(layer, f) for f in LAYER_FIELDS}


def osl_parts(layer: Layer, tiles) -> dict:
    """All exact integer quantities of ``_osl_forms`` plus "stream" ("X" or "W": the smaller footprint, X on ties)."""
    t = _as_tiles(tiles).check(layer)
    f = _osl_forms(PyIntOps, _layer_dict(layer), {k: getattr(t, k) for k in _TILE_FIELDS})
    out = {k: int(v) for k, v in f.items()}
    out["stream"] = "X" if out["footprint_X"] <= out["footprint_W"] else "W"
    return out


def osl_counts(layer: Layer, tiles) -> tuple[int, int, int]:
    """Exact (Q, A, F) of the OSL loop nest with these tiles (either stream)."""
    p = osl_parts(layer, tiles)
    return p["Q"], p["A"], p["F"]


def osl_footprint(layer: Layer, tiles, stream: str | None = None) -> int:
    """Exact peak number of resident words: of ``stream`` ("X"/"W"), or of the smaller one (None)."""
    p = osl_parts(layer, tiles)
    if stream is None:
        return p["footprint"]
    if stream not in STREAMS:
        raise ValueError(f"stream: expected 'X' or 'W', got {stream!r}")
    return p[f"footprint_{stream}"]


def osl_stream(layer: Layer, tiles) -> str:
    """The stream the OSL tile runs: "X" (inputs streamed) unless streaming the weights needs fewer words."""
    return osl_parts(layer, tiles)["stream"]


def osl_min_M(layer: Layer) -> int:
    """Smallest Buffer in which some OSL tile fits: the footprint of the 1x1x1x1 tile (proof in the doc)."""
    return osl_footprint(layer, OSLTiles(1, 1, 1, 1))


# ----------------------------------------------------------------------------------------
# Exhaustive tile search.
# ----------------------------------------------------------------------------------------
#: Candidate cells (Bt x Th x Tw, over rows) evaluated at once by the exhaustive search (bounded memory).
_CELL_CHUNK = 1 << 17


def _search(layer: Layer, M: int):
    """(Q, footprint, OSLTiles) of least Q (then least footprint) with footprint <= M; None if nothing fits."""
    P = {f: np.array([getattr(layer, f)], dtype=np.int64) for f in LAYER_FIELDS}
    r = osl_best_exact_np(P, np.array([M], dtype=np.int64), _pareto=True)
    if not r["fit"][0]:
        return None
    return int(r["Q"][0]), int(r["footprint"][0]), OSLTiles(*(int(r[k][0]) for k in _TILE_FIELDS))


def osl_best_exact_np(P: dict, M, _pareto: bool = False) -> dict:
    """Exhaustive (exact) OSL optimum for every row of a batch of layers, vectorized over rows.

    ``P`` maps the Layer field names to int64 arrays (valid layers), ``M`` an int64 array.
    Returns "Q", "A", "F", "footprint" (int64, or Python ints in an object array where
    int64 could overflow), the tile "Bt", "D", "Th", "Tw" and "fit" (False where no tile
    fits: there every value is 0).  Per row, the least footprint among the tiles of least Q.

    Exact by monotonicity (docs/dataflow_os_lean.md, section 7): Q = |Y| + ceil(b/Bt) N_h N_w |W|
    + ceil(dg/D) b c R_h R_w and both footprints are nondecreasing in Bt, D and in every
    per-axis quantity (thF, RF, thL, RL), so per axis only OS's candidate tile sizes
    (``_axis_candidates``; with ``_pareto`` only the non-dominated ones, worth it for a few
    rows) are needed, per batch count ceil(b/Bt) only its smallest Bt, and per (Bt, Th, Tw) the
    best D is closed-form: the largest that fits with either stream, lowered to the
    smallest D with the same ceil(dg/D).  At most _CELL_CHUNK cells are evaluated at once.
    """
    L = {f: np.broadcast_to(np.asarray(P[f], dtype=np.int64), np.shape(M)).ravel() for f in LAYER_FIELDS}
    M = np.asarray(M, dtype=np.int64).ravel()
    n = M.size
    keys = ("Q", "A", "F", "footprint") + _TILE_FIELDS
    out = {k: np.zeros(n, dtype=np.int64) for k in keys}
    out["fit"] = np.zeros(n, dtype=bool)
    if n == 0:
        return out
    oh = (L["h"] + 2 * L["ph"] - L["kh"]) // L["sh"] + 1
    ow = (L["w"] + 2 * L["pw"] - L["kw"]) // L["sw"] + 1
    f = {k: v.astype(np.float64) for k, v in L.items()}
    cgf, k2f = f["c"] / f["groups"], f["kh"] * f["kw"]
    Yf = f["b"] * f["d"] * oh * ow
    bound = (Yf * (1 + cgf * k2f) + f["b"] * oh * ow * f["d"] * cgf * k2f
             + f["d"] / f["groups"] * f["b"] * f["c"] * oh * f["kh"] * ow * f["kw"] + f["b"] * f["d"] * oh * ow * k2f)
    big = (bound >= 2.0 ** 61) | (M >= 1 << 61)
    small = np.flatnonzero(~big)
    U = np.full(n, np.inf)                 # the Q of a tile that fits (fast candidates): prunes the search
    if small.size:
        with np.errstate(all="ignore"):
            U[small] = osl_best_np({k: v[small] for k, v in L.items()}, M[small])["Q"] * (1 + 1e-9) + 1
    for rows, dtype in ((small, np.int64), (np.flatnonzero(big), object)):
        if not rows.size:
            continue
        part = ({k: v[rows].astype(dtype) for k, v in L.items()}, M[rows].astype(dtype),
                oh[rows].astype(dtype), ow[rows].astype(dtype), _pareto)
        r = _exact_rows(*part, U=U[rows])
        # safety net: a row whose bound U was not reached is searched again without it
        redo = np.flatnonzero(np.isfinite(U[rows]) & (~r["fit"] | (r["Q"].astype(np.float64) > U[rows])))
        if redo.size:
            r2 = _exact_rows({k: v[redo] for k, v in part[0].items()}, *(a[redo] for a in part[1:4]), _pareto)
            for k in r:
                r[k][redo] = r2[k]
        if dtype is object:
            for k in keys:
                out[k] = out[k].astype(object)
        for k in keys + ("fit",):
            out[k][rows] = r[k]
    return out


def _exact_rows(L: dict, M, oh, ow, pareto: bool, U=None) -> dict:
    """osl_best_exact_np on rows of one dtype (int64, or object for Python integers).

    ``U`` (optional, per row, float) is the Q of some tile that fits.  For every (row, Th)
    only the window of Tw that can beat U and fit with Bt = D = 1 is costed (the per-axis
    tables are sorted by T: N_w is nonincreasing and thF_w nondecreasing along them), and
    the cells are costed in pieces of at most _CELL_CHUNK (bounded memory).
    """
    n = M.size
    obj = M.dtype == object
    U = np.full(n, np.inf) if U is None else np.asarray(U, dtype=np.float64)
    hi, hs, hl, H = _axis_tables(L["h"], L["kh"], L["sh"], L["ph"], oh, pareto)
    wi, ws, wl, W = _axis_tables(L["w"], L["kw"], L["sw"], L["pw"], ow, pareto)
    Wmin = {q: np.minimum.reduceat(W[q], ws) for q in ("RF", "R")}      # least per distinct w axis
    bu, binv = np.unique(L["b"].astype(np.int64), return_inverse=True)
    Bts = [ceil_classes(int(b)) for b in bu]
    bl = np.array([len(x) for x in Bts], dtype=np.int64)
    bs = np.concatenate([[0], np.cumsum(bl)[:-1]])
    BT = np.concatenate(Bts).astype(M.dtype)
    binv = binv.reshape(-1)
    dg = L["d"] // L["groups"]
    Y = L["b"] * L["d"] * oh * ow
    cg = L["c"] // L["groups"]
    k2 = L["kh"] * L["kw"]
    Wn = L["d"] * cg * k2
    F = Y * cg * k2
    bc = L["b"] * L["c"]
    # sorted search keys of the w tables: thF ascending and N descending within each distinct axis
    seg_of = np.repeat(np.arange(len(wl)), wl)
    thF_w = W["thF"].astype(np.int64)
    N_w = W["N"].astype(np.int64)
    span = int(max(int(thF_w.max()), int(N_w.max()))) + 2
    key_th = seg_of * span + thF_w
    key_N = seg_of * span + (span - 1 - N_w)
    top = (1 << 200) if obj else np.iinfo(np.int64).max
    res = {k: np.zeros(n, dtype=M.dtype) for k in _TILE_FIELDS}
    bestQ = np.full(n, top, dtype=M.dtype)
    bestF = np.full(n, top, dtype=M.dtype)

    # every (row, Th) pair, then its window [lo, hi) of Tw indices
    o, ih = _ragged(hl[hi])
    prow = o
    pidx = hs[hi[prow]] + ih
    seg = wi[prow]
    thF_h, RF_h = H["thF"][pidx], H["RF"][pidx]
    Mr = M[prow]
    cap = np.maximum((Mr - 1 - k2[prow]) // thF_h, (Mr - 1 - RF_h * Wmin["RF"][seg]) // thF_h)
    cap = np.clip(np.asarray(cap, dtype=np.float64), -1, span - 1).astype(np.int64)
    hi_i = np.searchsorted(key_th, seg * span + cap, side="right")
    with np.errstate(divide="ignore", invalid="ignore"):
        ncap = np.floor((U[prow] - np.asarray(Y[prow] + bc[prow] * H["R"][pidx] * Wmin["R"][seg], dtype=np.float64))
                        / np.asarray(H["N"][pidx] * Wn[prow], dtype=np.float64))
    ncap = np.where(np.isnan(ncap), span, np.clip(ncap, -1, span - 1)).astype(np.int64)
    lo_i = np.searchsorted(key_N, seg * span + (span - 1 - ncap), side="left")
    lo_i = np.maximum(lo_i, ws[seg])
    cnt = np.maximum(hi_i - lo_i, 0) * bl[binv[prow]]
    keep = np.flatnonzero(cnt > 0)
    prow, pidx, lo_i, cnt = prow[keep], pidx[keep], lo_i[keep], cnt[keep]
    nwin = cnt // bl[binv[prow]]
    bspan = int(L["b"].max()) + 2
    key_b = np.repeat(np.arange(len(bl)), bl) * bspan + BT.astype(np.int64)   # Bt classes, ascending per b
    ends = np.cumsum(cnt)
    p0 = 0
    while p0 < prow.size:                      # pieces of at most _CELL_CHUNK cells
        base = ends[p0] - cnt[p0]
        p1 = max(p0 + 1, int(np.searchsorted(ends, base + _CELL_CHUNK, side="right")))
        # stage 1: the (row, Th, Tw) cells; drop those that cannot fit (D = Bt = 1) or beat U with the most
        # filters (Bt = 1) and the most batch items (D = 1) at once, which bounds Q from below
        q, pos = _ragged(nwin[p0:p1])
        q = q + p0
        row = prow[q]
        h = {k_: v[pidx[q]] for k_, v in H.items()}
        w = {k_: v[lo_i[q] + pos] for k_, v in W.items()}
        pairs = [(h[th] * w[tw], h[rh] * w[rw]) for th, rh in (("thF", "RF"), ("thL", "RL"))
                 for tw, rw in (("thF", "RF"), ("thL", "RL"))]
        Mc, k2r, dgr, br = M[row], k2[row], dg[row], L["b"][row]
        D1 = dgr
        for a_, r_ in pairs:
            D1 = np.minimum(D1, (Mc - 1 - r_) // a_)
        D1 = np.minimum(dgr, np.maximum(D1, (Mc - 1) // (pairs[0][0] + k2r)))
        phi1 = pairs[0][0] + pairs[0][1]
        for a_, r_ in pairs[1:]:
            phi1 = np.maximum(phi1, a_ + r_)
        B1 = np.minimum(br, np.maximum((Mc - 1) // phi1, (Mc - 1 - k2r) // pairs[0][0]))
        NW = h["N"] * w["N"] * Wn[row]
        XR = (-((-dgr) // np.where(D1 >= 1, D1, 1))) * bc[row] * h["R"] * w["R"]
        lb = Y[row] + (-((-br) // np.where(B1 >= 1, B1, 1))) * NW + XR
        keep = np.flatnonzero((D1 >= 1) & (np.asarray(lb, dtype=np.float64) <= U[row]))
        row, B1, NW, XR = row[keep], B1[keep], NW[keep], XR[keep]
        h = {k_: v[keep] for k_, v in h.items()}
        w = {k_: v[keep] for k_, v in w.items()}
        pairs = [(a_[keep], r_[keep]) for a_, r_ in pairs]
        # stage 2: per cell the Bt classes with Bt <= B1 and ceil(b/Bt) NW + XR + |Y| <= U
        with np.errstate(divide="ignore", invalid="ignore"):
            nb_cap = np.floor((U[row] - np.asarray(Y[row] + XR, dtype=np.float64)) / np.asarray(NW, dtype=np.float64))
        b_r = L["b"][row].astype(np.int64)
        nb_cap = np.where(np.isfinite(nb_cap), np.clip(nb_cap, 1, None), b_r.astype(np.float64))
        bt_lo = -(-b_r // np.minimum(nb_cap, b_r).astype(np.int64))
        seg_b = binv[row] * bspan
        lo_b = np.searchsorted(key_b, seg_b + bt_lo, side="left")
        hi_b = np.searchsorted(key_b, seg_b + B1.astype(np.int64), side="right")
        o2, k2pos = _ragged(np.maximum(hi_b - lo_b, 0))
        Bt = BT[lo_b[o2] + k2pos]
        row = row[o2]
        h = {k_: v[o2] for k_, v in h.items()}
        w = {k_: v[o2] for k_, v in w.items()}
        pairs = [(a_[o2], r_[o2]) for a_, r_ in pairs]
        Mc, k2r, dgr = M[row], k2[row], dg[row]
        # the most filters with stream W: Bt (D a_i + r_i) + 1 <= M for the four pairs i
        Dw = dgr
        for a_, r_ in pairs:
            Dw = np.minimum(Dw, (Mc - 1 - Bt * r_) // (Bt * a_))
        # the most filters with stream X: D (Bt thF_h thF_w + kh kw) + 1 <= M
        Dx = (Mc - 1) // (Bt * pairs[0][0] + k2r)
        Dmax = np.minimum(dgr, np.maximum(Dw, Dx))
        ok = Dmax >= 1
        Nd = -((-dgr) // np.where(ok, Dmax, 1))
        D = -((-dgr) // Nd)
        phi = pairs[0][0] * D + pairs[0][1]
        for a_, r_ in pairs[1:]:
            phi = np.maximum(phi, a_ * D + r_)
        fp = np.minimum(Bt * phi + 1, D * (Bt * pairs[0][0] + k2r) + 1)
        Q = Y[row] + (-((-L["b"][row]) // Bt)) * h["N"] * w["N"] * Wn[row] + Nd * bc[row] * h["R"] * w["R"]
        sel = np.flatnonzero(ok)
        if sel.size:
            if obj:
                best = {}
                for j in sel:
                    kj, rj = (Q[j], fp[j]), int(row[j])
                    if rj not in best or kj < best[rj][0]:
                        best[rj] = (kj, j)
                rr = np.array(sorted(best), dtype=np.int64)
                pick = np.array([best[int(x)][1] for x in rr], dtype=np.int64)
            else:
                order = sel[np.lexsort((fp[sel], Q[sel], row[sel]))]   # by row, then Q, then footprint
                first = np.concatenate([[True], row[order][1:] != row[order][:-1]])
                pick = order[first]
                rr = row[pick]
            better = (Q[pick] < bestQ[rr]) | ((Q[pick] == bestQ[rr]) & (fp[pick] < bestF[rr]))
            pick, rr = pick[better], rr[better]
            bestQ[rr], bestF[rr] = Q[pick], fp[pick]
            for k_, v in (("Bt", Bt), ("D", D), ("Th", h["T"]), ("Tw", w["T"])):
                res[k_][rr] = v[pick]
        p0 = p1
    fit = bestQ != top
    zero = np.zeros(n, dtype=M.dtype)
    res["Q"] = np.where(fit, bestQ, zero)
    res["footprint"] = np.where(fit, bestF, zero)
    res["F"] = np.where(fit, F, zero)
    res["A"] = np.where(fit, res["Q"] + 3 * F, zero)
    res["fit"] = fit
    return res


def _cost(layer: Layer, machine, tiles: OSLTiles) -> Cost:
    p = osl_parts(layer, tiles)
    E = machine.energy(p["Q"], p["A"], p["F"])
    return Cost(Q=p["Q"], A=p["A"], F=p["F"], E=float(E), tiles=tiles.as_dict(),
                parts={"loads_X": p["loads_X"], "loads_W": p["loads_W"], "stores": p["stores"],
                       "footprint": p["footprint"], "footprint_X": p["footprint_X"],
                       "footprint_W": p["footprint_W"]})


def osl_best(layer: Layer, machine, exhaustive: bool = True) -> Cost:
    """Cheapest OSL tiling on ``machine`` (E increases with Q, so this minimizes Q exactly).

    ``exhaustive=True``: exact minimum over all tiles that fit; otherwise the candidates of
    ``osl_best_np``.  ``Cost.parts`` holds both streams' footprints; the tile runs the
    smaller (``osl_stream``).  Raises InfeasibleError("OS-lean", M, osl_min_M(layer)).
    """
    M = machine.M
    if M < osl_min_M(layer):
        raise InfeasibleError("OS-lean", M, osl_min_M(layer))
    if exhaustive:
        _, _, tiles = _search(layer, M)
    else:
        P = {f: np.array([getattr(layer, f)], dtype=np.int64) for f in LAYER_FIELDS}
        r = osl_best_np(P, np.array([M], dtype=np.int64))
        tiles = OSLTiles(*(int(r[k][0]) for k in _TILE_FIELDS))
    return _cost(layer, machine, tiles)


# ----------------------------------------------------------------------------------------
# Vectorized candidate search over many layers.
# ----------------------------------------------------------------------------------------
def osl_best_np(P: dict, M, chunk: int = 1 << 14) -> dict:
    """Vectorized OSL upper bound over arrays of layers (docs/dataflow_os_lean.md, section 8).

    ``P`` maps the Layer field names to arrays, ``M`` an array of the same length.  A few
    candidate tiles per row (from both streams' continuous optima, and OS's own fast tile
    of ``os_best_np``, which always fits here) are costed exactly and the cheapest kept.
    Returns float64 "Q", "A", "F" (inf where no tile fits) and int64 "Bt", "D", "Th", "Tw"
    (0 there).  Every finite value is the exact cost of a tile that fits, hence an upper
    bound on ``osl_best(..., exhaustive=True)``, and never above ``os_best_np``'s Q.
    """
    missing = [f for f in LAYER_FIELDS if f not in P]
    if missing:
        raise KeyError(f"osl_best_np: missing layer field(s) {', '.join(missing)}")
    arrays = np.broadcast_arrays(np.asarray(M, dtype=np.float64).ravel(),
                                 *(np.asarray(P[f], dtype=np.float64).ravel() for f in LAYER_FIELDS))
    M, cols = arrays[0], dict(zip(LAYER_FIELDS, arrays[1:]))
    n = M.shape[0]
    out = {q: np.empty(n) for q in ("Q", "A", "F")}
    out.update({q: np.zeros(n, dtype=np.int64) for q in _TILE_FIELDS})
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = _best_chunk({f: v[lo:hi] for f, v in cols.items()}, M[lo:hi])
        for q in out:
            out[q][lo:hi] = r[q]
    return out


def _best_chunk(L: dict, M: np.ndarray) -> dict:
    """osl_best_np on one chunk of rows (float64 arrays)."""
    b, c, d, g = L["b"], L["c"], L["d"], L["groups"]
    h, w, kh, kw, sh, sw, ph, pw = (L[f] for f in ("h", "w", "kh", "kw", "sh", "sw", "ph", "pw"))
    dg = d / g
    oh = np.floor((h + 2 * ph - kh) / sh) + 1
    ow = np.floor((w + 2 * pw - kw) / sw) + 1
    mh, mw = np.minimum(sh, kh), np.minimum(sw, kw)
    ah, aw = kh - mh, kw - mw
    k2 = kh * kw
    room = M - 1
    m = np.sqrt(mh * mw)
    k = np.sqrt(k2)
    sq = np.sqrt(M)
    tiles = []                                   # (Bt, Th, Tw) candidates; D, then Bt refilled below

    def cls(D):                                  # the smallest D of the class of D (clipped to [1, dg])
        D = np.minimum(np.maximum(np.floor(D), 1), dg)
        return np.ceil(dg / np.ceil(dg / D))

    D_X = cls(m * M / (k * (sq + m * k)))
    D_W = cls(m * sq / k)
    one = np.ones_like(M)
    for D in (D_X, cls(2 * D_X), cls(D_X / 2), D_W, cls(2 * D_W), cls(D_W / 2)):
        # stream X: D (T + k^2) + 1 <= M; square-ish tile, widened
        TX = np.floor(room / D - k2)
        t = np.minimum(np.maximum(np.floor(np.sqrt(np.maximum(TX, 1))), 1), oh)
        tiles.append((one, t, np.floor(TX / t)))
        tiles.append((one, np.floor(TX / ow), ow))
        tiles.append((one, oh, np.floor(TX / oh)))
        # stream W: D T + patch + 1 <= M with patch <= (mh Th + ah)(mw Tw + aw)
        A2, A1, A0 = D + mh * mw, mh * aw + mw * ah, ah * aw - room
        t = np.minimum(np.maximum(np.floor((np.sqrt(np.maximum(A1 * A1 - 4 * A2 * A0, 0)) - A1) / (2 * A2)), 1), oh)
        Rh = np.minimum(h, (t - 1) * mh + kh)
        tiles.append((one, t, np.floor((room - Rh * aw) / (D * t + Rh * mw))))
        Rw = np.minimum(w, (ow - 1) * mw + kw)
        tiles.append((one, np.floor((room - ah * Rw) / (D * ow + mh * Rw)), ow))
        Rh = np.minimum(h, (oh - 1) * mh + kh)
        tiles.append((one, oh, np.floor((room - aw * Rh) / (D * oh + mw * Rh))))
    # whole output (small maps): the batch tile plays the role of T, from both streams' optima
    tiles.append((one, oh, ow))
    TX, TW = k * sq / m, M / (m * sq / k + m * m)
    for Tc in (TX, TW):
        for r in (np.floor, np.ceil):
            tiles.append((np.minimum(np.maximum(r(Tc / (oh * ow)), 1), b), oh, ow))
    o = os_best_np(L, M)                         # OS's fast tile fits with either stream
    tiles.append((np.maximum(o["Bt"], 1).astype(np.float64), o["Th"].astype(np.float64),
                  o["Tw"].astype(np.float64)))

    # every candidate at once: arrays of shape (candidates, rows), the layer fields broadcast
    Bt0, Th, Tw = (np.stack([np.broadcast_to(np.asarray(x, dtype=np.float64), M.shape) for x in col])
                   for col in zip(*tiles))
    Th = np.minimum(np.maximum(Th, 1), oh)
    Tw = np.minimum(np.maximum(Tw, 1), ow)
    Nh, Nw = np.ceil(oh / Th), np.ceil(ow / Tw)
    Th, Tw = np.ceil(oh / Nh), np.ceil(ow / Nw)          # the smallest tile of the same count
    T = Th * Tw
    RR = np.minimum(h, (Th - 1) * mh + kh) * np.minimum(w, (Tw - 1) * mw + kw)   # >= every tile's patch
    # the most filters with Bt0 batch items: Bt0 (D T + RR) + 1 <= M or D (Bt0 T + kh kw) + 1 <= M
    Dfit = np.maximum(np.floor((room - Bt0 * RR) / (Bt0 * T)), np.floor(room / (Bt0 * T + k2)))
    D = np.minimum(dg, Dfit)
    Nd = np.ceil(dg / np.maximum(D, 1))
    D = np.ceil(dg / Nd)
    # then the most batch items with that D
    Btfit = np.maximum(np.floor(room / (D * T + RR)), np.floor((room - D * k2) / (D * T)))
    Nb = np.ceil(b / np.minimum(np.maximum(Btfit, 1), b))
    Bt = np.ceil(b / Nb)
    ok = Dfit >= 1
    Bt, D = np.where(ok, Bt, 1.0), np.where(ok, D, 1.0)
    # a footprint bound (th <= T, real lines <= RR): every candidate it admits fits
    ok &= np.minimum(Bt * (D * T + RR) + 1, Bt * D * T + D * k2 + 1) <= M
    eh = _axis(FloatOps, h, kh, sh, ph, Th, peak=False)   # exact Q of every candidate (Theorems 1-2 of OS)
    ew = _axis(FloatOps, w, kw, sw, pw, Tw, peak=False)
    Y = b * d * oh * ow
    Qs = Y + np.ceil(b / Bt) * eh["N"] * ew["N"] * (d * (c / g) * k2) + np.ceil(dg / D) * b * c * eh["R"] * ew["R"]
    Qs = np.where(ok, Qs, np.inf)
    j = np.argmin(Qs, axis=0)
    cols = np.arange(M.shape[0])
    best = [v[j, cols].copy() for v in (Qs, Bt, D, Th, Tw)]
    Q, Bt, D, Th, Tw = best
    miss = np.flatnonzero(~np.isfinite(Q))
    if miss.size:                                # the 1x1x1x1 tile, exactly, where nothing else fits
        Lm = {q: v[miss] for q, v in L.items()}
        one = np.ones(miss.size)
        f1 = _osl_forms(FloatOps, Lm, {"Bt": one, "D": one, "Th": one, "Tw": one})
        use = f1["footprint"] <= M[miss]
        Q[miss] = np.where(use, f1["Q"], np.inf)
        for v in (Bt, D, Th, Tw):
            v[miss] = 1.0
    fit = np.isfinite(Q)
    Y = b * d * oh * ow
    F = Y * (c / g) * k2
    out = {"Q": Q, "A": np.where(fit, Q + 3 * F, np.inf), "F": np.where(fit, F, np.inf)}
    for key, v in zip(_TILE_FIELDS, (Bt, D, Th, Tw)):
        out[key] = np.where(fit, v, 0).astype(np.int64)
    return out
