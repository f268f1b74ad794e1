"""Soundness of the lower bound against an estimator's DRAM traffic.

The lower bound Q_LB(M) holds for every execution on a two-level machine whose
Buffer of M words holds *all* on-chip data.  An estimator's platform keeps data in
more on-chip memories than its global buffer (weight SRAMs, PE register files), so
its DRAM words may fall below Q_LB(M) without contradiction; they must not fall below
Q_LB(M_onchip), M_onchip being the platform's total on-chip capacity in words (CSV
column ``M_onchip``, validation.platforms.onchip_words).  A row below that is either a
bug of the bound or an estimator counting fewer words than the layer must read at
least once (an operand's DRAM words below its compulsory size X_used, W or Y: an
"undercount").  docs/validation.md, "Soundness of the lower bound".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bounds.lower_bound import layer_arrays, lower_bound_np, used_inputs_1d_np
from validation.reference_data import LAYER_COLUMNS

__all__ = ["soundness_rows", "soundness_table", "worst_rows", "SOUNDNESS_COLUMNS"]

#: Columns of the per-platform table of soundness_table.
SOUNDNESS_COLUMNS = ("platform", "rows", "ge_lb_M", "share_ge_lb_M", "min_ratio_M", "rows_onchip",
                     "ge_lb_onchip", "share_ge_lb_onchip", "min_ratio_onchip", "below_onchip",
                     "below_onchip_undercount", "below_onchip_corrected")

_OPERANDS = (("X", "X_used"), ("W", "W"), ("Y", "Y"))


def _compulsory(df: pd.DataFrame) -> dict[str, np.ndarray]:
    """The words every execution reads (X_used, W) or writes (Y) at least once, per row."""
    L = layer_arrays({f: df[f].to_numpy(dtype=np.int64) for f in LAYER_COLUMNS if f in df.columns})
    n = len(df)
    L = {k: np.broadcast_to(v, (n,)).astype(np.int64) for k, v in L.items()}
    nh = (L["h"] + 2 * L["ph"] - L["kh"]) // L["sh"] + 1
    nw = (L["w"] + 2 * L["pw"] - L["kw"]) // L["sw"] + 1
    return {"X_used": L["b"] * L["c"] * used_inputs_1d_np(L["h"], L["kh"], L["sh"], L["ph"])
            * used_inputs_1d_np(L["w"], L["kw"], L["sw"], L["pw"]),
            "W": L["d"] * (L["c"] // L["groups"]) * L["kh"] * L["kw"],
            "Y": L["b"] * L["d"] * nh * nw}


def soundness_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Per row: Q_LB(M), Q_LB(M_onchip) and the ratios dram_words / Q_LB, plus undercounted operands.

    ``df`` needs the layer columns, ``M`` and ``dram_words``; ``M_onchip`` and
    ``dram_words_X/W/Y`` are optional (missing or empty cells give NaN ratios and
    no undercount).  Returns columns platform, layer, M, M_onchip, dram_words, lb_M,
    ratio_M, lb_onchip, ratio_onchip, undercount (e.g. "X", "" when none) and
    ratio_onchip_corrected (the DRAM words with every undercounted operand raised to
    its compulsory size, over Q_LB(M_onchip)), in ``df``'s row order and index.
    """
    if "dram_words" not in df.columns:
        raise KeyError("soundness_rows needs a 'dram_words' column (DRAM words of the estimator)")
    n = len(df)
    P = {f: df[f].to_numpy(dtype=np.int64) for f in LAYER_COLUMNS if f in df.columns}
    dram = pd.to_numeric(df["dram_words"], errors="coerce").to_numpy(dtype=float)
    lb_M = lower_bound_np(P, df["M"].to_numpy(dtype=np.int64))["Q"] if n else np.zeros(0)
    onchip = pd.to_numeric(df["M_onchip"], errors="coerce").to_numpy(dtype=float) \
        if "M_onchip" in df.columns else np.full(n, np.nan)
    has = np.isfinite(onchip) & (onchip >= 1)
    lb_on = np.full(n, np.nan)
    if has.any():
        sub = {f: v[has] for f, v in P.items()}
        lb_on[has] = lower_bound_np(sub, onchip[has].astype(np.int64))["Q"]
    comp = _compulsory(df) if n else {}
    under = [""] * n
    corrected = dram.copy()
    for op, ckey in _OPERANDS:
        col = f"dram_words_{op}"
        if col not in df.columns or not n:
            continue
        words = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
        low = np.isfinite(words) & (words < comp[ckey])
        corrected = corrected + np.where(low, comp[ckey] - np.where(low, words, 0), 0)
        for i in np.flatnonzero(low):
            under[i] += op
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio_M = dram / lb_M
        ratio_on = dram / lb_on
        ratio_corr = corrected / lb_on
    names = df["layer_name"].fillna("").astype(str).to_numpy() if "layer_name" in df.columns else [""] * n
    shape = df.loc[:, ["c", "d", "h", "w", "kh", "kw", "sh"]].to_numpy(dtype=np.int64)
    layer = [(f"{nm} " if nm else "") + "(c{} d{} {}x{} k{}x{} s{})".format(*sh) for nm, sh in zip(names, shape)]
    return pd.DataFrame({"platform": df["platform"].astype(str).to_numpy() if "platform" in df.columns
                         else np.full(n, ""), "layer": layer, "M": df["M"].to_numpy(dtype=np.int64),
                         "M_onchip": onchip, "dram_words": dram, "lb_M": lb_M, "ratio_M": ratio_M,
                         "lb_onchip": lb_on, "ratio_onchip": ratio_on, "undercount": under,
                         "ratio_onchip_corrected": ratio_corr}, index=df.index)


