"""The two-level memory machine: a DRAM of unbounded size and a Buffer of M words.

Energy of an execution is E = eD*Q + eB*A + eM*F (docs/theory.md, "The machine"):
Q words move between DRAM and the Buffer, A Buffer accesses, F MACs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from complexity.layer import show_value

__all__ = ["Machine", "MachineError", "EYERISS_COSTS", "REFERENCE_BITS"]


def _is_int_in(v, lo, hi) -> bool:
    """Whether v is an integral number (not a bool) with lo <= v <= hi; False for nan, None or text."""
    try:
        return not isinstance(v, bool) and int(v) == v and lo <= v <= hi
    except (TypeError, ValueError, OverflowError):
        return False

#: Normalized per-access costs of Eyeriss in 65 nm (Yang et al. 2017, Chen et al. 2016),
#: relative to one 16-bit MAC: DRAM 200, global buffer 6, MAC 1.
EYERISS_COSTS = {"eD": 200.0, "eB": 6.0, "eM": 1.0}

#: The word width (bits) at which the per-word costs above hold.
REFERENCE_BITS = 16


class MachineError(ValueError):
    """A machine that cannot exist; the message names the offending parameter."""

    def __init__(self, parameter: str, message: str):
        super().__init__(f"invalid machine: {parameter}: {message}")
        self.parameter = parameter


@dataclass(frozen=True, kw_only=True)
class Machine:
    """Buffer capacity ``M`` (words) and per-word energy costs.

    ``eD``, ``eB``, ``eM`` are the costs of one DRAM word transfer, one Buffer word
    access and one MAC at ``REFERENCE_BITS`` bits.  ``bits`` sets the word width: a
    memory access moves ``bits`` bits, so its cost scales linearly (bits/16); a
    multiplier's cost grows with the product of its operand widths, so the MAC cost
    scales quadratically ((bits/16)^2).  The ``e_dram``/``e_buf``/``e_mac``
    properties give the scaled costs that every energy formula uses.
    """

    M: int
    eD: float = EYERISS_COSTS["eD"]
    eB: float = EYERISS_COSTS["eB"]
    eM: float = EYERISS_COSTS["eM"]
    bits: int = REFERENCE_BITS

    def __post_init__(self) -> None:
        if not _is_int_in(self.M, 1, float("inf")):
            raise MachineError("M", f"Buffer capacity must be a positive integer number of words, "
                                    f"got {show_value(self.M)}")
        object.__setattr__(self, "M", int(self.M))
        for f in ("eD", "eB", "eM"):
            v = getattr(self, f)
            try:
                fv = float(v)
            except (TypeError, ValueError):
                raise MachineError(f, f"must be a number, got {show_value(v)}") from None
            if not fv >= 0 or fv == float("inf"):
                raise MachineError(f, f"must be a finite non-negative cost, got {show_value(v)}")
            object.__setattr__(self, f, fv)
        if not _is_int_in(self.bits, 1, 64):
            raise MachineError("bits", f"word width must be an integer from 1 to 64, got {show_value(self.bits)}")
        object.__setattr__(self, "bits", int(self.bits))

    @property
    def word_scale(self) -> float:
        return self.bits / REFERENCE_BITS

    @property
    def e_dram(self) -> float:
        return self.eD * self.word_scale

    @property
    def e_buf(self) -> float:
        return self.eB * self.word_scale

    @property
    def e_mac(self) -> float:
        return self.eM * self.word_scale ** 2

    def energy(self, Q, A, F):
        """E = eD*Q + eB*A + eM*F with the bitwidth-scaled costs (works on numpy arrays)."""
        return self.e_dram * Q + self.e_buf * A + self.e_mac * F

    def with_M(self, M: int) -> "Machine":
        return replace(self, M=M)
