"""Soundness of the lower bound against DRAM words (validation/soundness.py) on synthetic rows."""

import itertools
import json

import numpy as np
import pandas as pd
import pytest

from bounds.lower_bound import lower_bound
from complexity.layer import Layer
from complexity.machine import Machine
from energy_complexity.cli import main
from validation.pipeline import run_validation
from validation.reference_data import LAYER_COLUMNS
from validation.soundness import SOUNDNESS_COLUMNS, soundness_rows, soundness_table, worst_rows

KEYS = {"platform", "bound", "n", "slope", "slope_ci_low", "slope_ci_high", "p_slope_eq_1", "r2"}


def _row(layer: Layer, platform: str, M: int, dram: int, onchip=None, X=None) -> dict:
    """One reference row; dram_words_X defaults to X_used and the rest of ``dram`` goes to W and Y."""
    X = layer.X_used if X is None else X
    row = {f: getattr(layer, f) for f in LAYER_COLUMNS}
    row.update(platform=platform, M=M, energy_pJ=1.0, dram_words=dram, dram_words_X=X,
               dram_words_W=layer.W, dram_words_Y=dram - X - layer.W)
    if onchip is not None:
        row["M_onchip"] = onchip
    return row


def _lb(layer, M):
    return lower_bound(layer, Machine(M=M)).Q


LAYER = Layer.conv(64, 64, 28, 3, 1, 1)


