"""The notebook API: frames and reprs of every result type, infeasible dataflows, the sympy forms
evaluated for a Layer, the closed forms as a library object, and the *_np entry points' inputs."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import sympy as sp

import energy_complexity as ec
from bounds import symbols as S
from bounds.api import TOTALS_DEFINITION, evaluate, evaluate_network
from bounds.lower_bound import lb_expressions, lower_bound
from bounds.lower_bound import lower_bound_np as lower_bound_np_dict
from bounds.output_stationary import os_best, os_expressions, os_min_M
from bounds.output_stationary import os_best_np as os_best_np_dict
from bounds.render import ExpressionError, closed_forms, evaluate_expression
from bounds.weight_stationary import WSTiles, ws_best, ws_expressions, ws_min_M
from bounds.weight_stationary import ws_best_np as ws_best_np_dict
from complexity.layer import Layer, LayerError
from complexity.machine import Machine, MachineError

FIELDS = ("b", "c", "d", "h", "w", "kh", "kw", "sh", "sw", "ph", "pw", "groups")
LAYERS = [Layer.conv(16, 32, 20, 3, pad=1, name="a"), Layer.conv(32, 32, 15, 3, stride=2, groups=4, name="g"),
          Layer.conv(3, 16, 64, 7, stride=2, pad=3, b=2, name="s2"), Layer.fc(512, 10, name="fc")]


# ----- LayerBounds / NetworkBounds -------------------------------------------------------

def test_layer_bounds_frame_and_reprs_show_the_numbers():
    L, m = LAYERS[1], Machine(M=2048)
    r = evaluate(L, m)
    f = r.to_frame()
    assert len(f) == 1
    row = f.iloc[0]
    assert [row[x] for x in FIELDS] == [getattr(L, x) for x in FIELDS] and row["M"] == 2048 and row["F"] == L.F
    for key, cost in (("lb", lower_bound(L, m)), ("os", os_best(L, m)), ("ws", ws_best(L, m))):
        assert (row[f"{key}_Q"], row[f"{key}_A"]) == (cost.Q, cost.A) and row[f"{key}_E"] == cost.E
        for t, v in (cost.tiles or {}).items():
            assert row[f"{key}_{t}"] == v
    assert str(f["lb_Q"].dtype) == "Int64" and str(f["os_d"].dtype) == "Int64"
    assert row["best"] == r.best_name and row["min_Q"] == r.best.Q and row["gap_Q"] == r.gap
    text = repr(r)
    assert f"LB Q={r.lower_bound.Q:,}" in text and f"OS Q={r.os.Q:,}" in text and "gap Q" in text
    assert len(text) < 300 and "\n" not in text
    html = r._repr_html_()
    assert f"{r.ws.Q:,}" in html and "<table" in html


def test_network_bounds_frame_totals_and_dataframe_constructor():
    net = evaluate_network(LAYERS, Machine(M=4096))
    df = pd.DataFrame(net)  # iterable of flat rows
    f = net.to_frame()
    assert list(df.columns) == list(f.columns) and len(df) == len(f) == len(LAYERS) == len(net)
    assert df["lb_Q"].tolist() == f["lb_Q"].tolist() == [r.lower_bound.Q for r in net.layers]
    assert f["name"].tolist() == ["a", "g", "s2", "fc"]
    t = net.to_frame(totals=True).iloc[-1]
    best = [r.best for r in net.layers]
    assert t["name"] == "TOTAL" and t["min_Q"] == sum(c.Q for c in best) == net.totals["best"]["Q"]
    assert t["min_E"] == pytest.approx(sum(c.E for c in best))
    assert t["os_Q"] == sum(r.os.Q for r in net.layers) and t["lb_Q"] == sum(r.lower_bound.Q for r in net.layers)
    # one definition for every column: the gap is total per-layer best over total LB, Q and E alike
    assert t["gap_Q"] == net.gap_Q == sum(c.Q for c in best) / sum(r.lower_bound.Q for r in net.layers)
    assert net.gap_E == pytest.approx(sum(c.E for c in best) / sum(r.lower_bound.E for r in net.layers))
    j = net.to_json()
    assert j["totals_definition"] == TOTALS_DEFINITION and "per layer" in TOTALS_DEFINITION
    assert json.loads(json.dumps(j, allow_nan=False))["totals"]["best"]["Q"] == net.totals["best"]["Q"]
    assert f"per-layer best Q={net.totals['best']['Q']:,}" in repr(net)
    assert "TOTAL" in net._repr_html_()


def test_a_dataflow_that_does_not_fit_is_none_with_a_reason():
    L = Layer.conv(64, 64, 56, 3, pad=1, name="big")
    assert (os_min_M(L), ws_min_M(L)) == (19, 178)
    r = evaluate(L, Machine(M=100))
    # OS-lean (one input channel at a time, one operand streamed) fits the larger tiles: it is the best here
    assert r.ws is None and r.os == os_best(L, Machine(M=100)) and r.best_name == "os_lean"
    assert r.infeasible == {"ws": "M = 100 words is below 178, the footprint of the smallest WS tile"}
    j = r.to_json()
    assert j["ws"] is None and j["infeasible"] == r.infeasible and j["best"] == "os_lean"
    assert "infeasible" not in evaluate(L, Machine(M=65536)).to_json()
    row = r.to_frame().iloc[0]
    assert pd.isna(row["ws_Q"]) and pd.isna(row["ws_c"]) and row["os_Q"] == r.os.Q
    assert "WS infeasible" in repr(r)
    # none fits (OS needs 243 words, OS-lean 123): best is None, the gaps nan (null in JSON), the LB is still there
    K = Layer.conv(3, 96, 227, 11, stride=4)
    r = evaluate(K, Machine(M=100))
    assert (r.os, r.ws, r.best, r.best_name) == (None, None, None, None)
    assert r.os_lean is None and set(r.infeasible) == {"os", "ws", "os_lean"}
    assert math.isnan(r.gap) and math.isnan(r.gap_E) and r.lower_bound == lower_bound(K, Machine(M=100))
    j = json.loads(json.dumps(r.to_json(), allow_nan=False))
    assert j["os"] is None and j["gap_Q"] is None and j["best"] is None and "243" in j["infeasible"]["os"]
    assert "no dataflow fits" in repr(r)
    # in a network a dataflow's total is None when it is infeasible on some layer
    net = evaluate_network([L, Layer.fc(64, 8)], Machine(M=100))
    assert net.total("ws") is None and net.totals["os"]["Q"] == sum(x.os.Q for x in net.layers)
    assert net.totals["best"]["Q"] == sum(x.best.Q for x in net.layers)
    assert net.to_json()["totals"]["ws"] is None
    assert pd.isna(net.to_frame(totals=True).iloc[-1]["ws_Q"])


# ----- the sympy forms for a Layer ------------------------------------------------------------

def test_layer_symbols_substitute_the_closed_forms():
    L = LAYERS[2]
    syms = L.symbols()
    assert set(syms) == set(S.LAYER_SYMBOLS.values()) and syms[S.g] == L.groups and syms[S.kh] == 7
    lb = lb_expressions()
    assert lb["X_used"].subs(syms) == L.X_used and lb["F"].subs(syms) == L.F
    assert lb["F"].subs(L.to_dict()) != L.F  # the reason for symbols(): string keys match nothing


@pytest.mark.parametrize("L", LAYERS, ids=lambda L: L.name)
def test_evaluate_expression_equals_the_numeric_code(L):
    M = 4096
    m = Machine(M=M, eD=100, eB=3, eM=2, bits=8)
    lb = lower_bound(L, m)
    assert evaluate_expression(lb_expressions()["Q"], L, M) == lb.Q
    assert evaluate_expression(lb_expressions()["Q"], L.to_dict(), machine=m) == lb.Q  # a dict of fields works too
    assert evaluate_expression(lb_expressions()["E"].xreplace({}), L, machine=m) == pytest.approx(lb.E, rel=1e-12)
    os_c, ws_c = os_best(L, m), ws_best(L, m)
    assert evaluate_expression(os_expressions()["Q"], L, tiles=os_c.tiles) == os_c.Q
    assert evaluate_expression(ws_expressions()["Q"], L, tiles=WSTiles(ws_c.tiles["d"], ws_c.tiles["c"])) == ws_c.Q
    v = evaluate_expression(lb_expressions()["Q"], L, M, exact=True)
    assert isinstance(v, sp.Integer) and v == lb.Q


def test_evaluate_expression_names_what_is_missing():
    L = LAYERS[0]
    with pytest.raises(ExpressionError, match="M have no value"):
        evaluate_expression(lb_expressions()["Q"], L)
    with pytest.raises(ExpressionError, match=r"C, D have no value \(give tiles\)"):
        evaluate_expression(ws_expressions()["Q"], L)
    with pytest.raises(ExpressionError, match="tiles"):
        evaluate_expression(ws_expressions()["Q"], L, tiles={"x": 1})
    with pytest.raises(MachineError, match="M"):
        evaluate_expression(lb_expressions()["Q"], L, M=0)


# ----- closed forms as a library object --------------------------------------------------------

def test_closed_forms_object_renders_text_latex_json_and_markdown():
    L = LAYERS[0]
    cf = closed_forms(L, M=4096)
    j = cf.to_json()
    assert j["substituted"]["g"] == 1 and j["substituted"]["M"] == 4096
    flat = {k: v for sec in j["sections"].values() for k, v in sec.items()}
    assert int(flat["Q_LB"]) == lower_bound(L, Machine(M=4096)).Q
    assert cf.text().startswith("# closed forms; substituted: b = 1, c = 16")
    assert cf.latex().count(r"\begin{align*}") == len(cf.sections)
    md = cf._repr_markdown_()
    assert md.count("$$\\begin{aligned}") == len(cf.sections)
    assert repr(cf).startswith("ClosedForms(6 sections")
    symbolic = closed_forms({"kh": 3, "kw": 3})
    assert "Q_LB = Max(Q_cap, Q_comp)" in symbolic.text()


# ----- *_np inputs ------------------------------------------------------------------------------

def _dict_of(layers, M):
    return {f: np.array([getattr(L, f) for L in layers], dtype=np.int64) for f in FIELDS}, np.full(len(layers), M)


@pytest.mark.parametrize("name,fn", [("lower_bound_np", lower_bound_np_dict), ("os_best_np", os_best_np_dict),
                                     ("ws_best_np", ws_best_np_dict)])
def test_np_entry_points_take_keywords_frames_and_layers(name, fn):
    api = getattr(ec, name)
    P, M = _dict_of(LAYERS, 4096)
    want = fn(P, M)
    df = pd.DataFrame({**P, "M": M, "tag": list("abcd")})
    for got in (api(P, M), api(**P, M=M), api(df), api(df.drop(columns="M"), 4096), api(LAYERS, M=4096),
                api({**P, "M": M})):
        assert set(got) == set(want)
        for k in want:
            np.testing.assert_array_equal(got[k], want[k])
    one = api(c=64, d=64, hw=56, k=3, pad=1, M=[4096, 65536])  # shortcuts, scalars broadcast against M
    ref = fn({f: np.full(2, getattr(Layer.conv(64, 64, 56, 3, pad=1), f)) for f in FIELDS}, np.array([4096, 65536]))
    np.testing.assert_array_equal(one["Q"], ref["Q"])
    with pytest.raises(MachineError, match="M"):
        api(c=4, d=4)
    with pytest.raises(LayerError, match="ch: unknown layer field"):
        api(c=4, d=4, ch=3, M=100)
    with pytest.raises(LayerError, match="d: required"):
        api(c=4, M=100)
    with pytest.raises(LayerError, match="h: must hold integers"):
        api(c=4, d=4, h=2.5, M=100)


# ----- estimates and validation ------------------------------------------------------------------

def test_estimates_have_frames_and_reprs():
    net = ec.estimate_network(LAYERS[:2] + LAYERS[3:])
    f = net.to_frame()
    assert len(f) == len(net.layers) == len(pd.DataFrame(net))
    for (_, row), le in zip(f.iterrows(), net.layers):
        d = le.to_dict()
        assert row["total"] == d["total"] and row["F"] == le.layer.F and row["c"] == le.layer.c
        assert all(row[f"level_{k}"] == v for k, v in d["by_level"].items())
        assert all(row[f"map_{k}"] == v for k, v in d["mapping"].items())
    tot = net.to_frame(totals=True).iloc[-1]
    assert tot["name"] == "TOTAL" and tot["total"] == pytest.approx(net.total) and tot["F"] == net.macs
    assert tot["level_dram"] == pytest.approx(sum(le.by_level["dram"] for le in net.layers))
    assert f"E={net.total:.6g}" in repr(net) and f"E={net.layers[0].total:.6g}" in repr(net.layers[0])
    assert "<table" in net._repr_html_() and "<table" in net.layers[0]._repr_html_()
    assert len(net.layers[0].to_frame()) == 1


def test_validation_result_has_a_frame_and_a_repr():
    from test_validation_stats import fake_evaluate, synthetic_reference

    from validation.pipeline import run_validation

    res = run_validation(synthetic_reference(), evaluate=fake_evaluate)
    f = res.to_frame()
    assert len(f) == len(res.table) and "min_E" in f.columns and f is not res.table
    fit = res.fits[("alpha", "min")]
    text = repr(res)
    assert text.startswith("ValidationResult(reference data: ") and f"slope {fit.slope:.3f}" in text
    assert "alpha" in text and "beta" in text and "<table" in res._repr_html_()
