"""`energy-complexity validate`: JSON keys, tables, the report directory, one-line errors."""

import base64
import itertools
import json

import numpy as np
import pandas as pd
import pytest

from energy_complexity.cli import main
from validation.regression import MIN_ROWS

KEYS = {"platform", "bound", "n", "slope", "slope_ci_low", "slope_ci_high", "p_slope_eq_1", "r2"}


def _reference(tmp_path, tiny_M_rows=0, seed=0):
    """Two platforms; energy = s * (200 (X+W+Y) + 19 F) * lognormal noise; the first rows get M = 4."""
    rows = []
    for c, d, hw, k in itertools.product([4, 16, 64], [8, 32], [7, 14, 28], [1, 3]):
        rows.append(dict(b=1, c=c, d=d, h=hw, w=hw, kh=k, kw=k, sh=1, sw=1, ph=(k - 1) // 2, pw=(k - 1) // 2,
                         groups=1, M=4096))
    base = pd.DataFrame(rows)
    base.loc[base.index[:tiny_M_rows], "M"] = 4
    nh = base.h  # 'same' padding, stride 1
    F = base.d * nh * nh * base.c * base.kh * base.kw
    comp = base.c * base.h * base.w + base.d * base.c * base.kh * base.kw + base.d * nh * nh
    rng = np.random.default_rng(seed)
    parts = [base.assign(platform=p, energy_pJ=s * (200 * comp + 19 * F) * np.exp(rng.normal(0, 0.1, len(base))))
             for p, s in (("acc_a", 0.5), ("acc_b", 2.0))]
    path = tmp_path / "ref.csv"
    pd.concat(parts, ignore_index=True).to_csv(path, index=False)
    return path


def _run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_json_has_one_object_per_platform_and_bound(tmp_path, capsys):
    path = _reference(tmp_path)
    code, out, err = _run(["validate", "--data", str(path), "--json"], capsys)
    assert code == 0, err
    recs = json.loads(out)
    assert [(r["platform"], r["bound"]) for r in recs] == [(p, b) for p in ("acc_a", "acc_b")
                                                          for b in ("LB", "OS", "WS", "min")]
    for r in recs:
        assert KEYS <= set(r)
        assert r["n"] == 36 and r["slope_ci_low"] < r["slope"] < r["slope_ci_high"]
        assert 0 <= r["p_slope_eq_1"] <= 1 and 0.5 < r["r2"] <= 1
        assert r["calibration"]["cv_rel_median"] > 0
    # the platform factor (0.5 vs 2.0) moves the ratio E_ref / B by 4x, not the slope
    a, b = recs[1], recs[5]
    assert b["ratio_median"] / a["ratio_median"] == pytest.approx(4.0, rel=0.15)
    assert b["slope"] == pytest.approx(a["slope"], abs=0.1)


def test_one_platform_tables_and_report(tmp_path, capsys):
    path = _reference(tmp_path)
    png = tmp_path / "fig.png"
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig = plt.figure(figsize=(1, 1))
    fig.savefig(png, dpi=10)
    plt.close(fig)
    rep = tmp_path / "rep"
    code, out, err = _run(["validate", "--data", str(path), "--platform", "acc_b", "--report", str(rep),
                           "--figures", str(png)], capsys)
    assert code == 0, err
    assert "== Asymptotic fit: log E_ref = a + beta log B ==" in out and "acc_a" not in out
    assert "== Bounds versus naive proxies ==" in out and "acc_b: " in out and " wins by AIC" in out
    html = (rep / "report.html").read_text()
    assert base64.b64encode(png.read_bytes()).decode() in html and "<table>" in html
    md = (rep / "report.md").read_text()
    assert "| platform | bound |" in md and "](figures/fig.png)" in md and (rep / "figures" / "fig.png").is_file()
    fits = pd.read_csv(rep / "fits.csv")
    assert list(fits["bound"]) == ["LB", "OS", "WS", "min"] and set(fits["platform"]) == {"acc_b"}
    recs = json.loads((rep / "validation.json").read_text())
    assert [r["slope"] for r in recs] == pytest.approx(list(fits["slope"]), rel=1e-12)
    assert "c" in set(pd.read_csv(rep / "scaling_summary.csv")["parameter"])
    summary = (rep / "summary.md").read_text()
    row = fits.iloc[1]
    assert f"| acc_b | OS | 36 (0) | {row['slope']:.3f} [{row['ci_low']:.3f}, {row['ci_high']:.3f}] |" in summary


def test_infeasible_rows_are_excluded_and_counted(tmp_path, capsys):
    path = _reference(tmp_path, tiny_M_rows=6)
    code, out, err = _run(["validate", "--data", str(path), "--json"], capsys)
    assert code == 0, err
    recs = {(r["platform"], r["bound"]): r for r in json.loads(out)}
    lb = recs[("acc_a", "LB")]
    assert (lb["n"], lb["n_excluded"]) == (36, 0)
    excluded = {b: recs[("acc_a", b)]["n_excluded"] for b in ("OS", "WS", "min")}
    # a 4-word Buffer is too small for some dataflow on some of the 6 rows, never on the others
    assert 0 < max(excluded.values()) <= 6 and excluded["min"] <= min(excluded["OS"], excluded["WS"])
    for b, k in excluded.items():
        assert recs[("acc_a", b)]["n"] == 36 - k


