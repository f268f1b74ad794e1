"""Per platform: E_ref (pJ) vs its architecture's floor E_LB(arch) (pJ) and vs the two-level LB, min(OS, WS, OSL) (model units).

An energy bound is a bound only for the machine it is proved on, so the two rows of
panels keep the two machines apart.  Top row: the hierarchy-aware floor E_LB(arch) of
the platform's own architecture (validation.hierarchy_check.hierarchy_rows), in pJ like
the estimate, so y = x means "estimate equals floor" and every point without an
undercount must lie on or above it; rows where the estimator moves an operand from
DRAM fewer times than the layer uses it (an undercount) are hollow.  Bottom row: the
two-level model's bounds in model units; they share no unit with E_ref, so there is
no y = x, only the log-log fit log E_ref = a + beta log B whose slope says whether the
bound scales like the estimate.  Every fit is validation.regression.fit_loglog (HC3 95%
CI); a box in each panel gives beta [CI] and R^2.  The reference rows are drawn at their
own Buffer size M (inputs.M does not apply); inputs.arch names the architecture of the
floor (paper_figs.common.reference_archs).
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
from matplotlib.lines import Line2D

from paper_figs.common import BOUNDS, LAYER_COLUMNS, bound_table, reference_archs
from paper_figs.registry import FigureInputs, FigureResult, register
from paper_figs.style import (BOUND_COLORS, BOUND_LABELS, BOUND_LINESTYLES, BOUND_MARKERS, COLUMN_WIDTH,
                              OKABE_ITO, PAGE_WIDTH, new_figure, save)

NAME = "bound_vs_estimate"
#: The two-level bounds of the bottom row (OS, WS and OSL alone add nothing: min(OS, WS, OSL) is the best of them).
MODEL_BOUNDS = ("lb", "min")
#: Platforms per row of panels; more wrap onto a further pair of rows.
PER_ROW = 4
FLOOR_COLOR = OKABE_ITO["blue"]
FIT_COLOR = OKABE_ITO["vermillion"]


def _fit(e_ref, bound, what: str):
    """fit_loglog, or the InsufficientDataError when too few rows are usable (drawn as text)."""
    from validation.regression import InsufficientDataError, fit_loglog
    try:
        return fit_loglog(e_ref, bound, what=what)
    except InsufficientDataError as exc:
        return exc


def platform_fits(ref, costs: dict, archs: dict | None = None, bounds=BOUNDS) -> dict:
    """Per platform: E_ref (pJ), F, M, the two-level bounds (model units) and their fits, and the floor.

    ``bounds`` are column prefixes of bounds.api.evaluate_table.  The floor entries come
    from validation.hierarchy_check.hierarchy_rows(ref, archs): "hier_LB" (pJ, NaN on rows
    without an architecture), "undercount" (bool), "arch" (the architecture's name, None
    when no row has one) and "hier_fit" (fit of E_ref on hier_LB over every row with a
    floor; None without one).  All arrays are aligned with the platform's rows of ``ref``.
    """
    from validation.hierarchy_check import hierarchy_rows
    ref = ref.reset_index(drop=True)
    t = bound_table(ref.loc[:, list(LAYER_COLUMNS) + ["M"]], costs)
    h = hierarchy_rows(ref, archs)
    pos = h.index.to_numpy(dtype=np.int64)
    hier = np.full(len(ref), np.nan)
    hier[pos] = h["hier_LB"].to_numpy(dtype=float)
    under = np.zeros(len(ref), dtype=bool)
    under[pos] = (h["undercount"] != "").to_numpy()
    arch = np.full(len(ref), None, dtype=object)
    arch[pos] = h["arch"].to_numpy(dtype=object)
    plat = ref["platform"].astype(str).to_numpy()
    e_ref_all = ref["energy_pJ"].to_numpy(dtype=float)
    out = {}
    for p in sorted(set(plat)):
        m = plat == p
        e = e_ref_all[m]
        names = sorted({a for a in arch[m] if a is not None})
        entry = {"E_ref": e, "F": t.loc[m, "F"].to_numpy(dtype=float), "M": ref.loc[m, "M"].to_numpy(dtype=float),
                 "bounds": {}, "fits": {}, "hier_LB": hier[m], "undercount": under[m],
                 "arch": ", ".join(names) if names else None,
                 "hier_fit": _fit(e, hier[m], f"platform {p} floor E_LB(arch)") if names else None}
        for b in bounds:
            B = t.loc[m, f"{b}_E"].to_numpy(dtype=float)
            entry["bounds"][b] = B
            entry["fits"][b] = _fit(e, B, f"platform {p} bound {b}")
        out[p] = entry
    return out


def _fit_text(fit) -> str:
    """Slope, its 95% CI and R^2 of one fit, one per line (the panels are narrow)."""
    if isinstance(fit, Exception):
        return "too few rows\nto fit"
    return f"β = {fit.slope:.2f}\n[{fit.slope_ci_low:.2f}, {fit.slope_ci_high:.2f}]\nR² = {fit.r2:.2f}"


def _fit_line(ax, x, fit, **kw) -> None:
    """The fitted line exp(a) x^beta over the x range of the usable rows."""
    ok = np.isfinite(x) & (x > 0)
    xs = np.geomspace(x[ok].min(), x[ok].max(), 50)
    ax.plot(xs, np.exp(fit.intercept) * xs ** fit.slope, **kw)


_BOX = dict(fontsize=5.5, linespacing=1.2, zorder=5,
            bbox=dict(facecolor="white", edgecolor="none", alpha=0.85, pad=0.8))


def _corner_text(ax, text: str, where: str, **kw):
    """A small boxed note in a corner of the axes ("lower right", "upper left"); returns the Text."""
    v, h = where.split()
    return ax.text(0.97 if h == "right" else 0.03, 0.03 if v == "lower" else 0.97, text, transform=ax.transAxes,
                   ha=h, va="bottom" if v == "lower" else "top", **_BOX, **kw)


def _log_axes(ax) -> None:
    """Log x and y with ticks at the decades only: minor ticks add nothing over 5-6 decades and cost
    most of the drawing time."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.minorticks_off()


