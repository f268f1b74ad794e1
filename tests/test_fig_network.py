"""The network_layers figure: per-layer floor E_LB(arch), schedule E_UB(arch) and reference estimate, all in pJ.

Every plotted number is checked against the API it comes from (bounds.hierarchy_api,
the reference rows), on the machine the figure names.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from bounds.hierarchy_api import evaluate_hierarchy_network
from complexity.zoo import get_network
from paper_figs.network_layers import MAX_NAME, display_names, pick_network
from paper_figs.registry import FigureInputs, make_figure
from validation.architectures import get_architecture
from validation.hierarchy_check import hierarchy_rows
from validation.reference_data import LAYER_COLUMNS, bundled_reference_path, read_reference_csv

#: The bundled platforms' usual Buffer sizes in the reference data.
USUAL_M = {"eyeriss_like": 1_048_576, "simba_like": 65_536, "tpu_like": 2_097_152}


@pytest.fixture(scope="module")
def bundled():
    return read_reference_csv(bundled_reference_path())


def _check_png(res) -> tuple[int, int]:
    assert res.skipped is None
    png, pdf = res.paths
    assert png.name == "network_layers.png" and pdf.read_bytes()[:5] == b"%PDF-"
    with Image.open(png) as im:
        assert im.info["dpi"] == pytest.approx((200, 200), abs=0.5)
        return im.size


def _check_against_api(d, layers, arch):
    """Floor, schedule and the schedule's level split equal evaluate_hierarchy_network's on ``arch``."""
    api = evaluate_hierarchy_network(layers, arch).layers
    np.testing.assert_allclose(d["lb_pJ"], [r.lower.E_pJ for r in api], rtol=1e-12)
    np.testing.assert_allclose(d["ub_pJ"], [np.nan if r.upper is None else r.upper.E_pJ for r in api], rtol=1e-12)
    for i, r in enumerate(api):
        if r.upper is None:
            continue
        lv = {name: sum(x["E_pJ"] for x in r.upper.levels if x["name"] == name) for name in ("dram", "mac")}
        assert d["ub_dram_pJ"][i] == pytest.approx(lv["dram"], rel=1e-12)
        assert d["ub_mac_pJ"][i] == pytest.approx(lv["mac"], rel=1e-12)
        assert d["ub_dram_pJ"][i] + d["ub_onchip_pJ"][i] + d["ub_mac_pJ"][i] == pytest.approx(r.upper.E_pJ, rel=1e-9)
    assert np.all(d["ub_pJ"][np.isfinite(d["ub_pJ"])] >= d["lb_pJ"][np.isfinite(d["ub_pJ"])] * (1 - 1e-9))


def _check_stars(d, layers, ref, platform, M, network):
    """Each star is the energy of a row of ``platform`` at ``M`` holding the layer (by name, else by shape);
    its split is that row's; and every star that does not undercount DRAM words is on or above the floor."""
    rows = ref[(ref["platform"] == platform) & (ref["M"] == M)]
    named = rows[rows["network"] == network].set_index("layer_name")
    star = d["ref_E"]
    for i, l in enumerate(layers):
        if l.name in named.index:
            want = named.loc[l.name]
        else:
            same = rows[(rows.loc[:, list(LAYER_COLUMNS)] == [getattr(l, c) for c in LAYER_COLUMNS]).all(axis=1)]
            if not len(same):
                assert np.isnan(star[i]), l.name
                continue
            want = same.iloc[0]
        assert star[i] == want["energy_pJ"]
        assert d["ref_dram_pJ"][i] == want["energy_dram_pJ"] and d["ref_mac_pJ"][i] == want["energy_mac_pJ"]
        assert d["ref_dram_pJ"][i] + d["ref_onchip_pJ"][i] + d["ref_mac_pJ"][i] == pytest.approx(star[i], rel=1e-12)
    has = np.isfinite(star)
    sound = has & ~d["ref_undercount"]
    assert np.all(star[sound] >= d["lb_pJ"][sound]), "a lower bound above an estimate of the same machine"
    return has


@pytest.mark.parametrize("network", ["vgg16", "alexnet"])
@pytest.mark.parametrize("arch", ["eyeriss_like", "simba_like"])
def test_floor_schedule_and_stars_equal_their_sources(tmp_path, bundled, network, arch):
    res = make_figure("network_layers", tmp_path, FigureInputs(reference=bundled, network=network, arch=arch))
    _check_png(res)
    d = res.data
    M = USUAL_M[arch]
    assert (d["network"], d["arch"], d["platform"], d["M"], d["E_unit"]) == (network, arch, arch, M, "pJ")
    assert f"M = {M:,} words" in d["title"] and arch in d["title"] and "pJ" in d["title"]
    layers = list(get_network(network))
    _check_against_api(d, layers, get_architecture(arch, M))
    has = _check_stars(d, layers, bundled, arch, M, network)
    assert has.sum() >= len(layers) - 1  # the bundled data hold (nearly) every layer of these networks
    # the floor under each star is the one validation.hierarchy_check computes for that row (a second code path)
    rows = bundled[(bundled["platform"] == arch) & (bundled["M"] == M)]
    chk = hierarchy_rows(rows)
    by_energy = dict(zip(chk["energy_pJ"], zip(chk["hier_LB"], chk["undercount"] != "")))
    for i in np.flatnonzero(has):
        lb, under = by_energy[d["ref_E"][i]]
        assert d["lb_pJ"][i] == pytest.approx(lb, rel=1e-9)
        assert bool(d["ref_undercount"][i]) == under


