"""bound_vs_estimate and residuals plot the API's numbers: the floor E_LB(arch) in pJ, the two-level bounds in
model units, the fits of validation.regression, and never a filled point below the floor."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from bounds.api import evaluate, evaluate_table
from complexity.layer import Layer
from complexity.machine import Machine
from paper_figs.registry import FIGURES, FigureInputs, figure_names, make_figure
from paper_figs.style import PAGE_WIDTH, PNG_DPI
from validation.hierarchy_check import hierarchy_rows
from validation.pipeline import run_validation
from validation.reference_data import LAYER_COLUMNS, bundled_reference_path, read_reference_csv
from validation.regression import fit_loglog

SAMPLE = 150


@pytest.fixture(scope="module")
def synthetic():
    """Platforms alpha and beta (no architecture): a small grid of layers each, MAC energy plus noisy moves."""
    rng = np.random.default_rng(5)
    grid = [Layer.conv(c=c, d=d, hw=n, k=k, stride=s, pad=k // 2)
            for c, d in ((8, 16), (32, 32), (64, 128)) for n in (8, 16) for k, s in ((1, 1), (3, 1), (3, 2))]
    rows = []
    for plat, M in (("alpha", 8192), ("beta", 32768)):
        for layer in grid:
            move = 30.0 * (layer.X + layer.W + layer.Y) * (1 + 4096 / M) ** 0.5 * rng.uniform(0.8, 1.25)
            r = {k: getattr(layer, k) for k in LAYER_COLUMNS}
            r.update(platform=plat, M=M, energy_pJ=0.25 * layer.F + move, energy_mac_pJ=0.25 * layer.F)
            rows.append(r)
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def bundled():
    """A fixed sample of the bundled reference rows (all four platforms, each with its architecture)."""
    ref = read_reference_csv(bundled_reference_path())
    return ref.sample(SAMPLE, random_state=0).sort_index()


@pytest.fixture(scope="module")
def drawn(bundled, tmp_path_factory):
    """Both figures drawn once from the bundled sample."""
    out = tmp_path_factory.mktemp("figs")
    inputs = FigureInputs(reference=bundled)
    return make_figure("bound_vs_estimate", out, inputs), make_figure("residuals", out, inputs)


@pytest.fixture(scope="module")
def synth_drawn(synthetic, tmp_path_factory):
    """bound_vs_estimate drawn once from the synthetic reference (no architecture)."""
    return make_figure("bound_vs_estimate", tmp_path_factory.mktemp("synth"), FigureInputs(reference=synthetic))


def _check_files(res, name):
    """PNG (200 dpi, no wider than the page: nothing spills out) and PDF written."""
    assert res.skipped is None and not res.refused
    png, pdf = res.paths
    assert png.name == f"{name}.png" and pdf.name == f"{name}.pdf"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    with Image.open(png) as im:
        assert im.info["dpi"] == pytest.approx((PNG_DPI, PNG_DPI), abs=0.5)
        assert 400 < im.size[0] <= PAGE_WIDTH * PNG_DPI + 2 and im.size[1] > 300


def _rows_of(ref, p):
    return ref.loc[ref["platform"] == p]


def test_floor_row_plots_hierarchy_rows_and_its_fit(drawn, bundled):
    res, _ = drawn
    _check_files(res, "bound_vs_estimate")
    plats = res.data["platforms"]
    assert sorted(plats) == sorted(set(bundled["platform"]))
    h = hierarchy_rows(bundled)
    for p, f in plats.items():
        rows, hp = _rows_of(bundled, p), h[h["platform"] == p]
        assert f["arch"] == p  # each bundled platform: its own architecture
        np.testing.assert_array_equal(hp.index, rows.index)  # every row has a floor
        np.testing.assert_array_equal(f["E_ref"], rows["energy_pJ"].to_numpy(dtype=float))
        np.testing.assert_array_equal(f["hier_LB"], hp["hier_LB"].to_numpy(dtype=float))
        np.testing.assert_array_equal(f["undercount"], (hp["undercount"] != "").to_numpy())
        fit = fit_loglog(rows["energy_pJ"], hp["hier_LB"])
        for k in ("slope", "slope_ci_low", "slope_ci_high", "intercept", "r2"):
            assert getattr(f["hier_fit"], k) == pytest.approx(getattr(fit, k), rel=1e-12)


def test_filled_points_are_on_or_above_the_floor(drawn):
    """The soundness claim of the top row: only undercounted (hollow) rows may lie below y = x."""
    res, _ = drawn
    for p, f in res.data["platforms"].items():
        filled = ~f["undercount"]
        assert filled.sum() > 10, p
        assert np.all(f["E_ref"][filled] >= f["hier_LB"][filled]), p


def test_model_row_is_in_model_units_lb_and_min_only(drawn, bundled):
    res, _ = drawn
    for p, f in res.data["platforms"].items():
        rows = _rows_of(bundled, p)
        t = evaluate_table(rows.loc[:, list(LAYER_COLUMNS) + ["M"]].reset_index(drop=True))
        assert set(f["bounds"]) == set(f["fits"]) == {"lb", "min"}  # not four series
        for b in ("lb", "min"):
            # model units (MAC = 1): exactly evaluate_table's energies, no pJ/MAC conversion
            np.testing.assert_array_equal(f["bounds"][b], t[f"{b}_E"].to_numpy(dtype=float))
            fit = fit_loglog(rows["energy_pJ"], t[f"{b}_E"])
            for k in ("slope", "slope_ci_low", "slope_ci_high", "intercept", "r2"):
                assert getattr(f["fits"][b], k) == pytest.approx(getattr(fit, k), rel=1e-12)


def test_model_fits_equal_validate_and_the_object_api(synthetic, synth_drawn):
    res = synth_drawn
    _check_files(res, "bound_vs_estimate")
    plats = res.data["platforms"]
    val = run_validation(synthetic, folds=2)  # `energy-complexity validate` fits the same lines
    for p, f in plats.items():
        for b, vb in (("lb", "LB"), ("min", "min")):
            assert f["fits"][b].slope == pytest.approx(val.fits[(p, vb)].slope, rel=1e-12)
            assert f["fits"][b].slope_ci_high == pytest.approx(val.fits[(p, vb)].slope_ci_high, rel=1e-12)
    r0 = _rows_of(synthetic, "beta").iloc[0]
    lb = evaluate(Layer(**{k: int(r0[k]) for k in LAYER_COLUMNS}), Machine(M=int(r0["M"]))).lower_bound
    assert plats["beta"]["bounds"]["lb"][0] == pytest.approx(lb.E, rel=1e-12)


def test_platform_without_architecture_has_no_floor(synth_drawn):
    res = synth_drawn
    _check_files(res, "bound_vs_estimate")
    for p, f in res.data["platforms"].items():
        assert f["arch"] is None and f["hier_fit"] is None
        assert np.isnan(f["hier_LB"]).all() and not f["undercount"].any()
    assert sorted(n.split(":")[0] for n in res.notes if "no E_LB(arch) floor" in n) == ["alpha", "beta"]


def test_arch_ambiguity_is_refused(synthetic, tmp_path):
    for name in ("bound_vs_estimate", "residuals"):
        res = make_figure(name, tmp_path, FigureInputs(reference=synthetic, arch="eyeriss_like"))
        assert res.refused is True and res.paths == () and "--platform" in res.skipped
    assert list(tmp_path.iterdir()) == []


def test_single_platform_with_arch_uses_that_architecture(synthetic, tmp_path):
    alpha = _rows_of(synthetic, "alpha")
    res = make_figure("bound_vs_estimate", tmp_path, FigureInputs(reference=alpha, arch="eyeriss_like"))
    _check_files(res, "bound_vs_estimate")
    f = res.data["platforms"]["alpha"]
    h = hierarchy_rows(alpha, {"alpha": "eyeriss_like"})
    assert f["arch"] == "eyeriss_like" and set(h["arch"]) == {"eyeriss_like"}
    np.testing.assert_array_equal(f["hier_LB"], h["hier_LB"].to_numpy(dtype=float))
    assert np.isfinite(f["hier_LB"]).all()
    assert f["hier_fit"].slope == pytest.approx(fit_loglog(alpha["energy_pJ"], h["hier_LB"]).slope, rel=1e-12)


def test_arch_named_like_a_platform_selects_its_rows(bundled, tmp_path):
    res = make_figure("bound_vs_estimate", tmp_path, FigureInputs(reference=bundled, arch="simba_like"))
    _check_files(res, "bound_vs_estimate")
    assert list(res.data["platforms"]) == ["simba_like"]
    rows = _rows_of(bundled, "simba_like")
    h = hierarchy_rows(rows, {"simba_like": "simba_like"})
    np.testing.assert_array_equal(res.data["platforms"]["simba_like"]["hier_LB"], h["hier_LB"].to_numpy())


def test_buffer_size_input_does_not_change_the_figure(synthetic, synth_drawn, tmp_path):
    """The rows are drawn at their own M: --M (inputs.M) does not apply."""
    a = synth_drawn
    b = make_figure("bound_vs_estimate", tmp_path, FigureInputs(reference=synthetic, M=1024))
    for p in a.data["platforms"]:
        np.testing.assert_array_equal(a.data["platforms"][p]["bounds"]["lb"], b.data["platforms"][p]["bounds"]["lb"])


def test_residuals_are_those_of_the_plotted_floor_fit(drawn, bundled):
    fig, res = drawn
    _check_files(res, "residuals")
    assert list(res.data["platforms"]) == list(fig.data["platforms"])
    for p, per in res.data["platforms"].items():
        f = fig.data["platforms"][p]
        assert per["bound"] == "floor" and per["slope"] == f["hier_fit"].slope
        assert per["fit"].intercept == f["hier_fit"].intercept
        fit = fit_loglog(f["E_ref"], f["hier_LB"])
        expect = np.log(f["E_ref"]) - fit.intercept - fit.slope * np.log(f["hier_LB"])
        np.testing.assert_allclose(per["resid"], expect, rtol=1e-9, atol=1e-12)
        assert abs(per["resid"].sum()) < 1e-8  # OLS with an intercept: residuals sum to 0
        np.testing.assert_array_equal(per["M"], _rows_of(bundled, p)["M"].to_numpy(dtype=float))
        np.testing.assert_array_equal(per["F"], f["F"])
        np.testing.assert_array_equal(per["undercount"], f["undercount"])


def test_residuals_fall_back_to_the_two_level_lb(synthetic, tmp_path):
    res = make_figure("residuals", tmp_path, FigureInputs(reference=synthetic))
    _check_files(res, "residuals")
    for p, per in res.data["platforms"].items():
        rows = _rows_of(synthetic, p)
        t = evaluate_table(rows.loc[:, list(LAYER_COLUMNS) + ["M"]].reset_index(drop=True))
        fit = fit_loglog(rows["energy_pJ"], t["lb_E"])
        assert per["bound"] == "lb" and "model units" in per["label"]
        expect = np.log(rows["energy_pJ"].to_numpy()) - fit.intercept - fit.slope * np.log(t["lb_E"].to_numpy())
        np.testing.assert_allclose(per["resid"], expect, rtol=1e-9, atol=1e-12)
        np.testing.assert_array_equal(per["F"], t["F"].to_numpy(dtype=float))


def test_summaries_name_machines_and_units():
    figure_names()  # registers every figure
    s = FIGURES["bound_vs_estimate"].summary
    assert "E_LB(arch)" in s and "model units" in s and "pJ" in s and "min(OS, WS, OSL)" in s
    assert "natural log" in FIGURES["residuals"].summary
