"""Bound versus estimate: reference energy against each bound, one log-log panel per platform.

For every reference row the bounds (LB, OS, WS, min(OS, WS)) are evaluated at the
row's layer and Buffer size M; the asymptotic fit log E_ref = a + beta log B
(validation.regression.fit_loglog, HC3 95% CI) is drawn as a line with its slope in
the legend.  Bounds are converted to pJ with the platform's MAC energy
(paper_figs.common.pj_per_mac) so that the y = x line means "equal energy".
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from paper_figs.common import BOUNDS, LAYER_COLUMNS, bound_table, energy_unit, pj_per_mac
from paper_figs.registry import FigureInputs, FigureResult, register
from matplotlib.lines import Line2D

from paper_figs.style import (BOUND_COLORS, BOUND_LABELS, BOUND_LINESTYLES, BOUND_MARKERS, COLUMN_WIDTH,
                              PAGE_WIDTH,
                              new_figure, save)

NAME = "bound_vs_estimate"


def platform_fits(ref, costs: dict) -> dict:
    """Per platform: E_ref, F, M, each bound's energy (model units and plotted units) and its fit."""
    from validation.regression import InsufficientDataError, fit_loglog
    t = bound_table(ref.loc[:, list(LAYER_COLUMNS) + ["M"]].reset_index(drop=True), costs)
    plat = ref["platform"].to_numpy()
    e_ref_all = ref["energy_pJ"].to_numpy(dtype=float)
    out = {}
    for p in sorted(set(plat)):
        m = plat == p
        scale = pj_per_mac(ref.loc[m], t.loc[m, "F"].to_numpy())
        entry = {"E_ref": e_ref_all[m], "F": t.loc[m, "F"].to_numpy(dtype=float),
                 "M": ref.loc[m, "M"].to_numpy(dtype=float), "scale": scale, "bounds": {}, "fits": {}}
        for b in BOUNDS:
            B = t.loc[m, f"{b}_E"].to_numpy(dtype=float)
            entry["bounds"][b] = B
            try:
                entry["fits"][b] = fit_loglog(e_ref_all[m], B, what=f"platform {p} bound {b}")
            except InsufficientDataError as exc:
                entry["fits"][b] = exc
        out[p] = entry
    return out


@register(NAME, "log-log E_ref vs LB, OS, WS, min(OS, WS) per platform, fitted line, slope and 95% CI, y = x",
          needs_reference=True)
def draw(out_dir: Path, inputs: FigureInputs) -> FigureResult:
    fits = platform_fits(inputs.reference, inputs.costs)
    plats = list(fits)
    ncols = min(2, len(plats))  # two 3.5 in panels per row: 4 platforms fill a 2 x 2 grid
    nrows = math.ceil(len(plats) / ncols)
    fig, axes = new_figure(PAGE_WIDTH if ncols > 1 else COLUMN_WIDTH, 2.9 * nrows, nrows, ncols)
    axes = np.atleast_1d(axes).ravel()
    notes = []
    for ax, p in zip(axes, plats):
        f = fits[p]
        s = f["scale"] if f["scale"] is not None else 1.0
        if f["scale"] is None:
            notes.append(f"{p}: no energy_mac_pJ column; bounds left in model units, no y = x line")
        lo, hi = np.inf, 0.0
        handles = []
        for b in BOUNDS:
            x = f["bounds"][b] * s
            ok = np.isfinite(x) & (x > 0)
            lo = min(lo, x[ok].min(initial=np.inf), f["E_ref"].min())
            hi = max(hi, x[ok].max(initial=0.0), f["E_ref"].max())
            ax.scatter(x[ok], f["E_ref"][ok], s=7, marker=BOUND_MARKERS[b], facecolor="none",
                       edgecolor=BOUND_COLORS[b], alpha=0.5, linewidths=0.5, zorder=2)
            fit = f["fits"][b]
            if isinstance(fit, Exception):
                label = f"{BOUND_LABELS[b]} too few rows"
            else:
                label = f"{BOUND_LABELS[b]} {fit.slope:.2f} [{fit.slope_ci_low:.2f}, {fit.slope_ci_high:.2f}]"
                xs = np.geomspace(x[ok].min(), x[ok].max(), 50)
                ax.plot(xs, np.exp(fit.intercept) * (xs / s) ** fit.slope, color=BOUND_COLORS[b], lw=1.3,
                        ls=BOUND_LINESTYLES[b], zorder=3)
            handles.append(Line2D([], [], color=BOUND_COLORS[b], ls=BOUND_LINESTYLES[b], lw=1.3,
                                  marker=BOUND_MARKERS[b], markersize=3.5, markerfacecolor="none", label=label))
        if f["scale"] is not None:
            ax.plot([lo, hi], [lo, hi], color="0.55", lw=0.8, zorder=1)
            handles.append(Line2D([], [], color="0.55", lw=0.8, label="y = x"))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"{p} (n = {len(f['E_ref'])})", loc="left")
        unit = f"pJ at {f['scale']:.3g} pJ/MAC" if f["scale"] is not None else energy_unit(None)
        ax.set_xlabel(f"bound energy B ({unit})")
        ax.set_ylabel("reference energy E_ref (pJ)")
        ax.grid(True, which="major")
        # lower right: the points lie along the diagonal (E_ref grows with B), that corner stays empty
        ax.legend(handles=handles, loc="lower right", handlelength=1.8, handletextpad=0.3, labelspacing=0.25,
                  borderaxespad=0.1, borderpad=0.2, fontsize=6, title="fitted slope β [95% CI]",
                  title_fontsize=6, frameon=True, facecolor="white", edgecolor="none", framealpha=0.8)
    for ax in axes[len(plats):]:
        ax.set_visible(False)
    paths = save(fig, out_dir, NAME)
    return FigureResult(NAME, paths, {"platforms": fits}, notes=tuple(notes))
