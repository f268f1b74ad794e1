"""Energy versus MAC count for whole zoo networks: where #MACs misleads as an energy proxy.

Each network is a point: its total MACs F against its total energy (sum over its
layers) at one Buffer size, for the lower bound and for the better dataflow per
layer.  If energy were proportional to MACs, the points would lie on one line of
constant energy per MAC; the right panel shows how far from constant that is.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from paper_figs.common import layer_table
from paper_figs.registry import FigureInputs, FigureResult, register
from paper_figs.style import BOUND_COLORS, BOUND_LABELS, BOUND_MARKERS, COLUMN_WIDTH, new_figure, place_labels, save

NAME = "energy_vs_macs"


#: Buffer size (words) without --M.
DEFAULT_M = 65536


def network_totals(names: list[str], M: int, costs: dict, extra: dict | None = None) -> dict:
    """Per network: total F, |W|, LB energy and min(OS, WS, OSL) energy (per-layer best, summed).

    ``names`` are zoo networks; ``extra`` maps further names to their layers (the user's model).
    """
    from complexity.zoo import get_network
    extra = dict(extra or {})
    F, W, lb, best = [], [], [], []
    for n in names:
        t = layer_table(extra[n] if n in extra else get_network(n), M, costs)
        F.append(float(t["F"].sum()))
        W.append(float(t["W"].sum()))
        lb.append(float(t["lb_E"].sum()))
        best.append(float(t["min_E"].sum()))
    return {"networks": list(names), "F": np.array(F), "W": np.array(W),
            "lb_E": np.array(lb), "min_E": np.array(best)}


@register(NAME, "total energy vs total MACs of the zoo networks (LB and best dataflow), and energy per MAC")
def draw(out_dir: Path, inputs: FigureInputs) -> FigureResult:
    from complexity.zoo import network_names
    names = list(network_names())
    M = inputs.M_or(DEFAULT_M)
    extra = {}
    if inputs.layers:  # the user's network (--onnx or --network) is drawn highlighted
        user = inputs.layers_source or "model"
        if user not in names:
            names.append(user)
            extra[user] = list(inputs.layers)
    elif inputs.network:
        user = inputs.network
    else:
        user = None
    d = network_totals(names, M, inputs.costs, extra)
    d["M"] = M
    d["user"] = user
    fig, axes = new_figure(COLUMN_WIDTH, 4.6, 2, 1, height_ratios=[1.3, 1])
    ax, bx = axes[0, 0], axes[1, 0]
    order = np.argsort(d["F"])
    for i in order:
        ax.plot([d["F"][i]] * 2, [d["lb_E"][i], d["min_E"][i]], color="0.6", lw=0.8, zorder=1)
    ax.scatter(d["F"], d["lb_E"], marker="_", color=BOUND_COLORS["lb"], s=70, linewidths=1.2, zorder=4,
               label=f"{BOUND_LABELS['lb']} (sum over layers)")
    ax.scatter(d["F"], d["min_E"], marker=BOUND_MARKERS["min"], color=BOUND_COLORS["min"], s=18, zorder=3,
               label="best of OS, WS, OSL per layer")
    # networks at (almost) the same point share one label
    groups, done = [], set()
    for i in order:
        if i not in done:
            same = [j for j in order if j not in done and abs(np.log10(d["F"][j] / d["F"][i])) < 0.03
                    and abs(np.log10(d["min_E"][j] / d["min_E"][i])) < 0.03]
            done.update(same)
            groups.append((i, " /\n".join(names[j] for j in same)))
    # constant energy per MAC, anchored at the median network: E proportional to F
    epm = d["min_E"] / d["F"]
    ref = float(np.median(epm))
    xs = np.array([d["F"].min() / 1.5, d["F"].max() * 1.5])
    ax.plot(xs, ref * xs, ls="--", color="0.4", lw=0.8, label=f"E ∝ #MACs ({ref:.1f} per MAC)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("#MACs per inference F")
    ax.set_ylabel("energy (model units, MAC = 1)")
    ax.set_title(f"(a) totals, two-level model, M = {M:,} words", loc="left")
    if user is not None:
        u = names.index(user)
        ax.scatter([d["F"][u]], [d["min_E"][u]], s=70, facecolor="none", edgecolor=BOUND_COLORS["ref"],
                   linewidths=1.2, zorder=5, label=f"{user} (yours)" if extra else user)
    ax.legend(loc="upper left")
    ax.grid(True, which="major")
    # (b) energy per MAC, sorted
    idx = np.argsort(epm)
    y = np.arange(len(names))
    bx.barh(y, epm[idx], color=BOUND_COLORS["min"], height=0.6, label="best of OS, WS, OSL")
    bx.scatter((d["lb_E"] / d["F"])[idx], y, marker="|", s=60, color=BOUND_COLORS["lb"], zorder=3,
               label="LB")
    bx.set_yticks(y, [names[i] for i in idx])
    if user is not None:
        for t in bx.get_yticklabels():
            if t.get_text() == user:
                t.set_fontweight("bold")
                t.set_color(BOUND_COLORS["ref"])
    bx.set_xlabel("energy per MAC (model units)")
    bx.set_title(f"(b) energy per MAC: spread {epm.max() / epm.min():.2f}x", loc="left")
    bx.legend(loc="lower right")
    bx.grid(True, axis="x")
    d["energy_per_mac"] = epm
    # labels last: the constrained layout is final once every other artist exists
    place_labels(ax, [d["F"][i] for i, _ in groups], [d["min_E"][i] for i, _ in groups],
                 [t for _, t in groups])
    paths = save(fig, out_dir, NAME)
    return FigureResult(NAME, paths, d)
