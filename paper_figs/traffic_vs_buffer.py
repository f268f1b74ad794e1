"""DRAM traffic (words) versus Buffer size M (figure traffic_vs_buffer, formerly energy_vs_buffer): reference sweeps beside the LB, OS and WS curves, one row per platform.

For a few layers swept over Buffer sizes on every platform, the bounds are evaluated
over a dense, log-spaced range of M, from a Buffer too small for either dataflow to
one that holds the whole layer.  The panels show DRAM traffic Q (words), the term M
acts on: in the capacity regime it falls like 1/sqrt(M) (a straight line on log-log
axes), then stays on the compulsory traffic |X_used| + |W| + |Y|.  The bounds'
energies (model units) are kept in the returned data; their M dependence is eD * Q.
Reference ``dram_words`` are drawn as points at each platform's Buffer sizes; with
an ``M_onchip`` column (all on-chip words of the platform) the LB at M_onchip is
drawn dashed, since the platforms' other on-chip memories let them go below the LB
at M (docs/figures.md).  Without a Buffer sweep the figure shows fallback layers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from complexity.layer import Layer
from paper_figs.common import LAYER_COLUMNS, layer_table, pj_per_mac, short_layer
from paper_figs.registry import FigureInputs, FigureResult, register
from paper_figs.style import BOUND_COLORS, BOUND_LABELS, BOUND_MARKERS, PAGE_WIDTH, new_figure, save

NAME = "traffic_vs_buffer"
N_LAYERS = 3
MIN_SWEEP = 4  # a layer needs reference rows at this many Buffer sizes to count as swept
#: Layers drawn when the reference data hold no Buffer sweep.
FALLBACK = (Layer.conv(c=64, d=64, hw=56, k=3, pad=1), Layer.conv(c=256, d=256, hw=14, k=3, pad=1),
            Layer.fc(4096, 4096, b=16))
_STYLES = {"lb": ("-", 1.4), "os": ("--", 1.0), "ws": ("-.", 1.0)}


def _layer_of(key) -> Layer:
    return Layer(**dict(zip(LAYER_COLUMNS, map(int, key))))


def choose_sweeps(ref: pd.DataFrame | None, n: int = N_LAYERS) -> tuple[list[str], list[Layer]]:
    """(platforms, layers): the platforms with a Buffer sweep and up to ``n`` layers swept on most of them.

    A layer is swept on a platform when it has reference rows at >= MIN_SWEEP Buffer
    sizes.  Among the layers swept on the most platforms, the smallest, a middle and
    the largest by MACs are picked, so the columns span small to large layers and
    every row shows the same layers.
    """
    if ref is None or len(ref) == 0:
        return [], []
    g = ref.groupby(["platform", *LAYER_COLUMNS], sort=True)["M"].nunique()
    g = g[g >= MIN_SWEEP]
    if g.empty:
        return [], []
    plats = sorted({k[0] for k in g.index})
    per_layer = pd.Series([k[1:] for k in g.index]).value_counts(sort=False)
    cands = sorted((k for k, v in per_layer.items() if v == per_layer.max()),
                   key=lambda k: (_layer_of(k).F, k))
    picks = sorted(set(np.linspace(0, len(cands) - 1, min(n, len(cands))).round().astype(int)))
    return plats, [_layer_of(cands[i]) for i in picks]


def sweep_rows(ref: pd.DataFrame, platform: str, layer: Layer) -> pd.DataFrame:
    """The reference rows of ``layer`` on ``platform``, sorted by M."""
    m = (ref["platform"] == platform).to_numpy()
    for c in LAYER_COLUMNS:
        m = m & (ref[c].to_numpy() == getattr(layer, c))
    return ref.loc[m].sort_values("M", kind="stable")


def buffer_curves(layer: Layer, M_grid: np.ndarray, costs: dict) -> dict:
    """LB, OS, WS energy (model units) and DRAM traffic Q of ``layer`` at every M of ``M_grid`` (inf: no tile fits)."""
    t = layer_table([layer] * len(M_grid), M_grid, costs)
    out = {"M": np.asarray(M_grid, dtype=np.int64)}
    for b in ("lb", "os", "ws"):
        out[f"{b}_E"] = t[f"{b}_E"].to_numpy(dtype=float)
        out[f"{b}_Q"] = t[f"{b}_Q"].to_numpy(dtype=float)
    return out


def dense_M(layer: Layer, ref_M=()) -> np.ndarray:
    """Log-spaced integer Buffer sizes from 16 words to 4x the layer's whole footprint (and the reference's M)."""
    hi = max(4 * (layer.X + layer.W + layer.Y), *(int(m) * 2 for m in ref_M), 64)
    lo = min(16, *(int(m) for m in ref_M)) if len(ref_M) else 16
    return np.unique(np.geomspace(lo, hi, 120).round().astype(np.int64))


def _guide(ax, grid, y, label):
    """A dotted M^(-1/2) line at half the height of ``y`` over its capacity regime (y > 1.5 x its floor)."""
    cap = y > 1.5 * y[-1]
    if cap.sum() < 2:
        return
    m0, m1 = grid[cap][0], grid[cap][-1]
    mm = np.geomspace(m0, m1, 20)
    ax.plot(mm, 0.5 * y[cap][0] * np.sqrt(m0 / mm), color="0.3", lw=0.8, ls=(0, (1, 1.5)), label=label)


def _onchip_lb(rows: pd.DataFrame, layer: Layer, costs: dict) -> np.ndarray | None:
    """LB DRAM traffic at each row's M_onchip (all on-chip words), or None without that column."""
    if "M_onchip" not in rows.columns:
        return None
    mo = pd.to_numeric(rows["M_onchip"], errors="coerce").to_numpy(dtype=float)
    out = np.full(len(rows), np.nan)
    ok = np.isfinite(mo) & (mo > 0)
    if ok.any():
        out[ok] = layer_table([layer] * int(ok.sum()), mo[ok].astype(np.int64), costs)["lb_Q"].to_numpy(dtype=float)
    return out if ok.any() else None


