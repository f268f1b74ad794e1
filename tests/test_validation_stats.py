"""The validation statistics on synthetic data whose truth is known.

Regression: the HC3 interval covers the true slope at close to the nominal rate over
many seeds, beta = 1 is not rejected when true and a wrong bound (B^2) is rejected.
Calibration recovers known non-negative coefficients.  The J test picks the true
predictor.  Scaling slopes recover a known exponent.  Reports embed figures.
"""

import base64
import itertools
import json

import numpy as np
import pandas as pd
import pytest

from validation.calibration import detect_relation, fit_calibration, kfold_indices
from validation.pipeline import BOUNDS, calibrated_costs, run_validation
from validation.proxies import compare_predictors, j_test
from validation.reference_data import ReferenceDataError
from validation.regression import MIN_ROWS, InsufficientDataError, fit_loglog
from validation.report import Section, table_markdown, table_text, write_report
from validation.scaling import find_series, scaling_slopes, summarize_scaling

SEEDS = 200
#: 95% nominal coverage over 200 seeds: binomial sd ~ 3.1, accept about +-3.5 sd.
COVER_RANGE = (179, 199)


def _synthetic(seed, n=60, slope=1.0, sigma=0.3, hetero=False):
    rng = np.random.default_rng(seed)
    B = np.exp(rng.uniform(5, 20, n))
    lb = np.log(B)
    sd = sigma * (0.3 + 1.4 * np.abs(lb - 12.5) / 7.5) if hetero else sigma
    E = 3.0 * B ** slope * np.exp(rng.normal(0, 1, n) * sd)
    return E, B


@pytest.mark.parametrize("hetero", [False, True])
def test_hc3_interval_covers_true_slope_at_nominal_rate(hetero):
    covered = rejected = 0
    for seed in range(SEEDS):
        E, B = _synthetic(seed, hetero=hetero)
        f = fit_loglog(E, B)
        covered += f.slope_ci_low <= 1.0 <= f.slope_ci_high
        rejected += f.p_slope_eq_1 < 0.05
    assert COVER_RANGE[0] <= covered <= COVER_RANGE[1]
    # the t-test of beta = 1 is the same statement as the interval
    assert covered + rejected == SEEDS


def test_true_slope_not_rejected_and_wrong_bound_rejected():
    E, B = _synthetic(7, sigma=0.2)
    good = fit_loglog(E, B)
    assert good.p_slope_eq_1 > 0.05 and good.asymptotic_fit and good.r2 > 0.98
    # the spread of E/B is that of 3 * lognormal(0, 0.2)
    assert 2.0 < good.ratio_median < 4.5 and good.ratio_min < good.ratio_median < good.ratio_max
    # a bound growing like B^2 (e.g. F^2 for a linear energy) has slope 1/2 and is rejected
    for wrong in (B ** 2, np.sqrt(B)):
        w = fit_loglog(E, wrong)
        assert w.p_slope_eq_1 < 1e-10 and not w.asymptotic_fit
    assert fit_loglog(E, B ** 2).slope == pytest.approx(good.slope / 2, rel=1e-9)


def test_slope_other_than_one_is_estimated_and_rejected():
    E, B = _synthetic(3, slope=0.8, sigma=0.1, n=200)
    f = fit_loglog(E, B)
    assert f.slope_ci_low <= 0.8 <= f.slope_ci_high
    assert f.slope == pytest.approx(0.8, abs=0.02) and f.p_slope_eq_1 < 1e-10


def test_regression_through_origin_and_diagnostics():
    rng = np.random.default_rng(0)
    B = np.exp(rng.uniform(2, 8, 100))
    E = 2.5 * B * (1 + rng.normal(0, 0.01, 100))
    f = fit_loglog(E, B)
    assert f.origin_alpha == pytest.approx(2.5, rel=0.01) and f.origin_r2 > 0.999
    assert f.r2_slope_1 > 0.999 and f.ratio_geomean == pytest.approx(2.5, rel=0.01)
    # normal homoscedastic residuals: the tests do not reject at 1%
    assert min(f.jb_p, f.shapiro_p, f.bp_p, f.white_p) > 0.01
    # skewed residuals fail the normality tests; a spread growing with B fails the variance tests
    g = fit_loglog(B * np.exp(rng.exponential(1, 100)), B)
    assert g.shapiro_p < 0.01 and g.jb_p < 0.01
    B3 = np.exp(rng.uniform(2, 8, 300))
    h = fit_loglog(B3 * np.exp(rng.normal(0, 1, 300) * (np.log(B3) - 1.5) / 3), B3)
    assert h.bp_p < 0.01 and h.white_p < 0.01


