"""Shared command-line flags that describe one layer, a zoo network, or an ONNX model."""

from __future__ import annotations

import argparse

from complexity.layer import Layer
from complexity.machine import EYERISS_COSTS, REFERENCE_BITS, Machine
from energy_complexity.errors import CLIError

_LAYER_FLAGS = ("b", "c", "d", "h", "w", "kh", "kw", "sh", "sw", "ph", "pw", "groups")


def add_layer_arguments(parser: argparse.ArgumentParser, *, sources: bool = True) -> None:
    """Add --b --c --d --h --w --kh --kw --stride --pad --groups (and --hw, --k, --sh ...).

    With ``sources``, also --network NAME and --onnx FILE, which select many layers.
    """
    g = parser.add_argument_group("layer")
    g.add_argument("--b", type=int, help="batch size (default 1)")
    g.add_argument("--c", type=int, help="input channels")
    g.add_argument("--d", type=int, help="output channels (filters)")
    g.add_argument("--h", type=int, help="input height")
    g.add_argument("--w", type=int, help="input width")
    g.add_argument("--hw", type=int, help="square input: h = w = HW")
    g.add_argument("--kh", type=int, help="kernel height")
    g.add_argument("--kw", type=int, help="kernel width")
    g.add_argument("--k", type=int, help="square kernel: kh = kw = K")
    g.add_argument("--stride", type=int, help="stride in both directions")
    g.add_argument("--sh", type=int, help="vertical stride")
    g.add_argument("--sw", type=int, help="horizontal stride")
    g.add_argument("--pad", type=int, help="zero padding on each side, both directions")
    g.add_argument("--ph", type=int, help="vertical padding")
    g.add_argument("--pw", type=int, help="horizontal padding")
    g.add_argument("--groups", type=int, help="channel groups (groups = c is depthwise)")
    if sources:
        g.add_argument("--network", metavar="NAME", help="every layer of a bundled zoo network")
        g.add_argument("--onnx", metavar="FILE", help="every supported layer of an ONNX model")


def layer_values(args: argparse.Namespace) -> dict:
    """The layer parameters given on the command line (square shortcuts expanded)."""
    vals: dict = {}
    pairs = (("hw", ("h", "w")), ("k", ("kh", "kw")), ("stride", ("sh", "sw")), ("pad", ("ph", "pw")))
    for short, (a, b_) in pairs:
        v = getattr(args, short, None)
        if v is not None:
            vals[a] = vals[b_] = v
    for f in _LAYER_FLAGS:
        v = getattr(args, f, None)
        if v is not None:
            vals[f] = v
    return vals


def layer_from_args(args: argparse.Namespace) -> Layer:
    """One layer from the flags; --c and --d are required, the rest default to a 1 x 1 layer."""
    vals = layer_values(args)
    for req in ("c", "d"):
        if req not in vals:
            raise CLIError(f"--{req} is required to describe a layer (or use --network / --onnx)")
    return Layer(**vals)


def layers_from_args(args: argparse.Namespace) -> tuple[str | None, list[Layer]]:
    """(source name, layers): a zoo network, an ONNX model, or the single layer of the flags."""
    network = getattr(args, "network", None)
    onnx_path = getattr(args, "onnx", None)
    if network and onnx_path:
        raise CLIError("give either --network or --onnx, not both")
    if network:
        from complexity.zoo import get_network, network_names
        if network not in network_names():
            raise CLIError(f"unknown network {network!r}; known: {', '.join(network_names())}")
        return network, list(get_network(network))
    if onnx_path:
        from complexity.onnx_import import load_onnx
        return onnx_path, list(load_onnx(onnx_path))
    return None, [layer_from_args(args)]


def add_machine_arguments(parser: argparse.ArgumentParser, *, require_M: bool = True) -> None:
    """Add --M (Buffer words) and the per-word costs --eD --eB --eM and --bits."""
    g = parser.add_argument_group("machine")
    g.add_argument("--M", type=int, required=require_M, help="Buffer capacity in words")
    g.add_argument("--eD", type=float, default=EYERISS_COSTS["eD"], help="DRAM cost per word (default %(default)s)")
    g.add_argument("--eB", type=float, default=EYERISS_COSTS["eB"], help="Buffer cost per access (default %(default)s)")
    g.add_argument("--eM", type=float, default=EYERISS_COSTS["eM"], help="cost per MAC (default %(default)s)")
    g.add_argument("--bits", type=int, default=REFERENCE_BITS,
                   help="word width; memory costs scale with bits/16, MAC cost with (bits/16)^2 (default %(default)s)")


def machine_from_args(args: argparse.Namespace) -> Machine:
    return Machine(M=args.M, eD=args.eD, eB=args.eB, eM=args.eM, bits=args.bits)
