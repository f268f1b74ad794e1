"""Architectures (complexity.architecture) from real accelerator descriptions.

Two importers build the memory hierarchy the hierarchy-aware bound needs:

* ``zigzag_architecture(platform)``: a bundled ZigZag platform (validation/platforms),
  one level per memory of its hardware YAML after two implicit one-word registers per MAC
  (one for inputs, one for weights) that model ZigZag's operand stationarity at the MACs;
* ``timeloop_architecture(stats_path)``: a Timeloop/Accelergy ``*.stats.txt``, one
  level per storage level that keeps data.

Per-word energies are chosen so that the energy the bound charges for a word moved is
never above what the estimator charges for it (docs/architecture.md, with the evidence
from the bundled data).  ``get_architecture(spec)`` resolves a bundled name or a file.
"""

from __future__ import annotations

import hashlib
import math
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

from complexity.architecture import OPERANDS, Architecture, ArchitectureError, Level, load_architecture

__all__ = ["architecture_names", "architecture_descriptions", "get_architecture", "zigzag_architecture",
           "zigzag_port_energies", "timeloop_architecture", "timeloop_read_write_energies",
           "MAC_REGISTERS", "ZIGZAG_OPERANDS"]

#: ZigZag's memory operands -> the model's tensors.
ZIGZAG_OPERANDS = {"I1": "X", "I2": "W", "O": "Y"}

#: Names of the implicit per-MAC operand registers of the ZigZag importer (inputs, weights).
MAC_REGISTERS = {"X": "mac_register_X", "W": "mac_register_W"}

# ZigZag port allocation directions: tl / th read the memory (to low / to high),
# fh / fl write it (from high / from low).
_READ_DIRS = ("tl", "th")
_WRITE_DIRS = ("fh", "fl")


