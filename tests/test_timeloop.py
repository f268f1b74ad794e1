"""The Timeloop stats reader on the bundled samples (tests/data/timeloop, see its README.md).

Expected numbers are copied from the sample files (line numbers cited) and, where
noted, re-derived with an independent regex so that the reader is not checked
against itself.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from complexity.layer import Layer
from validation.reference_data import validate_reference_frame
from validation.timeloop import (parse_timeloop_stats, read_timeloop_dir, read_timeloop_map,
                                 read_timeloop_stats, loop_nest_text, timeloop_problem,
                                 to_reference_row)

DATA = Path(__file__).resolve().parent / "data" / "timeloop"
EYERISS = DATA / "eyeriss_like-alexnet_conv3.stats.txt"
SIMBA = DATA / "simba_like-alexnet_conv3.stats.txt"
EYERISS_MAP = DATA / "eyeriss_like-alexnet_conv3.map.txt"

#: AlexNet conv3: C=256, M=384, P=Q=13, R=S=3, stride 1 (13x13 input padded by 1).
CONV3 = Layer.conv(c=256, d=384, hw=13, k=3, stride=1, pad=1, name="features.6")
#: What Timeloop simulates: no padding, a 15 x 15 input (P - 1 + R), padding zeros stored.
CONV3_TL = timeloop_problem(CONV3)


@pytest.fixture(scope="module")
def eyeriss():
    return read_timeloop_stats(EYERISS)


@pytest.fixture(scope="module")
def simba():
    return read_timeloop_stats(SIMBA)


def _dram_words_by_regex(path: Path) -> dict[str, int]:
    """Independent reading: in the DRAM level block, reads + fills + updates per dataspace."""
    text = path.read_text()
    block = text[text.index("=== DRAM ==="):text.index("\nNetworks\n")]
    out = {}
    for name, body in re.findall(r"^    (\w+):\n((?:        .*\n)+)", block, re.M):
        out[name] = sum(int(n) for n in re.findall(r"Scalar (?:reads|fills|updates) \(per-instance\)\s+: (\d+)", body))
    return out


# ----- totals ---------------------------------------------------------------------------

def test_eyeriss_totals(eyeriss):
    assert eyeriss.total_energy_pJ == pytest.approx(940.88e6, abs=1e-3)  # line 819 "Energy: 940.88 uJ"
    assert eyeriss.cycles == 958464                                      # line 818
    assert eyeriss.computes == 149520384                                 # lines 16, 823
    assert eyeriss.fj_per_compute["Total"] == 6292.68                    # line 838
    assert eyeriss.utilization == 0.93


def test_simba_totals(simba):
    assert simba.total_energy_pJ == pytest.approx(764.24e6, abs=1e-3)    # line 844 "Energy: 764.24 uJ"
    assert simba.cycles == 2336256                                       # line 843
    assert simba.computes == 149520384                                   # lines 16, 848
    assert simba.fj_per_compute["Total"] == 5111.26                      # line 863


@pytest.mark.parametrize("path", [EYERISS, SIMBA])
def test_summary_matches_independent_regex(path):
    text = path.read_text()
    stats = read_timeloop_stats(path)
    uj = float(re.search(r"^Energy: ([\d.]+) uJ$", text, re.M).group(1))
    assert stats.total_energy_pJ == pytest.approx(uj * 1e6)
    assert stats.cycles == int(re.search(r"^Cycles: (\d+)$", text, re.M).group(1))
    assert stats.computes == int(re.search(r"^Computes = (\d+)$", text, re.M).group(1))


def test_computes_are_the_layer_macs(eyeriss, simba):
    macs = 256 * 384 * 13 * 13 * 3 * 3
    assert CONV3.F == CONV3_TL.F == macs == 149520384
    assert (CONV3_TL.h, CONV3_TL.ph, CONV3_TL.nh, CONV3_TL.W, CONV3_TL.Y) == (15, 0, 13, CONV3.W, CONV3.Y)
    assert eyeriss.computes == simba.computes == macs
    assert eyeriss.arithmetic.computes == macs  # the mac level's "Computes (total)", line 16


# ----- per level ------------------------------------------------------------------------

def test_eyeriss_levels(eyeriss):
    assert list(eyeriss.levels) == ["mac", "psum_spad", "weights_spad", "ifmap_spad", "DummyBuffer",
                                    "shared_glb", "DRAM"]
    L = eyeriss.levels
    assert L["mac"].kind == "arithmetic" and L["mac"].energy_pJ == 328997176.93  # line 18
    assert L["mac"].utilized_instances == 156 and L["mac"].instances == 168
    assert L["psum_spad"].energy_pJ == 77743076.94                                # Outputs Energy (total)
    assert L["weights_spad"].energy_pJ == 255303525.34
    assert L["ifmap_spad"].energy_pJ == 36184047.94
    assert L["DummyBuffer"].energy_pJ == 0.0 and L["DummyBuffer"].dataspaces == {}
    assert L["shared_glb"].energy_pJ == pytest.approx(68789198.59 + 37568291.16, abs=1e-6)
    assert L["DRAM"].energy_pJ == pytest.approx(113246208.00 + 14745600.00 + 8306688.00, abs=1e-6)
    ds = L["psum_spad"].dataspaces["Outputs"]
    assert (ds.reads, ds.fills, ds.updates, ds.instances) == (953472, 74880, 958464, 156)
    glb = L["shared_glb"].dataspaces
    assert (glb["Inputs"].reads, glb["Inputs"].fills, glb["Inputs"].updates) == (3594240, 115200, 0)
    assert (glb["Outputs"].reads, glb["Outputs"].fills, glb["Outputs"].updates) == (973440, 0, 1038336)
    assert L["shared_glb"].loops == ("for M in [0:12)", "for P in [0:13)", "for Q in [0:13) (Spatial-X)")
    assert L["DRAM"].technology == "DRAM"


def test_simba_levels(simba):
    L = simba.levels
    assert [lv.kind for lv in L.values()] == ["arithmetic"] + ["storage"] * 6
    assert L["LMAC"].energy_pJ == 83851031.35                              # line 18
    assert L["PEWeightRegs"].energy_pJ == 4921309.27                       # line 64
    assert L["PEAccuBuffer"].energy_pJ == 74889501.17                      # line 120
    assert L["PEWeightBuffer"].energy_pJ == 69301123.15                    # line 177
    assert L["PEInputBuffer"].energy_pJ == 462503048.05                    # line 232
    assert L["GlobalBuffer"].energy_pJ == pytest.approx(3938175.72 + 370689.60, abs=1e-6)  # lines 288, 311
    assert L["DRAM"].energy_pJ == pytest.approx(56623104.00 + 3686400.00 + 4153344.00, abs=1e-6)  # 366, 389, 412
    pib = L["PEInputBuffer"].dataspaces["Inputs"]                          # lines 223-227
    assert (pib.reads, pib.fills, pib.updates, pib.instances) == (9345024, 172800, 0, 4)
    assert pib.total_reads == 4 * 9345024


@pytest.mark.parametrize("path", [EYERISS, SIMBA])
def test_level_energies_match_fj_per_compute(path):
    # the summary prints each level's energy per compute in fJ to 0.01 fJ
    stats = read_timeloop_stats(path)
    for name, lv in stats.levels.items():
        assert lv.energy_pJ * 1e3 / stats.computes == pytest.approx(stats.fj_per_compute[name], abs=0.005 + 1e-9)


@pytest.mark.parametrize("path", [EYERISS, SIMBA])
def test_sum_of_levels_is_the_total(path):
    stats = read_timeloop_stats(path)
    # "Energy: X uJ" is printed to 0.01 uJ = 1e4 pJ: the sum agrees within half of that
    assert abs(stats.energy_sum_pJ - stats.total_energy_pJ) <= 0.5e4
    assert stats.network_energy_pJ == 0.0  # every network energy in the samples is 0.00 pJ
    assert sum(v for k, v in stats.fj_per_compute.items() if k != "Total") == pytest.approx(
        stats.fj_per_compute["Total"], abs=0.01 * len(stats.fj_per_compute))


# ----- DRAM traffic -----------------------------------------------------------------------

def test_dram_traffic(eyeriss, simba):
    # eyeriss lines 336-338, 359-361, 382-384; simba lines 359-361, 382-384, 405-407
    assert eyeriss.dram.name == "DRAM" and simba.dram.name == "DRAM"
    assert eyeriss.dram_words == {"Weights": 884736, "Inputs": 115200, "Outputs": 64896}
    assert simba.dram_words == {"Weights": 884736, "Inputs": 57600, "Outputs": 64896}
    assert eyeriss.dram_words_total == 884736 + 115200 + 64896
    # every weight read once (|W| = 384*256*9), every output written once (|Y| = 384*13*13)
    assert eyeriss.dram_words["Weights"] == CONV3.W and eyeriss.dram_words["Outputs"] == CONV3.Y
    # Simba reads the input once, Eyeriss twice (its DRAM loop "for M in [0:2)" re-reads it)
    assert simba.dram_words["Inputs"] == CONV3_TL.X and eyeriss.dram_words["Inputs"] == 2 * CONV3_TL.X
    assert CONV3_TL.X == 256 * 15 * 15 > CONV3.X  # Timeloop's input includes the padding halo
    assert eyeriss.energy_dram_pJ == pytest.approx(136298496.0, abs=1e-6)


@pytest.mark.parametrize("path", [EYERISS, SIMBA])
def test_dram_traffic_matches_independent_regex(path):
    assert read_timeloop_stats(path).dram_words == _dram_words_by_regex(path)


# ----- reference row ------------------------------------------------------------------------

def test_reference_row(eyeriss):
    row = to_reference_row(eyeriss, CONV3, "eyeriss_like", 65536, tool_version="timeloop 3.0.3",
                           network="alexnet")
    assert row["platform"] == "eyeriss_like" and row["M"] == 65536 and row["tool"] == "timeloop"
    assert (row["c"], row["d"], row["h"], row["kh"], row["ph"], row["b"]) == (256, 384, 13, 3, 1, 1)
    assert row["energy_pJ"] == pytest.approx(940883812.90, abs=0.01)
    assert row["energy_mac_pJ"] == 328997176.93
    assert row["energy_dram_pJ"] == pytest.approx(136298496.0)
    assert (row["dram_words_W"], row["dram_words_X"], row["dram_words_Y"]) == (884736, 115200, 64896)
    assert row["dram_words"] == 1064832  # = the DRAM "Total scalar accesses", line ~810
    assert row["cycles"] == 958464 and row["layer_name"] == "features.6"
    assert row["tool_version"] == "timeloop 3.0.3" and row["network"] == "alexnet"
    import pandas as pd
    checked = validate_reference_frame(pd.DataFrame([row]))
    assert checked["energy_pJ"].iloc[0] == pytest.approx(940883812.90)


def test_reference_row_refuses_another_layer(eyeriss):
    with pytest.raises(ValueError, match="computes 149520384 != MACs"):
        to_reference_row(eyeriss, CONV3.replace(d=256), "eyeriss_like", 65536)
    with pytest.raises(ValueError, match="M must be"):
        to_reference_row(eyeriss, CONV3, "eyeriss_like", 0)


def test_read_timeloop_dir(tmp_path):
    (tmp_path / "timeloop-mapper.stats.txt").write_text(SIMBA.read_text())
    row = read_timeloop_dir(tmp_path, CONV3, "simba_like", 32768)
    assert row["dram_words_X"] == 57600 and row["cycles"] == 2336256
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="found 0: none"):
        read_timeloop_dir(empty, CONV3, "x", 1)


# ----- mapping ---------------------------------------------------------------------------------

def test_map_file():
    levels = read_timeloop_map(EYERISS_MAP)
    assert [lv.name for lv in levels] == ["DRAM", "shared_glb", "DummyBuffer", "ifmap_spad",
                                          "weights_spad", "psum_spad"]
    assert levels[0].tiles == {"Weights": 884736, "Inputs": 57600, "Outputs": 64896}
    assert levels[2].tiles == {}
    spatial = [(l.dim, l.extent, l.spatial) for lv in levels for l in lv.loops if l.spatial]
    assert spatial == [("Q", 13, "Spatial-X"), ("C", 4, "Spatial-Y"), ("S", 3, "Spatial-Y")]
    # the product of every loop bound per dimension is the layer's extent
    prod = {}
    for lv in levels:
        for l in lv.loops:
            prod[l.dim] = prod.get(l.dim, 1) * l.extent
    assert prod == {"M": 384, "C": 256, "P": 13, "Q": 13, "R": 3, "S": 3}
    text = loop_nest_text(levels)
    assert text.splitlines()[1] == "for M in [0:2)" and text.splitlines()[-1].strip() == "for M in [0:16)"


# ----- malformed input --------------------------------------------------------------------------

def _without(text: str, pattern: str) -> str:
    out = re.sub(pattern, "", text, count=1, flags=re.M)
    assert out != text
    return out


@pytest.mark.parametrize("pattern, message", [
    (r"^Energy: .*\n", r"Summary Stats: missing 'Energy'"),
    (r"^Computes = .*\n", r"missing 'Computes = N'"),
    (r"^Summary Stats\n(.|\n)*", r"no 'Summary Stats' section"),
    (r"^Buffer and Arithmetic Levels\n", r"not a Timeloop stats file"),
    (r"^ +Computes \(total\) .*\n", r"no arithmetic level"),
])
def test_malformed_file(tmp_path, pattern, message):
    bad = tmp_path / "broken.stats.txt"
    bad.write_text(_without(EYERISS.read_text(), pattern))
    with pytest.raises(ValueError, match=message) as exc:
        read_timeloop_stats(bad)
    assert str(bad) in str(exc.value)


def test_malformed_dataspace_names_level_and_dataspace(tmp_path):
    text = EYERISS.read_text()
    i = text.index("=== DRAM ===")
    broken = text[:i] + re.sub(r"^ +Scalar updates \(per-instance\) +: 64896\n", "", text[i:], count=1, flags=re.M)
    assert len(broken) < len(text)
    with pytest.raises(ValueError, match=r"Level 6 \(DRAM\), Outputs: missing 'Scalar updates \(per-instance\)'"):
        parse_timeloop_stats(broken, source="x.stats.txt")
    with pytest.raises(ValueError, match="Energy \\(total\\): expected '<number> <unit>'"):
        parse_timeloop_stats(text.replace("Energy (total)          : 328997176.93 pJ",
                                          "Energy (total)          : lots"), source="y")
    with pytest.raises(ValueError, match="no such Timeloop stats file"):
        read_timeloop_stats(DATA / "missing.stats.txt")
