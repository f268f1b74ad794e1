"""The sympy symbols shared by every closed form, so that expressions compose.

Layer: b c d h w kh kw sh sw ph pw g; machine: M eD eB eM; all positive integers
except padding (non-negative) and the costs (positive reals).
"""

from __future__ import annotations

import sympy as sp

b, c, d, h, w, kh, kw, sh, sw, g = sp.symbols("b c d h w k_h k_w s_h s_w g", integer=True, positive=True)
ph, pw = sp.symbols("p_h p_w", integer=True, nonnegative=True)
M = sp.Symbol("M", integer=True, positive=True)
eD, eB, eM = sp.symbols("e_D e_B e_M", positive=True)

#: Layer field name -> symbol (the names of complexity.layer.Layer).
LAYER_SYMBOLS = {"b": b, "c": c, "d": d, "h": h, "w": w, "kh": kh, "kw": kw,
                 "sh": sh, "sw": sw, "ph": ph, "pw": pw, "groups": g}
MACHINE_SYMBOLS = {"M": M, "eD": eD, "eB": eB, "eM": eM}

nh = sp.floor((h + 2 * ph - kh) / sh) + 1
nw = sp.floor((w + 2 * pw - kw) / sw) + 1
X = b * c * h * w
W = d * (c / g) * kh * kw
Y = b * d * nh * nw
F = Y * (c / g) * kh * kw


def energy(Q, A, F_):
    """E = eD Q + eB A + eM F (costs at the reference bitwidth; see complexity.machine)."""
    return eD * Q + eB * A + eM * F_
