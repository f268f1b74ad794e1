"""``energy-complexity reference``: reference energy from independent estimators.

``reference run`` estimates layers with ZigZag on an accelerator platform (one layer
from the same flags as ``bounds``, a named grid, a zoo network or a CSV of layers),
in parallel, cached on disk; ``reference import-timeloop`` turns Timeloop/Accelergy
statistics into a row of the same reference-energy CSV.  See docs/reference_data.md.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from energy_complexity.errors import CLIError
from energy_complexity.layer_args import add_layer_arguments, layer_from_args, layer_values

NAME = "reference"
HELP = "reference energy from ZigZag sweeps or Timeloop statistics, as a reference-energy CSV"
DESCRIPTION = (
    "Estimate layers' energy with ZigZag (energy-optimal mapping, LOMA search) on an accelerator "
    "platform, in parallel, with an on-disk cache that makes interrupted sweeps resume; or import "
    "Timeloop/Accelergy statistics. Output: the reference-energy CSV layout of "
    "validation/reference_data.py (docs/reference_data.md).")

#: Fields left out of --json so that two runs print identical bytes.
_VOLATILE = ("date", "seconds")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="reference_command", metavar="ACTION")
    sub.required = True
    from validation.platforms import platform_names
    from validation.grids import grid_names

    run = sub.add_parser("run", help="estimate layers with ZigZag on a platform",
                         description="Estimate one layer (the flags of `bounds`), a named grid, a zoo "
                                     "network or a CSV of layers with ZigZag on one or more platforms.")
    run.add_argument("--platform", required=True, metavar="P",
                     help=f"platform(s), comma-separated: {', '.join(platform_names())}")
    src = run.add_argument_group("layers (default: the single layer of the layer flags)")
    src.add_argument("--grid", metavar="NAME", help=f"a named layer grid: {', '.join(grid_names())}")
    src.add_argument("--csv", metavar="FILE", help="a CSV of layers (columns named as the layer flags)")
    add_layer_arguments(run, sources=True)
    run.add_argument("--buffer-words", metavar="M[,M...]",
                     help="Buffer capacity in words, or a comma-separated list (default: the platform's own)")
    run.add_argument("--out", metavar="CSV", help="write the rows to this reference-energy CSV")
    run.add_argument("--append", action="store_true",
                     help="add to an existing --out CSV (refused if it holds another tool version)")
    run.add_argument("--json", action="store_true", help="print the results as JSON (one object per row)")
    run.add_argument("--jobs", type=int, default=1, help="worker processes (default %(default)s)")
    run.add_argument("--cache", metavar="DIR",
                     help="cache directory (default $XDG_CACHE_HOME/energy-complexity or ~/.cache/...)")
    run.add_argument("--no-cache", action="store_true",
                     help="neither read nor write the cache (recompute everything)")
    run.add_argument("--lpf-limit", type=int, default=6,
                     help="ZigZag LOMA search effort: loop prime factors permuted (default %(default)s)")
    run.add_argument("--temporal-mapping", choices=("uneven", "even"), default="uneven",
                     help="ZigZag temporal mapping type (default %(default)s)")
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    run.set_defaults(_reference=_run, _reference_parser=run)

    tl = sub.add_parser("import-timeloop", help="a reference-energy row from Timeloop statistics",
                        description="Read timeloop-mapper.stats.txt / timeloop-model.stats.txt (a file, or "
                                    "a Timeloop output directory) for one layer and write it as a row "
                                    "of the reference-energy CSV.")
    tl.add_argument("stats", metavar="PATH", help="a *.stats.txt file or a Timeloop output directory")
    tl.add_argument("--platform", required=True, metavar="NAME", help="platform name for the row")
    tl.add_argument("--M", type=int, required=True, help="the platform's Buffer capacity in words")
    add_layer_arguments(tl, sources=False)
    tl.add_argument("--tool-version", default="", help="Timeloop version, for the provenance columns")
    tl.add_argument("--out", metavar="CSV", help="write (or with --append, add) the row to this CSV")
    tl.add_argument("--append", action="store_true", help="add to an existing --out CSV")
    tl.add_argument("--json", action="store_true", help="print the row as JSON")
    tl.set_defaults(_reference=_import_timeloop)


def run(args: argparse.Namespace) -> int:
    return args._reference(args)


# ----- reference run ------------------------------------------------------------------

def _platforms(text: str) -> list[str]:
    from validation.platforms import PlatformError, get_platform
    names = [p.strip() for p in text.split(",") if p.strip()]
    if not names:
        raise CLIError("--platform: give at least one platform")
    for n in names:
        try:
            get_platform(n)
        except PlatformError as exc:
            raise CLIError(f"--{exc}") from None
    return names


def _buffer_sizes(text: str | None) -> list[int | None]:
    if text is None:
        return [None]
    out = []
    for part in text.split(","):
        try:
            v = int(part)
        except ValueError:
            raise CLIError(f"--buffer-words: {part!r} is not a whole number of words") from None
        if v < 1:
            raise CLIError(f"--buffer-words: must be positive, got {v}")
        out.append(v)
    return out


def _layers_from_csv(path: str) -> list[tuple[str, object]]:
    from complexity.layer import Layer, LayerError
    from validation.reference_data import ReferenceDataError, read_csv_file
    p = Path(path)
    try:
        df = read_csv_file(p)
    except ReferenceDataError as exc:
        raise CLIError(f"--csv: {exc}") from None
    if not {"c", "d"} <= set(df.columns):
        raise CLIError(f"--csv: {p}: needs at least the columns c and d (and optionally b, h, w, hw, kh, kw, "
                       "k, sh, sw, stride, ph, pw, pad, groups, name)")
    out = []
    for i, row in enumerate(df.to_dict("records")):
        vals = {k: v for k, v in row.items() if not (isinstance(v, float) and v != v)}
        if "layer_name" in vals and "name" not in vals:
            vals["name"] = vals["layer_name"]
        if "name" in vals:
            vals["name"] = str(vals["name"])
        try:
            layer = Layer.from_dict(vals)
        except LayerError as exc:
            raise CLIError(f"--csv: {p}: row {i + 1}: {exc}") from None
        out.append((str(vals.get("network", "") or ""), layer))
    if not out:
        raise CLIError(f"--csv: {p}: no rows")
    return out


def _layer_source(args) -> list[tuple[str, object]]:
    chosen = [f for f in ("grid", "csv", "network", "onnx") if getattr(args, f, None)]
    if len(chosen) > 1:
        raise CLIError("give only one of --grid, --csv, --network, --onnx")
    if chosen and layer_values(args):
        raise CLIError(f"--{chosen[0]} selects the layers: do not also give layer flags")
    if args.grid:
        from validation.grids import GridError, grid
        try:
            return grid(args.grid)
        except GridError as exc:
            raise CLIError(f"--{exc}") from None
    if args.csv:
        return _layers_from_csv(args.csv)
    if args.network or args.onnx:
        from energy_complexity.layer_args import layers_from_args
        source, layers = layers_from_args(args)
        return [(args.network or "", l) for l in layers]
    return [("", layer_from_args(args))]


def _public(rec: dict) -> dict:
    return {k: v for k, v in rec.items() if k not in _VOLATILE}


def _check_append_version(out: str, tool: str, version: str) -> None:
    """Refuse (before computing anything) to append results of another version of the same tool."""
    import pandas as pd
    try:
        old = pd.read_csv(out, comment="#", usecols=lambda c: c in ("tool", "tool_version"), dtype=str)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError):
        return  # _write_rows reports an unreadable file
    if "tool" not in old.columns or "tool_version" not in old.columns:
        return
    theirs = sorted({v for t, v in zip(old["tool"], old["tool_version"]) if t == tool and v != version})
    if theirs:
        raise CLIError(f"--append: {out} holds results of {tool} {', '.join(theirs)}, these would be {version}: "
                       "refusing to mix tool versions (write to another file)")


def _write_rows(df, out: str, append: bool) -> int:
    import pandas as pd
    from validation.reference_data import ReferenceDataError, read_reference_csv, write_reference_csv
    p = Path(out)
    if append and p.exists():
        try:
            old = read_reference_csv(p)
        except ReferenceDataError as exc:
            raise CLIError(f"--append: {exc}") from None
        for col in ("tool", "tool_version"):
            if col in old.columns:
                mine = {(str(t), str(v)) for t, v in zip(df["tool"], df["tool_version"])}
                theirs = {(str(t), str(v)) for t, v in zip(old.get("tool", ""), old.get("tool_version", ""))}
                clash = {v for t, v in theirs if any(t == t2 and v != v2 for t2, v2 in mine)}
                if clash:
                    raise CLIError(f"--append: {p} holds results of {df['tool'].iloc[0]} "
                                   f"{', '.join(sorted(clash))}, these are {df['tool_version'].iloc[0]}: refusing "
                                   "to mix tool versions (write to another file)")
                break
        df = pd.concat([old, df], ignore_index=True)
    try:
        write_reference_csv(df, p)
    except ReferenceDataError as exc:
        raise CLIError(str(exc)) from None
    return len(df)


def _command_line(args) -> str:
    """The ``reference run`` command that resumes this one: every flag given (not at its default)."""
    words = ["energy-complexity", "reference", "run"]
    parser = getattr(args, "_reference_parser", None)
    for act in (parser._actions if parser is not None else []):
        if not act.option_strings or act.dest == "help":
            continue
        v = getattr(args, act.dest, None)
        if v is None or v is False or v == act.default:
            continue
        opt = next((o for o in act.option_strings if o.startswith("--")), act.option_strings[0])
        if v is True or act.nargs == 0:
            words.append(opt)
        else:
            words += [opt] + [str(x) for x in (v if isinstance(v, list) else [v])]
    return shlex.join(words)


def _run(args) -> int:
    """``reference run``; Ctrl-C ends with one line (what is cached, how to resume) and exit status 130."""
    from validation.sweep import SweepInterrupted
    try:
        return _run_sweep(args)
    except SweepInterrupted as exc:
        if args.no_cache:
            print(f"interrupted: {exc.cached} of {exc.distinct} estimates were computed but not kept (--no-cache); "
                  f"rerun without --no-cache to make the sweep resumable", file=sys.stderr)
        else:
            print(f"interrupted: {exc.cached} of {exc.distinct} estimates are cached in {exc.cache_dir}; "
                  f"resume with: {_command_line(args)}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:  # before or after the sweep itself
        kept = "nothing was kept (--no-cache)" if args.no_cache else "every finished estimate is cached"
        print(f"interrupted: {kept}; resume with: {_command_line(args)}", file=sys.stderr)
        return 130


def _announce(stats) -> None:
    n = stats.cached + stats.to_compute
    print(f"{n} estimate{'s' if n != 1 else ''}: {stats.cached} from cache, {stats.to_compute} to compute",
          file=sys.stderr)


def _run_sweep(args) -> int:
    from validation import zigzag_backend as zz
    from validation.platforms import PlatformError
    from validation.sweep import ResultCache, SweepStats, Task, ToolVersionMismatch, records_to_frame, run_sweep

    if args.jobs < 1:
        raise CLIError(f"--jobs must be at least 1, got {args.jobs}")
    if args.append and not args.out:
        raise CLIError("--append needs --out")
    platforms = _platforms(args.platform)
    sizes = _buffer_sizes(args.buffer_words)
    try:
        settings = zz.SearchSettings(lpf_limit=args.lpf_limit, temporal_mapping_type=args.temporal_mapping)
    except ValueError as exc:
        raise CLIError(f"--{str(exc).replace('_', '-')}") from None
    layers = _layer_source(args)
    if args.append and Path(args.out).exists():
        _check_append_version(args.out, zz.TOOL, zz.tool_version())
    tasks = [Task(layer, plat, M, settings, network=net) for plat in platforms for net, layer in layers
             for M in sizes]
    stats = SweepStats()
    try:
        if args.no_cache:
            import tempfile
            with tempfile.TemporaryDirectory(prefix="energy-complexity-nocache-") as tmp:
                records = run_sweep(tasks, ResultCache(tmp), jobs=args.jobs,
                                    progress=not args.no_progress and len(tasks) > 1, stats=stats,
                                    on_plan=_announce)
        else:
            cache = ResultCache(args.cache)
            others = cache.other_versions()
            if others:
                print(f"note: cache {cache.root} also holds results of {zz.TOOL} {', '.join(others)}; they are "
                      f"kept apart and not used (this is {zz.TOOL} {cache.version})", file=sys.stderr)
            records = run_sweep(tasks, cache, jobs=args.jobs,
                                progress=not args.no_progress and len(tasks) > 1, stats=stats, on_plan=_announce)
    except (PlatformError, ToolVersionMismatch) as exc:
        raise CLIError(str(exc)) from None
    failed = [r for r in records if r.get("error")]
    if len(tasks) == 1 and failed:
        raise CLIError(failed[0]["error"])
    if args.json:
        objs = [_public(r) for r in records]
        print(json.dumps(objs[0] if len(objs) == 1 else objs, indent=2, sort_keys=True))
    try:
        df = records_to_frame(records)
    except ToolVersionMismatch as exc:
        raise CLIError(str(exc)) from None
    if args.out:
        if len(df) == 0:
            raise CLIError("no layer could be estimated: nothing to write")
        n = _write_rows(df, args.out, args.append)
        print(f"wrote {len(df)} rows ({n} in total) to {args.out}", file=sys.stderr)
    elif not args.json:
        df.to_csv(sys.stdout, index=False)
    print(f"{stats.total} estimates: {stats.cached} from cache, {stats.computed} computed, {stats.failed} without "
          f"a ZigZag mapping, {stats.seconds:.1f} s", file=sys.stderr)
    for r in failed[:5]:
        print(f"  no mapping: {r['error']}", file=sys.stderr)
    return 0


# ----- reference import-timeloop ------------------------------------------------------

def _import_timeloop(args) -> int:
    import pandas as pd
    try:
        from validation import timeloop
    except ImportError:
        raise CLIError("the Timeloop reader (validation/timeloop.py) is not available") from None
    layer = layer_from_args(args)
    p = Path(args.stats)
    prov = {"tool_version": args.tool_version} if args.tool_version else {}
    try:
        if p.is_dir():
            row = timeloop.read_timeloop_dir(p, layer, args.platform, args.M, **prov)
        elif p.is_file():
            row = timeloop.to_reference_row(timeloop.read_timeloop_stats(p), layer, args.platform, args.M, **prov)
        else:
            raise CLIError(f"{p}: no such file or directory")
    except ValueError as exc:
        raise CLIError(str(exc).splitlines()[0]) from None
    if args.json or not args.out:
        print(json.dumps(row, indent=2, sort_keys=True, default=float))
    if args.out:
        n = _write_rows(pd.DataFrame([row]), args.out, args.append)
        print(f"wrote 1 row ({n} in total) to {args.out}", file=sys.stderr)
    return 0