def test_default_is_vgg16_on_eyeriss_like_at_its_usual_M_and_all_stars_are_above_the_floor(tmp_path, bundled):
    res = make_figure("network_layers", tmp_path, FigureInputs(reference=bundled))
    w, h = _check_png(res)
    d = res.data
    assert (d["network"], d["arch"], d["platform"], d["M"]) == ("vgg16", "eyeriss_like", "eyeriss_like", 1_048_576)
    assert np.isfinite(d["ref_E"]).all() and not d["ref_undercount"].any()
    assert np.all(d["ref_E"] >= d["lb_pJ"])
    assert d["names"][:3] == ["conv1_1", "conv1_2", "conv2_1"] and d["names"][-3:] == ["fc1", "fc2", "fc3"]
    assert res.notes == ()
    assert w >= 7.0 * 200 * 0.9 and h > 600


def test_M_resizes_the_architecture_and_without_rows_at_M_draws_no_stars(tmp_path, bundled):
    res = make_figure("network_layers", tmp_path, FigureInputs(reference=bundled, M=4096))
    d = res.data
    assert (d["network"], d["arch"], d["M"]) == ("vgg16", "eyeriss_like", 4096)
    assert "M = 4,096 words" in d["title"] and "no reference rows" in d["title"]
    assert "1,048,576" not in d["title"]
    assert np.isnan(d["ref_E"]).all() and any("no reference rows" in n and "4,096" in n for n in res.notes)
    _check_against_api(d, list(get_network("vgg16")), get_architecture("eyeriss_like", 4096))


def test_M_with_some_reference_rows_draws_those_rows(tmp_path, bundled):
    """At M = 131,072 eyeriss_like holds a grid of shapes, some of them resnet50's."""
    res = make_figure("network_layers", tmp_path,
                      FigureInputs(reference=bundled, network="resnet50", M=131_072, arch="eyeriss_like"))
    size = _check_png(res)
    d = res.data
    layers = list(get_network("resnet50"))
    assert d["M"] == 131_072 and len(d["names"]) == 54
    _check_against_api(d, layers, get_architecture("eyeriss_like", 131_072))
    has = _check_stars(d, layers, bundled, "eyeriss_like", 131_072, "resnet50")
    assert 0 < has.sum() < len(layers)
    assert d["names"][1:5] == ["s1.b0 conv1", "s1.b0 conv2", "s1.b0 conv3", "s1.b0 down"]
    assert size[0] > 7.0 * 200  # the figure grows with the layer count


def test_without_reference_draws_floor_and_schedule_only(tmp_path):
    res = make_figure("network_layers", tmp_path, FigureInputs(network="alexnet"))
    _check_png(res)
    d = res.data
    assert (d["arch"], d["platform"], d["M"]) == ("eyeriss_like", None, 1_048_576)
    assert np.isnan(d["ref_E"]).all() and np.isnan(d["ref_dram_pJ"]).all()
    assert any("floor and schedule only" in n for n in res.notes)
    _check_against_api(d, list(get_network("alexnet")), get_architecture("eyeriss_like", 1_048_576))
    res = make_figure("network_layers", tmp_path, FigureInputs(network="alexnet", M=8192, arch="simba_like"))
    assert (res.data["arch"], res.data["M"]) == ("simba_like", 8192)
    _check_against_api(res.data, list(get_network("alexnet")), get_architecture("simba_like", 8192))


def _arch_file(tmp_path: Path, name: str = "eyeriss_like") -> Path:
    f = tmp_path / "arch.yaml"
    f.write_text(yaml.safe_dump(get_architecture(name).to_dict()))
    return f


def test_arch_file_refuses_M_and_draws_its_platform_rows(tmp_path, bundled):
    f = _arch_file(tmp_path)
    res = make_figure("network_layers", tmp_path, FigureInputs(reference=bundled, arch=str(f), M=4096))
    assert res.refused and res.paths == () and "--M" in res.skipped and "\n" not in res.skipped
    # the data hold four platforms: the file describes none of them for sure, so no stars
    res = make_figure("network_layers", tmp_path, FigureInputs(reference=bundled, arch=str(f), network="alexnet"))
    assert res.skipped is None and np.isnan(res.data["ref_E"]).all()
    assert any("--platform" in n for n in res.notes)
    # with the rows of one platform (what --platform leaves) they are drawn at that platform's usual M
    eyeriss = bundled[bundled["platform"] == "eyeriss_like"]
    res = make_figure("network_layers", tmp_path, FigureInputs(reference=eyeriss, arch=str(f), network="alexnet",
                                                               platform="eyeriss_like"))
    d = res.data
    assert d["M"] is None and d["ref_M"] == 1_048_576 and "architecture file" in d["title"]
    layers = list(get_network("alexnet"))
    _check_against_api(d, layers, get_architecture(str(f)))
    _check_against_api(d, layers, get_architecture("eyeriss_like", 1_048_576))  # the file is that platform
    assert _check_stars(d, layers, bundled, "eyeriss_like", 1_048_576, "alexnet").all()


