"""Run Stanford's nn_dataflow (Eyeriss row-stationary model) on AlexNet and VGG-16 and write
one CSV row per convolution / fully-connected layer.

Runs ONLY inside the private venv made by setup_venv.sh (nn_dataflow needs sympy==1.9):
    .venv-nn-dataflow/bin/python crosscheck/nn_dataflow/run_nn_dataflow.py [--out CSV]
The accelerator is Eyeriss-like, as in our estimator's defaults: one node, a 12 x 14 PE
array, 512-byte register file per PE (256 16-bit words), 108 KB global buffer, normalized
costs DRAM 200, buffer 6, array 2, RF 1, MAC 1, batch 1, optimizing energy.
See docs/estimation_crosscheck.md.
"""

import argparse
import csv
import sys
import time

from nn_dataflow.core import (ConvLayer, Cost, FCLayer, MapStrategyEyeriss, NNDataflow, NodeRegion, Option,
                              PhyDim2, Resource)
from nn_dataflow.core import MemHierEnum as me
from nn_dataflow.nns import import_network

NETWORKS = ("alex_net", "vgg_net")
WORD_BYTES = 2


def resource():
    proc = NodeRegion(dim=PhyDim2(1, 1), origin=PhyDim2(0, 0), type=NodeRegion.PROC)
    data = NodeRegion(dim=PhyDim2(1, 1), origin=PhyDim2(0, 0), type=NodeRegion.DRAM)
    return Resource(proc_region=proc, dram_region=data, src_data_region=data, dst_data_region=data,
                    dim_array=PhyDim2(12, 14), size_gbuf=108 * 1024 // WORD_BYTES, size_regf=512 // WORD_BYTES,
                    array_bus_width=float("inf"), dram_bandwidth=float("inf"), no_time_mux=False)


def cost():
    hier = [0] * me.NUM
    hier[me.DRAM], hier[me.GBUF], hier[me.ITCN], hier[me.REGF] = 200, 6, 2, 1
    return Cost(mac_op=1, mem_hier=tuple(hier), noc_hop=0, idl_unit=0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="crosscheck/nn_dataflow/nn_dataflow_results.csv")
    ap.add_argument("--networks", nargs="*", default=list(NETWORKS))
    ap.add_argument("--processes", type=int, default=1)
    ap.add_argument("--no-bypass", action="store_true",
                    help="route every data type through the global buffer, as our model does "
                         "(nn_dataflow's default lets each one bypass it)")
    args = ap.parse_args(argv)
    rows = []
    for net_name in args.networks:
        network = import_network(net_name)
        options = Option(sw_gbuf_bypass=(not args.no_bypass,) * 3, opt_goal="e", ntops=1, nprocesses=args.processes)
        t0 = time.time()
        tops, _ = NNDataflow(network, 1, resource(), cost(), MapStrategyEyeriss).schedule_search(options)
        if not tops:
            sys.exit(f"nn_dataflow found no schedule for {net_name}")
        sched = tops[0]
        print(f"{net_name}: {time.time() - t0:.0f} s, total cost {sched.total_cost:.6g}", file=sys.stderr)
        for name in network:
            layer = network[name]
            if not isinstance(layer, (ConvLayer, FCLayer)):
                continue
            sr = sched[name]
            acc = sr.total_accesses
            rows.append({
                "network": net_name, "layer": name, "kind": "fc" if isinstance(layer, FCLayer) else "conv",
                "c": layer.nifm, "d": layer.nofm, "out": layer.hofm, "k": layer.hfil, "stride": layer.htrd,
                "macs": sr.total_ops, "total": sr.total_cost,
                "dram": acc[me.DRAM] * 200, "buffer": acc[me.GBUF] * 6, "array": acc[me.ITCN] * 2,
                "rf": acc[me.REGF] * 1, "mac": sr.total_ops * 1,
            })
    with open(args.out, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {len(rows)} layers to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
