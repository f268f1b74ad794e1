"""``energy-complexity bounds``: the lower bound and the best OS / WS / OS-lean tiles of a layer or a network.

Text: a small table (LB / OS / WS / OSL with Q, A, E and tiles, and the gap min/LB); with
--network/--onnx a per-layer table and the network totals.  --json prints one object
(one layer) or a list of per-layer objects each with ``name`` (many layers); add
--json-totals to get {"layers": [...], "totals": {...}} instead of the bare list.
OS-lean (JSON key "os_lean", label OSL) is the output-stationary schedule with one input channel
at a time and one operand streamed through a single word (docs/dataflow_os_lean.md).
The theory is in docs/theory.md.
"""

from __future__ import annotations

import argparse
import json

from energy_complexity.errors import CLIError
from energy_complexity.layer_args import (add_layer_arguments, add_machine_arguments, layers_from_args,
                                          machine_from_args)

NAME = "bounds"
HELP = "energy lower bound and best output-/weight-stationary tiles of a layer or network"
DESCRIPTION = ("Lower bound on DRAM traffic Q, Buffer accesses A and energy E = eD Q + eB A + eM F over "
               "every execution order, and the exact Q, A, E of the best output-stationary (OS), "
               "weight-stationary (WS) and lean output-stationary (OSL: one input channel at a time, one "
               "operand streamed) tilings that fit in a Buffer of M words (docs/theory.md).")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_layer_arguments(parser)
    add_machine_arguments(parser)
    g = parser.add_argument_group("output")
    g.add_argument("--json", action="store_true",
                   help="print JSON: one object for a layer, a list of per-layer objects for a network")
    g.add_argument("--json-totals", action="store_true",
                   help="with --json and many layers: print {\"layers\": [...], \"totals\": {...}}")
    h = parser.add_argument_group("real accelerator (hierarchy-aware bound, pJ)")
    h.add_argument("--arch", metavar="ARCH",
                   help="also bound the energy in pJ on a real architecture: a bundled platform (eyeriss_like, "
                        "tpu_like, edge_tpu_like, simba_like), an architecture .yaml/.json file or a Timeloop "
                        "*.stats.txt; adds the floor no mapping can beat, the best nested schedule found and their "
                        "gap (docs/hierarchy.md); JSON key \"hierarchy\"")


#: What the E of this command is: energy of the two-level model machine, in its cost units.
MACHINE_KIND = "two-level model"
E_UNIT = "model units"


def _tiles(t: dict | None) -> str:
    return " ".join(f"{k}={v}" for k, v in t.items()) if t else "-"


def _unit_keys(obj: dict) -> dict:
    """``obj`` with "machine_kind" and "E_unit" added (the existing keys unchanged)."""
    return {**obj, "machine_kind": MACHINE_KIND, "E_unit": E_UNIT}


def _lean_note(layer, c) -> str:
    """Which operand the OS-lean tile streams, its footprint, and what OS needs for the same tile."""
    from bounds.output_stationary import OSTiles, os_footprint

    fx, fw = c.parts["footprint_X"], c.parts["footprint_W"]
    t = c.tiles
    fos = os_footprint(layer, OSTiles(t["b"], t["d"], t["th"], t["tw"], 1))
    return (f"streams {'inputs' if fx <= fw else 'weights'}; footprint {min(fx, fw):,} words, "
            f"{fos:,} as an OS tile")


