"""Per-layer and per-network energy estimates in the style of Yang et al. (Asilomar 2017).

energy = computation + data movement, data movement = sum over levels of accesses x cost
per access, with the accesses of the least-energy row-stationary mapping
(estimation.row_stationary).  docs/estimation.md gives the model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Iterable

from complexity.layer import Layer
from estimation.eyeriss_config import DATA_TYPES, LEVELS, EyerissConfig, _check_bits, scaled_costs
from estimation.row_stationary import RSMapping, access_counts, search_mapping
from estimation.sparsity import check_density

__all__ = ["LayerEstimate", "NetworkEstimate", "estimate_layer", "estimate_network"]


@dataclass(frozen=True)
class LayerEstimate:
    """Energy of one layer (normalized units: one 16-bit MAC = 1) and where it goes.

    ``by_level`` has keys dram, buffer, array, rf, mac; ``by_data`` has input, weight,
    psum (outputs and partial sums) and mac (compute); each sums to ``total``.
    ``counts`` holds the accesses per level and data type of ``mapping``.
    """

    layer: Layer
    total: float
    by_level: dict
    by_data: dict
    mapping: RSMapping
    counts: dict
    macs: float
    density_w: float = 1.0
    density_a: float = 1.0
    bits: int = 16
    search_exact: bool = True

    @property
    def name(self) -> str:
        return self.layer.name

    @property
    def energy_per_mac(self) -> float:
        """Energy per dense MAC of the layer (its F, padding MACs included)."""
        return self.total / self.layer.F

    def to_dict(self) -> dict:
        return {"name": self.layer.name, "total": self.total, "by_level": dict(self.by_level),
                "by_data": dict(self.by_data), "macs": self.layer.F, "weights": self.layer.W,
                "energy_per_mac": self.energy_per_mac, "mapping": self.mapping.to_dict(),
                "counts": {lv: dict(r) for lv, r in self.counts.items()},
                "density_w": self.density_w, "density_a": self.density_a, "bits": self.bits,
                "search_exact": self.search_exact, "layer": self.layer.to_dict()}

    def to_json(self, **kw) -> str:
        return json.dumps(self.to_dict(), **kw)


@dataclass(frozen=True)
class NetworkEstimate:
    """The estimates of a network's layers and their sums."""

    layers: tuple
    total: float
    by_level: dict
    by_data: dict
    macs: int = field(default=0)
    weights: int = field(default=0)

    @property
    def energy_per_mac(self) -> float:
        return self.total / self.macs

    @property
    def energy_per_weight(self) -> float:
        return self.total / self.weights

    def to_dict(self) -> dict:
        return {"layers": [le.to_dict() for le in self.layers], "total": self.total,
                "by_level": dict(self.by_level), "by_data": dict(self.by_data), "macs": self.macs,
                "weights": self.weights, "energy_per_mac": self.energy_per_mac,
                "energy_per_weight": self.energy_per_weight}

    def to_json(self, **kw) -> str:
        return json.dumps(self.to_dict(), **kw)


def estimate_layer(layer: Layer, config: EyerissConfig = EyerissConfig(), density_w: float = 1.0,
                   density_a: float = 1.0, bits: int = 16) -> LayerEstimate:
    """Least energy of ``layer`` over row-stationary mappings on ``config``.

    ``density_w`` / ``density_a``: fractions of non-zero weights / activations, in (0, 1];
    ``bits``: word width (memory costs x bits/16, MAC cost x (bits/16)^2).
    """
    dw = check_density("density_w", density_w)
    da = check_density("density_a", density_a)
    bits = _check_bits(bits)
    mapping, exact = search_mapping(layer, config, dw, da, bits)
    ac = access_counts(layer, config, mapping, dw, da, bits)
    total, by_level, by_data = ac.energy(scaled_costs(config.costs, bits))
    return LayerEstimate(layer=layer, total=total, by_level=by_level, by_data=by_data, mapping=mapping,
                         counts=ac.counts, macs=ac.macs, density_w=dw, density_a=da, bits=bits,
                         search_exact=exact)


def estimate_network(layers: Iterable[Layer], config: EyerissConfig = EyerissConfig(), density_w: float = 1.0,
                     density_a: float = 1.0, bits: int = 16) -> NetworkEstimate:
    """``estimate_layer`` for each layer, and the totals (layers run one after another)."""
    ests = tuple(estimate_layer(l, config, density_w, density_a, bits) for l in layers)
    if not ests:
        raise ValueError("layers: no layer to estimate")
    by_level = {lv: sum(e.by_level[lv] for e in ests) for lv in LEVELS}
    by_data = {dt: sum(e.by_data[dt] for e in ests) for dt in DATA_TYPES}
    return NetworkEstimate(layers=ests, total=sum(e.total for e in ests), by_level=by_level, by_data=by_data,
                           macs=sum(e.layer.F for e in ests), weights=sum(e.layer.W for e in ests))
