"""Residuals of the asymptotic fit log E_ref = a + beta log B against MAC count F and Buffer size M.

A bound that captures how energy scales leaves residuals with no trend in F (layer
size) or M (Buffer size).  One fit per platform (validation.regression.fit_loglog);
rows for the lower bound and for min(OS, WS); residuals are natural logs, so 0.1
means the reference is about 10% above the fitted line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.lines import Line2D

from paper_figs.bound_vs_estimate import platform_fits
from paper_figs.common import set_words_ticks
from paper_figs.registry import FigureInputs, FigureResult, register
from paper_figs.style import BOUND_LABELS, OKABE_ITO, PAGE_WIDTH, new_figure, save

NAME = "residuals"
ROWS = ("lb", "min")
_PLATFORM_COLORS = [OKABE_ITO[k] for k in ("blue", "vermillion", "green", "orange", "purple", "sky_blue",
                                           "black", "yellow")]
_PLATFORM_MARKERS = ["o", "s", "D", "^", "v", "P", "X", "*"]
DODGE = 1.18  # factor between neighbouring platforms' x positions in the residual-vs-M panels


def fit_residuals(ref, costs: dict) -> dict:
    """Per platform and bound: F, M and the residual ln E_ref - (a + beta ln B) of the usable rows."""
    out = {}
    for p, f in platform_fits(ref, costs).items():
        F, M = f["F"], f["M"]
        out[p] = {}
        for b in ROWS:
            fit, B = f["fits"][b], f["bounds"][b]
            if isinstance(fit, Exception):
                continue
            ok = np.isfinite(B) & (B > 0)
            r = np.log(f["E_ref"][ok]) - (fit.intercept + fit.slope * np.log(B[ok]))
            out[p][b] = {"F": F[ok], "M": M[ok], "resid": r, "slope": fit.slope}
    return out


@register(NAME, "residuals of the log-log fit (LB and min(OS, WS)) against #MACs F and Buffer size M",
          needs_reference=True)
def draw(out_dir: Path, inputs: FigureInputs) -> FigureResult:
    res = fit_residuals(inputs.reference, inputs.costs)
    fig, axes = new_figure(PAGE_WIDTH, 4.5, len(ROWS), 2, sharey="row")
    for i, b in enumerate(ROWS):
        for j, var in enumerate(("F", "M")):
            ax = axes[i, j]
            for k, (p, per) in enumerate(res.items()):
                if b not in per:
                    continue
                x = per[b][var]
                if var == "M":  # platforms share Buffer sizes: dodge each one sideways (log axis)
                    x = x * DODGE ** (k - (len(res) - 1) / 2)
                ax.scatter(x, per[b]["resid"], s=6, alpha=0.5, linewidths=0,
                           color=_PLATFORM_COLORS[k % 8], marker=_PLATFORM_MARKERS[k % 8],
                           label=p)
            ax.axhline(0, color="0.3", lw=0.8)
            ax.set_xscale("log")
            if var == "M":
                set_words_ticks(ax, np.concatenate([per[b]["M"] for per in res.values() if b in per] or [[]]))
            ax.grid(True, which="major")
            ax.set_xlabel("#MACs F" if var == "F" else "Buffer size M (words)")
            if j == 0:
                ax.set_ylabel(f"residual, bound {BOUND_LABELS[b]}\nln E_ref − (a + β ln B)")
            ax.set_title(f"({'abcd'[2 * i + j]}) bound {BOUND_LABELS[b]} vs {var}", loc="left")
    # one legend above the panels (inside, it hides points); β of each platform's LB and min fits
    handles = []
    for k, (p, per) in enumerate(res.items()):
        betas = ", ".join(f"{'LB' if b == 'lb' else 'min'} {per[b]['slope']:.2f}" for b in ROWS if b in per)
        handles.append(Line2D([], [], ls="none", marker=_PLATFORM_MARKERS[k % 8], markersize=4,
                              color=_PLATFORM_COLORS[k % 8], label=f"{p} (fitted β: {betas})"))
    fig.legend(handles=handles, loc="outside upper center", ncols=min(2, len(handles)), columnspacing=1.5,
               handletextpad=0.2)
    paths = save(fig, out_dir, NAME)
    return FigureResult(NAME, paths, {"platforms": res})
