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

    def row(self) -> dict:
        """One flat row: name, layer fields, F, W, total, energy_per_mac, energy by level and by data
        type (``level_*``, ``data_*``), the mapping (``map_*``), densities, bits, search_exact."""
        L = self.layer
        row = {"name": L.name, **{f: getattr(L, f) for f in _LAYER_FIELDS}, "F": L.F, "W": L.W,
               "total": float(self.total), "energy_per_mac": self.energy_per_mac}
        row.update({f"level_{k}": float(v) for k, v in self.by_level.items()})
        row.update({f"data_{k}": float(v) for k, v in self.by_data.items()})
        row.update({f"map_{k}": v for k, v in self.mapping.to_dict().items()})
        row.update({"density_w": self.density_w, "density_a": self.density_a, "bits": self.bits,
                    "search_exact": self.search_exact})
        return row

    def to_frame(self):
        """A one-row pandas DataFrame (the columns of ``row``)."""
        import pandas as pd
        return pd.DataFrame([self.row()])

    def _summary(self) -> str:
        top = max(self.by_level, key=self.by_level.get)
        return (f"{self.layer.describe()}: E={self.total:.6g} ({self.energy_per_mac:.3g}/MAC), "
                f"largest share {top} {self.by_level[top] / self.total:.0%}")

    def __repr__(self) -> str:
        return f"LayerEstimate({self._summary()})"

    def _repr_html_(self) -> str:
        return _html(f"LayerEstimate: {self._summary()}", self.to_frame())


def _html(title: str, frame) -> str:
    """Notebook HTML: a bold one-line summary above the table."""
    from html import escape
    return f"<div><p><b>{escape(title)}</b></p>{frame.to_html(index=False, max_rows=40)}</div>"


_LAYER_FIELDS = ("b", "c", "d", "h", "w", "kh", "kw", "sh", "sw", "ph", "pw", "groups")


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

    def __iter__(self):
        """One flat dict per layer (``LayerEstimate.row``), so ``pd.DataFrame(network_estimate)`` works."""
        return (le.row() for le in self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def to_frame(self, totals: bool = False):
        """A pandas DataFrame, one row per layer (``LayerEstimate.row``); ``totals`` adds a TOTAL row of sums."""
        import pandas as pd
        rows = [le.row() for le in self.layers]
        if totals:
            tot = {"name": "TOTAL", "F": self.macs, "W": self.weights, "total": float(self.total),
                   "energy_per_mac": self.energy_per_mac}
            tot.update({f"level_{k}": float(v) for k, v in self.by_level.items()})
            tot.update({f"data_{k}": float(v) for k, v in self.by_data.items()})
            rows.append(tot)
        return pd.DataFrame(rows)

    def _summary(self) -> str:
        return (f"{len(self.layers)} layers, E={self.total:.6g}, {self.energy_per_mac:.3g}/MAC, "
                f"{self.macs:,} MACs, {self.weights:,} weights")

    def __repr__(self) -> str:
        return f"NetworkEstimate({self._summary()})"

    def _repr_html_(self) -> str:
        cols = ["name", "F", "total", "energy_per_mac"] + [f"level_{k}" for k in self.by_level]
        return _html(f"NetworkEstimate: {self._summary()}", self.to_frame(totals=True)[cols])


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
