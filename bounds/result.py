"""The result of a bound or a dataflow for one layer on one machine."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Cost", "InfeasibleError"]


@dataclass(frozen=True)
class Cost:
    """DRAM traffic ``Q`` (words), Buffer accesses ``A``, MACs ``F``, energy ``E``.

    ``tiles`` holds the tile sizes of a dataflow (None for the lower bound);
    ``parts`` holds named terms that explain the number (e.g. the compulsory and
    capacity terms of the lower bound).
    """

    Q: int
    A: int
    F: int
    E: float
    tiles: dict | None = None
    parts: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        out = {"Q": int(self.Q), "A": int(self.A), "F": int(self.F), "E": float(self.E)}
        if self.tiles is not None:
            out["tiles"] = {k: int(v) for k, v in self.tiles.items()}
        if self.parts:
            out["parts"] = {k: (int(v) if float(v).is_integer() else float(v)) for k, v in self.parts.items()}
        return out


class InfeasibleError(ValueError):
    """No tile of a dataflow fits in the Buffer; the message names M and the minimum it needs."""

    def __init__(self, dataflow: str, M: int, M_min: int):
        super().__init__(f"invalid machine: M: Buffer of {M} words is too small for the smallest "
                         f"{dataflow} tile, which needs {M_min} words")
        self.parameter = "M"
        self.dataflow = dataflow
        self.M_min = M_min
