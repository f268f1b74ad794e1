"""The ZigZag backend on tiny layers: determinism, units, DRAM traffic, the Buffer knob.

Tiny layers whose filters and channels fit the PE arrays leave LOMA a handful of
loop orders, so every estimate here takes well under a second of CPU.
"""

import json
from pathlib import Path

import pytest
import yaml

from complexity.layer import Layer
from energy_complexity.cli import main
from bounds.lower_bound import lower_bound_np
from validation.platforms import PLATFORMS, PlatformError, get_platform, onchip_memories, onchip_words
from validation.zigzag_backend import SearchSettings, ZigZagError, estimate, layer_workload

pytestmark = pytest.mark.zigzag

REPO = Path(__file__).resolve().parents[1]
TINY = Layer.conv(4, 8, 2, 3, 1, 1)  # padded: X_used = X; 24 loop orders
STRIDED = Layer.conv(4, 8, 7, 1, stride=2)  # 1x1 stride 2 reads 4 of 7 rows and columns: X_used < X


@pytest.fixture(scope="module")
def results():
    """(platform, layer name) -> estimate at the platform's own Buffer, computed once."""
    out = {}
    for p in PLATFORMS:
        for name, layer in (("tiny", TINY), ("strided", STRIDED)):
            out[p, name] = estimate(layer, p)
    return out


def test_deterministic():
    a, b = estimate(TINY, "eyeriss_like"), estimate(TINY, "eyeriss_like")
    assert a == b and json.dumps(a.to_dict(), sort_keys=True) == json.dumps(b.to_dict(), sort_keys=True)


def test_lazy_latency_selects_zigzags_mapping():
    for layer in (TINY, STRIDED):
        assert estimate(layer, "tpu_like", lazy_latency=True) == estimate(layer, "tpu_like", lazy_latency=False)


@pytest.mark.parametrize("platform", list(PLATFORMS))
@pytest.mark.parametrize("name, layer", [("tiny", TINY), ("strided", STRIDED)])
def test_large_buffer_dram_words_are_the_tensor_sizes(results, platform, name, layer):
    r = results[platform, name]
    # ZigZag stores only the real input words a window reads (padding is not stored)
    assert (r.dram_words_X, r.dram_words_W, r.dram_words_Y) == (layer.X_used, layer.W, layer.Y)
    assert r.dram_words == layer.X_used + layer.W + layer.Y
    if name == "strided":
        assert layer.X_used < layer.X


@pytest.mark.parametrize("platform", list(PLATFORMS))
def test_energy_units_and_breakdown(results, platform):
    r = results[platform, "tiny"]
    plat = get_platform(platform)
    assert r.macs == TINY.F
    assert r.energy_mac_pJ == pytest.approx(TINY.F * plat.mac_energy_pJ, rel=1e-12)  # pJ per MAC x MACs
    assert r.energy_pJ == pytest.approx(r.energy_mac_pJ + r.energy_memory_pJ, rel=1e-12)
    assert sum(r.memory_energy_pJ.values()) == pytest.approx(r.energy_memory_pJ, rel=1e-12)
    dram = sum(v for k, v in r.memory_energy_pJ.items() if k.startswith("dram/"))
    assert r.energy_dram_pJ == pytest.approx(dram, rel=1e-12)
    assert {k.split("/")[1] for k in r.memory_energy_pJ} == {"X", "W", "Y"}
    assert r.cycles >= TINY.F / 1024  # cannot beat the 1024-MAC arrays


def test_simba_dram_energy_is_64_pJ_per_word(results):
    r = results["simba_like", "tiny"]
    assert r.energy_dram_pJ == pytest.approx(64.0 * r.dram_words, rel=1e-12)


def test_energy_does_not_increase_when_only_the_buffer_grows():
    layer = Layer.conv(8, 8, 5, 3, 1, 1)  # X = Y = 200, W = 576 words; 24 loop orders
    res = [estimate(layer, "tpu_like", M) for M in (24, 48, 96, 192, 384)]
    energies = [r.energy_pJ for r in res]
    words = [r.dram_words for r in res]
    assert energies == sorted(energies, reverse=True) and energies[0] > energies[-1]
    assert words == sorted(words, reverse=True)
    assert words[-1] == layer.X + layer.W + layer.Y  # X and Y fit in 384 words (weights bypass the Buffer)


def test_too_small_a_buffer_is_a_zigzag_error():
    with pytest.raises(ZigZagError, match="simba_like"):
        estimate(TINY, "simba_like", 16)


