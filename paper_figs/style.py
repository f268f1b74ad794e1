"""One look for every paper figure: headless backend, sizes, fonts and a colour-blind-safe palette.

Figures are ``matplotlib.figure.Figure`` objects with their own Agg canvas (never
pyplot), so drawing needs no display and leaves the global backend alone (a
notebook that imports this keeps its inline backend); every figure is saved as a
vector PDF and a 200 dpi PNG by :func:`save`.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["OKABE_ITO", "BOUND_COLORS", "BOUND_MARKERS", "BOUND_LABELS", "BOUND_LINESTYLES", "COLUMN_WIDTH",
           "PAGE_WIDTH", "PNG_DPI", "RC", "new_figure", "place_labels", "save", "style"]

#: Okabe & Ito (2008) palette, distinguishable under the common colour-vision deficiencies.
OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
}

#: One colour per quantity, the same in every figure.
BOUND_COLORS = {
    "lb": OKABE_ITO["black"],
    "os": OKABE_ITO["orange"],
    "ws": OKABE_ITO["sky_blue"],
    "min": OKABE_ITO["green"],
    "ref": OKABE_ITO["vermillion"],
    "dram": OKABE_ITO["blue"],
    "buffer": OKABE_ITO["yellow"],
    "mac": OKABE_ITO["purple"],
}
#: Markers double the colour coding so that grey-scale prints stay readable.
BOUND_MARKERS = {"lb": "v", "os": "s", "ws": "D", "min": "o", "ref": "*"}
#: Line styles of the bounds' curves and fitted lines (also distinct in grey scale).
BOUND_LINESTYLES = {"lb": "-", "os": "--", "ws": "-.", "min": (0, (1, 1)), "ref": "-"}
BOUND_LABELS = {"lb": "LB", "os": "OS", "ws": "WS", "min": "min(OS, WS, OSL)", "ref": "reference"}

#: Width of one column of a two-column paper, and of the full page, in inches.
COLUMN_WIDTH = 3.4
PAGE_WIDTH = 7.0
PNG_DPI = 200

#: Font sizes readable at print size (8 pt body, 7 pt ticks and legends).
RC = {
    "font.family": "DejaVu Sans",
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 6.5,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.linewidth": 0.6,
    "lines.linewidth": 1.2,
    "lines.markersize": 4,
    "grid.linewidth": 0.4,
    "grid.alpha": 0.4,
    "pdf.fonttype": 42,  # embed TrueType so that journals accept the PDF
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.02,
}


@contextmanager
def style():
    """Apply the paper rc settings while a figure is built and saved."""
    with matplotlib.rc_context(RC):
        yield


def new_figure(width: float = COLUMN_WIDTH, height: float = 2.4, nrows: int = 1, ncols: int = 1,
               **kwargs):
    """A (figure, axes) pair of the given size in inches; axes is a 2-D array when nrows*ncols > 1.

    ``kwargs`` go to ``Figure.subplots`` (e.g. ``sharex``, ``width_ratios``).
    """
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)  # headless raster canvas owned by this figure; PDF uses its own backend
    axes = fig.subplots(nrows, ncols, squeeze=(nrows * ncols == 1), **kwargs)
    return fig, axes


def save(fig: Figure, out_dir: str | Path, name: str) -> tuple[Path, Path]:
    """Write ``name.png`` (200 dpi) and ``name.pdf`` (vector) into ``out_dir``; return both paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    png, pdf = out / f"{name}.png", out / f"{name}.pdf"
    fig.savefig(png, dpi=PNG_DPI)
    fig.savefig(pdf)
    return png, pdf


_OFFSETS = ((4, 3, "left", "bottom"), (4, -3, "left", "top"), (-4, 3, "right", "bottom"),
            (-4, -3, "right", "top"), (0, 6, "center", "bottom"), (0, -6, "center", "top"),
            (6, 10, "left", "bottom"), (6, -10, "left", "top"), (-6, 10, "right", "bottom"),
            (-6, -10, "right", "top"))


def place_labels(ax, xs, ys, labels, fontsize: float = 6, marker_px: float = 6.0) -> list:
    """Annotate points with labels that overlap neither each other nor the points, when possible.

    Tries spots right, left, above and below each point (nearest first) and keeps the
    first one inside the axes that is clear, else the one with the fewest overlaps.
    Call it last, once the layout is final.  Returns the Annotation artists.
    """
    from matplotlib.transforms import Bbox
    fig = ax.figure
    fig.draw_without_rendering()
    renderer = fig._get_renderer()
    pts = ax.transData.transform(np.column_stack([xs, ys]))
    r = marker_px * fig.dpi / 72
    point_boxes = [Bbox.from_extents(x - r, y - r, x + r, y + r) for x, y in pts]
    axbox = ax.get_window_extent(renderer)
    taken, out = [], []
    for i, text in enumerate(labels):
        best = None
        for k, (dx, dy, ha, va) in enumerate(_OFFSETS):
            a = ax.annotate(text, (xs[i], ys[i]), xytext=(dx, dy), textcoords="offset points",
                            ha=ha, va=va, fontsize=fontsize)
            bb = a.get_window_extent(renderer)
            a.remove()
            inside = axbox.x0 <= bb.x0 and bb.x1 <= axbox.x1 and axbox.y0 <= bb.y0 and bb.y1 <= axbox.y1
            score = (sum(bb.overlaps(t) for t in taken)
                     + sum(bb.overlaps(p) for j, p in enumerate(point_boxes) if j != i)
                     + (0 if inside else 2))
            if best is None or score < best[0]:
                best = (score, k, bb)
            if score == 0:
                break
        dx, dy, ha, va = _OFFSETS[best[1]]
        out.append(ax.annotate(text, (xs[i], ys[i]), xytext=(dx, dy), textcoords="offset points",
                               ha=ha, va=va, fontsize=fontsize))
        taken.append(best[2])
    return out
