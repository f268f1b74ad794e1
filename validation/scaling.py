"""Scaling checks: how energy grows when one layer parameter (or the Buffer size) varies.

A *series* is a group of rows identical in every layer column, platform and M except
one parameter: c, d, h=w (square inputs), k=kh=kw (square kernels; the padding may
change with the kernel as long as it follows one rule, "valid" 0 or "same"
(k-1)//2), stride=sh=sw, or M.  Series are found automatically in any reference
table.  For each series with at least 2 distinct values the measured log-log slope
d log E_ref / d log p is set beside the slope of each bound over the same points:
a bound that tracks the reference energy predicts the measured exponent.
docs/validation.md, "Scaling checks".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from validation.reference_data import LAYER_COLUMNS

__all__ = ["PARAMETERS", "MIN_POINTS", "find_series", "scaling_slopes", "summarize_scaling"]

#: Parameter name -> the raw columns it varies.
PARAMETERS = {"c": ("c",), "d": ("d",), "h=w": ("h", "w"), "k": ("kh", "kw", "ph", "pw"),
              "stride": ("sh", "sw"), "M": ("M",)}

#: Fewest distinct parameter values for a series to count (two points give the
#: difference quotient of the logs; the bundled grid has two strides).
MIN_POINTS = 2


def _param_values(df: pd.DataFrame, param: str) -> pd.Series:
    """The varied value of each row, NaN where the row does not fit the parameter's form."""
    if param in ("c", "d", "M"):
        return df[param].astype(float)
    a, b = {"h=w": ("h", "w"), "k": ("kh", "kw"), "stride": ("sh", "sw")}[param]
    return df[a].where(df[a] == df[b]).astype(float)


