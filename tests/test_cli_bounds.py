"""`energy-complexity bounds` and `derive`: output contract, shortcuts, networks, error exits."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bounds.api import evaluate
from bounds.lower_bound import lower_bound
from complexity.layer import Layer
from complexity.machine import Machine
from complexity.zoo import get_network
from energy_complexity.cli import main

FIELDS = ("b", "c", "d", "h", "w", "kh", "kw", "sh", "sw", "ph", "pw", "groups")


def run(capsys, *argv):
    """Exit status and output of the CLI; argparse's usage errors end in SystemExit(2)."""
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_bounds_json_contract(capsys):
    code, out, err = run(capsys, "bounds", "--b", "2", "--c", "32", "--d", "64", "--h", "30", "--w", "20", "--kh", "3",
                         "--kw", "5", "--stride", "2", "--pad", "1", "--groups", "4", "--M", "8192", "--json")
    assert code == 0 and err == ""
    j = json.loads(out)
    assert {"layer", "F", "sizes", "lower_bound", "os", "ws"} <= set(j)
    L = Layer(b=2, c=32, d=64, h=30, w=20, kh=3, kw=5, sh=2, sw=2, ph=1, pw=1, groups=4)
    assert j["layer"] == {f: getattr(L, f) for f in FIELDS}
    assert set(j["sizes"]) >= {"X", "W", "Y"} and j["sizes"]["W"] == L.W and j["F"] == L.F
    r = evaluate(L, Machine(M=8192))
    for key in ("lower_bound", "os", "ws"):
        assert all(isinstance(j[key][x], (int, float)) for x in ("Q", "A", "E"))
        assert j[key]["Q"] == getattr(r, key).Q and j[key]["E"] == getattr(r, key).E
    assert j["os"]["tiles"] == r.os.tiles and j["ws"]["tiles"] == r.ws.tiles
    assert j["lower_bound"]["Q"] <= min(j["os"]["Q"], j["ws"]["Q"])


def test_square_shortcuts_equal_explicit_flags(capsys):
    _, a, _ = run(capsys, "bounds", "--c", "16", "--d", "16", "--hw", "14", "--k", "3", "--stride", "1", "--pad", "1",
                  "--M", "4096", "--json")
    _, b, _ = run(capsys, "bounds", "--c", "16", "--d", "16", "--h", "14", "--w", "14", "--kh", "3", "--kw", "3",
                  "--sh", "1", "--sw", "1", "--ph", "1", "--pw", "1", "--M", "4096", "--json")
    assert json.loads(a) == json.loads(b)


def test_bounds_text_table_and_bitwidth(capsys):
    code, out, _ = run(capsys, "bounds", "--c", "64", "--d", "64", "--hw", "56", "--k", "3", "--pad", "1",
                       "--M", "16384", "--bits", "8")
    assert code == 0
    lines = {ln.split()[0]: ln for ln in out.splitlines() if ln.strip()}
    L = Layer.conv(64, 64, 56, 3, pad=1)
    lb = lower_bound(L, Machine(M=16384, bits=8))
    assert f"{lb.Q:,}" in lines["LB"] and f"{lb.A:,}" in lines["LB"]
    assert "d=" in lines["OS"] and "c=" in lines["WS"]
    assert "gap" in out and "at 8 bits" in out


def test_bounds_network_table_and_json_list(capsys):
    code, out, _ = run(capsys, "bounds", "--network", "alexnet", "--M", "65536")
    assert code == 0 and "TOTAL" in out
    code, out, _ = run(capsys, "bounds", "--network", "alexnet", "--M", "65536", "--json")
    items = json.loads(out)
    layers = get_network("alexnet")
    assert isinstance(items, list) and len(items) == len(layers)
    assert [it["name"] for it in items] == [L.name for L in layers]
    assert all({"layer", "F", "sizes", "lower_bound", "os", "ws"} <= set(it) for it in items)
    code, out, _ = run(capsys, "bounds", "--network", "alexnet", "--M", "65536", "--json", "--json-totals")
    j = json.loads(out)
    assert j["totals"]["lower_bound"]["Q"] == sum(it["lower_bound"]["Q"] for it in items)


