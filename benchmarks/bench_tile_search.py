"""How close the fast vectorized tile search is to the exhaustive optimum, and how fast each is.

For every layer of the zoo networks at several Buffer sizes, compares os_best_np /
ws_best_np (a few candidate tiles per row, used for bulk evaluation) with os_best /
ws_best (exhaustive integer search, used by evaluate and evaluate_table) on Q, and
times both.  Run: python benchmarks/bench_tile_search.py [--networks a,b] [--M 4096,65536]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bounds.lower_bound import layer_arrays
from bounds.output_stationary import os_best, os_best_np
from bounds.result import InfeasibleError
from bounds.weight_stationary import ws_best, ws_best_np
from complexity.machine import Machine
from complexity.zoo import get_network, network_names

FIELDS = ("b", "c", "d", "h", "w", "kh", "kw", "sh", "sw", "ph", "pw", "groups")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--networks", default=",".join(network_names()))
    ap.add_argument("--M", default="1024,4096,16384,65536,262144,1048576", help="Buffer sizes in words")
    args = ap.parse_args()
    layers = [L for name in args.networks.split(",") for L in get_network(name)]
    Ms = [int(m) for m in args.M.split(",")]
    rows = [(L, M) for L in layers for M in Ms]
    P = layer_arrays({f: np.array([getattr(L, f) for L, _ in rows], dtype=np.int64) for f in FIELDS})
    Marr = np.array([M for _, M in rows], dtype=np.int64)
    print(f"{len(rows)} (layer, M) pairs: {len(layers)} zoo layers x M in {Ms}")
    print(f"{'dataflow':8} {'fast (s)':>9} {'exact (s)':>9} {'median':>8} {'p90':>8} {'p99':>8} {'max':>8} {'exact %':>8}")
    for name, fast, exact in (("OS", os_best_np, os_best), ("WS", ws_best_np, ws_best)):
        t0 = time.perf_counter()
        q_fast = np.asarray(fast(P, Marr)["Q"], dtype=float)
        t_fast = time.perf_counter() - t0
        q_exact = np.full(len(rows), np.inf)
        t0 = time.perf_counter()
        for i, (L, M) in enumerate(rows):
            try:
                q_exact[i] = exact(L, Machine(M=M), exhaustive=True).Q
            except InfeasibleError:
                pass
        t_exact = time.perf_counter() - t0
        ok = np.isfinite(q_exact)
        assert np.array_equal(ok, np.isfinite(q_fast)), "feasibility must agree"
        ratio = q_fast[ok] / q_exact[ok]
        assert (ratio >= 1 - 1e-12).all(), "the fast search can never beat the exhaustive optimum"
        print(f"{name:8} {t_fast:9.3f} {t_exact:9.3f} {np.median(ratio):8.4f} {np.percentile(ratio, 90):8.4f} "
              f"{np.percentile(ratio, 99):8.4f} {ratio.max():8.4f} {100 * np.mean(ratio <= 1 + 1e-12):7.1f}%")


if __name__ == "__main__":
    main()