@register(NAME, "DRAM traffic vs Buffer size M, one row per platform: reference sweep beside LB, OS, WS "
                "(1/sqrt(M) regime, compulsory traffic, LB at M_onchip)")
def draw(out_dir: Path, inputs: FigureInputs) -> FigureResult:
    ref = inputs.reference
    plats, layers = choose_sweeps(ref)
    notes = []
    if not layers:
        notes.append(f"no Buffer sweep (a layer at >= {MIN_SWEEP} sizes M) in {inputs.source}: "
                     "bounds only, for fallback layers")
        plats, layers = [None], list(FALLBACK)
    nr, nc = len(plats), len(layers)
    fig, axes = new_figure(PAGE_WIDTH, 0.6 + 1.75 * nr, nr, nc, sharex="col", sharey="col")
    ref_M = np.unique(ref["M"].to_numpy(dtype=np.int64)) if plats[0] is not None else ()
    data = []
    for col, layer in enumerate(layers):
        grid = dense_M(layer, ref_M)
        cur = buffer_curves(layer, grid, inputs.costs)
        floor_E, floor_Q = cur["lb_E"][-1], cur["lb_Q"][-1]  # compulsory: the LB once M holds the layer
        for row, plat in enumerate(plats):
            ax = axes[row, col]
            for b in ("lb", "os", "ws"):
                ls, lw = _STYLES[b]
                ok = np.isfinite(cur[f"{b}_Q"])
                ax.plot(grid[ok], cur[f"{b}_Q"][ok], color=BOUND_COLORS[b], lw=lw, ls=ls,
                        label=f"{BOUND_LABELS[b]} at M")
            ax.axhline(floor_Q, color="0.6", lw=0.6, ls="-", zorder=1, label="compulsory traffic")
            _guide(ax, grid, cur["lb_Q"], "∝ 1/√M")
            entry = {"platform": plat, "layer": layer, **cur, "floor": floor_E, "floor_Q": floor_Q,
                     "scale": None}
            rows = sweep_rows(ref, plat, layer) if plat is not None else None
            if rows is not None and len(rows):
                entry["scale"] = pj_per_mac(rows, np.full(len(rows), layer.F))
                entry["ref_M"] = rows["M"].to_numpy(dtype=np.int64)
                entry["ref_E"] = rows["energy_pJ"].to_numpy(dtype=float)
                if "dram_words" in rows.columns and rows["dram_words"].notna().any():
                    entry["ref_Q"] = rows["dram_words"].to_numpy(dtype=float)
                    entry["lb_Q_at_ref"] = layer_table([layer] * len(rows), entry["ref_M"],
                                                       inputs.costs)["lb_Q"].to_numpy(dtype=float)
                    entry["ref_below_lb"] = entry["ref_Q"] < entry["lb_Q_at_ref"]
                    lbo = _onchip_lb(rows, layer, inputs.costs)
                    if lbo is not None:
                        entry["M_onchip"] = pd.to_numeric(rows["M_onchip"], errors="coerce").to_numpy(dtype=float)
                        entry["lb_onchip_Q"] = lbo
                        ok = np.isfinite(lbo)
                        ax.plot(entry["ref_M"][ok], lbo[ok], color=BOUND_COLORS["lb"], lw=0.9,
                                ls=(0, (4, 2)), marker="v", markersize=2.5, label="LB at M_onchip")
                    ax.scatter(entry["ref_M"], entry["ref_Q"], marker=BOUND_MARKERS["ref"], s=28, zorder=4,
                               color=BOUND_COLORS["ref"], edgecolor="black", linewidth=0.3,
                               label="reference DRAM words")
            data.append(entry)
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.grid(True, which="major")
            if row == 0:
                ax.set_title(short_layer(layer.replace(name="")), loc="left", fontsize=7)
            if row == nr - 1:
                ax.set_xlabel("Buffer size M (words)")
            if col == 0:
                ax.set_ylabel(("" if plat is None else f"{plat}\n") + "DRAM traffic Q (words)")
    # one legend for the figure, above the panels, with every kind of line that was drawn
    seen = {}
    for ax in axes.ravel():
        for h, lab in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(lab, h)
    fig.legend(list(seen.values()), list(seen), loc="outside upper center", ncols=min(7, len(seen)),
               handlelength=2.2, columnspacing=1.2,
               title="DRAM traffic in words: the two-level model's bounds at Buffer size M (lines), each platform's "
                     "estimated DRAM words (stars);\na star may lie below LB at M (the platform has more on-chip "
                     "memory than M), never below LB at M_onchip", title_fontsize=7)
    paths = save(fig, out_dir, NAME)
    return FigureResult(NAME, paths, {"layers": data, "platforms": plats}, notes=tuple(notes))
