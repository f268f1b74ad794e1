"""``energy-complexity arch``: show, list and import accelerator memory hierarchies.

``arch show ARCH`` prints a hierarchy (a bundled platform, a YAML/JSON architecture
file or a Timeloop *.stats.txt) as a table or as JSON; ``arch import-timeloop``
writes the architecture file of a Timeloop statistics file; ``arch list`` names the
bundled architectures.  The file format is documented in docs/architecture.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from energy_complexity.errors import CLIError

NAME = "arch"
HELP = "accelerator memory hierarchies: show, list, import from Timeloop statistics"
DESCRIPTION = (
    "Memory hierarchies of accelerators (levels from the innermost storage to DRAM, capacities, "
    "instances, per-word energies in pJ, MACs), as the hierarchy-aware bound uses them. ARCH is a "
    "bundled platform name (see `arch list`), a .yaml/.yml/.json architecture file "
    "(docs/architecture.md) or a Timeloop/Accelergy *.stats.txt.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="arch_command", metavar="ACTION")
    sub.required = True
    show = sub.add_parser("show", help="print a hierarchy as a table (or JSON)",
                          description="Print a memory hierarchy: per level its capacity per instance, "
                                      "instances, total words, operands and per-word energies; the MACs.")
    show.add_argument("arch", metavar="ARCH", help="bundled name, architecture file or Timeloop *.stats.txt")
    show.add_argument("--json", action="store_true", help="print the architecture file's content as JSON")
    show.add_argument("--buffer-words", type=int, metavar="N",
                      help="resize a bundled platform's Buffer memory to N words")
    show.set_defaults(_arch=_show)

    imp = sub.add_parser("import-timeloop", help="an architecture file from Timeloop statistics",
                         description="Read a Timeloop/Accelergy *.stats.txt and write its hierarchy as a "
                                     "YAML architecture file (printed when --out is not given).")
    imp.add_argument("stats", metavar="STATS.txt", help="a timeloop-mapper/-model *.stats.txt")
    imp.add_argument("--out", metavar="ARCH.yaml", help="write the YAML here (.json: write JSON)")
    imp.set_defaults(_arch=_import_timeloop)

    lst = sub.add_parser("list", help="the bundled architectures", description="The bundled architectures.")
    lst.set_defaults(_arch=_list)


def run(args: argparse.Namespace) -> int:
    return args._arch(args)


# ----- formatting -----------------------------------------------------------------

def _num(x: float) -> str:
    return f"{x:.4g}"


def _energy(level, which: str) -> str:
    m = getattr(level, which)
    vals = {_num(m[t]) for t in level.operands}
    if len(vals) == 1:
        return vals.pop()
    return " ".join(f"{t}:{_num(m[t])}" for t in level.operands)


def format_architecture(arch) -> str:
    """The hierarchy as a readable table, innermost level first."""
    lines = [f"{arch.name}" + (f": {arch.description}" if arch.description else "")]
    if arch.source:
        lines.append(f"source: {arch.source}")
    lines.append(f"word: {arch.word_bits} bits; energies in pJ per word, levels innermost first")
    lines.append("")
    head = ("level", "capacity/inst", "instances", "total words", "operands", "read pJ/word", "write pJ/word")
    rows = []
    for lv in arch.levels:
        rows.append((lv.name, "-" if lv.capacity is None else f"{lv.capacity:,}", f"{lv.instances:,}",
                     "-" if lv.total_words is None else f"{lv.total_words:,}", " ".join(lv.operands),
                     _energy(lv, "read_pJ"), _energy(lv, "write_pJ")))
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    align = "<>>><<<"
    for r in [head] + rows:
        lines.append("  ".join(f"{c:{a}{w}}" for c, a, w in zip(r, align, widths)).rstrip())
    lines.append("")
    lines.append(f"MACs: {arch.macs:,} units at {_num(arch.mac_pJ)} pJ per MAC")
    reads = ", ".join(f"{t} from {arch.innermost(t).name}" for t in ("X", "W", "Y"))
    lines.append(f"MAC operand reads: {reads}" + ("" if arch.mac_reads else " (innermost level holding each; "
                                                                           "no mac_reads given)"))
    lines.append("bypass: " + ("a word may skip levels holding its operand" if arch.bypass else
                               "none (a word moves through every level holding its operand)"))
    lines.append(f"on-chip words: {arch.onchip_words:,} (every level below {arch.dram.name}, every instance)")
    return "\n".join(lines)


def _dump(arch, path: Path | None) -> str:
    data = arch.to_dict()
    if path is not None and path.suffix.lower() == ".json":
        return json.dumps(data, indent=1) + "\n"
    import yaml
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=120)


# ----- actions ----------------------------------------------------------------------

def _show(args) -> int:
    from validation.architectures import get_architecture
    arch = get_architecture(args.arch, buffer_words=args.buffer_words)
    if args.json:
        print(json.dumps(arch.to_dict(), indent=1))
    else:
        print(format_architecture(arch))
    return 0


def _import_timeloop(args) -> int:
    from validation.architectures import timeloop_architecture
    arch = timeloop_architecture(args.stats)
    out = Path(args.out) if args.out else None
    text = _dump(arch, out)
    if out is None:
        sys.stdout.write(text)
        return 0
    try:
        out.write_text(text)
    except OSError as exc:
        raise CLIError(f"--out: cannot write {str(out)!r}: {exc.strerror or exc}") from None
    print(f"wrote {out} ({len(arch.levels)} levels: {', '.join(lv.name for lv in arch.levels)})", file=sys.stderr)
    return 0


def _list(args) -> int:
    from validation.architectures import architecture_descriptions
    desc = architecture_descriptions()
    w = max(map(len, desc))
    for name, d in desc.items():
        print(f"{name:<{w}}  {d}")
    return 0
