"""``energy-complexity validate``: statistical validation of the bounds against reference energy."""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import fields
from pathlib import Path

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
                        help="also write DIR/report.md and DIR/report.html (self-contained: a per-platform verdict "
                             "first, then every table with its units, figures drawn into DIR/figures/), every table "
                             "as CSV and DIR/validation.json")
    fg = parser.add_mutually_exclusive_group()
    fg.add_argument("--figures", metavar="PATH", action="append", default=None,
                    help="PNG file or folder of PNGs to embed in the report instead of drawing them (repeatable; "
                         f"e.g. ./{_figures_dir()}, the output folder of `energy-complexity figures`); default: "
                         "draw the figures of the validated data (mapping_gap, bound_vs_estimate, residuals, ...) "
                         "into DIR/figures/ and embed them")
    fg.add_argument("--no-figures", action="store_true",
                    help="write the report without figures (faster)")
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


#: Per figure, a units sentence for its report caption when the registry summary names no unit.
FIGURE_UNITS = {
    "mapping_gap": "Gap = E_ref / E_LB(arch), both in pJ.",
    "bound_vs_estimate": "E_ref in pJ; the two-level bounds in model units (MAC = 1), the floor E_LB(arch) in pJ.",
    "residuals": "Residuals in natural-log units (0.1 = about 10% above the fitted line); F in MACs, M in words.",
}
#: Per figure, a sentence on how to read it, always appended to its caption.
FIGURE_NOTES = {"mapping_gap": "1 = on the floor (E_ref = E_LB(arch)); only an estimator undercount can put a row "
                               "below it."}
_UNIT = re.compile(r"\bpJ\b|model units|\bwords\b|natural.log|\bMACs\b")


def figure_caption(name: str, summary: str = "") -> str:
    """A report caption: the figure's summary as a sentence, plus a units sentence if the summary names no unit."""
    text = summary.strip() or name.replace("_", " ")
    text = text[0].upper() + text[1:]
    if not text.endswith("."):
        text += "."
    if name in FIGURE_UNITS and not _UNIT.search(text):
        text += " " + FIGURE_UNITS[name]
    return f"{text} {FIGURE_NOTES[name]}" if name in FIGURE_NOTES else text


def _summaries() -> dict:
    """{figure name: registry summary}, empty when paper_figs cannot be imported."""
    try:
        from paper_figs.registry import FIGURES, figure_names
        figure_names()
    except ImportError:
        return {}
    return {n: spec.summary for n, spec in FIGURES.items()}


def given_figures(paths) -> list:
    """The PNGs of --figures as report Figures, captioned from the registry when named like a figure."""
    from validation.report import Figure, find_figures
    summaries = _summaries()
    return [Figure(p, figure_caption(p.stem, summaries[p.stem]) if p.stem in summaries else "")
            for p in find_figures(paths)]


def _used_rows(df, platform):
    """The reference rows the validation used (one platform's with --platform)."""
    return df if platform is None else df[df["platform"] == platform]


def report_figures(out_dir: Path, reference, source: str, args) -> tuple[list, list]:
    """Draw every figure that depends on the reference data into ``out_dir``: (Figures, [(name, why skipped)]).

    The key figure mapping_gap comes first; progress goes to stderr.  With --arch the
    figures use the architecture only when it names the one validated platform.
    """
    try:
        from paper_figs.registry import FIGURES, FigureInputs, figure_names, make_figure
    except ImportError as exc:
        return [], [("all figures", f"paper_figs cannot be imported: {exc}")]
    from validation.report import Figure
    names = [n for n in figure_names() if FIGURES[n].needs_reference]
    names.sort(key=lambda n: n != "mapping_gap")
    arch = None
    pairs = [p.partition("=") for p in (args.arch or "").split(",") if p.strip()]
    if len(pairs) == 1 and set(reference["platform"]) == {pairs[0][0].strip()}:
        arch = pairs[0][2].strip()
    elif pairs:
        print("  note: the figures use each bundled platform's own architecture (--arch names more than the "
              "one validated platform)", file=sys.stderr)
    if args.calibrated_costs:
        print("  note: the figures use the costs given (--eD, --eB, --eM), not the calibrated ones", file=sys.stderr)
    known = {f.name for f in fields(FigureInputs)}
    inputs = FigureInputs(**{k: v for k, v in dict(reference=reference, source=source, eD=args.eD, eB=args.eB,
                                                   eM=args.eM, bits=args.bits, arch=arch,
                                                   platform=args.platform).items() if k in known})
    print(f"drawing figures for the report ({', '.join(names)}) into {out_dir} ...", file=sys.stderr)
    out_dir.mkdir(parents=True, exist_ok=True)
    figures, skipped = [], []
    for n in names:
        try:
            r = make_figure(n, out_dir, inputs)
        except Exception as exc:  # noqa: BLE001 - a broken figure must not lose the report: list it as skipped
            skipped.append((n, f"failed: {type(exc).__name__}: {exc}"))
            print(f"  {n}: skipped ({skipped[-1][1]})", file=sys.stderr)
            continue
        png = next((p for p in r.paths if Path(p).suffix.lower() == ".png"), None)
        if r.skipped or png is None:
            skipped.append((n, r.skipped or "no PNG written"))
            print(f"  {n}: skipped ({skipped[-1][1]})", file=sys.stderr)
        else:
            figures.append(Figure(Path(png), figure_caption(n, FIGURES[n].summary)))
            print(f"  {n}: {png}", file=sys.stderr)
    return figures, skipped


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
            if args.no_figures:
                figures, skipped = [], []
            elif args.figures is not None:
                figures, skipped = given_figures(args.figures), []
            else:
                figures, skipped = report_figures(Path(args.report) / "figures", _used_rows(df, args.platform),
                                                  res.source, args)
            paths = res.write_report(args.report, figures, skipped)
        except OSError as exc:
            raise CLIError(f"--report {args.report}: {exc.strerror or exc}") from None
        print(f"wrote {paths[0]}, {paths[1]} and {len(paths) - 2} table files in {args.report}", file=sys.stderr)
    return 0
