"""``energy-complexity derive``: the closed forms of the lower bound and both dataflows.

Every layer flag (and --M, --tiles-os, --tiles-ws) that is given is substituted; the others
stay symbolic, except that when --c, --d, the input size and the kernel are all given the
layer is numeric: --b, --stride, --pad and --groups take their defaults (1, 1, 0, 1) and
numbers are printed.  The output is structured: named intermediate quantities (n_h, u_h,
R_h, ...) are printed once each, then each bound in terms of them.  The forms, their
checks and their rendering live in bounds/render.py (``closed_forms``), so a notebook gets
the same; this module only parses the flags and prints.  --full prints the fully expanded
forms instead; --latex prints LaTeX (align* blocks); --json prints {section: {name:
expression}}.  Proofs: docs/theory.md, docs/dataflow_os.md, docs/dataflow_ws.md.
"""

from __future__ import annotations

import argparse
import json

from energy_complexity.errors import CLIError
from energy_complexity.layer_args import _size, add_layer_arguments, layer_values

NAME = "derive"
HELP = "print the closed forms of the lower bound and of the OS / WS dataflows"
DESCRIPTION = ("Closed forms (sympy) of the energy lower bound and of the output-stationary and "
               "weight-stationary dataflows: named intermediate quantities, then Q, footprint and "
               "continuous optimum in terms of them. Layer flags, --M and tiles that are given are "
               "substituted; omitted ones stay symbolic. When --c, --d, the input size (--hw or --h/--w) "
               "and the kernel (--k or --kh/--kw) are all given, the other layer flags take their "
               "defaults and every number is printed, the continuous optima as decimals with the "
               "tile they round to and its exact Q.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_layer_arguments(parser, sources=False)
    g = parser.add_argument_group("machine, tiles and output")
    g.add_argument("--M", type=_size, help="Buffer capacity in words, e.g. 65536 or 64K (symbolic when omitted)")
    g.add_argument("--tiles-os", metavar="Bt,D,Th,Tw,C",
                   help="substitute this output-stationary tile (5 integers; checked against the layer and M)")
    g.add_argument("--tiles-ws", metavar="D,C",
                   help="substitute this weight-stationary block (2 integers; checked against the layer and M)")
    g.add_argument("--latex", action="store_true", help="print LaTeX (one align* block per section)")
    g.add_argument("--json", action="store_true", help="print JSON: {section: {name: expression}}")
    g.add_argument("--full", action="store_true",
                   help="print the fully expanded forms (long; slow) instead of the named ones")


def _parse_tiles(text: str | None, flag: str, names: tuple) -> list[int] | None:
    if text is None:
        return None
    try:
        vals = [int(v) for v in text.split(",")]
    except ValueError:
        vals = []
    if len(vals) != len(names) or min(vals) < 1:
        raise CLIError(f"{flag}: expected {len(names)} positive integers {','.join(names)}, got {text!r}")
    return vals


def run(args: argparse.Namespace) -> int:
    from bounds.output_stationary import OSTileError
    from bounds.render import TileError, closed_forms

    os_t = _parse_tiles(args.tiles_os, "--tiles-os", ("Bt", "D", "Th", "Tw", "C"))
    ws_t = _parse_tiles(args.tiles_ws, "--tiles-ws", ("D", "C"))
    try:
        cf = closed_forms(layer_values(args), args.M, os_t, ws_t, full=args.full)
    except OSTileError as exc:
        raise CLIError(f"--tiles-os: {exc}") from None
    except TileError as exc:
        raise CLIError(f"--tiles-{exc.dataflow.lower()}: {exc}") from None
    if args.json:
        print(json.dumps(cf.to_json(), indent=2))
    else:
        print(cf.latex() if args.latex else cf.text())
    return 0


def __getattr__(name):
    """The rendering helpers moved to bounds/render.py; kept reachable here for old imports."""
    if name in ("named_sections", "derive_named", "_LATEX_NAMES", "_latex_names", "LAYER_LABELS", "DESCRIPTIONS"):
        import bounds.render
        return getattr(bounds.render, name)
    raise AttributeError(name)
