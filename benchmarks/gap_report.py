"""Gap report: min(OS, WS, OSL) / LB on DRAM traffic Q over real networks' layers.

For AlexNet, VGG-16, ResNet-50 and MobileNetV2 at M in {16K, 64K, 256K} words, with the
exhaustive best tiles (bounds.api.evaluate): median and maximum gap per (network, M) and
overall, also restricted to the layers where M holds at least a few (>= 4) whole filters
of one group, and the layers with the largest gaps.  Run: python benchmarks/gap_report.py
(--markdown prints the tables for docs/theory.md, --csv FILE writes every row).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from bounds.api import evaluate
from complexity.machine import Machine
from complexity.zoo import get_network

NETWORKS = ("alexnet", "vgg16", "resnet50", "mobilenet_v2")
BUFFERS = {"16K": 16 * 1024, "64K": 64 * 1024, "256K": 256 * 1024}
FEW_FILTERS = 4


def rows():
    """One dict per (network, M, layer): the gap on Q and E and which term of the LB is active."""
    for net in NETWORKS:
        for mname, M in BUFFERS.items():
            for L in get_network(net):
                r = evaluate(L, Machine(M=M))
                filt = L.cg * L.kh * L.kw
                yield {"network": net, "M": mname, "layer": L.name, "gap": r.gap, "gap_E": r.gap_E,
                       "best": r.best_name, "lb_Q": r.lower_bound.Q, "os_Q": r.os.Q, "ws_Q": r.ws.Q,
                       "capacity": r.lower_bound.parts["Q_cap"] > r.lower_bound.parts["Q_comp"],
                       "few_filters": M >= FEW_FILTERS * filt, "desc": L.describe()}


def summarize(rs, key=lambda r: True):
    g = [r["gap"] for r in rs if key(r)]
    return (len(g), statistics.median(g), max(g)) if g else (0, float("nan"), float("nan"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--markdown", action="store_true", help="print markdown tables")
    ap.add_argument("--csv", metavar="FILE", help="write every (network, M, layer) row as CSV")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    rs = list(rows())
    dt = time.perf_counter() - t0
    if args.csv:
        import csv
        with open(args.csv, "w", newline="") as fh:
            wr = csv.DictWriter(fh, fieldnames=list(rs[0]))
            wr.writeheader(); wr.writerows(rs)
    print(f"# gap = min(OS, WS, OSL) / LB on Q; {len(rs)} (network, M, layer) rows in {dt:.1f} s; "
          f"'few filters' = M >= {FEW_FILTERS} filters of one group")
    head = ["network", "M", "layers", "median", "max", "few-filter layers", "median", "max"]
    if args.markdown:
        print("| " + " | ".join(head) + " |"); print("|" + "---|" * len(head))
    else:
        print(f"{'network':<13} {'M':>5} {'layers':>6} {'median':>7} {'max':>7} {'few-f':>6} {'median':>7} {'max':>7}")
    groups = [(n, m) for n in NETWORKS for m in BUFFERS] + [("all", m) for m in BUFFERS] + [("all", "all")]
    for net, m in groups:
        sel = [r for r in rs if (net == "all" or r["network"] == net) and (m == "all" or r["M"] == m)]
        n, med, mx = summarize(sel)
        nf, medf, mxf = summarize(sel, lambda r: r["few_filters"])
        cells = [net, m, str(n), f"{med:.3f}", f"{mx:.3f}", str(nf), f"{medf:.3f}", f"{mxf:.3f}"]
        if args.markdown:
            print("| " + " | ".join(cells) + " |")
        else:
            print(f"{cells[0]:<13} {cells[1]:>5} {cells[2]:>6} {cells[3]:>7} {cells[4]:>7} {cells[5]:>6} "
                  f"{cells[6]:>7} {cells[7]:>7}")
    cap = [r for r in rs if r["capacity"]]
    print(f"# LB capacity term active in {len(cap)} of {len(rs)} rows; "
          f"median gap there {statistics.median([r['gap'] for r in cap]) if cap else float('nan'):.3f}")
    print("# largest gaps:")
    for r in sorted(rs, key=lambda r: -r["gap"])[:12]:
        print(f"#  {r['gap']:.3f}  {r['network']:<12} M={r['M']:<4} {r['desc']}  "
              f"LB {r['lb_Q']:,} OS {r['os_Q']:,} WS {r['ws_Q']:,} few-filters={r['few_filters']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
