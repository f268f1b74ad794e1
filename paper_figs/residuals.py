"""Residuals (natural log) of each platform's fit log E_ref = a + beta log B against the MACs F and Buffer size M.

One bound per platform, the one bound_vs_estimate fits in pJ where it can: the floor
E_LB(arch) of the platform's architecture (validation.hierarchy_check), else the
two-level model's LB (model units).  A bound that captures how energy scales leaves
residuals with no trend in F (layer size) or M (Buffer size).  Residuals are natural
logs, so 0.1 means the estimate is about 10% above the fitted line.  In the M panel
the platforms, which share Buffer sizes, are offset sideways by a constant factor on
the log axis (DODGE) and the figure says so; the ticks mark the true M.  Rows with a
DRAM undercount (the estimator moves an operand fewer times than used) are hollow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.lines import Line2D

from paper_figs.bound_vs_estimate import platform_fits
from paper_figs.common import reference_archs, set_words_ticks
from paper_figs.registry import FigureInputs, FigureResult, register
from paper_figs.style import OKABE_ITO, PAGE_WIDTH, new_figure, save

NAME = "residuals"
_PLATFORM_COLORS = [OKABE_ITO[k] for k in ("blue", "vermillion", "green", "orange", "purple", "sky_blue",
                                           "black", "yellow")]
_PLATFORM_MARKERS = ["o", "s", "D", "^", "v", "P", "X", "*"]
DODGE = 1.12  # factor between neighbouring platforms' x positions in the residual-vs-M panel (stated on it)


def fit_residuals(ref, costs: dict, archs: dict | None = None) -> dict:
    """Per platform: the bound fitted, F, M, undercount and the residual ln E_ref - (a + beta ln B) of its usable rows.

    "bound" is "floor" (E_LB(arch), pJ) when the platform has an architecture and its fit
    exists, else "lb" (two-level LB, model units); a platform with neither fit is left out.
    """
    from validation.regression import usable_rows
    out = {}
    for p, f in platform_fits(ref, costs, archs, bounds=("lb",)).items():
        if f["arch"] is not None and not isinstance(f["hier_fit"], Exception):
            which, fit, B = "floor", f["hier_fit"], f["hier_LB"]
            label = f"floor E_LB({f['arch']}), pJ"
        elif not isinstance(f["fits"]["lb"], Exception):
            which, fit, B = "lb", f["fits"]["lb"], f["bounds"]["lb"]
            label = "two-level LB, model units"
        else:
            continue
        ok = usable_rows(f["E_ref"], B)
        r = np.log(f["E_ref"][ok]) - (fit.intercept + fit.slope * np.log(B[ok]))
        out[p] = {"bound": which, "label": label, "fit": fit, "slope": fit.slope, "F": f["F"][ok],
                  "M": f["M"][ok], "undercount": f["undercount"][ok], "resid": r}
    return out


@register(NAME, "residuals (natural log) of each platform's log-log fit on its floor E_LB(arch) (else the "
                "two-level LB) against #MACs F and Buffer size M", needs_reference=True)
def draw(out_dir: Path, inputs: FigureInputs) -> FigureResult:
    rows, archs = reference_archs(inputs, inputs.reference)
    res = fit_residuals(rows, inputs.costs, archs)
    fig, axes = new_figure(PAGE_WIDTH, 3.1, 1, 2, sharey=True)
    n = len(res)
    for j, var in enumerate(("F", "M")):
        ax = axes.ravel()[j]
        for k, (p, per) in enumerate(res.items()):
            x = per[var]
            if var == "M":  # platforms share Buffer sizes: offset each one sideways (log axis), as stated
                x = x * DODGE ** (k - (n - 1) / 2)
            col, mk, u = _PLATFORM_COLORS[k % 8], _PLATFORM_MARKERS[k % 8], per["undercount"]
            ax.scatter(x[~u], per["resid"][~u], s=6, alpha=0.5, linewidths=0, color=col, marker=mk, zorder=2)
            ax.scatter(x[u], per["resid"][u], s=8, facecolor="none", edgecolor=col, linewidths=0.5, marker=mk,
                       zorder=2)
        ax.axhline(0, color="0.3", lw=0.8, zorder=1)
        ax.set_xscale("log")
        ax.grid(True, which="major")
        if var == "M":
            set_words_ticks(ax, np.concatenate([per["M"] for per in res.values()] or [[]]), max_ticks=10)
            if n:  # room for the outermost offset strips
                spread = 1.25 * DODGE ** ((n - 1) / 2)
                ax.set_xlim(min(per["M"].min() for per in res.values()) / spread,
                            max(per["M"].max() for per in res.values()) * spread)
            for t in ax.get_xticklabels():  # up to 10 Buffer sizes: slanted so that neighbours never touch
                t.set(fontsize=6, rotation=30, ha="right", rotation_mode="anchor")
            ax.set_xlabel("Buffer size M (words); platforms offset sideways\n"
                          "for legibility, the ticks mark the true M" if len(res) > 1 else "Buffer size M (words)")
            ax.set_title("(b) residual vs Buffer size M", loc="left")
        else:
            ax.set_xlabel("#MACs of the layer F")
            ax.set_title("(a) residual vs #MACs F", loc="left")
            ax.set_ylabel("residual ln E_ref − (a + β ln B)\n(natural log: 0.1 ≈ 10% above the fit)")
    # one legend above the panels (inside, it hides points): each platform's bound and fitted slope
    handles = [Line2D([], [], ls="none", marker=_PLATFORM_MARKERS[k % 8], markersize=4,
                      color=_PLATFORM_COLORS[k % 8], label=f"{p}: B = {per['label']}, β = {per['slope']:.2f}")
               for k, (p, per) in enumerate(res.items())]
    if any(per["undercount"].any() for per in res.values()):
        handles.append(Line2D([], [], ls="none", marker="o", markersize=4, markerfacecolor="none", color="0.3",
                              label="hollow: DRAM undercount (operand moved fewer times than used)"))
    fig.legend(handles=handles, loc="outside upper center", ncols=min(2, len(handles)), columnspacing=1.5,
               handletextpad=0.2, fontsize=6)
    paths = save(fig, out_dir, NAME)
    return FigureResult(NAME, paths, {"platforms": res})
