"""Compare our estimate with nn_dataflow's, layer by layer (main environment).

    python crosscheck/nn_dataflow/compare.py [--nnd CSV] [--out CSV]

Reads the CSV written by run_nn_dataflow.py (in its own venv), rebuilds every layer as a
project Layer (nn_dataflow layers are unpadded: input = (out - 1) * stride + k; its FC
layer with a k x k input is the k x k convolution on a k x k input), estimates it with
estimation.estimate_layer on the default Eyeriss config, and writes per-layer energies,
level breakdowns and the ratio ours / nn_dataflow.  See docs/estimation_crosscheck.md.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys

from complexity.layer import Layer
from estimation import estimate_layer

LEVELS = ("dram", "buffer", "array", "rf", "mac")


def layer_of(row: dict) -> Layer:
    c, d, out, k, s = (int(row[x]) for x in ("c", "d", "out", "k", "stride"))
    hw = (out - 1) * s + k
    return Layer(c=c, d=d, h=hw, w=hw, kh=k, kw=k, sh=s, sw=s, name=f"{row['network']}/{row['layer']}")


def compare(rows: list[dict]) -> list[dict]:
    out = []
    for row in rows:
        layer = layer_of(row)
        est = estimate_layer(layer)
        assert abs(layer.F - float(row["macs"])) < 1e-6 * layer.F, (layer, row["macs"])
        r = {"network": row["network"], "layer": row["layer"], "kind": row["kind"], "macs": layer.F,
             "ours": est.total, "nn_dataflow": float(row["total"]), "ratio": est.total / float(row["total"])}
        for lv in LEVELS:
            r[f"ours_{lv}"] = est.by_level[lv]
            r[f"nnd_{lv}"] = float(row[lv])
        out.append(r)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nnd", default="crosscheck/nn_dataflow/nn_dataflow_results.csv")
    ap.add_argument("--out", default="crosscheck/nn_dataflow/comparison.csv")
    args = ap.parse_args(argv)
    with open(args.nnd, newline="") as fh:
        rows = list(csv.DictReader(fh))
    res = compare(rows)
    with open(args.out, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(res[0]))
        w.writeheader()
        for r in res:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    print(f"{'network/layer':<18} {'kind':<4} {'ours':>11} {'nn_dataflow':>11} {'ratio':>6}   "
          "ours/nnd by level: dram buffer array rf")
    for r in res:
        lv = " ".join(f"{r[f'ours_{x}'] / r[f'nnd_{x}']:6.2f}" if r[f"nnd_{x}"] else "   inf"
                      for x in ("dram", "buffer", "array", "rf"))
        print(f"{r['network'] + '/' + r['layer']:<18} {r['kind']:<4} {r['ours']:>11.4g} {r['nn_dataflow']:>11.4g} "
              f"{r['ratio']:>6.3f}   {lv}")
    for net in sorted({r["network"] for r in res}):
        sel = [r for r in res if r["network"] == net]
        ours, nnd = sum(r["ours"] for r in sel), sum(r["nn_dataflow"] for r in sel)
        ratios = [r["ratio"] for r in sel]
        gm = math.exp(sum(map(math.log, ratios)) / len(ratios))
        print(f"{net}: {len(sel)} layers, total ours {ours:.4g}, nn_dataflow {nnd:.4g}, ratio {ours / nnd:.3f}; "
              f"per-layer ratio geometric mean {gm:.3f}, min {min(ratios):.3f}, max {max(ratios):.3f}")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
