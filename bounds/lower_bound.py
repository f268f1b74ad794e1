"""The energy lower bound: no execution order of a layer on the machine does better.

Q_LB = max(Q_comp, Q_cap) with
  Q_comp = |X_used| + |W| + |Y|   (every used input and every weight is loaded at least
                                   once, every output stored at least once), and
  Q_cap  = max over S in {M, 2M, 3M} of S * (k(S) - 1), where k(S) is a lower bound on
           the number of phases of S *entries* (loads, and creations of a partial sum
           that open its residence) needed for the real MACs; Q >= entries because
           every such residence has a store of its output (docs/theory.md, 3.3-3.4):
           k >= ceil(F_q / phi(M + S))   (a phase touches at most M + S words), and
           k >= ceil(F_real / (lam (M + S)))  (a linear count; it never binds, 3.5).
phi(T) = sqrt(q) (T/3)^(3/2), capped linearly once a group's weights are all touched;
F_q = b d c_g tau_h tau_w >= F_real weighs each real MAC by sqrt(q / q_rho) of the residue
class rho of its tap (tau = t + t^lo (sqrt(ceil(k/s) / floor(k/s)) - 1), t^lo the real
(output, tap) pairs of the light classes; F_q = F_real when s = 1, s | k or s > k);
lam = 1 / (1/(b nh nw) + 1/(cg kh kw) + 1/(q dg)).  At S = 2M this gives
Q_cap >= 2 F_real / sqrt(q M) - 2M for every layer, and for a fully-connected layer
Smith et al.'s 2F/sqrt(M) - 2M (arXiv:1702.02017); asymptotically Q_cap ~ 2 F_q / sqrt(q M),
against ~2 F s/(k sqrt(M)) + |Y| for the OS tiling.
A_LB = Q_LB + 3F (every execution has A = Q + 3F) and E_LB = eD Q_LB + eB A_LB + eM F.
The proof and every assumption are in docs/theory.md, section 3 "The lower bound".

One source of truth: ``lb_expressions()`` builds the sympy forms; the numpy code below
applies the same operations and is tested equal to them (tests/test_lower_bound.py,
tests/test_lb_matmul.py).  ``used_inputs_1d_np`` / ``real_taps_1d_np`` are closed forms
of complexity.layer.used_inputs_1d / real_taps_1d; ``light_taps_1d_np`` is tested
against its loop in tests/test_lb_matmul.py.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from bounds._lazy import LazyModule
from bounds.named_forms import IDENTITY, Namer
from bounds.result import Cost, InfeasibleError
from complexity.layer import Layer
from complexity.machine import Machine

# imported on first use, so that the numeric bound (and the one-layer CLI) never loads sympy
sp = LazyModule("sympy")
sy = LazyModule("bounds.symbols")

__all__ = ["S_FACTORS", "M_MIN", "lower_bound", "lower_bound_np", "lb_expressions",
           "used_inputs_1d_np", "real_taps_1d_np", "used_inputs_1d_expr", "real_taps_1d_expr",
           "light_taps_1d_np", "light_taps_1d_expr", "class_weight_1d_np", "class_weight_1d_expr",
           "layer_arrays", "layer_forms", "lb_named_forms"]

#: Phase lengths S = floor(f * M) tried by the capacity term (any S >= 1 gives a valid bound;
#: S = 2M is the continuous optimum (constant 2); M and 3M help where the ceilings bite;
#: adding M/2, 4M or 6M changed no value on 2 x 10^5 random layers).
S_FACTORS = ((1, 1), (2, 1), (3, 1))  # (numerator, denominator) of f

#: No execution exists below 3 words: a MAC needs its weight, input and partial sum resident.
M_MIN = 3

#: Relative safety margin of every ceil() against float rounding (it can only lower the bound).
_EPS = 1e-9

_FIELDS = ("b", "c", "d", "h", "w", "kh", "kw", "sh", "sw", "ph", "pw", "groups")


# ----- 1-D closed forms -------------------------------------------------------

def _out_np(n, k, s, p):
    return (n + 2 * p - k) // s + 1


def used_inputs_1d_np(n, k, s, p):
    """Real input positions read by some window along one axis (closed form, vectorized).

    min(n, (m-1)s - p + k) - (m-1) max(0, s-k) with m = floor((n+2p-k)/s) + 1: the union
    of the windows, minus the gaps between them when s > k (docs/theory.md, "Used inputs").
    """
    n, k, s, p = (np.asarray(v, dtype=np.int64) for v in (n, k, s, p))
    m = _out_np(n, k, s, p)
    return np.minimum(n, (m - 1) * s - p + k) - (m - 1) * np.maximum(0, s - k)


def real_taps_1d_np(n, k, s, p):
    """(output, tap) pairs along one axis whose input is real (closed form, vectorized).

    m k minus the taps clipped on the left, sum_o max(0, p - o s), and on the right,
    sum_j max(0, r - j s) with r = (m-1)s - (n + p - k); both are arithmetic series.
    """
    n, k, s, p = (np.asarray(v, dtype=np.int64) for v in (n, k, s, p))
    m = _out_np(n, k, s, p)
    a = np.minimum(m, (p + s - 1) // s)
    r = np.maximum(0, (m - 1) * s - (n + p - k))
    a2 = np.minimum(m, (r + s - 1) // s)
    return m * k - (a * p - s * a * (a - 1) // 2) - (a2 * r - s * a2 * (a2 - 1) // 2)


def light_taps_1d_np(n, k, s, p):
    """(output, tap) pairs along one axis with a real input and a tap of a light residue class.

    Taps r with r mod s >= e = k mod s form the s - e light classes of floor(k/s) taps
    each (the other e classes have ceil(k/s)); docs/theory.md, 3.2 "Residue classes".
    m lo(k) minus the light taps clipped on the left, sum_o lo(p - o s), and on the
    right, sum_j lo(k) - lo(k - z + j s), where lo(L) = floor(L/s)(s-e) + max(0, L mod s - e)
    counts the light taps below L; both sums are arithmetic series.
    """
    n, k, s, p = (np.asarray(v, dtype=np.int64) for v in (n, k, s, p))
    m = _out_np(n, k, s, p)
    K0 = k // s
    e = k - s * K0
    se = s - e
    a = np.minimum(m, (p + s - 1) // s)
    P = p // s
    left = se * (a * P - a * (a - 1) // 2) + a * np.maximum(0, p - s * P - e)
    z = np.maximum(0, (m - 1) * s - (n + p - k))
    a2 = np.minimum(m, (z + s - 1) // s)
    Z = (k - z) // s
    kept = se * (a2 * Z + a2 * (a2 - 1) // 2) + a2 * np.maximum(0, k - z - s * Z - e)
    return (m - a2) * K0 * se - left + kept


def class_weight_1d_np(k, s):
    """sqrt(ceil(k/s) / floor(k/s)) - 1 (0 when s | k or s > k): the extra weight of a light tap."""
    k, s = (np.asarray(v, dtype=np.int64) for v in (k, s))
    q1, K0 = (k + s - 1) // s, k // s
    return np.sqrt(q1 / np.maximum(1, K0).astype(np.float64)) - 1.0


def used_inputs_1d_expr(n, k, s, p, m=None):
    """Sympy form of used_inputs_1d_np (``m``: the number of outputs, computed when omitted)."""
    if m is None:
        m = sp.floor((n + 2 * p - k) / s) + 1
    return sp.Min(n, (m - 1) * s - p + k) - (m - 1) * sp.Max(0, s - k)


def real_taps_1d_expr(n, k, s, p, m=None, nm=IDENTITY, ax="h"):
    """Sympy form of real_taps_1d_np (``m``: the number of outputs, computed when omitted).

    Through the naming hooks ``nm`` it names a^top (windows clipped by the leading
    padding), z (overhang of the last window) and a^bot (windows clipped at the end).
    """
    if m is None:
        m = sp.floor((n + 2 * p - k) / s) + 1
    a = nm.name(f"a^top_{ax}", sp.Min(m, sp.ceiling(p / s)))
    r = nm.name(f"z_{ax}", sp.Max(0, (m - 1) * s - (n + p - k)))
    a2 = nm.name(f"a^bot_{ax}", sp.Min(m, sp.ceiling(r / s)))
    return m * k - (a * p - s * a * (a - 1) / 2) - (a2 * r - s * a2 * (a2 - 1) / 2)


def light_taps_1d_expr(n, k, s, p, m=None, nm=IDENTITY, ax="h"):
    """Sympy form of light_taps_1d_np (names a^top, z, a^bot as real_taps_1d_expr does)."""
    if m is None:
        m = sp.floor((n + 2 * p - k) / s) + 1
    K0 = sp.floor(k / s)
    e = k - s * K0
    a = nm.name(f"a^top_{ax}", sp.Min(m, sp.ceiling(p / s)))
    z = nm.name(f"z_{ax}", sp.Max(0, (m - 1) * s - (n + p - k)))
    a2 = nm.name(f"a^bot_{ax}", sp.Min(m, sp.ceiling(z / s)))
    P, Z = sp.floor(p / s), sp.floor((k - z) / s)
    left = (s - e) * (a * P - a * (a - 1) / 2) + a * sp.Max(0, p - s * P - e)
    kept = (s - e) * (a2 * Z + a2 * (a2 - 1) / 2) + a2 * sp.Max(0, k - z - s * Z - e)
    return (m - a2) * K0 * (s - e) - left + kept


def class_weight_1d_expr(k, s):
    """Sympy form of class_weight_1d_np."""
    return sp.sqrt(sp.ceiling(k / s) / sp.Max(1, sp.floor(k / s))) - 1


# ----- symbolic ------------------------------------------------------------------

def _phi_expr(T, q, Wg):
    """Most real MACs among T touched words (docs/theory.md, 3.2): convex, non-decreasing in T."""
    return sp.sqrt(q) * sp.Piecewise(((T / 3) ** sp.Rational(3, 2), T <= 3 * Wg),
                                     (sp.sqrt(Wg) * (T - Wg) / 2, True))


@lru_cache(maxsize=1)
def _TS():
    """The symbols T and S of phi(T) and of the phase length S."""
    return sp.symbols("T S", positive=True)


def layer_forms(nm=IDENTITY) -> dict:
    """The layer quantities every bound uses, through the naming hooks ``nm`` (bounds/named_forms.py).

    n_h, n_w (outputs), u_h, u_w (used input rows/columns), t_h, t_w (real taps), c_g, d_g,
    X_used, W, Y, F, F_real.  With IDENTITY these are the sympy expressions themselves.
    """
    b, c, d, g = sy.b, sy.c, sy.d, sy.g
    nh, nw = nm.name("n_h", sy.nh), nm.name("n_w", sy.nw)
    uh = nm.name("u_h", used_inputs_1d_expr(sy.h, sy.kh, sy.sh, sy.ph, nh))
    uw = nm.name("u_w", used_inputs_1d_expr(sy.w, sy.kw, sy.sw, sy.pw, nw))
    th = nm.name("t_h", real_taps_1d_expr(sy.h, sy.kh, sy.sh, sy.ph, nh, nm, "h"))
    tw = nm.name("t_w", real_taps_1d_expr(sy.w, sy.kw, sy.sw, sy.pw, nw, nm, "w"))
    cg, dg = nm.name("c_g", c / g), nm.name("d_g", d / g)
    Y = nm.name("Y", b * d * nh * nw)
    return {"n_h": nh, "n_w": nw, "u_h": uh, "u_w": uw, "t_h": th, "t_w": tw, "c_g": cg, "d_g": dg,
            "X_used": nm.name("X_used", b * c * uh * uw), "W": nm.name("W", d * cg * sy.kh * sy.kw), "Y": Y,
            "F": nm.name("F", Y * cg * sy.kh * sy.kw), "F_real": nm.name("F_real", b * d * cg * th * tw)}


def _F_q_form(L: dict, nm=IDENTITY):
    """F_q = b d c_g tau_h tau_w, the real MACs weighted by sqrt(q/q_rho) of their residue class (3.2)."""
    lh = nm.name("t^lo_h", light_taps_1d_expr(sy.h, sy.kh, sy.sh, sy.ph, L["n_h"], nm, "h"))
    lw = nm.name("t^lo_w", light_taps_1d_expr(sy.w, sy.kw, sy.sw, sy.pw, L["n_w"], nm, "w"))
    # not named: F_q is irrational in general, and every named quantity evaluates to a rational number
    return (sy.b * sy.d * L["c_g"] * (L["t_h"] + lh * class_weight_1d_expr(sy.kh, sy.sh))
            * (L["t_w"] + lw * class_weight_1d_expr(sy.kw, sy.sw)))


def _lb_forms(nm=IDENTITY) -> dict:
    """Every part of the bound through the naming hooks ``nm``: the one place the formulas are written."""
    M = sy.M
    _T, _S = _TS()
    L = layer_forms(nm)
    b, cg, dg, F_real = sy.b, L["c_g"], L["d_g"], L["F_real"]
    q = nm.name("q", sp.ceiling(sy.kh / sy.sh) * sp.ceiling(sy.kw / sy.sw))
    Wg = nm.name("W_g", dg * cg * sy.kh * sy.kw)
    lam = nm.name("lambda", 1 / (1 / (b * L["n_h"] * L["n_w"]) + 1 / (cg * sy.kh * sy.kw) + 1 / (q * dg)),
                  positive=True)
    phi = nm.func("phi", (_T,), lambda T: _phi_expr(T, q, Wg), nonnegative=True)

    F_q = _F_q_form(L, nm)

    def k_body(S):  # phases of S entries needed (docs/theory.md, 3.3-3.4)
        k_cubic = sp.ceiling(F_q / phi(M + S))
        k_linear = sp.ceiling(F_real / (lam * (M + S)))  # never binds (3.5); kept as a check
        return sp.Max(k_cubic, k_linear, 1, evaluate=False)

    k = nm.func("k", (_S,), k_body, integer=True, positive=True)
    Q_comp = nm.name("Q_comp", L["X_used"] + L["W"] + L["Y"])
    Q_cap = nm.name("Q_cap", sp.Max(*[S * (k(S) - 1) for S in (_S_of(f, M) for f in S_FACTORS)], evaluate=False))
    Q = sp.Max(Q_comp, Q_cap, evaluate=False)
    A = Q + 3 * L["F"]
    return {"Q": Q, "A": A, "F": L["F"], "E": sy.energy(Q, A, L["F"]), "Q_comp": Q_comp, "Q_cap": Q_cap,
            "X_used": L["X_used"], "F_real": F_real, "F_q": F_q, "q": q, "lam": lam, "phi": phi, "k": k}


@lru_cache(maxsize=1)
def lb_named_forms() -> dict:
    """Readable forms: "defs" (ordered {symbol or f(args): definition}) and "short" {"Q", "A", "Q_comp", "Q_cap"}.

    The short forms are built by the same code as ``lb_expressions`` with every named
    quantity kept as a symbol; ``bounds.named_forms.expand(short, defs)`` gives the full form.
    """
    nm = Namer()
    f = _lb_forms(nm)
    return {"defs": dict(nm.defs), "short": {k: f[k] for k in ("Q", "A", "Q_comp", "Q_cap")}}


@lru_cache(maxsize=1)
def lb_expressions() -> dict:
    """Sympy closed forms (symbols of bounds/symbols.py) of the lower bound.

    Keys: "Q", "A", "F", "E" (energy at the reference bitwidth), and the parts
    "Q_comp", "Q_cap", "X_used", "F_real", "q", "lam", "phi" (a Lambda of T) and
    "Q_cap_S" (a Lambda of the phase length S); "defs" and "short" are the readable
    forms of ``lb_named_forms``.  See docs/theory.md, "The lower bound".
    """
    f = _lb_forms()
    out = {k: f[k] for k in ("Q", "A", "F", "E", "Q_comp", "Q_cap", "X_used", "F_real", "F_q", "q", "lam")}
    _T, _S = _TS()
    out["phi"] = sp.Lambda(_T, f["phi"](_T))
    out["Q_cap_S"] = sp.Lambda(_S, _S * (f["k"](_S) - 1))
    out.update(lb_named_forms())
    return out


def _S_of(f, M):
    """Phase length f*M as an integer >= 1 (works for ints, arrays and sympy symbols)."""
    num, den = f
    if not isinstance(M, (int, np.integer, np.ndarray)) and isinstance(M, sp.Basic):
        return sp.Max(1, sp.floor(num * M / den))
    return np.maximum(1, (num * np.asarray(M, dtype=np.int64)) // den)


# ----- numeric -----------------------------------------------------------------

def layer_arrays(P) -> dict:
    """int64 arrays of the layer fields from a mapping (missing optional fields get Layer's defaults)."""
    defaults = {"h": 1, "w": 1, "kh": 1, "kw": 1, "b": 1, "sh": 1, "sw": 1, "ph": 0, "pw": 0, "groups": 1}
    out = {}
    for f in _FIELDS:
        if f in P:
            out[f] = np.asarray(P[f], dtype=np.int64)
        elif f in defaults:
            out[f] = np.int64(defaults[f])
        else:
            raise KeyError(f"layer arrays need the field {f!r}")
    return out


def _safe_ceil(x):
    """ceil(x), never rounding a float just above an exact integer up (so the bound stays valid)."""
    return np.ceil(x - _EPS * np.abs(x))


def _tau_np(n, k, s, p, t):
    """t + light taps x class weight along one axis (float); the light taps only where the weight is not 0."""
    wgt = class_weight_1d_np(k, s)
    tau = np.asarray(t, dtype=np.float64)
    sel = wgt > 0
    if not sel.any():
        return tau
    n, k, s, p, wgt, tau = np.broadcast_arrays(n, k, s, p, wgt, tau)
    if tau.ndim == 0:  # one layer
        return tau + light_taps_1d_np(n, k, s, p) * wgt
    tau = tau.copy()
    idx = np.nonzero(wgt > 0)
    tau[idx] += light_taps_1d_np(n[idx], k[idx], s[idx], p[idx]) * wgt[idx]
    return tau


def _lb_parts(P, M) -> dict:
    """All terms of the bound for broadcastable arrays (the numpy twin of lb_expressions)."""
    L = layer_arrays(P)
    M = np.asarray(M, dtype=np.int64)
    b, c, d, g = L["b"], L["c"], L["d"], L["groups"]
    kh, kw, sh, sw = L["kh"], L["kw"], L["sh"], L["sw"]
    nh = _out_np(L["h"], kh, sh, L["ph"])
    nw = _out_np(L["w"], kw, sw, L["pw"])
    cg, dg = c // g, d // g
    X_used = b * c * used_inputs_1d_np(L["h"], kh, sh, L["ph"]) * used_inputs_1d_np(L["w"], kw, sw, L["pw"])
    W = d * cg * kh * kw
    Y = b * d * nh * nw
    F = Y * cg * kh * kw
    th, tw = real_taps_1d_np(L["h"], kh, sh, L["ph"]), real_taps_1d_np(L["w"], kw, sw, L["pw"])
    F_real = b * d * cg * th * tw
    q = ((kh + sh - 1) // sh) * ((kw + sw - 1) // sw)
    Wg = (dg * cg * kh * kw).astype(np.float64)
    sq = np.sqrt(q.astype(np.float64))
    lam = 1.0 / (1.0 / (b * nh * nw) + 1.0 / (cg * kh * kw) + 1.0 / (q * dg))
    Fr = F_real.astype(np.float64)
    Mf = M.astype(np.float64)
    F_q = (b * d * cg).astype(np.float64) * _tau_np(L["h"], kh, sh, L["ph"], th) * _tau_np(L["w"], kw, sw, L["pw"], tw)

    inv_sqrt27 = 1.0 / np.sqrt(27.0)
    lin_num = Fr / lam  # the linear count: k >= F_real / (lam (M + S)); never binds (3.5)
    Wg3, Wg_sqrt = 3.0 * Wg, np.sqrt(Wg)

    def phi(T):  # sqrt(q) (T/3)^(3/2) = sqrt(q) T sqrt(T) / sqrt(27); linear past 3 Wg
        return sq * np.where(T <= Wg3, T * np.sqrt(T) * inv_sqrt27, Wg_sqrt * (T - Wg) * 0.5)

    Q_cap = np.zeros(np.broadcast(Fr, M).shape)
    S_best = np.zeros(Q_cap.shape)
    for f in S_FACTORS:
        S = _S_of(f, M).astype(np.float64)
        k = np.maximum(_safe_ceil(F_q / phi(Mf + S)), _safe_ceil(lin_num / (Mf + S)))
        cap = S * (np.maximum(k, 1.0) - 1.0)
        S_best = np.where(cap > Q_cap, S, S_best)
        Q_cap = np.maximum(Q_cap, cap)
    Q_comp = X_used + W + Y
    Q = np.maximum(Q_comp.astype(np.float64), Q_cap)
    return {"Q": Q, "A": Q + 3.0 * F, "F": F, "Q_comp": Q_comp, "Q_cap": Q_cap, "S": S_best,
            "X_used": X_used, "F_real": F_real, "F_q": F_q, "W": W, "Y": Y, "q": q}


def lower_bound_np(P, M) -> dict:
    """Vectorized lower bound: {"Q", "A", "F"} float64 arrays for arrays of layers and M.

    ``P`` maps Layer field names (b c d h w kh kw sh sw ph pw groups) to int64 arrays
    (missing optional fields take Layer's defaults); ``M`` broadcasts against them.
    Q and A are +inf where M < 3 (no execution exists; the bound is vacuous).  Inputs
    are assumed to be valid layers (see complexity.layer.Layer for the rules).
    Evaluated in blocks of _LB_CHUNK rows: the temporaries (~233 bytes a row) stay in
    cache and memory stays bounded; the values are those of one call on all rows.
    """
    L = layer_arrays(P)
    M = np.asarray(M, dtype=np.int64)
    shape = np.broadcast_shapes(M.shape, *(v.shape for v in L.values()))
    n = int(np.prod(shape))
    if n <= _LB_CHUNK:
        return _lower_bound_block(L, M)
    flat = {f: np.broadcast_to(v, shape).ravel() for f, v in L.items()}
    Mf = np.broadcast_to(M, shape).ravel()
    out = {"Q": np.empty(n), "A": np.empty(n), "F": np.empty(n)}
    for i in range(0, n, _LB_CHUNK):
        r = _lower_bound_block({f: v[i:i + _LB_CHUNK] for f, v in flat.items()}, Mf[i:i + _LB_CHUNK])
        for k in out:
            out[k][i:i + _LB_CHUNK] = r[k]
    out = {k: v.reshape(shape) for k, v in out.items()}
    Lshape = np.broadcast_shapes(*(v.shape for v in L.values()))
    if Lshape != shape:  # F depends on the layer only: keep its own shape, as one call would
        out["F"] = _lower_bound_block(L, M_MIN)["F"]
    return out


#: Rows per block of lower_bound_np (16K rows measured 1.8x faster than one block of 10^6).
_LB_CHUNK = 1 << 14


def _lower_bound_block(P, M) -> dict:
    """lower_bound_np on one block of rows."""
    parts = _lb_parts(P, M)
    bad = np.asarray(M) < M_MIN
    Q = np.where(bad, np.inf, parts["Q"])
    return {"Q": Q, "A": np.where(bad, np.inf, parts["A"]), "F": parts["F"].astype(np.float64)}


def lower_bound(layer: Layer, machine: Machine) -> Cost:
    """The energy lower bound of ``layer`` on ``machine`` over every execution order.

    Returns a Cost with tiles=None and parts Q_comp, Q_cap, S (the segment length
    that gave Q_cap), X_used, W, Y, F_real, q.  Raises InfeasibleError when M < 3
    (no MAC fits).  Proof: docs/theory.md, "The lower bound".
    """
    if machine.M < M_MIN:
        err = InfeasibleError("lower-bound", machine.M, M_MIN)
        err.args = (f"invalid machine: M: Buffer of {machine.M} words cannot hold the weight, input and "
                    f"partial sum of one MAC; every execution needs M >= {M_MIN}",)
        raise err
    parts = _lb_parts({f: getattr(layer, f) for f in _FIELDS}, machine.M)
    Q = max(int(parts["Q_comp"]), int(parts["Q_cap"]))  # exact integers, not the float max
    F = int(parts["F"])
    A = Q + 3 * F
    named = {k: int(parts[k]) for k in ("Q_comp", "Q_cap", "S", "X_used", "W", "Y", "F_real", "q")}
    return Cost(Q=Q, A=A, F=F, E=float(machine.energy(Q, A, F)), tiles=None, parts=named)
