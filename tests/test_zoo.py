"""The zoo's layer shapes: published totals, shape chaining, the committed CSVs, the API."""

from __future__ import annotations

import pytest

from complexity.layer import Layer
from complexity.zoo import (ZooError, get_network, network_macs, network_names, network_params,
                            network_rows, published_totals)
from complexity.zoo.build import DATA_DIR, NETWORKS, build, to_csv_text


def _by_name(net: str) -> dict[str, Layer]:
    return {layer.name: layer for layer in get_network(net)}


# ----- published totals ----------------------------------------------------------

@pytest.mark.parametrize("net", network_names())
def test_params_match_published(net):
    pub = published_totals(net)
    assert abs(network_params(net) - pub["params"]) <= pub["params_tol"]


@pytest.mark.parametrize("net", [n for n in network_names() if published_totals(n)["macs"] is not None])
def test_macs_match_published(net):
    # torchvision publishes GMACs (its "GFLOPS") to 3 decimals (VGG-16: 2): accept half a unit there
    pub = published_totals(net)
    assert abs(network_macs(net) - pub["macs"]) <= pub["macs_tol"]


def test_exact_totals_of_two_networks():
    # hand-checked: AlexNet conv 655,566,528 + fc 58,621,952 MACs; ResNet-50's well-known 4,089,184,256
    assert network_macs("alexnet") == 714_188_480
    assert network_macs("resnet50") == 4_089_184_256
    assert network_params("alexnet_original") == 60_965_224  # Caffe bvlc_alexnet's count


def test_tolerances_are_the_published_precision():
    assert published_totals("alexnet")["macs_tol"] == pytest.approx(0.0005e9)
    assert published_totals("vgg16")["macs_tol"] == pytest.approx(0.005e9)
    assert published_totals("resnet50")["params_tol"] == 0.5
    assert "torchvision" in published_totals("googlenet")["source"]


# ----- shapes chain into each other ---------------------------------------------