def _sha256_prefix(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


@lru_cache(maxsize=1)
def _zigzag_version() -> str:
    """The installed zigzag-dse version (as importlib.metadata.version gives it).

    Read from the METADATA of the one ``zigzag_dse-*.dist-info`` next to the imported
    package when there is exactly one (importing importlib.metadata costs more than the
    rest of an architecture), else from importlib.metadata.
    """
    try:
        import zigzag
        found = list(Path(zigzag.__file__).resolve().parent.parent.glob("zigzag_dse-*.dist-info"))
        if len(found) == 1:
            with open(found[0] / "METADATA", encoding="utf-8") as fh:
                for line in fh:
                    if line.startswith("Version:"):
                        return line.split(":", 1)[1].strip()
                    if not line.strip():
                        break
    except (ImportError, OSError, TypeError):
        pass
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("zigzag-dse")
    except PackageNotFoundError:  # pragma: no cover - zigzag is a dependency
        return "unknown"


# ----- ZigZag -------------------------------------------------------------------------

def zigzag_port_energies(memory: dict, bits: int, name: str = "memory") -> dict[str, tuple[float, float]]:
    """Per-word (read, write) energy in pJ of each operand a ZigZag memory holds.

    ZigZag (cost_model.CostModelEvaluation._calc_memory_access) counts
    ``ceil(words * bits / bandwidth_min) * bandwidth_min / bandwidth_max`` accesses per
    transfer period on the port allocated to the operand and direction, and charges
    ``r_cost`` (read) or ``w_cost`` (write) per access: at least
    ``cost * bits / bandwidth_max`` per word.  Where several ports serve the same
    operand and direction, the widest (cheapest per word) is taken, so the result is
    a lower bound on ZigZag's charge per word.
    """
    widest: dict[tuple[str, str], int] = {}
    for port in memory.get("ports") or ():
        bw = int(port["bandwidth_max"])
        for alloc in port.get("allocation") or ():
            op, direction = (s.strip() for s in str(alloc).split(","))
            widest[(op, direction)] = max(widest.get((op, direction), 0), bw)
    out = {}
    for op in memory["operands"]:
        if op not in ZIGZAG_OPERANDS:
            raise ArchitectureError(f"{name}.operands", f"unknown ZigZag operand {op!r}")
        rd = max((widest.get((op, d), 0) for d in _READ_DIRS), default=0)
        wr = max((widest.get((op, d), 0) for d in _WRITE_DIRS), default=0)
        if rd == 0 or wr == 0:
            raise ArchitectureError(f"{name}.ports", f"no {'read' if rd == 0 else 'write'} port for operand {op}")
        out[ZIGZAG_OPERANDS[op]] = (float(memory["r_cost"]) * bits / rd, float(memory["w_cost"]) * bits / wr)
    return out


def _hardware_data(plat) -> dict:
    """``plat.hardware_data()``, parsed by libyaml's safe loader when PyYAML has it (the same
    document, several times faster than the pure-Python loader; every bundled file checked)."""
    import yaml
    loader = getattr(yaml, "CSafeLoader", None)
    if loader is None or not hasattr(plat, "hardware_path"):
        return plat.hardware_data()
    return yaml.load(Path(plat.hardware_path).read_text(), Loader=loader)


class _Parsed:
    """A platform whose hardware description is parsed already: onchip_memories reads it from here
    instead of parsing the file once more (it only reads the data)."""

    def __init__(self, plat, data: dict):
        self._plat, self._data = plat, data

    def hardware_data(self) -> dict:
        return self._data

    def __getattr__(self, name):
        return getattr(self._plat, name)


def zigzag_architecture(platform, buffer_words: int | None = None) -> Architecture:
    """The hierarchy of a bundled ZigZag platform (a name or a validation.platforms.Platform).

    Levels: ``mac_register_X`` and ``mac_register_W`` (one word per MAC each, free: ZigZag
    keeps an input or a weight in the MAC while the innermost loops do not change it, but
    updates every partial sum in the innermost memory holding outputs, which is therefore
    the level MACs read Y from), then every memory of the
    hardware file innermost first, DRAM last.  Capacities are words of ``platform.bits``
    per instance, instances ZigZag's unroll count (validation.platforms.onchip_memories,
    the Buffer memory resized to ``buffer_words``); energies per word from the ports
    (zigzag_port_energies).  ``bypass`` is False: ZigZag moves an operand through every
    memory that holds it, level by level.
    """
    from validation.platforms import PlatformError, get_platform, onchip_memories
    try:
        plat = get_platform(platform) if isinstance(platform, str) else platform
        data = _hardware_data(plat)
        parts = onchip_memories(_Parsed(plat, data), buffer_words)
    except PlatformError as exc:
        raise ArchitectureError("platform" if "platform" in str(exc) else "buffer_words",
                                str(exc).split(": ", 1)[-1]) from None
    mems = data["memories"]
    arr = data["operational_array"]
    macs = math.prod(int(s) for s in arr["sizes"])
    levels = [Level(MAC_REGISTERS[t], 1, macs, (t,), MappingProxyType({t: 0.0}), MappingProxyType({t: 0.0}))
              for t in ("X", "W")]
    names = list(mems)
    for name in names:
        mem = mems[name]
        energies = zigzag_port_energies(mem, plat.bits, name)
        ops = tuple(t for t in OPERANDS if t in energies)
        read = MappingProxyType({t: energies[t][0] for t in ops})
        write = MappingProxyType({t: energies[t][1] for t in ops})
        if name == names[-1]:
            levels.append(Level(name, None, 1, ops, read, write))
        else:
            bits, count, _ = parts[name]
            levels.append(Level(name, bits // plat.bits, count, ops, read, write))
    if set(levels[-1].operands) != set(OPERANDS):
        raise ArchitectureError(f"{names[-1]}.operands", "ZigZag's last memory must hold I1, I2 and O (DRAM)")
    hw = plat.hardware_path
    resized = "" if buffer_words is None else f"; {plat.buffer_memory} resized to {int(buffer_words)} words"
    source = f"zigzag-dse {_zigzag_version()}; hardware {hw.name} sha256:{_sha256_prefix(hw)}{resized}"
    return Architecture(
        name=plat.name, word_bits=plat.bits, levels=tuple(levels), mac_pJ=float(arr["unit_energy"]), macs=macs,
        mac_reads=MappingProxyType({**MAC_REGISTERS, "Y": next(lv.name for lv in levels if "Y" in lv.operands)}),
        bypass=False,
        description=plat.description, source=source)


# ----- Timeloop -----------------------------------------------------------------------

def timeloop_read_write_energies(level) -> dict[str, tuple[float, float]]:
    """Per-scalar (read, write) energy in pJ of each dataspace a Timeloop storage level keeps.

    Timeloop charges each read with its ERT read energy and each fill or update with
    its write energy (one table per level, BufferLevel::ComputeBufferEnergy), but the
    stats print only their average per dataspace, ``Energy / (reads + fills + updates)``.
    With E_d = r R_d + w W_d for every dataspace d of the level (R reads, W fills +
    updates, all instances), r and w are recovered when the equations determine them:
    a least-squares solve when they have rank 2 (exact to the printed precision), else
    from read-only / write-only dataspaces; a dataspace left undetermined gets its
    average for both (exact for the counts of the file's own mapping).
    """
    eqs = {}
    for ds, st in level.dataspaces.items():
        t = _timeloop_tensor(ds, level.name)
        R, W = st.total_reads, st.total_fills + st.total_updates
        if R + W > 0:
            eqs[t] = (float(R), float(W), float(st.energy_pJ))
    if not eqs:
        return {}
    rows = list(eqs.values())
    r = w = None
    if len(rows) >= 2:
        import numpy as np
        A = np.array([[R, W] for R, W, _ in rows])
        b = np.array([E for _, _, E in rows])
        if np.linalg.matrix_rank(A / np.abs(A).max(axis=1, keepdims=True)) == 2:
            sol, *_ = np.linalg.lstsq(A, b, rcond=None)
            resid = np.abs(A @ sol - b) / np.maximum(b, 1e-300)
            if sol.min() >= 0 and resid.max() <= 1e-3:
                r, w = float(sol[0]), float(sol[1])
    if r is None:
        ro = [E / R for R, W, E in rows if W == 0]
        wo = [E / W for R, W, E in rows if R == 0]
        r = min(ro) if ro else None
        w = min(wo) if wo else None
        mixed = [(R, W, E) for R, W, E in rows if R > 0 and W > 0]
        if r is not None and w is None and mixed:
            w = max(0.0, min((E - R * r) / W for R, W, E in mixed))
        elif w is not None and r is None and mixed:
            r = max(0.0, min((E - W * w) / R for R, W, E in mixed))
        if r is not None or w is not None:
            r = w if r is None else r
            w = r if w is None else w
    out = {}
    for t, (R, W, E) in eqs.items():
        rw = (r, w) if r is not None else (E / (R + W),) * 2
        out[t] = tuple(float(f"{x:.9g}") for x in rw)  # the stats carry ~9 significant digits
    return out


def _timeloop_tensor(dataspace: str, level: str) -> str:
    from validation.timeloop import DATASPACE_TENSOR
    if dataspace not in DATASPACE_TENSOR:
        raise ArchitectureError(f"{level}.{dataspace}", f"unknown Timeloop dataspace; "
                                                        f"known: {', '.join(DATASPACE_TENSOR)}")
    return DATASPACE_TENSOR[dataspace]


def timeloop_architecture(stats_path) -> Architecture:
    """The hierarchy a Timeloop/Accelergy ``*.stats.txt`` describes.

    One level per storage level that keeps at least one dataspace (dummy buffers and
    size-0 levels are left out), innermost first, DRAM (the outermost) last: SPECS
    Size (words of that level) and Instances, the dataspaces it keeps as operands,
    per-word read/write energies from timeloop_read_write_energies.  MACs: the
    arithmetic level's instances, energy = Energy (total) / Computes (total);
    mac_reads: the innermost level keeping each operand.  ``word_bits`` is the
    arithmetic level's word width.  ``bypass`` is False: the operands of a level are the
    dataspaces the file's mapping keeps there, and Timeloop moves a dataspace between
    consecutive levels keeping it.
    """
    from validation.timeloop import read_timeloop_stats
    p = Path(stats_path)
    try:
        stats = read_timeloop_stats(p)
    except ValueError as exc:
        raise ArchitectureError("file", str(exc)) from None
    arith = stats.arithmetic
    storage = [lv for lv in stats.levels.values() if lv.kind == "storage"]
    levels, skipped = [], []
    for i, lv in enumerate(storage):
        last = i == len(storage) - 1
        energies = timeloop_read_write_energies(lv)
        if not energies or (lv.size == 0 and not last):
            skipped.append(lv.name)
            continue
        ops = tuple(t for t in OPERANDS if t in energies)
        read = MappingProxyType({t: energies[t][0] for t in ops})
        write = MappingProxyType({t: energies[t][1] for t in ops})
        if not last and lv.size is None:
            raise ArchitectureError(f"{lv.name}.Size", "an on-chip level without a size")
        levels.append(Level(lv.name, None if last else lv.size, 1 if last else lv.instances, ops, read, write))
    if len(levels) < 2:
        raise ArchitectureError("levels", f"{p.name}: fewer than two storage levels keep data")
    if set(levels[-1].operands) != set(OPERANDS):
        raise ArchitectureError(f"{levels[-1].name}.operands", "the outermost level (DRAM) must keep "
                                                               "Inputs, Weights and Outputs")
    mac_reads = {}
    for t in OPERANDS:
        mac_reads[t] = next(lv.name for lv in levels if t in lv.operands)
    if mac_reads and any(v == levels[-1].name for v in mac_reads.values()):
        mac_reads = {t: v for t, v in mac_reads.items() if v != levels[-1].name}
    word_bits = arith.word_bits or next((lv.word_bits for lv in storage if lv.word_bits), 16)
    mac_pJ = arith.energy_pJ / arith.computes if arith.computes else (arith.compute_energy_pJ or 0.0)
    mac_pJ = float(f"{mac_pJ:.9g}")
    desc = f"imported from Timeloop statistics {p.name}"
    if skipped:
        desc += f" (left out, keeping no data: {', '.join(skipped)})"
    return Architecture(
        name=p.name.split(".")[0], word_bits=int(word_bits), levels=tuple(levels), mac_pJ=float(mac_pJ),
        macs=arith.instances, mac_reads=MappingProxyType(mac_reads) if mac_reads else None, bypass=False,
        description=desc, source=f"timeloop stats {p.name} sha256:{_sha256_prefix(p)}")


# ----- lookup -----------------------------------------------------------------------

def architecture_names() -> tuple[str, ...]:
    """The bundled architectures: the ZigZag platforms of validation.platforms."""
    from validation.platforms import platform_names
    return platform_names()


def architecture_descriptions() -> dict[str, str]:
    from validation.platforms import PLATFORMS
    return {name: p.description for name, p in PLATFORMS.items()}


def get_architecture(spec: str, buffer_words: int | None = None) -> Architecture:
    """A bundled platform name, a .yaml/.yml/.json architecture file or a Timeloop *.stats.txt.

    ``buffer_words`` resizes a bundled platform's Buffer memory; files are taken as
    they are.  Anything else raises ArchitectureError listing the bundled names.
    """
    spec = str(spec)
    if spec in architecture_names():
        return zigzag_architecture(spec, buffer_words)
    p = Path(spec)
    lower = p.name.lower()
    kind = ("timeloop" if lower.endswith(".txt") else
            "file" if p.suffix.lower() in (".yaml", ".yml", ".json") else None)
    if kind is None or not p.exists():
        raise ArchitectureError("arch", f"{spec!r} is neither a bundled architecture "
                                        f"({', '.join(architecture_names())}) nor an existing .yaml/.yml/.json "
                                        f"architecture file or Timeloop *.stats.txt")
    if buffer_words is not None:
        raise ArchitectureError("buffer_words", "only a bundled platform's Buffer can be resized; "
                                                "edit the file's capacity instead")
    return timeloop_architecture(p) if kind == "timeloop" else load_architecture(p)
