"""Output-stationary (OS) tiling dataflow: exact Q, A, F, footprint, and tile search.

A tile of Bt batch items x D filters of one group x Th x Tw output positions keeps
its partial sums resident until complete; for every chunk of C input channels it
loads the clipped input patch and the D x C x kh x kw weights, does the MACs and
evicts them; then it stores the finished outputs.  Every formula below is derived
and proved in docs/dataflow_os.md; bounds/executor_os.py runs the same loop nest.

The formulas are written ONCE (``_os_forms``) over a tiny "ops" interface and
instantiated twice: with sympy operations (``os_expressions``) and with exact
integer numpy operations (``os_counts``, ``os_footprint``, ``os_best``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from bounds._lazy import LazyModule
from bounds.named_forms import IDENTITY, Namer
from bounds.named_forms import defined_symbol as namer_symbol
from bounds.ops import FloatOps, IntOps, PyIntOps, ceil_classes
from bounds.result import Cost, InfeasibleError
from complexity.layer import Layer

__all__ = ["OSTiles", "OSTileError", "TILE_SYMBOLS", "LAYER_FIELDS", "os_expressions", "os_named_forms",
           "os_continuous_optimum",
           "os_counts", "os_parts", "os_footprint", "os_min_M", "os_best", "os_best_np", "os_best_exact_np"]

#: Tile symbols: batch items, filters, output rows, output columns, input channels per chunk.
# imported on first use, so that the numeric search (and the one-layer CLI) never loads sympy
sp = LazyModule("sympy")
S = LazyModule("bounds.symbols")
_TILE_SYMBOL_NAMES = {"Bt_s": "b", "D_s": "d", "Th_s": "th", "Tw_s": "tw", "C_s": "c"}


@lru_cache(maxsize=1)
def _tile_symbols() -> dict:
    """{"b","d","th","tw","c"} -> the sympy tile symbols B_t, D, T_h, T_w, C (made on first use)."""
    Bt_s, D_s, Th_s, Tw_s, C_s = sp.symbols("B_t D T_h T_w C", integer=True, positive=True)
    return {"b": Bt_s, "d": D_s, "th": Th_s, "tw": Tw_s, "c": C_s}


def __getattr__(name: str):
    """TILE_SYMBOLS and Bt_s, D_s, Th_s, Tw_s, C_s, made with sympy on first access (PEP 562)."""
    if name == "TILE_SYMBOLS":
        return dict(_tile_symbols())
    if name in _TILE_SYMBOL_NAMES:
        return _tile_symbols()[_TILE_SYMBOL_NAMES[name]]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class OSTileError(ValueError):
    """A tile that does not exist for the layer; the message names the tile parameter."""

    def __init__(self, parameter: str, message: str):
        super().__init__(f"invalid OS tile: {parameter}: {message}")
        self.parameter = parameter


@dataclass(frozen=True)
class OSTiles:
    """OS tile: ``Bt`` batch items x ``D`` filters x ``Th`` x ``Tw`` outputs, chunks of ``C`` channels."""

    Bt: int
    D: int
    Th: int
    Tw: int
    C: int

    def __post_init__(self) -> None:
        for f in ("Bt", "D", "Th", "Tw", "C"):
            v = getattr(self, f)
            if isinstance(v, bool) or int(v) != v or v < 1:
                raise OSTileError(f, f"must be a positive integer, got {v!r}")
            object.__setattr__(self, f, int(v))

    def as_dict(self) -> dict:
        return {"b": self.Bt, "d": self.D, "th": self.Th, "tw": self.Tw, "c": self.C}

    def check(self, layer: Layer) -> "OSTiles":
        """Raise OSTileError unless 1 <= Bt <= b, D <= d/g, Th <= nh, Tw <= nw, C <= c/g."""
        for f, lim, name in (("Bt", layer.b, "b"), ("D", layer.dg, "d/g"), ("Th", layer.nh, "nh"),
                             ("Tw", layer.nw, "nw"), ("C", layer.cg, "c/g")):
            if getattr(self, f) > lim:
                raise OSTileError(f, f"{getattr(self, f)} exceeds {name}={lim} of the layer")
        return self


# ----------------------------------------------------------------------------------------
# The formulas, written once over an "ops" backend (sympy here; numeric ones in bounds/ops.py).
# ----------------------------------------------------------------------------------------
class _SymOps:
    name = staticmethod(IDENTITY.name)
    func = staticmethod(IDENTITY.func)

    # unevaluated Min/Max: building is 100x faster and substitution evaluates them anyway
    @staticmethod
    def min(a, b):
        return sp.Min(a, b, evaluate=False)

    @staticmethod
    def max(a, b):
        return sp.Max(a, b, evaluate=False)

    @staticmethod
    def cdiv(a, b):
        return sp.ceiling(a / b)

    @staticmethod
    def fdiv(a, b):
        return sp.floor(a / b)

    @staticmethod
    def exact(a, b):  # a / b, known to be an integer
        return a / b


class _NamedSymOps(_SymOps):
    """_SymOps whose naming hooks record the named quantities (readable forms, bounds/named_forms.py)."""

    def __init__(self, namer: Namer):
        self.name, self.func = namer.name, namer.func


def _clip_sum(ops, N, B, a):
    """sum_{t=0}^{N-1} max(0, B - a t) for a > 0 (an arithmetic series cut at its last positive term)."""
    J = ops.func("J", ("N", "B", "a"), lambda N_, B_, a_: ops.min(N_, ops.max(0, ops.cdiv(B_, a_))))

    def series(N_, B_, a_):  # Lemma 2: J B - a J (J - 1)/2
        j = J(N_, B_, a_)
        return j * B_ - ops.exact(a_ * j * (j - 1), 2)

    G = ops.func("G", ("N", "B", "a"), series)
    return G(N, B, a)


def _axis(ops, n, k, s, p, T, peak: bool = True, ax: str = "h"):
    """One spatial axis of the OS tiling with tiles of T outputs (docs/dataflow_os.md, section 3).

    Returns o (outputs), N (tiles), R (real input lines loaded, summed over the tiles), and
    the two (tile size, real lines) pairs that can hold the peak: the largest full tile
    (thF, RF) and the last tile (thL, RL).  ``ax`` suffixes the names of the readable forms.
    """
    def nm(label, e):
        return ops.name(f"{label}_{ax}", e)

    o = nm("n", ops.fdiv(n + 2 * p - k, s) + 1)
    m = nm("m", ops.min(s, k))
    N = nm("N", ops.cdiv(o, T))
    P = T * s
    K = s + p + n - k
    over_last = nm("z", ops.max(0, (o - 1) * s - p + k - n))
    R = nm("R", (o - N) * m + N * k - _clip_sum(ops, N, p, P)
           - _clip_sum(ops, N - 1, P * (N - 1) - K, P) - over_last)
    if not peak:
        return {"o": o, "N": N, "R": R}

    tau = ops.func(f"tau_{ax}", ("t",), lambda t: ops.min(T, o - t * T))

    def lines(t):  # real lines of tile t: Lemma 1 with i0 = tT, i1 = tT + tau(t) - 1
        return (tau(t) - 1) * m + k - ops.max(0, p - t * P) - ops.max(0, (t * T + tau(t) - 1) * s - p + k - n)

    r = ops.func(f"r_{ax}", ("t",), lines)
    tL = nm("t^pad", ops.cdiv(p, P))
    t1, t2 = ops.max(0, ops.min(tL - 1, N - 2)), ops.max(0, ops.min(tL, N - 2))
    return {"o": o, "N": N, "R": R, "thF": nm("T^F", tau(t1)), "RF": nm("R^F", ops.max(r(t1), r(t2))),
            "thL": nm("T^L", tau(N - 1)), "RL": nm("R^L", r(N - 1))}


def _peak_term(ops, D, C, ah, aw):
    """max over the (full, last) x (full, last) tile pairs of D*th*tw + C*R_h*R_w."""
    terms = [D * ah[th] * aw[tw] + C * ah[rh] * aw[rw]
             for th, rh in (("thF", "RF"), ("thL", "RL")) for tw, rw in (("thF", "RF"), ("thL", "RL"))]
    return ops.max(ops.max(terms[0], terms[1]), ops.max(terms[2], terms[3]))


def _os_forms(ops, L: dict, t: dict) -> dict:
    """Q, A, F, footprint and their parts for layer fields ``L`` and tile ``t`` (Bt, D, Th, Tw, C)."""
    ah = _axis(ops, L["h"], L["kh"], L["sh"], L["ph"], t["Th"], ax="h")
    aw = _axis(ops, L["w"], L["kw"], L["sw"], L["pw"], t["Tw"], ax="w")
    b, c, d, g, kh, kw = L["b"], L["c"], L["d"], L["groups"], L["kh"], L["kw"]
    cg, dg = ops.name("c_g", ops.exact(c, g)), ops.name("d_g", ops.exact(d, g))
    Y = ops.name("Y", b * d * ah["o"] * aw["o"])
    Wn = ops.name("W", d * cg * kh * kw)
    F = ops.name("F", Y * cg * kh * kw)
    Nb, Nd = ops.cdiv(b, t["Bt"]), ops.cdiv(dg, t["D"])
    loads_X = Nd * b * c * ah["R"] * aw["R"]
    loads_W = Nb * ah["N"] * aw["N"] * Wn
    Q = Y + loads_W + loads_X
    footprint = t["Bt"] * _peak_term(ops, t["D"], t["C"], ah, aw) + t["D"] * t["C"] * kh * kw
    return {"Q": Q, "A": Q + 3 * F, "F": F, "footprint": footprint, "loads_X": loads_X,
            "loads_W": loads_W, "stores": Y, "rows_loaded": ah["R"], "cols_loaded": aw["R"]}


LAYER_FIELDS = ("b", "c", "d", "h", "w", "kh", "kw", "sh", "sw", "ph", "pw", "groups")
_TILE_KEYS = {"Bt": "b", "D": "d", "Th": "th", "Tw": "tw", "C": "c"}


@lru_cache(maxsize=1)
def _sym_forms() -> dict:
    L = dict(S.LAYER_SYMBOLS)
    t = {k: _tile_symbols()[v] for k, v in _TILE_KEYS.items()}
    return _os_forms(_SymOps, L, t)


@lru_cache(maxsize=1)
def os_named_forms() -> dict:
    """Readable forms: "defs" (ordered {symbol or f(args): definition}) and "short" (Q, A, footprint, ...).

    Built by the same ``_os_forms`` as ``os_expressions`` with every named quantity kept
    as a symbol (n_h, m_h, N_h, R_h, T^F_h, R^F_h, ...) or undefined function (G, J,
    tau_h, r_h); ``bounds.named_forms.expand(short, defs)`` gives the full form.
    """
    namer = Namer()
    L = dict(S.LAYER_SYMBOLS)
    t = {k: _tile_symbols()[v] for k, v in _TILE_KEYS.items()}
    f = _os_forms(_NamedSymOps(namer), L, t)
    return {"defs": dict(namer.defs), "short": f}


def os_expressions() -> dict:
    """Exact sympy expressions of the OS dataflow in the symbols of bounds/symbols.py and the tile.

    Keys: "Q", "A", "F", "footprint", "loads_X", "loads_W", "stores", "rows_loaded",
    "cols_loaded", "tile_symbols" ({"b","d","th","tw","c"} -> symbol), and the readable
    forms "defs" and "short" of ``os_named_forms``.
    """
    out = dict(_sym_forms())
    out["tile_symbols"] = dict(_tile_symbols())
    out.update(os_named_forms())
    return out


def os_continuous_optimum() -> dict:
    """Real-valued optimal OS tile and the resulting Q for large layers (docs/dataflow_os.md, section 6).

    With m = sqrt(min(sh,kh) min(sw,kw)) input lines per output and k = sqrt(kh kw):
    Q - |Y| ~ F (m^2/(k^2 D) + 1/T), minimized under D T = M by D* = m sqrt(M)/k filters and
    T* = Th* Tw* = k sqrt(M)/m outputs, Bt* = 1, C* = 1, with Th*/Tw* balancing the two
    halos; then Q* = |Y| + 2 F m / (k sqrt(M)) (= |Y| + 2 c d n^2 k s / sqrt(M) when g = b = 1
    and s <= k).  "D_fit"/"T_fit" also charge the input patch m^2 T and the weights D k^2
    to the Buffer: (D + m^2) T + D k^2 = M.  "short" holds the same with |Y| and F as the
    symbols Y, F, m_h, m_w of ``os_named_forms``.
    """
    out = _os_optimum(S.Y, S.F, sp.Min(S.sh, S.kh), sp.Min(S.sw, S.kw))
    out["short"] = _os_optimum(*(namer_symbol(x) for x in ("Y", "F", "m_h", "m_w")))
    return out


def _os_optimum(Y, F, mh, mw) -> dict:
    """The continuous optimum for given |Y|, F and m = min(s, k) per axis (full expressions or named symbols)."""
    m = sp.sqrt(mh * mw)
    k = sp.sqrt(S.kh * S.kw)
    D = m * sp.sqrt(S.M) / k
    T = k * sp.sqrt(S.M) / m
    ah, aw = S.kh - mh, S.kw - mw
    rho = sp.Piecewise((mw * ah / (mh * aw), sp.And(ah > 0, aw > 0)), (1, True))
    Th, Tw = sp.sqrt(T * rho), sp.sqrt(T / rho)
    Q = Y + 2 * F * m / (k * sp.sqrt(S.M))
    D_fit = m * S.M / (k * sp.sqrt(S.M + k**2 * m**2) + m * k**2)
    T_fit = (S.M - D_fit * k**2) / (D_fit + m**2)
    return {"Bt": sp.Integer(1), "D": D, "T": T, "Th": Th, "Tw": Tw, "C": sp.Integer(1), "Q": Q,
            "A": Q + 3 * F, "F": F, "D_fit": D_fit, "T_fit": T_fit}


# ----------------------------------------------------------------------------------------
# Exact numeric evaluation (integers).
# ----------------------------------------------------------------------------------------
def _layer_dict(layer: Layer) -> dict:
    return {f: getattr(layer, f) for f in LAYER_FIELDS}


def _tile_dict(tiles: OSTiles) -> dict:
    return {"Bt": tiles.Bt, "D": tiles.D, "Th": tiles.Th, "Tw": tiles.Tw, "C": tiles.C}


def _as_tiles(tiles) -> OSTiles:
    if isinstance(tiles, OSTiles):
        return tiles
    if isinstance(tiles, dict):
        return OSTiles(tiles["b"], tiles["d"], tiles["th"], tiles["tw"], tiles["c"])
    return OSTiles(*tiles)


def os_parts(layer: Layer, tiles) -> dict:
    """All exact integer quantities of ``_os_forms`` (Q, A, F, footprint, loads_X, loads_W, stores, ...)."""
    t = _as_tiles(tiles).check(layer)
    f = _os_forms(PyIntOps, _layer_dict(layer), _tile_dict(t))  # Python integers: exact at any size
    return {k: int(v) for k, v in f.items()}


def os_counts(layer: Layer, tiles) -> tuple[int, int, int]:
    """Exact (Q, A, F) of the OS loop nest with these tiles."""
    p = os_parts(layer, tiles)
    return p["Q"], p["A"], p["F"]


def os_footprint(layer: Layer, tiles) -> int:
    """Exact peak number of resident words of the OS loop nest with these tiles."""
    return os_parts(layer, tiles)["footprint"]


def os_min_M(layer: Layer) -> int:
    """Smallest Buffer in which some OS tile fits: the footprint of the 1x1x1x1x1 tile (proof in the doc)."""
    return os_footprint(layer, OSTiles(1, 1, 1, 1, 1))


# ----------------------------------------------------------------------------------------
# Exhaustive tile search.
# ----------------------------------------------------------------------------------------
def _axis_candidates(n: int, k: int, s: int, p: int, o: int) -> np.ndarray:
    """Tile sizes T of one axis that the exhaustive search needs: O(sqrt(o) + (p/s) log o) of them.

    For each tile count N = ceil(o/T) (bounds.ops.ceil_classes) the smallest T of the class,
    plus the T whose loaded lines R can still drop within the class: those where the
    first N-1 tiles reach the right padding ((N-1) T s > s + p + n - k) and those with
    T s <= p (several tiles clipped by the left padding).  Every other T is dominated by
    one of these: same N, no more lines R, and each of its (tile, real lines) pairs
    (T^F, R^F), (T^L, R^L) within one of the other's (docs/dataflow_os.md, section 7;
    checked against every T in tests/test_hardening_compute.py).
    """
    if o <= 4096:                                      # the same in Python integers: faster when small
        return _axis_candidates_small(int(n), int(k), int(s), int(p), int(o))
    Tmin = ceil_classes(o)
    N = -((-o) // Tmin)
    Tmax = np.where(N == 1, o, (o - 1) // np.maximum(N - 1, 1))
    Tr = np.where(N >= 2, (s + p + n - k) // (np.maximum(N - 1, 1) * s) + 1, o + 1)
    lo = np.concatenate([np.maximum(Tmin, Tr), Tmin])
    hi = np.concatenate([Tmax, np.minimum(Tmax, -(-p // s))])
    ln = np.maximum(hi - lo + 1, 0)
    extra = np.repeat(lo - np.concatenate([[0], np.cumsum(ln)[:-1]]), ln) + np.arange(int(ln.sum()))
    u = np.sort(np.concatenate([Tmin, extra]).astype(np.int64))  # = np.union1d, whose np.unique
    return u[np.concatenate([[True], u[1:] != u[:-1]])]           # imports numpy.ma (~70 ms) on first use


def _axis_candidates_small(n: int, k: int, s: int, p: int, o: int) -> np.ndarray:
    """``_axis_candidates`` in Python integers (for small o, where numpy's per-call cost dominates)."""
    r = math.isqrt(o) + 1
    reps = {-(-o // t) for t in range(1, r + 1)} | {-(-o // -(-o // t)) for t in range(1, min(r, o) + 1)}
    out = set(reps)
    K, pc = s + p + n - k, -(-p // s)
    for Tmin in reps:
        N = -(-o // Tmin)
        Tmax = o if N == 1 else (o - 1) // (N - 1)
        if N >= 2:
            out.update(range(max(Tmin, K // ((N - 1) * s) + 1), Tmax + 1))
        out.update(range(Tmin, min(Tmax, pc) + 1))
    return np.array(sorted(out), dtype=np.int64)


_AXIS_KEYS = ("N", "R", "thF", "RF", "thL", "RL")
#: Most candidates per axis for which the (quadratic, chunked) dominance filter runs.
_PARETO_MAX = 8192


def _pareto_axis(n, k, s, p, o) -> dict:
    """Per-axis arrays over the candidate T, reduced to the T not dominated in (N, R, thF, RF, thL, RL).

    Q is nondecreasing in N and R and the footprint in thF, RF, thL, RL, so a dominated
    T can never be needed by the exhaustive minimum (docs/dataflow_os.md, section 7).
    The filter is pairwise over the O(sqrt(o)) candidates, in blocks of rows (bounded memory).
    """
    T = _axis_candidates(n, k, s, p, o)
    a = _axis(IntOps, np.int64(n), np.int64(k), np.int64(s), np.int64(p), T)
    V = np.stack([np.broadcast_to(a[q], T.shape) for q in _AXIS_KEYS], axis=1)
    # remove exact duplicates first (keep smallest T), then strictly dominated rows
    _, first = np.unique(V, axis=0, return_index=True)
    keep = np.sort(first)
    if len(keep) <= _PARETO_MAX:
        U = V[keep]
        dominated = np.zeros(len(U), dtype=bool)
        step = max(1, (1 << 21) // max(len(U), 1))
        for i0 in range(0, len(U), step):              # dominated[j] |= some row i != j is <= row j
            le = (U[i0:i0 + step, None, :] <= U[None, :, :]).all(axis=2)
            le[np.arange(le.shape[0]), np.arange(i0, i0 + le.shape[0])] = False
            dominated |= le.any(axis=0)
        keep = keep[~dominated]
    out = {q: np.broadcast_to(a[q], T.shape)[keep] for q in _AXIS_KEYS}
    out["T"] = T[keep]
    return out


#: Tile candidates (rows x Bt x Th x Tw) evaluated at once by the exhaustive search (bounded memory).
_CELL_CHUNK = 1 << 19


def _search(layer: Layer, M: int):
    """Exact minimum of Q over all OS tiles with footprint <= M; None if nothing fits.

    Returns (Q, footprint, OSTiles), the least footprint among the tiles of least Q;
    one row of ``os_best_exact_np``.
    """
    P = {f: np.array([getattr(layer, f)], dtype=np.int64) for f in LAYER_FIELDS}
    r = os_best_exact_np(P, np.array([M], dtype=np.int64), _pareto=True)
    if not r["fit"][0]:
        return None
    return (int(r["Q"][0]), int(r["footprint"][0]),
            OSTiles(*(int(r[k][0]) for k in ("Bt", "D", "Th", "Tw", "C"))))


def os_best_exact_np(P: dict, M, _pareto: bool = False) -> dict:
    """Exhaustive (exact) OS optimum for every row of a batch of layers, vectorized over rows.

    ``P`` maps the Layer field names to int64 arrays (valid layers), ``M`` an int64 array.
    Returns exact integers "Q", "A", "F", "footprint" (int64, or Python ints in an object
    array where int64 could overflow), tiles "Bt", "D", "Th", "Tw", "C" and "fit" (False
    where no tile fits: there Q, A, F, footprint and the tiles are 0).  Per row, the
    least footprint among the tiles of least Q.

    Exact by monotonicity: Q = |Y| + ceil(b/Bt) N_h N_w |W| + ceil(dg/D) b c R_h R_w and the
    footprint Bt max_i(D a_i + r_i) + D kh kw (C = 1; i over the (full, last) tile pairs)
    grow as stated in docs/dataflow_os.md, section 7.  So only the per-axis candidates of
    ``_axis_candidates`` and the smallest Bt of each ceil(b/Bt) class are tried; for each,
    the best D is closed-form: the largest that fits, min_i (M - Bt r_i) // (Bt a_i + kh kw),
    lowered to the smallest D with the same ceil(dg/D).  Memory is bounded by evaluating
    at most _CELL_CHUNK candidates at a time.
    """
    L = {f: np.broadcast_to(np.asarray(P[f], dtype=np.int64), np.shape(M)).ravel() for f in LAYER_FIELDS}
    M = np.asarray(M, dtype=np.int64).ravel()
    n = M.size
    keys = ("Q", "A", "F", "footprint", "Bt", "D", "Th", "Tw", "C")
    out = {k: np.zeros(n, dtype=np.int64) for k in keys}
    out["fit"] = np.zeros(n, dtype=bool)
    if n == 0:
        return out
    oh = (L["h"] + 2 * L["ph"] - L["kh"]) // L["sh"] + 1
    ow = (L["w"] + 2 * L["pw"] - L["kw"]) // L["sw"] + 1
    # rows whose counts could leave int64 are done with Python integers (object arrays)
    f = {k: v.astype(np.float64) for k, v in L.items()}
    cgf, k2f = f["c"] / f["groups"], f["kh"] * f["kw"]
    Yf = f["b"] * f["d"] * oh * ow
    Wf = f["d"] * cgf * k2f
    bound = (Yf * (1 + cgf * k2f) + f["b"] * oh * ow * Wf
             + f["d"] / f["groups"] * f["b"] * f["c"] * oh * f["kh"] * ow * f["kw"])
    big = (bound >= 2.0 ** 61) | (M >= 1 << 61)
    small = np.flatnonzero(~big)
    U = np.full(n, np.inf)                 # the Q of a tile that fits (fast candidates): prunes the search
    if small.size:
        with np.errstate(all="ignore"):
            U[small] = os_best_np({k: v[small] for k, v in L.items()}, M[small])["Q"] * (1 + 1e-9) + 1
    for rows, dtype in ((small, np.int64), (np.flatnonzero(big), object)):
        if rows.size:
            part = ({k: v[rows].astype(dtype) for k, v in L.items()}, M[rows].astype(dtype),
                    oh[rows].astype(dtype), ow[rows].astype(dtype), _pareto)
            r = _exact_rows(*part, U=U[rows])
            # safety net: a row whose bound U was not reached is searched again without it
            redo = np.flatnonzero(np.isfinite(U[rows]) & (~r["fit"] | (r["Q"].astype(np.float64) > U[rows])))
            if redo.size:
                r2 = _exact_rows(*({k: v[redo] for k, v in part[0].items()}, *(a[redo] for a in part[1:4]),
                                   _pareto))
                for k in r:
                    r[k][redo] = r2[k]
            if dtype is object:
                for k in keys:
                    out[k] = out[k].astype(object)
            for k in keys + ("fit",):
                out[k][rows] = r[k]
    return out


def _axis_tables(n, k, s, p, o, pareto: bool):
    """Per distinct axis (n, k, s, p): its candidate T and their (N, R, thF, RF, thL, RL), concatenated.

    Returns (index of each row's axis, start and length of each distinct axis in the
    concatenated table, the table).
    """
    A = np.stack([n, k, s, p, o], axis=1)
    uniq, inv = np.unique(A.astype(np.int64), axis=0, return_inverse=True)
    cols = [uniq[:, j].astype(n.dtype) for j in range(5)]
    Ts = [(_pareto_axis(*(int(c[i]) for c in cols))["T"] if pareto
           else _axis_candidates(*(int(c[i]) for c in cols))) for i in range(len(uniq))]
    ln = np.array([len(t) for t in Ts], dtype=np.int64)
    start = np.concatenate([[0], np.cumsum(ln)[:-1]])
    which = np.repeat(np.arange(len(uniq)), ln)
    T = np.concatenate(Ts).astype(n.dtype)
    a = _axis(IntOps, *(c[which] for c in cols[:4]), T)
    tab = {q: np.broadcast_to(a[q], T.shape) for q in _AXIS_KEYS}
    tab["T"] = T
    return inv.reshape(-1), start, ln, tab


def _ragged(counts: np.ndarray):
    """(owner, position) of every element of consecutive groups of the given sizes."""
    owner = np.repeat(np.arange(len(counts)), counts)
    return owner, np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)


def _exact_rows(L: dict, M, oh, ow, pareto: bool, U=None) -> dict:
    """os_best_exact_np on rows of one dtype (int64, or object for Python integers).

    ``U`` (optional, per row) is the Q of some tile that fits: candidates whose lower
    bound on Q exceeds it are dropped before they are costed, first per axis, then per
    (Th, Tw) cell (Nb, Nd >= 1); so are candidates that cannot fit even with D = Bt = 1.
    """
    n = M.size
    U = np.full(n, np.inf) if U is None else U
    hi, hs, hl, H = _axis_tables(L["h"], L["kh"], L["sh"], L["ph"], oh, pareto)
    wi, ws, wl, W = _axis_tables(L["w"], L["kw"], L["sw"], L["pw"], ow, pareto)
    Wmin = {q: np.minimum.reduceat(W[q], ws) for q in ("thF", "RF", "R")}   # least per distinct w axis
    bu, binv = np.unique(L["b"].astype(np.int64), return_inverse=True)
    Bts = [ceil_classes(int(b)) for b in bu]
    bl = np.array([len(x) for x in Bts], dtype=np.int64)
    bs = np.concatenate([[0], np.cumsum(bl)[:-1]])
    BT = np.concatenate(Bts).astype(M.dtype)
    binv = binv.reshape(-1)
    size = hl[hi] * wl[wi] * bl[binv]                      # candidates per row before pruning
    dg = L["d"] // L["groups"]
    Y = L["b"] * L["d"] * oh * ow
    Wn = L["d"] * (L["c"] // L["groups"]) * L["kh"] * L["kw"]
    F = Y * (L["c"] // L["groups"]) * L["kh"] * L["kw"]
    k2 = L["kh"] * L["kw"]
    bc = L["b"] * L["c"]
    res = {k: np.zeros(n, dtype=M.dtype) for k in ("Q", "footprint", "Bt", "D", "Th", "Tw")}
    fit = np.zeros(n, dtype=bool)
    top = (1 << 200) if M.dtype == object else np.iinfo(np.int64).max

    def axis_pairs(rows, ai, st, ln, A, Bmin, bi):
        """(row, candidate index) of one axis per row, without those that cannot fit or beat U."""
        o, pos = _ragged(ln[ai[rows]])
        r = rows[o]
        i = st[ai[r]] + pos
        b_ = bi[r]
        # with the other axis at its least (N >= 1, R, thF, RF at their minima) and Bt = 1:
        # the most filters that fit, hence the fewest filter passes, bound Q from below
        Dmax = np.minimum(dg[r], (M[r] - A["RF"][i] * Bmin["RF"][b_]) // (A["thF"][i] * Bmin["thF"][b_] + k2[r]))
        lb = Y[r] + A["N"][i] * Wn[r] + (-((-dg[r]) // np.maximum(Dmax, 1))) * bc[r] * A["R"][i] * Bmin["R"][b_]
        ok = (Dmax >= 1) & (lb <= U[r])
        return r[ok], i[ok]

    ends = np.cumsum(size)
    r0 = 0
    while r0 < n:                     # blocks of rows with at most _CELL_CHUNK candidates before pruning
        base = ends[r0] - size[r0]
        r1 = max(r0 + 1, int(np.searchsorted(ends, base + _CELL_CHUNK, side="right")))
        rows = np.arange(r0, r1)
        rh, ih = axis_pairs(rows, hi, hs, hl, H, Wmin, wi)
        # the (Th, Tw) cells of each row: for each Th, the window of Tw (sorted by T, N nonincreasing)
        # with N_h N_w |W| <= U - |Y| - b c R_h min R_w (Nb, Nd >= 1) and Th Tw + R_h^F min R_w^F + kh kw <= M
        seg = wi[rh]
        if M.dtype == object:
            lo_i, hi_i = ws[seg], ws[seg] + wl[seg]
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                nw_cap = np.floor((U[rh] - Y[rh] - (bc[rh] * H["R"][ih] * Wmin["R"][seg]).astype(np.float64))
                                  / (H["N"][ih] * Wn[rh]).astype(np.float64))
                nw_cap = np.where(np.isfinite(nw_cap), np.clip(nw_cap, -1, 1 << 62), 1 << 62).astype(np.int64)
            RR = H["RF"][ih] * Wmin["RF"][seg]
            tw_cap = (M[rh] - k2[rh] - RR) // H["T"][ih]
            # filter passes: Nd b c R_h min R_w <= U - |Y| - N_h |W| needs D >= ceil(dg / nd_cap),
            # and D (Th Tw + kh kw) + R_h^F min R_w^F <= M caps Tw
            with np.errstate(divide="ignore", invalid="ignore"):
                nd_cap = np.floor((U[rh] - Y[rh] - (H["N"][ih] * Wn[rh]).astype(np.float64))
                                  / (bc[rh] * H["R"][ih] * Wmin["R"][seg]).astype(np.float64))
            fin = np.isfinite(nd_cap)
            nd_cap = np.where(fin, np.clip(nd_cap, 0, 1 << 62), 1).astype(np.int64)
            need = np.where(fin & (nd_cap >= 1), -((-dg[rh]) // np.maximum(nd_cap, 1)), 1)
            cap2 = (M[rh] - RR - need * k2[rh]) // (need * H["T"][ih])
            tw_cap = np.where(fin & (nd_cap < 1), -1, np.minimum(tw_cap, cap2))
            span = int(W["T"].max()) + 2
            owner = np.repeat(np.arange(len(wl)), wl)
            keyT = owner * span + W["T"]
            keyN = owner * span + (span - 1 - np.minimum(W["N"], span - 1))   # ascending within a segment
            lo_i = np.searchsorted(keyN, seg * span + (span - 1 - np.clip(nw_cap, -1, span - 1)), side="left")
            hi_i = np.searchsorted(keyT, seg * span + np.clip(tw_cap, -1, span - 1), side="right")
        o, pos = _ragged(np.maximum(hi_i - lo_i, 0))
        row = rh[o]
        IH = ih[o]
        IW = lo_i[o] + pos
        h = {q: v[IH] for q, v in H.items()}
        w = {q: v[IW] for q, v in W.items()}
        pairs = [(h[th] * w[tw], h[rh_] * w[rw_]) for th, rh_ in (("thF", "RF"), ("thL", "RL"))
                 for tw, rw_ in (("thF", "RF"), ("thL", "RL"))]
        phi1 = pairs[0][0] + pairs[0][1]                 # peak per batch item and filter
        for a_, r_ in pairs[1:]:
            phi1 = np.maximum(phi1, a_ + r_)
        Mr, k2r = M[row], k2[row]
        Dmax1 = dg[row]                                  # most filters with Bt = 1
        for a_, r_ in pairs:
            Dmax1 = np.minimum(Dmax1, (Mr - r_) // (a_ + k2r))
        Btmax1 = np.minimum(L["b"][row], (Mr - k2r) // phi1)   # most batch items with D = 1
        NW = h["N"] * w["N"] * Wn[row]
        XR = (-((-dg[row]) // np.maximum(Dmax1, 1))) * bc[row] * h["R"] * w["R"]
        lb = Y[row] + (-((-L["b"][row]) // np.maximum(Btmax1, 1))) * NW + XR
        keep = np.flatnonzero((Dmax1 >= 1) & (lb <= U[row]))
        row, h, w = row[keep], {q: v[keep] for q, v in h.items()}, {q: v[keep] for q, v in w.items()}
        pairs = [(a_[keep], r_[keep]) for a_, r_ in pairs]
        # the Bt classes that can fit (Bt <= Btmax1) and beat U (ceil(b/Bt) NW + XR + Y <= U)
        with np.errstate(divide="ignore", invalid="ignore"):
            nb_max = np.floor((U[row] - Y[row].astype(np.float64) - XR[keep].astype(np.float64))
                              / NW[keep].astype(np.float64))
        b_r = L["b"][row].astype(np.int64)
        nb_cap = np.where(np.isfinite(nb_max), np.clip(nb_max, 1, None), b_r.astype(np.float64))
        bt_lo = -(-b_r // np.minimum(nb_cap, b_r).astype(np.int64))
        bt_hi = Btmax1[keep].astype(np.int64)
        span = int(b_r.max()) + 2 if row.size else 1
        key = np.repeat(np.arange(len(bl)), bl) * span + BT.astype(np.int64)
        seg = binv[row] * span
        lo_i = np.searchsorted(key, seg + bt_lo, side="left")
        hi_i = np.searchsorted(key, seg + bt_hi, side="right")
        o, bt_i = _ragged(np.maximum(hi_i - lo_i, 0))
        row = row[o]
        Bt = BT[lo_i[o] + bt_i]
        h = {q: v[o] for q, v in h.items()}
        w = {q: v[o] for q, v in w.items()}
        pairs = [(a_[o], r_[o]) for a_, r_ in pairs]
        if row.size:
            Mr, dgr, k2r = M[row], dg[row], k2[row]
            Dmax = dgr
            for a_, r_ in pairs:
                Dmax = np.minimum(Dmax, (Mr - Bt * r_) // (Bt * a_ + k2r))
            ok = Dmax >= 1
            Nd = -((-dgr) // np.maximum(Dmax, 1))
            D = -((-dgr) // Nd)
            phi = pairs[0][0] * D + pairs[0][1]
            for a_, r_ in pairs[1:]:
                phi = np.maximum(phi, a_ * D + r_)
            fp = Bt * phi + D * k2r
            Q = Y[row] + (-((-L["b"][row]) // Bt)) * h["N"] * w["N"] * Wn[row] + Nd * bc[row] * h["R"] * w["R"]
            Q = np.where(ok, Q, top)
            starts = np.flatnonzero(np.concatenate([[True], row[1:] != row[:-1]]))
            cnt = np.diff(np.concatenate([starts, [row.size]]))
            qmin = np.minimum.reduceat(Q, starts)
            fp = np.where(Q == np.repeat(qmin, cnt), fp, top)
            fmin = np.minimum.reduceat(fp, starts)
            hit = np.flatnonzero(fp == np.repeat(fmin, cnt))
            first = hit[np.unique(row[hit], return_index=True)[1]]   # first candidate of least (Q, fp) per row
            pick = first[ok[first]]
            rr = row[pick]
            fit[rr] = True
            for k, v in (("Q", Q), ("footprint", fp), ("Bt", Bt), ("D", D), ("Th", h["T"]), ("Tw", w["T"])):
                res[k][rr] = v[pick]
        r0 = r1
    res["F"] = np.where(fit, F, 0)
    res["A"] = np.where(fit, res["Q"] + 3 * F, 0)
    res["C"] = fit.astype(np.int64)
    res["fit"] = fit
    return res


def _cost(layer: Layer, machine, tiles: OSTiles) -> Cost:
    p = os_parts(layer, tiles)
    E = machine.energy(p["Q"], p["A"], p["F"])
    return Cost(Q=p["Q"], A=p["A"], F=p["F"], E=float(E), tiles=tiles.as_dict(),
                parts={"loads_X": p["loads_X"], "loads_W": p["loads_W"], "stores": p["stores"],
                       "footprint": p["footprint"]})


def os_best(layer: Layer, machine, exhaustive: bool = True) -> Cost:
    """Cheapest OS tiling on ``machine`` (E is increasing in Q, so this minimizes Q exactly).

    ``exhaustive=True``: exact minimum over all tiles that fit; otherwise the few candidates
    of ``os_best_np``.  Raises InfeasibleError("OS", M, os_min_M(layer)) when nothing fits.
    """
    M = machine.M
    if M < os_min_M(layer):
        raise InfeasibleError("OS", M, os_min_M(layer))
    if exhaustive:
        q, _, tiles = _search(layer, M)
    else:
        P = {f: np.array([getattr(layer, f)], dtype=np.int64) for f in LAYER_FIELDS}
        r = os_best_np(P, np.array([M], dtype=np.int64))
        tiles = OSTiles(*(int(r[key][0]) for key in ("Bt", "D", "Th", "Tw", "C")))
    return _cost(layer, machine, tiles)


# ----------------------------------------------------------------------------------------
# Vectorized candidate search over many layers.
# ----------------------------------------------------------------------------------------
def os_best_np(P: dict, M, chunk: int = 1 << 14) -> dict:
    """Vectorized OS upper bound over arrays of layers (docs/dataflow_os.md, section 8).

    ``P`` maps the Layer field names to int64 arrays, ``M`` is an int64 array of the same
    length.  Eight candidate tiles per row (from the continuous optimum, rounded and
    clipped, plus whole-output ones) are ranked, and the winner is costed exactly.  Returns
    float64 "Q", "A", "F" (np.inf where no tile fits) and int64 "Bt", "D", "Th", "Tw", "C"
    (0 where none fits).  Every finite value is the exact cost of a tile that fits, hence
    an upper bound on ``os_best(..., exhaustive=True)``.
    """
    missing = [f for f in LAYER_FIELDS if f not in P]
    if missing:
        raise KeyError(f"os_best_np: missing layer field(s) {', '.join(missing)}")
    arrays = np.broadcast_arrays(np.asarray(M, dtype=np.float64).ravel(),
                                 *(np.asarray(P[f], dtype=np.float64).ravel() for f in LAYER_FIELDS))
    M, cols = arrays[0], dict(zip(LAYER_FIELDS, arrays[1:]))
    n = M.shape[0]
    out = {q: np.empty(n) for q in ("Q", "A", "F")}
    out.update({q: np.zeros(n, dtype=np.int64) for q in ("Bt", "D", "Th", "Tw", "C")})
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        with np.errstate(divide="ignore", invalid="ignore"):  # rows where a candidate does not fit
            r = _best_chunk({f: v[lo:hi] for f, v in cols.items()}, M[lo:hi])
        for q in out:
            out[q][lo:hi] = r[q]
    return out


def _best_chunk(L: dict, M: np.ndarray) -> dict:
    """os_best_np on one chunk of rows (float64 arrays); see os_best_np.

    Candidates are generated and ranked with a cheap approximation of Q (the clipping
    of padding counted as if it touched only the first and last tiles); the winner is then
    costed exactly with the closed form.  The footprint used for feasibility is a
    conservative bound (every tile's real lines <= min(n, (T-1) m + k)), so the chosen tile
    always fits; where no candidate fits, the 1x1x1x1x1 tile is tried with its exact footprint.
    """
    b, c, d, g = L["b"], L["c"], L["d"], L["groups"]
    h, w, kh, kw, sh, sw, ph, pw = (L[f] for f in ("h", "w", "kh", "kw", "sh", "sw", "ph", "pw"))
    dg = d / g
    oh = np.floor((h + 2 * ph - kh) / sh) + 1
    ow = np.floor((w + 2 * pw - kw) / sw) + 1
    mh, mw = np.minimum(sh, kh), np.minimum(sw, kw)
    ah, aw = kh - mh, kw - mw                    # halo: lines <= m*T + a
    k2 = kh * kw
    Wn = d * (c / g) * k2
    bc = b * c
    # approximate summed lines: R ~ o m - p - over_last + N (k - m)
    ch = oh * mh - ph - np.maximum(0, (oh - 1) * sh - ph + kh - h)
    cw = ow * mw - pw - np.maximum(0, (ow - 1) * sw - pw + kw - w)
    # D minimizing m^2/D + k^2/T with (D + m^2) T + D k^2 = M, m = min(s, k) (doc, section 6)
    m2 = mh * mw
    Dc = np.sqrt(m2) * M / (np.sqrt(k2 * (M + k2 * m2)) + np.sqrt(m2) * k2)
    Dc = np.minimum(np.maximum(Dc, 1), dg)
    Dstar = np.ceil(dg / np.ceil(dg / Dc))        # class of Dc, rounded down and up
    Dup = np.ceil(dg / np.maximum(np.floor(dg / Dc), 1))
    cands = []

    def add(D0, Th, Tw, refill_D=True, Bt0=None):
        Nh = np.ceil(oh / np.maximum(Th, 1))     # Th clipped to [1, oh], then lowered to
        Nw = np.ceil(ow / np.maximum(Tw, 1))     # the smallest tile with the same count
        Th, Tw = np.ceil(oh / Nh), np.ceil(ow / Nw)
        RR = np.minimum(h, Th * mh + ah) * np.minimum(w, Tw * mw + aw)
        T = Th * Tw
        Dmax = np.floor((M - RR) / (T + k2)) if Bt0 is None else np.floor((M - Bt0 * RR) / (Bt0 * T + k2))
        D = np.minimum(dg, Dmax) if refill_D else np.minimum(D0, Dmax)
        Nd = np.ceil(dg / D)                     # D < 1 (nothing fits): masked below
        D = np.ceil(dg / Nd)
        Nb = np.ceil(b / np.maximum(np.floor((M - D * k2) / (D * T + RR)), 1))
        Q = Nb * Nh * Nw * Wn + Nd * bc * (ch + Nh * ah) * (cw + Nw * aw)
        cands.append((np.where(Dmax >= 1, Q, np.inf), Nb, D, Th, Tw))

    for D in (Dstar, Dup, np.ceil(dg / np.ceil(dg / np.maximum(Dstar / 2, 1)))):
        room = M - D * k2
        # square-ish: (D + mh mw) t^2 + (mh aw + mw ah) t + ah aw - room <= 0, then widen
        A2, A1, A0 = D + mh * mw, mh * aw + mw * ah, ah * aw - room
        t = np.minimum(np.maximum(np.floor((np.sqrt(np.maximum(A1 * A1 - 4 * A2 * A0, 0)) - A1) / (2 * A2)), 1), oh)
        Rh = np.minimum(h, (t - 1) * mh + kh)
        add(D, t, np.floor((room - Rh * aw) / (D * t + Rh * mw)))
        # full rows (Tw = ow) and full columns (Th = oh)
        Rw = np.minimum(w, (ow - 1) * mw + kw)
        add(D, np.floor((room - ah * Rw) / (D * ow + mh * Rw)), ow)
        Rh = np.minimum(h, (oh - 1) * mh + kh)
        add(D, oh, np.floor((room - aw * Rh) / (D * oh + mw * Rh)))
    add(Dstar, oh, ow, refill_D=False)            # whole output, batch fills the rest
    Bt0 = np.minimum(np.maximum(np.round(M / (Dc * oh * ow)), 1), b)
    add(Dstar, oh, ow, Bt0=Bt0)                   # whole output, Bt from the continuous T

    Qs = np.stack([q[0] for q in cands])
    j = np.argmin(Qs, axis=0)
    rows = np.arange(M.shape[0])
    Nb, D, Th, Tw = (np.stack([q[i] for q in cands])[j, rows] for i in range(1, 5))
    Bt = np.ceil(b / Nb)
    fit = np.isfinite(Qs[j, rows])
    C = np.ones(M.shape)
    miss = np.flatnonzero(~fit)
    if miss.size:                                 # exact smallest tile where nothing else fits
        one = np.ones(miss.size)
        fp1 = _peak_term(FloatOps, 1.0, 1.0, _axis(FloatOps, h[miss], kh[miss], sh[miss], ph[miss], one),
                         _axis(FloatOps, w[miss], kw[miss], sw[miss], pw[miss], one)) + k2[miss]
        use = miss[fp1 <= M[miss]]
        for v in (Bt, D, Th, Tw):
            v[use] = 1.0
        fit[use] = True
    eh = _axis(FloatOps, h, kh, sh, ph, Th, peak=False)
    ew = _axis(FloatOps, w, kw, sw, pw, Tw, peak=False)
    Y = b * d * oh * ow
    F = Y * (c / g) * k2
    Q = Y + np.ceil(b / Bt) * eh["N"] * ew["N"] * Wn + np.ceil(dg / D) * b * c * eh["R"] * ew["R"]
    Q = np.where(fit, Q, np.inf)
    out = {"Q": Q, "A": Q + 3 * F, "F": np.where(fit, F, np.inf)}
    for key, v in zip(("Bt", "D", "Th", "Tw", "C"), (Bt, D, Th, Tw, C)):
        out[key] = np.where(fit, v, 0).astype(np.int64)
    return out