def test_a_row_below_the_bound_is_flagged_and_the_ratios_are_exact():
    lb_small, lb_big = _lb(LAYER, 256), _lb(LAYER, 2048)
    assert lb_small > lb_big > LAYER.X_used + LAYER.W + LAYER.Y  # both capacity-bound here
    df = pd.DataFrame([
        _row(LAYER, "p", 256, lb_small, onchip=2048),          # exactly on both bounds
        _row(LAYER, "p", 256, lb_big - 1, onchip=2048),        # below both: a violation
        _row(LAYER, "p", 256, (lb_small + lb_big) // 2, onchip=2048),  # below LB(M) only
    ])
    rows = soundness_rows(df)
    assert list(rows["lb_M"]) == [lb_small] * 3 and list(rows["lb_onchip"]) == [lb_big] * 3
    assert rows["ratio_onchip"].iloc[1] == pytest.approx((lb_big - 1) / lb_big)
    assert list(rows["undercount"]) == ["", "", ""]
    t = soundness_table(rows).set_index("platform").loc["p"]
    assert (t["rows"], t["ge_lb_M"], t["ge_lb_onchip"], t["below_onchip"], t["below_onchip_undercount"],
            t["below_onchip_corrected"]) == (3, 1, 2, 1, 0, 1)
    assert t["share_ge_lb_onchip"] == pytest.approx(2 / 3)
    assert t["min_ratio_M"] == pytest.approx((lb_big - 1) / lb_small)
    worst = worst_rows(rows, k=1)
    assert len(worst) == 1 and worst["dram_words"].iloc[0] == lb_big - 1


def test_rows_without_the_onchip_column_are_checked_against_LB_M_only():
    df = pd.DataFrame([_row(LAYER, "p", 256, _lb(LAYER, 256)), _row(LAYER, "q", 256, _lb(LAYER, 256) - 5)])
    t = soundness_table(soundness_rows(df)).set_index("platform")
    assert list(t.columns) == list(SOUNDNESS_COLUMNS)[1:]
    assert (t.loc["p", "ge_lb_M"], t.loc["q", "ge_lb_M"]) == (1, 0)
    assert (t["rows_onchip"] == 0).all() and t["share_ge_lb_onchip"].isna().all()
    # a partly filled column: only the filled rows count
    df["M_onchip"] = [2048, np.nan]
    t = soundness_table(soundness_rows(df)).set_index("platform")
    assert (t.loc["p", "rows_onchip"], t.loc["q", "rows_onchip"], t.loc["p", "ge_lb_onchip"]) == (1, 0, 1)
    with pytest.raises(KeyError, match="dram_words"):
        soundness_rows(df.drop(columns="dram_words"))


def test_an_undercounted_operand_explains_a_violation():
    # an estimator counting 6x6 of 7x7 input words per channel (fractional spatial unrolling)
    layer = Layer.conv(256, 16, 7, 1)
    X = 256 * 6 * 6
    dram = X + layer.W + layer.Y
    assert dram < layer.X_used + layer.W + layer.Y == _lb(layer, 10**6)
    rows = soundness_rows(pd.DataFrame([_row(layer, "p", 2048, dram, onchip=10**6, X=X)]))
    assert rows["undercount"].iloc[0] == "X" and rows["ratio_onchip"].iloc[0] < 1
    assert rows["ratio_onchip_corrected"].iloc[0] == 1.0  # X raised to X_used: exactly the compulsory words
    t = soundness_table(rows).iloc[0]
    assert (t["below_onchip"], t["below_onchip_undercount"], t["below_onchip_corrected"]) == (1, 1, 0)


def _reference(tmp_path, with_dram=True, with_onchip=True):
    rows = []
    rng = np.random.default_rng(1)
    for p, (c, d, hw, k) in itertools.product(("acc_a", "acc_b"),
                                              itertools.product([4, 16, 64], [8, 32], [7, 14, 28], [1, 3])):
        layer = Layer.conv(c, d, hw, k, 1, (k - 1) // 2)
        M = 512
        lb = _lb(layer, 4 * M)
        r = _row(layer, p, M, int(lb * rng.uniform(1.0, 3.0)), onchip=4 * M)
        r["energy_pJ"] = 200.0 * r["dram_words"] + 19.0 * layer.F
        rows.append(r)
    df = pd.DataFrame(rows)
    if not with_onchip:
        df = df.drop(columns="M_onchip")
    if not with_dram:
        df = df.drop(columns=["dram_words", "dram_words_X", "dram_words_W", "dram_words_Y"])
    path = tmp_path / "ref.csv"
    df.to_csv(path, index=False)
    return path


def test_validation_reports_soundness_and_keeps_the_json_contract(tmp_path, capsys):
    path = _reference(tmp_path)
    assert main(["validate", "--data", str(path), "--json", "--report", str(tmp_path / "rep")]) == 0
    recs = json.loads(capsys.readouterr().out)
    assert len(recs) == 8 and all(KEYS <= set(r) for r in recs)
    sound = {r["platform"]: r["soundness"] for r in recs if r["bound"] == "LB"}
    assert not any("soundness" in r for r in recs if r["bound"] != "LB")
    assert sound["acc_a"]["rows"] == 36 and sound["acc_a"]["ge_lb_onchip"] == 36
    assert sound["acc_a"]["min_ratio_onchip"] >= 1.0
    csv = pd.read_csv(tmp_path / "rep" / "soundness.csv").set_index("platform")
    assert csv.loc["acc_b", "share_ge_lb_onchip"] == 1.0
    assert "Soundness of the lower bound" in (tmp_path / "rep" / "report.md").read_text()
    assert "Soundness of the lower bound" in (tmp_path / "rep" / "report.html").read_text()
    assert "DRAM >= LB(M_onchip)" in (tmp_path / "rep" / "summary.md").read_text()


def test_validation_without_dram_words_has_no_soundness(tmp_path):
    df = pd.read_csv(_reference(tmp_path, with_dram=False))
    res = run_validation(df)
    assert res.soundness.empty and "soundness" not in res.summary_tables()
    assert not any("soundness" in r for r in res.records())
    assert not [line for line in res.text().splitlines() if line.startswith("==") and "oundness" in line]
    assert "no DRAM words in the data, so no DRAM-traffic check" in res.text()  # the verdict says why
    res = run_validation(pd.read_csv(_reference(tmp_path, with_onchip=False)))
    assert (res.soundness["rows_onchip"] == 0).all() and (res.soundness["rows"] == 36).all()


def test_bundled_zigzag_rows_have_no_unexplained_violation_of_the_bound():
    """Every bundled ZigZag row below Q_LB(M_onchip) is an estimator undercount (88 + 23 rows, the same as
    before the entry-phase bound of docs/theory.md 3.3): raising the undercounted operands lifts each to it."""
    from validation.reference_data import load_bundled
    t = soundness_table(soundness_rows(load_bundled())).set_index("platform")
    assert (t["rows_onchip"] == t["rows"]).all()
    assert (t["below_onchip_corrected"] == 0).all()
    assert (t["below_onchip"] == t["below_onchip_undercount"]).all()