def test_buffer_variants_go_to_a_temporary_directory():
    plat = get_platform("eyeriss_like")
    path = plat.hardware_file(4096)
    assert REPO not in path.parents and path.is_file()
    data = yaml.safe_load(path.read_text())
    assert data["memories"][plat.buffer_memory]["size"] == 4096 * plat.bits
    assert plat.hardware_file(None) == plat.hardware_file(plat.default_buffer_words) == plat.hardware_path
    with pytest.raises(PlatformError, match="buffer size"):
        plat.hardware_file(0)


def test_platform_M_is_the_buffer_capacity_in_words():
    for plat in PLATFORMS.values():
        data = plat.hardware_data()
        assert plat.default_buffer_words * plat.bits == data["memories"][plat.buffer_memory]["size"]
        assert {"I1", "O"} <= set(plat.buffer_operands())


def test_onchip_words_sum_every_memory_below_dram_as_zigzag_unrolls_it():
    from zigzag.stages.parser.accelerator_parser import AcceleratorParserStage
    for plat in PLATFORMS.values():
        acc = AcceleratorParserStage.parse_accelerator(str(plat.hardware_file(4096)))
        levels = acc.memory_hierarchy.mem_level_list
        top = max(levels, key=lambda lvl: lvl.memory_instance.size)  # DRAM
        want = {lvl.name: (lvl.memory_instance.size, lvl.unroll_count) for lvl in levels if lvl is not top}
        mems = onchip_memories(plat, 4096)
        assert {k: v[:2] for k, v in mems.items()} == want
        assert mems[plat.buffer_memory][2] == 4096
        assert onchip_words(plat, 4096) == sum(size // plat.bits * n for size, n in want.values())
        assert onchip_words(plat.name, 8192) - onchip_words(plat.name, 4096) == 4096
        assert plat.onchip_words() == onchip_words(plat, plat.default_buffer_words)
    # tpu_like: 1024 PEs, each with a 128-byte weight register file and a 16-bit output register (2 words)
    assert onchip_words("tpu_like", 2048) == 2048 + 1024 * (128 + 2)
    with pytest.raises(PlatformError, match="buffer size"):
        onchip_words("tpu_like", 0)


def test_dram_words_reach_the_lower_bound_of_the_whole_onchip_capacity():
    # 1024 weights stay in tpu_like's PE registers, so with a 128-word Buffer ZigZag moves only the
    # compulsory 5120 words: below Q_LB(128), which assumes one Buffer for all data, not below
    # Q_LB(M_onchip) of the whole on-chip capacity (docs/validation.md, "Soundness of the lower bound")
    layer = Layer.conv(32, 32, 8, 1)
    P = {f: getattr(layer, f) for f in ("b", "c", "d", "h", "w", "kh", "kw", "sh", "sw", "ph", "pw", "groups")}
    r = estimate(layer, "tpu_like", 128)
    lb_onchip = float(lower_bound_np(P, onchip_words("tpu_like", 128))["Q"])
    assert r.dram_words >= lb_onchip >= layer.X_used + layer.W + layer.Y
    assert r.dram_words < float(lower_bound_np(P, 128)["Q"])


def test_workload_of_a_grouped_strided_layer():
    layer = Layer.conv(8, 16, 9, 3, stride=2, pad=1, groups=4, b=2)
    (node,) = layer_workload(layer, bits=8)
    sizes = dict(zip(node["loop_dims"], node["loop_sizes"]))
    assert sizes == {"B": 2, "K": 4, "G": 4, "OX": layer.nw, "OY": layer.nh, "C": 2, "FX": 3, "FY": 3}
    assert node["padding"] == [[1, 1], [1, 1]] and node["dimension_relations"][0] == "ix=2*ox+1*fx"


def test_settings_validation_and_string():
    assert SearchSettings().as_string() == "opt=energy;engine=loma;lpf_limit=6;tm=uneven;sm=3"
    with pytest.raises(ValueError, match="lpf_limit"):
        SearchSettings(lpf_limit=0)


def test_cli_single_layer_json_is_bit_for_bit_reproducible(capsys):
    argv = ["reference", "run", "--platform", "tpu_like", "--c", "4", "--d", "8", "--hw", "2", "--k", "3",
            "--pad", "1", "--json", "--no-cache"]
    outs = []
    for _ in range(2):
        assert main(argv) == 0
        outs.append(capsys.readouterr().out)
    assert outs[0] == outs[1]
    obj = json.loads(outs[0])
    assert obj["macs"] == TINY.F and obj["dram_words_W"] == TINY.W and obj["tool"] == "zigzag"