def soundness_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per platform (of soundness_rows' output): how many rows reach Q_LB(M) and Q_LB(M_onchip).

    ``ge_lb_*`` counts rows with dram_words >= the bound (``share_*`` the fraction of
    the rows where that bound is known), ``min_ratio_*`` the least dram_words / Q_LB;
    ``below_onchip`` counts rows under Q_LB(M_onchip) and ``below_onchip_undercount``
    those of them where some operand's DRAM words are below its compulsory size (the
    estimator's accounting, not the bound, is at fault there); ``below_onchip_corrected``
    the rows still under it once those operands are raised to their compulsory size.
    """
    recs = []
    for p, g in rows.groupby("platform", sort=True):
        ok_M = np.isfinite(g["ratio_M"])
        ok_on = np.isfinite(g["ratio_onchip"])
        below = ok_on & (g["ratio_onchip"] < 1)
        recs.append(dict(
            platform=p, rows=len(g),
            ge_lb_M=int((g["ratio_M"][ok_M] >= 1).sum()),
            share_ge_lb_M=float((g["ratio_M"][ok_M] >= 1).mean()) if ok_M.any() else np.nan,
            min_ratio_M=float(g["ratio_M"][ok_M].min()) if ok_M.any() else np.nan,
            rows_onchip=int(ok_on.sum()),
            ge_lb_onchip=int((g["ratio_onchip"][ok_on] >= 1).sum()),
            share_ge_lb_onchip=float((g["ratio_onchip"][ok_on] >= 1).mean()) if ok_on.any() else np.nan,
            min_ratio_onchip=float(g["ratio_onchip"][ok_on].min()) if ok_on.any() else np.nan,
            below_onchip=int(below.sum()),
            below_onchip_undercount=int((below & (g["undercount"] != "")).sum()),
            below_onchip_corrected=int((ok_on & (g["ratio_onchip_corrected"] < 1)).sum())))
    return pd.DataFrame(recs, columns=list(SOUNDNESS_COLUMNS))


def worst_rows(rows: pd.DataFrame, k: int = 3) -> pd.DataFrame:
    """The ``k`` rows of least dram_words / Q_LB per platform (by the M_onchip ratio where known)."""
    parts = []
    for _, g in rows.groupby("platform", sort=True):
        key = g["ratio_onchip"].where(np.isfinite(g["ratio_onchip"]), g["ratio_M"])
        parts.append(g.assign(_key=key).sort_values(["_key", "ratio_M"], kind="stable").head(k).drop(columns="_key"))
    if not parts:
        return rows.iloc[:0].copy()
    return pd.concat(parts).reset_index(drop=True)
