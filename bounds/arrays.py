"""The vectorized bounds for any table-like input: a dict, keyword arrays, a DataFrame or Layers.

``lower_bound_np``, ``os_best_np`` and ``ws_best_np`` of the bound modules take a dict of
int64 arrays and M.  The functions here take the same or keyword arguments, a pandas
DataFrame (its layer columns and, unless M is given, its "M" column), a Layer or a list of
Layers; square shortcuts (hw, k, stride, pad, g) are accepted, scalars broadcast, and a
missing or unknown field is an error naming it.  They return what the wrapped function
returns (a dict of arrays, one entry per row).
"""

from __future__ import annotations

import numpy as np

from complexity.layer import Layer, LayerError
from complexity.machine import MachineError

__all__ = ["layer_table", "lower_bound_np", "os_best_np", "ws_best_np"]

FIELDS = ("b", "c", "d", "h", "w", "kh", "kw", "sh", "sw", "ph", "pw", "groups")
_DEFAULTS = {"b": 1, "h": 1, "w": 1, "kh": 1, "kw": 1, "sh": 1, "sw": 1, "ph": 0, "pw": 0, "groups": 1}
_SHORTCUTS = {"hw": ("h", "w"), "k": ("kh", "kw"), "stride": ("sh", "sw"), "pad": ("ph", "pw"), "g": ("groups",)}


def _expand(values: dict, strict: bool) -> dict:
    """Field -> value with shortcuts expanded; unknown keys raise (``strict``) or are dropped."""
    out = {}
    for k, v in values.items():
        if k in _SHORTCUTS:
            for f in _SHORTCUTS[k]:
                out.setdefault(f, v)
        elif k in FIELDS:
            out[k] = v
        elif strict:
            raise LayerError(str(k), f"unknown layer field; known: {', '.join(FIELDS)} (and hw, k, stride, pad, g)")
    return out


def _int_array(name: str, v) -> np.ndarray:
    a = np.asarray(v)
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)) or not np.all(a == np.round(a)):
            raise LayerError(name, "must hold integers (got a non-integral or non-finite value)")
    elif a.dtype.kind not in "iub":
        try:
            a = a.astype(np.int64)
        except (TypeError, ValueError):
            raise LayerError(name, f"must hold integers, got dtype {a.dtype}") from None
    return a.astype(np.int64)


def layer_table(P=None, M=None, **fields) -> tuple[dict, np.ndarray]:
    """(field -> int64 1-D array, M int64 1-D array), all of one length, from any accepted input.

    ``P``: None, a dict, a pandas DataFrame (extra columns ignored), a Layer or a list of
    Layers; ``fields``: keyword arrays or scalars (they override nothing: giving a field twice
    is an error).  ``M`` may also come from P's "M" key or column.  Fields other than c and
    d default like Layer's.  Raises LayerError / MachineError naming a missing or bad field.
    """
    values: dict = {}
    if P is not None:
        if isinstance(P, Layer):
            P = [P]
        if hasattr(P, "columns") and hasattr(P, "to_numpy"):  # a DataFrame
            values = _expand({c: P[c].to_numpy() for c in P.columns}, strict=False)
            if M is None and "M" in P.columns:
                M = P["M"].to_numpy()
        elif isinstance(P, dict):
            P = dict(P)
            if "M" in P:
                if M is None:
                    M = P["M"]
                del P["M"]
            values = _expand(P, strict=False)
        elif isinstance(P, (list, tuple)) and all(isinstance(x, Layer) for x in P):
            values = {f: np.array([getattr(L, f) for L in P], dtype=np.int64) for f in FIELDS}
        else:
            raise LayerError("P", f"expected a dict, a DataFrame, a Layer or a list of Layers, got {type(P).__name__}")
    extra = fields.pop("M", None)
    if extra is not None:
        if M is not None:
            raise MachineError("M", "given twice")
        M = extra
    for f, v in _expand(fields, strict=True).items():
        if f in values:
            raise LayerError(f, "given twice (in P and as a keyword)")
        values[f] = v
    if M is None:
        raise MachineError("M", "the Buffer size is required: pass M=... or an 'M' key or column")
    for req in ("c", "d"):
        if req not in values:
            raise LayerError(req, "required (input channels c and filters d)")
    arrays = {f: _int_array(f, values.get(f, _DEFAULTS.get(f))) for f in FIELDS}
    M = _int_array("M", M)
    shape = np.broadcast_shapes(M.shape, *(a.shape for a in arrays.values()))
    n = int(np.prod(shape)) if shape else 1
    out = {f: np.broadcast_to(a, shape).reshape(n) for f, a in arrays.items()}
    return out, np.broadcast_to(M, shape).reshape(n)


def lower_bound_np(P=None, M=None, **fields) -> dict:
    """bounds.lower_bound.lower_bound_np for any input of ``layer_table`` ({"Q", "A", "F"} per row)."""
    from bounds.lower_bound import lower_bound_np as f
    L, M = layer_table(P, M, **fields)
    return f(L, M)


def os_best_np(P=None, M=None, **fields) -> dict:
    """bounds.output_stationary.os_best_np for any input of ``layer_table`` (Q, A, F and the tile per row)."""
    from bounds.output_stationary import os_best_np as f
    L, M = layer_table(P, M, **fields)
    return f(L, M)


def ws_best_np(P=None, M=None, **fields) -> dict:
    """bounds.weight_stationary.ws_best_np for any input of ``layer_table`` (Q, A, F and the tile per row)."""
    from bounds.weight_stationary import ws_best_np as f
    L, M = layer_table(P, M, **fields)
    return f(L, M)
