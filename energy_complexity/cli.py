"""The ``energy-complexity`` command line: one entry point, one module per subcommand.

Each module in ``energy_complexity.commands`` exposes ``NAME``, ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``.  Errors that a user can fix
(``CLIError``, invalid layers or machines) print one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import sys

from bounds.result import InfeasibleError
from complexity.layer import LayerError
from complexity.machine import MachineError
from energy_complexity.errors import CLIError

#: Subcommand modules, in the order ``--help`` lists them.
COMMANDS = ("bounds", "derive", "estimate", "reference", "validate", "figures", "arch", "serve")


def _load_commands():
    mods = []
    for name in COMMANDS:
        try:
            mods.append(importlib.import_module(f"energy_complexity.commands.{name}"))
        except ModuleNotFoundError as exc:  # a subcommand not built yet is simply absent
            if exc.name != f"energy_complexity.commands.{name}":
                raise
    return mods


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr (exit 2), naming the flag."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _Version(argparse.Action):
    """--version: the installed package version, read from its metadata only when asked."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from importlib.metadata import PackageNotFoundError, version
        try:
            v = version("energy-complexity")
        except PackageNotFoundError:  # running from a source tree that was never installed
            from energy_complexity import __version__ as v
        print(f"energy-complexity {v}")
        parser.exit(0)


def _static_help(name: str) -> str | None:
    """HELP of a subcommand module read from its source, without importing it (and its dependencies).

    None when the module does not exist; the module is imported when HELP is not a literal.
    """
    spec = importlib.util.find_spec(f"energy_complexity.commands.{name}")
    if spec is None or not spec.origin:
        return None
    with open(spec.origin, encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.startswith("HELP = ")), None)
    for end in range(start + 1, start + 8) if start is not None else ():  # a literal over a few lines
        try:
            return ast.literal_eval("\n".join(lines[start:end])[len("HELP = "):].strip())
        except (ValueError, SyntaxError):
            continue
    return importlib.import_module(f"energy_complexity.commands.{name}").HELP


def _chosen_command(argv: list[str]) -> str | None:
    """The subcommand named on the command line (the first word that is not an option), if any."""
    for a in argv:
        if not a.startswith("-"):
            return a if a in COMMANDS else None
    return None


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The full parser; with ``argv``, only the subcommand it names is imported and given its flags.

    The other subcommands are listed with their HELP read from source, so that
    ``--help`` and a single command import no more than they need.
    """
    parser = _Parser(
        prog="energy-complexity",
        description="Energy lower and upper bounds of CNN layers on a two-level memory machine "
                    "(DRAM + Buffer of M words), their closed forms, and their validation.",
    )
    parser.add_argument("--version", action=_Version, help="print the installed version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    if argv is None:
        mods = {m.NAME: m for m in _load_commands()}
    else:
        chosen = _chosen_command(argv)
        mods = {} if chosen is None else {chosen: importlib.import_module(f"energy_complexity.commands.{chosen}")}
    for name in COMMANDS:
        mod = mods.get(name)
        if mod is None:
            text = _static_help(name)
            if text is not None:
                sub.add_parser(name, help=text)
            continue
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=getattr(mod, "DESCRIPTION", mod.HELP))
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def _user_errors() -> tuple:
    """Error classes a user can fix; ArchitectureError only once its module is loaded (else none was raised),
    so that commands without an architecture do not import it."""
    arch = sys.modules.get("complexity.architecture")
    return (CLIError, LayerError, MachineError, InfeasibleError) + ((arch.ArchitectureError,) if arch else ())


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)  # --help, --version and usage errors (one line) raise SystemExit
    try:
        return int(args._run(args) or 0)
    except _user_errors() as exc:
        print(f"energy-complexity {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. piped into `head`
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
