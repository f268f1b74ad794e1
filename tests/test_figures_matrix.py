"""Every figure for two networks x two platforms of the bundled data, each plotted array checked against the API.

The user's case reaches the figures as the CLI builds it (energy_complexity/commands/figures.py):
the reference rows of one platform (--platform), that platform's architecture (--arch),
a network (--network, its layers in FigureInputs.layers).  Whatever a figure draws must
be the API's number for that case, and no floor may lie above a (non-undercounted)
estimate it bounds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bounds.hierarchy_api import evaluate_hierarchy_network
from complexity.layer import Layer
from complexity.zoo import get_network
from paper_figs.common import layer_table
from paper_figs.registry import USES, FigureInputs, figure_names, make_all
from validation.architectures import get_architecture
from validation.hierarchy_check import hierarchy_rows
from validation.reference_data import LAYER_COLUMNS, bundled_reference_path, read_reference_csv

CASES = [("alexnet", "eyeriss_like"), ("squeezenet1_1", "simba_like")]


@pytest.fixture(scope="module")
def bundled():
    return read_reference_csv(bundled_reference_path())


def _case_rows(ref: pd.DataFrame, network: str, platform: str) -> pd.DataFrame:
    """The platform's rows of the network, a sample of its others, and its Buffer sweeps (for traffic_vs_buffer)."""
    p = ref[ref["platform"] == platform]
    usual = p["M"].value_counts().index[0]
    sweep = p[p["M"] != usual]
    rest = p[(p["M"] == usual) & (p["network"] != network)].sample(40, random_state=1)
    return pd.concat([p[(p["M"] == usual) & (p["network"] == network)], rest, sweep]).reset_index(drop=True)


@pytest.mark.parametrize("network, platform", CASES)
def test_every_figure_plots_the_api_numbers_for_the_users_case(tmp_path, bundled, network, platform):
    ref = _case_rows(bundled, network, platform)
    layers = tuple(get_network(network))
    inputs = FigureInputs(reference=ref, source="test", network=network, layers=layers, layers_source=network,
                          arch=platform, platform=platform)
    results = {r.name: r for r in make_all(tmp_path, inputs)}
    assert sorted(results) == sorted(figure_names())
    for name, r in results.items():
        assert r.skipped is None, (name, r.skipped)
        assert r.paths[0].stat().st_size > 5000 and r.paths[1].read_bytes()[:5] == b"%PDF-"
    rows = hierarchy_rows(ref)  # each row on its own platform's architecture at the row's M

    # bound_vs_estimate, mapping_gap and residuals: the floor of every row, and nothing filled below it
    bve = results["bound_vs_estimate"].data["platforms"][platform]
    np.testing.assert_allclose(bve["hier_LB"], rows["hier_LB"].to_numpy(), rtol=1e-12)
    assert (bve["E_ref"][~bve["undercount"]] >= bve["hier_LB"][~bve["undercount"]]).all()
    t = layer_table([Layer(**{c: int(r[c]) for c in LAYER_COLUMNS}) for _, r in ref.iterrows()],
                    ref["M"].to_numpy(), {"eD": 200.0, "eB": 6.0, "eM": 1.0, "bits": 16})
    np.testing.assert_allclose(bve["bounds"]["lb"], t["lb_E"].to_numpy(dtype=float), rtol=1e-12)
    np.testing.assert_allclose(bve["bounds"]["min"], t["min_E"].to_numpy(dtype=float), rtol=1e-12)
    gap = results["mapping_gap"].data["platforms"][platform]
    np.testing.assert_allclose(gap["gap"], rows["gap"].to_numpy(), rtol=1e-12)
    assert (gap["gap"][~gap["undercount"]] >= 1).all()

    # network_layers: floor and schedule of each layer on the platform's architecture at its usual M
    nl = results["network_layers"].data
    assert nl["network"] == network and nl["platform"] == platform and nl["arch"] == platform
    net = evaluate_hierarchy_network(layers, get_architecture(platform, nl["M"]))
    np.testing.assert_allclose(nl["lb_pJ"], [r.lower.E_pJ for r in net.layers], rtol=1e-12)
    np.testing.assert_allclose(nl["ub_pJ"], [np.nan if r.upper is None else r.upper.E_pJ for r in net.layers],
                               rtol=1e-12)
    has = np.isfinite(nl["ref_E"])
    assert has.sum() >= len(layers) // 2  # the bundled data hold most of the network's layers
    ok = has & ~nl["ref_undercount"]
    assert (nl["ref_E"][ok] >= nl["lb_pJ"][ok]).all()

    # energy_vs_macs: the user's network is one of the totals, at the default M of the two-level figures
    em = results["energy_vs_macs"].data
    assert em["user"] == network and em["M"] == 65536
    i = em["networks"].index(network)
    assert em["lb_E"][i] == pytest.approx(layer_table(layers, 65536, {"eD": 200.0, "eB": 6.0, "eM": 1.0,
                                                                       "bits": 16})["lb_E"].sum(), rel=1e-12)
    # traffic_vs_buffer: only the requested platform's sweep
    assert results["traffic_vs_buffer"].data["platforms"] == [platform]
    # the inputs each figure was given and cannot use are the ones the CLI notes
    assert "arch" not in USES["gap_map"] and "network" in USES["network_layers"]
