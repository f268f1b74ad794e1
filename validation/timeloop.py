"""Read Timeloop/Accelergy statistics (timeloop-mapper.stats.txt, timeloop-model.stats.txt).

Timeloop prints, per architecture level, the arithmetic or storage statistics
(per-dataspace scalar reads, fills and updates, energies), then the networks, then
a summary (cycles, total energy in uJ, and energy per compute, per level, in fJ).
This module turns that text into frozen dataclasses and into one row of the
reference-energy CSV (validation/reference_data.py), so Timeloop results can be
validated like any other backend's.  What each number means is in docs/timeloop.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from complexity.layer import Layer

__all__ = ["DataspaceStats", "LevelStats", "TimeloopStats", "Loop", "MapLevel",
           "read_timeloop_stats", "parse_timeloop_stats", "read_timeloop_map", "parse_timeloop_map",
           "loop_nest_text", "timeloop_problem",
           "to_reference_row", "read_timeloop_dir", "DATASPACE_TENSOR"]

#: Timeloop's convolution dataspaces -> the model's tensors (X inputs, W weights, Y outputs).
DATASPACE_TENSOR = {"Inputs": "X", "Weights": "W", "Outputs": "Y"}

_UNIT_PJ = {"fJ": 1e-3, "pJ": 1.0, "nJ": 1e3, "uJ": 1e6, "mJ": 1e9, "J": 1e12}
_KEY_VALUE = re.compile(r"^(?P<indent> *)(?P<key>[^:=]+?)\s*:\s*(?P<value>.*?)\s*$")
_DATASPACE = re.compile(r"^ {4}(?P<name>[A-Za-z_]\w*):\s*$")
_LOOP = re.compile(r"for (?P<dim>\w+) in \[(?P<lo>-?\d+):(?P<hi>-?\d+)\)(?: \((?P<spatial>[^)]*)\))?")


# ----- data -------------------------------------------------------------------------

@dataclass(frozen=True)
class DataspaceStats:
    """One dataspace (Weights, Inputs, Outputs) at one storage level.

    ``reads``, ``fills``, ``updates`` are Timeloop's per-instance scalar counts;
    the ``total_*`` properties multiply by the utilized instances, as Timeloop does
    for its ``Energy (total)``.
    """

    name: str
    reads: int
    fills: int
    updates: int
    instances: int
    energy_pJ: float
    partition_size: int | None = None
    utilized_capacity: int | None = None

    @property
    def total_reads(self) -> int:
        return self.reads * self.instances

    @property
    def total_fills(self) -> int:
        return self.fills * self.instances

    @property
    def total_updates(self) -> int:
        return self.updates * self.instances

    @property
    def total_accesses(self) -> int:
        """Scalar reads + fills + updates over all instances (words moved in or out)."""
        return self.total_reads + self.total_fills + self.total_updates


@dataclass(frozen=True)
class LevelStats:
    """One level of the architecture: the arithmetic units or a storage level.

    ``energy_pJ`` is the level's energy over all instances: for the arithmetic level
    its ``Energy (total)``; for a storage level the sum over its dataspaces of
    ``Energy (total)``, temporal-reduction and address-generation energies (what the
    summary's fJ/Compute row of the level is made of).
    """

    index: int
    name: str
    kind: str  # "arithmetic" or "storage"
    energy_pJ: float
    cycles: int
    instances: int           # hardware instances (SPECS "Instances")
    utilized_instances: int  # instances the mapping uses (max over dataspaces for storage)
    dataspaces: dict[str, DataspaceStats] = field(default_factory=dict)
    computes: int | None = None
    technology: str | None = None
    loops: tuple[str, ...] = ()
    size: int | None = None              # SPECS "Size": words per instance (None: "-", unbounded)
    word_bits: int | None = None         # SPECS "Word bits"
    block_size: int | None = None        # SPECS "Block size": words per vector access
    vector_access_energy_pJ: float | None = None  # SPECS "Vector access energy" (storage levels)
    compute_energy_pJ: float | None = None        # SPECS "Compute energy" (the arithmetic level)


@dataclass(frozen=True)
class TimeloopStats:
    """Everything the reader recovers from one Timeloop stats file.

    ``levels`` maps level name to LevelStats, innermost (the arithmetic level)
    first, DRAM (the outermost storage level) last.  ``fj_per_compute`` is the
    summary table, networks and ``Total`` included.
    """

    source: str
    total_energy_pJ: float       # the summary's "Energy: ... uJ", in pJ (printed to 0.01 uJ)
    cycles: int
    computes: int
    levels: dict[str, LevelStats]
    fj_per_compute: dict[str, float]
    network_energy_pJ: float = 0.0
    utilization: float | None = None

    @property
    def arithmetic(self) -> LevelStats:
        return next(lv for lv in self.levels.values() if lv.kind == "arithmetic")

    @property
    def dram(self) -> LevelStats:
        """The outermost storage level (DRAM in Timeloop's example designs)."""
        return [lv for lv in self.levels.values() if lv.kind == "storage"][-1]

    @property
    def energy_sum_pJ(self) -> float:
        """Sum of every level's and network's energy: the total at the per-entry 0.01 pJ precision."""
        # rounded to the 0.01 pJ Timeloop prints, dropping float summation noise
        return round(sum(lv.energy_pJ for lv in self.levels.values()) + self.network_energy_pJ, 2)

    @property
    def energy_mac_pJ(self) -> float:
        return self.arithmetic.energy_pJ

    @property
    def energy_dram_pJ(self) -> float:
        return self.dram.energy_pJ

    @property
    def dram_words(self) -> dict[str, int]:
        """Words moved across the DRAM interface per dataspace: reads + fills + updates at DRAM.

        Reads are words DRAM sends down (including partial sums read back); updates
        are words written into DRAM from below (outputs, partial or final); fills
        are words written into DRAM from above (zero for the outermost level).
        """
        return {name: ds.total_accesses for name, ds in self.dram.dataspaces.items()}

    @property
    def dram_words_total(self) -> int:
        return sum(self.dram_words.values())


@dataclass(frozen=True)
class Loop:
    """One loop of a mapping: ``for dim in [start:end)``, spatial ("Spatial-X"/"Spatial-Y") or temporal (None)."""

    dim: str
    start: int
    end: int
    spatial: str | None = None

    @property
    def extent(self) -> int:
        return self.end - self.start

    def __str__(self) -> str:
        return f"for {self.dim} in [{self.start}:{self.end})" + (f" ({self.spatial})" if self.spatial else "")


@dataclass(frozen=True)
class MapLevel:
    """One level of a .map.txt mapping: its name, the tile size it keeps per dataspace, its loops."""

    name: str
    tiles: dict[str, int]
    loops: tuple[Loop, ...]


# ----- parsing helpers ----------------------------------------------------------------

def _number(text: str, what: str, source: str) -> float:
    """The leading number of a Timeloop value ("958464", "328997176.93 pJ", "168 (14*12)")."""
    token = text.split()[0] if text.split() else ""
    try:
        return float(token)
    except ValueError:
        raise ValueError(f"{source}: {what}: expected a number, got {text!r}") from None


def _integer(text: str, what: str, source: str) -> int:
    v = _number(text, what, source)
    if v != int(v):
        raise ValueError(f"{source}: {what}: expected an integer, got {text!r}")
    return int(v)


def _energy_pJ(text: str, what: str, source: str) -> float:
    parts = text.split()
    if len(parts) != 2 or parts[1] not in _UNIT_PJ:
        raise ValueError(f"{source}: {what}: expected '<number> <unit>' with unit in "
                         f"{'/'.join(_UNIT_PJ)}, got {text!r}")
    return _number(parts[0], what, source) * _UNIT_PJ[parts[1]]


def _require(d: dict, key: str, where: str, source: str) -> str:
    if key not in d:
        raise ValueError(f"{source}: {where}: missing '{key}'")
    return d[key]


def _split_sections(lines: list[str], source: str) -> tuple[list[str], list[str], list[str]]:
    """The level, network and summary parts of a stats file."""
    def find(title: str) -> int | None:
        return next((i for i, ln in enumerate(lines) if ln.strip() == title), None)

    i_levels, i_summary = find("Buffer and Arithmetic Levels"), find("Summary Stats")
    if i_levels is None:
        raise ValueError(f"{source}: not a Timeloop stats file: no 'Buffer and Arithmetic Levels' section")
    if i_summary is None:
        raise ValueError(f"{source}: no 'Summary Stats' section (truncated file?)")
    i_networks = find("Networks")
    i_oi = find("Operational Intensity Stats")
    end_levels = min(i for i in (i_networks, i_oi, i_summary) if i is not None)
    networks = lines[i_networks:(i_oi or i_summary)] if i_networks is not None else []
    return lines[i_levels + 2:end_levels], networks, lines[i_summary + 2:]


def _parse_level(index: int, block: list[str], source: str) -> LevelStats:
    where = f"Level {index}"
    name_line = next((ln for ln in block if ln.startswith("=== ")), None)
    if name_line is None:
        raise ValueError(f"{source}: {where}: missing its '=== name ===' line")
    name = name_line.strip().strip("=").strip()
    where = f"Level {index} ({name})"
    section, specs, stats, loops = None, {}, {}, []
    spaces: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for ln in block:
        s = ln.strip()
        if s in ("SPECS", "MAPPING", "STATS"):
            section, current = s, None
            continue
        if not s or set(s) == {"-"} or s.startswith("==="):
            continue
        if section == "MAPPING":
            if s.startswith("for "):
                loops.append(s)
            continue
        if section == "STATS" and (m := _DATASPACE.match(ln)):
            current = spaces.setdefault(m["name"], {})
            continue
        m = _KEY_VALUE.match(ln)
        if m is None:
            continue
        target = specs if section == "SPECS" else (current if current is not None else stats)
        target.setdefault(m["key"], m["value"])
    if section is None or "STATS" not in {ln.strip() for ln in block}:
        raise ValueError(f"{source}: {where}: missing its STATS part")
    cycles = _integer(_require(stats, "Cycles", where, source), f"{where}: Cycles", source)
    instances = _integer(specs["Instances"], f"{where}: Instances", source) if "Instances" in specs else 1

    def spec_int(key):
        v = specs.get(key)
        return None if v is None or v.strip() in ("", "-") else _integer(v, f"{where}: {key}", source)

    def spec_energy(key):
        v = specs.get(key)
        return None if v is None or v.strip() in ("", "-") else _energy_pJ(v, f"{where}: {key}", source)
    spec = dict(size=spec_int("Size"), word_bits=spec_int("Word bits"), block_size=spec_int("Block size"),
                vector_access_energy_pJ=spec_energy("Vector access energy"),
                compute_energy_pJ=spec_energy("Compute energy"))
    if "Computes (total)" in stats:  # the arithmetic level
        return LevelStats(
            index=index, name=name, kind="arithmetic",
            energy_pJ=_energy_pJ(_require(stats, "Energy (total)", where, source), f"{where}: Energy (total)", source),
            cycles=cycles, instances=instances,
            utilized_instances=_integer(_require(stats, "Utilized instances", where, source),
                                        f"{where}: Utilized instances", source),
            computes=_integer(stats["Computes (total)"], f"{where}: Computes (total)", source),
            loops=tuple(loops), **spec)
    dataspaces, energy = {}, 0.0
    for ds, kv in spaces.items():
        w = f"{where}, {ds}"
        def get(key, w=w, kv=kv):
            return _require(kv, key, w, source)
        inst = _integer(get("Utilized instances (max)"), f"{w}: Utilized instances (max)", source)
        e = _energy_pJ(get("Energy (total)"), f"{w}: Energy (total)", source)
        for extra in ("Temporal Reduction Energy (total)", "Address Generation Energy (total)"):
            if extra in kv:
                energy += _energy_pJ(kv[extra], f"{w}: {extra}", source)
        energy += e
        dataspaces[ds] = DataspaceStats(
            name=ds,
            reads=_integer(get("Scalar reads (per-instance)"), f"{w}: Scalar reads", source),
            fills=_integer(get("Scalar fills (per-instance)"), f"{w}: Scalar fills", source),
            updates=_integer(get("Scalar updates (per-instance)"), f"{w}: Scalar updates", source),
            instances=inst, energy_pJ=e,
            partition_size=_integer(kv["Partition size"], f"{w}: Partition size", source) if "Partition size" in kv else None,
            utilized_capacity=(_integer(kv["Utilized capacity"], f"{w}: Utilized capacity", source)
                               if "Utilized capacity" in kv else None))
    return LevelStats(index=index, name=name, kind="storage", energy_pJ=energy, cycles=cycles,
                      instances=instances,
                      utilized_instances=max((ds.instances for ds in dataspaces.values()), default=0),
                      dataspaces=dataspaces,
                      technology=specs.get("Technology"), loops=tuple(loops), **spec)


def _network_energy(lines: list[str], source: str) -> float:
    total = 0.0
    for ln in lines:
        m = _KEY_VALUE.match(ln)
        if m and m["key"] in ("Energy (total)", "Link transfer energy (total)",
                              "Spatial Reduction Energy (total)"):
            total += _energy_pJ(m["value"], f"Networks: {m['key']}", source)
    return total


# ----- public readers ----------------------------------------------------------------

def parse_timeloop_stats(text: str, source: str = "<timeloop stats>") -> TimeloopStats:
    """Parse the text of a timeloop-mapper/-model stats file; ``source`` names it in errors."""
    lines = text.splitlines()
    level_lines, network_lines, summary = _split_sections(lines, source)

    starts = [i for i, ln in enumerate(level_lines) if re.fullmatch(r"Level \d+", ln.strip())]
    if not starts:
        raise ValueError(f"{source}: no 'Level N' block in 'Buffer and Arithmetic Levels'")
    levels: dict[str, LevelStats] = {}
    for k, i in enumerate(starts):
        block = level_lines[i:(starts[k + 1] if k + 1 < len(starts) else len(level_lines))]
        lv = _parse_level(int(level_lines[i].split()[1]), block, source)
        levels[lv.name] = lv
    kinds = [lv.kind for lv in levels.values()]
    if "arithmetic" not in kinds:
        raise ValueError(f"{source}: no arithmetic level (a level with 'Computes (total)')")
    if "storage" not in kinds:
        raise ValueError(f"{source}: no storage level")

    top, table, in_table = {}, {}, False
    computes = None
    for ln in summary:
        s = ln.strip()
        if s.startswith("Computes ="):
            computes = _integer(s.split("=", 1)[1].strip(), "Summary Stats: Computes", source)
            continue
        if s == "fJ/Compute":
            in_table = True
            continue
        if in_table and "=" in s:
            key, value = (p.strip() for p in s.rsplit("=", 1))
            table[key] = _number(value, f"fJ/Compute: {key}", source)
        elif (m := _KEY_VALUE.match(ln)) and not in_table:
            top[m["key"]] = m["value"]
    where = "Summary Stats"
    total = _energy_pJ(_require(top, "Energy", where, source), f"{where}: Energy", source)
    cycles = _integer(_require(top, "Cycles", where, source), f"{where}: Cycles", source)
    if computes is None:
        raise ValueError(f"{source}: {where}: missing 'Computes = N'")
    if not table:
        raise ValueError(f"{source}: {where}: missing the 'fJ/Compute' table")
    util = _number(top["Utilization"], f"{where}: Utilization", source) if "Utilization" in top else None
    return TimeloopStats(source=source, total_energy_pJ=total, cycles=cycles, computes=computes,
                         levels=levels, fj_per_compute=table,
                         network_energy_pJ=_network_energy(network_lines, source), utilization=util)


def read_timeloop_stats(path: str | Path) -> TimeloopStats:
    """Read a timeloop-mapper.stats.txt or timeloop-model.stats.txt file."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{p}: no such Timeloop stats file")
    return parse_timeloop_stats(p.read_text(), source=str(p))


def parse_timeloop_map(text: str, source: str = "<timeloop map>") -> tuple[MapLevel, ...]:
    """Parse a .map.txt mapping: levels outermost first, each with its tiles and loops."""
    out: list[MapLevel] = []
    header = re.compile(r"^(?P<name>\S+) \[(?P<tiles>[^\]]*)\]\s*$")
    name, tiles, loops = None, {}, []
    for ln in text.splitlines():
        if m := header.match(ln):
            if name is not None:
                out.append(MapLevel(name, tiles, tuple(loops)))
            name, loops = m["name"], []
            tiles = {t: int(n) for t, n in re.findall(r"(\w+):(\d+)", m["tiles"])}
        elif ln.lstrip().startswith("|") and (lm := _LOOP.search(ln)):
            if name is None:
                raise ValueError(f"{source}: a loop before any level header: {ln.strip()!r}")
            loops.append(Loop(lm["dim"], int(lm["lo"]), int(lm["hi"]), lm["spatial"]))
    if name is None:
        raise ValueError(f"{source}: no mapping level ('NAME [ Dataspace:size ... ]' line)")
    out.append(MapLevel(name, tiles, tuple(loops)))
    return tuple(out)


def read_timeloop_map(path: str | Path) -> tuple[MapLevel, ...]:
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{p}: no such Timeloop map file")
    return parse_timeloop_map(p.read_text(), source=str(p))


def loop_nest_text(mapping: tuple[MapLevel, ...]) -> str:
    """The mapping as an indented loop nest, one level header per storage level."""
    lines, depth = [], 0
    for lv in mapping:
        tiles = " ".join(f"{k}:{v}" for k, v in lv.tiles.items())
        lines.append("  " * depth + f"# {lv.name}" + (f" [{tiles}]" if tiles else ""))
        for loop in lv.loops:
            lines.append("  " * depth + str(loop))
            depth += 1
    return "\n".join(lines)


def timeloop_problem(layer: Layer) -> Layer:
    """The layer Timeloop actually simulates for ``layer``: unpadded, on its (P-1)*stride + R input.

    Timeloop's convolution workload has no padding: its input dataspace spans
    (P-1)*Hstride + R rows, so padding zeros are input words it stores and moves.
    Same outputs, weights and MACs as ``layer``; |X| counts the halo.
    """
    return layer.replace(h=(layer.nh - 1) * layer.sh + layer.kh, w=(layer.nw - 1) * layer.sw + layer.kw,
                         ph=0, pw=0)


def to_reference_row(stats: TimeloopStats, layer: Layer, platform: str, M: int, *,
                     check_computes: bool = True, **provenance) -> dict:
    """One row of the reference-energy CSV (validation/reference_data.py) from a Timeloop run.

    ``energy_pJ`` is the sum of the per-level energies (0.01 pJ precision; the
    summary's uJ figure agrees within its rounding); ``energy_dram_pJ`` and the
    ``dram_words*`` columns are the outermost storage level's.  ``provenance``
    (e.g. tool_version, settings, date, network) is copied into the row.  With
    ``check_computes``, a layer whose MAC count differs from Timeloop's computes
    is refused: the stats are not for that layer.
    """
    if check_computes and stats.computes != layer.F:
        raise ValueError(f"{stats.source}: Timeloop computes {stats.computes} != MACs {layer.F} of layer "
                         f"{layer.describe()}: the stats are not for this layer")
    if isinstance(M, bool) or not isinstance(M, int) or M < 1:
        raise ValueError(f"M must be a positive number of words, got {M!r}")
    words = stats.dram_words
    row = {"platform": platform}
    row.update({k: getattr(layer, k) for k in ("b", "c", "d", "h", "w", "kh", "kw", "sh", "sw", "ph", "pw", "groups")})
    row.update({
        "M": M,
        "energy_pJ": stats.energy_sum_pJ,
        "layer_name": layer.name,
        "energy_mac_pJ": stats.energy_mac_pJ,
        "energy_dram_pJ": stats.energy_dram_pJ,
        "dram_words": stats.dram_words_total,
        "cycles": stats.cycles,
        "tool": "timeloop",
    })
    for ds, tensor in DATASPACE_TENSOR.items():
        row[f"dram_words_{tensor}"] = words.get(ds, 0)
    row.update(provenance)
    return row


def read_timeloop_dir(path: str | Path, layer: Layer, platform: str, M: int, **provenance) -> dict:
    """The reference row of a Timeloop output directory.

    Reads ``timeloop-mapper.stats.txt``, else ``timeloop-model.stats.txt``, else the
    directory's only ``*.stats.txt``.
    """
    d = Path(path)
    if not d.is_dir():
        raise ValueError(f"{d}: no such directory")
    for name in ("timeloop-mapper.stats.txt", "timeloop-model.stats.txt"):
        if (d / name).is_file():
            return to_reference_row(read_timeloop_stats(d / name), layer, platform, M, **provenance)
    found = sorted(d.glob("*.stats.txt"))
    if len(found) != 1:
        raise ValueError(f"{d}: expected timeloop-mapper.stats.txt, timeloop-model.stats.txt or a single "
                         f"*.stats.txt, found {len(found)}: {', '.join(p.name for p in found) or 'none'}")
    return to_reference_row(read_timeloop_stats(found[0]), layer, platform, M, **provenance)
