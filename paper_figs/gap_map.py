"""Gap map: how far the better dataflow is from the lower bound, over two layer parameters.

The ratio min(OS, WS, OSL) / LB of DRAM traffic Q (the term the bounds are about) at a
fixed Buffer size, over (a) channels c = d against input size h = w and (b) kernel
k against stride s (padding floor(k/2)).  Values near 1 mean the lower bound is attained.
The machine is the two-level model (DRAM and a Buffer of M words); the ratio has no unit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.colors import Normalize

from complexity.layer import Layer
from paper_figs.common import layer_table
from paper_figs.registry import FigureInputs, FigureResult, register
from paper_figs.style import PAGE_WIDTH, new_figure, save

NAME = "gap_map"

#: Grid (a): c = d against h = w, 3 x 3 kernel, stride 1, padding 1.
CHANNELS = (16, 32, 64, 128, 256, 512, 1024)
SIZES = (7, 14, 28, 56, 112, 224)
#: Grid (b): kernel against stride at c = d = 256, h = w = 56, padding floor(k/2).
KERNELS = (1, 3, 5, 7, 9, 11)
STRIDES = (1, 2, 3, 4)
FIXED_CD, FIXED_HW = 256, 56
#: Buffer size (words) without --M.
DEFAULT_M = 65536


def gap_grid(layers_2d: list[list[Layer]], M: int, costs: dict) -> dict:
    """min(os_Q, ws_Q, osl_Q) / lb_Q for a 2-D list of layers (rows x cols), with the four Q arrays."""
    rows, cols = len(layers_2d), len(layers_2d[0])
    flat = [l for row in layers_2d for l in row]
    t = layer_table(flat, M, costs)
    shape = (rows, cols)
    lb, os_, ws, osl = (t[c].to_numpy(dtype=float).reshape(shape) for c in ("lb_Q", "os_Q", "ws_Q", "osl_Q"))
    return {"lb_Q": lb, "os_Q": os_, "ws_Q": ws, "osl_Q": osl, "ratio": np.fmin(np.fmin(os_, ws), osl) / lb}


def _heat(ax, ratio, xt, yt, xlabel, ylabel, norm):
    im = ax.imshow(ratio, origin="lower", cmap="viridis", norm=norm, aspect="auto")
    ax.set_xticks(range(len(xt)), [str(v) for v in xt])
    ax.set_yticks(range(len(yt)), [str(v) for v in yt])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    for (i, j), v in np.ndenumerate(ratio):
        if np.isfinite(v):
            light = norm(v) > 0.6
            ax.text(j, i, f"{v:.2f}" if v < 10 else f"{v:.0f}", ha="center", va="center",
                    fontsize=5.5, color="black" if light else "white")
    for s in ax.spines.values():
        s.set_visible(False)
    return im


@register(NAME, "min(OS, WS, OSL) / LB on DRAM traffic Q over c=d x h=w and k x stride at fixed M")
def draw(out_dir: Path, inputs: FigureInputs) -> FigureResult:
    M = inputs.M_or(DEFAULT_M)
    grid_a = [[Layer.conv(c=c, d=c, hw=n, k=3, stride=1, pad=1) for n in SIZES] for c in CHANNELS]
    grid_b = [[Layer.conv(c=FIXED_CD, d=FIXED_CD, hw=FIXED_HW, k=k, stride=s, pad=k // 2)
               for s in STRIDES] for k in KERNELS]
    a = gap_grid(grid_a, M, inputs.costs)
    b = gap_grid(grid_b, M, inputs.costs)
    vals = np.concatenate([a["ratio"].ravel(), b["ratio"].ravel()])
    vals = vals[np.isfinite(vals)]
    norm = Normalize(vmin=1.0, vmax=max(2.0, float(np.ceil(vals.max() * 4) / 4)))
    fig, axes = new_figure(PAGE_WIDTH, 2.6, 1, 2, width_ratios=[len(SIZES), len(STRIDES) + 0.5])
    ax1, ax2 = axes[0]
    im = _heat(ax1, a["ratio"], SIZES, CHANNELS, "input size h = w", "channels c = d", norm)
    ax1.set_title(f"(a) 3x3 kernel, stride 1, padding 1, M = {M:,} words", loc="left")
    ax1.set_xlabel("input size h = w (pixels)")
    _heat(ax2, b["ratio"], STRIDES, KERNELS, "stride s", "kernel k = kh = kw", norm)
    ax2.set_title(f"(b) c = d = {FIXED_CD}, h = w = {FIXED_HW}, padding ⌊k/2⌋,\nM = {M:,} words", loc="left")
    cb = fig.colorbar(im, ax=[ax1, ax2], shrink=0.9, pad=0.02)
    cb.set_label("min(OS, WS, OSL) / LB of DRAM traffic Q\n(words / words, two-level model)")
    paths = save(fig, out_dir, NAME)
    data = {"M": M, "channels": np.array(CHANNELS), "sizes": np.array(SIZES),
            "kernels": np.array(KERNELS), "strides": np.array(STRIDES),
            "a": a, "b": b, "layers_a": grid_a, "layers_b": grid_b}
    return FigureResult(NAME, paths, data)
