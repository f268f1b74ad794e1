"""FC bound report: the entry-phase lower bound against the previous one and the dataflows.

Part 1, fully-connected layers (b x c) times (c x d) with c = d = 4096 and b in
{64, 256, 1024, 4096} at M in {1K, 4K, 16K, 64K} words: the lower bound Q_LB, the
previous bound (load+store phases, docs/theory.md 3.7), Smith et al.'s 2F/sqrt(M) - 2M,
and the best schedule min(OS, WS) (exhaustive tiles) over Q_LB.
Part 2 (--gap): min(OS, WS)/LB over the zoo's layers (benchmarks/gap_report.py's rows)
per M in {16K, 64K, 256K}, with the previous and the current bound, so the change of the
bound is seen apart from any change of the dataflows.
Run: python benchmarks/fc_bound_report.py [--gap] [--markdown]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys

import numpy as np

from bounds.lower_bound import S_FACTORS, _lb_parts, _S_of, _safe_ceil, lower_bound
from bounds.output_stationary import os_best
from bounds.weight_stationary import ws_best
from complexity.layer import Layer
from complexity.machine import Machine

FIELDS = ("b", "c", "d", "h", "w", "kh", "kw", "sh", "sw", "ph", "pw", "groups")
BATCHES = (64, 256, 1024, 4096)
BUFFERS = (1024, 4096, 16384, 65536)


def previous_bound(layer: Layer, M: int) -> int:
    """Q_LB before the entry phases: load+store phases with T_j <= M - r_j + r_{j+1} + S (docs/theory.md, 3.7)."""
    P = {f: np.asarray([getattr(layer, f)], dtype=np.int64) for f in FIELDS}
    p = _lb_parts(P, np.asarray([M]))
    L = layer
    q = float(p["q"][0])
    Wg = float(L.dg * L.cg * L.kh * L.kw)
    Fr = float(p["F_real"][0])
    lam = 1.0 / (1.0 / (L.b * L.nh * L.nw) + 1.0 / (L.cg * L.kh * L.kw) + 1.0 / (q * L.dg))

    def phi(T):
        return math.sqrt(q) * ((T / 3) ** 1.5 if T <= 3 * Wg else math.sqrt(Wg) * (T - Wg) / 2)

    cap = 0.0
    for f in S_FACTORS:
        S = float(_S_of(f, np.asarray(M)))
        a, b = phi(2 * M + S), phi(S)
        k = max(float(_safe_ceil(np.float64((2 * Fr - a + b) / (a + b)))),
                float(_safe_ceil(np.float64((Fr / lam - M) / (M + S)))), 1.0)
        cap = max(cap, S * (k - 1))
    return max(int(p["Q_comp"][0]), int(cap))


def fc_rows():
    for b in BATCHES:
        L = Layer.fc(4096, 4096, b=b)
        for M in BUFFERS:
            m = Machine(M=M)
            lb = lower_bound(L, m)
            best = min(os_best(L, m).Q, ws_best(L, m).Q)
            yield {"b": b, "M": M, "lb": lb.Q, "old": previous_bound(L, M),
                   "smith": 2 * L.F / math.sqrt(M) - 2 * M, "comp": lb.parts["Q_comp"],
                   "binding": "capacity" if lb.parts["Q_cap"] > lb.parts["Q_comp"] else "compulsory", "best": best}


def gap_rows():
    from complexity.zoo import get_network
    for net in ("alexnet", "vgg16", "resnet50", "mobilenet_v2"):
        for mname, M in (("16K", 16384), ("64K", 65536), ("256K", 262144)):
            for L in get_network(net):
                m = Machine(M=M)
                best = min(os_best(L, m).Q, ws_best(L, m).Q)
                yield {"network": net, "M": mname, "layer": L.name, "gap_old": best / previous_bound(L, M),
                       "gap_new": best / lower_bound(L, m).Q, "desc": L.describe()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gap", action="store_true", help="also the zoo's gap per M, previous and current bound")
    ap.add_argument("--markdown", action="store_true", help="markdown tables")
    args = ap.parse_args(argv)
    head = ["b", "M", "Q_LB", "new/old", "Q_LB / (2F/sqrt(M) - 2M)", "binding", "min(OS,WS)", "best/Q_LB"]
    if args.markdown:
        print("| " + " | ".join(head) + " |"); print("|" + "---|" * len(head))
    else:
        print("# FC layers (b x 4096) x (4096 x 4096); old = the load+store-phase bound; "
              "Smith = 2F/sqrt(M) - 2M (Smith et al. 2019)")
        print(f"{'b':>5} {'M':>6} {'Q_LB':>14} {'new/old':>8} {'LB/Smith':>9} {'binding':>10} "
              f"{'min(OS,WS)':>14} {'best/LB':>8}")
    for r in fc_rows():
        cells = [str(r["b"]), f"{r['M']:,}", f"{r['lb']:,}", f"{r['lb'] / r['old']:.4f}",
                 f"{r['lb'] / r['smith']:.4f}" if r["smith"] > 0 else "-", r["binding"], f"{r['best']:,}",
                 f"{r['best'] / r['lb']:.4f}"]
        if args.markdown:
            print("| " + " | ".join(cells) + " |")
        else:
            print(f"{cells[0]:>5} {cells[1]:>6} {cells[2]:>14} {cells[3]:>8} {cells[4]:>9} {cells[5]:>10} "
                  f"{cells[6]:>14} {cells[7]:>8}")
    if args.gap:
        rs = list(gap_rows())
        print("\n# zoo (alexnet, vgg16, resnet50, mobilenet_v2): min(OS, WS) / LB, previous -> current bound")
        nets = ("alexnet", "vgg16", "resnet50", "mobilenet_v2")
        groups = [(n, m) for n in nets for m in ("16K", "64K", "256K")] + [("all", m) for m in ("16K", "64K", "256K")]
        if args.markdown:
            print("| network | M | layers | median before | max before | median after | max after |")
            print("|---|---|---|---|---|---|---|")
        for net, m in groups + [("all", "all")]:
            sel = [r for r in rs if (net == "all" or r["network"] == net) and (m == "all" or r["M"] == m)]
            go, gn = [r["gap_old"] for r in sel], [r["gap_new"] for r in sel]
            cells = [net, m, str(len(sel)), f"{statistics.median(go):.3f}", f"{max(go):.3f}",
                     f"{statistics.median(gn):.3f}", f"{max(gn):.3f}"]
            print(("| " + " | ".join(cells) + " |") if args.markdown else
                  f"{cells[0]:<13} {cells[1]:>5} {cells[2]:>4} median {cells[3]} -> {cells[5]}, "
                  f"max {cells[4]} -> {cells[6]}")
        print("# largest gaps now:")
        for r in sorted(rs, key=lambda r: -r["gap_new"])[:8]:
            print(f"#  {r['gap_new']:.3f} (was {r['gap_old']:.3f})  {r['network']:<12} M={r['M']:<4} {r['desc']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
