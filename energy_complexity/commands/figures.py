"""``energy-complexity figures``: regenerate every paper figure (or one) as PNG and PDF.

Reads the bundled reference dataset by default (validation/data/reference_energy.csv)
and the zoo networks; figures that need reference data are skipped with a message
when none is present.  The list of figures is in docs/figures.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from energy_complexity.errors import CLIError

NAME = "figures"
HELP = "regenerate the paper figures (PNG 200 dpi + PDF) from the bundled data"
DESCRIPTION = (HELP + ". Default output folder: ./figures. Figures that need reference energy data "
               "read the bundled dataset (or --data) and are skipped with a message if there is none; "
               "see docs/figures.md.")

DEFAULT_OUT = Path("figures")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--only", metavar="NAME", action="append",
                        help="draw only this figure (repeatable); see --list")
    parser.add_argument("--out", metavar="DIR", default=str(DEFAULT_OUT),
                        help="output folder (default: ./%(default)s)")
    parser.add_argument("--data", metavar="CSV",
                        help="reference energy CSV (default: the bundled validation/data/reference_energy.csv)")
    parser.add_argument("--M", type=int, default=65536,
                        help="Buffer size in words for the figures that fix one (default %(default)s)")
    parser.add_argument("--network", metavar="NAME",
                        help="zoo network of the per-layer figure (default: the one in the reference data, "
                             "else vgg16)")
    parser.add_argument("--list", action="store_true", help="list the figures and exit")


def _load_reference(path: str | None):
    """(rows or None, description) from --data or the bundled dataset."""
    from validation.reference_data import ReferenceDataError, bundled_reference_path, read_reference_csv
    if path is not None:
        try:
            return read_reference_csv(path), str(path)
        except ReferenceDataError as exc:
            raise CLIError(str(exc)) from None
    p = bundled_reference_path()
    if not p.is_file():
        return None, f"bundled dataset {p} not present"
    try:
        return read_reference_csv(p), str(p)
    except ReferenceDataError as exc:
        return None, f"bundled dataset unreadable: {exc}"


def run(args: argparse.Namespace) -> int:
    from complexity.machine import Machine
    from paper_figs.registry import FIGURES, FigureInputs, figure_names, make_figure
    names = figure_names()
    if args.list:
        for n in names:
            flag = "  [needs reference data]" if FIGURES[n].needs_reference else ""
            print(f"{n:20s} {FIGURES[n].summary}{flag}")
        return 0
    only = args.only or names
    unknown = [n for n in only if n not in names]
    if unknown:
        raise CLIError(f"--only: unknown figure {unknown[0]!r}; known: {', '.join(names)}")
    Machine(M=args.M)  # validates --M with a one-line MachineError
    if args.network is not None:
        from complexity.zoo import network_names
        if args.network not in network_names():
            raise CLIError(f"--network: unknown network {args.network!r}; known: {', '.join(network_names())}")
    ref, source = _load_reference(args.data)
    print(f"reference data: {source}" + (f" ({len(ref)} rows)" if ref is not None else ""))
    inputs = FigureInputs(reference=ref, source=source, M=args.M, network=args.network)
    out = Path(args.out)
    n_done = 0
    for n in only:
        res = make_figure(n, out, inputs)
        if res.skipped:
            print(f"{n}: skipped: {res.skipped}")
            continue
        n_done += 1
        print(f"{n}: " + ", ".join(str(p) for p in res.paths))
        for note in res.notes:
            print(f"  note: {note}")
    print(f"{n_done} of {len(only)} figure(s) written to {out}/")
    return 0
