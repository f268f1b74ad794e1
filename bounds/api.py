"""One call for all bounds of a layer: the lower bound and the dataflows' best tiles.

``evaluate`` (one layer, exact integer search), ``evaluate_network`` (many layers and
their totals) and ``evaluate_table`` (a DataFrame of layers and buffer sizes, vectorized)
are what the CLI, the validation and the figures use.  The theory behind each number
is in docs/theory.md; the dataflows in docs/dataflow_os.md, docs/dataflow_ws.md and
docs/dataflow_os_lean.md (OS-lean, "os_lean": OS with one input channel at a time and one
operand streamed through a single word; same Q as OS, smaller footprint, so it fits larger
tiles).  "best" / "min" / the gaps take the cheapest feasible dataflow of the three.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bounds.lower_bound import layer_arrays, lower_bound, lower_bound_np, used_inputs_1d_np
from bounds.output_stationary import os_best, os_best_exact_np, os_best_np
from bounds.output_stationary_lean import osl_best, osl_best_exact_np, osl_best_np
from bounds.result import Cost, InfeasibleError
from bounds.weight_stationary import ws_best, ws_best_exact_np, ws_best_np
from complexity.layer import Layer
from complexity.machine import Machine

__all__ = ["LayerBounds", "NetworkBounds", "evaluate", "evaluate_network", "evaluate_table",
           "TABLE_COLUMNS", "TOTALS_DEFINITION"]

#: Columns that evaluate_table adds to its input (the best tiles last: 0 where no tile fits).
TABLE_COLUMNS = ("F", "X", "W", "Y", "X_used", "lb_Q", "lb_A", "lb_E", "os_Q", "os_A", "os_E",
                 "ws_Q", "ws_A", "ws_E", "osl_Q", "osl_A", "osl_E", "min_Q", "min_A", "min_E",
                 "os_b", "os_d", "os_th", "os_tw", "os_c", "ws_d", "ws_c", "osl_b", "osl_d", "osl_th", "osl_tw")

_FIELDS = ("b", "c", "d", "h", "w", "kh", "kw", "sh", "sw", "ph", "pw", "groups")


def _costs(c: Cost) -> dict:
    return {"Q": int(c.Q), "A": int(c.A), "F": int(c.F), "E": float(c.E)}


#: The dataflows ``evaluate`` searches, in the order of the JSON and of the frames (ties of "best": the first).
DATAFLOWS = ("os", "ws", "os_lean")
#: Column prefix of each dataflow in the frames and in evaluate_table (``f"{prefix}_Q"``, ...).
PREFIX = {"os": "os", "ws": "ws", "os_lean": "osl"}
#: Short upper-case label of each dataflow in the text outputs.
LABEL = {"os": "OS", "ws": "WS", "os_lean": "OSL"}
#: Keys of each dataflow's ``Cost.tiles``; the frame columns are ``f"{PREFIX[dataflow]}_{key}"`` (as in evaluate_table).
TILE_KEYS = {"os": ("b", "d", "th", "tw", "c"), "ws": ("d", "c"), "os_lean": ("b", "d", "th", "tw")}

#: How NetworkBounds totals are formed (also in its JSON, key "totals_definition").
TOTALS_DEFINITION = ("every total is the sum over the layers of that layer's value; 'best' takes, per layer, "
                     "the feasible dataflow of lowest energy among OS, WS and OS-lean (the first of them on ties) "
                     "and uses that same choice for Q, A, F "
                     "and E; a dataflow's total is null when it is infeasible on some layer; gap_Q and gap_E "
                     "are the 'best' totals over the 'lower_bound' totals")

_COST_KEYS = ("Q", "A", "F", "E")


def _json_float(x: float):
    """A float for JSON: nan and inf become None (JSON has neither)."""
    return float(x) if np.isfinite(x) else None


def _fmt(v) -> str:
    """A count with thousands separators, or '-' for a missing one."""
    return "-" if v is None else f"{int(v):,}"


def _frame(rows: list[dict]):
    """A DataFrame of ``rows`` whose integer-valued columns stay integer (nullable Int64 when some are missing)."""
    import pandas as pd

    df = pd.DataFrame(rows)
    for col in df.columns:
        raw = [r.get(col) for r in rows]
        vals = [v for v in raw if v is not None]
        if vals and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in vals):
            try:
                df[col] = pd.array(raw, dtype="Int64")
            except (OverflowError, TypeError, ValueError):  # beyond int64: keep the exact Python ints
                df[col] = pd.Series(raw, index=df.index, dtype=object)
    return df


def _html(title: str, frame) -> str:
    """Notebook HTML: a bold one-line summary above the table."""
    from html import escape
    return f"<div><p><b>{escape(title)}</b></p>{frame.to_html(index=False, na_rep='-', max_rows=40)}</div>"


@dataclass(frozen=True)
class LayerBounds:
    """The lower bound and the best OS, WS and OS-lean tilings of one layer on one machine.

    ``os`` / ``ws`` / ``os_lean`` is None when no tile of that dataflow fits in M;
    ``infeasible`` then maps the dataflow's name to a one-line reason (it is {} when all
    fit).  ``best``, ``best_name``, ``gap`` and ``gap_E`` use the feasible dataflows only;
    when none fits, ``best`` and ``best_name`` are None and both gaps are nan.
    """

    layer: Layer
    machine: Machine
    lower_bound: Cost
    os: Cost | None
    ws: Cost | None
    os_lean: Cost | None = None
    infeasible: dict = field(default_factory=dict)

    def _feasible(self) -> list[tuple[str, Cost]]:
        return [(n, getattr(self, n)) for n in DATAFLOWS if getattr(self, n) is not None]

    @property
    def best_name(self) -> str | None:
        """"os", "ws" or "os_lean": the feasible dataflow of least energy (first of DATAFLOWS on ties), or None."""
        feas = self._feasible()
        if not feas:
            return None
        return min(feas, key=lambda nc: nc[1].E)[0]  # min keeps the first (OS, then WS) on ties

    @property
    def best(self) -> Cost | None:
        """The cheapest feasible dataflow (by energy), or None when none fits."""
        name = self.best_name
        return None if name is None else getattr(self, name)

    @property
    def gap(self) -> float:
        """min Q over the feasible dataflows / LB Q (>= 1); nan when none fits."""
        feas = self._feasible()
        return min(c.Q for _, c in feas) / self.lower_bound.Q if feas else float("nan")

    @property
    def gap_E(self) -> float:
        """best energy / lower-bound energy (>= 1); nan when no dataflow fits."""
        best = self.best
        return best.E / self.lower_bound.E if best is not None else float("nan")

    def to_json(self) -> dict:
        """Keys: layer, machine, F, sizes {X, W, Y, X_used}, lower_bound, os, ws, os_lean, best, gap_Q, gap_E (+ name).

        An infeasible dataflow is null, and then the key "infeasible" maps it to its reason;
        best and the gaps are null when no dataflow fits.
        """
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
        out["os"] = None if self.os is None else self.os.to_json()
        out["ws"] = None if self.ws is None else self.ws.to_json()
        out["os_lean"] = None if self.os_lean is None else self.os_lean.to_json()
        out["best"] = self.best_name
        out["gap_Q"] = _json_float(self.gap)
        out["gap_E"] = _json_float(self.gap_E)
        if self.infeasible:
            out["infeasible"] = dict(self.infeasible)
        return out

    def row(self) -> dict:
        """One flat row: name, layer fields, M, F, lb_/os_/ws_/osl_/min_ Q A E, the tiles, best, gaps, infeasible.

        Tiles are the columns ``os_b, os_d, os_th, os_tw, os_c, ws_d, ws_c, osl_b, osl_d, osl_th, osl_tw``
        (evaluate_table's names); a missing (infeasible) value is None.  ``min_*`` is the best dataflow's cost.
        """
        L = self.layer
        row: dict = {"name": L.name, **{f: getattr(L, f) for f in _FIELDS}, "M": self.machine.M, "F": L.F}
        entries = [("lb", None, self.lower_bound)] + [(PREFIX[n], n, getattr(self, n)) for n in DATAFLOWS]
        for key, flow, c in entries + [("min", None, self.best)]:
            for x in ("Q", "A", "E"):
                row[f"{key}_{x}"] = None if c is None else (float(c.E) if x == "E" else int(getattr(c, x)))
            if flow is not None:
                for t in TILE_KEYS[flow]:
                    row[f"{key}_{t}"] = None if c is None else int(c.tiles[t])
        row["best"] = self.best_name
        row["gap_Q"], row["gap_E"] = self.gap, self.gap_E
        row["infeasible"] = "; ".join(f"{k}: {v}" for k, v in self.infeasible.items())
        return row

    def to_frame(self):
        """A one-row pandas DataFrame (columns of ``row``; counts stay integer)."""
        return _frame([self.row()])

    def _summary(self) -> str:
        L = self.layer
        parts = [f"LB Q={_fmt(self.lower_bound.Q)}"]
        for n in DATAFLOWS:
            c = getattr(self, n)
            parts.append(f"{LABEL[n]} Q={_fmt(c.Q)}" if c is not None else f"{LABEL[n]} infeasible")
        tail = (f"best {LABEL[self.best_name]}, gap Q {self.gap:.3f}x E {self.gap_E:.3f}x" if self.best_name
                else "no dataflow fits")
        return f"{L.describe()}; M={self.machine.M:,}: " + ", ".join(parts) + f"; {tail}"

    def __repr__(self) -> str:
        return f"LayerBounds({self._summary()})"

    def _repr_html_(self) -> str:
        import pandas as pd

        rows = []
        for key, name, c in [("lower_bound", "LB", self.lower_bound)] + [(n, LABEL[n], getattr(self, n))
                                                                          for n in DATAFLOWS]:
            tiles = "" if c is None or not c.tiles else ", ".join(f"{k}={v}" for k, v in c.tiles.items())
            rows.append({"": name, "Q": _fmt(c.Q if c else None), "A": _fmt(c.A if c else None),
                         "E": "-" if c is None else f"{c.E:.6g}",
                         "tiles": tiles or self.infeasible.get(key, "")})
        return _html(f"LayerBounds: {self._summary()}", pd.DataFrame(rows))


def _infeasible_reason(exc: InfeasibleError, M: int) -> str:
    """One line: the Buffer is smaller than the footprint of the dataflow's smallest tile."""
    return f"M = {M:,} words is below {exc.M_min:,}, the footprint of the smallest {exc.dataflow} tile"


def evaluate(layer: Layer, machine: Machine, exhaustive: bool = True) -> LayerBounds:
    """Lower bound and best OS / WS / OS-lean tiles of ``layer`` on ``machine``.

    ``exhaustive`` selects the exact integer tile search (else the fast candidate search
    of the vectorized code, still an exact cost of a fitting tile).  A dataflow whose
    smallest tile does not fit in M is None in the result, with its reason in
    ``infeasible``; the lower bound itself raises InfeasibleError when M < 3.
    """
    lb = lower_bound(layer.check_int64(), machine)
    costs, infeasible = {}, {}
    for name, best in (("os", os_best), ("ws", ws_best), ("os_lean", osl_best)):
        try:
            costs[name] = best(layer, machine, exhaustive=exhaustive)
        except InfeasibleError as exc:
            costs[name] = None
            infeasible[name] = _infeasible_reason(exc, machine.M)
    return LayerBounds(layer=layer, machine=machine, lower_bound=lb, os=costs["os"], ws=costs["ws"],
                       os_lean=costs["os_lean"], infeasible=infeasible)


@dataclass(frozen=True)
class NetworkBounds:
    """Per-layer bounds of a network and their totals.

    Totals (``total``, ``totals``, the TOTAL row of ``to_frame(totals=True)``) follow one
    definition for every column, TOTALS_DEFINITION: the sum over the layers of that
    layer's value, "best" being each layer's cheaper feasible dataflow (the same choice
    for Q, A, F and E); a dataflow's total is None when it is infeasible on some layer.
    Iterating yields one flat dict per layer (``LayerBounds.row``), so
    ``pd.DataFrame(network_bounds)`` works; ``layers`` holds the LayerBounds.
    """

    layers: tuple[LayerBounds, ...]

    def total(self, which: str) -> dict | None:
        """Sum of Q, A, F, E over the layers for "lower_bound", "os", "ws", "os_lean" or "best"; None if one lacks."""
        if which not in _TOTAL_KEYS:
            raise KeyError(f"which: expected lower_bound, os, ws, os_lean or best, got {which!r}")
        costs = [getattr(lb, which) for lb in self.layers]
        if any(c is None for c in costs):
            return None
        return {"Q": sum(int(c.Q) for c in costs), "A": sum(int(c.A) for c in costs),
                "F": sum(int(c.F) for c in costs), "E": float(sum(c.E for c in costs))}

    @property
    def totals(self) -> dict:
        """{"lower_bound", "os", "ws", "os_lean", "best"} -> total (see TOTALS_DEFINITION)."""
        return {k: self.total(k) for k in _TOTAL_KEYS}

    @property
    def gap_Q(self) -> float:
        """Total best Q / total lower-bound Q (nan when some layer has no feasible dataflow)."""
        t = self.totals
        return t["best"]["Q"] / t["lower_bound"]["Q"] if t["best"] else float("nan")

    @property
    def gap_E(self) -> float:
        """Total best E / total lower-bound E (nan when some layer has no feasible dataflow)."""
        t = self.totals
        return t["best"]["E"] / t["lower_bound"]["E"] if t["best"] else float("nan")

    def to_json(self) -> dict:
        """{"layers": [LayerBounds.to_json()], "totals": totals, "totals_definition": TOTALS_DEFINITION}."""
        return {"layers": [lb.to_json() for lb in self.layers], "totals": self.totals,
                "totals_definition": TOTALS_DEFINITION}

    def __iter__(self):
        return (lb.row() for lb in self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def total_row(self) -> dict:
        """The TOTAL row of ``to_frame(totals=True)``: every column by TOTALS_DEFINITION."""
        t = self.totals
        row: dict = {"name": "TOTAL"}
        row["F"] = t["lower_bound"]["F"]
        for key, name in [("lb", "lower_bound")] + [(PREFIX[n], n) for n in DATAFLOWS] + [("min", "best")]:
            for x in ("Q", "A", "E"):
                row[f"{key}_{x}"] = None if t[name] is None else t[name][x]
        row["gap_Q"], row["gap_E"] = self.gap_Q, self.gap_E
        return row

    def to_frame(self, totals: bool = False):
        """A pandas DataFrame, one row per layer (``LayerBounds.row``: layer fields, costs, tiles as columns).

        With ``totals`` a last row named TOTAL holds ``total_row()`` (layer and tile cells empty).
        """
        rows = [lb.row() for lb in self.layers]
        if totals:
            rows.append(self.total_row())
        return _frame(rows)

    def _summary(self) -> str:
        t = self.totals
        parts = [f"{len(self.layers)} layers", f"LB Q={_fmt(t['lower_bound']['Q'])}"]
        for key, name in [(n, LABEL[n]) for n in DATAFLOWS] + [("best", "per-layer best")]:
            parts.append(f"{name} Q={_fmt(t[key]['Q'])}" if t[key] else f"{name} infeasible on some layer")
        if t["best"]:
            parts.append(f"gap Q {self.gap_Q:.3f}x E {self.gap_E:.3f}x")
        return ", ".join(parts)

    def __repr__(self) -> str:
        return f"NetworkBounds({self._summary()})"

    def _repr_html_(self) -> str:
        cols = ["name", "F", "lb_Q", "os_Q", "ws_Q", "osl_Q", "min_Q", "best", "gap_Q", "lb_E", "min_E", "infeasible"]
        return _html(f"NetworkBounds: {self._summary()}", self.to_frame(totals=True)[cols])


def evaluate_network(layers, machine: Machine, exhaustive: bool = True) -> NetworkBounds:
    """``evaluate`` for every layer of a network (an iterable of Layer)."""
    return NetworkBounds(tuple(evaluate(L, machine, exhaustive=exhaustive) for L in layers))


_TOTAL_KEYS = ("lower_bound",) + DATAFLOWS + ("best",)


def _exact_dataflows(L: dict, M: np.ndarray, res: dict) -> None:
    """Set ``res["os"]``, ``res["ws"]``, ``res["osl"]`` to the exhaustive optimum of every row (exact, tiles, "fit").

    Vectorized over the distinct rows (os_best_exact_np, ws_best_exact_np, osl_best_exact_np):
    about 0.1-0.3 ms a row, so the exact search is the default at any table size.
    """
    keys = np.stack([L[f] for f in _FIELDS] + [M], axis=1)
    uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    U = {f: uniq[:, i] for i, f in enumerate(_FIELDS)}
    for name, best, tiles in (("os", os_best_exact_np, {"b": "Bt", "d": "D", "th": "Th", "tw": "Tw", "c": "C"}),
                              ("ws", ws_best_exact_np, {"d": "d", "c": "c"}),
                              ("osl", osl_best_exact_np, {"b": "Bt", "d": "D", "th": "Th", "tw": "Tw"})):
        r = best(U, uniq[:, -1])
        res[name] = {"Q": r["Q"][inverse], "A": r["A"][inverse], "F": r["F"][inverse], "fit": r["fit"][inverse],
                     "tiles": {t: np.asarray(r[k][inverse], dtype=np.int64) for t, k in tiles.items()}}


def _approx_dataflows(L: dict, M: np.ndarray, res: dict) -> None:
    """Set ``res["os"]``, ``res["ws"]``, ``res["osl"]`` from the fast candidate searches (os/ws/osl_best_np)."""
    o, w, ol = os_best_np(L, M), ws_best_np(L, M), osl_best_np(L, M)
    res["os"] = {"Q": o["Q"], "A": o["A"], "F": o["F"], "fit": np.isfinite(o["Q"]),
                 "tiles": {t: o[k] for t, k in (("b", "Bt"), ("d", "D"), ("th", "Th"), ("tw", "Tw"), ("c", "C"))}}
    res["ws"] = {"Q": w["Q"], "A": w["A"], "F": w["F"], "fit": np.isfinite(w["Q"]),
                 "tiles": {"d": w["d"], "c": w["c"]}}
    res["osl"] = {"Q": ol["Q"], "A": ol["A"], "F": ol["F"], "fit": np.isfinite(ol["Q"]),
                  "tiles": {t: ol[k] for t, k in (("b", "Bt"), ("d", "D"), ("th", "Th"), ("tw", "Tw"))}}


def _count_column(v, fit=None) -> np.ndarray:
    """A count column: int64 when every row fits and is below 2**63, else float64 with inf where nothing fits."""
    v = np.asarray(v)
    fit = np.ones(v.shape, dtype=bool) if fit is None else np.asarray(fit, dtype=bool) & np.isfinite(
        v.astype(np.float64))
    if fit.all() and (v.size == 0 or float(np.max(v.astype(np.float64))) < 2.0 ** 63):
        return v.astype(np.int64) if v.dtype != object else np.array([int(x) for x in v], dtype=np.int64)
    return np.where(fit, v.astype(np.float64), np.inf)


def _check_table(L: dict, M: np.ndarray, index) -> None:
    """Raise LayerError (MachineError for M) naming the field and the first row that is not a valid layer."""
    from complexity.layer import COUNT_LIMIT, LayerError, show_value
    from complexity.machine import MachineError

    rules = [(f, L[f] < 1, "must be a positive integer") for f in ("b", "c", "d", "h", "w", "kh", "kw", "sh", "sw",
                                                                    "groups")]
    rules += [(f, L[f] < 0, "must be a non-negative integer") for f in ("ph", "pw")]
    rules += [(f, L[f] % np.maximum(L["groups"], 1) != 0, "is not divisible by groups") for f in ("c", "d")]
    for k, n, p in (("kh", "h", "ph"), ("kw", "w", "pw")):
        rules.append((k, L[k] > L[n] + 2 * L[p], f"kernel {k} is larger than the padded input {n}+2*{p}"))
        rules.append((p, L[p] >= L[k], f"padding {p} must be smaller than the kernel {k}"))
    for f, bad, msg in rules:
        if bad.any():
            i = int(np.argmax(bad))
            raise LayerError(f, f"row {show_value(index[i])}: {msg}, got {f}={int(L[f][i])}")
    # the counts in float64, which cannot overflow: a row beyond COUNT_LIMIT would wrap int64
    f = {k: L[k].astype(np.float64) for k in L}
    nh = np.floor((f["h"] + 2 * f["ph"] - f["kh"]) / f["sh"]) + 1
    nw = np.floor((f["w"] + 2 * f["pw"] - f["kw"]) / f["sw"]) + 1
    Y = f["b"] * f["d"] * nh * nw
    counts = {"F": Y * f["c"] / f["groups"] * f["kh"] * f["kw"], "X": f["b"] * f["c"] * f["h"] * f["w"],
              "W": f["d"] * f["c"] / f["groups"] * f["kh"] * f["kw"], "Y": Y}
    for what, v in counts.items():
        if (v > COUNT_LIMIT).any():
            i = int(np.argmax(v > COUNT_LIMIT))
            raise LayerError(what, f"row {show_value(index[i])}: {v[i]:.3g} exceeds 2^60 = {COUNT_LIMIT:.3g}, the range of "
                                   "the 64-bit bound computations; use a smaller layer")
    if (M < 1).any():
        i = int(np.argmax(M < 1))
        raise MachineError("M", f"row {show_value(index[i])}: Buffer must be a positive number of words, got {int(M[i])}")


def evaluate_table(df, eD: float = 200, eB: float = 6, eM: float = 1, bits: int = 16,
                   exact: bool | None = None):
    """Bounds for every row of ``df`` (Layer field columns and ``M``).

    Returns a copy of ``df`` with the columns of TABLE_COLUMNS added: sizes F, X, W, Y,
    X_used; lb_*, os_*, ws_*, osl_* (Q, A, E; osl = OS-lean); min_* = the dataflow of lowest
    energy per row (OS, then WS, then OS-lean on ties); the best tiles os_b, os_d, os_th,
    os_tw, os_c, ws_d, ws_c and osl_b, osl_d, osl_th, osl_tw (0 where no tile fits).
    By default (``exact`` None or True) the dataflow tiles are the exhaustive optimum, as
    the upper bounds are defined, at any table size (vectorized over the distinct rows);
    ``exact=False`` takes os/ws/osl_best_np's fast candidate search instead (a real
    tile each, so still an upper bound, at most about 1.1x above the optimum).  Q, A and F
    are int64 columns where every row is finite; where some tile does not fit, the column
    is float64 with inf there.  Missing optional layer columns take Layer's defaults; a row
    that is not a valid layer raises LayerError (M < 1: MachineError) naming the field and row.
    """
    import pandas as pd

    if "M" not in df.columns:
        raise KeyError("evaluate_table needs an 'M' column (Buffer words)")
    n = len(df)
    P = {f: df[f].to_numpy(dtype=np.int64) for f in _FIELDS if f in df.columns}
    L = {f: np.broadcast_to(v, (n,)).astype(np.int64) for f, v in layer_arrays(P).items()}
    M = df["M"].to_numpy(dtype=np.int64)
    _check_table(L, M, df.index)
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
    lb = lower_bound_np(L, M)
    res = {"lb": {"Q": lb["Q"], "A": lb["A"], "F": lb["F"], "fit": np.isfinite(lb["Q"])}}
    if exact is None or exact:
        _exact_dataflows(L, M, res)
    else:
        _approx_dataflows(L, M, res)
    for key, r in res.items():
        fit = np.asarray(r["fit"], dtype=bool)
        Qf, Af, Ff = (np.asarray(r[x]).astype(np.float64) for x in ("Q", "A", "F"))
        with np.errstate(invalid="ignore"):
            E = mach.energy(Qf, Af, Ff)
        out[f"{key}_Q"], out[f"{key}_A"] = _count_column(r["Q"], fit), _count_column(r["A"], fit)
        out[f"{key}_E"] = np.where(fit, E, np.inf)
    flows = [PREFIX[n] for n in DATAFLOWS]
    Es = np.stack([out[f"{k}_E"].to_numpy(dtype=np.float64) for k in flows])
    pick = np.argmin(Es, axis=0)                   # the first of the least: OS, then WS, then OS-lean on ties
    choose = [pick == i for i in range(len(flows))]

    def select(arrs):
        arrs = [np.asarray(a) for a in arrs]
        if any(a.dtype == object for a in arrs):  # some exact count beyond int64: keep Python ints
            arrs = [a.astype(object) for a in arrs]
        return np.select(choose, arrs)

    min_fit = np.select(choose, [np.asarray(res[k]["fit"], dtype=bool) for k in flows])
    for x in ("Q", "A"):  # from the exact counts, not the float columns
        out[f"min_{x}"] = _count_column(select([res[k][x] for k in flows]), min_fit)
    out["min_E"] = np.select(choose, [out[f"{k}_E"].to_numpy() for k in flows])
    for key in flows:
        for t, v in res[key]["tiles"].items():
            out[f"{key}_{t}"] = np.where(res[key]["fit"], np.asarray(v), 0).astype(np.int64)
    result = df.copy()
    for col in TABLE_COLUMNS:
        result[col] = out[col].to_numpy()
    return result
