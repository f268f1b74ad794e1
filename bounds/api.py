"""One call for all bounds of a layer: the lower bound and both dataflows' best tiles.

``evaluate`` (one layer, exact integer search), ``evaluate_network`` (many layers and
their totals) and ``evaluate_table`` (a DataFrame of layers and buffer sizes, vectorized)
are what the CLI, the validation and the figures use.  The theory behind each number
is in docs/theory.md; the dataflows in docs/dataflow_os.md and docs/dataflow_ws.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bounds.lower_bound import layer_arrays, lower_bound, lower_bound_np, used_inputs_1d_np
from bounds.output_stationary import os_best, os_best_np
from bounds.result import Cost, InfeasibleError
from bounds.weight_stationary import ws_best, ws_best_np
from complexity.layer import Layer
from complexity.machine import Machine

__all__ = ["LayerBounds", "NetworkBounds", "evaluate", "evaluate_network", "evaluate_table",
           "TABLE_COLUMNS"]

#: Columns that evaluate_table adds to its input.
TABLE_COLUMNS = ("F", "X", "W", "Y", "X_used", "lb_Q", "lb_A", "lb_E", "os_Q", "os_A", "os_E",
                 "ws_Q", "ws_A", "ws_E", "min_Q", "min_A", "min_E")

_FIELDS = ("b", "c", "d", "h", "w", "kh", "kw", "sh", "sw", "ph", "pw", "groups")


def _costs(c: Cost) -> dict:
    return {"Q": int(c.Q), "A": int(c.A), "F": int(c.F), "E": float(c.E)}


@dataclass(frozen=True)
class LayerBounds:
    """The lower bound and the best OS and WS tilings of one layer on one machine."""

    layer: Layer
    machine: Machine
    lower_bound: Cost
    os: Cost
    ws: Cost

    @property
    def best_name(self) -> str:
        """"os" or "ws": the dataflow with the lower energy (OS on ties)."""
        return "os" if self.os.E <= self.ws.E else "ws"

    @property
    def best(self) -> Cost:
        """The cheaper dataflow (by energy)."""
        return self.os if self.best_name == "os" else self.ws

    @property
    def gap(self) -> float:
        """min(OS, WS) / LB on DRAM traffic Q (>= 1)."""
        return min(self.os.Q, self.ws.Q) / self.lower_bound.Q

    @property
    def gap_E(self) -> float:
        """best energy / lower-bound energy (>= 1)."""
        return self.best.E / self.lower_bound.E

    def to_json(self) -> dict:
        """Keys: layer, machine, F, sizes {X, W, Y, X_used}, lower_bound, os, ws, best, gap_Q, gap_E (+ name)."""
        L = self.layer
        out: dict = {}
        if L.name:
            out["name"] = L.name
        out["layer"] = {f: getattr(L, f) for f in _FIELDS}
        out["machine"] = {"M": self.machine.M, "eD": self.machine.eD, "eB": self.machine.eB,
                          "eM": self.machine.eM, "bits": self.machine.bits}
        out["F"] = L.F
        out["sizes"] = {"X": L.X, "W": L.W, "Y": L.Y, "X_used": L.X_used}
        out["lower_bound"] = self.lower_bound.to_json()
        out["os"] = self.os.to_json()
        out["ws"] = self.ws.to_json()
        out["best"] = self.best_name
        out["gap_Q"] = self.gap
        out["gap_E"] = self.gap_E
        return out


def evaluate(layer: Layer, machine: Machine, exhaustive: bool = True) -> LayerBounds:
    """Lower bound and best OS / WS tiles of ``layer`` on ``machine``.

    ``exhaustive`` selects the exact integer tile search (else the fast candidate search
    of the vectorized code, still an exact cost of a fitting tile).  Raises
    InfeasibleError when a dataflow's smallest tile does not fit in M.
    """
    return LayerBounds(layer=layer, machine=machine, lower_bound=lower_bound(layer, machine),
                       os=os_best(layer, machine, exhaustive=exhaustive),
                       ws=ws_best(layer, machine, exhaustive=exhaustive))


@dataclass(frozen=True)
class NetworkBounds:
    """Per-layer bounds of a network and their sums."""

    layers: tuple[LayerBounds, ...]

    def total(self, which: str) -> dict:
        """Sum of Q, A, F, E over the layers for "lower_bound", "os", "ws" or "best" (per-layer cheaper)."""
        costs = [lb.best if which == "best" else getattr(lb, which) for lb in self.layers]
        return {"Q": sum(int(c.Q) for c in costs), "A": sum(int(c.A) for c in costs),
                "F": sum(int(c.F) for c in costs), "E": float(sum(c.E for c in costs))}

    @property
    def totals(self) -> dict:
        return {k: self.total(k) for k in ("lower_bound", "os", "ws", "best")}

    def to_json(self) -> dict:
        return {"layers": [lb.to_json() for lb in self.layers], "totals": self.totals}


def evaluate_network(layers, machine: Machine, exhaustive: bool = True) -> NetworkBounds:
    """``evaluate`` for every layer of a network (an iterable of Layer)."""
    return NetworkBounds(tuple(evaluate(L, machine, exhaustive=exhaustive) for L in layers))


#: evaluate_table searches tiles exhaustively when a table has at most this many distinct rows.
EXACT_ROW_LIMIT = 5000


def _exact_dataflows(L: dict, M: np.ndarray, res: dict) -> None:
    """Replace the candidate-search OS/WS counts in ``res`` by the exhaustive optimum, per distinct row."""
    keys = np.stack([L[f] for f in _FIELDS] + [M], axis=1)
    uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    for name, best in (("os", os_best), ("ws", ws_best)):
        Q, A, F = (np.full(len(uniq), np.inf) for _ in range(3))
        for i, row in enumerate(uniq):
            layer = Layer(**dict(zip(_FIELDS, map(int, row[:-1]))))
            try:
                cost = best(layer, Machine(M=int(row[-1])), exhaustive=True)
            except InfeasibleError:
                continue
            Q[i], A[i], F[i] = cost.Q, cost.A, cost.F
        res[name] = {"Q": Q[inverse], "A": A[inverse], "F": F[inverse]}


def evaluate_table(df, eD: float = 200, eB: float = 6, eM: float = 1, bits: int = 16,
                   exact: bool | None = None):
    """Bounds for every row of ``df`` (Layer field columns and ``M``).

    Returns a copy of ``df`` with the columns of TABLE_COLUMNS added: sizes F, X, W, Y,
    X_used; lb_*, os_*, ws_* (Q, A, E); min_* = the dataflow of lower energy per row.
    With ``exact`` (the default for tables of at most EXACT_ROW_LIMIT distinct rows) the
    dataflow tiles are the exhaustive optimum, as the upper bounds are defined; otherwise
    they come from os_best_np / ws_best_np's fast candidate search (a real tile each, so
    still an upper bound, at most about 1.2-1.4x above the optimum).  Rows where no tile
    fits get inf.  Missing optional layer columns take Layer's defaults.
    """
    import pandas as pd

    if "M" not in df.columns:
        raise KeyError("evaluate_table needs an 'M' column (Buffer words)")
    n = len(df)
    P = {f: df[f].to_numpy(dtype=np.int64) for f in _FIELDS if f in df.columns}
    L = {f: np.broadcast_to(v, (n,)).astype(np.int64) for f, v in layer_arrays(P).items()}
    M = df["M"].to_numpy(dtype=np.int64)
    mach = Machine(M=1, eD=eD, eB=eB, eM=eM, bits=bits)
    out = pd.DataFrame(index=df.index)
    cg = L["c"] // L["groups"]
    nh = (L["h"] + 2 * L["ph"] - L["kh"]) // L["sh"] + 1
    nw = (L["w"] + 2 * L["pw"] - L["kw"]) // L["sw"] + 1
    Y = L["b"] * L["d"] * nh * nw
    out["F"] = Y * cg * L["kh"] * L["kw"]
    out["X"] = L["b"] * L["c"] * L["h"] * L["w"]
    out["W"] = L["d"] * cg * L["kh"] * L["kw"]
    out["Y"] = Y
    out["X_used"] = (L["b"] * L["c"] * used_inputs_1d_np(L["h"], L["kh"], L["sh"], L["ph"])
                     * used_inputs_1d_np(L["w"], L["kw"], L["sw"], L["pw"]))
    res = {"lb": lower_bound_np(L, M)}
    if exact is None:
        exact = len(np.unique(np.stack([L[f] for f in _FIELDS] + [M], axis=1), axis=0)) <= EXACT_ROW_LIMIT
    if exact:
        _exact_dataflows(L, M, res)
    else:
        res["os"], res["ws"] = os_best_np(L, M), ws_best_np(L, M)
    for key, r in res.items():
        Q = np.asarray(r["Q"], dtype=np.float64)
        A = np.asarray(r["A"], dtype=np.float64)
        F = np.asarray(r["F"], dtype=np.float64)
        with np.errstate(invalid="ignore"):
            E = mach.energy(Q, A, F)
        out[f"{key}_Q"], out[f"{key}_A"], out[f"{key}_E"] = Q, A, np.where(np.isfinite(Q), E, np.inf)
    use_os = out["os_E"].to_numpy() <= out["ws_E"].to_numpy()
    for x in ("Q", "A", "E"):
        out[f"min_{x}"] = np.where(use_os, out[f"os_{x}"], out[f"ws_{x}"])
    result = df.copy()
    for col in TABLE_COLUMNS:
        result[col] = out[col].to_numpy()
    return result
