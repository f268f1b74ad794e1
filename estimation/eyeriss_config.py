"""The Eyeriss-like accelerator that the energy estimator maps layers onto.

Four storage levels (DRAM, global buffer, PE array network, per-PE register
files) plus the MAC unit, each with a normalized energy per access (Yang et al.
2017; Chen et al. 2016: DRAM 200, buffer 6, array 2, RF 1, MAC 1 for 16-bit words).
See docs/estimation.md for how each level is counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from complexity.machine import REFERENCE_BITS

__all__ = ["EyerissConfig", "ConfigError", "LEVELS", "DATA_TYPES", "DEFAULT_COSTS", "scaled_costs"]

#: Storage levels, outermost first, then the compute unit.
LEVELS = ("dram", "buffer", "array", "rf", "mac")
#: Data types of the breakdown; "mac" holds the compute energy so that the breakdown sums to the total.
DATA_TYPES = ("input", "weight", "psum", "mac")
#: Normalized energy per 16-bit access (per MAC for "mac").
DEFAULT_COSTS = {"dram": 200.0, "buffer": 6.0, "array": 2.0, "rf": 1.0, "mac": 1.0}


class ConfigError(ValueError):
    """An accelerator that cannot exist; the message names the parameter."""

    def __init__(self, parameter: str, message: str):
        super().__init__(f"invalid accelerator: {parameter}: {message}")
        self.parameter = parameter


def _check_bits(bits) -> int:
    """``bits`` as an int in 1..64, else ConfigError naming ``bits``."""
    if isinstance(bits, bool) or not isinstance(bits, (int, float)) or int(bits) != bits or not 1 <= bits <= 64:
        raise ConfigError("bits", f"must be an integer from 1 to 64, got {bits!r}")
    return int(bits)


def scaled_costs(costs: dict, bits: int) -> dict:
    """Per-access costs at ``bits``-bit words: memory levels scale with bits/16, the MAC with (bits/16)^2.

    The same convention as complexity.machine.Machine: a memory access moves ``bits``
    bits, a multiplier's energy grows with the product of its operand widths.
    """
    s = _check_bits(bits) / REFERENCE_BITS
    return {k: (v * s * s if k == "mac" else v * s) for k, v in costs.items()}


@dataclass(frozen=True, kw_only=True)
class EyerissConfig:
    """PE array ``rows`` x ``cols``; per-PE register files (words) for weights, inputs and
    partial sums; global buffer words; normalized cost per access of each level.

    Defaults are Eyeriss (Chen et al., ISCA 2016 / JSSC 2017): 12 x 14 PEs, RF spads of
    224 weight, 12 input and 24 psum words, a 108 KB global buffer = 55296 16-bit words.
    Capacities are in words of the layer's bitwidth (they do not grow when bits shrink).
    """

    rows: int = 12
    cols: int = 14
    rf_weight: int = 224
    rf_input: int = 12
    rf_psum: int = 24
    glb_words: int = 108 * 1024 // 2
    costs: dict = field(default_factory=lambda: dict(DEFAULT_COSTS))

    def __post_init__(self) -> None:
        for f in ("rows", "cols", "rf_weight", "rf_input", "rf_psum", "glb_words"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f, f"must be a positive integer, got {v!r}")
        costs = dict(self.costs)
        unknown = set(costs) - set(DEFAULT_COSTS)
        if unknown:
            raise ConfigError("costs", f"unknown level(s) {sorted(unknown)}; known: {list(DEFAULT_COSTS)}")
        full = dict(DEFAULT_COSTS)
        for k, v in costs.items():
            try:
                fv = float(v)
            except (TypeError, ValueError):
                raise ConfigError(f"costs[{k}]", f"must be a number, got {v!r}") from None
            if not fv >= 0 or fv == float("inf"):
                raise ConfigError(f"costs[{k}]", f"must be a finite non-negative cost, got {v!r}")
            full[k] = fv
        object.__setattr__(self, "costs", full)

    def __hash__(self) -> int:  # dict field: hash by value
        return hash((self.rows, self.cols, self.rf_weight, self.rf_input, self.rf_psum,
                     self.glb_words, tuple(sorted(self.costs.items()))))

    def to_dict(self) -> dict:
        return {"rows": self.rows, "cols": self.cols, "rf_weight": self.rf_weight,
                "rf_input": self.rf_input, "rf_psum": self.rf_psum,
                "glb_words": self.glb_words, "costs": dict(self.costs)}
