"""The ``energy-complexity`` command line: one entry point, one module per subcommand.

Each module in ``energy_complexity.commands`` exposes ``NAME``, ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``.  Errors that a user can fix
(``CLIError``, invalid layers or machines) print one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from bounds.result import InfeasibleError
from complexity.layer import LayerError
from complexity.architecture import ArchitectureError
from complexity.machine import MachineError
from energy_complexity.errors import CLIError

#: Subcommand modules, in the order ``--help`` lists them.
COMMANDS = ("bounds", "derive", "estimate", "reference", "validate", "figures", "arch")


def _load_commands():
    mods = []
    for name in COMMANDS:
        try:
            mods.append(importlib.import_module(f"energy_complexity.commands.{name}"))
        except ModuleNotFoundError as exc:  # a subcommand not built yet is simply absent
            if exc.name != f"energy_complexity.commands.{name}":
                raise
    return mods


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="energy-complexity",
        description="Energy lower and upper bounds of CNN layers on a two-level memory machine "
                    "(DRAM + Buffer of M words), their closed forms, and their validation.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for mod in _load_commands():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=getattr(mod, "DESCRIPTION", mod.HELP))
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except (CLIError, LayerError, MachineError, InfeasibleError, ArchitectureError) as exc:
        print(f"energy-complexity {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. piped into `head`
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
