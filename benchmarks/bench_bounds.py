"""Speed of the vectorized bounds: LB + OS + WS for 10^6 random realistic (layer, M) pairs.

Run: python benchmarks/bench_bounds.py [--n N] [--repeat R]
Prints the CPU time of each part (best of R runs, single-threaded numpy) and the total,
and the wall-clock time of one more run; target < 1 s.  Not a timed test: timings depend
on the machine and its load (CPU time is what one core spends, wall-clock adds waiting).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from bounds.lower_bound import lower_bound_np  # noqa: E402
from bounds.output_stationary import os_best_np  # noqa: E402
from bounds.weight_stationary import ws_best_np  # noqa: E402


def random_pairs(n: int, seed: int = 0) -> tuple[dict, np.ndarray]:
    """n valid CNN-like layers (groups, depthwise, strides, padding, batch) and Buffer sizes 2^8..2^20."""
    r = np.random.default_rng(seed)
    dw = r.random(n) < 0.1
    g = np.where(dw, r.integers(8, 513, n), r.choice([1, 1, 1, 2, 4, 8], n))
    cg = np.where(dw, 1, r.integers(1, 257, n))
    dg = np.where(dw, 1, r.integers(1, 257, n))
    h = r.integers(1, 225, n)
    w = np.where(r.random(n) < 0.8, h, r.integers(1, 225, n))
    kh = r.choice([1, 1, 3, 3, 5, 7, 11], n)
    kw = np.where(r.random(n) < 0.9, kh, r.choice([1, 3], n))
    ph = (r.random(n) * kh).astype(np.int64)
    pw = (r.random(n) * kw).astype(np.int64)
    kh, kw = np.minimum(kh, h + 2 * ph), np.minimum(kw, w + 2 * pw)
    ph, pw = np.minimum(ph, kh - 1), np.minimum(pw, kw - 1)
    sh = r.choice([1, 1, 1, 2, 4], n)
    sw = np.where(r.random(n) < 0.9, sh, r.choice([1, 2], n))
    P = {"b": r.choice([1, 1, 1, 2, 4, 32], n), "c": g * cg, "d": g * dg, "h": h, "w": w, "kh": kh, "kw": kw,
         "sh": sh, "sw": sw, "ph": ph, "pw": pw, "groups": g}
    return {k: np.asarray(v, dtype=np.int64) for k, v in P.items()}, (2 ** r.uniform(8, 20, n)).astype(np.int64)


def best_time(fn, repeat: int) -> tuple[float, object]:
    """Best CPU time (time.process_time: this process, one thread) over ``repeat`` runs, and fn()."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.process_time(); out = fn(); best = min(best, time.process_time() - t)
    return best, out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="number of (layer, M) pairs (default 10^6)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per part; the best is reported (default 3)")
    args = ap.parse_args(argv)
    P, M = random_pairs(args.n)
    t_lb, lb = best_time(lambda: lower_bound_np(P, M), args.repeat)
    t_os, os_ = best_time(lambda: os_best_np(P, M), args.repeat)
    t_ws, ws_ = best_time(lambda: ws_best_np(P, M), args.repeat)
    best = np.minimum(os_["Q"], ws_["Q"])
    ok = np.isfinite(best)
    assert np.all(lb["Q"][ok] <= best[ok]), "lower bound above a dataflow"
    total = t_lb + t_os + t_ws
    t0 = time.perf_counter()
    lower_bound_np(P, M); os_best_np(P, M); ws_best_np(P, M)
    wall = time.perf_counter() - t0
    print(f"{args.n:,} (layer, M) pairs, CPU time on one core, best of {args.repeat}: LB {t_lb:.3f} s, "
          f"OS {t_os:.3f} s, WS {t_ws:.3f} s; total {total:.3f} s ({total / args.n * 1e9:.0f} ns per pair); "
          f"wall-clock of one more run {wall:.3f} s (includes waiting for a shared CPU)")
    print(f"feasible for some dataflow: {ok.mean():.1%}; median gap min(OS,WS)/LB on Q "
          f"{np.median(best[ok] / lb['Q'][ok]):.3f}, max {np.max(best[ok] / lb['Q'][ok]):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
