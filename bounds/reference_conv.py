"""A straightforward numpy convolution: the ground truth for the executors' outputs."""

from __future__ import annotations

import numpy as np

from complexity.layer import Layer

__all__ = ["conv2d_numpy", "random_operands"]


def conv2d_numpy(layer: Layer, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """y[n, o, i, j] = sum over (ci, r, s) of w[o, ci, r, s] * xpad[n, g*cg + ci, i*sh + r, j*sw + s].

    ``x`` has shape (b, c, h, w), ``w`` has shape (d, c/g, kh, kw); returns (b, d, nh, nw).
    Written with numpy's sliding_window_view and einsum, independently of any dataflow.
    """
    L = layer
    if x.shape != (L.b, L.c, L.h, L.w):
        raise ValueError(f"x has shape {x.shape}, expected {(L.b, L.c, L.h, L.w)}")
    if w.shape != (L.d, L.cg, L.kh, L.kw):
        raise ValueError(f"w has shape {w.shape}, expected {(L.d, L.cg, L.kh, L.kw)}")
    xp = np.pad(x, ((0, 0), (0, 0), (L.ph, L.ph), (L.pw, L.pw)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (L.kh, L.kw), axis=(2, 3))
    win = win[:, :, ::L.sh, ::L.sw][:, :, :L.nh, :L.nw]  # (b, c, nh, nw, kh, kw)
    out = np.empty((L.b, L.d, L.nh, L.nw), dtype=np.result_type(x, w))
    for grp in range(L.groups):
        xs = win[:, grp * L.cg:(grp + 1) * L.cg]
        ws = w[grp * L.dg:(grp + 1) * L.dg]
        out[:, grp * L.dg:(grp + 1) * L.dg] = np.einsum("ncijrs,ocrs->noij", xs, ws)
    return out


def random_operands(layer: Layer, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Small random integers (exact in float64) for X and W of ``layer``."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-3, 4, size=(layer.b, layer.c, layer.h, layer.w)).astype(np.float64)
    w = rng.integers(-3, 4, size=(layer.d, layer.cg, layer.kh, layer.kw)).astype(np.float64)
    return x, w