def test_rows_of_another_machine_are_never_drawn_against_the_floor(tmp_path, bundled):
    simba = bundled[bundled["platform"] == "simba_like"]
    res = make_figure("network_layers", tmp_path, FigureInputs(reference=simba, arch="eyeriss_like", network="alexnet"))
    assert res.data["arch"] == "eyeriss_like" and np.isnan(res.data["ref_E"]).all()
    assert any("no rows of eyeriss_like" in n for n in res.notes)
    # a platform without an architecture: its rows are not drawn, the default architecture is
    alien = bundled[(bundled["platform"] == "eyeriss_like") & (bundled["network"] == "alexnet")].assign(platform="x")
    res = make_figure("network_layers", tmp_path, FigureInputs(reference=alien))
    assert res.data["arch"] == "eyeriss_like" and res.data["platform"] is None
    assert np.isnan(res.data["ref_E"]).all() and any("no bundled architecture" in n for n in res.notes)


def test_pick_network_prefers_eyeriss_like_on_equal_match(bundled):
    rows = bundled[(bundled["platform"] == "simba_like") & (bundled["M"] == 65_536)]
    copy = rows.assign(platform="eyeriss_like", energy_pJ=lambda r: 2 * r["energy_pJ"])
    both = pd.concat([rows, copy], ignore_index=True)
    net, plat, got = pick_network(both, ["alexnet", "vgg16"], None)
    assert (net, plat) == ("vgg16", "eyeriss_like") and (got["energy_pJ"] == 2 * rows["energy_pJ"].iloc[0]).any()
    assert pick_network(None, ["alexnet", "vgg16"], "alexnet") == ("alexnet", None, None)
    with pytest.raises(KeyError):
        pick_network(both, ["alexnet"], "nope")


def test_onnx_layers_keep_their_node_names(tmp_path):
    from complexity.onnx_import import load_onnx
    layers = tuple(load_onnx(Path(__file__).parent / "data" / "onnx" / "tiny_cnn.onnx"))
    res = make_figure("network_layers", tmp_path, FigureInputs(layers=layers, layers_source="tiny_cnn"))
    _check_png(res)
    d = res.data
    assert d["network"] == "tiny_cnn" and d["layer_names"] == [l.name for l in layers]
    assert d["names"][0] == "stem" and "block1.dw" in d["names"]
    _check_against_api(d, list(layers), get_architecture("eyeriss_like", 1_048_576))


def test_display_names():
    resnet = display_names([l.name for l in get_network("resnet50")], "resnet50")
    assert resnet[:6] == ["conv1", "s1.b0 conv1", "s1.b0 conv2", "s1.b0 conv3", "s1.b0 down", "s1.b1 conv1"]
    assert resnet[-1] == "fc" and "s4.b2 conv3" in resnet and len(set(resnet)) == len(resnet)
    vgg = display_names([l.name for l in get_network("vgg16")], "vgg16")
    assert vgg[:5] == ["conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1"] and vgg[12] == "conv5_3"
    assert display_names([l.name for l in get_network("alexnet")], "alexnet") == [
        "conv1", "conv2", "conv3", "conv4", "conv5", "fc1", "fc2", "fc3"]
    mb = display_names([l.name for l in get_network("mobilenet_v2")], "mobilenet_v2")
    assert mb[:6] == ["stem", "b1 dw", "b1 proj", "b2 exp", "b2 dw", "b2 proj"] and mb[-2:] == ["head", "fc"]
    sq = display_names([l.name for l in get_network("squeezenet1_0")], "squeezenet1_0")
    assert sq[:3] == ["conv1", "fire2 sq", "fire2 e1x1"] and sq[-1] == "conv10"
    gn = display_names([l.name for l in get_network("googlenet")], "googlenet")
    assert gn[:5] == ["conv1", "conv2", "conv3", "3a b1", "3a b2.0"]
    for net in ("resnet50", "mobilenet_v2", "googlenet", "squeezenet1_0"):
        names = display_names([l.name for l in get_network(net)], net)
        assert len(set(names)) == len(names) and max(map(len, names)) <= MAX_NAME
    # ONNX node names: the module path, else the name shortened keeping its tail
    assert display_names(["/layer1/layer1.0/conv1/Conv", "/features/features.0/Conv", "Conv_0"]) == [
        "s1.b0 conv1", "conv1", "Conv_0"]
    long = display_names(["model.encoder.stage_three.block_seven.pointwise"])[0]
    assert len(long) <= MAX_NAME and long.endswith("pointwise") and long.startswith("…")
