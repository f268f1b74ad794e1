"""Do the bounds predict energy better than naive proxies (#MACs, #weights, |X|+|W|+|Y|)?

Every candidate predictor P gets the same log-log fit log E_ref = a + b log P on the
same rows, so R^2 and AIC are comparable; the lowest AIC wins.  The best bound and
each proxy are also compared by the Davidson-MacKinnon J test for non-nested models
(statsmodels ``compare_j``), in both directions, since AIC alone cannot say whether
one predictor's information is contained in the other's.  Methods:
docs/validation.md, "Proxy comparison".
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from statsmodels.stats.diagnostic import compare_j

from validation.regression import MIN_ROWS, InsufficientDataError, loglog_ols

__all__ = ["PROXY_NAMES", "ProxyComparison", "JTest", "j_test", "compare_predictors", "proxy_columns"]

#: Naive proxies, by the names the report uses.
PROXY_NAMES = ("F", "W", "X+W+Y")


def proxy_columns(df: pd.DataFrame) -> dict[str, np.ndarray]:
    """The naive proxies of each row, from the size columns F, W, X, Y of the bounds table."""
    return {"F": df["F"].to_numpy(float), "W": df["W"].to_numpy(float),
            "X+W+Y": (df["X"] + df["W"] + df["Y"]).to_numpy(float)}


@dataclass(frozen=True)
class JTest:
    """J test between predictors ``a`` and ``b`` (log-log models on the same rows).

    ``p_a_rejected`` is the p-value of H0 "model a is adequate" (b's fitted values add
    nothing to a); likewise ``p_b_rejected``.  ``winner`` is a, b, "neither" (both
    rejected: each explains something the other misses), "inconclusive" (none
    rejected) or "nested" (the two log predictors are affinely related).
    """

    a: str
    b: str
    t_a_rejected: float
    p_a_rejected: float
    t_b_rejected: float
    p_b_rejected: float
    winner: str


def j_test(y, xa, xb, name_a: str, name_b: str, level: float = 0.05) -> JTest:
    """Davidson-MacKinnon J test of log y on log xa versus log y on log xb, both directions."""
    ra = loglog_ols(y, xa, cov_type="nonrobust")
    rb = loglog_ols(y, xb, cov_type="nonrobust")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            # compare_j(x, z) tests whether x's fitted values add to model z: it rejects z.
            ja = compare_j(rb, ra, result_object=True)
            jb = compare_j(ra, rb, result_object=True)
        except ValueError:
            return JTest(name_a, name_b, np.nan, np.nan, np.nan, np.nan, "nested")
    pa, pb = float(ja.pvalue), float(jb.pvalue)
    if pa >= level and pb < level:
        winner = name_a
    elif pb >= level and pa < level:
        winner = name_b
    elif pa < level and pb < level:
        winner = "neither"
    else:
        winner = "inconclusive"
    return JTest(name_a, name_b, float(ja.statistic), pa, float(jb.statistic), pb, winner)


@dataclass(frozen=True)
class ProxyComparison:
    """Fits of every predictor on common rows, the AIC winner, and J tests of the best bound.

    ``table`` has one row per predictor: kind (bound/proxy), n, slope, r2, aic,
    delta_aic (to the best).  ``omitted`` maps a bound left out (infeasible on some of
    the common rows) to the reason.  ``verdict`` is one plain sentence.
    """

    n: int
    n_excluded: int
    table: pd.DataFrame
    best: str
    best_bound: str
    best_proxy: str
    j_tests: tuple[JTest, ...]
    omitted: dict
    verdict: str


def compare_predictors(e_ref, bounds: dict, proxies: dict, *, level: float = 0.05,
                       what: str = "proxy comparison") -> ProxyComparison:
    """Compare bounds and proxies as predictors of E_ref (log-log R^2, AIC, J test).

    Common rows are those where E_ref, every proxy and every bound is positive and
    finite; a bound that is infinite on rows where the others are finite (an
    infeasible dataflow) is omitted rather than shrinking the sample, and named in
    ``omitted``.
    """
    e = np.asarray(e_ref, dtype=float)
    arrs = {k: np.asarray(v, dtype=float) for k, v in {**bounds, **proxies}.items()}

    def ok(v):
        with np.errstate(invalid="ignore"):
            return np.isfinite(v) & (v > 0)

    base = ok(e)
    for k in proxies:
        base &= ok(arrs[k])
    feas = {k: ok(arrs[k]) for k in bounds}
    # Keep a bound only if it is usable wherever the most-feasible bound is.
    widest = max(feas, key=lambda k: int((feas[k] & base).sum()))
    rows = base & feas[widest]
    omitted = {}
    kept_bounds = []
    for k in bounds:
        if (feas[k] & rows).sum() == rows.sum():
            kept_bounds.append(k)
        else:
            omitted[k] = f"infinite on {int((rows & ~feas[k]).sum())} of the {int(rows.sum())} common rows"
    for k in kept_bounds:
        rows &= feas[k]
    n = int(rows.sum())
    if n < MIN_ROWS:
        raise InsufficientDataError(f"{what}: {n} usable row(s), the comparison needs at least {MIN_ROWS}")
    y = e[rows]
    recs = []
    for k in list(kept_bounds) + list(proxies):
        x = arrs[k][rows]
        if np.ptp(np.log(x)) == 0:
            recs.append(dict(predictor=k, kind="bound" if k in bounds else "proxy", n=n, slope=np.nan,
                             r2=np.nan, aic=np.inf))
            continue
        r = loglog_ols(y, x, cov_type="nonrobust")
        recs.append(dict(predictor=k, kind="bound" if k in bounds else "proxy", n=n, slope=float(r.params[1]),
                         r2=float(r.rsquared), aic=float(r.aic)))
    table = pd.DataFrame(recs)
    table["delta_aic"] = table["aic"] - table["aic"].min()
    best = str(table.loc[table["aic"].idxmin(), "predictor"])
    tb = table[table["kind"] == "bound"]
    tp = table[table["kind"] == "proxy"]
    best_bound = str(tb.loc[tb["aic"].idxmin(), "predictor"]) if len(tb) else ""
    best_proxy = str(tp.loc[tp["aic"].idxmin(), "predictor"]) if len(tp) else ""
    jts = []
    if best_bound:
        for p in proxies:
            jts.append(j_test(y, arrs[best_bound][rows], arrs[p][rows], best_bound, p, level))
    verdict = _verdict(table, best, best_bound, best_proxy, jts)
    return ProxyComparison(n=n, n_excluded=int(e.size - n), table=table, best=best, best_bound=best_bound,
                           best_proxy=best_proxy, j_tests=tuple(jts), omitted=omitted, verdict=verdict)


def _verdict(table, best, best_bound, best_proxy, jts) -> str:
    kind = table.set_index("predictor")["kind"]
    r2 = table.set_index("predictor")["r2"]
    aic = table.set_index("predictor")["aic"]
    tied = [p for p in aic.index if p != best and abs(aic[p] - aic[best]) <= 1e-9 * max(1.0, abs(aic[best]))]
    tie = f", tied with {', '.join(tied)}" if tied else ""
    head = (f"{best} wins by AIC (R^2 {r2[best]:.3f}{tie})" if kind[best] == "bound"
            else f"the proxy {best} wins by AIC (R^2 {r2[best]:.3f}{tie})")
    if best_bound and best_proxy:
        gap = aic[best_proxy] - aic[best_bound]
        head += (f"; best bound {best_bound} vs best proxy {best_proxy}: "
                 f"R^2 {r2[best_bound]:.3f} vs {r2[best_proxy]:.3f}, AIC difference {gap:+.1f}")
    jt = next((j for j in jts if j.b == best_proxy), None)
    if jt is not None:
        say = {best_bound: f"the J test keeps {best_bound} and rejects {best_proxy}",
               best_proxy: f"the J test keeps {best_proxy} and rejects {best_bound}",
               "neither": "the J test rejects both (each carries information the other lacks)",
               "inconclusive": "the J test rejects neither",
               "nested": "the J test cannot separate them (nested predictors)"}[jt.winner]
        head += f"; {say}"
    return head + "."
