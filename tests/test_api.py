"""The bounds API: evaluate / evaluate_network / evaluate_table and the notebook exports."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import energy_complexity as ec
from bounds.api import TABLE_COLUMNS, evaluate, evaluate_network, evaluate_table
from bounds.lower_bound import lower_bound
from bounds.output_stationary import os_best
from bounds.output_stationary_lean import osl_best
from bounds.result import InfeasibleError
from bounds.weight_stationary import ws_best
from complexity.layer import Layer
from complexity.machine import Machine

FIELDS = ("b", "c", "d", "h", "w", "kh", "kw", "sh", "sw", "ph", "pw", "groups")


def test_evaluate_json_has_the_contract_keys_and_consistent_numbers():
    L = Layer.conv(32, 48, 28, 3, pad=1, name="conv3")
    m = Machine(M=8192, bits=8)
    r = evaluate(L, m)
    j = r.to_json()
    assert {"name", "layer", "F", "sizes", "lower_bound", "os", "ws"} <= set(j)
    assert j["name"] == "conv3"
    assert j["layer"] == {f: getattr(L, f) for f in FIELDS}
    assert j["F"] == L.F and j["sizes"]["X"] == L.X and j["sizes"]["W"] == L.W and j["sizes"]["Y"] == L.Y
    for key, cost in (("lower_bound", lower_bound(L, m)), ("os", os_best(L, m)), ("ws", ws_best(L, m))):
        assert (j[key]["Q"], j[key]["A"], j[key]["E"]) == (cost.Q, cost.A, cost.E)
    assert set(j["os"]["tiles"]) == {"b", "d", "th", "tw", "c"} and set(j["ws"]["tiles"]) == {"d", "c"}
    assert "tiles" not in j["lower_bound"]
    # best and the gap take OS-lean too (bounds/output_stationary_lean.py, tests/test_os_lean.py)
    assert r.best.E == min(r.os.E, r.ws.E, r.os_lean.E) and r.best is getattr(r, r.best_name)
    assert r.gap == min(r.os.Q, r.ws.Q, r.os_lean.Q) / r.lower_bound.Q >= 1
    assert r.lower_bound.E == m.energy(r.lower_bound.Q, r.lower_bound.Q + 3 * L.F, L.F)
    assert "name" not in evaluate(Layer.conv(4, 4, 8, 3), Machine(M=4096)).to_json()


def test_evaluate_marks_a_dataflow_that_does_not_fit_and_raises_below_the_lower_bound_minimum():
    r = evaluate(Layer.conv(64, 64, 56, 3, pad=1), Machine(M=20))  # WS needs 178 words, OS and OS-lean fit
    assert r.ws is None and set(r.infeasible) == {"ws"} and "178" in r.infeasible["ws"]
    assert r.best_name == "os_lean" and r.gap == r.os_lean.Q / r.lower_bound.Q and r.os_lean.Q < r.os.Q
    with pytest.raises(InfeasibleError, match="M"):
        evaluate(Layer.conv(64, 64, 56, 3, pad=1), Machine(M=2))


def test_evaluate_network_totals_are_sums():
    layers = [Layer.conv(16, 32, 20, 3, pad=1, name="a"), Layer.conv(32, 32, 20, 1, name="b"), Layer.fc(512, 10, name="fc")]
    net = evaluate_network(layers, Machine(M=4096))
    assert [r.layer.name for r in net.layers] == ["a", "b", "fc"]
    for key in ("lower_bound", "os", "ws"):
        t = net.total(key)
        assert t["Q"] == sum(getattr(r, key).Q for r in net.layers)
        assert math.isclose(t["E"], sum(getattr(r, key).E for r in net.layers))
    assert net.total("best")["E"] <= min(net.total("os")["E"], net.total("ws")["E"]) + 1e-6
    assert net.total("lower_bound")["Q"] <= net.total("best")["Q"]
    assert set(net.to_json()) == {"layers", "totals", "totals_definition"}


@pytest.mark.parametrize("exact", [True, False])
def test_evaluate_table_matches_the_scalar_api(exact):
    layers = [Layer.conv(16, 32, 20, 3, pad=1), Layer.conv(32, 32, 15, 3, stride=2, groups=4),
              Layer.conv(24, 24, 14, 3, pad=1, groups=24), Layer.fc(1024, 100, b=4), Layer.conv(3, 16, 64, 7, stride=2, pad=3, b=2)]
    Ms = [1024, 4096, 65536]
    df = pd.DataFrame([{**{f: getattr(L, f) for f in FIELDS}, "M": M, "tag": i} for i, L in enumerate(layers) for M in Ms])
    out = evaluate_table(df, eD=100, eB=3, eM=2, bits=8, exact=exact)
    assert out.equals(evaluate_table(df, eD=100, eB=3, eM=2, bits=8)) == exact  # small tables default to exact
    assert list(out.columns) == list(df.columns) + list(TABLE_COLUMNS)
    assert (out["tag"] == df["tag"]).all()
    for (_, row), L in zip(out.iterrows(), [L for L in layers for _ in Ms]):
        m = Machine(M=int(row["M"]), eD=100, eB=3, eM=2, bits=8)
        assert (row["F"], row["X"], row["W"], row["Y"], row["X_used"]) == (L.F, L.X, L.W, L.Y, L.X_used)
        lb = lower_bound(L, m)
        assert (row["lb_Q"], row["lb_A"]) == (lb.Q, lb.A) and math.isclose(row["lb_E"], lb.E)
        for key, fn in (("os", os_best), ("ws", ws_best), ("osl", osl_best)):
            try:
                c = fn(L, m, exhaustive=exact)
            except InfeasibleError:
                assert np.isinf(row[f"{key}_Q"]) and np.isinf(row[f"{key}_E"])
                continue
            assert (row[f"{key}_Q"], row[f"{key}_A"]) == (c.Q, c.A) and math.isclose(row[f"{key}_E"], c.E)
        use = ("os", "ws", "osl")[int(np.argmin([row["os_E"], row["ws_E"], row["osl_E"]]))]  # first on ties
        assert (row["min_Q"], row["min_E"]) == (row[f"{use}_Q"], row[f"{use}_E"])
        assert row["lb_E"] <= row["min_E"]


def test_evaluate_table_defaults_missing_optional_columns():
    df = pd.DataFrame({"c": [64, 128], "d": [10, 20], "M": [4096, 4096]})  # FC layers
    out = evaluate_table(df)
    assert out["lb_Q"].tolist() == [64 + 640 + 10, 128 + 2560 + 20]
    with pytest.raises(KeyError, match="M"):
        evaluate_table(df.drop(columns="M"))


def test_notebook_exports():
    for name in ("evaluate", "lower_bound", "os_best", "ws_best", "Layer", "Machine", "get_network",
                 "evaluate_table", "evaluate_network", "lb_expressions", "network_names"):
        assert hasattr(ec, name) and name in ec.__all__
    layers = ec.get_network("alexnet")
    assert len(layers) > 5 and all(isinstance(L, ec.Layer) for L in layers)
    r = ec.evaluate(layers[0], ec.Machine(M=65536))
    assert r.lower_bound.Q <= r.best.Q
