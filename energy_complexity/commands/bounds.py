"""``energy-complexity bounds``: the lower bound and the best OS / WS tiles of a layer or a network.

Text: a small table (LB / OS / WS with Q, A, E and tiles, and the gap min/LB); with
--network/--onnx a per-layer table and the network totals.  --json prints one object
(one layer) or a list of per-layer objects each with ``name`` (many layers); add
--json-totals to get {"layers": [...], "totals": {...}} instead of the bare list.
The theory is in docs/theory.md.
"""

from __future__ import annotations

import argparse
import json

from bounds.api import evaluate, evaluate_network
from energy_complexity.errors import CLIError
from energy_complexity.layer_args import (add_layer_arguments, add_machine_arguments, layers_from_args,
                                          machine_from_args)

NAME = "bounds"
HELP = "energy lower bound and best output-/weight-stationary tiles of a layer or network"
DESCRIPTION = ("Lower bound on DRAM traffic Q, Buffer accesses A and energy E = eD Q + eB A + eM F over "
               "every execution order, and the exact Q, A, E of the best output-stationary (OS) and "
               "weight-stationary (WS) tilings that fit in a Buffer of M words (docs/theory.md).")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_layer_arguments(parser)
    add_machine_arguments(parser)
    g = parser.add_argument_group("output")
    g.add_argument("--json", action="store_true",
                   help="print JSON: one object for a layer, a list of per-layer objects for a network")
    g.add_argument("--json-totals", action="store_true",
                   help="with --json and many layers: print {\"layers\": [...], \"totals\": {...}}")


def _tiles(t: dict | None) -> str:
    return " ".join(f"{k}={v}" for k, v in t.items()) if t else "-"


def _print_layer(r) -> None:
    L, m, lb = r.layer, r.machine, r.lower_bound
    print(f"layer   {L.describe()}")
    print(f"        F = {L.F:,} MACs, |X| = {L.X:,}, |X_used| = {L.X_used:,}, |W| = {L.W:,}, |Y| = {L.Y:,} words")
    print(f"machine M = {m.M:,} words, eD = {m.eD:g}, eB = {m.eB:g}, eM = {m.eM:g} at {m.bits} bits "
          f"(per-word costs {m.e_dram:g}, {m.e_buf:g}, {m.e_mac:g})")
    print()
    print(f"{'':4} {'Q (words)':>16} {'A (accesses)':>16} {'E':>16}  tiles")
    for name, c in (("LB", lb), ("OS", r.os), ("WS", r.ws)):
        print(f"{name:4} {c.Q:>16,} {c.A:>16,} {c.E:>16.6g}  {_tiles(c.tiles)}")
    p = lb.parts
    print()
    print(f"best    {r.best_name.upper()}; gap min(OS,WS)/LB: Q {r.gap:.3f}x, E {r.gap_E:.3f}x")
    print(f"terms   LB = max(compulsory {p['Q_comp']:,}, capacity {p['Q_cap']:,} [phase length S = {p['S']:,}]); "
          "A = Q + 3F")


def _print_network(source: str, net) -> None:
    m = net.layers[0].machine
    print(f"# {source}: {len(net.layers)} layers; M = {m.M:,} words, eD = {m.eD:g}, eB = {m.eB:g}, "
          f"eM = {m.eM:g} at {m.bits} bits")
    head = (f"{'layer':<26} {'F':>14} {'LB Q':>13} {'OS Q':>13} {'WS Q':>13} {'best':>4} {'gap Q':>6} "
            f"{'LB E':>11} {'best E':>11}")
    print(head)
    for i, r in enumerate(net.layers):
        name = (r.layer.name or f"layer{i}")[:26]
        print(f"{name:<26} {r.layer.F:>14,} {r.lower_bound.Q:>13,} {r.os.Q:>13,} {r.ws.Q:>13,} "
              f"{r.best_name.upper():>4} {r.gap:>6.2f} {r.lower_bound.E:>11.4g} {r.best.E:>11.4g}")
    t = net.totals
    gap = min(t["os"]["Q"], t["ws"]["Q"]) / t["lower_bound"]["Q"]
    print(f"{'TOTAL':<26} {t['lower_bound']['F']:>14,} {t['lower_bound']['Q']:>13,} {t['os']['Q']:>13,} "
          f"{t['ws']['Q']:>13,} {'':>4} {gap:>6.2f} {t['lower_bound']['E']:>11.4g} {t['best']['E']:>11.4g}")
    print(f"# totals: LB E {t['lower_bound']['E']:.6g}, OS E {t['os']['E']:.6g}, WS E {t['ws']['E']:.6g}, "
          f"per-layer best E {t['best']['E']:.6g} (gap {t['best']['E'] / t['lower_bound']['E']:.3f}x)")


def run(args: argparse.Namespace) -> int:
    source, layers = layers_from_args(args)
    if not layers:
        raise CLIError(f"{source}: no convolution or fully-connected layer to bound")
    machine = machine_from_args(args)
    if source is None:
        r = evaluate(layers[0], machine)
        if args.json:
            print(json.dumps(r.to_json(), indent=1))
        else:
            _print_layer(r)
        return 0
    net = evaluate_network(layers, machine)
    if args.json:
        items = []
        for i, r in enumerate(net.layers):
            obj = r.to_json()
            obj.setdefault("name", f"layer{i}")
            items.append({"name": obj.pop("name"), **obj})
        print(json.dumps({"layers": items, "totals": net.totals} if args.json_totals else items, indent=1))
    else:
        _print_network(source, net)
    return 0
