"""Row-by-row check of the hierarchy-aware energy floor (pJ) against an estimator's energy.

For every reference row whose platform has an architecture (a bundled ZigZag platform,
resized to the row's Buffer size M, or one the user names), the floor E_LB(arch) of
bounds.hierarchy is compared with the row's ``energy_pJ``: the mapping gap
energy_pJ / E_LB (>= 1 wherever the estimator satisfies the floor's assumptions,
docs/hierarchy.md section 7).  A row below the floor is a bug of ours unless the
estimator breaks an assumption; the one such case known is an operand moved from DRAM
fewer times than the layer uses it (``dram_words_X < X_used``, an "undercount", as in
validation.soundness).  ``corrected_pJ`` adds the words that undercount leaves out,
each at the estimator's own cost per word of that operand (at least the cost of its
trip from DRAM to the MACs, ``trip_pJ``); a row still below the floor after that is unexplained.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bounds.hierarchy import hierarchy_lower_bound_np
from complexity.architecture import Architecture
from validation.reference_data import LAYER_COLUMNS
from validation.soundness import _OPERANDS, _compulsory

__all__ = ["HIERARCHY_COLUMNS", "row_architectures", "trip_pJ", "upper_bounds", "hierarchy_rows", "hierarchy_table", "below_rows"]

#: Columns of the per-platform table of hierarchy_table.
HIERARCHY_COLUMNS = ("platform", "arch", "rows", "n_below", "n_below_explained", "min_gap", "gap_median",
                     "gap_max")
#: Columns hierarchy_table adds when the rows have hier_UB.
UPPER_COLUMNS = ("ub_rows", "ub_over_lb_median", "ub_over_lb_max", "ref_over_ub_median", "n_ref_below_ub")


def row_architectures(df: pd.DataFrame, archs: dict | None = None) -> list:
    """One Architecture (or None) per row of ``df``.

    ``archs`` maps a platform to an architecture spec (name or file, as
    validation.architectures.get_architecture takes) or an Architecture; a platform
    not in it that is a bundled ZigZag platform gets its own architecture with the
    Buffer resized to the row's M (the reference sweep resizes it so); other rows None.
    """
    from validation.architectures import architecture_names, get_architecture
    archs = dict(archs or {})
    bundled = set(architecture_names())
    cache: dict = {}
    out = []
    for p, M in zip(df["platform"].astype(str), df["M"].to_numpy(dtype=np.int64)):
        spec = archs.get(p)
        if isinstance(spec, Architecture):
            out.append(spec)
            continue
        key = (p, spec, None if spec is not None else int(M))
        if key not in cache:
            if spec is not None:
                cache[key] = get_architecture(spec)
            elif p in bundled:
                cache[key] = get_architecture(p, int(M))
            else:
                cache[key] = None
        out.append(cache[key])
    return out


def trip_pJ(arch: Architecture, t: str) -> float:
    """The least pJ of one word's trip between DRAM and the MAC: its DRAM read (write for
    outputs) and one write (read for outputs) at every on-chip level of its chain, which
    a word must pass through when it cannot bypass (A9, docs/hierarchy.md)."""
    on = [lv for lv in arch.chain(t) if lv is not arch.dram]
    if arch.bypass:
        on = on[:1]
    if t == "Y":
        return float(arch.dram.write_pJ[t] + sum(lv.read_pJ[t] for lv in on))
    return float(arch.dram.read_pJ[t] + sum(lv.write_pJ[t] for lv in on))


def upper_bounds(df: pd.DataFrame, row_arch: list, progress: bool = False) -> np.ndarray:
    """E_UB (pJ) per row: the energy of the best nested schedule found on the row's
    architecture (bounds.nested.best_nested, an upper bound on the best mapping's energy);
    NaN where none fits.  About 0.05 s a row; ``progress`` shows a bar."""
    from tqdm.auto import tqdm

    from bounds.nested import best_nested
    from bounds.result import InfeasibleError
    from complexity.layer import Layer
    out = np.full(len(df), np.nan)
    P = df.loc[:, list(LAYER_COLUMNS)].to_numpy(dtype=np.int64)
    for i in tqdm(range(len(df)), desc="hier_UB", unit="row", disable=not progress, dynamic_ncols=True):
        try:
            out[i] = best_nested(Layer(**dict(zip(LAYER_COLUMNS, map(int, P[i])))), row_arch[i]).E_pJ
        except InfeasibleError:
            pass
    return out


def hierarchy_rows(df: pd.DataFrame, archs: dict | None = None, *, upper: bool = False,
                   progress: bool = False) -> pd.DataFrame:
    """Per row with an architecture: hier_LB (pJ), the gap energy_pJ / hier_LB, the undercount and its correction.

    Columns: platform, arch, layer_name, M, energy_pJ, hier_LB, gap, undercount (operands
    whose DRAM words are below their compulsory size, "" when none), corrected_pJ
    (energy_pJ plus the missing words, each at the larger of ``trip_pJ``,
    the least any execution pays for one, and the estimator's own energy for that
    operand over all levels (``mem_*/<op>_pJ`` columns) per DRAM word it counted), gap_corrected.  Rows without an architecture are left out; the
    index is ``df``'s.  With ``upper`` also hier_UB (``upper_bounds``) and ref_over_ub
    = energy_pJ / hier_UB (below 1 where the estimator's mapping beats the schedule).
    """
    row_arch = row_architectures(df, archs)
    keep = np.array([a is not None for a in row_arch], dtype=bool)
    d = df[keep]
    row_arch = [a for a in row_arch if a is not None]
    n = len(d)
    E = np.zeros(n)
    for a in {id(a): a for a in row_arch}.values():
        sel = np.array([b is a for b in row_arch], dtype=bool)
        P = {f: d[f].to_numpy(dtype=np.int64)[sel] for f in LAYER_COLUMNS if f in d.columns}
        E[sel] = hierarchy_lower_bound_np(P, a)["E_pJ"]
    energy = d["energy_pJ"].to_numpy(dtype=float)
    corrected = energy.copy()
    under = [""] * n
    if n:
        comp = _compulsory(d)
        for op, ckey in _OPERANDS:
            col = f"dram_words_{op}"
            if col not in d.columns:
                continue
            words = pd.to_numeric(d[col], errors="coerce").to_numpy(dtype=float)
            low = np.isfinite(words) & (words < comp[ckey])
            # the estimator's own cost per DRAM word of this operand, over all its levels
            # (fractional unrolling undercounts the operand at every level, not only DRAM)
            own = sum(pd.to_numeric(d[c], errors="coerce").fillna(0.0).to_numpy(dtype=float)
                      for c in d.columns if c.startswith("mem_") and c.endswith(f"/{op}_pJ"))
            with np.errstate(divide="ignore", invalid="ignore"):
                own = np.where(words > 0, np.asarray(own, dtype=float) / words, 0.0)
            price = np.maximum(np.array([trip_pJ(a, op) for a in row_arch]), own)
            corrected += np.where(low, (comp[ckey] - np.where(low, words, 0)) * price, 0.0)
            for i in np.flatnonzero(low):
                under[i] += op
    with np.errstate(divide="ignore", invalid="ignore"):
        gap, gap_c = energy / E, corrected / E
    names = d["layer_name"].fillna("").astype(str).to_numpy() if "layer_name" in d.columns else [""] * n
    extra = {}
    if upper:
        ub = upper_bounds(d, row_arch, progress)
        with np.errstate(divide="ignore", invalid="ignore"):
            extra = {"hier_UB": ub, "ref_over_ub": energy / ub}
    return pd.DataFrame({"platform": d["platform"].astype(str).to_numpy(), "arch": [a.name for a in row_arch],
                         "layer_name": names, "M": d["M"].to_numpy(dtype=np.int64), "energy_pJ": energy,
                         "hier_LB": E, "gap": gap, "undercount": under, "corrected_pJ": corrected,
                         "gap_corrected": gap_c, **extra}, index=d.index)


def hierarchy_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per platform: rows, n_below (energy_pJ < hier_LB), n_below_explained (of those, the rows
    with an undercount whose correction lifts them to the floor), the least, median and
    largest gap."""
    recs = []
    upper = "hier_UB" in rows.columns
    for p, g in rows.groupby("platform", sort=True):
        below = g["gap"] < 1
        rec = dict(platform=p, arch=", ".join(sorted(set(g["arch"]))), rows=len(g),
                   n_below=int(below.sum()),
                   n_below_explained=int((below & (g["undercount"] != "") & (g["gap_corrected"] >= 1)).sum()),
                   min_gap=float(g["gap"].min()), gap_median=float(g["gap"].median()),
                   gap_max=float(g["gap"].max()))
        if upper:
            bg = g["hier_UB"] / g["hier_LB"]
            rec.update(ub_rows=int(g["hier_UB"].notna().sum()), ub_over_lb_median=float(bg.median()),
                       ub_over_lb_max=float(bg.max()), ref_over_ub_median=float(g["ref_over_ub"].median()),
                       n_ref_below_ub=int((g["ref_over_ub"] < 1).sum()))
        recs.append(rec)
    cols = list(HIERARCHY_COLUMNS) + (list(UPPER_COLUMNS) if upper else [])
    return pd.DataFrame(recs, columns=cols)


def below_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Every row below the floor, with its undercount and corrected gap (the soundness listing)."""
    return rows[rows["gap"] < 1].sort_values(["platform", "gap"], kind="stable").reset_index(drop=True)
