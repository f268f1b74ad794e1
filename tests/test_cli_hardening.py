"""Hardening of the command line (issue 10): required and conflicting flags, size spellings,
the unit of E, infeasible dataflows, --version and the citation files, lazy imports, and a
small fuzz of the CLI (the big one is benchmarks/fuzz_cli.py)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from bounds.api import evaluate, evaluate_network
from bounds.lower_bound import lower_bound
from complexity import Layer, Machine
from complexity.zoo import get_network
from energy_complexity.cli import main
from energy_complexity.layer_args import parse_size

ROOT = Path(__file__).resolve().parents[1]
LAYER = ["--c", "64", "--d", "64", "--hw", "56", "--k", "3", "--pad", "1"]


def run(capsys, *argv):
    """(exit status, stdout, stderr) of the CLI in process; argparse's SystemExit counts as a status."""
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def refused(capsys, *argv) -> str:
    """The one stderr line of a refused command (exit 2, nothing on stdout)."""
    code, out, err = run(capsys, *argv)
    assert code == 2, (code, out, err)
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and "np." not in err
    return lines[0]


# ----- 1. layer flags ---------------------------------------------------------------------

@pytest.mark.parametrize("cmd,extra", [("bounds", ["--M", "65536"]), ("estimate", [])])
def test_single_layer_needs_input_size_and_kernel(capsys, cmd, extra):
    line = refused(capsys, cmd, "--c", "64", "--d", "64", "--k", "3", *extra)
    assert "--hw (or --h and --w) is required" in line and "--h and --w not given" in line
    line = refused(capsys, cmd, "--c", "64", "--d", "64", "--h", "56", "--k", "3", *extra)
    assert "--w not given" in line
    line = refused(capsys, cmd, "--c", "64", "--d", "64", "--hw", "56", *extra)
    assert "--k (or --kh and --kw) is required" in line and "kernel size" in line


def test_help_states_what_a_single_layer_needs(capsys):
    code, out, _ = run(capsys, "bounds", "--help")
    assert code == 0
    text = " ".join(out.split())
    assert "A single layer needs --c, --d, the input size (--hw, or --h and --w) and the kernel" in text
    assert "padding to 0" in text and "64K = 65536" in text


@pytest.mark.parametrize("argv,named", [
    (["bounds", "--network", "resnet50", "--c", "64", "--M", "65536"], "--c cannot be combined with --network"),
    (["estimate", "--network", "alexnet", "--hw", "7"], "--hw cannot be combined with --network"),
    (["bounds", *LAYER, "--h", "28", "--M", "65536"], "give either --hw or --h/--w, not both"),
    (["bounds", *LAYER, "--kw", "1", "--M", "65536"], "give either --k or --kh/--kw, not both"),
    (["bounds", "--network", "alexnet", "--M", "65536", "--json-totals"], "--json-totals needs --json"),
    (["bounds", *LAYER, "--M", "65536", "--json", "--json-totals"], "--json-totals applies to many layers"),
])
def test_conflicting_flags_are_refused_with_one_line(capsys, argv, named):
    assert named in refused(capsys, *argv)


@pytest.mark.parametrize("text,value", [
    ("65536", 65536), ("64K", 65536), ("64Ki", 65536), ("64k", 65536), ("1M", 1048576), ("1Mi", 1048576),
    ("1G", 2**30), ("1e6", 10**6), ("1E6", 10**6), ("65536.0", 65536), ("1.5K", 1536), ("0", 0), ("1_000", 1000),
])
def test_size_spellings(text, value):
    assert parse_size(text) == value and type(parse_size(text)) is int


