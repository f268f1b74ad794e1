"""`bounds --arch`: the hierarchy floor in pJ next to the two-level bounds (issue 9's CLI)."""

from __future__ import annotations

import json

import pytest

from bounds.hierarchy import hierarchy_lower_bound
from complexity.layer import Layer
from test_cli_bounds import run as _run
from validation.architectures import get_architecture

LAYER = ["--c", "16", "--d", "32", "--hw", "14", "--k", "3", "--pad", "1", "--M", "4096"]


@pytest.mark.parametrize("platform", ["eyeriss_like", "tpu_like"])
def test_json_hierarchy_key_equals_the_api_and_keeps_the_two_level_keys(capsys, platform):
    code, out, err = _run(capsys, "bounds", *LAYER, "--arch", platform, "--json")
    assert code == 0, err
    j = json.loads(out)
    assert {"layer", "F", "sizes", "lower_bound", "os", "ws"} <= set(j)
    h = j["hierarchy"]
    L = Layer.conv(c=16, d=32, hw=14, k=3, pad=1)
    lb = hierarchy_lower_bound(L, get_architecture(platform))
    assert h["arch"] == platform and h["E_unit"] == "pJ"
    assert h["lower_bound"]["E_pJ"] == pytest.approx(lb.E_pJ, rel=1e-12)
    assert sum(t["E_pJ"] for t in h["lower_bound"]["levels"]) == pytest.approx(lb.E_pJ, rel=1e-9)
    assert all({"name", "words", "E_pJ"} <= set(t) for t in h["lower_bound"]["levels"])
    ub = h["upper_bound"]
    assert ub is not None and ub["tiles"] and ub["E_pJ"] >= lb.E_pJ
    assert h["gap"] == pytest.approx(ub["E_pJ"] / lb.E_pJ) and h["gap"] >= 1.0


def test_text_output_names_the_architecture_and_the_unit(capsys):
    code, out, _ = _run(capsys, "bounds", *LAYER, "--arch", "eyeriss_like")
    assert code == 0
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("lower bound") and "pJ" in ln)
    assert "hierarchy on eyeriss_like (pJ" in out and "best schedule" in out
    lb = hierarchy_lower_bound(Layer.conv(c=16, d=32, hw=14, k=3, pad=1), get_architecture("eyeriss_like"))
    assert float(line.split()[2]) == pytest.approx(lb.E_pJ, rel=1e-5)


def test_network_totals_are_the_sum_of_the_layers(capsys):
    code, out, _ = _run(capsys, "bounds", "--network", "squeezenet1_1", "--M", "65536", "--arch", "simba_like",
                        "--json", "--json-totals")
    assert code == 0
    j = json.loads(out)
    lows = [it["hierarchy"]["lower_bound"]["E_pJ"] for it in j["layers"]]
    assert j["totals"]["hierarchy"]["lower_bound"]["E_pJ"] == pytest.approx(sum(lows))
    assert j["totals"]["hierarchy"]["E_unit"] == "pJ"


def test_unknown_architecture_exits_2_with_one_line(capsys):
    code, out, err = _run(capsys, "bounds", *LAYER, "--arch", "no_such_arch")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and "no_such_arch" in err