def _positive(*arrays) -> np.ndarray:
    """The positive finite values of all arrays, concatenated (for axis limits)."""
    v = np.concatenate([np.asarray(a, dtype=float).ravel() for a in arrays] or [np.array([])])
    return v[np.isfinite(v) & (v > 0)]


def floor_handles() -> list:
    """Legend of the top row: what the markers and lines of every floor panel mean."""
    return [Line2D([], [], ls="none", marker="o", markersize=3.5, color=FLOOR_COLOR, alpha=0.7,
                   label="reference row"),
            Line2D([], [], ls="none", marker="o", markersize=3.5, markerfacecolor="none", color=FLOOR_COLOR,
                   label="DRAM undercount: an operand moved fewer times than used"),
            Line2D([], [], color="0.3", lw=0.9, label="floor: E_ref = E_LB(arch)"),
            Line2D([], [], color=FIT_COLOR, lw=1.2, ls="--",
                   label="log-log fit of all rows")]


def model_handles() -> list:
    """Legend of the bottom row: the two bounds' markers and fitted lines."""
    return [Line2D([], [], color=BOUND_COLORS[b], ls=BOUND_LINESTYLES[b], lw=1.2, marker=BOUND_MARKERS[b],
                   markersize=3.5, markerfacecolor="none",
                   label=f"two-level {BOUND_LABELS[b]}" + (" (\"min\")" if b == "min" else "")
                         + ": rows and log-log fit")
            for b in MODEL_BOUNDS]


def floor_limits(fits: list[dict]) -> tuple[float, float]:
    """One (lo, hi) pJ range for both axes of a row of floor panels, so y = x is every panel's diagonal."""
    v = _positive(*[f["hier_LB"] for f in fits if f["arch"] is not None],
                  *[f["E_ref"] for f in fits if f["arch"] is not None])
    return (float(v.min()) / 2, float(v.max()) * 2) if v.size else (1.0, 10.0)


def floor_panel(ax, p: str, f: dict, lims: tuple[float, float]) -> None:
    """Top panel: E_ref against E_LB(arch), both pJ, with y = x and the fit; or a note without a floor."""
    ax.set_title(f"{p} (n = {len(f['E_ref'])})", loc="left")
    if f["arch"] is None:
        ax.axis("off")  # not set_xticks([]): the axes are shared with the row's other panels
        ax.text(0.5, 0.5, f"no architecture for {p}:\nno E_LB(arch) floor in pJ\n(name one with --arch)",
                transform=ax.transAxes, ha="center", va="center", fontsize=6.5, color="0.3")
        return
    x, y, u = f["hier_LB"], f["E_ref"], f["undercount"]
    ok = np.isfinite(x) & (x > 0)
    fill, hollow = ok & ~u, ok & u
    ax.scatter(x[fill], y[fill], s=5, color=FLOOR_COLOR, alpha=0.55, linewidths=0, zorder=2)
    ax.scatter(x[hollow], y[hollow], s=8, facecolor="none", edgecolor=FLOOR_COLOR, linewidths=0.5, zorder=2)
    ax.plot(lims, lims, color="0.3", lw=0.9, zorder=3)
    fit = f["hier_fit"]
    if not isinstance(fit, Exception):
        _fit_line(ax, x, fit, color=FIT_COLOR, lw=1.2, ls="--", zorder=4)
    _log_axes(ax)
    ax.set_xlim(*lims)
    ax.set_ylim(*lims)
    ax.set_xlabel(f"E_LB(arch) floor\n(pJ, {f['arch']})")
    ax.grid(True, which="major")
    text = f"fit: {_fit_text(fit)}\nbelow y = x:\n{(y[fill] < x[fill]).sum()} of {fill.sum()} filled"
    if hollow.any():
        text += f"\n{(y[hollow] < x[hollow]).sum()} of {hollow.sum()} hollow"
    # lower right is below y = x, where no sound row can be: the note hides nothing there
    _corner_text(ax, text, "lower right")


