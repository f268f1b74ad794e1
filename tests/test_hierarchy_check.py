"""The energy floor in pJ against every estimator row (validation/hierarchy_check.py, `validate`).

Soundness row by row: on the bundled ZigZag data every row is at or above the floor of
its platform's architecture, or below it only where ZigZag moves an operand from DRAM
fewer times than the layer uses it and the correction lifts it; Timeloop's two
statistics files are above the floor of the architecture imported from them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bounds.hierarchy import hierarchy_lower_bound
from test_cli_bounds import run as _run
from test_timeloop import CONV3, CONV3_TL
from validation.architectures import get_architecture
from validation.hierarchy_check import hierarchy_rows, hierarchy_table, row_architectures, trip_pJ
from validation.pipeline import run_validation
from validation.platforms import get_platform
from validation.reference_data import bundled_reference_path, read_reference_csv
from validation.soundness import _compulsory
from validation.timeloop import read_timeloop_stats

TIMELOOP = Path(__file__).parent / "data" / "timeloop"


@pytest.fixture(scope="module")
def reference():
    return read_reference_csv(bundled_reference_path())


@pytest.fixture(scope="module")
def rows(reference):
    return hierarchy_rows(reference)


def test_every_bundled_row_is_above_the_floor_or_explained(rows, reference):
    assert len(rows) == len(reference)          # every bundled platform has its architecture
    t = hierarchy_table(rows).set_index("platform")
    assert set(t.index) == set(reference["platform"])
    assert (t["n_below"] == t["n_below_explained"]).all(), t
    for p in ("eyeriss_like", "simba_like", "tpu_like"):   # no undercount there: nothing below
        assert t.loc[p, "n_below"] == 0 and t.loc[p, "min_gap"] >= 1
    below = rows[rows["gap"] < 1]
    assert (below["undercount"] != "").all() and (below["gap_corrected"] >= 1).all()
    assert (rows["hier_LB"] > 0).all()
    assert np.allclose(rows["gap"], rows["energy_pJ"] / rows["hier_LB"])


def test_floor_of_each_row_is_the_api_on_the_resized_architecture(rows, reference):
    from complexity.layer import Layer
    fields = ("b", "c", "d", "h", "w", "kh", "kw", "sh", "sw", "ph", "pw", "groups")
    sample = pd.concat([g.sample(4, random_state=0) for _, g in reference.groupby("platform")])
    for i, r in sample.iterrows():
        arch = get_architecture(r["platform"], int(r["M"]))
        L = Layer(**{f: int(r[f]) for f in fields})
        assert rows.loc[i, "hier_LB"] == pytest.approx(hierarchy_lower_bound(L, arch).E_pJ, rel=1e-9)


def test_row_architectures_resize_the_buffer_and_honour_the_mapping():
    df = pd.DataFrame({"platform": ["eyeriss_like", "eyeriss_like", "other"], "M": [2048, 8192, 100]})
    a = row_architectures(df)
    buf = get_platform("eyeriss_like").buffer_memory
    assert [x.level(buf).capacity for x in a[:2]] == [2048, 8192] and a[2] is None
    b = row_architectures(df, {"other": "tpu_like"})
    assert b[2].name == "tpu_like" and b[2].level(get_platform("tpu_like").buffer_memory).capacity == \
        get_architecture("tpu_like").level(get_platform("tpu_like").buffer_memory).capacity


def test_undercount_correction_adds_the_missing_words_at_their_cost(reference):
    r = reference[reference["platform"] == "edge_tpu_like"].iloc[[0]].copy()
    comp = _compulsory(r)
    arch = get_architecture("edge_tpu_like", int(r["M"].iloc[0]))
    missing = 100
    r["dram_words_X"] = comp["X_used"] - missing
    for c in [c for c in r.columns if c.startswith("mem_") and c.endswith("/X_pJ")]:
        r[c] = 0.0                                   # no own cost: the trip's price applies
    out = hierarchy_rows(r)
    assert out["undercount"].iloc[0] == "X"
    trip = arch.dram.read_pJ["X"] + sum(lv.write_pJ["X"] for lv in arch.chain("X")[:-1])
    assert trip_pJ(arch, "X") == pytest.approx(trip)
    assert out["corrected_pJ"].iloc[0] == pytest.approx(r["energy_pJ"].iloc[0] + missing * trip)
    own = 1000.0 * (comp["X_used"][0] - missing)           # an estimator charging 1000 pJ per word
    r["mem_dram/X_pJ"] = own
    out = hierarchy_rows(r)
    assert out["corrected_pJ"].iloc[0] == pytest.approx(r["energy_pJ"].iloc[0] + missing * 1000.0)


@pytest.mark.parametrize("name", ["eyeriss_like", "simba_like"])
def test_timeloop_energy_is_above_the_floor_of_its_own_architecture(name):
    path = TIMELOOP / f"{name}-alexnet_conv3.stats.txt"
    stats = read_timeloop_stats(path)
    arch = get_architecture(str(path))
    for layer in (CONV3, CONV3_TL):       # the layer, and the padded problem Timeloop simulates
        floor = hierarchy_lower_bound(layer, arch).E_pJ
        assert floor <= stats.energy_sum_pJ
        assert floor >= 0.3 * stats.energy_sum_pJ      # and not vacuous


def test_validation_records_and_report_carry_the_floor(reference, tmp_path):
    res = run_validation(reference, "eyeriss_like")
    rec = next(r for r in res.records() if r["bound"] == "hier_LB")
    t = hierarchy_table(hierarchy_rows(reference[reference["platform"] == "eyeriss_like"]))
    assert rec["unit"] == "pJ" and rec["arch"] == "eyeriss_like" and rec["n"] == t["rows"].iloc[0]
    assert rec["n_below"] == 0 and rec["n_below_explained"] == 0
    assert rec["gap_median"] == pytest.approx(t["gap_median"].iloc[0])
    assert rec["gap_max"] == pytest.approx(t["gap_max"].iloc[0])
    assert 0.9 < rec["slope"] < 1.2 and rec["r2"] > 0.95
    assert "Energy floor on each platform's architecture (pJ)" in res.text()
    paths = res.write_report(tmp_path, figures=[])
    assert (tmp_path / "hierarchy.csv") in paths
    assert pd.read_csv(tmp_path / "hierarchy.csv")["n_below"].tolist() == [0]


def test_cli_arch_flag_names_the_architecture(capsys, tmp_path):
    code, out, err = _run(capsys, "validate", "--platform", "tpu_like", "--arch", "tpu_like=eyeriss_like", "--json")
    assert code == 0, err
    rec = next(r for r in json.loads(out) if r["bound"] == "hier_LB")
    assert rec["arch"] == "eyeriss_like" and rec["unit"] == "pJ"
    for bad, msg in (("tpu_like", "PLATFORM=ARCH"), ("tpu_like=nope.yaml", "nope.yaml")):
        code, out, err = _run(capsys, "validate", "--platform", "tpu_like", "--arch", bad)
        assert code == 2 and msg in err and "Traceback" not in err


def test_upper_bound_rows_are_schedules_above_the_floor(reference):
    from bounds.nested import best_nested
    from complexity.layer import Layer
    sub = pd.concat([g.sample(8, random_state=2) for _, g in reference.groupby("platform")])
    res = run_validation(sub, upper=True)
    t = res.hierarchy.set_index("platform")
    h = hierarchy_rows(sub, upper=True)
    assert (h["hier_UB"] >= h["hier_LB"]).all()         # a schedule never beats the floor
    r = sub.iloc[0]
    L = Layer(**{f: int(r[f]) for f in ("b", "c", "d", "h", "w", "kh", "kw", "sh", "sw", "ph", "pw", "groups")})
    assert h["hier_UB"].iloc[0] == pytest.approx(best_nested(L, get_architecture(r["platform"], int(r["M"]))).E_pJ)
    for p in t.index:
        rec = next(x for x in res.records() if x["platform"] == p and x["bound"] == "hier_UB")
        g = h[h["platform"] == p]
        assert rec["n"] == 8 and rec["unit"] == "pJ"
        assert rec["ub_over_lb_median"] == pytest.approx((g["hier_UB"] / g["hier_LB"]).median())
        assert rec["n_ref_below_ub"] == int((g["energy_pJ"] < g["hier_UB"]).sum())