def test_suffixed_M_gives_the_same_bounds_as_the_plain_number(capsys):
    outs = {}
    for spelling in ("65536", "64K", "64Ki", "65536.0", "6.5536e4"):
        code, out, _ = run(capsys, "bounds", *LAYER, "--M", spelling, "--json")
        assert code == 0
        outs[spelling] = json.loads(out)
    assert all(o == outs["65536"] for o in outs.values())
    assert outs["64K"]["machine"]["M"] == 65536
    ref = evaluate(Layer.conv(64, 64, 56, 3, pad=1), Machine(M=65536))
    assert outs["64K"]["lower_bound"]["Q"] == ref.lower_bound.Q and outs["64K"]["os"]["Q"] == ref.os.Q
    code, out, _ = run(capsys, "bounds", "--c", "1K", "--d", "64", "--hw", "7", "--k", "1", "--M", "1M", "--json")
    d = json.loads(out)
    assert code == 0 and d["layer"]["c"] == 1024 and d["machine"]["M"] == 1048576


@pytest.mark.parametrize("flag,value,says", [
    ("--M", "nan", "got nan"), ("--M", "inf", "got inf"), ("--M", "-1", "non-negative"),
    ("--M", "1.5", "whole number"), ("--M", "65536.5", "whole number"), ("--M", "abc", "'abc'"),
    ("--M", "1e19", "at most 10^18"), ("--M", "1e1000000000", "at most 10^18"), ("--c", "-3", "non-negative"),
    ("--hw", "0.3K", "whole number"), ("--k", "NaN", "got NaN"), ("--eD", "nan", "finite"),
    ("--eB", "-1", "non-negative"), ("--eM", "1e300", "at most 1e100"), ("--bits", "8.5", "whole number"),
])
def test_bad_numbers_name_the_flag_in_one_line(capsys, flag, value, says):
    argv = {"--M": "65536", "--c": "64", "--hw": "56", "--k": "3"}
    argv[flag] = value
    line = refused(capsys, "bounds", "--d", "64", *[x for kv in argv.items() for x in kv])
    assert f"argument {flag}: " in line and says in line


def test_layer_values_checked_one_by_one_before_the_missing_flags(capsys):
    line = refused(capsys, "bounds", "--c", "4", "--d", "4", "--hw", "5", "--stride", "0", "--M", "1000")
    assert line.endswith("invalid layer: sh: must be a positive integer, got 0")


def test_too_large_layer_is_refused_not_overflowed(capsys):
    line = refused(capsys, "bounds", "--c", "1e12", "--d", "1e12", "--hw", "1e6", "--k", "3", "--M", "1e15")
    assert "F (MACs) = 9e+36 exceeds 2^60" in line
    # one below the limit still gives exact numbers: F = 2^60 exactly is accepted
    code, out, _ = run(capsys, "bounds", "--c", "1M", "--d", "1M", "--hw", "1K", "--k", "1", "--M", "1G", "--json")
    d = json.loads(out)
    assert code == 0 and d["F"] == 2**60 and d["lower_bound"]["F"] == 2**60
    # the estimator counts in floats: the same layer size is not refused there
    code, out, _ = run(capsys, "estimate", "--c", "1e12", "--d", "64", "--hw", "56", "--k", "3", "--pad", "1", "--json")
    d = json.loads(out)
    assert code == 0 and d["total"]["macs"] == 10**12 * 64 * 56 * 56 * 9


# ----- 2. unit of E -------------------------------------------------------------------------

def test_bounds_states_the_unit_of_E(capsys):
    code, out, _ = run(capsys, "bounds", *LAYER, "--M", "65536")
    assert code == 0 and "E in model units (eD, eB, eM" in out and "two-level model machine" in out
    code, out, _ = run(capsys, "bounds", *LAYER, "--M", "65536", "--json")
    d = json.loads(out)
    assert d["machine_kind"] == "two-level model" and d["E_unit"] == "model units"
    assert {"layer", "machine", "F", "sizes", "lower_bound", "os", "ws", "best", "gap_Q", "gap_E"} <= set(d)
    code, out, _ = run(capsys, "bounds", "--network", "alexnet", "--M", "65536", "--json")
    items = json.loads(out)
    assert len(items) == len(get_network("alexnet"))
    assert all(i["machine_kind"] == "two-level model" and i["E_unit"] == "model units" for i in items)