def _pool(n, k, s, p=0, ceil=False):
    span = n + 2 * p - k
    return (-(-span // s) if ceil else span // s) + 1


def test_vgg16_chain():
    layers = get_network("vgg16")
    convs = [l for l in layers if not l.is_fc]
    assert len(convs) == 13 and len(layers) == 16
    pools_after = {"features.2", "features.7", "features.14", "features.21", "features.28"}
    for a, b in zip(convs, convs[1:]):
        assert b.c == a.d
        assert b.h == (a.nh // 2 if a.name in pools_after else a.nh), (a.name, b.name)
    last, fc = convs[-1], layers[13]
    assert fc.c == last.d * (last.nh // 2) ** 2 == 25088
    assert [(l.c, l.d) for l in layers[13:]] == [(25088, 4096), (4096, 4096), (4096, 1000)]


def test_alexnet_chain():
    L = _by_name("alexnet")
    assert L["features.0"].nh == 55
    assert L["features.3"].h == _pool(55, 3, 2) == 27 and L["features.3"].c == 64
    assert L["features.6"].h == _pool(L["features.3"].nh, 3, 2) == 13
    assert L["features.10"].nh == 13
    assert L["classifier.1"].c == 256 * _pool(13, 3, 2) ** 2 == 9216


def test_alexnet_original_groups():
    L = _by_name("alexnet_original")
    assert [L[n].groups for n in ("conv1", "conv2", "conv3", "conv4", "conv5")] == [1, 2, 1, 2, 2]
    assert L["conv1"].nh == 55 and L["conv2"].h == 27 and L["conv3"].h == 13
    assert L["conv2"].W == 256 * 48 * 25


def test_resnet50_stage_transitions():
    L = _by_name("resnet50")
    assert L["conv1"].nh == 112 and L["layer1.0.conv1"].h == _pool(112, 3, 2, 1) == 56
    for stage, (c_in, hw_in, width, out, hw_out) in {
        2: (256, 56, 128, 512, 28), 3: (512, 28, 256, 1024, 14), 4: (1024, 14, 512, 2048, 7)
    }.items():
        prev_last = L[f"layer{stage - 1}.{ {2: 2, 3: 3, 4: 5}[stage] }.conv3"]
        first, down = L[f"layer{stage}.0.conv1"], L[f"layer{stage}.0.downsample.0"]
        assert (prev_last.d, prev_last.nh) == (c_in, hw_in)
        assert (first.c, first.h) == (down.c, down.h) == (c_in, hw_in)
        conv2, conv3 = L[f"layer{stage}.0.conv2"], L[f"layer{stage}.0.conv3"]
        assert (conv2.c, conv2.sh, conv2.nh) == (width, 2, hw_out)
        # the projection shortcut's output is added to the main path's: same shape
        assert (down.d, down.nh, down.sh, down.kh) == (conv3.d, conv3.nh, 2, 1) == (out, hw_out, 2, 1)
    assert L["fc"].c == 2048
    assert sum(1 for n in L if "downsample" in n) == 4


def test_resnet50_blocks_chain():
    layers = [l for l in get_network("resnet50") if "downsample" not in l.name and not l.is_fc]
    for a, b in zip(layers[1:], layers[2:]):
        assert (b.c, b.h) == (a.d, a.nh), (a.name, b.name)


def test_mobilenet_v2_chain_and_depthwise():
    layers = get_network("mobilenet_v2")
    rows = network_rows("mobilenet_v2")
    for a, b in zip(layers[:-1], layers[1:-1]):  # strictly sequential up to the classifier
        assert (b.c, b.h) == (a.d, a.nh), (a.name, b.name)
    dw = [l for l, r in zip(layers, rows) if r["kind"] == "depthwise"]
    assert len(dw) == 17 and all(l.is_depthwise and l.kh == 3 and l.c == l.d for l in dw)
    assert layers[-2].nh == 7 and layers[-1].c == 1280 and layers[-1].is_fc
    assert _by_name("mobilenet_v2")["features.2.conv.1.0"].groups == 96


def test_googlenet_inception_concat():
    L = _by_name("googlenet")
    def out(m):
        return sum(L[f"{m}.{b}"].d for b in ("branch1.conv", "branch2.1.conv", "branch3.1.conv", "branch4.1.conv"))
    assert L["inception3a.branch1.conv"].c == L["conv3.conv"].d == 192
    for a, b in [("inception3a", "inception3b"), ("inception3b", "inception4a"), ("inception4d", "inception4e"),
                 ("inception4e", "inception5a"), ("inception5a", "inception5b")]:
        assert L[f"{b}.branch1.conv"].c == out(a), (a, b)
    assert [L[f"inception{m}.branch1.conv"].h for m in ("3a", "4a", "5a")] == [28, 14, 7]
    assert L["inception3a.branch2.1.conv"].c == L["inception3a.branch2.0.conv"].d
    assert L["fc"].c == out("inception5b") == 1024


@pytest.mark.parametrize("net", ["squeezenet1_0", "squeezenet1_1"])
def test_squeezenet_fires(net):
    layers = get_network(net)
    squeezes = [i for i, l in enumerate(layers) if l.name.endswith(".squeeze")]
    assert len(squeezes) == 8
    for i, j in zip(squeezes, squeezes[1:]):
        e1, e3 = layers[i + 1], layers[i + 2]
        assert e1.c == e3.c == layers[i].d and (e1.kh, e3.kh, e3.ph) == (1, 3, 1)
        assert layers[j].c == e1.d + e3.d
    assert layers[-1].name == "classifier.1" and (layers[-1].c, layers[-1].d, layers[-1].h) == (512, 1000, 13)


# ----- CSVs, API ------------------------------------------------------------------

@pytest.mark.parametrize("net", list(NETWORKS))
def test_committed_csv_is_build_output(net):
    assert (DATA_DIR / f"{net}.csv").read_text() == to_csv_text(build(net))


def test_names_and_layer_objects():
    assert set(network_names()) == set(NETWORKS)
    assert {"alexnet", "vgg16", "resnet50", "mobilenet_v2", "googlenet", "squeezenet1_0"} <= set(network_names())
    layers = get_network("resnet50")
    assert len(layers) == 54 and all(isinstance(l, Layer) and l.name for l in layers)
    assert len({l.name for l in layers}) == len(layers)
    assert layers[0].name == "conv1" and layers[-1].name == "fc"


def test_batch_overrides_b():
    one, four = get_network("googlenet"), get_network("googlenet", batch=4)
    assert all(l.b == 4 for l in four) and all(l.b == 1 for l in one)
    assert network_macs("googlenet", batch=4) == 4 * network_macs("googlenet")
    with pytest.raises(ZooError, match="batch"):
        get_network("vgg16", batch=0)


def test_unknown_name_lists_known_names():
    with pytest.raises(ZooError) as exc:
        get_network("resnet51")
    msg = str(exc.value)
    assert "resnet51" in msg and all(n in msg for n in network_names())
    with pytest.raises(KeyError):
        published_totals("lenet")
