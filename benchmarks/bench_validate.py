"""Time the full validation (read, bounds, fits, calibration, proxies, scaling, report).

Usage: python benchmarks/bench_validate.py [--data FILE.csv] [--repeat N]
Default data: the bundled reference dataset.  Target: under 30 s on 2 cores.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from validation.pipeline import run_validation  # noqa: E402
from validation.reference_data import bundled_reference_path, read_reference_csv  # noqa: E402
from validation.report import write_report  # noqa: E402

TARGET_S = 30.0


def bench(path: Path) -> dict:
    """Seconds spent in each stage of one full validation of ``path``."""
    t0 = time.perf_counter()
    df = read_reference_csv(path)
    t1 = time.perf_counter()
    res = run_validation(df, source=str(path))
    t2 = time.perf_counter()
    res.text()
    res.records()
    with tempfile.TemporaryDirectory() as d:
        write_report(d, "Validation of the energy bounds", res.sections())
    t3 = time.perf_counter()
    return dict(rows=len(df), platforms=len(res.platforms), series=len(res.scaling),
                read=t1 - t0, validate=t2 - t1, report=t3 - t2, total=t3 - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=bundled_reference_path())
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if not args.data.is_file():
        print(f"no data at {args.data}; give --data FILE.csv", file=sys.stderr)
        return 2
    runs = [bench(args.data) for _ in range(args.repeat)]
    best = min(runs, key=lambda r: r["total"])
    print(f"data: {args.data} ({best['rows']} rows, {best['platforms']} platforms, {best['series']} scaling series)")
    print("stage     best of %d (s)" % args.repeat)
    for k in ("read", "validate", "report", "total"):
        print(f"{k:9s} {best[k]:8.2f}")
    ok = best["total"] < TARGET_S
    print(f"target < {TARGET_S:.0f} s: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