# ----- 3. M below the smallest tile -----------------------------------------------------------

def test_infeasible_dataflow_keeps_the_lower_bound(capsys):
    layer, machine = Layer.conv(64, 64, 56, 3), Machine(M=30)
    lb = lower_bound(layer, machine)
    code, out, _ = run(capsys, "bounds", "--c", "64", "--d", "64", "--hw", "56", "--k", "3", "--M", "30")
    assert code == 0
    rows = {ln.split()[0]: ln for ln in out.splitlines() if ln[:2] in ("LB", "OS", "WS")}
    assert f"{lb.Q:,}" in rows["LB"]
    assert "infeasible: M = 30 words is below 178, the footprint of the smallest WS tile" in rows["WS"]
    assert "best    OSL; gap min(OS,OSL)/LB" in out  # OS-lean fits the larger tiles (docs/dataflow_os_lean.md)
    code, out, _ = run(capsys, "bounds", "--c", "64", "--d", "64", "--hw", "56", "--k", "3", "--M", "30", "--json")
    d = json.loads(out)
    assert d["ws"] is None and d["os"]["Q"] >= d["lower_bound"]["Q"] == lb.Q
    assert d["infeasible"] == {"ws": "M = 30 words is below 178, the footprint of the smallest WS tile"}


def test_no_dataflow_fits(capsys):
    # M = 3 holds one MAC (the lower bound exists) but no OS or WS tile of a 3x3 layer
    code, out, _ = run(capsys, "bounds", "--c", "8", "--d", "8", "--hw", "8", "--k", "3", "--M", "3")
    assert code == 0 and "best    none: no OS or WS tile fits in M" in out
    code, out, _ = run(capsys, "bounds", "--c", "8", "--d", "8", "--hw", "8", "--k", "3", "--M", "3", "--json")
    d = json.loads(out)
    assert d["os"] is None and d["ws"] is None and set(d["infeasible"]) == {"os", "ws", "os_lean"}
    assert d["best"] is None and d["gap_Q"] is None
    assert d["lower_bound"]["Q"] == lower_bound(Layer.conv(8, 8, 8, 3), Machine(M=3)).Q


def test_network_totals_say_how_many_layers_had_no_tile(capsys):
    M = 200
    net = evaluate_network(get_network("alexnet"), Machine(M=M))
    n_os = sum(r.os is None for r in net.layers)
    n_ws = sum(r.ws is None for r in net.layers)
    assert n_os + n_ws > 0  # the case under test
    code, out, _ = run(capsys, "bounds", "--network", "alexnet", "--M", str(M))
    assert code == 0
    assert (f"# infeasible: no OS tile fits in M on {n_os} of {len(net.layers)} layers, no WS tile on {n_ws}"
            in out)
    code, out, _ = run(capsys, "bounds", "--network", "alexnet", "--M", str(M), "--json", "--json-totals")
    d = json.loads(out)
    assert d["infeasible_layers"]["os"] == n_os and d["infeasible_layers"]["ws"] == n_ws
    assert d["totals"]["lower_bound"]["Q"] == sum(r.lower_bound.Q for r in net.layers)
    for df, n in (("os", n_os), ("ws", n_ws)):
        assert (d["totals"][df] is None) == (n > 0)


# ----- 4. version, license, citation ---------------------------------------------------------------

