"""An executable two-level machine: DRAM plus a Buffer that refuses to exceed M words.

The reference executors of the dataflows (bounds/executor.py) run their loop
nests on this machine; it counts every load, store, Buffer access and MAC, so the
closed forms can be checked against what really happened (docs/theory.md,
"The reference executor").  Words are addressed by keys such as ("X", n, ci, y, x),
("W", o, ci, r, s) and ("Y", n, o, y, x).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["BufferOverflow", "ModelViolation", "Counts", "TwoLevelMachine"]


class BufferOverflow(RuntimeError):
    """The Buffer was asked to hold more than M words."""


class ModelViolation(RuntimeError):
    """An execution broke a rule of the model (operand not resident, MAC done twice, ...)."""


@dataclass(frozen=True)
class Counts:
    """What an execution cost: loads, stores, Buffer accesses, MACs, and the peak occupancy."""

    loads: int
    stores: int
    A: int
    F: int
    peak: int

    @property
    def Q(self) -> int:
        """DRAM traffic in words: loads + stores."""
        return self.loads + self.stores


class TwoLevelMachine:
    """DRAM (a dict of words) and a Buffer of at most ``M`` words.

    - ``load(key)`` copies a DRAM word into the Buffer (1 load, 1 Buffer access);
    - ``store(key)`` copies a Buffer word to DRAM (1 store, 1 Buffer access) and
      frees it unless ``keep=True``;
    - ``evict(key)`` drops a resident word for free (DRAM still has, or never needs, it);
    - ``mac(y, w, x)`` does y += w * x with all three resident (3 Buffer accesses:
      two operand reads and one partial-sum update); ``x=None`` stands for a padding
      zero, which is not stored anywhere.  The first MAC of an output creates its
      partial sum in the Buffer, which then occupies a word.
    """

    def __init__(self, M: int, dram: dict):
        self.M = int(M)
        self.dram = dict(dram)
        self.buf: dict = {}
        self.loads = self.stores = self.A = self.F = 0
        self.peak = 0
        self._done: set = set()

    def _claim(self, key) -> None:
        if len(self.buf) >= self.M:
            raise BufferOverflow(f"Buffer of {self.M} words is full; cannot hold {key!r}")

    def _touch_peak(self) -> None:
        if len(self.buf) > self.peak:
            self.peak = len(self.buf)

    def load(self, key) -> None:
        if key in self.buf:
            raise ModelViolation(f"load of {key!r}, which is already resident")
        if key not in self.dram:
            raise ModelViolation(f"load of {key!r}, which DRAM does not hold")
        self._claim(key)
        self.buf[key] = self.dram[key]
        self.loads += 1
        self.A += 1
        self._touch_peak()

    def store(self, key, keep: bool = False) -> None:
        if key not in self.buf:
            raise ModelViolation(f"store of {key!r}, which is not resident")
        self.dram[key] = self.buf[key]
        if not keep:
            del self.buf[key]
        self.stores += 1
        self.A += 1

    def evict(self, key) -> None:
        if key not in self.buf:
            raise ModelViolation(f"evict of {key!r}, which is not resident")
        del self.buf[key]

    def mac(self, y, w, x, tag=None) -> None:
        """y += w * x.  ``tag`` identifies the MAC (e.g. (y, w)); a repeated tag is an error."""
        ident = tag if tag is not None else (y, w, x)
        if ident in self._done:
            raise ModelViolation(f"MAC {ident!r} done twice")
        self._done.add(ident)
        if w not in self.buf:
            raise ModelViolation(f"MAC needs weight {w!r} resident")
        if x is not None and x not in self.buf:
            raise ModelViolation(f"MAC needs input {x!r} resident")
        if y not in self.buf:
            self._claim(y)
            self.buf[y] = 0.0
            self._touch_peak()
        xv = 0.0 if x is None else self.buf[x]
        self.buf[y] += self.buf[w] * xv
        self.F += 1
        self.A += 3

    def resident(self, key) -> bool:
        return key in self.buf

    def occupancy(self) -> int:
        return len(self.buf)

    def counts(self) -> Counts:
        return Counts(loads=self.loads, stores=self.stores, A=self.A, F=self.F, peak=self.peak)

    @classmethod
    def for_layer(cls, layer, M: int, x: np.ndarray, w: np.ndarray) -> "TwoLevelMachine":
        """A machine whose DRAM holds the layer's inputs x (b, c, h, w) and weights w (d, c/g, kh, kw)."""
        L = layer
        if x.shape != (L.b, L.c, L.h, L.w):
            raise ValueError(f"x has shape {x.shape}, expected {(L.b, L.c, L.h, L.w)}")
        if w.shape != (L.d, L.cg, L.kh, L.kw):
            raise ValueError(f"w has shape {w.shape}, expected {(L.d, L.cg, L.kh, L.kw)}")
        dram = {("X",) + idx: float(v) for idx, v in np.ndenumerate(x)}
        dram.update({("W",) + idx: float(v) for idx, v in np.ndenumerate(w)})
        return cls(M, dram)

    def output(self, layer) -> np.ndarray:
        """The output tensor (b, d, nh, nw) as DRAM holds it; a missing output is a model violation."""
        L = layer
        y = np.empty((L.b, L.d, L.nh, L.nw))
        for idx in np.ndindex(y.shape):
            key = ("Y",) + idx
            if key not in self.dram:
                raise ModelViolation(f"output {key!r} was never stored to DRAM")
            y[idx] = self.dram[key]
        return y
