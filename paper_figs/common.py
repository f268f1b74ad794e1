"""Shared data steps of the figures: bounds of layers (exact or vectorized), unit conversion, labels.

The bounds' energies are in model units (one 16-bit MAC = eM = 1); reference
energies are in pJ.  To draw both on one axis, a bound is converted to pJ with the
platform's own MAC energy (reference ``energy_mac_pJ`` / F, median over rows);
without that column the figures stay in model units and say so (docs/figures.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

import numpy as np
import pandas as pd

from complexity.layer import Layer
from complexity.machine import Machine

__all__ = ["BOUNDS", "LAYER_COLUMNS", "bound_table", "exact_table", "exact_bounds",
           "pj_per_mac", "energy_unit", "short_layer", "words_label", "set_words_ticks"]

#: The bounds every figure shows, as column prefixes of bounds.api.evaluate_table.
BOUNDS = ("lb", "os", "ws", "min")

LAYER_COLUMNS = ("b", "c", "d", "h", "w", "kh", "kw", "sh", "sw", "ph", "pw", "groups")


def bound_table(df: pd.DataFrame, costs: dict) -> pd.DataFrame:
    """bounds.api.evaluate_table on ``df`` with the given per-word costs (eD, eB, eM, bits)."""
    from bounds.api import evaluate_table
    return evaluate_table(df, **costs)


@lru_cache(maxsize=4096)
def exact_bounds(layer: Layer, M: int, eD: float = 200.0, eB: float = 6.0, eM: float = 1.0,
                 bits: int = 16) -> dict:
    """{"lb", "os", "ws"} -> Cost (or None if no tile fits) from the exact integer tile search.

    bounds.api.evaluate when every dataflow fits; otherwise the same functions one by
    one, so that a dataflow without a fitting tile does not hide the others.
    """
    from bounds.api import evaluate
    from bounds.lower_bound import lower_bound
    from bounds.output_stationary import os_best
    from bounds.result import InfeasibleError
    from bounds.weight_stationary import ws_best
    machine = Machine(M=int(M), eD=eD, eB=eB, eM=eM, bits=bits)
    try:
        r = evaluate(layer, machine)
        return {"lb": r.lower_bound, "os": r.os, "ws": r.ws}
    except InfeasibleError:
        out = {"lb": lower_bound(layer, machine)}
        for key, fn in (("os", os_best), ("ws", ws_best)):
            try:
                out[key] = fn(layer, machine)
            except InfeasibleError:
                out[key] = None
        return out


def exact_table(layers: Iterable[Layer], M, costs: dict) -> pd.DataFrame:
    """The columns of bounds.api.evaluate_table (F, X, W, Y, lb_*, os_*, ws_*, min_*) from exact_bounds.

    Figures over a few layers use the exact integer tile search (bounds.api.evaluate)
    rather than the fast vectorized candidate search of evaluate_table, so that their
    dataflow curves are the true best tiles (e.g. never rise when M grows).  Rows
    where a dataflow has no fitting tile get inf, as in evaluate_table.
    """
    layers = list(layers)
    Ms = np.broadcast_to(np.asarray(M, dtype=np.int64), (len(layers),))
    recs = []
    for layer, m in zip(layers, Ms):
        r = exact_bounds(layer, int(m), **costs)
        rec = {"name": layer.name, "M": int(m), "F": layer.F, "X": layer.X, "W": layer.W, "Y": layer.Y}
        for key in ("lb", "os", "ws"):
            c = r[key]
            for x in ("Q", "A", "E"):
                rec[f"{key}_{x}"] = float(getattr(c, x)) if c is not None else np.inf
        best = "os" if rec["os_E"] <= rec["ws_E"] else "ws"
        for x in ("Q", "A", "E"):
            rec[f"min_{x}"] = rec[f"{best}_{x}"]
        recs.append(rec)
    return pd.DataFrame(recs)


def pj_per_mac(ref: pd.DataFrame, F) -> float | None:
    """The platform's energy of one MAC in pJ: median of energy_mac_pJ / F, or None if unknown."""
    if "energy_mac_pJ" not in ref.columns:
        return None
    e = pd.to_numeric(ref["energy_mac_pJ"], errors="coerce").to_numpy(dtype=float)
    ratio = e / np.asarray(F, dtype=float)
    ratio = ratio[np.isfinite(ratio) & (ratio > 0)]
    return float(np.median(ratio)) if ratio.size else None


def short_layer(layer: Layer) -> str:
    """A compact title for a layer, e.g. "conv3x3 c=64 d=64 56x56 s2" or "FC 4096->1000 b=16"."""
    if layer.is_fc:
        s = f"FC {layer.c}→{layer.d}"
    else:
        s = f"conv{layer.kh}x{layer.kw} c={layer.c} d={layer.d} {layer.h}x{layer.w}"
        if (layer.sh, layer.sw) != (1, 1):
            s += f" s{layer.sh}" if layer.sh == layer.sw else f" s{layer.sh}x{layer.sw}"
        if layer.groups > 1:
            s += f" g={layer.groups}"
    if layer.b > 1:
        s += f" b={layer.b}"
    return f"{layer.name}: {s}" if layer.name else s


def words_label(m) -> str:
    """A Buffer size in words with a binary prefix: 65536 -> "64 Ki", 2097152 -> "2 Mi"."""
    m = int(m)
    for shift, unit in ((30, "Gi"), (20, "Mi"), (10, "Ki")):
        if m >= 1 << shift and m % (1 << shift) == 0:
            return f"{m >> shift} {unit}"
    return f"{m:,}"


def set_words_ticks(ax, values, max_ticks: int = 8) -> None:
    """Label a log x axis at each distinct Buffer size (when few) with words_label."""
    u = np.unique(np.asarray(values, dtype=np.int64))
    if 0 < u.size <= max_ticks:
        ax.set_xticks(u, [words_label(v) for v in u])
        ax.minorticks_off()
        lo, hi = u[0] / 1.25, u[-1] * 1.25  # keep the edge strips off the spines
        ax.set_xlim(lo, hi)


def energy_unit(scale: float | None) -> str:
    """Axis-label unit of a bound converted with ``pj_per_mac`` (or left in model units)."""
    return "pJ" if scale is not None else "model units, MAC = 1"