def test_infinite_bounds_are_excluded_and_counted_and_few_rows_error():
    E, B = _synthetic(1, n=30)
    B = B.copy()
    B[:4] = np.inf
    f = fit_loglog(E, B)
    assert (f.n, f.n_excluded) == (26, 4)
    assert f.slope == pytest.approx(fit_loglog(E[4:], B[4:]).slope, rel=1e-12)
    B[: 30 - MIN_ROWS + 1] = np.inf
    with pytest.raises(InsufficientDataError) as err:
        fit_loglog(E, B, what="platform 'x' bound WS")
    msg = str(err.value)
    assert "platform 'x' bound WS" in msg and f"{MIN_ROWS - 1} usable row(s) (of 30" in msg and "\n" not in msg
    assert isinstance(err.value, ReferenceDataError)


def _counts(seed, n=80):
    rng = np.random.default_rng(seed)
    F = np.exp(rng.uniform(8, 20, n))
    Q = F / np.exp(rng.uniform(0, 5, n))
    return Q, Q + 3 * F, F, rng


def test_calibration_recovers_identifiable_combinations_when_A_is_Q_plus_3F():
    Q, A, F, rng = _counts(2)
    aD, aB, aM = 150.0, 4.0, 2.0
    E = (aD * Q + aB * A + aM * F) * np.exp(rng.normal(0, 0.02, Q.size))
    assert detect_relation(Q, A, F) == (1.0, 3.0)
    c = fit_calibration(E, Q, A, F)
    assert c.relation == (1.0, 3.0) and c.coef_A == 0
    assert c.coef_Q == pytest.approx(aD + aB, rel=0.02)
    assert c.coef_F == pytest.approx(aM + 3 * aB, rel=0.02)
    assert 0.005 < c.cv_rel_median < 0.03 and c.cv_rel_p90 < 0.06
    # the true alpha_B lies in the range of alpha_B that gives the same predictions
    assert c.alpha_B_max >= aB
    np.testing.assert_allclose(c.predict(Q, A, F), c.coef_Q * Q + c.coef_F * F)


def test_calibration_recovers_all_three_when_identifiable_and_keeps_them_non_negative():
    Q, _, F, rng = _counts(4)
    A = Q * rng.uniform(1, 3, Q.size) + 3 * F * rng.uniform(1, 2, Q.size)
    E = 50 * Q + 2 * A + 7 * F
    c = fit_calibration(E, Q, A, F, k=4)
    assert c.relation is None and "all identifiable" in c.identifiable
    assert (c.coef_Q, c.coef_A, c.coef_F) == pytest.approx((50, 2, 7), rel=1e-6)
    assert c.cv_rel_p90 < 1e-8 and c.k == 4
    # a truth with a negative coefficient is fitted with that coefficient at zero
    c2 = fit_calibration(50 * Q - 0.5 * A + 9 * F, Q, A, F)
    assert min(c2.coef_Q, c2.coef_A, c2.coef_F) >= 0 and c2.coef_A == 0


def test_calibration_drops_infeasible_rows_and_folds_partition():
    Q, A, F, _ = _counts(5, n=20)
    Q[:3] = np.inf
    c = fit_calibration(206 * Q + 0 * A + 19 * F, Q, A, F)
    assert (c.n, c.n_excluded) == (17, 3)
    folds = kfold_indices(17, 5, seed=1)
    assert sorted(np.concatenate(folds).tolist()) == list(range(17)) and {len(f) for f in folds} == {3, 4}
    with pytest.raises(InsufficientDataError, match="calibration needs at least 3"):
        fit_calibration(np.ones(2), [1, 2], [4, 5], [1, 1])


