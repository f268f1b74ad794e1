"""The hierarchy-aware energy lower bound (bounds/hierarchy.py, docs/hierarchy.md).

Checked here:
- on the two-level machine it is the two-level energy bound (equal without padding);
- scalar, vectorized and sympy forms agree;
- every pricing is dual-feasible: for every move a word can make on the architecture,
  the prices of the boundaries it crosses add up to at most its cost, and with the
  register term no register move crosses a priced boundary;
- no execution costs less: a simulator runs MACs in arbitrary orders (natural, random,
  weight-, input- and output-major) with LRU replacement on capacity-checked levels
  (words moving level by level, or bypassing levels), computes the convolution (equal to
  numpy's) and its energy, which is never below the bound.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import OrderedDict

import numpy as np
import pytest
import sympy as sp

from bounds import symbols as sy
from bounds.hierarchy import (boundaries, hierarchy_expressions, hierarchy_lower_bound,
                              hierarchy_lower_bound_np, pricings, register_term)
from bounds.lower_bound import lower_bound
from bounds.reference_conv import conv2d_numpy, random_operands
from complexity.architecture import OPERANDS, Architecture
from complexity.layer import Layer
from complexity.machine import Machine

_FIELDS = ("b", "c", "d", "h", "w", "kh", "kw", "sh", "sw", "ph", "pw", "groups")


def _arch(levels, *, mac_pJ=0.5, macs=1, mac_reads=None, bypass=True, name="test"):
    return Architecture.from_dict({"name": name, "word_bits": 8, "mac_pJ": mac_pJ, "macs": macs,
                                   "mac_reads": mac_reads, "bypass": bypass, "levels": levels})


def register_arch(rf=16, glb=64, bypass=False, rf_ops=("X", "W", "Y"), costs=(0.1, 1.0, 3.0, 100.0)):
    """One MAC with one register per operand, a register file, a global buffer (X, Y) and DRAM."""
    reg, rfc, gc, dc = costs
    levels = [{"name": f"reg_{t}", "capacity": 1, "instances": 1, "operands": [t], "read_pJ": reg,
               "write_pJ": reg * 1.5} for t in OPERANDS]
    levels += [{"name": "rf", "capacity": rf, "operands": list(rf_ops), "read_pJ": rfc, "write_pJ": rfc * 1.2},
               {"name": "glb", "capacity": glb, "operands": ["X", "Y"], "read_pJ": gc, "write_pJ": gc * 1.3},
               {"name": "dram", "operands": ["X", "W", "Y"], "read_pJ": dc, "write_pJ": dc * 1.1}]
    return _arch(levels, mac_reads={t: f"reg_{t}" for t in OPERANDS}, bypass=bypass, name="reg")


def buffer_arch(rf=16, glb=64, bypass=True):
    """MACs read from a shared register file (no registers), a global buffer and DRAM."""
    levels = [{"name": "rf", "capacity": rf, "operands": ["X", "W", "Y"], "read_pJ": {"X": 0.5, "W": 0.4, "Y": 0.6},
               "write_pJ": 0.7},
              {"name": "glb", "capacity": glb, "operands": ["X", "W", "Y"], "read_pJ": 4.0, "write_pJ": 5.0},
              {"name": "dram", "operands": ["X", "W", "Y"], "read_pJ": 90.0, "write_pJ": 110.0}]
    return _arch(levels, mac_reads={"X": "rf", "W": "rf", "Y": "rf"}, bypass=bypass, name="buf")


LAYERS = [
    Layer(c=3, d=4, h=6, w=6, kh=3, kw=3),
    Layer(c=2, d=3, h=7, w=5, kh=3, kw=2, sh=2, sw=1, ph=1, pw=1),
    Layer(b=2, c=4, d=4, h=4, w=4, kh=2, kw=2, groups=2),
    Layer(c=5, d=6, b=3),                       # fully connected
    Layer(c=2, d=2, h=5, w=5, kh=3, kw=3, ph=2, pw=2, sh=3, sw=3),
]


# ----- the two-level machine is a special case --------------------------------------

@pytest.mark.parametrize("M", [3, 7, 64, 1000, 65536])
def test_two_level_machine_gives_the_two_level_energy_bound(M):
    rng = random.Random(M)
    for _ in range(40):
        k = rng.randint(1, 4)
        L = Layer(b=rng.randint(1, 3), c=rng.randint(1, 40), d=rng.randint(1, 40), h=rng.randint(k, 30),
                  w=rng.randint(k, 30), kh=k, kw=k, sh=rng.randint(1, 3), sw=rng.randint(1, 3),
                  ph=rng.randint(0, k - 1), pw=rng.randint(0, k - 1))
        m = Machine(M=M, eD=rng.choice([200, 50]), eB=rng.choice([6, 2]), eM=1, bits=rng.choice([8, 16]))
        two = lower_bound(L, m).E
        hb = hierarchy_lower_bound(L, Architecture.two_level(m))
        # the two-level model charges padding MACs an input read; the floor does not (no word is read)
        expect = two - m.e_buf * (L.F - L.F_real)
        assert hb.E_pJ == pytest.approx(expect, rel=1e-9)
        assert hb.E_pJ <= two * (1 + 1e-12)
        assert sum(t["E_pJ"] for t in hb.levels) == pytest.approx(hb.E_pJ, rel=1e-9)


# ----- one formula, three evaluations ----------------------------------------------------

ARCHS = [Architecture.two_level(Machine(M=50)), register_arch(), register_arch(bypass=True),
         buffer_arch(), buffer_arch(bypass=False), register_arch(rf_ops=("X", "Y"))]


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: f"{a.name}-{'bypass' if a.bypass else 'chain'}")
def test_scalar_numpy_and_sympy_agree(arch):
    rng = np.random.default_rng(7)
    rows = []
    for _ in range(60):
        k = int(rng.integers(1, 5))
        g = int(rng.choice([1, 1, 2]))
        rows.append(Layer(b=int(rng.integers(1, 3)), c=g * int(rng.integers(1, 20)), d=g * int(rng.integers(1, 20)),
                          h=int(rng.integers(k, 25)), w=int(rng.integers(k, 25)), kh=k, kw=k,
                          sh=int(rng.integers(1, 3)), sw=int(rng.integers(1, 3)), ph=int(rng.integers(0, k)),
                          pw=int(rng.integers(0, k)), groups=g))
    P = {f: np.array([getattr(L, f) for L in rows], dtype=np.int64) for f in _FIELDS}
    vec = hierarchy_lower_bound_np(P, arch)["E_pJ"]
    expr = hierarchy_expressions(arch)["E"]
    for i, L in enumerate(rows[:12]):
        sub = {sy.LAYER_SYMBOLS[f]: getattr(L, f) for f in _FIELDS}
        assert float(expr.xreplace(sub)) == pytest.approx(hierarchy_lower_bound(L, arch).E_pJ, rel=1e-9)
    for i, L in enumerate(rows):
        assert vec[i] == pytest.approx(hierarchy_lower_bound(L, arch).E_pJ, rel=1e-9)


def test_sympy_form_keeps_the_layer_symbolic():
    ex = hierarchy_expressions(register_arch())
    assert sy.c in ex["E"].free_symbols and sy.M not in ex["E"].free_symbols
    assert ex["U"] == [bd.U for bd in boundaries(register_arch())]
    assert sp.latex(ex["E"])


# ----- every pricing is dual-feasible ---------------------------------------------------

def _moves(arch):
    """Every (operand, source level, destination level) move the architecture allows."""
    for t in OPERANDS:
        chain = arch.chain(t)
        pairs = itertools.permutations(chain, 2) if arch.bypass else \
            [p for a, b in zip(chain, chain[1:]) for p in ((a, b), (b, a))]
        for src, dst in pairs:
            yield t, src, dst


def _feasibility_cases():
    from validation.architectures import architecture_names, get_architecture
    return ARCHS + [get_architecture(n) for n in architecture_names()]


@pytest.mark.parametrize("arch", _feasibility_cases(), ids=lambda a: f"{a.name}-{'bypass' if a.bypass else 'chain'}")
def test_every_pricing_is_dual_feasible(arch):
    bnds = boundaries(arch)
    pos = {lv.name: i for i, lv in enumerate(arch.levels)}
    regs = register_term(arch)
    for pr in pricings(arch):
        for t, src, dst in _moves(arch):
            lo, hi = sorted((pos[src.name], pos[dst.name]))
            direction = "in" if pos[dst.name] < pos[src.name] else "out"
            crossed = [i for i, k in enumerate(pr.used) if lo < len(bnds[k].inside) <= hi]
            cost = src.read_pJ[t] + dst.write_pJ[t]
            paid = sum(pr.p[i][(t, direction)] for i in crossed)
            assert paid <= cost * (1 + 1e-12) + 1e-12, (pr.name, t, src.name, dst.name)
            is_reg = [lv.name == arch.innermost(t).name and lv.capacity == 1 and lv.instances == arch.macs
                      for lv in (src, dst)]
            if pr.register_pJ and any(is_reg):
                assert not crossed, f"{pr.name}: register move {src.name}->{dst.name} also priced at a boundary"
        assert all(v >= 0 for p in pr.p for v in p.values())
    if regs is not None:
        c = sorted(regs[1].values())
        assert regs[0] == pytest.approx(sum(c[:-1]))


def test_register_term_needs_registers_and_chains():
    assert register_term(register_arch()) is not None
    assert register_term(register_arch(bypass=True)) is None       # a word could skip the register file
    assert register_term(buffer_arch(bypass=False)) is None        # MACs read from a multi-word level
    assert register_term(Architecture.two_level(Machine(M=9))) is None


# ----- no execution beats the bound ---------------------------------------------------------

class _Sim:
    """Capacity-checked levels, LRU replacement, energies counted per read and write.

    With ``arch.bypass`` False a word moves one level of its operand's chain at a time;
    with True it jumps from wherever it is straight into the level the MAC reads.
    Inputs and weights are read-only (copies stay above); a partial sum moves (its copy
    above is dropped) and is written back level by level when evicted or at the end.
    """

    def __init__(self, arch: Architecture):
        self.arch = arch
        self.lv = {lv.name: lv for lv in arch.levels}
        self.store = {lv.name: OrderedDict() for lv in arch.onchip}   # name -> {word: value}
        self.dram = {}
        self.E = 0.0

    def _read(self, name, t):
        self.E += self.lv[name].read_pJ[t]

    def _write(self, name, t):
        self.E += self.lv[name].write_pJ[t]

    def chain(self, t):
        return [lv.name for lv in self.arch.chain(t)]

    def where(self, word):
        t = word[0]
        for name in self.chain(t)[:-1]:
            if word in self.store[name]:
                return name
        return "dram" if word in self.dram or t != "Y" else None

    def _put(self, name, word, value, pinned):
        s = self.store[name]
        if word in s:
            s[word] = value
            s.move_to_end(word)
            return
        while len(s) >= self.lv[name].capacity:
            victim = next(v for v in s if v not in pinned)
            val = s.pop(victim)
            if victim[0] == "Y":
                self._spill(name, victim, val, pinned)
        s[word] = value

    def _spill(self, name, word, value, pinned):
        """Move a partial sum out of ``name`` to the next level of its chain (or straight to DRAM)."""
        chain = self.chain("Y")
        nxt = chain[chain.index(name) + 1] if not self.arch.bypass else "dram"
        self._read(name, "Y")
        self._write(nxt, "Y")
        if nxt == "dram":
            self.dram[word] = value
        else:
            self._put(nxt, word, value, pinned)

    def fetch(self, word, pinned):
        """Bring ``word`` into the innermost level of its chain; return its value (None: a new partial sum)."""
        t = word[0]
        chain = self.chain(t)
        src = self.where(word)
        if src is None:
            return None
        if src == chain[0]:
            self.store[src].move_to_end(word)
            return self.store[src][word]
        value = self.dram[word] if src == "dram" else self.store[src][word]
        path = [src, chain[0]] if self.arch.bypass else chain[:chain.index(src) + 1][::-1]
        for a, b in zip(path, path[1:]):
            self._read(a, t)
            self._write(b, t)
            if t == "Y":  # a partial sum moves: its copy above is stale
                if a == "dram":
                    self.dram.pop(word)
                else:
                    self.store[a].pop(word)
            self._put(b, word, value, pinned)
        return value

    def flush(self):
        for name in self.chain("Y")[:-1]:
            for word in [w for w in self.store[name] if w[0] == "Y"]:
                val = self.store[name].pop(word)
                self._spill(name, word, val, set())
                # _spill may put it one level up; keep going until it reaches DRAM
        if any(w[0] == "Y" for s in self.store.values() for w in s):
            self.flush()


def _macs(L: Layer):
    """Every MAC as (y index, w index, x index or None for padding)."""
    out = []
    for n, o, i, j, ci, r, s in itertools.product(range(L.b), range(L.d), range(L.nh), range(L.nw), range(L.cg),
                                                  range(L.kh), range(L.kw)):
        g = o // L.dg
        hi, wi = i * L.sh - L.ph + r, j * L.sw - L.pw + s
        x = (n, g * L.cg + ci, hi, wi) if 0 <= hi < L.h and 0 <= wi < L.w else None
        out.append(((n, o, i, j), (o, ci, r, s), x))
    return out


def _orders(L: Layer, rng):
    macs = _macs(L)
    yield "natural", macs
    yield "weight-major", sorted(macs, key=lambda m: (m[1], m[0]))
    yield "input-major", sorted(macs, key=lambda m: (m[2] or (-1,), m[0]))
    yield "reduction-inner", sorted(macs, key=lambda m: (m[0], m[1]))
    shuffled = macs[:]
    rng.shuffle(shuffled)
    yield "random", shuffled


def run_sim(L: Layer, arch: Architecture, order, x, w):
    """Execute MACs in ``order``; return (y, energy in pJ)."""
    sim = _Sim(arch)
    for idx in np.ndindex(*x.shape):
        sim.dram[("X",) + idx] = float(x[idx])
    for idx in np.ndindex(*w.shape):
        sim.dram[("W",) + idx] = float(w[idx])
    reads = {t: arch.innermost(t) for t in OPERANDS}
    for yi, wi, xi in order:
        yw, ww = ("Y",) + yi, ("W",) + wi
        xw = None if xi is None else ("X",) + xi
        pinned = {yw, ww} | ({xw} if xw else set())
        wv = sim.fetch(ww, pinned)
        xv = 0.0 if xw is None else sim.fetch(xw, pinned)
        yv = sim.fetch(yw, pinned)
        if yv is None:
            yv = 0.0
        sim._put(reads["Y"].name, yw, yv + wv * xv, pinned)
        sim._read(reads["W"].name, "W")
        if xw is not None:
            sim._read(reads["X"].name, "X")
        sim._write(reads["Y"].name, "Y")
        sim.E += arch.mac_pJ
    sim.flush()
    y = np.zeros((L.b, L.d, L.nh, L.nw))
    for word, v in sim.dram.items():
        if word[0] == "Y":
            y[word[1:]] = v
    return y, sim.E


SIM_ARCHS = [register_arch(rf=4, glb=12), register_arch(rf=9, glb=40), register_arch(rf=6, glb=20, bypass=True),
             register_arch(rf=5, glb=30, rf_ops=("X", "Y")), buffer_arch(rf=5, glb=16),
             buffer_arch(rf=8, glb=30, bypass=False), Architecture.two_level(Machine(M=6)),
             register_arch(rf=3, glb=10, costs=(0.0, 0.5, 6.0, 200.0))]


@pytest.mark.parametrize("arch", SIM_ARCHS, ids=lambda a: f"{a.name}-{a.levels[-2].capacity}-{a.bypass}")
def test_no_execution_costs_less_than_the_bound(arch):
    rng = random.Random(hash(arch.name) % 1000)
    n = 0
    for L in LAYERS:
        x, w = random_operands(L, seed=3)
        ref = conv2d_numpy(L, x, w)
        floor = hierarchy_lower_bound(L, arch).E_pJ
        for name, order in _orders(L, rng):
            y, E = run_sim(L, arch, order, x, w)
            np.testing.assert_allclose(y, ref, rtol=1e-9, atol=1e-9)
            assert floor <= E, (L, name, floor, E)
            n += 1
    assert n == 5 * len(LAYERS)


def test_bound_is_not_vacuous_on_the_simulated_machines():
    """The register term and the boundaries carry real weight: the floor is a sizeable part of the best order."""
    arch = register_arch(rf=9, glb=40)
    L = LAYERS[0]
    x, w = random_operands(L, seed=1)
    best = min(run_sim(L, arch, order, x, w)[1] for _, order in _orders(L, random.Random(0)))
    hb = hierarchy_lower_bound(L, arch)
    assert hb.pricing.endswith("+registers")
    assert 0.3 * best <= hb.E_pJ <= best
    assert math.isclose(sum(t["E_pJ"] for t in hb.levels), hb.E_pJ, rel_tol=1e-9)