def _print_layer(r) -> None:
    from bounds.api import DATAFLOWS, LABEL

    L, m, lb = r.layer, r.machine, r.lower_bound
    print(f"layer   {L.describe()}")
    print(f"        F = {L.F:,} MACs, |X| = {L.X:,}, |X_used| = {L.X_used:,}, |W| = {L.W:,}, |Y| = {L.Y:,} words")
    print(f"machine M = {m.M:,} words, eD = {m.eD:g}, eB = {m.eB:g}, eM = {m.eM:g} at {m.bits} bits "
          f"(per-word costs {m.e_dram:g}, {m.e_buf:g}, {m.e_mac:g})")
    print()
    print(f"E in model units (eD, eB, eM per word and MAC) of the {MACHINE_KIND} machine: E = eD Q + eB A + eM F")
    print()
    print(f"{'':4} {'Q (words)':>16} {'A (accesses)':>16} {'E':>16}  tiles")
    for key, name, c in [("lower_bound", "LB", lb)] + [(n, LABEL[n], getattr(r, n)) for n in DATAFLOWS]:
        if c is None:
            print(f"{name:4} {'-':>16} {'-':>16} {'-':>16}  infeasible: {r.infeasible.get(key, '')}")
        else:
            extra = f"  ({_lean_note(r.layer, c)})" if key == "os_lean" else ""
            print(f"{name:4} {c.Q:>16,} {c.A:>16,} {c.E:>16.6g}  {_tiles(c.tiles)}{extra}")
    p = lb.parts
    print()
    if r.best_name is None:
        print("best    none: no OS or WS tile fits in M, nor an OSL one (the lower bound above still holds)")
    else:
        feas = [LABEL[n] for n in DATAFLOWS if getattr(r, n) is not None]
        which = f"min({','.join(feas)})" if len(feas) > 1 else feas[0]
        print(f"best    {LABEL[r.best_name]}; gap {which}/LB: Q {r.gap:.3f}x, E {r.gap_E:.3f}x")
    print(f"terms   LB = max(compulsory {p['Q_comp']:,}, capacity {p['Q_cap']:,} [phase length S = {p['S']:,}]); "
          "A = Q + 3F")


def _q(c) -> str:
    return "-" if c is None else f"{c['Q'] if isinstance(c, dict) else c.Q:,}"


def _infeasible_counts(net) -> dict:
    """How many layers have no feasible OS tile, no WS tile, neither of the two, and no OS-lean tile."""
    return {"os": sum(r.os is None for r in net.layers), "ws": sum(r.ws is None for r in net.layers),
            "none": sum(r.os is None and r.ws is None for r in net.layers),
            "os_lean": sum(r.os_lean is None for r in net.layers)}


def _print_network(source: str, net) -> None:
    from bounds.api import LABEL

    m = net.layers[0].machine
    print(f"# {source}: {len(net.layers)} layers; M = {m.M:,} words, eD = {m.eD:g}, eB = {m.eB:g}, "
          f"eM = {m.eM:g} at {m.bits} bits; E in model units of the {MACHINE_KIND} machine")
    head = (f"{'layer':<26} {'F':>14} {'LB Q':>13} {'OS Q':>13} {'WS Q':>13} {'OSL Q':>13} {'best':>4} {'gap Q':>6} "
            f"{'LB E':>11} {'best E':>11}")
    print(head)
    for i, r in enumerate(net.layers):
        name = (r.layer.name or f"layer{i}")[:26]
        best_E = "-" if r.best is None else f"{r.best.E:.4g}"
        print(f"{name:<26} {r.layer.F:>14,} {r.lower_bound.Q:>13,} {_q(r.os):>13} {_q(r.ws):>13} "
              f"{_q(r.os_lean):>13} {LABEL.get(r.best_name, '-'):>4} {r.gap:>6.2f} {r.lower_bound.E:>11.4g} "
              f"{best_E:>11}")
    t = net.totals
    best_E = "-" if t["best"] is None else f"{t['best']['E']:.4g}"
    print(f"{'TOTAL':<26} {t['lower_bound']['F']:>14,} {t['lower_bound']['Q']:>13,} {_q(t['os']):>13} "
          f"{_q(t['ws']):>13} {_q(t['os_lean']):>13} {'':>4} {net.gap_Q:>6.2f} {t['lower_bound']['E']:>11.4g} "
          f"{best_E:>11}")
    E = {k: "-" if t[k] is None else f"{t[k]['E']:.6g}" for k in t}
    gap = "" if t["best"] is None else f" (gap {net.gap_E:.3f}x)"
    print(f"# totals: sums over the layers; LB E {E['lower_bound']}, OS E {E['os']}, WS E {E['ws']}, "
          f"OSL E {E['os_lean']}, per-layer best E {E['best']}{gap}; gap Q and best use each layer's cheapest "
          "feasible dataflow")
    n = _infeasible_counts(net)
    if n["os"] or n["ws"] or n["os_lean"]:
        print(f"# infeasible: no OS tile fits in M on {n['os']} of {len(net.layers)} layers, no WS tile on "
              f"{n['ws']}, neither on {n['none']}, no OSL tile on {n['os_lean']}; a total over such layers "
              "is '-' (not a partial sum)")


