"""Sparsity: zero-skipping MACs and run-length coded (RLC) DRAM traffic.

Model (docs/estimation.md, "Sparsity"): zeros are independent, a fraction
``density`` of the words are non-zero.  A MAC with a zero operand is skipped with
its register-file accesses, so a fraction ``density_w * density_a`` of them remain.
Tensors cross the DRAM interface run-length coded as Eyeriss does: a pair
(run of up to 2^run_bits - 1 zeros, value) per non-zero, plus one extra pair for each
2^run_bits zeros of a longer run; coding is used only when it is smaller than the raw data.
"""

from __future__ import annotations

__all__ = ["RUN_BITS", "check_density", "rlc_factor", "mac_fraction"]

#: Width of the zero-run field of one RLC pair (Eyeriss: 5 bits).
RUN_BITS = 5


def check_density(name: str, value) -> float:
    """``value`` as a float in (0, 1], else ValueError naming ``name``."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: must be a number in (0, 1], got {value!r}") from None
    if not 0.0 < v <= 1.0:
        raise ValueError(f"{name}: must be in (0, 1] (fraction of non-zero values), got {value!r}")
    return v


def rlc_factor(density: float, bits: int, run_bits: int = RUN_BITS) -> float:
    """Expected DRAM words per raw word of a tensor with i.i.d. zeros, RLC-coded when that is smaller.

    With z = 1 - density and m = 2^run_bits, the zero run before a non-zero is geometric,
    P(L >= l) = z^l, and needs floor(L/m) extra pairs, E = z^m / (1 - z^m); so the
    expected pairs per raw word are density / (1 - z^m), each of (bits + run_bits) bits.
    The factor is non-decreasing in density and equals 1 at density 1.
    """
    d = check_density("density", density)
    m = 2 ** run_bits
    z = 1.0 - d
    pairs = d / (1.0 - z ** m) if z < 1.0 else 1.0 / m
    return min(1.0, pairs * (bits + run_bits) / bits)


def mac_fraction(density_w: float, density_a: float) -> float:
    """Fraction of MACs (and of their RF accesses) that remain after skipping zero operands."""
    return check_density("density_w", density_w) * check_density("density_a", density_a)
