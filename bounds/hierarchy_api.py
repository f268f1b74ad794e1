"""Energy bounds of a layer on a real architecture, in pJ: the floor, a real schedule, and their gap.

``evaluate_hierarchy`` pairs the hierarchy-aware lower bound (bounds/hierarchy.py,
docs/hierarchy.md) with the best nested-tiling schedule found on the same architecture
(bounds/nested.py, docs/dataflow_nested.md); ``evaluate_hierarchy_network`` does it for
every layer of a network and sums them.  What the CLI prints under the key
``hierarchy`` (``energy-complexity bounds --arch ARCH --json``) is ``to_json()``.
"""

from __future__ import annotations

from dataclasses import dataclass

from bounds.hierarchy import HierarchyBound, hierarchy_lower_bound
from bounds.result import InfeasibleError
from complexity.architecture import Architecture
from complexity.layer import Layer

__all__ = ["HierarchyBounds", "HierarchyNetworkBounds", "evaluate_hierarchy", "evaluate_hierarchy_network"]

#: What every number of this module is: energy of the named architecture, in pJ.
E_UNIT = "pJ"


@dataclass(frozen=True)
class HierarchyBounds:
    """Lower bound and best nested schedule of one layer on one architecture (energies in pJ).

    ``upper`` is None when no nested schedule fits (``infeasible`` says why); ``gap`` is
    upper / lower (nan then).
    """

    layer: Layer
    arch: Architecture
    lower: HierarchyBound
    upper: object | None
    infeasible: str = ""

    @property
    def gap(self) -> float:
        return float("nan") if self.upper is None else self.upper.E_pJ / self.lower.E_pJ

    def to_json(self) -> dict:
        """Keys: arch, machine_kind, E_unit, lower_bound {E_pJ, levels}, upper_bound {E_pJ, levels, tiles} or null, gap."""
        out = {"arch": self.arch.name, "machine_kind": "architecture", "E_unit": E_UNIT,
               "lower_bound": self.lower.to_json(),
               "upper_bound": None if self.upper is None else self.upper.to_json(),
               "gap": None if self.upper is None else self.gap}
        if self.infeasible:
            out["infeasible"] = self.infeasible
        return out

    def __repr__(self) -> str:
        ub = "infeasible" if self.upper is None else f"{self.upper.E_pJ:.4g} pJ (gap {self.gap:.3f}x)"
        return f"HierarchyBounds({self.arch.name}: floor {self.lower.E_pJ:.4g} pJ, best schedule {ub})"


def evaluate_hierarchy(layer: Layer, arch: Architecture, upper: bool = True) -> HierarchyBounds:
    """The energy floor of ``layer`` on ``arch`` and (with ``upper``) the best nested schedule found."""
    lower = hierarchy_lower_bound(layer.check_int64(), arch)
    if not upper:
        return HierarchyBounds(layer, arch, lower, None, "not computed")
    from bounds.nested import best_nested
    try:
        ub = best_nested(layer, arch)
    except InfeasibleError as exc:
        return HierarchyBounds(layer, arch, lower, None, str(exc))
    return HierarchyBounds(layer, arch, lower, ub)


@dataclass(frozen=True)
class HierarchyNetworkBounds:
    """Per-layer hierarchy bounds of a network and their sums (pJ)."""

    layers: tuple[HierarchyBounds, ...]

    @property
    def totals(self) -> dict:
        """{"lower_bound": {"E_pJ"}, "upper_bound": {"E_pJ"} or None if a layer has no schedule, "gap", "E_unit"}."""
        lo = sum(r.lower.E_pJ for r in self.layers)
        ups = [r.upper for r in self.layers]
        up = None if any(u is None for u in ups) else sum(u.E_pJ for u in ups)
        return {"lower_bound": {"E_pJ": lo}, "upper_bound": None if up is None else {"E_pJ": up},
                "gap": None if up is None else up / lo, "E_unit": E_UNIT,
                "arch": self.layers[0].arch.name if self.layers else None}


def evaluate_hierarchy_network(layers, arch: Architecture, upper: bool = True) -> HierarchyNetworkBounds:
    """``evaluate_hierarchy`` for every layer of a network."""
    return HierarchyNetworkBounds(tuple(evaluate_hierarchy(L, arch, upper=upper) for L in layers))
