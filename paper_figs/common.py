"""Shared data steps of the figures: bounds of layers (bounds.api.evaluate_table), the user's case, labels.

The two-level bounds' energies are in model units (one 16-bit MAC = eM = 1); reference
energies are in pJ.  Figures never draw one as a bound on the other: an estimate in pJ is
compared with the hierarchy floor E_LB(arch) in pJ of its platform (``reference_archs``
picks the rows an --arch describes), and with the two-level bounds only by slope
(docs/figures.md, "Units and machines").
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from complexity.layer import Layer

__all__ = ["BOUNDS", "LAYER_COLUMNS", "bound_table", "layer_table", "figure_layers", "reference_archs",
           "pj_per_mac", "short_layer", "words_label", "set_words_ticks"]

#: The bounds every figure shows, as column prefixes of bounds.api.evaluate_table.
BOUNDS = ("lb", "os", "ws", "min")

LAYER_COLUMNS = ("b", "c", "d", "h", "w", "kh", "kw", "sh", "sw", "ph", "pw", "groups")


def bound_table(df: pd.DataFrame, costs: dict) -> pd.DataFrame:
    """bounds.api.evaluate_table on ``df`` with the given per-word costs (eD, eB, eM, bits)."""
    from bounds.api import evaluate_table
    return evaluate_table(df, **costs)


def layer_table(layers: Iterable[Layer], M, costs: dict) -> pd.DataFrame:
    """bounds.api.evaluate_table for a list of Layer objects at Buffer size(s) ``M``, with a ``name`` column.

    The figures over a few chosen layers and the ones over reference rows share one
    source of numbers: evaluate_table, whose dataflow tiles are the exhaustive optimum
    for tables of realistic size (so curves never rise when M grows).  Rows where a
    dataflow has no fitting tile get inf.
    """
    from bounds.api import evaluate_table
    layers = list(layers)
    Ms = np.broadcast_to(np.asarray(M, dtype=np.int64), (len(layers),))
    df = pd.DataFrame([{c: getattr(l, c) for c in LAYER_COLUMNS} for l in layers], columns=list(LAYER_COLUMNS))
    df["M"] = Ms
    t = evaluate_table(df, exact=True, **costs)
    t.insert(0, "name", [l.name for l in layers])
    return t


def figure_layers(inputs, default_network: str) -> tuple[str, list[Layer]]:
    """(label, layers) of the user's network (``inputs.layers`` from --network / --onnx), else ``default_network``."""
    if inputs.layers:
        return inputs.layers_source or "model", list(inputs.layers)
    from complexity.zoo import get_network
    name = inputs.network or default_network
    return name, list(get_network(name))


def reference_archs(inputs, ref: pd.DataFrame) -> tuple[pd.DataFrame, dict | None]:
    """(rows, archs) for validation.hierarchy_check: the reference rows whose floor ``inputs.arch`` describes.

    Without --arch every bundled platform uses its own architecture (archs None).  With
    it, the rows are those of the platform named like the bundled architecture (its own
    architecture, resized to each row's M like the reference sweep), or of the one
    platform in the data (the architecture as given); otherwise the figure cannot tell
    which rows the architecture describes and raises FigureInputError (the user adds --platform).
    """
    from paper_figs.registry import FigureInputError
    if not inputs.arch:
        return ref, None
    plats = sorted(set(ref["platform"]))
    if inputs.arch in plats:  # the platform's own architecture, resized to each row's M as by default
        return ref.loc[ref["platform"] == inputs.arch], None
    if len(plats) == 1:
        return ref, {plats[0]: inputs.arch}
    raise FigureInputError(f"--arch {inputs.arch}: the reference data hold {len(plats)} platforms "
                           f"({', '.join(plats)}); add --platform P to say which one it describes")


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

