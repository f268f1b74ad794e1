"""Per-layer energies of one zoo network: LB, OS, WS and the reference estimate, and a breakdown.

Top: one group of bars per layer (lower bound, output-stationary, weight-stationary)
with the reference estimate as a marker where the reference data hold that layer.
Bottom: the energy of the better dataflow per layer split into DRAM (eD Q), Buffer
(eB A) and MAC (eM F).  When reference rows of the network exist, their platform's
Buffer size is used and bounds are converted to pJ with its MAC energy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from complexity.layer import Layer
from complexity.machine import Machine
from paper_figs.common import LAYER_COLUMNS, energy_unit, layer_table, pj_per_mac
from paper_figs.registry import FigureInputs, FigureResult, register
from paper_figs.style import BOUND_COLORS, BOUND_LABELS, BOUND_MARKERS, PAGE_WIDTH, new_figure, save

NAME = "network_layers"
#: Network drawn when the reference data hold none of the zoo networks.
DEFAULT_NETWORK = "vgg16"
#: Platform drawn when several hold the network's layers equally (the default costs eD, eB, eM are Eyeriss's).
PREFERRED_PLATFORM = "eyeriss_like"


def _norm(s) -> str:
    return "".join(ch for ch in str(s).lower() if ch.isalnum())


def match_reference(layers, rows: pd.DataFrame | None, network: str = "") -> np.ndarray:
    """Reference energy (pJ) per layer, or NaN where the rows do not hold it.

    A row matches a layer by name within ``network`` (the ``network`` and ``layer_name``
    columns), else by shape: reference datasets often keep one row per distinct shape,
    tagged with the first network that has it.
    """
    out = np.full(len(layers), np.nan)
    if rows is None or len(rows) == 0:
        return out
    shapes = rows.loc[:, list(LAYER_COLUMNS)].to_numpy(dtype=np.int64)
    e = rows["energy_pJ"].to_numpy(dtype=float)
    named = None
    if "layer_name" in rows.columns and "network" in rows.columns:
        in_net = (rows["network"].map(_norm) == _norm(network)).to_numpy()
        named = np.where(in_net, rows["layer_name"].astype(str).to_numpy(), None)
    for i, l in enumerate(layers):
        hit = np.flatnonzero(named == l.name) if named is not None and l.name else np.array([], int)
        if hit.size == 0:
            key = np.array([getattr(l, c) for c in LAYER_COLUMNS])
            hit = np.flatnonzero((shapes == key).all(axis=1))
        if hit.size:
            out[i] = e[hit[0]]
    return out


def pick_network(ref: pd.DataFrame | None, names: list[str], wanted: str | None):
    """(network, platform or None, that platform's rows at its usual M, or None).

    ``wanted`` wins if given, else DEFAULT_NETWORK if the reference holds at least half
    of its layers, else the network with the largest share of its layers in the reference.  The platform is the
    one whose rows at its most common Buffer size M match most of the network's layers
    (PREFERRED_PLATFORM on ties).
    """
    from complexity.zoo import get_network
    if wanted is not None and wanted not in names:
        raise KeyError(f"unknown network {wanted!r}; known: {', '.join(names)}")
    if ref is None or len(ref) == 0:
        return wanted or DEFAULT_NETWORK, None, None
    candidates = {}
    groups = dict(list(ref.groupby("platform", sort=True)))
    # on equal shares the platform whose energy ratios the model's default costs follow wins
    for plat in sorted(groups, key=lambda p: p != PREFERRED_PLATFORM):
        rows = groups[plat]
        M = rows["M"].value_counts().index[0]  # the platform's usual Buffer size
        candidates[plat] = rows.loc[rows["M"] == M]
    best = {}  # network -> (share of its layers matched, platform)
    for net in ([wanted] if wanted else names):
        layers = get_network(net)
        for plat, rows in candidates.items():
            k = float(np.isfinite(match_reference(layers, rows, net)).mean())
            if k > best.get(net, (0.0, None))[0]:
                best[net] = (k, plat)
    if wanted:
        net = wanted
    elif best.get(DEFAULT_NETWORK, (0.0,))[0] >= 0.5:
        net = DEFAULT_NETWORK
    elif best:
        net = max(best, key=lambda n: (best[n][0], len(get_network(n))))
    else:
        net = DEFAULT_NETWORK
    if net not in best:
        return net, None, None
    plat = best[net][1]
    return net, str(plat), candidates[plat]


def layer_energies(layers, M: int, costs: dict) -> dict:
    """Per layer: LB, OS, WS energies, and the best dataflow's DRAM/Buffer/MAC energy split."""
    t = layer_table(layers, M, costs)
    mach = Machine(M=M, **costs)
    use_os = (t["os_E"] <= t["ws_E"]).to_numpy()
    Q = np.where(use_os, t["os_Q"], t["ws_Q"]).astype(float)
    A = np.where(use_os, t["os_A"], t["ws_A"]).astype(float)
    F = t["F"].to_numpy(dtype=float)
    return {"names": [l.name for l in layers], "lb_E": t["lb_E"].to_numpy(dtype=float),
            "os_E": t["os_E"].to_numpy(dtype=float), "ws_E": t["ws_E"].to_numpy(dtype=float),
            "min_E": t["min_E"].to_numpy(dtype=float), "best": np.where(use_os, "OS", "WS"),
            "dram_E": mach.e_dram * Q, "buffer_E": mach.e_buf * A, "mac_E": mach.e_mac * F, "F": F}


@register(NAME, "per-layer LB, OS, WS and reference energy of a zoo network, and the best dataflow's "
                "DRAM/Buffer/MAC breakdown")
def draw(out_dir: Path, inputs: FigureInputs) -> FigureResult:
    from complexity.zoo import get_network, network_names
    net, plat, rows = pick_network(inputs.reference, list(network_names()), inputs.network)
    layers = list(get_network(net))
    M = int(rows["M"].iloc[0]) if rows is not None else inputs.M
    d = layer_energies(layers, M, inputs.costs)
    d.update(network=net, platform=plat, M=M, ref_E=match_reference(layers, rows, net))
    scale = None
    if rows is not None:
        F_rows = [Layer(**{c: int(r[c]) for c in LAYER_COLUMNS}).F for _, r in rows.iterrows()]
        scale = pj_per_mac(rows, np.array(F_rows, dtype=float))
    d["scale"] = scale
    s = scale if scale is not None else 1.0
    notes = []
    if rows is None:
        notes.append(f"no rows of {net} in {inputs.source}: bounds only, no reference bars")
    n = len(layers)
    fig, axes = new_figure(PAGE_WIDTH, 4.4, 2, 1, sharex=True)
    ax, bx = axes[0, 0], axes[1, 0]
    x = np.arange(n)
    wdt = 0.27
    for j, b in enumerate(("lb", "os", "ws")):
        ax.bar(x + (j - 1) * wdt, d[f"{b}_E"] * s, width=wdt, color=BOUND_COLORS[b], label=BOUND_LABELS[b],
               edgecolor="black" if b == "lb" else "none", linewidth=0.3)
    if np.isfinite(d["ref_E"]).any():
        ax.scatter(x, d["ref_E"], marker=BOUND_MARKERS["ref"], color=BOUND_COLORS["ref"], s=30, zorder=4,
                   edgecolor="black", linewidth=0.3, label=f"reference ({plat})")
    ax.set_yscale("log")
    ax.set_ylabel(f"energy ({energy_unit(scale)})" if scale is None
                  else f"energy (pJ; bounds at\n{scale:.3g} pJ/MAC)")
    where = f", {plat}" if plat else ""
    ax.set_title(f"(a) {net}, M = {M:,} words{where}: bounds per layer", loc="left")
    hs, ls = ax.get_legend_handles_labels()
    order = sorted(range(len(ls)), key=lambda i: ls[i].startswith("reference"))  # bounds first
    ax.legend([hs[i] for i in order], [ls[i] for i in order], ncols=4, loc="upper right")
    lo, hi = ax.get_ylim()
    ax.set_ylim(lo, hi * (hi / lo) ** 0.25)  # head room for the legend
    ax.grid(True, axis="y", which="major")
    bottom = np.zeros(n)
    for part, label in (("dram", "DRAM  eD·Q"), ("buffer", "Buffer  eB·A"), ("mac", "MAC  eM·F")):
        v = d[f"{part}_E"] * s
        bx.bar(x, v, bottom=bottom, width=0.7, color=BOUND_COLORS[part], label=label,
               edgecolor="black", linewidth=0.2)
        bottom += v
    bx.set_ylabel(f"energy ({energy_unit(scale)})" if scale is None else f"energy (pJ at\n{scale:.3g} pJ/MAC)")
    bx.set_title("(b) breakdown of the better dataflow per layer (letter above bar)", loc="left")
    for i in range(n):
        bx.text(x[i], bottom[i], d["best"][i][0], ha="center", va="bottom", fontsize=5)
    bx.legend(ncols=3, loc="upper right")
    bx.grid(True, axis="y")
    bx.ticklabel_format(axis="y", style="sci", scilimits=(0, 0), useMathText=True)
    bx.set_xticks(x, d["names"], rotation=90, fontsize=5.5 if n > 20 else 6.5)
    bx.set_xlim(-0.7, n - 0.3)
    bx.set_ylim(0, bottom.max() * 1.25)
    paths = save(fig, out_dir, NAME)
    return FigureResult(NAME, paths, d, notes=tuple(notes))