@pytest.mark.parametrize("argv,param", [
    (["--c", "0", "--d", "4", "--M", "1000"], "c"),
    (["--c", "6", "--d", "4", "--groups", "4", "--M", "1000"], "c"),
    (["--c", "4", "--d", "4", "--hw", "5", "--k", "9", "--M", "1000"], "kh"),
    (["--c", "4", "--d", "4", "--hw", "5", "--k", "3", "--pad", "3", "--M", "1000"], "ph"),
    (["--c", "4", "--d", "4", "--hw", "5", "--stride", "0", "--M", "1000"], "sh"),
    (["--c", "64", "--d", "64", "--hw", "56", "--k", "3", "--M", "2.5"], "M"),
    (["--c", "64", "--d", "64", "--M", "0"], "M"),
    (["--c", "64", "--d", "64", "--M", "100", "--bits", "0"], "bits"),
    (["--network", "nosuchnet", "--M", "1000"], "network"),
    (["--d", "4", "--M", "1000"], "--c"),
])
def test_bad_input_exits_2_with_one_line_naming_the_parameter(capsys, argv, param):
    code, out, err = run(capsys, "bounds", *argv)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and param in err and "Traceback" not in err


def test_console_script_error_exit():
    p = subprocess.run([sys.executable, "-m", "energy_complexity.cli", "bounds", "--c", "4", "--d", "4",
                        "--hw", "5", "--k", "9", "--M", "100"], capture_output=True, text=True)
    assert p.returncode == 2 and "kh" in p.stderr and "Traceback" not in p.stderr


def test_derive_symbolic_and_latex(capsys):
    code, out, _ = run(capsys, "derive", "--k", "3", "--stride", "1")
    assert code == 0
    for part in ("Lower bound", "Q_comp", "Output-stationary", "Weight-stationary", "footprint", "continuous optimum"):
        assert part in out
    assert "k_h" not in out.split("== Lower bound")[1]  # kh = kw = 3 substituted everywhere
    code, out, _ = run(capsys, "derive", "--latex")
    assert code == 0 and "\\lceil" in out and "\\sqrt" in out


def test_derive_with_every_value_prints_the_numbers(capsys):
    L, M = Layer.conv(64, 64, 56, 3, pad=1), 16384
    code, out, _ = run(capsys, "derive", "--b", "1", "--c", "64", "--d", "64", "--hw", "56", "--k", "3", "--stride", "1",
                       "--pad", "1", "--groups", "1", "--M", str(M))
    assert code == 0
    lines = out.split("== Lower bound")[1].splitlines()
    lb = lower_bound(L, Machine(M=M))
    assert lb.parts["Q_cap"] > lb.parts["Q_comp"]  # the capacity term is evaluated too
    assert f"Q_LB = {lb.Q}" in lines and f"A_LB = {lb.A}" in lines
    assert any(ln.startswith(f"Q_cap = {lb.parts['Q_cap']}") for ln in lines)
    code, out, _ = run(capsys, "derive", "--b", "1", "--c", "64", "--d", "64", "--hw", "56", "--k", "3", "--stride", "1",
                       "--pad", "1", "--groups", "1", "--M", str(M), "--full")
    numbers = out.split("== Lower bound, numbers ==")[1].splitlines()
    assert code == 0 and f"Q = {lb.Q}" in numbers and f"A = {lb.A}" in numbers


def test_derive_rejects_bad_values(capsys):
    code, _, err = run(capsys, "derive", "--k", "3", "--pad", "3")
    assert code == 2 and "ph" in err


def test_bounds_onnx_model(tmp_path, capsys):
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 12, 12])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 12, 12])
    w = numpy_helper.from_array(np.zeros((8, 4, 3, 3), dtype=np.float32), name="w")
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="convA", kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    model = helper.make_model(helper.make_graph([node], "g", [x], [y], initializer=[w]),
                              opset_imports=[helper.make_opsetid("", 13)])
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    code, out, _ = run(capsys, "bounds", "--onnx", str(path), "--M", "2048", "--json")
    assert code == 0
    items = json.loads(out)
    L = Layer.conv(4, 8, 12, 3, pad=1)
    assert [it["name"] for it in items] == ["convA"]
    assert items[0]["lower_bound"]["Q"] == lower_bound(L, Machine(M=2048)).Q
    code, _, err = run(capsys, "bounds", "--onnx", str(tmp_path / "missing.onnx"), "--M", "2048")
    assert code == 2 and len(err.strip().splitlines()) == 1
