"""paper_figs: every figure draws from small data, writes PNG + PDF, and plots the API's numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from bounds.api import evaluate, evaluate_network, evaluate_table
from bounds.lower_bound import lower_bound
from bounds.output_stationary import os_best
from bounds.result import InfeasibleError
from bounds.weight_stationary import ws_best
from complexity.layer import Layer
from complexity.machine import Machine
from complexity.zoo import get_network, network_macs, network_names
from energy_complexity.cli import main
from paper_figs import gap_map, traffic_vs_buffer
from paper_figs.registry import FIGURES, USES, FigureInputs, canonical, figure_names, make_figure
from validation.reference_data import LAYER_COLUMNS, read_reference_csv, write_reference_csv
from validation.pipeline import run_validation
from validation.regression import fit_loglog

PJ_PER_MAC = 0.25
SWEEP_M = (1024, 2048, 4096, 8192, 16384, 65536)


def _row(platform, layer, M, rng, network="", layer_name=""):
    """A synthetic reference row: MAC energy PJ_PER_MAC per MAC plus noisy data-movement energy."""
    move = 30.0 * (layer.X + layer.W + layer.Y) * (1 + 4096 / M) ** 0.5 * rng.uniform(0.8, 1.25)
    r = {k: getattr(layer, k) for k in LAYER_COLUMNS}
    r.update(platform=platform, M=M, energy_pJ=PJ_PER_MAC * layer.F + move, energy_mac_pJ=PJ_PER_MAC * layer.F,
             network=network, layer_name=layer_name, dram_words=int((layer.X + layer.W + layer.Y) * (1 + 4096 / M)))
    return r


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Two platforms x a small grid of layers, a Buffer sweep of two layers, and alexnet's layers."""
    rng = np.random.default_rng(5)
    grid = [Layer.conv(c=c, d=d, hw=n, k=k, stride=s, pad=k // 2)
            for c, d in ((8, 16), (32, 32), (64, 128)) for n in (8, 16) for k, s in ((1, 1), (3, 1), (3, 2))]
    rows = []
    for plat, M in (("alpha", 8192), ("beta", 32768)):
        rows += [_row(plat, l, M, rng) for l in grid]
    for l in grid[4], grid[-2]:
        rows += [_row("alpha", l, M, rng) for M in SWEEP_M if M != 8192]
    rows += [_row("alpha", l, 8192, rng, network="alexnet", layer_name=l.name) for l in get_network("alexnet")]
    path = write_reference_csv(pd.DataFrame(rows), tmp_path_factory.mktemp("ref") / "ref.csv")
    return path, read_reference_csv(path)


def _check_files(res, name):
    assert res.skipped is None
    png, pdf = res.paths
    assert png.name == f"{name}.png" and pdf.name == f"{name}.pdf"
    assert png.stat().st_size > 5000 and pdf.stat().st_size > 5000
    assert pdf.read_bytes()[:5] == b"%PDF-"
    with Image.open(png) as im:
        assert im.format == "PNG"
        assert im.info["dpi"] == pytest.approx((200, 200), abs=0.5)
        assert im.size[0] > 400 and im.size[1] > 300


def test_registry_lists_the_seven_figures():
    assert figure_names() == ["bound_vs_estimate", "traffic_vs_buffer", "gap_map", "residuals",
                              "network_layers", "energy_vs_macs", "mapping_gap"]
    assert canonical("energy_vs_buffer") == "traffic_vs_buffer"  # the former name still draws it
    assert set(USES) == set(figure_names())
    assert {n for n, s in FIGURES.items() if s.needs_reference} == {"bound_vs_estimate", "residuals",
                                                                      "mapping_gap"}


def test_reference_figures_skip_without_data(tmp_path):
    for name in ("bound_vs_estimate", "residuals", "mapping_gap"):
        res = make_figure(name, tmp_path, FigureInputs(source="nothing here"))
        assert res.paths == () and "needs reference energy data (nothing here)" in res.skipped
    assert list(tmp_path.iterdir()) == []


# bound_vs_estimate and residuals: tests/test_fig_fits.py


def test_traffic_vs_buffer_uses_the_sweep_and_api_curves(tmp_path, reference):
    _, ref = reference
    res = make_figure("traffic_vs_buffer", tmp_path, FigureInputs(reference=ref))
    _check_files(res, "traffic_vs_buffer")
    layers = res.data["layers"]
    assert len(layers) == 2 and {e["platform"] for e in layers} == {"alpha"}
    for e in layers:
        np.testing.assert_array_equal(np.sort(e["ref_M"]), SWEEP_M)
        rows = ref.loc[(ref["platform"] == "alpha") & (ref["c"] == e["layer"].c) & (ref["d"] == e["layer"].d)
                       & (ref["h"] == e["layer"].h) & (ref["kh"] == e["layer"].kh) & (ref["sh"] == e["layer"].sh)]
        rows = rows.sort_values("M")
        np.testing.assert_array_equal(e["ref_E"], rows["energy_pJ"].to_numpy())
        np.testing.assert_array_equal(e["ref_Q"], rows["dram_words"].to_numpy())
        for i in range(0, len(e["M"]), 7):  # every 7th Buffer size: the exact tile search of evaluate()
            m = Machine(M=int(e["M"][i]))
            lb = lower_bound(e["layer"], m)
            assert (e["lb_E"][i], e["lb_Q"][i]) == (pytest.approx(lb.E, rel=1e-12), lb.Q)
            for b, fn in (("os", os_best), ("ws", ws_best)):
                try:
                    c = fn(e["layer"], m)
                    assert (e[f"{b}_E"][i], e[f"{b}_Q"][i]) == (pytest.approx(c.E, rel=1e-12), c.Q)
                except InfeasibleError:
                    assert e[f"{b}_E"][i] == np.inf
        for b in ("os", "ws"):  # best tiles: more Buffer never costs more
            v = e[f"{b}_E"][np.isfinite(e[f"{b}_E"])]
            assert v.size > 10 and np.all(np.diff(v) <= 1e-9 * v[:-1])
        # reference points under the LB at their own M are flagged (other on-chip memories, docs/figures.md)
        lb_ref = np.array([lower_bound(e["layer"], Machine(M=int(m))).Q for m in e["ref_M"]])
        np.testing.assert_array_equal(e["lb_Q_at_ref"], lb_ref)
        np.testing.assert_array_equal(e["ref_below_lb"], e["ref_Q"] < lb_ref)
        assert "lb_onchip_Q" not in e  # no M_onchip column in this reference
        # the floor is the compulsory energy, reached by the LB at the largest M
        assert e["floor"] == e["lb_E"][-1]
        # the implemented LB tries S in {M, 2M, 3M}, so it is a sawtooth in M: it may rise by a few
        # tenths of a percent between steps (docs/theory.md 3.4), never more; the curve falls overall
        assert np.all(np.diff(e["lb_E"]) <= 5e-3 * e["lb_E"][:-1])
        assert e["lb_E"][0] > e["lb_E"][-1]
        assert e["M"].min() <= 16 and e["M"].max() >= 4 * (e["layer"].X + e["layer"].W + e["layer"].Y)


def test_traffic_vs_buffer_one_row_per_platform_and_lb_at_m_onchip(tmp_path, reference):
    _, ref = reference
    alpha = ref.loc[ref["platform"] == "alpha"]
    swept = alpha.groupby(list(LAYER_COLUMNS))["M"].transform("nunique") >= 4
    gamma = alpha.loc[swept].assign(platform="gamma", M_onchip=lambda r: r["M"] + 5000)
    two = pd.concat([ref, gamma], ignore_index=True)
    res = make_figure("traffic_vs_buffer", tmp_path, FigureInputs(reference=two))
    _check_files(res, "traffic_vs_buffer")
    assert res.data["platforms"] == ["alpha", "gamma"]
    layers = res.data["layers"]
    assert len(layers) == 4 and [e["platform"] for e in layers] == ["alpha", "gamma"] * 2
    assert layers[0]["layer"] == layers[1]["layer"] != layers[2]["layer"]  # same layers in every row
    assert layers[0]["layer"].F < layers[2]["layer"].F  # columns ordered by MACs
    for e in layers:
        if e["platform"] == "alpha":  # no M_onchip on alpha's rows
            assert np.isnan(e.get("lb_onchip_Q", np.array([np.nan]))).all()
            continue
        np.testing.assert_array_equal(e["M_onchip"], e["ref_M"] + 5000)
        want = [lower_bound(e["layer"], Machine(M=int(m) + 5000)).Q for m in e["ref_M"]]
        np.testing.assert_array_equal(e["lb_onchip_Q"], want)
        assert np.all(e["lb_onchip_Q"] <= e["lb_Q_at_ref"])  # more on-chip words never raise the bound


def test_traffic_vs_buffer_without_sweep_draws_fallback_layers(tmp_path, monkeypatch):
    small = (Layer.conv(c=8, d=8, hw=12, k=3, pad=1), Layer.fc(64, 32, b=4))
    monkeypatch.setattr(traffic_vs_buffer, "FALLBACK", small)
    res = make_figure("traffic_vs_buffer", tmp_path, FigureInputs())
    _check_files(res, "traffic_vs_buffer")
    assert [e["layer"] for e in res.data["layers"]] == list(small)
    for e in res.data["layers"]:  # large M: every bound reaches the compulsory traffic |X_used| + |W| + |Y|
        L = e["layer"]
        assert e["lb_Q"][-1] == e["os_Q"][-1] == e["ws_Q"][-1] == L.X_used + L.W + L.Y
    assert any("no Buffer sweep" in n for n in res.notes)


def test_gap_map_cells_equal_evaluate(tmp_path):
    res = make_figure("gap_map", tmp_path, FigureInputs(M=16384))
    _check_files(res, "gap_map")
    d = res.data
    assert d["a"]["ratio"].shape == (len(gap_map.CHANNELS), len(gap_map.SIZES))
    assert d["b"]["ratio"].shape == (len(gap_map.KERNELS), len(gap_map.STRIDES))
    for grid, key in ((d["layers_a"], "a"), (d["layers_b"], "b")):
        for i, j in ((0, 0), (len(grid) - 1, len(grid[0]) - 1), (2, 1)):
            r = evaluate(grid[i][j], Machine(M=16384))
            want = min(r.os.Q, r.ws.Q, r.os_lean.Q) / r.lower_bound.Q
            assert d[key]["ratio"][i, j] == pytest.approx(want, rel=1e-12)
    assert np.all(d["a"]["ratio"] >= 1 - 1e-12) and np.all(d["b"]["ratio"] >= 1 - 1e-12)


# network_layers (floor, schedule and estimate in pJ on one architecture): tests/test_fig_network.py


def test_energy_vs_macs_totals(tmp_path):
    res = make_figure("energy_vs_macs", tmp_path, FigureInputs(M=65536))
    _check_files(res, "energy_vs_macs")
    d = res.data
    assert d["networks"] == list(network_names())
    for i, n in enumerate(d["networks"]):
        assert d["F"][i] == network_macs(n)
        tot = evaluate_network(get_network(n), Machine(M=65536)).totals
        assert d["min_E"][i] == pytest.approx(tot["best"]["E"], rel=1e-12)
        assert d["lb_E"][i] == pytest.approx(tot["lower_bound"]["E"], rel=1e-12)
        assert d["lb_E"][i] <= d["min_E"][i]


def test_cli_writes_figures_and_reports_skips(tmp_path, reference, capsys):
    path, _ = reference
    assert main(["figures", "--only", "bound_vs_estimate", "--only", "gap_map", "--data", str(path),
                 "--out", str(tmp_path / "a")]) == 0
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "bound_vs_estimate.pdf", "bound_vs_estimate.png", "gap_map.pdf", "gap_map.png"]
    assert "2 of 2 figure(s) written" in capsys.readouterr().out
    assert main(["figures", "--only", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown figure 'nope'" in capsys.readouterr().err
    assert main(["figures", "--data", str(tmp_path / "missing.csv"), "--out", str(tmp_path)]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["figures", "--M", "0", "--out", str(tmp_path)]) == 2
    capsys.readouterr()
    # a figure asked for by name refuses an input it cannot use, in one line
    assert main(["figures", "--only", "bound_vs_estimate", "--M", "16K", "--data", str(path),
                 "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bound_vs_estimate cannot use --M" in err[0]
    assert not (tmp_path / "b").exists()
    assert main(["figures", "--list"]) == 0
    assert "[needs reference data]" in capsys.readouterr().out


def test_mapping_gap_plots_the_floor_check(tmp_path, reference):
    from validation.hierarchy_check import hierarchy_rows
    from validation.reference_data import bundled_reference_path, read_reference_csv
    full = read_reference_csv(bundled_reference_path())
    # every undercounted edge_tpu_like row (the ones below the floor) and a sample of the rest
    ref = pd.concat([full[full["dram_words_X"] < 0.9 * full["c"] * full["h"] * full["w"]].head(30),
                     full.sample(120, random_state=3)]).drop_duplicates()
    # the synthetic platforms of the fixture have no architecture: the figure says so
    res = make_figure("mapping_gap", tmp_path, FigureInputs(reference=reference[1], source="test"))
    assert res.paths == () and "architecture" in res.skipped
    res = make_figure("mapping_gap", tmp_path, FigureInputs(reference=ref, source="test"))
    assert res.skipped is None and res.paths[0].stat().st_size > 5000
    rows = hierarchy_rows(ref.reset_index(drop=True))
    for p, d in res.data["platforms"].items():
        g = rows[rows["platform"] == p]
        np.testing.assert_allclose(d["gap"], g["gap"].to_numpy())
        # a point below the floor is only ever an undercounted row, lifted by its correction
        below = d["gap"] < 1
        assert d["undercount"][below].all() and (d["gap_corrected"][below] >= 1).all()
        parts = res.data["parts"][p]
        assert sum(parts["ref"].values()) == pytest.approx(g["energy_pJ"].sum())
        assert parts["floor"] == pytest.approx(g["hier_LB"].sum())