def test_j_test_and_aic_pick_the_true_predictor():
    rng = np.random.default_rng(11)
    n = 80
    F = np.exp(rng.uniform(10, 20, n))
    B = F / np.exp(rng.uniform(0, 4, n)) * 200 + 19 * F
    W = np.exp(rng.uniform(5, 15, n))
    noise = np.exp(rng.normal(0, 0.1, n))
    j = j_test(2 * B * noise, B, F, "OS", "F")
    assert j.winner == "OS" and j.p_a_rejected > 0.05 and j.p_b_rejected < 1e-6
    j2 = j_test(5 * F * noise, B, F, "OS", "F")
    assert j2.winner == "F"
    ws = B * 1.5
    ws[:6] = np.inf
    cmp = compare_predictors(2 * B * noise, {"LB": B * 0.7, "OS": B, "WS": ws},
                             {"F": F, "W": W, "X+W+Y": B / F * 1e3})
    assert cmp.best_bound in ("LB", "OS") and cmp.table.set_index("predictor").loc["OS", "delta_aic"] < 1e-6
    assert cmp.best_proxy == "F" and "WS" in cmp.omitted and cmp.n == n
    assert all(jt.winner == cmp.best_bound for jt in cmp.j_tests)
    assert cmp.verdict.startswith(f"{cmp.best} wins by AIC") and "J test keeps" in cmp.verdict
    # energy that truly follows the MAC count: the proxy wins and the verdict says so
    cmp2 = compare_predictors(5 * F * noise, {"LB": B * 0.7, "OS": B}, {"F": F, "W": W})
    assert cmp2.best == "F" and cmp2.verdict.startswith("the proxy F wins by AIC")


