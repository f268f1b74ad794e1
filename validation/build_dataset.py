"""Regenerate the bundled reference dataset: ``python -m validation.build_dataset``.

Runs ZigZag on the ``dataset`` grid (validation/grids.py: the standard grid plus
every zoo network's distinct layers) on each platform at its own Buffer size, and
the ``buffer`` grid at six Buffer sizes per platform; writes
validation/data/reference_energy.csv and validation/data/PROVENANCE.md after every
stage, so a partial build is already usable.  Every finished layer is cached
(validation/sweep.py), so an interrupted build resumes where it stopped.
"""

from __future__ import annotations

import argparse
import platform as _platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from validation import zigzag_backend as zz
from validation.grids import BUFFER_SIZES, grid
from validation.reference_data import bundled_reference_path, write_reference_csv
from validation.sweep import ResultCache, SweepStats, Task, records_to_frame, run_sweep

#: Platforms of the main grid, in build order (simba_like is ~3x slower per layer: last).
MAIN_PLATFORMS = ("eyeriss_like", "tpu_like", "edge_tpu_like", "simba_like")

#: Buffer sizes (words) of the Buffer sweep per platform.  simba_like's PE input
#: buffers hold 64 Ki words each; ZigZag finds no mapping with a smaller global buffer.
BUFFER_SWEEP = {
    "eyeriss_like": BUFFER_SIZES,
    "tpu_like": BUFFER_SIZES,
    "edge_tpu_like": BUFFER_SIZES,
    "simba_like": (65536, 131072, 262144, 524288, 1048576, 2097152),
}

#: Stages in build order: (name, platforms, grid, per-platform buffer sizes or None).
#: Ordered so that a build cut short still holds whole platforms: the main grid on
#: two platforms, one Buffer sweep, the third platform, the other sweeps, simba_like.
STAGES = (
    ("main", ("eyeriss_like", "tpu_like"), "dataset", None),
    ("buffer_tpu", ("tpu_like",), "buffer", BUFFER_SWEEP),
    ("main_edge", ("edge_tpu_like",), "dataset", None),
    ("buffer_eyeriss", ("eyeriss_like",), "buffer", BUFFER_SWEEP),
    ("buffer_edge", ("edge_tpu_like",), "buffer", BUFFER_SWEEP),
    ("simba_buffer", ("simba_like",), "buffer", BUFFER_SWEEP),
    ("simba", ("simba_like",), "dataset", None),
)

COMMAND = "python -m validation.build_dataset --jobs 2"


def stage_tasks(platforms, grid_name: str, sizes: dict | None,
                settings: zz.SearchSettings) -> list[Task]:
    tasks = []
    for plat in platforms:
        for net, layer in grid(grid_name):
            for M in (sizes[plat] if sizes else (None,)):
                tasks.append(Task(layer, plat, M, settings, network=net))
    return tasks


def write_provenance(path: Path, df, stats: dict[str, SweepStats], settings: zz.SearchSettings,
                     command: str) -> None:
    from validation.platforms import get_platform
    lines = [
        "# Provenance of reference_energy.csv",
        "",
        f"- Generated: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Command: `{command}`",
        f"- Tool: ZigZag (PyPI `zigzag-dse`) {zz.tool_version()}, in-process, energy criterion, "
        f"LOMA temporal search; settings `{settings.as_string()}`",
        f"- Python {_platform.python_version()} on {_platform.system()} {_platform.machine()}",
        f"- Rows: {len(df)}; distinct layers: {len(df.drop_duplicates(subset=['b', 'c', 'd', 'h', 'w', 'kh', 'kw', 'sh', 'sw', 'ph', 'pw', 'groups']))}",
        "- Layers: validation/grids.py (`dataset` = standard grid + zoo networks' distinct layers; "
        "`buffer` = 20 layers of the standard grid); description in docs/reference_data.md",
        "",
        "## Platforms (hardware file, mapping file, Buffer memory, M in words)",
        "",
    ]
    for plat in sorted(df["platform"].unique()):
        p = get_platform(plat)
        sub = df[df["platform"] == plat]
        Ms = sorted(int(m) for m in sub["M"].unique())
        lines.append(f"- `{plat}`: hardware `{p.hardware}`, mapping `{p.mapping}` (files sha256 prefix "
                     f"{p.fingerprint()}), Buffer `{p.buffer_memory}` (default {p.default_buffer_words} words "
                     f"of {p.bits} bits); {len(sub)} rows; M in {Ms}")
        others = p.onchip_words(1) - 1
        lines.append(f"  - on-chip capacity `M_onchip` = M + {others} words (every memory below DRAM, all "
                     f"instances, at {p.bits} bits per word; validation.platforms.onchip_words)")
    lines += ["", "## Build stages", ""]
    for name, s in stats.items():
        lines.append(f"- {name}: {s.total} tasks, {s.cached} from cache, {s.computed} computed, "
                     f"{s.failed} without a ZigZag mapping (excluded), {s.seconds:.0f} s")
    lines += ["", "Regenerate with the command above; results are cached under "
              "$XDG_CACHE_HOME/energy-complexity (or --cache DIR), so a rerun only computes missing rows.", ""]
    history = _history(path)
    path.write_text("\n".join(lines) + (("\n" + history) if history else ""))


