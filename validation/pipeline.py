"""The whole validation of the bounds against a reference-energy table, per platform.

``run_validation`` evaluates every bound on every row (bounds.api.evaluate_table),
then per platform: the asymptotic fit of each bound (validation.regression), the
calibrated model from each bound's counts (validation.calibration), the comparison
with naive proxies (validation.proxies) and the scaling checks
(validation.scaling), and, where the data has DRAM words, the soundness of the
lower bound against them (validation.soundness).  ``ValidationResult`` turns the
results into tables, JSON records and report sections.  docs/validation.md explains every number.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from validation.calibration import Calibration, fit_calibration
from validation.hierarchy_check import below_rows, hierarchy_rows, hierarchy_table
from validation.proxies import ProxyComparison, compare_predictors, proxy_columns
from validation.reference_data import ReferenceDataError, validate_reference_frame
from validation.regression import MIN_ROWS, InsufficientDataError, LogLogFit, fit_loglog
from validation.report import Section
from validation.scaling import scaling_slopes, summarize_scaling
from validation.soundness import soundness_rows, soundness_table, worst_rows

__all__ = ["BOUNDS", "BOUND_COLUMNS", "CAPTIONS", "ValidationResult", "fit_sentence", "soundness_sentence",
           "gap_sentence", "predictor_sentence", "run_validation", "evaluate_bounds", "calibrated_costs"]

#: Bound name -> its (Q, A, E) columns in the table of bounds.api.evaluate_table.
BOUNDS = {"LB": ("lb_Q", "lb_A", "lb_E"), "OS": ("os_Q", "os_A", "os_E"),
          "WS": ("ws_Q", "ws_A", "ws_E"), "min": ("min_Q", "min_A", "min_E")}

#: Bound name -> its energy column.
BOUND_COLUMNS = {k: v[2] for k, v in BOUNDS.items()}

#: Caption of each report table: what it is and the unit of every number (CSV names unchanged).
CAPTIONS = {
    "fit": "One row per platform and bound B. n: rows fitted, excluded: rows where B is infinite; slope beta "
           "(dimensionless) with its 95% HC3 interval [ci_low, ci_high] and the p-value of beta = 1; r2, r2_slope1: "
           "R^2 of the log-log line, free and of slope 1 (dimensionless). ratio_min, ratio_median, ratio_max: "
           "E_ref / B in pJ / model units for LB, OS, WS, min (B in model units, MAC = 1) and in pJ / pJ for "
           "hier_LB, hier_UB (B in pJ); 'unit of B' says which.",
    "diagnostics": "One row per platform and bound B. p-values (dimensionless) of the residual tests; resid_sd: "
                   "spread of the log-log residuals in natural-log units (0.1 = about 10%); origin_alpha: slope of "
                   "E_ref = alpha B through the origin, in pJ / model units (pJ / pJ for hier_LB, hier_UB; see "
                   "'unit of B'); origin_r2, origin_r2_centered: dimensionless.",
    "calibration": "One row per platform and bound whose counts are used. coef_Q: pJ per DRAM word (Q in words), "
                   "coef_A: pJ per Buffer access (A in words), coef_F: pJ per MAC; Q_per_F = coef_Q / coef_F in "
                   "MAC energies per DRAM word; fit_median, cv_median, cv_p90: relative errors |pred - E_ref| / "
                   "E_ref (fractions: 0.05 = 5%); folds: k of the k-fold cross-validation.",
    "proxies": "One row per platform and predictor P, all on the same n rows: slope of log E_ref (pJ) on log P "
               "(dimensionless), r2 (dimensionless), aic and delta_aic (log-likelihood units; lower wins, 10 or "
               "more is decisive). P is a bound in model units (LB, OS, WS, min) or a proxy: F in MACs, W and "
               "X+W+Y in words. winner: lowest AIC.",
    "j_tests": "One row per platform and proxy: p-values (dimensionless) of the J test that rejects the bound "
               "(p_bound_rejected) or the proxy (p_proxy_rejected); j_winner: the model that survives.",
    "scaling": "One row per platform and swept parameter: n_series series; slope_ref and slope_<bound>: median "
               "log-log slope of E_ref (pJ) and of each bound (model units) against the parameter (dimensionless "
               "exponents); gap_<bound>: median |slope_bound - slope_ref| (dimensionless).",
    "soundness": "One row per platform; counts of rows, except share_* (fractions of the rows where the bound is "
                 "known) and min_ratio_* = dram_words / Q_LB (words / words, dimensionless; 1 or more is sound).",
    "soundness_worst": "The rows of least DRAM traffic over the lower bound per platform. M, M_onchip, dram_words, "
                       "lb_M, lb_onchip in words; ratio_M, ratio_onchip, ratio_onchip_corrected = dram_words / "
                       "Q_LB in words / words (dimensionless).",
    "hierarchy": "One row per platform with an architecture. rows, n_below, n_below_explained: counts of rows; "
                 "min_gap, gap_median, gap_max: the mapping gap energy_pJ / hier_LB in pJ / pJ (dimensionless, "
                 "1 = on the floor). With --upper: ub_over_lb = hier_UB / hier_LB and ref_over_ub = energy_pJ / "
                 "hier_UB (pJ / pJ), n_ref_below_ub a count.",
    "hierarchy_below": "Every row with energy_pJ < hier_LB. M in words; energy_pJ, hier_LB, corrected_pJ in pJ; "
                       "gap, gap_corrected in pJ / pJ (dimensionless; gap_corrected >= 1: explained).",
}


def _with_bound_unit(t: pd.DataFrame) -> pd.DataFrame:
    """The table with a 'unit of B' column after 'bound' (pJ for hier_*, else model units), for display only."""
    if not len(t) or "bound" not in t.columns:
        return t
    t = t.copy()
    t.insert(list(t.columns).index("bound") + 1, "unit of B",
             ["pJ" if str(b).startswith("hier_") else "model units" for b in t["bound"]])
    return t


def _slope_phrase(f) -> str:
    """'slope 1.080 [1.061, 1.099], R² 0.964' from a LogLogFit (the interval is the 95% HC3 one)."""
    return f"slope {f.slope:.3f} [{f.slope_ci_low:.3f}, {f.slope_ci_high:.3f}], R² {f.r2:.3f}"


def fit_sentence(floor, lb) -> str:
    """The verdict's fit sentence from the fits on the floor (LogLogFit, error or None) and on the two-level LB."""
    parts = []
    if isinstance(floor, LogLogFit):
        parts.append(f"{_slope_phrase(floor)} on the floor E_LB(arch) (pJ)")
    elif floor is not None:
        parts.append(f"no fit on the floor E_LB(arch) ({floor})")
    parts.append(f"{_slope_phrase(lb)} on the two-level LB (model units)" if isinstance(lb, LogLogFit)
                 else f"no fit on the two-level LB ({lb})")
    return "Fit: " + "; ".join(parts) + "."