def _grid_frame():
    rows = []
    for c, d, hw, k, s, M in itertools.product([8, 16, 32, 64], [16, 32], [8, 16, 32], [1, 3, 5], [1, 2],
                                               [1024, 4096, 16384]):
        rows.append(dict(platform="p", b=1, c=c, d=d, h=hw, w=hw, kh=k, kw=k, sh=s, sw=s, ph=(k - 1) // 2,
                         pw=(k - 1) // 2, groups=1, M=M))
    return pd.DataFrame(rows)


def test_scaling_finds_series_and_recovers_known_exponents():
    df = _grid_frame()
    df["energy_pJ"] = df.c ** 0.8 * df.d * df.h ** 2 * df.kh ** 1.5 * df.M ** -0.4 / df.sh ** 2
    df["lb_E"] = df.c * df.d * df.h ** 2 * df.kh ** 2 / np.sqrt(df.M)
    df.loc[0, "lb_E"] = np.inf
    s = scaling_slopes(df, {"LB": "lb_E"})
    summ = summarize_scaling(s).set_index("parameter")
    want = {"c": 0.8, "d": 1.0, "h=w": 2.0, "k": 1.5, "stride": -2.0, "M": -0.4}
    for p, v in want.items():
        assert summ.loc[p, "slope_ref"] == pytest.approx(v, abs=1e-9)
    assert summ.loc["c", "slope_LB"] == pytest.approx(1.0) and summ.loc["M", "slope_LB"] == pytest.approx(-0.5)
    assert summ.loc["k", "gap_LB"] == pytest.approx(0.5)
    # d has 2 values and stride 2 values: no series (need 3 distinct values)
    assert set(summ.index) == set(want) and summ.loc["stride", "slope_LB"] == 0
    # with three points required, the two-valued d and stride form no series
    assert set(summarize_scaling(scaling_slopes(df, {"LB": "lb_E"}, min_points=3))["parameter"]) == {"c", "h=w", "k", "M"}
    # the series through the infinite row has no LB slope, the others do
    assert s["slope_LB"].isna().sum() == 6 and s["slope_LB"].notna().sum() == len(s) - 6
    # the kernel series uses "same" padding and includes k = 1
    ks = s[s.parameter == "k"]
    assert set(ks["values"]) == {"1,3,5"} and ks["fixed"].str.endswith("pad=same").all()
    # c series: 3 * 3 * 2 * 2 * 3 = 108 groups, each with c = 8,16,32,64
    assert summ.loc["c", "n_series"] == 108 and len(find_series(df, "c")) == 108 * 4


def test_report_tables_and_figure_embedding(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(1, 1))
    ax.plot([0, 1], [0, 1])
    png = tmp_path / "figs" / "bound_vs_estimate.png"
    png.parent.mkdir()
    fig.savefig(png, dpi=20)
    plt.close(fig)
    t = pd.DataFrame({"platform": ["a|b", "c"], "slope": [1.23456, np.nan], "n": [3, 4]})
    assert table_markdown(t).splitlines()[2] == "| a\\|b | 1.235 | 3 |"
    assert table_text(t).splitlines()[3].split() == ["c", "-", "4"]
    md, html = write_report(tmp_path / "rep", "T", [Section("S", "words <x>", t)],
                            [png.parent, tmp_path / "missing.png"])
    assert "![bound vs estimate](figures/bound_vs_estimate.png)" in md.read_text()
    assert (tmp_path / "rep" / "figures" / "bound_vs_estimate.png").read_bytes() == png.read_bytes()
    h = html.read_text()
    assert base64.b64encode(png.read_bytes()).decode() in h and "words &lt;x&gt;" in h
    assert "<td class=\"num\">1.235</td>" in h and "src=\"figures" not in h


# ----- the whole pipeline, with a stand-in for the bounds (model-shaped counts) --------------------

def fake_evaluate(df, costs):
    """Model-shaped bound columns: LB <= OS, WS infeasible when the Buffer is small."""
    from validation.reference_data import layers_of
    out = df.copy()
    L = layers_of(df)
    for k in ("F", "X", "W", "Y", "X_used"):
        out[k] = [getattr(x, k) for x in L]
    q = np.array([x.q for x in L], float)
    M = out["M"].to_numpy(float)
    F = out["F"].to_numpy(float)
    comp = (out["X_used"] + out["W"] + out["Y"]).to_numpy(float)
    def e(Q, A):
        with np.errstate(invalid="ignore"):
            return np.where(np.isfinite(Q), costs["eD"] * Q + costs["eB"] * A + costs["eM"] * F, np.inf)

    lbQ = np.maximum(comp, F / np.sqrt(q * M) - M)
    osQ = comp + 2 * F / np.sqrt(M)
    wsQ = np.where(M >= 64, comp + out["X"].to_numpy(float) * np.ceil(out["W"].to_numpy(float) / M), np.inf)
    for name, Q in (("lb", lbQ), ("os", osQ), ("ws", wsQ), ("min", np.minimum(osQ, wsQ))):
        out[f"{name}_Q"] = Q
        out[f"{name}_A"] = Q + 3 * F
        out[f"{name}_E"] = e(Q, Q + 3 * F)
    return out


def synthetic_reference(seed=0, platforms=("alpha", "beta")):
    """Reference rows: energy = 0.5 pJ * OS-shaped energy * lognormal noise, WS infeasible at M=32."""
    base = _grid_frame()
    base = base[(base.sh == 1)].copy()
    base.loc[base.index[:6], "M"] = 32
    rng = np.random.default_rng(seed)
    parts = []
    for i, p in enumerate(platforms):
        t = base.assign(platform=p)
        ev = fake_evaluate(t, dict(eD=200, eB=6, eM=1, bits=16))
        t["energy_pJ"] = (0.5 + i) * ev["os_E"] * np.exp(rng.normal(0, 0.1, len(t)))
        parts.append(t)
    return pd.concat(parts, ignore_index=True)


def test_run_validation_end_to_end_on_synthetic_reference():
    df = synthetic_reference()
    res = run_validation(df, evaluate=fake_evaluate)
    assert res.platforms == ("alpha", "beta")
    fits = res.fit_table().set_index(["platform", "bound"])
    assert set(fits.index.get_level_values("bound")) == set(BOUNDS)
    os_ = fits.loc[("alpha", "OS")]
    assert os_["ci_low"] <= 1 <= os_["ci_high"] and os_["r2"] > 0.99
    assert fits.loc[("beta", "OS"), "ratio_median"] == pytest.approx(1.5, rel=0.05)
    assert fits.loc[("alpha", "WS"), "excluded"] == 6 and fits.loc[("alpha", "OS"), "excluded"] == 0
    cal = res.calibration_table().set_index(["platform", "counts"])
    assert cal.loc[("alpha", "OS"), "coef_Q"] == pytest.approx(0.5 * 206, rel=0.05)
    assert cal.loc[("alpha", "OS"), "coef_F"] == pytest.approx(0.5 * 19, rel=0.05)
    assert cal.loc[("alpha", "OS"), "cv_median"] < 0.12
    assert res.proxies["alpha"].best in ("OS", "min") and "WS" in res.proxies["alpha"].omitted
    recs = res.records()
    assert len(recs) == 8 and json.loads(json.dumps(recs)) == recs
    assert {"platform", "bound", "n", "slope", "slope_ci_low", "slope_ci_high", "p_slope_eq_1", "r2"} <= set(recs[0])
    summ = res.scaling_summary.set_index(["platform", "parameter"])
    assert summ.loc[("alpha", "c"), "n_series"] > 0
    assert "== Asymptotic fit" in res.text()
    one = run_validation(df, "beta", evaluate=fake_evaluate)
    assert one.platforms == ("beta",) and len(one.records()) == 4


def test_run_validation_errors_name_the_problem():
    df = synthetic_reference()
    with pytest.raises(ReferenceDataError, match="platform 'gamma' not in the data; known: alpha, beta"):
        run_validation(df, "gamma", evaluate=fake_evaluate)
    few = pd.concat([df, df.iloc[:3].assign(platform="tiny")], ignore_index=True)
    with pytest.raises(ReferenceDataError, match=f"platform 'tiny' has 3 row\\(s\\); the regression needs at least {MIN_ROWS}"):
        run_validation(few, evaluate=fake_evaluate)
    with pytest.raises(ReferenceDataError, match="missing required column\\(s\\): energy_pJ"):
        run_validation(df.drop(columns="energy_pJ"), evaluate=fake_evaluate)
    # a bound infeasible on every row of a platform is reported, not fatal
    allsmall = df.assign(M=32)
    res = run_validation(allsmall, "alpha", evaluate=fake_evaluate)
    ws = res.fit_table().set_index("bound").loc["WS"]
    assert ws["n"] == 0 and np.isnan(ws["slope"]) and "bound WS: 0 usable row(s)" in " ".join(res.notes)
    rec = {r["bound"]: r for r in res.records()}["WS"]
    assert rec["n"] == 0 and rec["slope"] is None and "needs at least" in rec["error"]
    n = int((allsmall["platform"] == "alpha").sum())
    assert res.proxies["alpha"].omitted == {"WS": f"infinite on {n} of the {n} common rows"}
    assert "WS" not in set(res.proxy_table()["predictor"])


def test_calibrated_costs_recover_the_platform_cost_ratio():
    """Energy with a DRAM/MAC cost ratio of 1000 (not the model's 206/19): the default costs
    misfit, the per-platform costs from the LB calibration put the ratio E_ref / B at 1."""
    df = synthetic_reference(platforms=("alpha",))
    ev = fake_evaluate(df, dict(eD=200, eB=6, eM=1, bits=16))
    rng = np.random.default_rng(5)
    df["energy_pJ"] = (1000 * ev["lb_Q"] + 1 * ev["F"]) * np.exp(rng.normal(0, 0.05, len(df)))
    first = run_validation(df, evaluate=fake_evaluate)
    costs = calibrated_costs(first)
    assert costs["alpha"]["eD"] / costs["alpha"]["eM"] == pytest.approx(1000, rel=0.05)
    assert costs["alpha"]["eB"] == 0
    second = run_validation(df, evaluate=fake_evaluate, platform_costs=costs)
    f0, f1 = first.fits[("alpha", "LB")], second.fits[("alpha", "LB")]
    assert f1.r2 > f0.r2 and f1.ratio_median == pytest.approx(1.0, abs=0.03)
    assert f1.slope_ci_low <= 1 <= f1.slope_ci_high
    assert second.records()[0]["costs"]["eD"] == pytest.approx(costs["alpha"]["eD"])
    assert "per platform: alpha: eD=" in second.sections()[0].text