def _pad_mode(df: pd.DataFrame) -> pd.Series:
    """'valid' (no padding), 'same' ((k-1)//2 on each side) or the literal padding."""
    valid = (df["ph"] == 0) & (df["pw"] == 0)
    same = (df["ph"] == (df["kh"] - 1) // 2) & (df["pw"] == (df["kw"] - 1) // 2)
    lit = "p" + df["ph"].astype(str) + "," + df["pw"].astype(str)
    return pd.Series(np.where(valid, "valid", np.where(same, "same", lit)), index=df.index)


def find_series(df: pd.DataFrame, param: str, *, min_points: int = MIN_POINTS) -> pd.DataFrame:
    """Rows of ``df`` that belong to a series in ``param``, with columns series_id and value.

    ``df`` needs ``platform``, the layer columns and ``M``.  Duplicate shapes within a
    series (the same layer twice) share one point; the caller averages them.
    """
    if param not in PARAMETERS:
        raise ValueError(f"unknown scaling parameter {param!r}; known: {', '.join(PARAMETERS)}")
    work = df.copy()
    work["value"] = _param_values(work, param)
    work = work[work["value"].notna()]
    varied = set(PARAMETERS[param])
    key = ["platform"] + [c for c in LAYER_COLUMNS + ("M",) if c not in varied]
    if param == "k":
        work["pad_mode"] = _pad_mode(work)
        # an unpadded kernel of size 1 or 2 is also "same"-padded: it joins both series
        both = (work["pad_mode"] == "valid") & (work["ph"] == (work["kh"] - 1) // 2) \
            & (work["pw"] == (work["kw"] - 1) // 2)
        work = pd.concat([work, work[both].assign(pad_mode="same")])
        key.append("pad_mode")
    if work.empty:
        return work.assign(series_id=pd.Series(dtype=int))
    gid = work.groupby(key, sort=True, dropna=False).ngroup()
    work["series_id"] = gid.to_numpy()
    distinct = work.groupby("series_id")["value"].nunique()
    good = distinct.index[distinct >= min_points]
    return work[work["series_id"].isin(good)]


def _slopes(points: pd.DataFrame, col: str) -> pd.Series:
    """Least-squares slope of log(col) on log(value) per series_id (NaN if any point is not finite)."""
    x = np.log(points["value"].to_numpy(float))
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.log(points[col].to_numpy(float))
    g = points["series_id"].to_numpy()
    t = pd.DataFrame({"g": g, "x": x, "y": y})
    t["fin"] = np.isfinite(t["y"])
    t["xm"] = t.groupby("g")["x"].transform("mean")
    t["ym"] = t.groupby("g")["y"].transform("mean")
    t["sxy"] = (t["x"] - t["xm"]) * (t["y"] - t["ym"])
    t["sxx"] = (t["x"] - t["xm"]) ** 2
    agg = t.groupby("g").agg(sxy=("sxy", "sum"), sxx=("sxx", "sum"), fin=("fin", "all"))
    s = agg["sxy"] / agg["sxx"]
    return s.where(agg["fin"])


def scaling_slopes(df: pd.DataFrame, bound_columns: dict, *, energy: str = "energy_pJ",
                   parameters=tuple(PARAMETERS), min_points: int = MIN_POINTS) -> pd.DataFrame:
    """One row per series: platform, parameter, the fixed values, the varied values,
    the measured slope of E_ref and the slope of each bound (``slope_<name>``).

    ``bound_columns`` maps a bound's name to its energy column in ``df`` (e.g.
    {"LB": "lb_E"}).  A bound infinite at any point of a series gets NaN there.
    """
    out = []
    for param in parameters:
        rows = find_series(df, param, min_points=min_points)
        if rows.empty:
            continue
        cols = [energy] + list(bound_columns.values())
        # one point per (series, value): geometric mean over duplicate shapes
        with np.errstate(divide="ignore"):
            logs = np.log(rows[cols].astype(float))
        logs["series_id"] = rows["series_id"].to_numpy()
        logs["value"] = rows["value"].to_numpy()
        pts = logs.groupby(["series_id", "value"], as_index=False).mean()
        pts[cols] = np.exp(pts[cols])
        res = pd.DataFrame({"slope_ref": _slopes(pts, energy)})
        for name, col in bound_columns.items():
            res[f"slope_{name}"] = _slopes(pts, col)
        first = rows.groupby("series_id").first()
        varied = set(PARAMETERS[param])
        fixed_cols = [c for c in LAYER_COLUMNS + ("M",) if c not in varied]
        res["platform"] = first["platform"]
        res["parameter"] = param
        res["fixed"] = first[fixed_cols].apply(
            lambda r: " ".join(f"{c}={int(r[c])}" for c in fixed_cols), axis=1)
        if param == "k":
            res["fixed"] += " pad=" + first["pad_mode"]
        vals = pts.groupby("series_id")["value"].apply(lambda v: ",".join(str(int(x)) for x in sorted(v)))
        res["values"] = vals
        res["n_points"] = pts.groupby("series_id").size()
        out.append(res.reset_index(drop=True))
    cols = ["platform", "parameter", "fixed", "values", "n_points", "slope_ref"] + \
        [f"slope_{n}" for n in bound_columns]
    if not out:
        return pd.DataFrame(columns=cols)
    return pd.concat(out, ignore_index=True).loc[:, cols]


def summarize_scaling(series: pd.DataFrame) -> pd.DataFrame:
    """Per platform and parameter: number of series, median measured slope, median slope
    of each bound, and the median absolute difference |slope_bound - slope_ref|."""
    bcols = [c for c in series.columns if c.startswith("slope_") and c != "slope_ref"]
    if series.empty:
        return pd.DataFrame(columns=["platform", "parameter", "n_series", "slope_ref"] + bcols)
    s = series.copy()
    agg = {"n_series": ("slope_ref", "size"), "slope_ref": ("slope_ref", "median")}
    for c in bcols:
        s[f"gap_{c[6:]}"] = (s[c] - s["slope_ref"]).abs()
        agg[c] = (c, "median")
        agg[f"gap_{c[6:]}"] = (f"gap_{c[6:]}", "median")
    order = {p: i for i, p in enumerate(PARAMETERS)}
    out = s.groupby(["platform", "parameter"], as_index=False).agg(**agg)
    out["_o"] = out["parameter"].map(order)
    return out.sort_values(["platform", "_o"]).drop(columns="_o").reset_index(drop=True)