def _all_or_some(k: int, n: int) -> str:
    return f"all {k}" if k == n else f"{k}"


def soundness_sentence(hier: dict | None, sound: dict | None) -> str:
    """The verdict's soundness sentence from a row of hierarchy_table and one of soundness_table (or None)."""
    parts = []
    if hier is not None:
        nb, ne, rows = int(hier["n_below"]), int(hier["n_below_explained"]), int(hier["rows"])
        if nb == 0:
            parts.append(f"no row of {rows} is below the floor")
        else:
            parts.append(f"{nb} of {rows} rows are below the floor, {_all_or_some(ne, nb)} explained by an "
                         "estimator undercount" + (f" and {nb - ne} unexplained" if ne < nb else ""))
    if sound is None:
        parts.append("no DRAM words in the data, so no DRAM-traffic check")
    elif int(sound["rows_onchip"]) > 0:
        nb, nu, nc, rows = (int(sound[k]) for k in ("below_onchip", "below_onchip_undercount",
                                                    "below_onchip_corrected", "rows_onchip"))
        if nb == 0:
            parts.append(f"DRAM words reach the two-level Q_LB(M_onchip) on all {rows} rows")
        else:
            parts.append(f"DRAM words are below the two-level Q_LB(M_onchip) on {nb} of {rows} rows, "
                         f"{_all_or_some(nu, nb)} undercounts ({nc} left after correction)")
    else:
        parts.append(f"DRAM words reach the two-level Q_LB(M) on {int(sound['ge_lb_M'])} of {int(sound['rows'])} "
                     "rows (no M_onchip column, so no soundness test)")
    return "Soundness: " + "; ".join(parts) + "."


def gap_sentence(hier: dict) -> str:
    """The verdict's mapping-gap sentence from a row of hierarchy_table."""
    return (f"Mapping gap: median {hier['gap_median']:.2f}, max {hier['gap_max']:.2f} "
            "(E_ref / E_LB(arch), pJ / pJ).")


def predictor_sentence(comparison, calibration=None) -> str:
    """The verdict's sentence on the best predictor (ProxyComparison or its error) and the calibrated model."""
    if not isinstance(comparison, ProxyComparison):
        out = f"Best predictor: no comparison ({comparison})."
    else:
        t = comparison.table.set_index("predictor")
        best = comparison.best
        kind = t.loc[best, "kind"]
        other = comparison.best_proxy if kind == "bound" else comparison.best_bound
        out = f"Best predictor: the {kind} {best} (R² {t.loc[best, 'r2']:.3f})"
        if other:
            out += (f", ahead of the best {'proxy' if kind == 'bound' else 'bound'} {other} "
                    f"(R² {t.loc[other, 'r2']:.3f}, AIC +{t.loc[other, 'aic'] - t.loc[best, 'aic']:.1f})")
        out += "."
    if isinstance(calibration, Calibration):
        out += (f" Calibrated on LB's counts (traffic and MACs) the model predicts E_ref within "
                f"{calibration.cv_rel_median:.1%} (cross-validated median).")
    return out


def evaluate_bounds(df: pd.DataFrame, costs: dict) -> pd.DataFrame:
    """df plus the bound columns (bounds.api.evaluate_table with the given energy costs)."""
    from bounds.api import evaluate_table
    return evaluate_table(df, **costs)


