"""Asymptotic-fit regression of reference energy on a bound: log E_ref = a + beta log B.

A bound fits the reference energy asymptotically when beta is 1 (E_ref grows like B up
to a constant factor).  This module fits that line with ordinary least squares and
HC3 heteroscedasticity-robust standard errors, tests beta = 1, checks the residuals
(normality, heteroscedasticity), summarises the ratio E_ref / B, and fits the line
through the origin E_ref = alpha B.  Methods and formulas: docs/validation.md.

Everything here works on plain arrays; rows whose bound is not a positive finite
number (e.g. a dataflow that is infeasible for a Buffer, np.inf) are dropped and counted.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np
import scipy.stats
import statsmodels.api as sm
from statsmodels.stats.diagnostic import het_breuschpagan, het_white
from statsmodels.stats.stattools import jarque_bera

from validation.reference_data import ReferenceDataError

__all__ = ["MIN_ROWS", "InsufficientDataError", "LogLogFit", "usable_rows", "fit_loglog", "fit_bounds",
           "loglog_ols"]

#: Fewest usable rows for the log-log fit: the slope's t interval needs 3, the White
#: test (constant, x, x^2) needs more than 3, and fewer than 5 points say nothing.
MIN_ROWS = 5


class InsufficientDataError(ReferenceDataError):
    """Too few usable rows for a regression; the message names the platform/bound and the counts."""


def usable_rows(e_ref, bound) -> np.ndarray:
    """Boolean mask of rows whose reference energy and bound are both positive and finite."""
    e = np.asarray(e_ref, dtype=float)
    b = np.asarray(bound, dtype=float)
    if e.shape != b.shape:
        raise ValueError(f"e_ref has {e.shape} values but bound has {b.shape}")
    with np.errstate(invalid="ignore"):
        return np.isfinite(e) & np.isfinite(b) & (e > 0) & (b > 0)


def loglog_ols(y, x, *, cov_type: str = "HC3"):
    """statsmodels OLS of log y on [1, log x] with the given covariance (t distribution)."""
    X = sm.add_constant(np.log(np.asarray(x, dtype=float)), has_constant="add")
    return sm.OLS(np.log(np.asarray(y, dtype=float)), X).fit(cov_type=cov_type, use_t=True)


@dataclass(frozen=True)
class LogLogFit:
    """One asymptotic fit of E_ref on bound B (see docs/validation.md, "Asymptotic fit").

    ``slope`` is beta; ``slope_se`` its HC3 standard error and ``slope_ci_low/high``
    the (1 - alpha) t interval; ``t_slope_eq_1``/``p_slope_eq_1`` the two-sided test of
    beta = 1.  ``r2`` is the usual R^2 of the log-log line; ``r2_slope_1`` the R^2 of
    the line forced to slope 1 (log E_ref = log B + a).  ``jb_p``/``shapiro_p`` test
    normal residuals, ``bp_p``/``white_p`` homoscedastic residuals.  ``ratio_*``
    describe E_ref / B; ``origin_*`` the regression E_ref = alpha B through the origin
    (``origin_r2`` uncentered, as usual for that regression).
    """

    n: int
    n_excluded: int
    intercept: float
    slope: float
    slope_se: float
    slope_ci_low: float
    slope_ci_high: float
    t_slope_eq_1: float
    p_slope_eq_1: float
    r2: float
    r2_slope_1: float
    aic: float
    resid_std: float
    jb_stat: float
    jb_p: float
    shapiro_p: float
    bp_stat: float
    bp_p: float
    white_stat: float
    white_p: float
    ratio_min: float
    ratio_median: float
    ratio_max: float
    ratio_geomean: float
    origin_alpha: float
    origin_alpha_se: float
    origin_r2: float
    origin_r2_centered: float

    def to_dict(self) -> dict:
        return {k: (int(v) if k in ("n", "n_excluded") else float(v)) for k, v in asdict(self).items()}

    @property
    def asymptotic_fit(self) -> bool:
        """True when the 95% interval of the slope contains 1 (no evidence against beta = 1)."""
        return self.slope_ci_low <= 1.0 <= self.slope_ci_high


def fit_loglog(e_ref, bound, *, alpha: float = 0.05, what: str = "bound") -> LogLogFit:
    """Fit log E_ref = a + beta log B on the usable rows and test beta = 1.

    ``what`` names the data in the error raised when fewer than MIN_ROWS rows are usable
    (rows with a bound of np.inf or <= 0 are dropped and counted in ``n_excluded``).
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    e_all = np.asarray(e_ref, dtype=float).ravel()
    b_all = np.asarray(bound, dtype=float).ravel()
    keep = usable_rows(e_all, b_all)
    n = int(keep.sum())
    if n < MIN_ROWS:
        raise InsufficientDataError(
            f"{what}: {n} usable row(s) (of {e_all.size}; {e_all.size - n} with an infinite or non-positive "
            f"value), the regression needs at least {MIN_ROWS}")
    e, b = e_all[keep], b_all[keep]
    ly, lx = np.log(e), np.log(b)
    if np.ptp(lx) == 0:
        raise InsufficientDataError(f"{what}: the bound takes a single value on all {n} rows; "
                                    "a slope cannot be fitted")
    res = loglog_ols(e, b, cov_type="HC3")
    a, beta = (float(v) for v in res.params)
    se = float(res.bse[1])
    ci = np.asarray(res.conf_int(alpha=alpha))[1]
    df_resid = res.df_resid
    t1 = (beta - 1.0) / se if se > 0 else (0.0 if beta == 1.0 else np.copysign(np.inf, beta - 1.0))
    p1 = float(2 * scipy.stats.t.sf(abs(t1), df_resid))
    resid = np.asarray(res.resid)
    # R^2 of the slope-1 line: intercept = mean(log(E/B)).
    r = ly - lx
    ss_tot = float(np.sum((ly - ly.mean()) ** 2))
    r2_1 = 1.0 - float(np.sum((r - r.mean()) ** 2)) / ss_tot if ss_tot > 0 else np.nan
    jb_stat, jb_p, _, _ = jarque_bera(resid)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sh_p = float(scipy.stats.shapiro(resid).pvalue) if 3 <= n <= 5000 and np.ptp(resid) > 0 else np.nan
        exog = res.model.exog
        try:
            bp_stat, bp_p, _, _ = het_breuschpagan(resid, exog)
        except (ValueError, np.linalg.LinAlgError):
            bp_stat, bp_p = np.nan, np.nan
        try:
            w_stat, w_p, _, _ = het_white(resid, exog)
        except (ValueError, AssertionError, np.linalg.LinAlgError):
            w_stat, w_p = np.nan, np.nan
    ratio = e / b
    o = sm.OLS(e, b).fit(cov_type="HC3", use_t=True)
    o_alpha = float(o.params[0])
    o_res = e - o_alpha * b
    o_ss_tot = float(np.sum((e - e.mean()) ** 2))
    return LogLogFit(
        n=n, n_excluded=int(e_all.size - n), intercept=a, slope=beta, slope_se=se,
        slope_ci_low=float(ci[0]), slope_ci_high=float(ci[1]), t_slope_eq_1=float(t1), p_slope_eq_1=p1,
        r2=float(res.rsquared), r2_slope_1=float(r2_1), aic=float(res.aic),
        resid_std=float(np.sqrt(res.scale)),
        jb_stat=float(jb_stat), jb_p=float(jb_p), shapiro_p=sh_p,
        bp_stat=float(bp_stat), bp_p=float(bp_p), white_stat=float(w_stat), white_p=float(w_p),
        ratio_min=float(ratio.min()), ratio_median=float(np.median(ratio)), ratio_max=float(ratio.max()),
        ratio_geomean=float(np.exp(np.mean(np.log(ratio)))),
        origin_alpha=o_alpha, origin_alpha_se=float(o.bse[0]), origin_r2=float(o.rsquared),
        origin_r2_centered=1.0 - float(np.sum(o_res ** 2)) / o_ss_tot if o_ss_tot > 0 else np.nan,
    )


def fit_bounds(e_ref, bounds: dict, *, alpha: float = 0.05, what: str = "") -> dict:
    """``fit_loglog`` for each named bound; a bound with too few usable rows maps to the error.

    Returns {name: LogLogFit | InsufficientDataError} so that one infeasible dataflow
    never hides the fits of the others.
    """
    out = {}
    for name, b in bounds.items():
        try:
            out[name] = fit_loglog(e_ref, b, alpha=alpha, what=f"{what}{' ' if what else ''}bound {name}")
        except InsufficientDataError as exc:
            out[name] = exc
    return out