def _history(path: Path) -> str:
    """The hand-kept '## History' section of an existing provenance file (kept across rebuilds)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return ""
    i = text.find("\n## History")
    return text[i + 1:] if i >= 0 else ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m validation.build_dataset", description=__doc__)
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (default %(default)s)")
    ap.add_argument("--cache", metavar="DIR", help="cache directory (default $XDG_CACHE_HOME/energy-complexity)")
    ap.add_argument("--out", metavar="CSV", default=str(bundled_reference_path()),
                    help="output CSV (default: the bundled dataset)")
    ap.add_argument("--stages", default=",".join(s[0] for s in STAGES),
                    help="comma-separated stages to run (default: all): " + ", ".join(s[0] for s in STAGES))
    ap.add_argument("--cached-only", action="store_true",
                    help="compute nothing: write the CSV from the stages' results already in the cache")
    ap.add_argument("--lpf-limit", type=int, default=zz.SearchSettings().lpf_limit)
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    settings = zz.SearchSettings(lpf_limit=args.lpf_limit)
    cache = ResultCache(args.cache)
    others = cache.other_versions()
    if others:
        print(f"note: cache {cache.root} also holds results of {zz.TOOL} {', '.join(others)}; "
              "they are kept apart and not used", file=sys.stderr)
    wanted = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = set(wanted) - {s[0] for s in STAGES}
    if unknown:
        ap.error(f"--stages: unknown stage(s) {', '.join(sorted(unknown))}")
    out = Path(args.out)
    records: list[dict] = []
    stats: dict[str, SweepStats] = {}
    command = COMMAND if args.out == str(bundled_reference_path()) else " ".join(["python -m validation.build_dataset"] + (argv or sys.argv[1:]))
    for name, plats, gname, sizes in STAGES:
        if name not in wanted:
            continue
        tasks = stage_tasks(plats, gname, sizes, settings)
        st = SweepStats()
        t0 = time.time()
        if args.cached_only:
            recs = [cache.get(t) for t in tasks]
            st.total, st.cached = len(tasks), sum(r is not None for r in recs)
            st.failed = sum(1 for r in recs if r and r.get("error"))
            recs = [r for r in recs if r is not None]
        else:
            recs = run_sweep(tasks, cache, jobs=args.jobs, progress=not args.no_progress, stats=st, desc=name)
        stats[name] = st
        records += recs
        df = records_to_frame(records).drop_duplicates(subset=["platform", "M", "b", "c", "d", "h", "w", "kh", "kw",
                                                               "sh", "sw", "ph", "pw", "groups"])
        if len(df):
            write_reference_csv(df, out)
            write_provenance(out.parent / "PROVENANCE.md", df, stats, settings, command)
        print(f"[{name}] {st.total} tasks: {st.cached} cached, {st.computed} computed, {st.failed} failed, "
              f"{time.time() - t0:.0f} s; {len(df)} rows in {out}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