@dataclass(frozen=True)
class ValidationResult:
    """Everything ``run_validation`` computed.

    ``fits[(platform, bound)]``: LogLogFit, or the InsufficientDataError saying why
    not.  ``calibrations[(platform, bound)]``: Calibration (or error) from that
    bound's counts.  ``proxies[platform]``: ProxyComparison (or error).
    ``scaling``: one row per detected series; ``scaling_summary`` its medians.
    ``table``: the reference rows with every bound's columns.  ``platform_costs``
    maps a platform to the energy costs used for it when they differ from ``costs``
    (see ``calibrated_costs``).  ``soundness``: per platform, the rows whose DRAM words
    reach Q_LB(M) and Q_LB(M_onchip) (validation.soundness.soundness_table; empty
    when the data has no ``dram_words``); ``soundness_worst``: the worst rows.
    ``hierarchy``: per platform with an architecture, the energy floor in pJ against the
    row energies (validation.hierarchy_check.hierarchy_table: n_below, n_below_explained,
    gap_median, gap_max); ``hierarchy_below``: every row below the floor; the fit of
    energy_pJ on the floor is ``fits[(platform, "hier_LB")]``.
    """

    source: str
    costs: dict
    platforms: tuple[str, ...]
    table: pd.DataFrame
    fits: dict
    calibrations: dict
    proxies: dict
    scaling: pd.DataFrame
    scaling_summary: pd.DataFrame
    alpha: float = 0.05
    notes: tuple[str, ...] = field(default=())
    platform_costs: dict = field(default_factory=dict)
    soundness: pd.DataFrame = field(default_factory=pd.DataFrame)
    soundness_worst: pd.DataFrame = field(default_factory=pd.DataFrame)
    hierarchy: pd.DataFrame = field(default_factory=pd.DataFrame)
    hierarchy_below: pd.DataFrame = field(default_factory=pd.DataFrame)

    # ----- notebook ----------------------------------------------------------
    def to_frame(self) -> pd.DataFrame:
        """The evaluated table: one row per reference layer (its columns plus every bound's Q, A, E)."""
        return self.table.copy()

    def _summary(self) -> str:
        parts = []
        for p in self.platforms:
            f = self.fits.get((p, "min"))
            parts.append(f"{p}: n={f.n}, slope {f.slope:.3f}, R^2 {f.r2:.3f}" if isinstance(f, LogLogFit)
                         else f"{p}: no fit")
        return (f"{self.source}: {len(self.table)} rows, {len(self.platforms)} platform(s); "
                "fit of the min bound: " + "; ".join(parts))

    def __repr__(self) -> str:
        return f"ValidationResult({self._summary()})"

    def _repr_html_(self) -> str:
        from html import escape
        return (f"<div><p><b>ValidationResult: {escape(self._summary())}</b></p>"
                f"{self.fit_table().to_html(index=False, max_rows=40)}</div>")

    # ----- tables ------------------------------------------------------------
    def fit_table(self) -> pd.DataFrame:
        """Asymptotic fit per (platform, bound): n, excluded, slope, HC3 CI, p(beta=1), R^2, spread."""
        recs = []
        for (p, b), f in self.fits.items():
            if isinstance(f, LogLogFit):
                recs.append(dict(platform=p, bound=b, n=f.n, excluded=f.n_excluded, slope=f.slope,
                                 ci_low=f.slope_ci_low, ci_high=f.slope_ci_high, p_beta_eq_1=f.p_slope_eq_1,
                                 r2=f.r2, r2_slope1=f.r2_slope_1, ratio_min=f.ratio_min,
                                 ratio_median=f.ratio_median, ratio_max=f.ratio_max))
            else:
                recs.append(dict(platform=p, bound=b, n=0, excluded=int((self.table["platform"] == p).sum()),
                                 slope=np.nan, ci_low=np.nan, ci_high=np.nan, p_beta_eq_1=np.nan, r2=np.nan,
                                 r2_slope1=np.nan, ratio_min=np.nan, ratio_median=np.nan, ratio_max=np.nan))
        return pd.DataFrame(recs)

    def diagnostics_table(self) -> pd.DataFrame:
        """Residual checks per (platform, bound) and the regression through the origin."""
        recs = []
        for (p, b), f in self.fits.items():
            if isinstance(f, LogLogFit):
                recs.append(dict(platform=p, bound=b, resid_sd=f.resid_std, jarque_bera_p=f.jb_p,
                                 shapiro_p=f.shapiro_p, breusch_pagan_p=f.bp_p, white_p=f.white_p,
                                 origin_alpha=f.origin_alpha, origin_r2=f.origin_r2,
                                 origin_r2_centered=f.origin_r2_centered))
        return pd.DataFrame(recs)

    def calibration_table(self) -> pd.DataFrame:
        """Calibrated model per (platform, counts of bound): identified coefficients and errors."""
        recs = []
        for (p, b), c in self.calibrations.items():
            if isinstance(c, Calibration):
                recs.append(dict(platform=p, counts=b, n=c.n, excluded=c.n_excluded, coef_Q=c.coef_Q,
                                 coef_A=c.coef_A, coef_F=c.coef_F, Q_per_F=c.q_to_f_ratio,
                                 fit_median=c.fit_rel_median, cv_median=c.cv_rel_median, cv_p90=c.cv_rel_p90,
                                 folds=c.k))
        return pd.DataFrame(recs)

    def proxy_table(self) -> pd.DataFrame:
        """Every predictor's log-log R^2 and AIC per platform, on common rows."""
        parts = []
        for p, c in self.proxies.items():
            if isinstance(c, ProxyComparison):
                t = c.table.copy()
                t.insert(0, "platform", p)
                t["winner"] = t["predictor"] == c.best
                parts.append(t)
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()

    def j_table(self) -> pd.DataFrame:
        """J tests of the best bound against each proxy, per platform."""
        recs = []
        for p, c in self.proxies.items():
            if isinstance(c, ProxyComparison):
                for j in c.j_tests:
                    recs.append(dict(platform=p, bound=j.a, proxy=j.b, p_bound_rejected=j.p_a_rejected,
                                     p_proxy_rejected=j.p_b_rejected, j_winner=j.winner))
        return pd.DataFrame(recs)

    def verdicts(self) -> dict[str, str]:
        """One plain sentence per platform on which predictor wins."""
        return {p: (c.verdict if isinstance(c, ProxyComparison) else f"no comparison: {c}")
                for p, c in self.proxies.items()}

    def summary_tables(self) -> dict[str, pd.DataFrame]:
        """Compact tables for a paper or docs: fit, calibration (min counts), proxies, scaling."""
        ft = self.fit_table()
        fit = pd.DataFrame({
            "platform": ft["platform"], "bound": ft["bound"],
            "n (excluded)": [f"{n} ({e})" for n, e in zip(ft["n"], ft["excluded"])],
            "slope [95% HC3 CI]": [f"{s:.3f} [{lo:.3f}, {hi:.3f}]" if np.isfinite(s) else "-"
                                   for s, lo, hi in zip(ft["slope"], ft["ci_low"], ft["ci_high"])],
            "p(beta=1)": ft["p_beta_eq_1"], "R^2": ft["r2"],
            "E_ref/B median [min, max]": [f"{m:.3g} [{a:.3g}, {b:.3g}]" if np.isfinite(m) else "-"
                                          for m, a, b in zip(ft["ratio_median"], ft["ratio_min"], ft["ratio_max"])]})
        ct = self.calibration_table()
        cal = ct.loc[:, ["platform", "counts", "n", "coef_Q", "coef_F", "Q_per_F", "cv_median", "cv_p90"]] \
            if len(ct) else ct
        recs = []
        for p, c in self.proxies.items():
            if isinstance(c, ProxyComparison):
                t = c.table.set_index("predictor")
                jt = next((j for j in c.j_tests if j.b == c.best_proxy), None)
                recs.append({"platform": p, "n": c.n, "best bound": c.best_bound,
                             "R^2 bound": t.loc[c.best_bound, "r2"], "best proxy": c.best_proxy,
                             "R^2 proxy": t.loc[c.best_proxy, "r2"],
                             "AIC proxy - bound": t.loc[c.best_proxy, "aic"] - t.loc[c.best_bound, "aic"],
                             "J test": jt.winner if jt else "-", "winner (AIC)": c.best})
        out = {"fit": fit, "calibration": cal, "proxies": pd.DataFrame(recs), "scaling": self.scaling_summary}
        if len(self.soundness):
            out["soundness"] = self.soundness_summary()
        return out

    def soundness_summary(self) -> pd.DataFrame:
        """The soundness table in compact form: rows >= each lower bound and the least ratio."""
        t = self.soundness
        return pd.DataFrame({
            "platform": t["platform"], "rows": t["rows"],
            "DRAM >= LB(M)": [f"{a} ({s:.1%})" for a, s in zip(t["ge_lb_M"], t["share_ge_lb_M"])],
            "min DRAM/LB(M)": t["min_ratio_M"],
            "DRAM >= LB(M_onchip)": [f"{a} of {n} ({s:.1%})" if n else "-" for a, n, s in
                                     zip(t["ge_lb_onchip"], t["rows_onchip"], t["share_ge_lb_onchip"])],
            "min DRAM/LB(M_onchip)": t["min_ratio_onchip"],
            "below LB(M_onchip): all, undercounted, after correction": [
                f"{b}, {u}, {c}" for b, u, c in zip(t["below_onchip"], t["below_onchip_undercount"],
                                                   t["below_onchip_corrected"])]})

    def summary_markdown(self) -> str:
        """The summary tables as Markdown (what docs/validation.md shows)."""
        from validation.report import table_markdown
        titles = {"fit": "Asymptotic fit log E_ref = a + beta log B",
                  "calibration": "Calibrated model (cross-validated relative error)",
                  "proxies": "Bounds versus naive proxies", "scaling": "Scaling slopes (medians over series)",
                  "soundness": "Soundness: DRAM words of the estimator against the lower bound"}
        parts = []
        for k, t in self.summary_tables().items():
            parts += [f"**{titles[k]}**", "", table_markdown(t, 4) if len(t) else "_(no rows)_", ""]
        parts += [f"- {p}: {v}" for p, v in self.verdicts().items()]
        return "\n".join(parts) + "\n"

    # ----- output --------------------------------------------------------------
    def records(self) -> list[dict]:
        """One JSON-ready object per (platform, bound): the fit, the calibration, the diagnostics."""
        out = []
        for (p, b), f in self.fits.items():
            rec = dict(platform=p, bound=b)
            costs_used = self.platform_costs.get(p, self.costs)
            if isinstance(f, LogLogFit):
                d = f.to_dict()
                rec.update(n=d.pop("n"), slope=d.pop("slope"), slope_ci_low=d.pop("slope_ci_low"),
                           slope_ci_high=d.pop("slope_ci_high"), p_slope_eq_1=d.pop("p_slope_eq_1"),
                           r2=d.pop("r2"))
                rec.update(d)
            else:
                rec.update(n=0, slope=None, slope_ci_low=None, slope_ci_high=None, p_slope_eq_1=None, r2=None,
                           error=str(f))
            c = self.calibrations.get((p, b))
            if isinstance(c, Calibration):
                rec["calibration"] = c.to_dict()
            pc = self.proxies.get(p)
            if isinstance(pc, ProxyComparison) and b in set(pc.table["predictor"]):
                row = pc.table.set_index("predictor").loc[b]
                rec["proxy_comparison"] = dict(aic=float(row["aic"]), delta_aic=float(row["delta_aic"]),
                                               best_predictor=pc.best, verdict=pc.verdict)
            rec["costs"] = dict(costs_used)
            if b in ("hier_LB", "hier_UB") and len(self.hierarchy) and p in set(self.hierarchy["platform"]):
                h = self.hierarchy.set_index("platform").loc[p]
                rec.update(unit="pJ", arch=h["arch"], n_below=int(h["n_below"]),
                           n_below_explained=int(h["n_below_explained"]), gap_median=float(h["gap_median"]),
                           gap_max=float(h["gap_max"]), gap_min=float(h["min_gap"]))
                if b == "hier_UB":   # the schedule's own numbers
                    rec.update(ub_over_lb_median=float(h["ub_over_lb_median"]),
                               ub_over_lb_max=float(h["ub_over_lb_max"]),
                               ref_over_ub_median=float(h["ref_over_ub_median"]),
                               n_ref_below_ub=int(h["n_ref_below_ub"]))
                rec.pop("costs", None)
            if b == "LB" and len(self.soundness) and p in set(self.soundness["platform"]):
                rec["soundness"] = {k: v for k, v in self.soundness.to_dict("records")[
                    list(self.soundness["platform"]).index(p)].items() if k != "platform"}
            out.append(_json_safe(rec))
        return out

    def verdict_items(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """Per platform (head, sentences): fit, soundness, mapping gap, best predictor; every number from
        the results (fits, hierarchy, soundness, proxies, calibrations), none hard-coded."""
        hier = self.hierarchy.set_index("platform") if len(self.hierarchy) else None
        sound = self.soundness.set_index("platform") if len(self.soundness) else None
        out = []
        for p in self.platforms:
            h = hier.loc[p].to_dict() if hier is not None and p in hier.index else None
            sd = sound.loc[p].to_dict() if sound is not None and p in sound.index else None
            rows = int((self.table["platform"] == p).sum())
            where = "" if h and h["arch"] == p else (f", architecture {h['arch']}" if h else
                                                         ", no architecture: no floor in pJ")
            head = f"{p} ({rows} rows{where})"
            body = [fit_sentence(self.fits.get((p, "hier_LB")) if h else None, self.fits.get((p, "LB"))),
                    soundness_sentence(h, sd)]
            if h:
                body.append(gap_sentence(h))
            body.append(predictor_sentence(self.proxies.get(p), self.calibrations.get((p, "LB"))))
            out.append((head, tuple(body)))
        return tuple(out)

    def intro(self) -> str:
        """One line under the report's title: what was compared with what, in which units."""
        floor = " and the energy floor E_LB(arch) on each platform's architecture (pJ)" if len(self.hierarchy) else ""
        k = len(self.platforms)
        return (f"{len(self.table)} reference energy estimates (E_ref, pJ) of {k} platform{'s' * (k != 1)} from "
                f"{self.source}, against the two-level bounds LB, OS, WS (model units, MAC = 1){floor}.")

    def verdict_section(self) -> Section:
        """The report's first section: the per-platform verdict, then the key figure (mapping_gap) when given."""
        lead = ("Fit: slope of log E_ref on log bound [95% HC3 CI] and R² (slope 1: the energy grows like the "
                "bound). Soundness: rows below a lower bound; an undercount is an estimator moving an operand from "
                "DRAM fewer times than the layer uses it. Mapping gap: how far the estimator's mapping is above the "
                "floor (pJ / pJ). Best predictor: lowest AIC of log E_ref on log P over the bounds and the proxies "
                "F (MACs), W (weights) and X+W+Y (data size, words).")
        return Section("Verdict", lead, items=self.verdict_items(), figures=("mapping_gap",))

    def sections(self) -> list[Section]:
        """The report's sections (text + tables), in reading order."""
        def fmt(c):
            return f"eD={c['eD']:.4g}, eB={c['eB']:.4g}, eM={c['eM']:.4g}, bits={c['bits']}"

        if self.platform_costs:
            cost_text = "per platform: " + "; ".join(
                f"{p}: {fmt(self.platform_costs[p])}" for p in self.platforms if p in self.platform_costs)
        else:
            cost_text = fmt(self.costs)
        s = [Section("Data", f"Source: {self.source}. {len(self.table)} rows, platforms: "
                             f"{', '.join(self.platforms)}. Energy costs of the bounds: {cost_text}. "
                             "Rows where a dataflow is "
                             "infeasible (infinite bound) are excluded from that bound's fit and counted "
                             "in 'excluded'." + ("\n\n" + " ".join(self.notes) if self.notes else "")),
             Section("Asymptotic fit: log E_ref = a + beta log B",
                     "beta with its HC3-robust 95% confidence interval (ci_low, ci_high) and the p-value of "
                     "the t-test of beta = 1; R^2 of the fitted line and of the line forced to slope 1; "
                     "the ratio E_ref / B (min, median, max).", _with_bound_unit(self.fit_table()),
                     caption=CAPTIONS["fit"], figures=("bound_vs_estimate",)),
             Section("Residual diagnostics and regression through the origin",
                     "p-values of normality (Jarque-Bera, Shapiro-Wilk) and homoscedasticity "
                     "(Breusch-Pagan, White) of the log-log residuals; E_ref = alpha B fitted through the "
                     "origin, with its uncentered and centered R^2.", _with_bound_unit(self.diagnostics_table()),
                     caption=CAPTIONS["diagnostics"], figures=("residuals",)),
             Section("Calibrated model: E_ref ~ alpha_D Q + alpha_B A + alpha_M F",
                     "Non-negative fit of relative error on each bound's counts. Since A = Q + 3F in this "
                     "model, only coef_Q = alpha_D + alpha_B and coef_F = alpha_M + 3 alpha_B are "
                     "identifiable (coef_A = 0 then). Errors are |pred - E_ref| / E_ref: in-sample median, "
                     "k-fold cross-validated median and 90th percentile.", self.calibration_table(),
                     caption=CAPTIONS["calibration"]),
             Section("Bounds versus naive proxies",
                     "\n\n".join(f"{p}: {v}" for p, v in self.verdicts().items()), self.proxy_table(),
                     caption=CAPTIONS["proxies"]),
             Section("J tests (best bound versus each proxy)",
                     "p_bound_rejected small: the proxy adds information the bound lacks; "
                     "p_proxy_rejected small: the bound adds information the proxy lacks.", self.j_table(),
                     caption=CAPTIONS["j_tests"]),
             Section("Scaling checks",
                     "Series of rows identical except in one parameter (detected automatically); median "
                     "over series of the measured log-log slope of E_ref (slope_ref) and of each bound, "
                     "and the median |slope_bound - slope_ref|.", self.scaling_summary,
                     caption=CAPTIONS["scaling"])]
        if len(self.soundness):
            s += [Section("Soundness of the lower bound",
                          "Rows whose DRAM words (dram_words) reach the lower bound Q_LB(M) of a Buffer of M "
                          "words, and Q_LB(M_onchip) of the platform's whole on-chip capacity M_onchip (CSV "
                          "column; the bound is proved for a Buffer holding all on-chip data, so only the "
                          "latter must hold). below_onchip counts rows under Q_LB(M_onchip); "
                          "below_onchip_undercount those of them where an operand's DRAM words are below "
                          "its compulsory size (X_used, W or Y), i.e. the estimator counts fewer words than "
                          "the layer reads at least once; below_onchip_corrected the rows still under "
                          "Q_LB(M_onchip) once those operands are raised to their compulsory size.",
                          self.soundness, caption=CAPTIONS["soundness"]),
                  Section("Soundness: worst rows per platform",
                          "Least dram_words / Q_LB(M_onchip) (or / Q_LB(M) without M_onchip); undercount names "
                          "the operands counted below their compulsory size.", self.soundness_worst,
                          caption=CAPTIONS["soundness_worst"])]
        if len(self.hierarchy):
            s += [Section("Energy floor on each platform's architecture (pJ)",
                          "hier_LB: the hierarchy-aware lower bound in pJ (docs/hierarchy.md) on the named "
                          "architecture (a bundled platform with its Buffer resized to the row's M, or the one "
                          "given with --arch); gap = energy_pJ / hier_LB, the mapping gap (pJ over pJ, >= 1 "
                          "wherever the estimator meets the bound's assumptions). n_below counts rows under "
                          "the floor; n_below_explained those of them where the estimator moves an operand "
                          "fewer times from DRAM than the layer uses it (undercount) and adding the missing "
                          "words, at the estimator's own cost per word of that operand, lifts the row to the "
                          "floor. The fit of energy_pJ on hier_LB is the bound 'hier_LB' in the fit table. "
                          "With --upper: hier_UB, the energy of the best nested schedule found on the same "
                          "architecture (bounds/nested.py), ub_over_lb = hier_UB / hier_LB, ref_over_ub = "
                          "energy_pJ / hier_UB (below 1 where the estimator's mapping beats that schedule: "
                          "it is an upper bound on the best mapping, not a bound on the estimator) and the "
                          "fit 'hier_UB'.",
                          self.hierarchy, caption=CAPTIONS["hierarchy"]),
                  Section("Rows below the energy floor",
                          "Every row with energy_pJ < hier_LB (pJ), the operands it undercounts and the gap "
                          "once corrected (gap_corrected >= 1: explained by the undercount).",
                          self.hierarchy_below, caption=CAPTIONS["hierarchy_below"])]
        return s

    def write_report(self, directory, figures=(), skipped=()) -> list:
        """report.md + report.html (validation.report.write_report: the verdict first, then every
        section), plus every table as CSV (fits.csv, diagnostics.csv, calibration.csv, proxies.csv,
        j_tests.csv, scaling_series.csv, scaling_summary.csv, soundness.csv, soundness_worst.csv,
        hierarchy.csv, hierarchy_below.csv) and validation.json (``records()``).
        ``figures``: PNG paths, folders or validation.report.Figure objects (mapping_gap is shown in
        the verdict, bound_vs_estimate and residuals beside their tables); ``skipped``: (name, reason)
        of figures not drawn.  Returns the paths written."""
        import json
        from pathlib import Path

        from validation.report import write_report
        md, html = write_report(directory, "Validation of the energy bounds",
                                [self.verdict_section()] + self.sections(), figures, intro=self.intro(),
                                skipped=skipped)
        d = Path(directory)
        paths = [md, html]
        for name, t in (("fits", self.fit_table()), ("diagnostics", self.diagnostics_table()),
                        ("calibration", self.calibration_table()), ("proxies", self.proxy_table()),
                        ("j_tests", self.j_table()), ("scaling_series", self.scaling),
                        ("scaling_summary", self.scaling_summary), ("soundness", self.soundness),
                        ("soundness_worst", self.soundness_worst), ("hierarchy", self.hierarchy),
                        ("hierarchy_below", self.hierarchy_below)):
            t.to_csv(d / f"{name}.csv", index=False)
            paths.append(d / f"{name}.csv")
        (d / "summary.md").write_text(self.summary_markdown(), encoding="utf-8")
        paths.append(d / "summary.md")
        (d / "validation.json").write_text(json.dumps(self.records(), indent=2, allow_nan=False) + "\n")
        paths.append(d / "validation.json")
        return paths

    def text(self) -> str:
        """The verdict and all tables (with their captions) as plain text, for the terminal."""
        from validation.report import table_text
        parts = []
        for sec in [self.verdict_section()] + self.sections():
            parts += [f"== {sec.title} ==", sec.text] + [f"{h}\n  " + "\n  ".join(_lines(b)) for h, b in sec.items]
            if sec.table is not None:
                if sec.caption:
                    parts.append(f"Table: {sec.caption}")
                parts.append(table_text(sec.table) if len(sec.table) else "(no rows)")
            parts.append("")
        return "\n".join(parts)


def _lines(body) -> list[str]:
    """A verdict item's body (a string or sentences) as a list of sentences."""
    return [body] if isinstance(body, str) else list(body)


def _json_safe(obj):
    """Replace NaN/inf by None and numpy scalars by Python numbers, recursively."""
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if np.isfinite(f) else None
    return obj


def run_validation(df: pd.DataFrame, platform: str | None = None, *, eD: float = 200.0, eB: float = 6.0,
                   eM: float = 1.0, bits: int = 16, alpha: float = 0.05, folds: int = 5, seed: int = 0,
                   source: str = "reference data", evaluate=None,
                   platform_costs: dict | None = None, archs: dict | None = None, upper: bool = False,
                   progress: bool = False) -> ValidationResult:
    """Validate the bounds against the reference energies in ``df`` (reference CSV layout).

    ``platform`` restricts to one platform.  ``eD``/``eB``/``eM``/``bits`` are the
    energy costs of the bounds.  ``evaluate(df, costs) -> df with bound columns``
    defaults to bounds.api.evaluate_table.  ``platform_costs`` ({platform: {eD, eB,
    eM, bits}}) overrides the costs per platform (e.g. from ``calibrated_costs``).
    ``archs`` ({platform: architecture name, file or Architecture}) names the
    architecture of the energy floor per platform; bundled platforms default to their
    own (validation.hierarchy_check.row_architectures).  ``upper`` also fits the energy
    on the best nested schedule's (bound ``hier_UB``; ~0.05 s a row, ``progress`` shows a bar).
    Raises ReferenceDataError on malformed
    input, an unknown platform, or a platform with fewer than MIN_ROWS rows.
    """
    data = validate_reference_frame(df, source=source)
    known = sorted(data["platform"].unique())
    if platform is not None:
        if platform not in known:
            raise ReferenceDataError(f"{source}: platform {platform!r} not in the data; known: {', '.join(known)}")
        data = data[data["platform"] == platform]
    platforms = tuple(sorted(data["platform"].unique()))
    counts = data["platform"].value_counts()
    small = [p for p in platforms if counts[p] < MIN_ROWS]
    if small:
        raise ReferenceDataError(f"{source}: platform {small[0]!r} has {int(counts[small[0]])} row(s); "
                                 f"the regression needs at least {MIN_ROWS}")
    costs = dict(eD=float(eD), eB=float(eB), eM=float(eM), bits=int(bits))
    ev = evaluate or evaluate_bounds
    data = data.reset_index(drop=True)
    platform_costs = {p: dict(c) for p, c in (platform_costs or {}).items() if p in platforms}
    if platform_costs:
        parts = [ev(data[data["platform"] == p], platform_costs.get(p, costs)) for p in platforms]
        table = pd.concat(parts).loc[data.index]
    else:
        table = ev(data, costs)
    missing = [c for cols in BOUNDS.values() for c in cols if c not in table.columns] + \
        [c for c in ("F", "X", "W", "Y") if c not in table.columns]
    if missing:
        raise ReferenceDataError(f"bounds table lacks column(s): {', '.join(missing)}")
    fits, cals, prox = {}, {}, {}
    for p in platforms:
        t = table[table["platform"] == p]
        e = t["energy_pJ"].to_numpy(float)
        for b, (qc, ac, ec) in BOUNDS.items():
            what = f"platform {p!r} bound {b}"
            try:
                fits[(p, b)] = fit_loglog(e, t[ec].to_numpy(float), alpha=alpha, what=what)
            except InsufficientDataError as exc:
                fits[(p, b)] = exc
            try:
                cals[(p, b)] = fit_calibration(e, t[qc].to_numpy(float), t[ac].to_numpy(float),
                                               t["F"].to_numpy(float), k=folds, seed=seed,
                                               what=f"platform {p!r} calibration on {b} counts")
            except InsufficientDataError as exc:
                cals[(p, b)] = exc
        try:
            prox[p] = compare_predictors(e, {b: t[ec].to_numpy(float) for b, (_, _, ec) in BOUNDS.items()},
                                         proxy_columns(t), level=alpha, what=f"platform {p!r} proxy comparison")
        except InsufficientDataError as exc:
            prox[p] = exc
    hrows = hierarchy_rows(table, archs, upper=upper, progress=progress)
    if len(hrows):
        hb = [b for b in ("hier_LB", "hier_UB") if b in hrows.columns]
        table = table.assign(**{b: hrows[b].reindex(table.index) for b in hb})
        for p in sorted(set(hrows["platform"])):
            g = hrows[hrows["platform"] == p]
            for b in hb:
                try:
                    fits[(p, b)] = fit_loglog(g["energy_pJ"].to_numpy(float), g[b].to_numpy(float),
                                              alpha=alpha, what=f"platform {p!r} bound {b}")
                except InsufficientDataError as exc:
                    fits[(p, b)] = exc
    series = scaling_slopes(table, BOUND_COLUMNS)
    sound, worst = pd.DataFrame(), pd.DataFrame()
    if "dram_words" in table.columns and pd.to_numeric(table["dram_words"], errors="coerce").notna().any():
        rows = soundness_rows(table[pd.to_numeric(table["dram_words"], errors="coerce").notna()])
        sound, worst = soundness_table(rows), worst_rows(rows)
    notes = tuple(f"{p}/{b}: {f}." for (p, b), f in fits.items() if not isinstance(f, LogLogFit))
    return ValidationResult(source=source, costs=costs, platforms=platforms, table=table, fits=fits,
                            calibrations=cals, proxies=prox, scaling=series,
                            scaling_summary=summarize_scaling(series), alpha=alpha, notes=notes,
                            platform_costs=platform_costs, soundness=sound, soundness_worst=worst,
                            hierarchy=hierarchy_table(hrows), hierarchy_below=below_rows(hrows))


def calibrated_costs(result: ValidationResult, counts: str = "LB") -> dict:
    """Per-platform costs {eD: coef_Q, eB: coef_A, eM: coef_F, bits: 16} from the calibration
    on ``counts``: the cost ratio each platform shows.  Since A = Q + 3F only coef_Q and
    coef_F are identified, so the Buffer cost is folded into them (coef_A = eB = 0).  Fitting the
    bounds again with these costs is an in-sample check (two numbers per platform were
    chosen on the same data); docs/validation.md, "Calibrated costs"."""
    out = {}
    for p in result.platforms:
        c = result.calibrations.get((p, counts))
        if isinstance(c, Calibration):
            out[p] = dict(eD=c.coef_Q, eB=c.coef_A, eM=c.coef_F, bits=16)
    return out
