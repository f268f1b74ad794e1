"""Mapping gap: how far each estimator's mapping is from the energy floor of its platform, in pJ.

(a) E_ref / E_LB(arch) per reference row against the layer's MACs, one colour per
platform; the floor is the line at 1 (validation.hierarchy_check; docs/hierarchy.md).
Rows where the estimator moves an operand fewer times from DRAM than the layer uses it
(an undercount) are drawn hollow at their gap, with a tick at the gap once the missing
words are added.  (b) Where the estimator's energy goes, summed over each platform's
rows (DRAM, on-chip memories, MACs, as % of its total) and the floor's total on the same
scale (the floor's terms price whole moves across boundaries, so it has no per-level split).
With --arch the floor is that architecture's, for the rows of the platform it describes
(paper_figs.common.reference_archs).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from paper_figs.registry import FigureInputs, FigureResult, register
from paper_figs.style import BOUND_COLORS, OKABE_ITO, PAGE_WIDTH, new_figure, save

NAME = "mapping_gap"

_PLATFORM_COLORS = (OKABE_ITO["blue"], OKABE_ITO["vermillion"], OKABE_ITO["green"], OKABE_ITO["orange"],
                    OKABE_ITO["purple"], OKABE_ITO["sky_blue"], OKABE_ITO["black"])
_PLATFORM_MARKERS = ("o", "s", "D", "^", "v", "P", "X")
PARTS = ("DRAM", "on-chip", "MAC")



def energy_parts(ref, rows) -> dict:
    """{platform: {"ref": {part: pJ}, "floor": pJ}} summed over the platform's rows.

    The estimator's energy split into DRAM (energy_dram_pJ), MAC (energy_mac_pJ) and the
    rest (on-chip memories); the floor only as a total: its boundary terms price whole
    moves (a DRAM read and the on-chip write it feeds together), so they do not split by
    memory level.
    """
    sub = ref.loc[rows.index]
    out = {}
    for p in sorted(set(rows["platform"])):
        m = (rows["platform"] == p).to_numpy()
        g = sub[m]
        dram, mac = g["energy_dram_pJ"].astype(float).sum(), g["energy_mac_pJ"].astype(float).sum()
        out[p] = {"ref": {"DRAM": float(dram), "on-chip": float(g["energy_pJ"].sum() - dram - mac),
                          "MAC": float(mac)},
                  "floor": float(rows.loc[m, "hier_LB"].sum())}
    return out


@register(NAME, "mapping gap E_ref / E_LB(arch) (pJ / pJ) per row and platform, and where the energy goes",
          needs_reference=True)
def draw(out_dir: Path, inputs: FigureInputs) -> FigureResult:
    from validation.hierarchy_check import hierarchy_rows

    from paper_figs.common import reference_archs
    ref, archs = reference_archs(inputs, inputs.reference)
    ref = ref.reset_index(drop=True)
    rows = hierarchy_rows(ref, archs)
    if not len(rows):
        return FigureResult(NAME, skipped="no row of the reference data has an architecture "
                                          "(bundled platforms only; see validate --arch)")
    from complexity.layer import Layer
    from validation.reference_data import LAYER_COLUMNS
    macs = np.array([Layer(**{f: int(r[f]) for f in LAYER_COLUMNS}).F
                     for _, r in ref.loc[rows.index, list(LAYER_COLUMNS)].iterrows()], dtype=float)
    plats = sorted(set(rows["platform"]))
    fig, axes = new_figure(PAGE_WIDTH, 3.0, 1, 2, width_ratios=(1.35, 1))
    ax, bx = axes.ravel()
    data = {"platforms": {}}
    for k, p in enumerate(plats):
        m = (rows["platform"] == p).to_numpy()
        g = rows[m]
        col, mk = _PLATFORM_COLORS[k % len(_PLATFORM_COLORS)], _PLATFORM_MARKERS[k % len(_PLATFORM_MARKERS)]
        under = (g["undercount"] != "").to_numpy()
        x, y = macs[m], g["gap"].to_numpy()
        ax.scatter(x[~under], y[~under], s=6, marker=mk, color=col, alpha=0.55, linewidths=0,
                   label=f"{p} (median {np.median(y):.2f})", zorder=2)
        if under.any():
            ax.scatter(x[under], y[under], s=9, marker=mk, facecolor="none", edgecolor=col, linewidths=0.6,
                       zorder=2)
            ax.scatter(x[under], g["gap_corrected"].to_numpy()[under], s=9, marker="_", color=col,
                       linewidths=0.8, zorder=2)
        data["platforms"][p] = {"F": x, "gap": y, "undercount": under,
                                "gap_corrected": g["gap_corrected"].to_numpy()}
    ax.axhline(1.0, color=BOUND_COLORS["lb"], lw=1.0, zorder=3)
    ax.text(0.99, 0.985, "floor: E_ref = E_LB(arch) ", transform=ax.get_yaxis_transform(), ha="right", va="top",
            fontsize=6)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("MACs of the layer F")
    ax.set_ylabel("mapping gap E_ref / E_LB(arch)  (pJ / pJ)")
    ax.set_title("(a) each estimate over its platform's floor", loc="left")
    ax.grid(True, which="major")
    ax.legend(loc="upper right", fontsize=6, markerscale=1.6, handletextpad=0.2, borderpad=0.2,
              title="hollow: input undercount (tick: corrected)", title_fontsize=5.5, framealpha=0.85)
    parts = energy_parts(ref, rows)
    data["parts"] = parts
    colors = {"DRAM": BOUND_COLORS["dram"], "on-chip": BOUND_COLORS["buffer"], "MAC": BOUND_COLORS["mac"]}
    for k, p in enumerate(plats):
        total = sum(parts[p]["ref"].values())
        bottom = 0.0
        for part in PARTS:
            share = parts[p]["ref"][part] / total * 100
            bx.bar(k, share, 0.6, bottom=bottom, color=colors[part], edgecolor="0.25", linewidth=0.4,
                   label=part if k == 0 else None)
            bottom += share
        f = parts[p]["floor"] / total * 100
        bx.plot([k - 0.38, k + 0.38], [f, f], color=BOUND_COLORS["lb"], lw=1.6,
                label="floor E_LB(arch)" if k == 0 else None)
        bx.text(k, 101, f"{total / 1e9:.3g} mJ", ha="center", va="bottom", fontsize=5.5)
    bx.set_xticks(range(len(plats)))
    bx.set_xticklabels([p.replace("_like", "") for p in plats], fontsize=6)
    bx.set_ylim(0, 130)
    bx.set_ylabel("% of the estimator's energy (all rows)")
    bx.set_title("(b) where the estimate's energy goes; the floor", loc="left")
    bx.legend(loc="upper center", fontsize=5.5, ncol=4, handlelength=1.0, columnspacing=0.5, borderpad=0.2)
    paths = save(fig, out_dir, NAME)
    return FigureResult(NAME, paths, data)
