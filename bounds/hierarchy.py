"""The hierarchy-aware energy lower bound: no execution of a layer on an architecture costs less, in pJ.

The two-level bound (bounds/lower_bound.py) is a bound for the model machine.  On a real
accelerator (complexity.architecture.Architecture: levels from the innermost storage to
DRAM) the bound is built from the architecture's own levels; the proof and every
assumption are in docs/hierarchy.md.  In short:

* boundaries: every prefix ``B_k`` of the level list (innermost first) that holds the
  level MACs read each operand from.  Its storage, ``U_k`` words over all instances,
  plays the Buffer of the two-level machine, so at least ``Q_k = Q_LB(U_k)`` words cross
  it (the last boundary is the chip: ``U_K`` = every on-chip word);
* prices: per-boundary prices ``p_k`` of a word crossing, whose sum over the boundaries
  any single move crosses never exceeds that move's cost (a read where it leaves plus a
  write where it lands), so ``sum_k p_k * crossings_k`` is a lower bound (weak LP
  duality) that never charges a bypassing word twice.  Each boundary's crossings are at
  least the compulsory words of each operand (|X_used|, |W| inward, |Y| outward) and
  ``Q_k`` in all, so boundary ``k`` costs at least
  ``sum_t p_k^t C_t + min_t p_k^t * max(0, Q_k - Q_comp)``.  Several valid price systems
  ("pricings") are evaluated and the largest bound is kept;
* registers: where operands are read by the MACs from one-word registers per MAC that
  exchange words only with the next level of their operand's chain, two consecutive
  real MACs of one unit differ in at least two operands, so each of the
  ``F_real - macs`` transitions changes at least |R| - 1 of the |R| registers;
* compute: ``F`` MACs at ``mac_pJ``; where the architecture names the level each MAC
  reads an operand from (``mac_reads``), at least ``F / fanout`` accesses of it (one
  access reaches at most the MACs below one instance), ``F_real`` for inputs.

``hierarchy_lower_bound`` (one layer), ``hierarchy_lower_bound_np`` (arrays of layers)
and ``hierarchy_expressions`` (sympy) evaluate the same pricings with the same code
(``_bound_terms`` over a backend), and tests/test_hierarchy.py checks that they agree and
that on ``Architecture.two_level(machine)`` the bound is the two-level energy bound.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from bounds.lower_bound import M_MIN, _lb_parts
from complexity.architecture import OPERANDS, Architecture, ArchitectureError, Level
from complexity.layer import Layer

__all__ = ["Boundary", "Pricing", "HierarchyBound", "boundaries", "pricings", "register_term",
           "operand_read_terms", "psum_read_level", "hierarchy_lower_bound", "hierarchy_lower_bound_np", "hierarchy_expressions"]

_FIELDS = ("b", "c", "d", "h", "w", "kh", "kw", "sh", "sw", "ph", "pw", "groups")
#: (operand, direction) classes of a boundary crossing.
_CLASSES = (("X", "in"), ("W", "in"), ("Y", "out"), ("X", "out"), ("W", "out"), ("Y", "in"))
#: The compulsory class of each operand and the layer size that bounds its crossings.
_COMPULSORY = {("X", "in"): "X_used", ("W", "in"): "W", ("Y", "out"): "Y"}
#: Relative margin taken off the float result, so that rounding can only lower the bound.
_EPS = 1e-12


@dataclass(frozen=True)
class Boundary:
    """A cut between the levels ``inside`` (a prefix of the hierarchy) and the rest.

    ``U`` is the words the inside holds over all instances; ``outside`` names the first
    level outside (``dram`` for the chip boundary), which names the boundary.
    """

    k: int
    inside: tuple[str, ...]
    outside: str
    U: int


@dataclass(frozen=True)
class Pricing:
    """One valid price system: prices of the boundaries ``used`` and the register term's price.

    ``p[i]`` maps each (operand, direction) class to its price (pJ per word crossing
    boundary ``used[i]``); ``register_pJ`` is the least energy of one MAC-to-MAC
    transition of the register term (0: not used), ``register_slack_pJ`` what it takes
    off per MAC unit for register chains, ``psum_reads`` whether the partial-sum read
    term is used.  docs/hierarchy.md, sections 4-5.
    """

    name: str
    used: tuple[int, ...]
    p: tuple[dict, ...]
    register_pJ: float = 0.0
    register_slack_pJ: float = 0.0
    psum_reads: bool = False

    def compulsory(self, i: int) -> dict:
        """Prices of the compulsory classes at used boundary i: {"X_used": .., "W": .., "Y": ..}."""
        return {size: self.p[i][cls] for cls, size in _COMPULSORY.items()}

    def excess(self, i: int) -> float:
        """Price of a word beyond the compulsory ones at used boundary i: the cheapest class."""
        return min(self.p[i].values())


def _check(arch) -> None:
    if not isinstance(arch, Architecture):
        raise TypeError(f"expected an Architecture, got {type(arch).__name__}")


def boundaries(arch: Architecture) -> tuple[Boundary, ...]:
    """The nested boundaries: every prefix of the level list that holds every MAC-read level.

    A prefix that misses the level MACs read some operand from is no Buffer of the
    two-level machine (a MAC would use a word outside it), so it is skipped.  The last
    boundary is the chip (every on-chip level; outside: DRAM).
    """
    _check(arch)
    names = [lv.name for lv in arch.levels]
    first = max(names.index(arch.innermost(t).name) for t in OPERANDS) + 1
    out = []
    for p in range(first, len(arch.levels)):
        inside = arch.levels[:p]
        out.append(Boundary(k=len(out), inside=tuple(lv.name for lv in inside), outside=names[p],
                            U=int(sum(lv.total_words for lv in inside))))
    if not out:  # Architecture.from_dict refuses mac_reads on DRAM, so this is a hand-built object
        raise ArchitectureError("mac_reads", "MACs must read every operand from an on-chip level")
    return tuple(out)


def _bypass_pricing(arch: Architecture, bnds) -> Pricing:
    """Telescoping prices valid when words may skip levels (docs/hierarchy.md, 3.2).

    Shells: shell 0 = inside the first boundary, shell j = between boundaries j-1 and j,
    the last = DRAM.  With r_s, w_s the cheapest read / write of operand t in shell s,
    R(s) = min_{s' >= s} r_s' and W(s) = min_{s' >= s} w_s': inward p_0 = R(1) + w_0,
    p_k = R(k+1) - R(k); outward p_0 = W(1) + r_0, p_k = W(k+1) - W(k).
    """
    K = len(bnds)
    cuts = [len(b.inside) for b in bnds] + [len(arch.levels)]
    shells = [arch.levels[:cuts[0]]] + [arch.levels[cuts[j - 1]:cuts[j]] for j in range(1, K + 1)]

    def cheapest(levels, t, which):
        vals = [getattr(lv, which)[t] for lv in levels if t in lv.operands]
        return min(vals) if vals else math.inf

    p: list[dict] = [dict() for _ in range(K)]
    for t in OPERANDS:
        r = [cheapest(s, t, "read_pJ") for s in shells]
        w = [cheapest(s, t, "write_pJ") for s in shells]
        for direction, inner0, far in (("in", w[0], [min(r[s:]) for s in range(K + 1)]),
                                       ("out", r[0], [min(w[s:]) for s in range(K + 1)])):
            for k in range(K):
                p[k][(t, direction)] = float(far[1] + inner0 if k == 0 else far[k + 1] - far[k])
    return Pricing("bypass", tuple(range(K)), tuple(p))


def _hops(arch: Architecture, bnds, t: str):
    """Consecutive levels (inner, outer) of operand t's chain with the boundaries each hop crosses."""
    chain = arch.chain(t)
    pos = {lv.name: i for i, lv in enumerate(arch.levels)}
    out = []
    for a, b in zip(chain[:-1], chain[1:]):
        crossed = tuple(bd.k for bd in bnds if pos[a.name] < len(bd.inside) <= pos[b.name])
        out.append((a, b, crossed))
    return out


def _registers(arch: Architecture) -> dict:
    """{operand: its register chain} for the operands MACs read from a one-word register per MAC.

    The chain starts at the MAC-read level and goes on through the next levels of the
    operand's chain while they too are one-word-per-MAC levels holding only that operand
    (a register refilled from another register, as Simba's weight register behind the MAC:
    docs/hierarchy.md, section 5).  Partial-sum registers are single (no chain).
    """
    if not arch.mac_reads:
        return {}
    out = {}

    def is_register(lv, t):
        return lv.capacity == 1 and lv.instances == arch.macs and lv.operands == (t,)

    for t in OPERANDS:
        lv = arch.innermost(t)
        if t not in arch.mac_reads or not is_register(lv, t):
            continue
        chain = arch.chain(t)
        regs = [lv]
        for nxt in chain[chain.index(lv) + 1:-1]:
            if t == "Y" or not is_register(nxt, t):
                break
            regs.append(nxt)
        out[t] = tuple(regs)
    return out


def _next_in_chain(arch: Architecture, t: str, lv: Level) -> Level:
    chain = arch.chain(t)
    return chain[chain.index(lv) + 1]


def register_term(arch: Architecture) -> tuple[float, dict, float] | None:
    """(least pJ of one MAC-to-MAC transition, {operand: pJ per register change}, slack pJ per MAC unit) or None.

    Applies when words move only along their operand's chain (``bypass`` False) and at
    least two operands are read by the MACs from a one-word register per MAC holding only
    that operand (the set R).  Two consecutive real MACs of a unit differ in at least two
    operands, so at least |R| - 1 registers change: the transition costs at least the sum
    of the |R| - 1 cheapest changes.  A change of an input or weight register costs a read
    of the next level of its chain (shared by at most that level's fan-out registers) plus
    the register write, and, where that next level is itself a one-word register per MAC,
    a refill of it from the level after (all but the first j changes of a unit need the
    j-th register behind to be refilled: the slack, j times that refill per register and
    unit, is taken off).  A change of the partial-sum register spills the old one (a
    register read plus a write of the next level, which spatial reduction may share among
    its fan-out).  docs/hierarchy.md, section 5.
    """
    _check(arch)
    regs = _registers(arch)
    if arch.bypass or len(regs) < 2:
        return None
    c, slack = {}, 0.0
    for t, chain in regs.items():
        reg = chain[0]
        if t == "Y":
            nxt = _next_in_chain(arch, t, reg)
            c[t] = reg.read_pJ[t] + nxt.write_pJ[t] / arch.fanout(nxt)
            continue
        c[t] = 0.0
        for j, lv in enumerate(chain):
            nxt = _next_in_chain(arch, t, lv)
            hop = nxt.read_pJ[t] / arch.fanout(nxt) + lv.write_pJ[t]
            c[t] += hop
            slack += j * hop
    return float(sum(sorted(c.values())[:len(c) - 1])), c, float(slack)


def psum_read_level(arch: Architecture) -> Level | None:
    """The level whose partial-sum reads the bound counts apart, or None (docs/hierarchy.md, section 5).

    When MACs update partial sums in a named level that is not a register (``mac_reads``
    names it for Y, ``bypass`` False), every partial-sum word written there must be read
    there again (A3), so its Y reads are at least its datapath writes.
    """
    if arch.bypass or not arch.mac_reads or "Y" not in arch.mac_reads or "Y" in _registers(arch):
        return None
    return arch.level(arch.mac_reads["Y"])


def _chain_pricing(arch: Architecture, bnds, used: tuple[int, ...], split: str, register_pJ: float,
                   register_slack_pJ: float = 0.0, psum_reads: bool = False) -> Pricing:
    """Prices valid when words move only between consecutive levels of their operand's chain.

    Each hop (a, b) of operand t costs read_b + write_a inward and read_a + write_b
    outward; the hop's cost is put on the boundaries it crosses among ``used``: all on the
    innermost ("inner"), all on the outermost ("outer") or shared equally ("equal").  With
    ``psum_reads`` the reads of Y at psum_read_level are left out of the hop costs (they
    are counted apart, all of them, by the partial-sum read term).
    """
    L = psum_read_level(arch) if psum_reads else None
    p: list[dict] = [{cls: 0.0 for cls in _CLASSES} for _ in used]
    index = {k: i for i, k in enumerate(used)}
    for t in OPERANDS:
        for a, b, crossed in _hops(arch, bnds, t):
            on = [k for k in crossed if k in index]
            if not on:
                continue
            cost = {"in": b.read_pJ[t] + a.write_pJ[t], "out": a.read_pJ[t] + b.write_pJ[t]}
            if L is not None and t == "Y":
                cost = {"in": cost["in"] - (b.read_pJ[t] if b is L else 0.0),
                        "out": cost["out"] - (a.read_pJ[t] if a is L else 0.0)}
            if split == "inner":
                share = {on[0]: 1.0}
            elif split == "outer":
                share = {on[-1]: 1.0}
            else:
                share = {k: 1.0 / len(on) for k in on}
            for k, f in share.items():
                for direction in ("in", "out"):
                    p[index[k]][(t, direction)] += f * cost[direction]
    name = f"chain/{split}" + ("+registers" if register_pJ else "") + ("+psum-reads" if L is not None else "")
    return Pricing(name, used, tuple(p), register_pJ, register_slack_pJ, L is not None)


def pricings(arch: Architecture) -> tuple[Pricing, ...]:
    """Every price system the bound evaluates on ``arch`` (it keeps the largest result).

    Always the bypass-safe telescoping prices; when words follow their operand's chain,
    also the hop prices with three ways to share a hop among the boundaries it crosses,
    each with and (where registers apply) without the register term, and with and
    (where psum_read_level applies) without the partial-sum read term.  With the register
    term, the boundaries that register moves cross are left out, so no move is charged twice.
    """
    bnds = boundaries(arch)
    out = [_bypass_pricing(arch, bnds)]
    if arch.bypass:
        return tuple(out)
    all_k = tuple(bd.k for bd in bnds)
    reg = register_term(arch)
    variants = [(all_k, 0.0, 0.0)]
    if reg is not None:
        reg_crossed = {k for t, chain in _registers(arch).items()
                       for _a, _b, crossed in _hops(arch, bnds, t)[:len(chain)] for k in crossed}
        variants.append((tuple(k for k in all_k if k not in reg_crossed), reg[0], reg[2]))
    psum = (False, True) if psum_read_level(arch) is not None else (False,)
    for used, reg_pJ, slack in variants:
        for split in ("inner", "outer", "equal"):
            for ps in psum:
                out.append(_chain_pricing(arch, bnds, used, split, reg_pJ, slack, ps))
    return tuple(out)


def operand_read_terms(arch: Architecture) -> tuple[tuple[str, str, str, int, float], ...]:
    """(operand, level, access kind, fan-out, pJ per access) for each operand whose MAC-read level is named.

    Inputs and weights are read, partial sums updated (written) once per MAC; one access
    reaches at most the ``fanout`` MACs below one instance.  Empty without ``mac_reads``.
    """
    _check(arch)
    if not arch.mac_reads:
        return ()
    out = []
    for t in OPERANDS:
        if t in arch.mac_reads:
            lv: Level = arch.level(arch.mac_reads[t])
            kind, cost = ("write", lv.write_pJ[t]) if t == "Y" else ("read", lv.read_pJ[t])
            out.append((t, lv.name, kind, arch.fanout(lv), float(cost)))
    return tuple(out)


# ----- one formula, three backends -------------------------------------------------

class _Num:
    """float / numpy backend."""

    @staticmethod
    def pos(x):
        return np.maximum(0.0, x)

    @staticmethod
    def ceil_div(a, b):
        return np.ceil(np.asarray(a, dtype=np.float64) / b)

    @staticmethod
    def num(v):
        return v


class _Py(_Num):
    """exact Python integers for counts (scalar path)."""

    @staticmethod
    def pos(x):
        return max(0, x)

    @staticmethod
    def ceil_div(a, b):
        return -(-int(a) // int(b))


class _Sym:
    @staticmethod
    def pos(x):
        import sympy as sp
        return sp.Max(0, x)

    @staticmethod
    def ceil_div(a, b):
        import sympy as sp
        return sp.ceiling(a / b)

    @staticmethod
    def num(v):
        import sympy as sp
        return sp.Float(v, 15)


def _bound_terms(arch: Architecture, pr: Pricing, Q: list, sz: dict, ops,
                 parts=None) -> list[tuple[str, str, object, object]]:
    """The terms of one pricing's bound: (name, kind, words, E_pJ) with the backend ``ops``.

    ``Q[k]``: the two-level traffic bound at boundary k's capacity; ``sz``: X_used, W, Y,
    F, F_real of the layer(s).  The one place the bound's formula is written.  ``parts``:
    ``_arch_parts(arch)`` when the caller has it (else computed here).
    """
    bnds, read_terms, psum_level = _arch_parts(arch)[:3] if parts is None else parts[:3]
    comp = sz["X_used"] + sz["W"] + sz["Y"]
    terms = []
    for i, k in enumerate(pr.used):
        cp = pr.compulsory(i)
        E = sum(ops.num(cp[s]) * sz[s] for s in cp) + ops.num(pr.excess(i)) * ops.pos(Q[k] - comp)
        terms.append((bnds[k].outside, "traffic", Q[k], E))
    if pr.register_pJ:
        n = ops.pos(sz["F_real"] - arch.macs)
        E = ops.num(pr.register_pJ) * n
        if pr.register_slack_pJ:
            E = ops.pos(E - ops.num(pr.register_slack_pJ * arch.macs))
        terms.append(("registers", "register transitions", n, E))
    for t, name, kind, fan, cost in read_terms:
        n = ops.ceil_div(sz["F_real"] if t == "X" else sz["F"], fan)
        terms.append((name, f"operand {kind}s ({t})", n, ops.num(cost) * n))
    if pr.psum_reads:
        L = psum_level
        n = ops.ceil_div(sz["F_real"], arch.fanout(L))
        terms.append((L.name, "partial-sum reads (Y)", n, ops.num(L.read_pJ["Y"]) * n))
    terms.append(("mac", "mac", sz["F"], ops.num(arch.mac_pJ) * sz["F"]))
    return terms


@dataclass(frozen=True)
class HierarchyBound:
    """The energy floor (pJ) of one layer on one architecture, and where it comes from.

    ``levels``: the terms of the pricing that gave the largest bound, each {"name",
    "words", "E_pJ", "kind"}: a boundary's crossing traffic (named by the first level
    outside it, "traffic", with ``U_words`` its inside capacity; ``words`` is the two-level
    bound on its crossings), register transitions, operand accesses at a MAC-read level,
    and the MACs.  Their E_pJ add up to ``E_pJ``.  ``pricing`` names that price system.
    """

    arch: str
    E_pJ: float
    levels: tuple[dict, ...]
    F: int
    pricing: str

    def to_json(self) -> dict:
        return {"E_pJ": float(self.E_pJ), "pricing": self.pricing, "levels": [dict(t) for t in self.levels]}


@lru_cache(maxsize=64)
def _arch_parts(arch: Architecture) -> tuple:
    """(boundaries, operand_read_terms, psum_read_level, pricings) of ``arch``: they depend on the
    architecture only, and every layer's bound takes them (cached; all of them immutable or only read)."""
    return boundaries(arch), operand_read_terms(arch), psum_read_level(arch), pricings(arch)


def _sizes(P) -> dict:
    parts = _lb_parts(P, M_MIN)
    return {k: parts[k] for k in ("X_used", "W", "Y", "F", "F_real")}


def hierarchy_lower_bound(layer: Layer, arch: Architecture) -> HierarchyBound:
    """The lower bound on the energy (pJ) of every execution of ``layer`` on ``arch``.

    Proof and assumptions: docs/hierarchy.md.  Traffic bounds per boundary are the exact
    integers of bounds.lower_bound.lower_bound at M = U_k; energies are floats, lowered by
    a relative 1e-12 so rounding cannot lift them.
    """
    shape = dataclasses.replace(layer, name="") if layer.name else layer
    hb = _hierarchy_cached(shape, arch)
    # the cached result is shared: hand out copies of its per-term dicts
    return dataclasses.replace(hb, levels=tuple(dict(t) for t in hb.levels))


@lru_cache(maxsize=4096)
def _hierarchy_cached(layer: Layer, arch: Architecture) -> HierarchyBound:
    """hierarchy_lower_bound for one layer shape (a network repeats shapes: ResNet-50 has 24 in 54 layers)."""
    from bounds.lower_bound import lower_bound
    from complexity.machine import Machine

    _check(arch)
    parts = _arch_parts(arch)
    bnds = parts[0]
    lbs = [lower_bound(layer, Machine(M=max(M_MIN, bd.U))) for bd in bnds]
    Q = [int(lb.Q) for lb in lbs]
    # the layer's sizes do not depend on M: those of the first boundary's bound are _sizes'
    sz = {"X_used": lbs[0].parts["X_used"], "W": lbs[0].parts["W"], "Y": lbs[0].parts["Y"], "F": int(lbs[0].F),
          "F_real": lbs[0].parts["F_real"]}
    best = None
    for pr in parts[3]:
        terms = _bound_terms(arch, pr, Q, sz, _Py, parts)
        E = float(sum(float(t[3]) for t in terms))
        if best is None or E > best[0]:
            best = (E, pr, terms)
    E, pr, terms = best
    levels = []
    for name, kind, words, e in terms:
        entry = {"name": name, "words": int(words), "E_pJ": float(e), "kind": kind}
        if kind == "traffic":
            entry["U_words"] = next(bd.U for bd in bnds if bd.outside == name)
        levels.append(entry)
    return HierarchyBound(arch=arch.name, E_pJ=E * (1 - _EPS), levels=tuple(levels), F=sz["F"], pricing=pr.name)


def hierarchy_lower_bound_np(P, arch: Architecture) -> dict:
    """Vectorized: {"E_pJ", "F", "Q_<k>" per boundary} float64 arrays for arrays of layers.

    ``P`` maps Layer field names to int64 arrays (as bounds.lower_bound.lower_bound_np);
    the same pricings and two-level bounds as ``hierarchy_lower_bound``.
    """
    from bounds.lower_bound import lower_bound_np

    _check(arch)
    sz = {k: np.asarray(v, dtype=np.float64) for k, v in _sizes(P).items()}
    Q = [np.asarray(lower_bound_np(P, max(M_MIN, bd.U))["Q"], dtype=np.float64) for bd in boundaries(arch)]
    E = None
    for pr in pricings(arch):
        e = sum(t[3] for t in _bound_terms(arch, pr, Q, sz, _Num))
        E = e if E is None else np.maximum(E, e)
    out = {f"Q_{k}": q for k, q in enumerate(Q)}
    out["E_pJ"] = np.asarray(E, dtype=np.float64) * (1 - _EPS)
    out["F"] = sz["F"]
    return out


def hierarchy_expressions(arch: Architecture) -> dict:
    """Sympy form of the bound on ``arch``: {"E": Max over pricings, "E_pricing": {name: expr}, "Q": [...], "U": [...]}.

    Built from bounds.lower_bound.lb_expressions with M replaced by each boundary's U_k
    and the architecture's prices as numbers; the layer stays symbolic (bounds/symbols.py).
    """
    import sympy as sp

    from bounds import symbols as sy
    from bounds.lower_bound import lb_expressions

    ex = lb_expressions()
    sz = {"X_used": ex["X_used"], "W": sy.W, "Y": sy.Y, "F": ex["F"], "F_real": ex["F_real"]}
    bnds = boundaries(arch)
    # built unevaluated: re-evaluating every Min/Max/floor of Q with a numeric M (and the
    # Max over pricings) takes sympy minutes and changes nothing a substitution would not
    prs = pricings(arch)
    with sp.evaluate(False):
        Q = [ex["Q"].xreplace({sy.M: sp.Integer(max(M_MIN, bd.U))}) for bd in bnds]
        per = {pr.name: sp.Add(*[t[3] for t in _bound_terms(arch, pr, Q, sz, _Sym)]) for pr in prs}
        E = sp.Max(*per.values()) if len(per) > 1 else next(iter(per.values()))
    return {"E": E, "E_pricing": per, "Q": Q, "U": [bd.U for bd in bnds]}