@pytest.mark.parametrize("mutate,needle", [
    (lambda d: d.drop(columns=["energy_pJ"]), "missing required column(s): energy_pJ"),
    (lambda d: d.assign(energy_pJ=-d["energy_pJ"]), "row 1: 'energy_pJ' must be a positive finite number"),
    (lambda d: pd.concat([d, d.iloc[:2].assign(platform="few")]),
     f"platform 'few' has 2 row(s); the regression needs at least {MIN_ROWS}"),
])
def test_malformed_input_gets_one_line_error(tmp_path, capsys, mutate, needle):
    path = _reference(tmp_path)
    mutate(pd.read_csv(path)).to_csv(path, index=False)
    code, out, err = _run(["validate", "--data", str(path), "--json"], capsys)
    assert code == 2 and out == ""
    assert needle in err and err.startswith("energy-complexity validate: error: ") and err.count("\n") == 1


def test_unknown_platform_missing_file_and_bad_folds(tmp_path, capsys):
    path = _reference(tmp_path)
    for argv, needle in ((["--data", str(path), "--platform", "zz"], "platform 'zz' not in the data; known: acc_a, acc_b"),
                         (["--data", str(tmp_path / "nope.csv")], "nope.csv: no such file"),
                         (["--data", str(path), "--folds", "1"], "--folds must be at least 2")):
        code, out, err = _run(["validate"] + argv, capsys)
        assert code == 2 and needle in err and err.count("\n") == 1


def test_help_names_the_default_dataset(capsys):
    with pytest.raises(SystemExit):
        main(["validate", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "default: the bundled dataset reference_energy.csv in validation/data/" in out


def test_calibrated_costs_flag_uses_per_platform_costs(tmp_path, capsys):
    path = _reference(tmp_path)
    code, out, err = _run(["validate", "--data", str(path), "--json", "--calibrated-costs"], capsys)
    assert code == 0, err
    recs = json.loads(out)
    a = next(r for r in recs if r["platform"] == "acc_a" and r["bound"] == "LB")
    b = next(r for r in recs if r["platform"] == "acc_b" and r["bound"] == "LB")
    # each platform gets the costs of its own calibration (acc_b's energies are 4x acc_a's)
    assert a["costs"]["eB"] == 0 and a["costs"]["eD"] != b["costs"]["eD"]
    assert a["calibration"]["coef_Q"] == pytest.approx(a["costs"]["eD"], rel=1e-6)
    # with its own costs each platform's energy is about 1x its bound (default costs: 4x apart)
    assert a["ratio_median"] == pytest.approx(1.0, abs=0.1) and b["ratio_median"] == pytest.approx(1.0, abs=0.1)


def _bundled_slice(tmp_path):
    """52 bundled edge_tpu_like rows (some below the floor): a platform with an architecture, quick to draw."""
    from validation.reference_data import bundled_reference_path, read_reference_csv
    df = read_reference_csv(bundled_reference_path())
    path = tmp_path / "slice.csv"
    df[df["platform"] == "edge_tpu_like"].iloc[::9].to_csv(path, index=False)
    return path


def test_report_draws_and_embeds_the_figures_by_default(tmp_path, capsys):
    import re
    from paper_figs.registry import FIGURES
    rep = tmp_path / "rep"
    code, out, err = _run(["validate", "--data", str(_bundled_slice(tmp_path)), "--report", str(rep)], capsys)
    assert code == 0, err
    assert "drawing figures for the report" in err
    html = (rep / "report.html").read_text()
    imgs = re.findall(r'<figure id="fig-(\w+)"><img alt="[^"]*" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    names = [n for n, _ in imgs]
    assert {"mapping_gap", "bound_vs_estimate", "residuals"} <= set(names)
    for n, data in imgs:     # the very PNG drawn into DIR/figures/
        assert base64.b64decode(data) == (rep / "figures" / f"{n}.png").read_bytes()
    # the key figure is inside the verdict, with a caption from the registry summary, not the file name
    assert html.index('id="verdict"') < html.index('id="fig-mapping_gap"') < html.index('id="data"')
    cap = re.search(r'id="fig-mapping_gap">.*?<figcaption>(.*?)</figcaption>', html, flags=re.S).group(1)
    summary = FIGURES["mapping_gap"].summary
    assert (summary[0].upper() + summary[1:]).replace("'", "&#x27;") in cap and "pJ" in cap
    md = (rep / "report.md").read_text()
    assert "](figures/mapping_gap.png)" in md and "## Verdict" in md
    assert "== Verdict ==" in out and "edge_tpu_like (52 rows)" in out


def test_no_figures_flag_writes_the_report_without_figures(tmp_path, capsys):
    rep = tmp_path / "rep"
    code, out, err = _run(["validate", "--data", str(_reference(tmp_path)), "--report", str(rep), "--no-figures"],
                          capsys)
    assert code == 0, err
    html = (rep / "report.html").read_text()
    assert "<img" not in html and "drawing figures" not in err and not (rep / "figures").exists()
    assert "acc_a (36 rows, no architecture: no floor in pJ)" in html
    with pytest.raises(SystemExit) as exc:
        main(["validate", "--data", str(_reference(tmp_path)), "--report", str(rep), "--no-figures",
              "--figures", str(tmp_path)])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "--figures: not allowed with argument --no-figures" in err and err.count("\n") == 1