def model_panel(ax, p: str, f: dict) -> None:
    """Bottom panel: E_ref (pJ) against the two-level LB and min(OS, WS, OSL) (model units), fits only."""
    for b in MODEL_BOUNDS:
        x = f["bounds"][b]
        ok = np.isfinite(x) & (x > 0)
        ax.scatter(x[ok], f["E_ref"][ok], s=6, marker=BOUND_MARKERS[b], facecolor="none",
                   edgecolor=BOUND_COLORS[b], alpha=0.45, linewidths=0.5, zorder=2)
        fit = f["fits"][b]
        if not isinstance(fit, Exception):
            _fit_line(ax, x, fit, color=BOUND_COLORS[b], lw=1.2, ls=BOUND_LINESTYLES[b], zorder=3)
    _log_axes(ax)
    ax.set_title(f"{p} (n = {len(f['E_ref'])})", loc="left")
    ax.set_xlabel("two-level model bound B\n(model units, MAC = 1)")
    ax.grid(True, which="major")
    _corner_text(ax, "shape only:\nunits differ", "upper left", color="0.3")
    # one box per bound in its colour, stacked in the lower right (the points follow the diagonal)
    below = None
    for b in reversed(MODEL_BOUNDS):
        text = f"{'min' if b == 'min' else BOUND_LABELS[b]}: {_fit_text(f['fits'][b])}"
        if below is None:
            below = _corner_text(ax, text, "lower right", color=BOUND_COLORS[b])
        else:
            below = ax.annotate(text, xy=(1, 1), xycoords=below, xytext=(0, 2), textcoords="offset points",
                                ha="right", va="bottom", color=BOUND_COLORS[b], **_BOX)


@register(NAME, "per platform: E_ref (pJ) vs the floor E_LB(arch) of its architecture (pJ) with y = x and the "
                "log-log fit; E_ref vs the two-level LB and min(OS, WS, OSL) (model units, MAC = 1), fits with "
                "slope [95% CI] and R², no y = x", needs_reference=True)
def draw(out_dir: Path, inputs: FigureInputs) -> FigureResult:
    # the reference rows are drawn at their own Buffer size M, so --M does not apply here
    rows, archs = reference_archs(inputs, inputs.reference)
    fits = platform_fits(rows, inputs.costs, archs, bounds=MODEL_BOUNDS)
    plats = list(fits)
    ncols = min(PER_ROW, len(plats))
    groups = math.ceil(len(plats) / ncols)
    width = PAGE_WIDTH if ncols > 1 else COLUMN_WIDTH
    fig, ax0 = new_figure(width, 5.4 * groups)
    ax0.remove()  # the panels live in one sub-figure per row, each with its own heading and legend
    subs = np.atleast_1d(fig.subfigures(2 * groups, 1))
    heads = ("estimate vs the floor E_LB(arch) of the platform's architecture, both in pJ: a filled point "
             "below y = x would break the floor; box: fitted slope β [95% CI], R²",
             "estimate (pJ) vs the two-level model's bounds (model units): the slope compares shapes; "
             "no y = x, the units differ")
    for g in range(groups):
        chunk = plats[g * ncols:(g + 1) * ncols]
        for r in range(2):
            sf = subs[2 * g + r]
            # same unit and range in a row: shared axes, tick labels on the outer panels only
            axes = sf.subplots(1, ncols, squeeze=False, sharex=True, sharey=True)[0]
            head = f"({'abcdefghijklmnopqrstuvwxyz'[(2 * g + r) % 26]}) {heads[r]}"
            sf.suptitle(textwrap.fill(head, int(width * 17)), x=0.01, ha="left", fontsize=7)
            lims = floor_limits([fits[p] for p in chunk])
            for ax, p in zip(axes, chunk):
                if r == 0:
                    floor_panel(ax, p, fits[p], lims)
                else:
                    model_panel(ax, p, fits[p])
            # the y label and tick labels on the row's first drawn panel (a panel without a floor is off)
            first = next((ax for ax, p in zip(axes, chunk) if r == 1 or fits[p]["arch"] is not None), axes[0])
            first.set_ylabel("E_ref (pJ)")
            first.yaxis.set_tick_params(labelleft=True)
            for ax in axes[len(chunk):]:
                ax.set_visible(False)
            if r == 1 or any(fits[p]["arch"] is not None for p in chunk):
                sf.legend(handles=(floor_handles, model_handles)[r](), loc="outside lower center",
                          ncols=2 if ncols > 1 else 1, fontsize=6, handlelength=2.0, columnspacing=1.2,
                          handletextpad=0.4)
    notes = tuple(f"{p}: no architecture, so no E_LB(arch) floor in pJ (its top panel says so; see --arch)"
                  for p, f in fits.items() if f["arch"] is None)
    paths = save(fig, out_dir, NAME)
    return FigureResult(NAME, paths, {"platforms": fits}, notes=notes)
