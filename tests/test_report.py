"""The validation report: the verdict's numbers are the results', every table is captioned with
units, the key figure sits in the verdict."""

import re

import pandas as pd
import pytest

from validation.pipeline import CAPTIONS, predictor_sentence, run_validation, soundness_sentence
from validation.reference_data import bundled_reference_path, read_reference_csv
from validation.report import Figure, Section, render_html

#: Words that name a unit (or say a number has none) in a table caption.
UNIT = re.compile(r"\bpJ\b|model units|\bwords\b|dimensionless|fractions|counts of rows|\bMACs\b")


def small_reference() -> pd.DataFrame:
    """A slice of the bundled data: 52 edge_tpu_like rows (8 below the floor) and 41 eyeriss_like rows."""
    df = read_reference_csv(bundled_reference_path())
    return pd.concat([df[df["platform"] == "edge_tpu_like"].iloc[::9],
                      df[df["platform"] == "eyeriss_like"].iloc[::12]], ignore_index=True)


@pytest.fixture(scope="module")
def result():
    return run_validation(small_reference(), source="bundled slice")


def _png(path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig = plt.figure(figsize=(1, 1))
    fig.savefig(path, dpi=10)
    plt.close(fig)
    return path


def test_verdict_numbers_equal_the_tables(result):
    items = dict(result.verdict_items())
    assert list(items) == ["edge_tpu_like (52 rows)", "eyeriss_like (41 rows)"]
    fits = result.fit_table().set_index(["platform", "bound"])
    hier = result.hierarchy.set_index("platform")
    sound = result.soundness.set_index("platform")
    proxies = result.proxy_table()
    for p, head in zip(("edge_tpu_like", "eyeriss_like"), items):
        text = " ".join(items[head])
        for b, what in (("hier_LB", "on the floor E_LB(arch) (pJ)"), ("LB", "on the two-level LB (model units)")):
            f = fits.loc[(p, b)]
            assert (f"slope {f['slope']:.3f} [{f['ci_low']:.3f}, {f['ci_high']:.3f}], R² {f['r2']:.3f} "
                    f"{what}") in text
        h = hier.loc[p]
        h = {**h.to_dict(), **{k: int(h[k]) for k in ("rows", "n_below", "n_below_explained")}}
        if h["n_below"]:
            assert f"{h['n_below']} of {h['rows']} rows are below the floor" in text
            assert f"all {h['n_below_explained']} explained by an estimator undercount" in text
        else:
            assert f"no row of {h['rows']} is below the floor" in text
        assert f"median {h['gap_median']:.2f}, max {h['gap_max']:.2f}" in text
        s = sound.loc[p].astype(float)
        s = {k: int(s[k]) for k in ("below_onchip", "rows_onchip")}
        if s["below_onchip"]:
            assert f"below the two-level Q_LB(M_onchip) on {s['below_onchip']} of {s['rows_onchip']} rows" in text
        else:
            assert f"reach the two-level Q_LB(M_onchip) on all {s['rows_onchip']} rows" in text
        w = proxies[(proxies["platform"] == p) & proxies["winner"]].iloc[0]
        assert f"Best predictor: the {w['kind']} {w['predictor']} (R² {w['r2']:.3f})" in text
        cal = result.calibration_table().set_index(["platform", "counts"]).loc[(p, "LB")]
        assert f"within {cal['cv_median']:.1%}" in text
    # the slice keeps rows below the floor, so the count sentence is exercised with a non-zero count
    assert hier.loc["edge_tpu_like", "n_below"] > 0


def test_verdict_comes_first_in_the_report_and_the_terminal(result, tmp_path):
    assert result.text().startswith("== Verdict ==")
    md, html = result.write_report(tmp_path, figures=[])[:2]
    h = html.read_text()
    assert h.index('id="verdict"') < h.index('id="data"') < h.index('id="asymptotic-fit')
    assert "<h1>Validation of the energy bounds</h1>" in h and '<p class="intro">93 reference energy' in h
    assert md.read_text().splitlines()[4] == "## Verdict"
    assert result.sections()[0].title == "Data"       # sections() itself still starts with the data


def test_every_html_table_has_a_caption_with_a_unit(result, tmp_path):
    html = result.write_report(tmp_path, figures=[])[1].read_text()
    tables = re.findall(r"<table>(.*?)</table>", html, flags=re.S)
    assert len(tables) == 10
    for t in tables:
        cap = re.search(r"<caption>(.*?)</caption>", t, flags=re.S)
        assert cap and UNIT.search(cap.group(1)), t[:200]
    # the ratio columns say they are pJ over model units (or pJ over pJ for the floor)
    assert "E_ref / B in pJ / model units for LB, OS, WS, min" in CAPTIONS["fit"]
    assert "<th>unit of B</th>" in html and ">model units</td>" in html
    md = (tmp_path / "report.md").read_text()
    assert md.count("*Table: ") == 10
    # the CSV keeps its column names
    assert list(pd.read_csv(tmp_path / "fits.csv").columns)[:3] == ["platform", "bound", "n"]


def test_key_figure_sits_in_the_verdict_and_skipped_figures_are_listed(result, tmp_path):
    key = _png(tmp_path / "mapping_gap.png")
    other = _png(tmp_path / "extra_plot.png")
    md, html = result.write_report(tmp_path / "rep", [Figure(key, "The gap in pJ / pJ."), other],
                                   skipped=[("residuals", "needs reference energy data")])[:2]
    h = html.read_text()
    assert h.count('src="data:image/png;base64,') == 2
    gap = h.index('id="fig-mapping_gap"')
    assert h.index('id="verdict"') < gap < h.index('id="data"') < h.index('id="fig-extra_plot"')
    assert "<b>Figure 1.</b> The gap in pJ / pJ." in h and "<b>Figure 2.</b> extra plot" in h
    assert "residuals: skipped (needs reference energy data)" in h
    m = md.read_text()
    assert m.index("![mapping gap](figures/mapping_gap.png)") < m.index("## Data")
    assert "*Figure 1. The gap in pJ / pJ.*" in m and "- residuals: skipped (needs reference energy data)" in m


def test_sentences_for_unexplained_rows_missing_data_and_errors():
    hier = dict(rows=10, n_below=3, n_below_explained=1)
    s = soundness_sentence(hier, None)
    assert s == ("Soundness: 3 of 10 rows are below the floor, 1 explained by an estimator undercount and 2 "
                 "unexplained; no DRAM words in the data, so no DRAM-traffic check.")
    assert predictor_sentence(ValueError("2 usable row(s)")) == "Best predictor: no comparison (2 usable row(s))."


def test_render_html_items_and_captions_are_escaped():
    t = pd.DataFrame({"a": [1.5]})
    h = render_html("T", [Section("S", items=(("p <1>", ("Fit: x < y.", "plain")),), table=t, caption="in <pJ>")])
    assert '<div class="head">p &lt;1&gt;</div>' in h and '<span class="key">Fit:</span> x &lt; y.' in h
    assert "<caption>in &lt;pJ&gt;</caption>" in h and "<p>plain</p>" in h
