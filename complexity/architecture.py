"""An accelerator's memory hierarchy: levels from the innermost storage to DRAM, and its MACs.

The two-level machine of the paper (complexity/machine.py) is the special case of one
Buffer level plus DRAM (``Architecture.two_level``).  A real accelerator has several
on-chip levels (register files per PE, a global buffer, ...) with their own capacity,
number of instances, operands and per-word energies; the hierarchy-aware bound
(bounds/hierarchy.py, docs/hierarchy.md) is built from exactly these numbers.

File format (YAML or JSON, docs/architecture.md)::

    name: my_accelerator
    word_bits: 8                  # the width of one word; every energy is per word of it
    mac_pJ: 0.5                   # energy of one MAC
    macs: 168                     # MAC units
    mac_reads: {X: rf_x, W: rf_w, Y: rf_y}   # optional: the level each MAC reads each operand from
    levels:                       # innermost first, DRAM last
      - {name: rf_x, capacity: 12, instances: 168, operands: [X], read_pJ: 0.1, write_pJ: 0.1}
      - ...
      - {name: dram, operands: [X, W, Y], read_pJ: 100, write_pJ: 100}   # no capacity: unbounded

``read_pJ`` / ``write_pJ`` are a number (every operand) or a mapping operand -> number.
A bad file raises ArchitectureError naming the offending key (``levels[2].capacity``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

__all__ = ["OPERANDS", "Level", "Architecture", "ArchitectureError", "load_architecture"]

#: The model's tensors: inputs, weights, outputs (partial sums included).
OPERANDS = ("X", "W", "Y")

_ALIASES = {"I": "X", "I1": "X", "INPUTS": "X", "INPUT": "X", "X": "X",
            "I2": "W", "WEIGHTS": "W", "WEIGHT": "W", "W": "W",
            "O": "Y", "OUTPUTS": "Y", "OUTPUT": "Y", "Y": "Y"}


class ArchitectureError(ValueError):
    """An architecture that cannot exist; the message names the offending key."""

    def __init__(self, key: str, message: str):
        super().__init__(f"invalid architecture: {key}: {message}")
        self.key = key


def _operand(v, key: str) -> str:
    if not isinstance(v, str) or v.strip().upper() not in _ALIASES:
        raise ArchitectureError(key, f"unknown operand {v!r}; use X (inputs), W (weights) or Y (outputs)")
    return _ALIASES[v.strip().upper()]


def _number(v, key: str, *, positive: bool = False) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ArchitectureError(key, f"must be a number, got {v!r}")
    fv = float(v)
    if not math.isfinite(fv) or fv < 0 or (positive and fv == 0):
        raise ArchitectureError(key, f"must be a finite {'positive' if positive else 'non-negative'} number, got {v!r}")
    return fv


def _count(v, key: str) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)) \
            or int(v) != v or v < 1:
        raise ArchitectureError(key, f"must be a positive integer, got {v!r}")
    return int(v)


@dataclass(frozen=True)
class Level:
    """One storage level: ``capacity`` words per instance (None: unbounded, DRAM only).

    ``read_pJ`` / ``write_pJ`` map each operand the level holds to its energy per word
    read or written, in pJ at the architecture's word width.
    """

    name: str
    capacity: int | None
    instances: int
    operands: tuple[str, ...]
    read_pJ: Mapping[str, float]
    write_pJ: Mapping[str, float]

    @property
    def total_words(self) -> int | None:
        """Capacity of all instances together (None for DRAM)."""
        return None if self.capacity is None else self.capacity * self.instances

    def __hash__(self) -> int:  # the energy mappings are read-only views: hash their items
        return hash((self.name, self.capacity, self.instances, self.operands,
                     tuple(sorted(self.read_pJ.items())), tuple(sorted(self.write_pJ.items()))))

    def holds(self, t: str) -> bool:
        return t in self.operands

    def to_dict(self) -> dict:
        def costs(m):
            vals = {m[t] for t in self.operands}
            return next(iter(vals)) if len(vals) == 1 else {t: m[t] for t in self.operands}
        out: dict[str, Any] = {"name": self.name}
        if self.capacity is not None:
            out["capacity"] = self.capacity
        out["instances"] = self.instances
        out["operands"] = list(self.operands)
        out["read_pJ"] = costs(self.read_pJ)
        out["write_pJ"] = costs(self.write_pJ)
        return out


@dataclass(frozen=True)
class Architecture:
    """A memory hierarchy (innermost level first, DRAM last), its MAC units and their energy."""

    name: str
    word_bits: int
    levels: tuple[Level, ...]
    mac_pJ: float
    macs: int = 1
    mac_reads: Mapping[str, str] | None = None
    #: True: a word may move between any two levels that hold its operand (bypassing the
    #: levels between them); False: only between consecutive levels of its operand's chain
    #: (``chain(t)``), as in ZigZag's and Timeloop's models.  docs/hierarchy.md, 3.3.
    bypass: bool = True
    description: str = ""
    source: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __hash__(self) -> int:  # hashable (e.g. as a cache key) although mac_reads is a mapping
        return hash((self.name, self.word_bits, self.levels, self.mac_pJ, self.macs,
                     None if self.mac_reads is None else tuple(sorted(self.mac_reads.items())), self.bypass,
                     self.description, self.source))

    # ----- views ----------------------------------------------------------------
    @property
    def dram(self) -> Level:
        return self.levels[-1]

    @property
    def onchip(self) -> tuple[Level, ...]:
        return self.levels[:-1]

    @property
    def onchip_words(self) -> int:
        """Every on-chip word of every instance: the M of the DRAM boundary."""
        return sum(lv.total_words for lv in self.onchip)

    def level(self, name: str) -> Level:
        for lv in self.levels:
            if lv.name == name:
                return lv
        raise ArchitectureError("level", f"no level named {name!r}; levels: {', '.join(lv.name for lv in self.levels)}")

    def index(self, name: str) -> int:
        return self.levels.index(self.level(name))

    def chain(self, t: str) -> tuple[Level, ...]:
        """The levels that may hold operand ``t``, innermost first (DRAM last)."""
        return tuple(lv for lv in self.levels if t in lv.operands)

    def innermost(self, t: str) -> Level:
        """The level MACs read ``t`` from: ``mac_reads[t]`` when given, else the innermost holding ``t``."""
        if self.mac_reads and t in self.mac_reads:
            return self.level(self.mac_reads[t])
        return self.chain(t)[0]

    def fanout(self, level: Level) -> int:
        """MACs per instance of ``level``: at most this many MACs can share one read of it."""
        return max(1, self.macs // level.instances)

    # ----- (de)serialisation ------------------------------------------------------
    def to_dict(self) -> dict:
        out: dict[str, Any] = {"name": self.name}
        if self.description:
            out["description"] = self.description
        if self.source:
            out["source"] = self.source
        out["word_bits"] = self.word_bits
        out["mac_pJ"] = self.mac_pJ
        out["macs"] = self.macs
        if self.mac_reads:
            out["mac_reads"] = dict(self.mac_reads)
        if not self.bypass:
            out["bypass"] = False
        out["levels"] = [lv.to_dict() for lv in self.levels]
        return out

    @classmethod
    def from_dict(cls, data: Mapping, *, name: str | None = None) -> "Architecture":
        """Build and check an architecture from parsed YAML/JSON; ArchitectureError names the key."""
        if not isinstance(data, Mapping):
            raise ArchitectureError("(top level)", f"must be a mapping with keys name, word_bits, mac_pJ, levels; "
                                                   f"got {type(data).__name__}")
        known = {"name", "description", "source", "word_bits", "mac_pJ", "macs", "mac_reads", "bypass", "levels"}
        for k in data:
            if k not in known:
                raise ArchitectureError(str(k), f"unknown key; known keys: {', '.join(sorted(known))}")
        for k in ("levels", "mac_pJ"):
            if k not in data:
                raise ArchitectureError(k, "missing")
        arch_name = data.get("name", name or "architecture")
        if not isinstance(arch_name, str) or not arch_name:
            raise ArchitectureError("name", f"must be a non-empty string, got {arch_name!r}")
        word_bits = _count(data.get("word_bits", 16), "word_bits")
        mac_pJ = _number(data["mac_pJ"], "mac_pJ")
        macs = _count(data.get("macs", 1), "macs")
        raw_levels = data["levels"]
        if not isinstance(raw_levels, list) or len(raw_levels) < 2:
            raise ArchitectureError("levels", "must be a list of at least two levels (on-chip storage, then DRAM)")
        levels = []
        seen = set()
        level_keys = {"name", "capacity", "instances", "operands", "read_pJ", "write_pJ"}
        for i, raw in enumerate(raw_levels):
            key = f"levels[{i}]"
            last = i == len(raw_levels) - 1
            if not isinstance(raw, Mapping):
                raise ArchitectureError(key, f"must be a mapping, got {raw!r}")
            for k in raw:
                if k not in level_keys:
                    raise ArchitectureError(f"{key}.{k}", f"unknown key; known keys: {', '.join(sorted(level_keys))}")
            for k in ("name", "operands", "read_pJ", "write_pJ") + (() if last else ("capacity",)):
                if k not in raw:
                    raise ArchitectureError(f"{key}.{k}", "missing" + ("" if k != "capacity" else
                                                                      " (only DRAM, the last level, is unbounded)"))
            lname = raw["name"]
            if not isinstance(lname, str) or not lname:
                raise ArchitectureError(f"{key}.name", f"must be a non-empty string, got {lname!r}")
            if lname in seen:
                raise ArchitectureError(f"{key}.name", f"duplicate level name {lname!r}")
            seen.add(lname)
            ops_raw = raw["operands"]
            if not isinstance(ops_raw, list) or not ops_raw:
                raise ArchitectureError(f"{key}.operands", f"must be a non-empty list of X, W, Y; got {ops_raw!r}")
            ops = tuple(t for t in OPERANDS if t in {_operand(v, f"{key}.operands") for v in ops_raw})
            cap = raw.get("capacity")
            if cap is not None:
                cap = _count(cap, f"{key}.capacity")
            elif not last:
                raise ArchitectureError(f"{key}.capacity", "missing (only DRAM, the last level, is unbounded)")
            inst = _count(raw.get("instances", 1), f"{key}.instances")
            costs = {}
            for k in ("read_pJ", "write_pJ"):
                v = raw[k]
                if isinstance(v, Mapping):
                    m = {}
                    for t_raw, e in v.items():
                        t = _operand(t_raw, f"{key}.{k}")
                        if t not in ops:
                            raise ArchitectureError(f"{key}.{k}.{t_raw}", f"operand not held by level {lname!r}")
                        m[t] = _number(e, f"{key}.{k}.{t_raw}")
                    for t in ops:
                        if t not in m:
                            raise ArchitectureError(f"{key}.{k}.{t}", "missing")
                else:
                    e = _number(v, f"{key}.{k}")
                    m = {t: e for t in ops}
                costs[k] = MappingProxyType(m)
            levels.append(Level(name=lname, capacity=cap, instances=inst, operands=ops,
                                read_pJ=costs["read_pJ"], write_pJ=costs["write_pJ"]))
        dram = levels[-1]
        if set(dram.operands) != set(OPERANDS):
            raise ArchitectureError(f"levels[{len(levels) - 1}].operands",
                                    "the last level is DRAM and must hold X, W and Y")
        if dram.capacity is not None:
            levels[-1] = Level(dram.name, None, 1, dram.operands, dram.read_pJ, dram.write_pJ)
        mac_reads = data.get("mac_reads")
        if mac_reads is not None:
            if not isinstance(mac_reads, Mapping):
                raise ArchitectureError("mac_reads", f"must be a mapping operand -> level name, got {mac_reads!r}")
            mr = {}
            names = [lv.name for lv in levels]
            for t_raw, lname in mac_reads.items():
                t = _operand(t_raw, "mac_reads")
                if lname not in names[:-1]:
                    raise ArchitectureError(f"mac_reads.{t_raw}", f"{lname!r} is not an on-chip level")
                if t not in levels[names.index(lname)].operands:
                    raise ArchitectureError(f"mac_reads.{t_raw}", f"level {lname!r} does not hold {t}")
                mr[t] = lname
            mac_reads = MappingProxyType(mr)
        bypass = data.get("bypass", True)
        if not isinstance(bypass, bool):
            raise ArchitectureError("bypass", f"must be true or false, got {bypass!r}")
        return cls(name=arch_name, word_bits=word_bits, levels=tuple(levels), mac_pJ=mac_pJ, macs=macs,
                   mac_reads=mac_reads, bypass=bypass, description=str(data.get("description") or ""),
                   source=str(data.get("source") or ""))

    @classmethod
    def two_level(cls, machine) -> "Architecture":
        """The paper's model machine (complexity.machine.Machine) as an architecture.

        One Buffer of M words holding every operand, read and written at ``e_buf``,
        DRAM at ``e_dram``, one MAC unit at ``e_mac`` reading every operand from the
        Buffer.  Energies are the machine's (model units, used as pJ).
        """
        buf = Level("buffer", int(machine.M), 1, OPERANDS,
                    MappingProxyType({t: machine.e_buf for t in OPERANDS}),
                    MappingProxyType({t: machine.e_buf for t in OPERANDS}))
        dram = Level("dram", None, 1, OPERANDS,
                     MappingProxyType({t: machine.e_dram for t in OPERANDS}),
                     MappingProxyType({t: machine.e_dram for t in OPERANDS}))
        return cls(name=f"two_level_M{machine.M}", word_bits=machine.bits, levels=(buf, dram),
                   mac_pJ=machine.e_mac, macs=1, mac_reads=MappingProxyType({t: "buffer" for t in OPERANDS}),
                   description="the two-level model machine (DRAM + one Buffer), costs in model units")


def load_architecture(path: str | Path) -> Architecture:
    """Read an architecture file (.yaml, .yml or .json); ArchitectureError names a bad key."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ArchitectureError("file", f"cannot read {str(p)!r}: {exc.strerror or exc}") from None
    try:
        if p.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml
            data = yaml.safe_load(text)
    except Exception as exc:  # noqa: BLE001 - any parse error is a bad file
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ArchitectureError("file", f"{str(p)!r} is not valid {'JSON' if p.suffix.lower() == '.json' else 'YAML'}: {msg}") from None
    return Architecture.from_dict(data, name=p.stem)
