"""``energy-complexity figures``: regenerate every paper figure (or one) as PNG and PDF.

Reads the bundled reference dataset by default (validation/data/reference_energy.csv)
and the zoo networks; figures that need reference data are skipped with a message
when none is present.  The list of figures is in docs/figures.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from energy_complexity.errors import CLIError
from energy_complexity.layer_args import _size

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
    parser.add_argument("--M", type=_size, default=None,
                        help="Buffer size in words for the figures that fix one (suffixes: 64K, 1M; default: "
                             "each figure's own, 65536 for the two-level figures, the platform's usual size "
                             "for network_layers)")
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--network", metavar="NAME",
                     help="zoo network of the per-layer figures (default: the one in the reference data, "
                          "else vgg16)")
    src.add_argument("--onnx", metavar="FILE",
                     help="your own network: the Conv/Gemm/MatMul layers of an ONNX model")
    parser.add_argument("--arch", metavar="ARCH",
                        help="architecture for the energy floor in pJ: a bundled platform "
                             "(eyeriss_like, simba_like, tpu_like, edge_tpu_like) or a .yaml/.json/Timeloop "
                             "stats file (default: each reference platform's own)")
    parser.add_argument("--platform", metavar="P",
                        help="draw only this platform's reference rows")
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


def _given_inputs(args) -> list[str]:
    """The user's inputs (keys of paper_figs.registry.USES) given on the command line."""
    flags = {"M": args.M is not None, "network": bool(args.network or args.onnx), "arch": bool(args.arch),
             "platform": bool(args.platform)}
    return [k for k, v in flags.items() if v]


_FLAG = {"M": "--M", "network": "--network/--onnx", "arch": "--arch", "platform": "--platform"}


def _user_layers(args):
    """(label, layers) of --network / --onnx, or (None, ()) without them."""
    if not (args.network or args.onnx):
        return None, ()
    from energy_complexity.layer_args import layers_from_args
    source, layers = layers_from_args(args)
    if not layers:
        raise CLIError(f"--onnx {args.onnx}: the model has no Conv, Gemm or MatMul layer to draw")
    if args.onnx:
        source = Path(args.onnx).stem
    return source, tuple(layers)


def _filter_platform(ref, platform: str | None):
    """The reference rows of ``platform`` (all without it); one line if the data have none of it."""
    if platform is None or ref is None:
        return ref
    plats = sorted(set(ref["platform"].astype(str)))
    if platform not in plats:
        raise CLIError(f"--platform: no reference rows of {platform!r}; the data hold: {', '.join(plats)}")
    return ref.loc[ref["platform"] == platform].reset_index(drop=True)


def run(args: argparse.Namespace) -> int:
    from complexity.machine import Machine
    from paper_figs.registry import (FIGURES, WHY_NOT, FigureInputs, canonical, figure_names, make_figure,
                                     unused_inputs)
    names = figure_names()
    if args.list:
        for n in names:
            flag = "  [needs reference data]" if FIGURES[n].needs_reference else ""
            print(f"{n:20s} {FIGURES[n].summary}{flag}")
        return 0
    only = [canonical(n) for n in args.only] if args.only else names
    unknown = [n for n in only if n not in names]
    if unknown:
        raise CLIError(f"--only: unknown figure {unknown[0]!r}; known: {', '.join(names)}")
    if args.M is not None:
        Machine(M=args.M)  # validates --M with a one-line MachineError
    given = _given_inputs(args)
    if args.only:  # a figure asked for by name must use every input given with it
        for n in only:
            bad = unused_inputs(n, given)
            if bad:
                raise CLIError(f"{n} cannot use {_FLAG[bad[0]]}: {WHY_NOT[bad[0]]}; drop the flag or ask for "
                               f"another figure (see docs/figures.md)")
    if args.network is not None:
        from complexity.zoo import network_names
        if args.network not in network_names():
            raise CLIError(f"--network: unknown network {args.network!r}; known: {', '.join(network_names())}")
    if args.arch:
        from validation.architectures import get_architecture
        get_architecture(args.arch)  # one-line ArchitectureError on a bad name or file
    label, layers = _user_layers(args)
    ref, source = _load_reference(args.data)
    ref = _filter_platform(ref, args.platform)
    print(f"reference data: {source}" + (f" ({len(ref)} rows"
                                         + (f" of {args.platform}" if args.platform else "") + ")"
                                         if ref is not None else ""))
    inputs = FigureInputs(reference=ref, source=source, M=args.M, network=args.network, layers=layers,
                          layers_source=label, arch=args.arch, platform=args.platform)
    out = Path(args.out)
    n_done = 0
    for n in only:
        res = make_figure(n, out, inputs)
        if res.skipped:
            if res.refused and args.only:
                raise CLIError(f"{n}: {res.skipped}")
            print(f"{n}: skipped: {res.skipped}")
            continue
        n_done += 1
        print(f"{n}: " + ", ".join(str(p) for p in res.paths))
        for g in unused_inputs(n, given):
            print(f"  note: {_FLAG[g]} not used: {WHY_NOT[g]}")
        for note in res.notes:
            print(f"  note: {note}")
    print(f"{n_done} of {len(only)} figure(s) written to {out}/")
    return 0
