"""ZigZag throughput per platform (layers per minute on N processes) and search-setting costs.

    python benchmarks/bench_zigzag.py                  # live: 12 dataset layers per platform, 2 processes
    python benchmarks/bench_zigzag.py --layers 6 --lpf 6,7,8 --check-lazy
    python benchmarks/bench_zigzag.py --from-cache     # summarize the timings the cache recorded

Live runs use a throw-away cache.  ``--lpf`` compares search efforts (time and
energy found); ``--check-lazy`` checks that the lazy-latency pipeline of
validation/zigzag_backend.py returns exactly ZigZag's own result.  Not a test:
timings depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from collections import defaultdict

from validation import zigzag_backend as zz
from validation.grids import grid
from validation.platforms import platform_names
from validation.sweep import ResultCache, SweepStats, Task, default_cache_dir, run_sweep


def sample_layers(n: int, seed: int = 0):
    layers = [l for _, l in grid("dataset")]
    return random.Random(seed).sample(layers, n)


def live(platforms, n: int, jobs: int, lpfs: list[int]) -> None:
    layers = sample_layers(n)
    print(f"{n} layers of the dataset grid (seed 0), {jobs} processes")
    print(f"{'platform':<15}{'lpf':>4}{'layers/min':>12}{'s/layer (worker)':>18}{'mean E (uJ)':>14}")
    for plat in platforms:
        for lpf in lpfs:
            settings = zz.SearchSettings(lpf_limit=lpf)
            tasks = [Task(l, plat, None, settings) for l in layers]
            with tempfile.TemporaryDirectory() as tmp:
                st = SweepStats()
                t0 = time.perf_counter()
                recs = run_sweep(tasks, ResultCache(tmp), jobs=jobs, progress=False, stats=st)
                wall = time.perf_counter() - t0
            ok = [r for r in recs if not r["error"]]
            per = statistics.mean(r["seconds"] for r in recs)
            e = statistics.mean(r["energy_pJ"] for r in ok) / 1e6 if ok else float("nan")
            print(f"{plat:<15}{lpf:>4}{60 * len(tasks) / wall:>12.1f}{per:>18.2f}{e:>14.3f}", flush=True)


def check_lazy(platforms, n: int) -> None:
    layers = sample_layers(n, seed=1)
    for plat in platforms:
        same = 0
        t_lazy = t_full = 0.0
        for l in layers:
            t0 = time.process_time()
            a = zz.estimate(l, plat, lazy_latency=True)
            t1 = time.process_time()
            b = zz.estimate(l, plat, lazy_latency=False)
            t2 = time.process_time()
            same += a == b
            t_lazy += t1 - t0
            t_full += t2 - t1
        print(f"{plat}: lazy latency == ZigZag's pipeline on {same}/{n} layers; CPU {t_lazy:.1f} s vs "
              f"{t_full:.1f} s", flush=True)


def from_cache(root, since: str = "") -> None:
    cache = ResultCache(root)
    per = defaultdict(list)
    for p in cache.dir.rglob("*.json"):
        r = json.loads(p.read_text())
        if r["date"] >= since:
            per[r["platform"]].append(r)
    print(f"cache {cache.dir}: per-layer wall seconds measured in the build's workers"
          + (f" since {since}" if since else ""))
    print(f"{'platform':<15}{'layers':>8}{'failed':>8}{'mean s':>9}{'median s':>10}{'layers/min (2 proc)':>21}")
    for plat, rs in sorted(per.items()):
        secs = [r["seconds"] for r in rs]
        print(f"{plat:<15}{len(rs):>8}{sum(bool(r['error']) for r in rs):>8}{statistics.mean(secs):>9.2f}"
              f"{statistics.median(secs):>10.2f}{2 * 60 / statistics.mean(secs):>21.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--platforms", default=",".join(platform_names()))
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--lpf", default="6", help="comma-separated lpf_limit values to compare")
    ap.add_argument("--check-lazy", action="store_true")
    ap.add_argument("--from-cache", action="store_true")
    ap.add_argument("--cache", default=str(default_cache_dir()))
    ap.add_argument("--since", default="", help="with --from-cache: only records dated at or after this "
                                                 "ISO time, e.g. 2026-11-21T07:44")
    args = ap.parse_args()
    plats = [p for p in args.platforms.split(",") if p]
    if args.from_cache:
        from_cache(args.cache, args.since)
        return
    if args.check_lazy:
        check_lazy(plats, args.layers)
    live(plats, args.layers, args.jobs, [int(x) for x in args.lpf.split(",")])


if __name__ == "__main__":
    main()
