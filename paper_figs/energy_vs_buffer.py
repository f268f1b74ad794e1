"""Energy versus Buffer size M for a few layers: reference points beside LB, OS and WS curves.

For each chosen layer the bounds are evaluated over a dense, log-spaced range of
M, from a Buffer too small for either dataflow to one that holds the whole layer.
The curves show the capacity regime, where the DRAM term falls like 1/sqrt(M), and
the compulsory floor (every word of X, W, Y moved once) reached for large M.
The bottom row shows the DRAM traffic Q (words) behind the energy, where the
1/sqrt(M) slope is a straight line.  Reference energies (pJ) and DRAM words of the
same layer at the platform's Buffer sizes are drawn as points; bounds are converted
to pJ with that platform's MAC energy.  Without a
Buffer sweep in the reference data the figure shows the bounds of zoo layers alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from complexity.layer import Layer
from paper_figs.common import LAYER_COLUMNS, energy_unit, exact_table, pj_per_mac, short_layer
from paper_figs.registry import FigureInputs, FigureResult, register
from paper_figs.style import BOUND_COLORS, BOUND_LABELS, BOUND_MARKERS, PAGE_WIDTH, new_figure, save

NAME = "energy_vs_buffer"
N_LAYERS = 3
#: Platform drawn when it has a Buffer sweep (the Eyeriss-like one the costs come from).
PREFERRED_PLATFORM = "eyeriss_like"
MIN_SWEEP = 4  # a layer needs reference energies at this many Buffer sizes to be chosen
#: Layers drawn when the reference data hold no Buffer sweep.
FALLBACK = (Layer.conv(c=64, d=64, hw=56, k=3, pad=1), Layer.conv(c=256, d=256, hw=14, k=3, pad=1),
            Layer.fc(4096, 4096, b=16))


def choose_sweeps(ref: pd.DataFrame | None, n: int = N_LAYERS) -> list[tuple[str, Layer, pd.DataFrame]]:
    """Up to ``n`` (platform, layer, rows) of layers swept over >= MIN_SWEEP Buffer sizes.

    Picks PREFERRED_PLATFORM if it has a sweep, else the platform with the most swept
    layers; then its smallest, a middle and its largest swept layer by MACs, so the
    panels span small to large layers.
    """
    if ref is None or len(ref) == 0:
        return []
    key = ["platform", *LAYER_COLUMNS]
    g = ref.groupby(key, sort=True)["M"].nunique()
    g = g[g >= MIN_SWEEP]
    if g.empty:
        return []
    per_plat = g.groupby(level=0).size().sort_values(ascending=False, kind="stable")
    plat = PREFERRED_PLATFORM if PREFERRED_PLATFORM in per_plat.index else per_plat.index[0]
    cands = [k for k in g.index if k[0] == plat]
    layers = [Layer(**dict(zip(LAYER_COLUMNS, map(int, k[1:])))) for k in cands]
    order = np.argsort([l.F for l in layers], kind="stable")
    picks = sorted(set(np.linspace(0, len(order) - 1, min(n, len(order))).round().astype(int)))
    out = []
    for i in picks:
        k, layer = cands[order[i]], layers[order[i]]
        m = (ref["platform"] == plat).to_numpy().copy()
        for c, v in zip(LAYER_COLUMNS, k[1:]):
            m = m & (ref[c] == v).to_numpy()
        rows = ref.loc[m]
        name = str(rows["layer_name"].iloc[0]) if "layer_name" in rows.columns and pd.notna(
            rows["layer_name"].iloc[0]) else ""
        out.append((plat, layer.replace(name=name), rows.sort_values("M")))
    return out


def buffer_curves(layer: Layer, M_grid: np.ndarray, costs: dict) -> dict:
    """LB, OS, WS energy (model units) and DRAM traffic Q of ``layer`` at every M of ``M_grid`` (inf: no tile fits)."""
    t = exact_table([layer] * len(M_grid), M_grid, costs)
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


@register(NAME, "reference energy vs Buffer size M for chosen layers beside LB, OS, WS curves "
                "(1/sqrt(M) regime and compulsory floor)")
def draw(out_dir: Path, inputs: FigureInputs) -> FigureResult:
    sweeps = choose_sweeps(inputs.reference)
    notes = []
    if not sweeps:
        notes.append(f"no Buffer sweep (a layer at >= {MIN_SWEEP} sizes M) in {inputs.source}: "
                     "bounds only, for fallback layers")
        sweeps = [(None, l, None) for l in FALLBACK]
    fig, axes = new_figure(PAGE_WIDTH, 4.6, 2, len(sweeps), sharex="col")
    data = []
    styles = {"lb": ("-", 1.4), "os": ("--", 1.0), "ws": ("-.", 1.0)}
    for col, (plat, layer, rows) in enumerate(sweeps):
        ax, qx = axes[0, col], axes[1, col]
        ref_M = rows["M"].to_numpy() if rows is not None else ()
        grid = dense_M(layer, ref_M)
        cur = buffer_curves(layer, grid, inputs.costs)
        scale = pj_per_mac(rows, np.full(len(rows), layer.F)) if rows is not None else None
        s = scale if scale is not None else 1.0
        for b in ("lb", "os", "ws"):
            ls, lw = styles[b]
            for a, key, mult in ((ax, f"{b}_E", s), (qx, f"{b}_Q", 1.0)):
                v = cur[key] * mult
                ok = np.isfinite(v)
                a.plot(grid[ok], v[ok], color=BOUND_COLORS[b], lw=lw, ls=ls, label=BOUND_LABELS[b])
        # compulsory floor: the lower bound once the capacity term vanishes (largest M)
        floor_E, floor_Q = cur["lb_E"][-1], cur["lb_Q"][-1]
        ax.axhline(floor_E * s, color="0.5", lw=0.7, ls=":", label="compulsory floor")
        qx.axhline(floor_Q, color="0.5", lw=0.7, ls=":", label="compulsory traffic")
        _guide(qx, grid, cur["lb_Q"], "∝ 1/√M")
        entry = {"platform": plat, "layer": layer, "scale": scale, **cur, "floor": floor_E, "floor_Q": floor_Q}
        if rows is not None:
            ax.scatter(rows["M"], rows["energy_pJ"], marker=BOUND_MARKERS["ref"], s=30, zorder=4,
                       color=BOUND_COLORS["ref"], edgecolor="black", linewidth=0.3, label=f"reference ({plat})")
            entry["ref_M"] = rows["M"].to_numpy()
            entry["ref_E"] = rows["energy_pJ"].to_numpy(dtype=float)
            if "dram_words" in rows.columns and rows["dram_words"].notna().any():
                entry["ref_Q"] = rows["dram_words"].to_numpy(dtype=float)
                qx.scatter(rows["M"], entry["ref_Q"], marker=BOUND_MARKERS["ref"], s=30, zorder=4,
                           color=BOUND_COLORS["ref"], edgecolor="black", linewidth=0.3,
                           label=f"reference ({plat})")
            if scale is None:
                notes.append(f"{plat}: no energy_mac_pJ column; bounds in model units beside pJ points")
        data.append(entry)
        for a in (ax, qx):
            a.set_xscale("log", base=2)
            a.set_yscale("log")
            a.grid(True, which="major")
        qx.set_xlabel("Buffer size M (words)")
        ax.set_title(short_layer(layer.replace(name="")), loc="left", fontsize=7)  # names repeat the shape
    sc = data[0]["scale"]
    axes[0, 0].set_ylabel(f"energy ({energy_unit(sc)})" if sc is None else f"energy (pJ; bounds at {sc:.3g} pJ/MAC)")
    axes[1, 0].set_ylabel("DRAM traffic Q (words)")
    axes[0, 0].legend(loc="upper right")
    axes[1, 0].legend(loc="upper right")
    paths = save(fig, out_dir, NAME)
    return FigureResult(NAME, paths, {"layers": data}, notes=tuple(notes))