def _print_hierarchy_layer(h) -> None:
    """The floor in pJ on the architecture, term by term, and the best nested schedule."""
    lo = h.lower
    print()
    print(f"hierarchy on {h.arch.name} (pJ; the floor holds for every mapping on this architecture, "
          f"docs/hierarchy.md)")
    print(f"  lower bound  {lo.E_pJ:>16.6g} pJ   [{lo.pricing}]")
    for t in lo.levels:
        print(f"    {t['name']:<22} {t['kind']:<24} {t['words']:>16,} {t['E_pJ']:>14.6g} pJ")
    if h.upper is None:
        print(f"  best schedule  none: {h.infeasible}")
    else:
        print(f"  best schedule {h.upper.E_pJ:>16.6g} pJ   gap {h.gap:.3f}x   tiles {_tiles(h.upper.tiles)}")


def _print_hierarchy_network(hn) -> None:
    t = hn.totals
    print(f"# hierarchy on {t['arch']} (pJ): per layer floor / best nested schedule / gap")
    for i, h in enumerate(hn.layers):
        name = (h.layer.name or f"layer{i}")[:26]
        ub = "-" if h.upper is None else f"{h.upper.E_pJ:.4g}"
        gap = "-" if h.upper is None else f"{h.gap:.3f}"
        print(f"{name:<26} {h.lower.E_pJ:>12.4g} {ub:>12} {gap:>7}")
    ub = "-" if t["upper_bound"] is None else f"{t['upper_bound']['E_pJ']:.6g} pJ (gap {t['gap']:.3f}x)"
    print(f"# hierarchy totals: floor {t['lower_bound']['E_pJ']:.6g} pJ, best nested schedules {ub}")


def run(args: argparse.Namespace) -> int:
    from bounds.api import evaluate, evaluate_network

    if args.json_totals and not args.json:
        raise CLIError("--json-totals needs --json (it selects the JSON layout)")
    machine = machine_from_args(args)
    arch = None
    if getattr(args, "arch", None):
        from validation.architectures import get_architecture
        arch = get_architecture(args.arch)
    source, layers = layers_from_args(args)
    if not layers:
        raise CLIError(f"{source}: no convolution or fully-connected layer to bound")
    if arch is not None:
        from bounds.hierarchy_api import evaluate_hierarchy_network
        hier = evaluate_hierarchy_network(layers, arch)
    if source is None:
        if args.json_totals:
            raise CLIError("--json-totals applies to many layers (--network / --onnx), not to a single layer")
        r = evaluate(layers[0], machine)
        if args.json:
            obj = _unit_keys(r.to_json())
            if arch is not None:
                obj["hierarchy"] = hier.layers[0].to_json()
            print(json.dumps(obj, indent=1))
        else:
            _print_layer(r)
            if arch is not None:
                _print_hierarchy_layer(hier.layers[0])
        return 0
    net = evaluate_network(layers, machine)
    if args.json:
        items = []
        for i, r in enumerate(net.layers):
            obj = r.to_json()
            obj.setdefault("name", f"layer{i}")
            item = _unit_keys({"name": obj.pop("name"), **obj})
            if arch is not None:
                item["hierarchy"] = hier.layers[i].to_json()
            items.append(item)
        out = items
        if args.json_totals:
            totals = net.totals if arch is None else {**net.totals, "hierarchy": hier.totals}
            out = {"layers": items, "totals": totals, "infeasible_layers": _infeasible_counts(net),
                   "E_unit": E_UNIT}
        print(json.dumps(out, indent=1))
    else:
        _print_network(source, net)
        if arch is not None:
            print()
            _print_hierarchy_network(hier)
    return 0
