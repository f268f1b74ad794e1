"""Accelerator platforms for the ZigZag backend: hardware and mapping files, and the Buffer knob.

Each platform names a ZigZag accelerator description, its mapping file, the memory
that plays the part of the model's Buffer (the global buffer, or the largest
on-chip memory shared by the activations where there is no single global buffer)
and the word width of every operand.  ``M`` is that memory's capacity in words.
Resizing the Buffer writes a variant of the hardware file into a temporary
directory, never into the working tree.  Sources of every number:
docs/reference_data.md, section "Platforms".
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

__all__ = ["Platform", "PlatformError", "PLATFORMS", "platform_names", "get_platform",
           "zigzag_inputs_dir", "onchip_words", "onchip_memories"]

_HERE = Path(__file__).resolve().parent


class PlatformError(ValueError):
    """An unknown platform or an impossible Buffer size; the message names the parameter."""


def zigzag_inputs_dir() -> Path:
    """The ``inputs`` folder of the installed zigzag-dse package (bundled hardware and mappings)."""
    import zigzag
    return Path(zigzag.__file__).resolve().parent / "inputs"


@dataclass(frozen=True)
class Platform:
    """One accelerator: where its ZigZag files live and which memory is the Buffer.

    ``hardware`` and ``mapping`` are either ``"zigzag:<relative path>"`` (a file
    bundled with zigzag-dse) or a file name in validation/platforms/.
    ``bits`` is the precision of every operand (I, W, partial and final O), so that a
    word means the same thing in every memory and in the bounds.
    """

    name: str
    hardware: str
    mapping: str
    buffer_memory: str
    bits: int
    description: str

    # ----- files ----------------------------------------------------------
    @staticmethod
    def _resolve(ref: str) -> Path:
        if ref.startswith("zigzag:"):
            return zigzag_inputs_dir() / ref[len("zigzag:"):]
        return _HERE / ref

    @property
    def hardware_path(self) -> Path:
        return self._resolve(self.hardware)

    @property
    def mapping_path(self) -> Path:
        return self._resolve(self.mapping)

    def hardware_data(self) -> dict:
        """The parsed hardware description (a fresh copy)."""
        return _load_yaml(str(self.hardware_path))

    # ----- the Buffer -----------------------------------------------------
    @property
    def buffer_bits(self) -> int:
        """Capacity of the Buffer memory in the unmodified hardware description, in bits."""
        mems = self.hardware_data()["memories"]
        return int(mems[self.buffer_memory]["size"])

    @property
    def default_buffer_words(self) -> int:
        """The Buffer capacity ``M`` of the unmodified platform, in words of ``bits`` bits."""
        return self.buffer_bits // self.bits

    @property
    def mac_energy_pJ(self) -> float:
        """Energy of one MAC in the hardware description (pJ)."""
        return float(self.hardware_data()["operational_array"]["unit_energy"])

    def buffer_operands(self) -> tuple[str, ...]:
        """The memory operands (I1 = inputs, I2 = weights, O = outputs) the Buffer holds."""
        return tuple(self.hardware_data()["memories"][self.buffer_memory]["operands"])

    def hardware_file(self, buffer_words: int | None = None) -> Path:
        """Path of a hardware file whose Buffer holds ``buffer_words`` words (default: unchanged).

        A resized variant is written once per process into a temporary directory,
        named by a hash of its content.
        """
        if buffer_words is None or buffer_words == self.default_buffer_words:
            return self.hardware_path
        if isinstance(buffer_words, bool) or int(buffer_words) != buffer_words or buffer_words < 1:
            raise PlatformError(f"buffer size: must be a positive number of words, got {buffer_words!r}")
        data = self.hardware_data()
        mems = data["memories"]
        mems[self.buffer_memory]["size"] = int(buffer_words) * self.bits
        text = yaml.safe_dump(data, sort_keys=False)
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        path = _variant_dir() / f"{self.name}-M{int(buffer_words)}-{digest}.yaml"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.replace(path)
        return path

    def onchip_words(self, buffer_words: int | None = None) -> int:
        """Total on-chip capacity in words with the Buffer resized to ``buffer_words`` (see onchip_words)."""
        return onchip_words(self, buffer_words)

    def fingerprint(self) -> str:
        """Hash of the hardware and mapping files, so that edited files never reuse cached results."""
        h = hashlib.sha256()
        h.update(self.hardware_path.read_bytes())
        h.update(self.mapping_path.read_bytes())
        h.update(f"{self.buffer_memory}|{self.bits}".encode())
        return h.hexdigest()[:16]


@lru_cache(maxsize=None)
def _load_yaml_text(path: str) -> str:
    return Path(path).read_text()


def _load_yaml(path: str) -> dict:
    return yaml.safe_load(_load_yaml_text(path))


_VARIANT_DIR: list[Path] = []


def _variant_dir() -> Path:
    """A per-process temporary directory for resized hardware files (removed at exit)."""
    if not _VARIANT_DIR:
        d = tempfile.TemporaryDirectory(prefix="energy-complexity-platforms-")
        _VARIANT_DIR.append(Path(d.name))
        _KEEP.append(d)  # the directory lives as long as the process
    return _VARIANT_DIR[0]


_KEEP: list = []

#: The platforms, by name.  See docs/reference_data.md for the sources of each.
PLATFORMS: dict[str, Platform] = {
    p.name: p for p in (
        Platform(
            name="eyeriss_like",
            hardware="zigzag:hardware/eyeriss_like.yaml",
            mapping="eyeriss_like_mapping.yaml",
            buffer_memory="sram_1M",
            bits=8,
            description="ZigZag's bundled Eyeriss-like 14x12 PE array; Buffer = sram_1M "
                        "(inputs and outputs; weights have their own 64 KiB SRAM)",
        ),
        Platform(
            name="tpu_like",
            hardware="zigzag:hardware/tpu_like.yaml",
            mapping="zigzag:mapping/tpu_like.yaml",
            buffer_memory="sram_2MB",
            bits=8,
            description="ZigZag's bundled TPU-like 32x32 weight-stationary systolic array; "
                        "Buffer = sram_2MB (inputs and outputs; weights stream from DRAM)",
        ),
        Platform(
            name="edge_tpu_like",
            hardware="zigzag:hardware/edge_tpu_like.yaml",
            mapping="zigzag:mapping/edge_tpu_like.yaml",
            buffer_memory="sram_2MB",
            bits=8,
            description="ZigZag's bundled Edge-TPU-like 8x8x4x4 array; Buffer = sram_2MB "
                        "(inputs and outputs; weights have their own 32 KiB SRAM)",
        ),
        Platform(
            name="simba_like",
            hardware="simba_like.yaml",
            mapping="simba_like_mapping.yaml",
            buffer_memory="global_buffer",
            bits=8,
            description="Simba-like chiplet (16 PEs x 4 lanes x 4 MACs) described by this project; "
                        "Buffer = the 64 KiB global buffer (inputs and outputs)",
        ),
    )
}


def onchip_memories(platform: "str | Platform",
                    buffer_words: int | None = None) -> dict[str, tuple[int, int, int]]:
    """Every memory below DRAM: name -> (bits per instance, instances, words in all instances).

    DRAM is the last memory of the hardware file (the top of ZigZag's hierarchy, the
    level whose traffic is ``dram_words``).  Instances are ZigZag's unroll count: the
    product of the array dimensions the memory does not serve.  Words are at the
    platform's operand precision (``bits``; our workloads give every operand, partial
    sums included, that width), so a 16-bit output register holds 2 words, as in
    ZigZag's capacity check; a memory shared by several operands counts once.  The
    Buffer memory is resized to ``buffer_words`` (None: the platform's own).
    """
    plat = get_platform(platform) if isinstance(platform, str) else platform
    data = plat.hardware_data()
    mems = data["memories"]
    dims = data["operational_array"]["dimensions"]
    sizes = dict(zip(dims, (int(x) for x in data["operational_array"]["sizes"])))
    names = list(mems)
    out = {}
    for name in names[:-1]:
        mem = mems[name]
        bits = int(mem["size"])
        if name == plat.buffer_memory and buffer_words is not None:
            if isinstance(buffer_words, bool) or int(buffer_words) != buffer_words or buffer_words < 1:
                raise PlatformError(f"buffer size: must be a positive number of words, got {buffer_words!r}")
            bits = int(buffer_words) * plat.bits
        served = set(mem.get("served_dimensions") or ())
        count = 1
        for d, n in sizes.items():
            if d not in served:
                count *= n
        out[name] = (bits, count, (bits // plat.bits) * count)
    return out


def onchip_words(platform: "str | Platform", buffer_words: int | None = None) -> int:
    """Total on-chip capacity in words of ``platform`` with a Buffer of ``buffer_words`` words.

    The sum over every memory below DRAM, every operand and every instance (one per
    PE where a memory is per PE) of its capacity in words of the platform's operand
    precision: the ``M`` of a two-level machine that could hold everything the
    platform holds on chip, to which the lower bound applies (docs/reference_data.md,
    "On-chip capacity").  ``buffer_words`` None keeps the platform's own Buffer.
    """
    return sum(w for _, _, w in onchip_memories(platform, buffer_words).values())


def platform_names() -> tuple[str, ...]:
    return tuple(PLATFORMS)


def get_platform(name: str) -> Platform:
    """The platform called ``name``; PlatformError lists the known ones otherwise."""
    try:
        return PLATFORMS[name]
    except KeyError:
        raise PlatformError(f"platform: unknown platform {name!r}; known: {', '.join(PLATFORMS)}") from None
