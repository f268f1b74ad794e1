"""Row-stationary (RS) mapping of a layer onto an Eyeriss-like accelerator: exact access
counts of a given mapping and the search for the mapping of least energy.

The dataflow, every counting rule and the search are derived in docs/estimation.md.
In short: a logical PE set of (filter rows) x (e output rows) does 1-D row convolutions;
each PE keeps p filters x q channels of one filter row in its RF; pm x pc copies of the
set run on different filters / channels; the global buffer (GLB) holds a block of
nb images x km passes of filters x kc passes of channels x ke strips of output rows;
DRAM-level loops over those blocks run in one of 24 orders.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np

from bounds.ops import ceil_classes
from complexity.layer import Layer, used_inputs_1d
from estimation.eyeriss_config import DATA_TYPES, LEVELS, EyerissConfig, scaled_costs
from estimation.sparsity import mac_fraction, rlc_factor

__all__ = ["MappingError", "RSMapping", "AccessCounts", "access_counts", "search_mapping", "ORDERS", "fold_rows"]

#: DRAM-level loop orders over GLB blocks, outermost first (n: images, m: filters, c: channels, e: output rows).
ORDERS = tuple("".join(p) for p in itertools.permutations("nmce"))
_REL = {"weight": "mc", "input": "nce", "psum": "nme"}

#: Most pass shapes whose GLB blocks and loop orders the search evaluates (docs/estimation.md, "Search").
SEARCH_BUDGET = 3000
#: Pass shapes per strip width evaluated before the branch and bound starts.
SEEDS_PER_E = 8
#: Pass shapes evaluated together in one vectorized step of the branch and bound.
BATCH = 64


@dataclass(frozen=True)
class RSMapping:
    """One row-stationary mapping (per channel group; all groups are mapped alike).

    ``e`` output rows per PE set; ``p`` filters and ``q`` channels per PE; ``pm`` / ``pc``
    copies of the PE set on different filters / channels; a GLB block of ``nb`` images,
    ``km`` x (pm p) filters, ``kc`` x (pc q) channels and ``ke`` x e output rows;
    ``order`` the DRAM-level loop order (outermost first).
    """

    e: int
    p: int
    q: int
    pm: int = 1
    pc: int = 1
    nb: int = 1
    km: int = 1
    kc: int = 1
    ke: int = 1
    order: str = "nmce"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class AccessCounts:
    """Accesses per level and data type (``counts[level][data]``, words; DRAM in coded words) and MACs."""

    counts: dict
    macs: float

    def energy(self, costs: dict) -> tuple[float, dict, dict]:
        """(total, by_level, by_data) for per-access ``costs`` (already bit-scaled)."""
        by_level = {lv: 0.0 for lv in LEVELS}
        by_data = {dt: 0.0 for dt in DATA_TYPES}
        for lv, row in self.counts.items():
            for dt, n in row.items():
                e = float(n) * costs[lv]
                by_level[lv] += e
                by_data[dt] += e
        by_level["mac"] = by_data["mac"] = float(self.macs) * costs["mac"]
        return sum(by_level.values()), by_level, by_data


class MappingError(ValueError):
    """A row-stationary mapping that does not fit the accelerator, or a layer with no such mapping."""


def fold_rows(R: int, rows: int) -> tuple[int, int]:
    """(folds, rows per fold): filter rows are split into the fewest chunks that fit the array height."""
    fr = -(-R // rows)
    return fr, -(-R // fr)


# ---------------------------------------------------------------------------
# geometry of one channel group
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _Geom:
    N: int
    M: int
    C: int
    E: int
    F: int
    R: int
    S: int
    H: int
    Wu: int
    sh: int
    ph: int
    G: int


def _geom(layer: Layer) -> _Geom:
    return _Geom(N=layer.b, M=layer.dg, C=layer.cg, E=layer.nh, F=layer.nw, R=layer.kh, S=layer.kw,
                 H=layer.h, Wu=used_inputs_1d(layer.w, layer.kw, layer.sw, layer.pw),
                 sh=layer.sh, ph=layer.ph, G=layer.groups)


def _rows_real(g: _Geom, j0: int, ne: int, i0: int, nr: int) -> int:
    """Distinct real input rows read by output rows [j0, j0+ne) with filter rows [i0, i0+nr)."""
    if g.sh <= nr:
        lo = max(0, j0 * g.sh + i0 - g.ph)
        hi = min(g.H - 1, (j0 + ne - 1) * g.sh + i0 + nr - 1 - g.ph)
        return max(0, hi - lo + 1)
    return _pe_real(g, j0, ne, i0, nr)


def _pe_real(g: _Geom, j0: int, ne: int, i0: int, nr: int) -> int:
    """PEs (filter row i, output row j) of a set whose input row j*sh + i - ph is real (not padding).

    Output row j sees nr real rows unless it touches the padding; only those edge rows are
    summed one by one (O(padding / stride), never a loop over ne).
    """
    def real(j: int) -> int:
        return max(0, min(g.H - 1, j * g.sh + i0 + nr - 1 - g.ph) - max(0, j * g.sh + i0 - g.ph) + 1)

    j_end = j0 + ne
    lo = max(j0, -(-(g.ph - i0) // g.sh))            # first j with no padding row above
    hi = min(j_end - 1, (g.H - i0 - nr + g.ph) // g.sh)  # last j with no padding row below
    if hi < lo:
        return sum(real(j) for j in range(j0, j_end))
    return nr * (hi - lo + 1) + sum(real(j) for j in range(j0, lo)) + sum(real(j) for j in range(hi + 1, j_end))


def _strip_values(g: _Geom, e: int, i0: int, nr: int, fn) -> tuple[int, int]:
    """(sum, max) of ``fn(g, j0, ne, i0, nr)`` over the strips j0 = 0, e, 2e, ... of the E output rows.

    A full strip whose input rows are all real (no padding row above, none past H below)
    has the same value as every other such strip, so only the strips near the two edges
    are evaluated one by one: O(rows clipped by padding / e) work, never a loop over E.
    """
    n_strips = -(-g.E // e)
    full = g.E // e
    # interior strip t: t*e*sh + i0 - ph >= 0 and (t*e + e - 1)*sh + i0 + nr - 1 - ph <= H - 1
    lo_row = g.ph - i0                        # t*e*sh >= lo_row
    hi_row = g.H - i0 - nr + g.ph - (e - 1) * g.sh  # t*e*sh <= hi_row
    step = e * g.sh
    t_lo = max(0, -(-lo_row // step))
    t_hi = min(full - 1, hi_row // step)
    if t_hi < t_lo:
        vals = [fn(g, t * e, min(e, g.E - t * e), i0, nr) for t in range(n_strips)]
        return sum(vals), max(vals, default=0)
    inner = fn(g, t_lo * e, e, i0, nr)
    edge = [fn(g, t * e, min(e, g.E - t * e), i0, nr)
            for t in list(range(t_lo)) + list(range(t_hi + 1, n_strips))]
    return inner * (t_hi - t_lo + 1) + sum(edge), max([inner] + edge)


@lru_cache(maxsize=4096)
def _pass_sums(g: _Geom, e: int, rows: int) -> tuple[int, int]:
    """Sums over strips of e output rows and filter-row folds of (distinct real input rows, PEs with a real row)."""
    fr, rr = fold_rows(g.R, rows)
    sr = sp = 0
    for f in range(fr):
        i0 = f * rr
        nr = min(rr, g.R - i0)
        if nr <= 0:
            continue
        sr += _strip_values(g, e, i0, nr, _rows_real)[0]
        sp += _strip_values(g, e, i0, nr, _pe_real)[0]
    return sr, sp


@lru_cache(maxsize=4096)
def _glb_rows(g: _Geom, eb: int) -> tuple[int, int]:
    """(sum, max) over GLB strips of eb output rows of the distinct real input rows they need."""
    return _strip_values(g, eb, 0, g.R, _rows_real)


def _outer_factor(order: str, rel: str, T: dict):
    """Times a tensor is re-visited at the DRAM level: the product of the trip counts of the loops
    irrelevant to it that sit outside its innermost relevant loop with more than one trip."""
    seen = False
    f = 1
    for L in reversed(order):
        if L in rel:
            seen = seen | (T[L] > 1)
        else:
            f = f * np.where(seen, T[L], 1)
    return f


def _cdiv(a, b):
    return -(-a // b)


# ---------------------------------------------------------------------------
# exact counts (numpy-broadcasting: the search calls this on arrays of mappings)
# ---------------------------------------------------------------------------
def _counts(g: _Geom, cfg: EyerissConfig, e, p, q, pm, pc, nb, km, kc, ke, order: str,
            pass_rows, pass_pes, glb_rows_sum, glb_rows_max, g_w: float, g_a: float, mf: float):
    """Per-group access counts and GLB occupancy of mappings given as (broadcastable) arrays."""
    fr, rr = fold_rows(g.R, cfg.rows)
    mt, ct = pm * p, pc * q
    nM1, nC1 = _cdiv(g.M, mt), _cdiv(g.C, ct)
    A_m = (g.M // mt) * pm + _cdiv(g.M % mt, p)          # active (filter block, copy) pairs
    A_c = (g.C // ct) * pc + _cdiv(g.C % ct, q)          # active (channel block, copy) pairs
    mb, cb, eb = np.minimum(g.M, km * mt), np.minimum(g.C, kc * ct), np.minimum(g.E, ke * e)
    nbb = np.minimum(g.N, nb)
    T = {"n": _cdiv(g.N, nbb), "m": _cdiv(g.M, mb), "c": _cdiv(g.C, cb), "e": _cdiv(g.E, eb)}
    # word counts in float64: exact below 2**53, and no int64 overflow for huge layers (c = 10^15)
    Wg = float(g.M * g.C * g.R * g.S)
    Yg = float(g.N * g.M * g.E * g.F)
    Fg = Yg * g.C * g.R * g.S
    NC = float(g.N * g.C)
    Xb = NC * glb_rows_sum * g.Wu                        # input words of one sweep over all GLB strips
    fW = _outer_factor(order, _REL["weight"], T)
    fX = _outer_factor(order, _REL["input"], T)
    v = _outer_factor(order, _REL["psum"], T)            # visits of each output block (c outside)
    contrib = nC1 * fr                                   # passes that add into each output
    w_rd = T["n"] * T["e"] * Wg                          # weights GLB -> RF, once per GLB block
    counts = {
        "dram": {"weight": fW * Wg * g_w, "input": fX * Xb * g_a,
                 "psum": Yg * g_a + 2 * (v - 1) * Yg},
        "buffer": {"weight": fW * Wg + w_rd,
                   "input": fX * Xb + nM1 * NC * pass_rows * g.Wu,
                   "psum": Yg * contrib + Yg * (contrib - 1) + (v - 1) * Yg + v * Yg},
        "array": {"weight": e * w_rd,
                  "input": A_m * NC * pass_pes * g.Wu,
                  "psum": Yg * A_c * g.R + Yg * (contrib - 1)},
        "rf": {"weight": Fg * mf, "input": Fg * mf, "psum": 2 * Fg * mf},
    }
    occupancy = nbb * cb * glb_rows_max * g.Wu + mb * cb * g.R * g.S + nbb * mb * eb * g.F
    return counts, Fg * mf, occupancy


def _check_mapping(g: _Geom, cfg: EyerissConfig, m: RSMapping) -> None:
    fr, rr = fold_rows(g.R, cfg.rows)
    for f in ("e", "p", "q", "pm", "pc", "nb", "km", "kc", "ke"):
        if getattr(m, f) < 1:
            raise MappingError(f"mapping: {f} must be >= 1, got {getattr(m, f)}")
    if m.e > min(g.E, cfg.cols):
        raise MappingError(f"mapping: e={m.e} output rows exceed min(E={g.E}, cols={cfg.cols})")
    if m.p * m.q * g.S > cfg.rf_weight:
        raise MappingError(f"mapping: p*q*S={m.p * m.q * g.S} weights exceed rf_weight={cfg.rf_weight}")
    if m.q * g.S > cfg.rf_input:
        raise MappingError(f"mapping: q*S={m.q * g.S} inputs exceed rf_input={cfg.rf_input}")
    if m.p > cfg.rf_psum:
        raise MappingError(f"mapping: p={m.p} psums exceed rf_psum={cfg.rf_psum}")
    if m.pm * m.pc > (cfg.rows // rr) * (cfg.cols // m.e):
        raise MappingError(f"mapping: pm*pc={m.pm * m.pc} PE-set copies exceed the array "
                              f"({cfg.rows // rr} x {cfg.cols // m.e} sets of {rr} x {m.e})")
    if sorted(m.order) != sorted("nmce"):
        raise MappingError(f"mapping: order {m.order!r} must be a permutation of 'nmce'")


def access_counts(layer: Layer, config: EyerissConfig, mapping: RSMapping,
                  density_w: float = 1.0, density_a: float = 1.0, bits: int = 16) -> AccessCounts:
    """Exact access counts of ``layer`` under ``mapping`` (all groups), with sparsity applied.

    Raises MappingError when the mapping does not fit the RFs, the array or the GLB.
    """
    g = _geom(layer)
    _check_mapping(g, config, mapping)
    m = mapping
    ps = _pass_sums(g, m.e, config.rows)
    gs = _glb_rows(g, min(g.E, m.ke * m.e))
    counts, macs, occ = _counts(g, config, m.e, m.p, m.q, m.pm, m.pc, m.nb, m.km, m.kc, m.ke, m.order,
                                ps[0], ps[1], gs[0], gs[1], rlc_factor(density_w, bits),
                                rlc_factor(density_a, bits), mac_fraction(density_w, density_a))
    if occ > config.glb_words:
        raise MappingError(f"mapping: GLB block needs {int(occ)} words > glb_words={config.glb_words}")
    counts = {lv: {dt: float(n) * g.G for dt, n in row.items()} for lv, row in counts.items()}
    return AccessCounts(counts=counts, macs=float(macs) * g.G)


@lru_cache(maxsize=4096)
def _trip_values(n: int, limit: int | None = None) -> np.ndarray:
    """Block multiples k in 1..n (at most ``limit``) giving distinct trip counts ceil(n/k), the smallest k for each.

    About 2 sqrt(n) values, in O(sqrt(n)) (never a loop over 1..n): see bounds.ops.ceil_classes.
    Cached, hence read-only.
    """
    out = ceil_classes(n, limit)
    out.flags.writeable = False
    return out


def search_mapping(layer: Layer, config: EyerissConfig = EyerissConfig(), density_w: float = 1.0,
                   density_a: float = 1.0, bits: int = 16) -> tuple[RSMapping, bool]:
    """(the RS mapping of least energy, whether the search proved it optimal).

    Branch and bound over pass shapes (docs/estimation.md, "Search"); ``False`` only when
    SEARCH_BUDGET pass shapes were evaluated before the bound closed the search.
    """
    return _search(_geom(layer), config, float(density_w), float(density_a), int(bits))


@lru_cache(maxsize=2048)
def _search(g: _Geom, cfg: EyerissConfig, density_w: float, density_a: float, bits: int) -> RSMapping:
    costs = scaled_costs(cfg.costs, bits)
    g_w, g_a, mf = rlc_factor(density_w, bits), rlc_factor(density_a, bits), mac_fraction(density_w, density_a)
    fr, rr = fold_rows(g.R, cfg.rows)
    if g.S > cfg.rf_input:
        raise MappingError(f"kernel width {g.S} exceeds the input RF ({cfg.rf_input} words): "
                              "no row-stationary mapping")
    if g.S > cfg.rf_weight:
        raise MappingError(f"kernel width {g.S} exceeds the weight RF ({cfg.rf_weight} words)")
    Wg, Yg = g.M * g.C * g.R * g.S, g.N * g.M * g.E * g.F
    x_min = g.N * g.C * _glb_rows(g, g.E)[0] * g.Wu      # one GLB strip: no halo re-reads
    classes, seeds = [], []                              # (bound, e, p, q, pm, pc)
    for e in range(1, min(g.E, cfg.cols) + 1):
        sets = (cfg.rows // rr) * (cfg.cols // e)
        ps = _pass_sums(g, e, cfg.rows)
        c = _pass_candidates(g, cfg, sets)
        if c is None:
            continue
        p, q, pm, pc = c
        # stage 1: the pass-level energy, which is all that depends on (p, q, pm, pc) beyond mt and ct
        one = np.ones_like(p)
        cnt, _, _ = _counts(g, cfg, e, p, q, pm, pc, one, one, one, one, ORDERS[0], ps[0], ps[1], 0, 0, 1.0, 1.0, 1.0)
        stage1 = (costs["buffer"] * (cnt["buffer"]["input"] + cnt["buffer"]["psum"])
                  + costs["array"] * (cnt["array"]["input"] + cnt["array"]["psum"]))
        # best pass of each (mt, ct) class
        mt, ct = pm * p, pc * q
        idx = np.lexsort((stage1, ct, mt))
        first = np.ones(len(idx), dtype=bool)
        first[1:] = (mt[idx][1:] != mt[idx][:-1]) | (ct[idx][1:] != ct[idx][:-1])
        sel = idx[first]
        # lower bound of everything else (fW, fX, v, T_n, T_e >= 1; strips only add halo rows)
        rest = (costs["dram"] * (Wg * g_w + x_min * g_a + Yg * g_a) + costs["buffer"] * (2 * Wg + x_min)
                + costs["array"] * e * Wg)
        cls = [(float(stage1[i]) + rest, e, int(p[i]), int(q[i]), int(pm[i]), int(pc[i])) for i in sel]
        classes += cls
        seeds += sorted(cls, key=lambda t: t[0])[:SEEDS_PER_E]
    classes.sort()
    best = (math.inf, None)
    for r in _search_glb_batch(g, cfg, [t[1:] for t in seeds], costs, g_w, g_a, mf) if seeds else ():
        if r[0] < best[0]:  # the cheapest pass shapes of every strip width first: a good incumbent
            best = r
    seeded = set(seeds)
    todo = [t for t in classes if t not in seeded]
    exact, n_eval = True, 0
    while todo and todo[0][0] < best[0]:
        if n_eval >= SEARCH_BUDGET:
            exact = False
            break
        chunk, todo = todo[:BATCH], todo[BATCH:]
        chunk = [t for t in chunk if t[0] < best[0]]
        n_eval += len(chunk)
        for r in _search_glb_batch(g, cfg, [t[1:] for t in chunk], costs, g_w, g_a, mf):
            if r[0] < best[0]:
                best = r
    if best[1] is None:
        # the cheapest classes did not fit the GLB: the finest pass shape fits whenever anything does
        for bound, e, p, q, pm, pc in sorted(classes, key=lambda t: (t[2] * t[4] * t[3] * t[5], t[0]))[:1]:
            best = _search_glb(g, cfg, e, p, q, pm, pc, costs, g_w, g_a, mf)
            exact = False
    if best[1] is None:
        raise MappingError(f"no row-stationary mapping fits the accelerator ({cfg.rows}x{cfg.cols} PEs, GLB of "
                           f"{cfg.glb_words:,} words) for output rows of {g.F:,} words")
    return best[1], exact


def _pass_candidates(g: _Geom, cfg: EyerissConfig, sets: int):
    """All (p, q, pm, pc) that fit the RFs and the array without idle copies, as four arrays."""
    pq = [(p, q) for p in range(1, min(cfg.rf_psum, g.M, cfg.rf_weight // g.S) + 1)
          for q in range(1, min(g.C, cfg.rf_input // g.S, cfg.rf_weight // (p * g.S)) + 1)]
    cp = [(a, b) for a in range(1, sets + 1) for b in range(1, sets // a + 1)]
    if not pq:
        return None
    pq, cp = np.array(pq, dtype=np.int64), np.array(cp, dtype=np.int64)
    p, pm = np.meshgrid(pq[:, 0], cp[:, 0], indexing="ij")
    q, pc = np.meshgrid(pq[:, 1], cp[:, 1], indexing="ij")
    ok = (pm <= _cdiv(g.M, p)) & (pc <= _cdiv(g.C, q))
    return p[ok], q[ok], pm[ok], pc[ok]


def _block_multiples(g: _Geom, glb: int, e: int, mt: int, ct: int) -> tuple:
    """Candidate (nb, km, kc, ke) block multiples of one pass shape: one per trip count, GLB-feasible only.

    The GLB occupancy nbb cb rmax Wu + mb cb R S + nbb mb eb F grows with each block
    dimension, and every other dimension is at least its value at multiple 1 (rmax >= 1:
    every output row reads a real input row, as p < R).  So a multiple whose dimension
    alone overflows the GLB, the others at their least, can never fit; dropping it before
    the grid is built changes no result and keeps the grid small when a dimension is huge
    (c = 10^12 has 2 10^6 trip counts, a handful of which fit).
    """
    RS, Wu, F = g.R * g.S, g.Wu, g.F
    n1, m1, c1, e1 = 1, min(g.M, mt), min(g.C, ct), min(g.E, e)
    cap_n = (glb - m1 * c1 * RS) // max(1, c1 * Wu + m1 * e1 * F)
    cap_m = (glb - n1 * c1 * Wu) // max(1, c1 * RS + n1 * e1 * F)
    cap_c = (glb - n1 * m1 * e1 * F) // max(1, n1 * Wu + m1 * RS)
    cap_e = (glb - n1 * c1 * Wu - m1 * c1 * RS) // max(1, n1 * m1 * F)
    return (_fit_multiples(g.N, 1, g.N, cap_n),
            _fit_multiples(_cdiv(g.M, mt), mt, g.M, cap_m),
            _fit_multiples(_cdiv(g.C, ct), ct, g.C, cap_c),
            _fit_multiples(_cdiv(g.E, e), e, g.E, cap_e))


#: Grids up to this many rows are cached (a huge layer has grids of 10^5-10^6 rows, each
#: tens of MB, and thousands of pass shapes: caching those filled gigabytes); batches are
#: evaluated in pieces of at most _BATCH_ROWS rows, so memory stays bounded at any size.
_CACHE_ROWS = 1 << 14
_BATCH_ROWS = 1 << 17


def _flat_grid(mult) -> tuple:
    grid = [v.ravel() for v in np.meshgrid(*mult, indexing="ij")]
    for v in grid:
        v.flags.writeable = False
    return tuple(grid)


@lru_cache(maxsize=4096)
def _block_grid_cached(g: _Geom, glb: int, e: int, mt: int, ct: int) -> tuple:
    return _flat_grid(_block_multiples(g, glb, e, mt, ct))


def _block_grid(g: _Geom, glb: int, e: int, mt: int, ct: int) -> tuple:
    """Every combination of ``_block_multiples`` as four flat arrays (nb varies slowest), read-only;
    cached when small (``_CACHE_ROWS``)."""
    mult = _block_multiples(g, glb, e, mt, ct)
    if math.prod(len(v) for v in mult) <= _CACHE_ROWS:
        return _block_grid_cached(g, glb, e, mt, ct)
    return _flat_grid(mult)


def _fit_multiples(n: int, unit: int, total: int, cap: int) -> np.ndarray:
    """Trip-count representatives k of n with min(total, k unit) <= cap (and at least the smallest, k = 1)."""
    if total <= cap:
        return _trip_values(int(n))
    return _trip_values(int(n), int(max(1, cap // unit)))


def _search_glb(g, cfg, e, p, q, pm, pc, costs, g_w, g_a, mf):
    """Best GLB block and DRAM loop order for one pass shape: (energy, RSMapping)."""
    return _search_glb_batch(g, cfg, [(e, p, q, pm, pc)], costs, g_w, g_a, mf)[0]


def _search_glb_batch(g, cfg, shapes, costs, g_w, g_a, mf):
    """``_search_glb`` for many pass shapes (e, p, q, pm, pc), vectorized in pieces of at most
    ``_BATCH_ROWS`` grid rows (a shape's grid may be cut into several): exact, bounded memory."""
    best = [(math.inf, None)] * len(shapes)
    chunk, rows = [], 0

    def flush():
        for (j, _, _), r in zip(chunk, _search_glb_pieces(g, cfg, chunk, costs, g_w, g_a, mf)):
            if r[0] < best[j][0]:          # strict: on ties the earlier grid row wins, as in one piece
                best[j] = r

    for j, (e, p, q, pm, pc) in enumerate(shapes):
        grid = _block_grid(g, cfg.glb_words, e, p * pm, q * pc)
        for lo in range(0, grid[0].size, _BATCH_ROWS):
            piece = tuple(v[lo:lo + _BATCH_ROWS] for v in grid)
            if chunk and rows + piece[0].size > _BATCH_ROWS:
                flush()
                chunk, rows = [], 0
            chunk.append((j, (e, p, q, pm, pc), piece))
            rows += piece[0].size
    if chunk:
        flush()
    return best


def _search_glb_pieces(g, cfg, pieces, costs, g_w, g_a, mf):
    """The best (energy, RSMapping) of each piece (shape index, pass shape, block-grid rows) in one evaluation."""
    shapes = [sh for _, sh, _ in pieces]
    cols = {k: [] for k in ("e", "p", "q", "pm", "pc", "nb", "km", "kc", "ke", "seg")}
    for j, ((e, p, q, pm, pc), grid) in enumerate(zip(shapes, (gr for _, _, gr in pieces))):
        n = grid[0].size
        for k, v in zip(("nb", "km", "kc", "ke"), grid):
            cols[k].append(v)
        for k, v in zip(("e", "p", "q", "pm", "pc", "seg"), (e, p, q, pm, pc, j)):
            cols[k].append(np.full(n, v, dtype=np.int64))
    a = {k: np.concatenate(v) for k, v in cols.items()}
    ebs = np.minimum(g.E, a["ke"] * a["e"])
    ub, inv = np.unique(ebs, return_inverse=True)      # strip heights: a few distinct values
    rows = np.array([_glb_rows(g, int(x)) for x in ub], dtype=np.int64).reshape(-1, 2)
    rsum_all, rmax = rows[inv.reshape(-1), 0], rows[inv.reshape(-1), 1]
    # drop the blocks that overflow the GLB before costing them (same occupancy as _counts)
    mb = np.minimum(g.M, a["km"] * a["pm"] * a["p"])
    cb = np.minimum(g.C, a["kc"] * a["pc"] * a["q"])
    nbb = np.minimum(g.N, a["nb"])
    fits = nbb * cb * rmax * g.Wu + mb * cb * g.R * g.S + nbb * mb * ebs * g.F <= cfg.glb_words
    a = {k: v[fits] for k, v in a.items()}
    ebs, rmax, rsum = ebs[fits], rmax[fits], rsum_all[fits]
    if not len(ebs):
        return [(math.inf, None)] * len(shapes)
    e, p, q, pm, pc, NB, KM, KC, KE = (a[k] for k in ("e", "p", "q", "pm", "pc", "nb", "km", "kc", "ke"))
    ue, inv = np.unique(e, return_inverse=True)
    pss = np.array([_pass_sums(g, int(x), cfg.rows) for x in ue], dtype=np.int64).reshape(-1, 2)
    prow, ppe = pss[inv.reshape(-1), 0], pss[inv.reshape(-1), 1]
    cnt, _, occ = _counts(g, cfg, e, p, q, pm, pc, NB, KM, KC, KE, ORDERS[0], prow, ppe, rsum, rmax, g_w, g_a, mf)
    base = sum(costs[lv] * sum(np.broadcast_to(x, NB.shape) for x in row.values())
               for lv, row in cnt.items() if lv != "rf")
    # only the DRAM revisit factors depend on the order: energy is affine in (fW, fX, v)
    mt, ct = pm * p, pc * q
    T = {"n": _cdiv(g.N, np.minimum(g.N, NB)), "m": _cdiv(g.M, np.minimum(g.M, KM * mt)),
         "c": _cdiv(g.C, np.minimum(g.C, KC * ct)), "e": _cdiv(g.E, ebs)}
    Wg, Yg = g.M * g.C * g.R * g.S, g.N * g.M * g.E * g.F
    cW = (costs["dram"] * g_w + costs["buffer"]) * Wg
    cX = (costs["dram"] * g_a + costs["buffer"]) * g.N * g.C * rsum * g.Wu
    cY = 2 * (costs["dram"] + costs["buffer"]) * Yg
    f = [(_outer_factor(o, _REL["weight"], T), _outer_factor(o, _REL["input"], T),
          _outer_factor(o, _REL["psum"], T)) for o in ORDERS]
    f0 = f[0]
    energy = np.stack([base + cW * (fw - f0[0]) + cX * (fx - f0[1]) + cY * (v - f0[2]) for fw, fx, v in f])
    energy[:, occ > cfg.glb_words] = np.inf
    o_best = np.argmin(energy, axis=0)                   # first (lowest-index) order on ties
    e_best = energy[o_best, np.arange(energy.shape[1])]
    out = []
    starts = np.searchsorted(a["seg"], np.arange(len(shapes) + 1))
    for j in range(len(shapes)):
        lo, hi = starts[j], starts[j + 1]
        if lo == hi:
            out.append((math.inf, None))
            continue
        i = lo + int(np.argmin(e_best[lo:hi]))
        if not np.isfinite(e_best[i]):
            out.append((math.inf, None))
            continue
        out.append((float(e_best[i]), RSMapping(e=int(e[i]), p=int(p[i]), q=int(q[i]), pm=int(pm[i]), pc=int(pc[i]),
                                                nb=int(NB[i]), km=int(KM[i]), kc=int(KC[i]), ke=int(KE[i]),
                                                order=ORDERS[int(o_best[i])])))
    return out
