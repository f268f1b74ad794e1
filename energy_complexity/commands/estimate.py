"""``energy-complexity estimate``: Eyeriss-style energy of a layer, a zoo network or an ONNX model.

Energy = computation + data movement over DRAM, global buffer, PE array and register
files (Yang et al. 2017), for the least-energy row-stationary mapping; see docs/estimation.md.
"""

from __future__ import annotations

import argparse
import json

from energy_complexity.errors import CLIError
from energy_complexity.layer_args import add_layer_arguments, layers_from_args

NAME = "estimate"
HELP = "Eyeriss-style energy estimate (row-stationary mapping; sparsity, bitwidth)"
DESCRIPTION = ("Per-layer energy estimate in the style of Yang, Chen, Emer, Sze (Asilomar 2017): "
               "accesses to DRAM, global buffer, PE array and register files of an Eyeriss-like "
               "accelerator times normalized costs (200, 6, 2, 1; MAC 1), for the least-energy "
               "row-stationary mapping. Energies are in units of one 16-bit MAC.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_layer_arguments(parser)
    g = parser.add_argument_group("estimate")
    g.add_argument("--density-w", type=float, default=1.0, help="fraction of non-zero weights, in (0, 1] (default 1)")
    g.add_argument("--density-a", type=float, default=1.0,
                   help="fraction of non-zero activations, in (0, 1] (default 1)")
    g.add_argument("--bits", type=int, default=16,
                   help="word width: memory costs x bits/16, MAC cost x (bits/16)^2 (default 16)")
    g.add_argument("--json", action="store_true", help="print JSON: one object per layer and the totals")


def _check(args) -> None:
    for flag, v in (("--density-w", args.density_w), ("--density-a", args.density_a)):
        if not 0.0 < v <= 1.0:
            raise CLIError(f"{flag} must be in (0, 1] (fraction of non-zero values), got {v}")
    if not 1 <= args.bits <= 64:
        raise CLIError(f"--bits must be an integer from 1 to 64, got {args.bits}")


def run(args: argparse.Namespace) -> int:
    from estimation import ConfigError, MappingError, estimate_network

    _check(args)
    source, layers = layers_from_args(args, int64=False)  # the estimator counts in floats: no 2^60 limit
    if not layers:
        raise CLIError(f"{source}: no convolution or fully-connected layer to estimate")
    try:
        net = estimate_network(layers, density_w=args.density_w, density_a=args.density_a, bits=args.bits)
    except (MappingError, ConfigError) as exc:
        raise CLIError(str(exc)) from None
    if args.json:
        out = {"source": source, "density_w": args.density_w, "density_a": args.density_a, "bits": args.bits,
               "layers": [le.to_dict() for le in net.layers],
               "total": {"total": net.total, "by_level": net.by_level, "by_data": net.by_data, "macs": net.macs,
                         "weights": net.weights, "energy_per_mac": net.energy_per_mac,
                         "energy_per_weight": net.energy_per_weight}}
        print(json.dumps(out, indent=1))
        return 0
    head = (f"{'layer':<28} {'MACs':>12} {'weights':>10} {'energy':>11} {'E/MAC':>7} "
            f"{'DRAM':>6} {'buf':>5} {'array':>5} {'RF':>5} {'MAC':>5}")
    print(f"# {source or 'layer'}: density_w={args.density_w} density_a={args.density_a} bits={args.bits}; "
          "energy in 16-bit-MAC units; level shares in %")
    print(head)
    for i, le in enumerate(net.layers):
        sh = {k: 100 * v / le.total for k, v in le.by_level.items()}
        print(f"{(le.name or f'layer{i}')[:28]:<28} {le.layer.F:>12d} {le.layer.W:>10d} {le.total:>11.4g} "
              f"{le.energy_per_mac:>7.2f} {sh['dram']:>6.1f} {sh['buffer']:>5.1f} {sh['array']:>5.1f} "
              f"{sh['rf']:>5.1f} {sh['mac']:>5.1f}")
    sh = {k: 100 * v / net.total for k, v in net.by_level.items()}
    print(f"{'TOTAL':<28} {net.macs:>12d} {net.weights:>10d} {net.total:>11.4g} {net.energy_per_mac:>7.2f} "
          f"{sh['dram']:>6.1f} {sh['buffer']:>5.1f} {sh['array']:>5.1f} {sh['rf']:>5.1f} {sh['mac']:>5.1f}")
    bd = ", ".join(f"{k} {100 * v / net.total:.1f}%" for k, v in net.by_data.items())
    print(f"# by data: {bd}; energy per weight {net.energy_per_weight:.1f}")
    return 0
