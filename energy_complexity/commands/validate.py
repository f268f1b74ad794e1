"""``energy-complexity validate``: statistical validation of the bounds against reference energy."""

from __future__ import annotations

import argparse
import json
import sys

from complexity.machine import EYERISS_COSTS, REFERENCE_BITS
from energy_complexity.errors import CLIError

NAME = "validate"
HELP = "test how well the bounds fit reference energy data (regression, calibration, proxies, scaling)"
DESCRIPTION = (
    "Fit log E_ref = a + beta log B for each platform and bound B in {LB, OS, WS, min} (HC3 95% CI, "
    "t-test of beta = 1, R^2, residual tests, spread of E_ref/B), calibrate E_ref ~ alpha_D Q + alpha_B A "
    "+ alpha_M F with cross-validated error, compare with naive proxies (#MACs, #weights, |X|+|W|+|Y|) "
    "by R^2, AIC and the J test, and check scaling slopes. Methods: docs/validation.md.")


def _figures_dir():
    """The default output folder of `energy-complexity figures` (relative to the working directory)."""
    try:
        from energy_complexity.commands.figures import DEFAULT_OUT
    except ImportError:
        return "figures"
    return str(DEFAULT_OUT)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from validation.reference_data import bundled_reference_path
    parser.add_argument("--data", metavar="FILE.csv", default=None,
                        help="reference energy CSV (layout of validation/reference_data.py); default: the "
                             f"bundled dataset {bundled_reference_path().name} in validation/data/")
    parser.add_argument("--platform", metavar="P", help="validate one platform only (default: every platform)")
    parser.add_argument("--json", action="store_true",
                        help="print a JSON list, one object per (platform, bound), instead of tables")
    parser.add_argument("--report", metavar="DIR",
                        help="also write DIR/report.md and DIR/report.html (self-contained), every table as CSV "
                             "and DIR/validation.json")
    parser.add_argument("--figures", metavar="PATH", action="append", default=None,
                        help="PNG file or folder of PNGs to embed in the report (repeatable; default: "
                             f"./{_figures_dir()}, the output folder of `energy-complexity figures`, if it exists)")
    g = parser.add_argument_group("energy costs of the bounds")
    g.add_argument("--eD", type=float, default=EYERISS_COSTS["eD"], help="DRAM word cost (default %(default)g)")
    g.add_argument("--eB", type=float, default=EYERISS_COSTS["eB"], help="Buffer access cost (default %(default)g)")
    g.add_argument("--eM", type=float, default=EYERISS_COSTS["eM"], help="MAC cost (default %(default)g)")
    g.add_argument("--bits", type=int, default=REFERENCE_BITS, help="word width in bits (default %(default)d)")
    g.add_argument("--calibrated-costs", action="store_true",
                   help="fit each platform with its own cost ratio: eD and eM from the calibration on the "
                        "lower bound's counts (an in-sample check; see docs/validation.md)")
    parser.add_argument("--arch", metavar="PLATFORM=ARCH[,...]", default=None,
                        help="architecture of the energy floor (pJ) per platform: a bundled name, a "
                             ".yaml/.json file or a Timeloop *.stats.txt (default: each bundled platform's "
                             "own, its Buffer resized to the row's M)")
    parser.add_argument("--upper", action="store_true",
                        help="also the best nested schedule's energy per row (bound hier_UB; ~0.05 s a row, "
                             "with a progress bar)")
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds (default %(default)d)")


def _parse_archs(spec: str | None) -> dict:
    """``PLATFORM=ARCH[,...]`` -> {platform: Architecture}; one clear line on a bad pair or file."""
    if not spec:
        return {}
    from validation.architectures import get_architecture
    out = {}
    for part in spec.split(","):
        plat, sep, arch = part.partition("=")
        if not sep or not plat.strip() or not arch.strip():
            raise CLIError(f"--arch: expected PLATFORM=ARCH[,...], got {part!r}")
        out[plat.strip()] = get_architecture(arch.strip())
    return out


def run(args: argparse.Namespace) -> int:
    from validation.pipeline import calibrated_costs, run_validation
    from validation.reference_data import ReferenceDataError, bundled_reference_path, read_reference_csv

    if args.folds < 2:
        raise CLIError(f"--folds must be at least 2, got {args.folds}")
    path = args.data or bundled_reference_path()
    try:
        if args.data is None and not bundled_reference_path().is_file():
            raise CLIError(f"the bundled dataset {bundled_reference_path()} is not there yet; "
                           "give --data FILE.csv")
        df = read_reference_csv(path)
        kw = dict(eD=args.eD, eB=args.eB, eM=args.eM, bits=args.bits, folds=args.folds,
                  source=str(path) if args.data else "bundled validation/data/" + path.name)
        kw.update(archs=_parse_archs(args.arch), upper=args.upper, progress=args.upper and sys.stderr.isatty())
        res = run_validation(df, args.platform, **kw)
        if args.calibrated_costs:
            res = run_validation(df, args.platform, platform_costs=calibrated_costs(res), **kw)
    except ReferenceDataError as exc:
        raise CLIError(str(exc)) from None
    if args.json:
        json.dump(res.records(), sys.stdout, indent=2, allow_nan=False)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(res.text())
    if args.report:
        try:
            paths = res.write_report(args.report, args.figures if args.figures is not None else [_figures_dir()])
        except OSError as exc:
            raise CLIError(f"--report {args.report}: {exc.strerror or exc}") from None
        print(f"wrote {paths[0]}, {paths[1]} and {len(paths) - 2} table files in {args.report}", file=sys.stderr)
    return 0