def test_version_from_the_package_metadata(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.strip() == f"energy-complexity {version('energy-complexity')}"


def test_license_and_citation_files():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'license = { text = "MIT" }' in pyproject
    lic = (ROOT / "LICENSE").read_text()
    assert lic.startswith("MIT License") and "WITHOUT WARRANTY OF ANY KIND" in lic
    yaml = pytest.importorskip("yaml")
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    assert cff["cff-version"] == "1.2.0" and cff["license"] == "MIT"
    assert cff["version"] == version("energy-complexity")
    pref = cff["preferred-citation"]
    assert pref["doi"] == "10.1162/neco_a_01676" and (pref["volume"], pref["issue"]) == (36, 8)
    assert [a["family-names"] for a in pref["authors"]] == ["Šíma", "Vidnerová", "Mrázek"]
    yang = cff["references"][0]
    assert yang["doi"] == "10.1109/ACSSC.2017.8335698" and yang["year"] == 2017
    assert [a["family-names"] for a in yang["authors"]] == ["Yang", "Chen", "Emer", "Sze"]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "## How to cite" in readme and "10.1162/neco_a_01676" in readme and "ACSSC.2017.8335698" in readme


# ----- 5. lazy imports (which modules, not how fast: benchmarks/bench_cli.py times them) -------------

_PROBE = """
import sys
from energy_complexity.cli import main
for argv in {argvs!r}:
    try:
        main(argv)
    except SystemExit:
        pass
    print(sorted(m for m in ("sympy", "pandas", "scipy", "matplotlib") if m in sys.modules), file=sys.stderr)
"""


def test_help_and_one_layer_import_neither_sympy_nor_pandas():
    """One process runs the commands in turn and lists the heavy modules loaded after each."""
    argvs = [["--help"], ["bounds", "--help"], ["bounds", *LAYER, "--M", "64K"], ["derive", "--k", "3"]]
    p = subprocess.run([sys.executable, "-c", _PROBE.format(argvs=argvs)], capture_output=True, text=True,
                       cwd=ROOT, check=True)
    loaded = [eval(ln) for ln in p.stderr.strip().splitlines()[-4:]]  # list literals printed above
    assert loaded[:3] == [[], [], []]
    assert "sympy" in loaded[3]  # the symbolic command still gets it


def test_api_names_still_resolve_lazily():
    import energy_complexity as ec
    for name in ec.__all__:
        assert getattr(ec, name) is not None, name
    from bounds.output_stationary import TILE_SYMBOLS
    from bounds.weight_stationary import C_SYM, D_SYM
    assert [str(s) for s in TILE_SYMBOLS.values()] == ["B_t", "D", "T_h", "T_w", "C"]
    assert (str(D_SYM), str(C_SYM)) == ("D", "C")


# ----- 6. small fuzz ---------------------------------------------------------------------------------

def _fuzz_module():
    spec = importlib.util.spec_from_file_location("fuzz_cli", ROOT / "benchmarks" / "fuzz_cli.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["fuzz_cli"] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_small_fuzz_of_the_cli():
    """A few hundred random and extreme specs: each exits 0 with valid JSON or 2 with one line."""
    fz = _fuzz_module()
    cli_stats, _ = fz.run_fuzz(n_cli=150, n_api=1, seed=12345, limit=10.0)
    assert cli_stats.calls >= 150
    assert cli_stats.ok > 20 and cli_stats.refused > 20  # both outcomes exercised
    assert cli_stats.failures == []


# ----- numpy reprs and error classes of the API (sources outside the CLI; see the issue) --------------

def test_api_messages_have_no_numpy_repr():
    import numpy as np

    from complexity import LayerError, MachineError
    msgs = []
    for make in (lambda: Layer(c=np.float64("nan"), d=4), lambda: Layer(c=4, d=4, h=np.float64(2.5)),
                 lambda: Machine(M=np.float64(2.5)), lambda: Machine(M=10, eD=np.float64("nan"))):
        with pytest.raises((LayerError, MachineError)) as info:
            make()
        msgs.append(str(info.value))
    assert not any("np." in m for m in msgs), msgs


@pytest.mark.parametrize("M", [float("nan"), None, "x"])
def test_api_bad_M_raises_machine_error(M):
    from complexity import MachineError
    with pytest.raises(MachineError, match="M"):
        Machine(M=M)
