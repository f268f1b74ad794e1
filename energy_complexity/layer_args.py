"""Shared command-line flags that describe one layer, a zoo network, or an ONNX model.

Sizes (every layer flag and --M) are non-negative integers written plainly (``65536``),
with a binary suffix (``64K`` = ``64Ki`` = 65536, ``1M`` = 1048576, ``G``, ``T``) or as an
integral float (``1e6``, ``65536.0``); anything else is refused with one line naming the flag.
"""

from __future__ import annotations

import argparse
import math
import re

from complexity.layer import COUNT_LIMIT, Layer, LayerError
from complexity.machine import EYERISS_COSTS, REFERENCE_BITS, Machine
from energy_complexity.errors import CLIError

_LAYER_FLAGS = ("b", "c", "d", "h", "w", "kh", "kw", "sh", "sw", "ph", "pw", "groups")
#: Square shortcut -> the two fields it sets.
_PAIRS = (("hw", ("h", "w")), ("k", ("kh", "kw")), ("stride", ("sh", "sw")), ("pad", ("ph", "pw")))
#: Every flag that describes a single layer (refused together with --network / --onnx).
_ALL_LAYER_FLAGS = _LAYER_FLAGS + tuple(short for short, _ in _PAIRS)

#: Binary multipliers of the size suffixes (case-insensitive, optional "i": K = Ki = 1024).
_SUFFIX = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
#: Largest size accepted (below 2^63, so that it fits an int64).
MAX_SIZE = 10**18
#: Largest count (F, |X|, |W|, |Y|) of a layer the numeric bounds take (complexity.layer.COUNT_LIMIT).
MAX_COUNT = COUNT_LIMIT
#: Largest per-word cost: cost x count x (bits/16)^2 stays far below the float64 range.
MAX_COST = 1e100
_SIZE_RE = re.compile(r"^(?P<sign>[-+]?)(?=\.?\d)(?P<whole>[\d_]*)(?:\.(?P<frac>[\d_]*))?"
                      r"(?:e(?P<exp>[-+]?\d{1,12}))?\s*(?P<suffix>[kmgt]?)i?$", re.I)
_NONFINITE_RE = re.compile(r"^[-+]?(nan|inf|infinity)$", re.I)


def parse_size(text: str) -> int:
    """A non-negative integer from ``text``: plain, with a K/M/G/T (or Ki/Mi/Gi/Ti) suffix, or an integral float.

    Parsed exactly in integers (no float rounding: 1e18 is 10^18). Raises ValueError with a
    one-line reason (argparse prefixes the flag).
    """
    s = str(text).strip()
    m = _SIZE_RE.match(s)
    if not m:
        if _NONFINITE_RE.match(s):
            raise ValueError(f"must be a finite non-negative integer, got {s}")
        raise ValueError(f"expected a non-negative integer such as 65536, 64K, 1M or 1e6, got {str(text)!r}")
    sign, whole, frac, exp, suffix = m.group("sign", "whole", "frac", "exp", "suffix")
    whole, frac = (whole or "").replace("_", ""), (frac or "").replace("_", "")
    digits = (whole + frac).lstrip("0")
    if not digits:
        return 0
    if sign == "-":
        raise ValueError(f"must be a non-negative integer, got {s}")
    e = int(exp or 0) - len(frac)  # value = int(digits) * 10^e * multiplier
    mult = _SUFFIX[suffix.lower()]
    if len(digits) + e > 19 + 1:  # at least 10^19 before the suffix: too large
        raise ValueError(f"must be at most 10^18, got {s}")
    if e >= 0:
        num, den = int(digits) * 10**e * mult, 1
    elif -e > len(digits) + 20:  # below 10^-20 * 2^40: not a whole number
        raise ValueError(f"must be a whole number, got {s}")
    else:
        num, den = int(digits) * mult, 10**-e
    if num % den:
        raise ValueError(f"must be a whole number, got {s}")
    if num // den > MAX_SIZE:
        raise ValueError(f"must be at most 10^18, got {s}")
    return num // den


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _cost(text: str) -> float:
    """A finite non-negative float (the per-word energy costs)."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(v) or v < 0:
        raise argparse.ArgumentTypeError(f"must be a finite non-negative cost, got {text.strip()}")
    if v > MAX_COST:
        raise argparse.ArgumentTypeError(f"must be at most 1e100 (energies must stay finite), got {text.strip()}")
    return v


def add_layer_arguments(parser: argparse.ArgumentParser, *, sources: bool = True, required: bool = True) -> None:
    """Add --b --c --d --h --w --kh --kw --stride --pad --groups (and --hw, --k, --sh ...).

    With ``sources``, also --network NAME and --onnx FILE, which select many layers.
    ``required`` says in the help that a single layer needs its sizes and kernel (False for
    a command such as ``derive`` that keeps omitted values symbolic).
    """
    need = ("A single layer needs --c, --d, the input size (--hw, or --h and --w) and the kernel (--k, or --kh "
            "and --kw); batch, stride and groups default to 1, padding to 0. " if required else "")
    g = parser.add_argument_group(
        "layer",
        need + "Sizes accept binary suffixes (64K = 65536, 1M = 1048576, also Ki, Mi, G) and integral floats (1e6)."
        + (" --network / --onnx take every layer's own sizes and refuse these flags." if sources else ""))
    g.add_argument("--b", type=_size, help="batch size (default 1)")
    g.add_argument("--c", type=_size, help="input channels" + (" (required)" if required else ""))
    g.add_argument("--d", type=_size, help="output channels, i.e. filters" + (" (required)" if required else ""))
    g.add_argument("--h", type=_size, help="input height")
    g.add_argument("--w", type=_size, help="input width")
    g.add_argument("--hw", type=_size,
                   help="square input: h = w = HW" + (" (required, or --h and --w)" if required else ""))
    g.add_argument("--kh", type=_size, help="kernel height")
    g.add_argument("--kw", type=_size, help="kernel width")
    g.add_argument("--k", type=_size,
                   help="square kernel: kh = kw = K" + (" (required, or --kh and --kw)" if required else ""))
    g.add_argument("--stride", type=_size, help="stride in both directions (default 1)")
    g.add_argument("--sh", type=_size, help="vertical stride")
    g.add_argument("--sw", type=_size, help="horizontal stride")
    g.add_argument("--pad", type=_size, help="zero padding on each side, both directions (default 0)")
    g.add_argument("--ph", type=_size, help="vertical padding")
    g.add_argument("--pw", type=_size, help="horizontal padding")
    g.add_argument("--groups", type=_size, help="channel groups (groups = c is depthwise; default 1)")
    if sources:
        g.add_argument("--network", metavar="NAME", help="every layer of a bundled zoo network")
        g.add_argument("--onnx", metavar="FILE", help="every supported layer of an ONNX model")


def layer_values(args: argparse.Namespace) -> dict:
    """The layer parameters given on the command line (square shortcuts expanded).

    Raises CLIError when a shortcut and one of its fields are both given (--hw and --h).
    """
    vals: dict = {}
    for short, (a, b_) in _PAIRS:
        v = getattr(args, short, None)
        if v is not None:
            for f in (a, b_):
                if getattr(args, f, None) is not None:
                    raise CLIError(f"give either --{short} or --{a}/--{b_}, not both (--{short} sets {a} = {b_})")
            vals[a] = vals[b_] = v
    for f in _LAYER_FLAGS:
        v = getattr(args, f, None)
        if v is not None:
            vals[f] = v
    return vals


def _check_ranges(vals: dict) -> None:
    """Positive sizes (padding non-negative), each error naming its field, before any cross-field check."""
    for f, v in vals.items():
        lo = 0 if f in ("ph", "pw") else 1
        if v < lo:
            raise LayerError(f, f"must be a {'non-negative' if lo == 0 else 'positive'} integer, got {v}")


def layer_from_args(args: argparse.Namespace) -> Layer:
    """One layer from the flags: --c, --d, the input size and the kernel are required; the rest default."""
    vals = layer_values(args)
    _check_ranges(vals)
    for req in ("c", "d"):
        if req not in vals:
            raise CLIError(f"--{req} is required to describe a layer (or use --network / --onnx)")
    for short, (a, b_) in _PAIRS[:2]:
        missing = [f for f in (a, b_) if f not in vals]
        if missing:
            what = "input size" if short == "hw" else "kernel size"
            raise CLIError(f"--{short} (or --{a} and --{b_}) is required: the {what} of a single layer; "
                           f"{' and '.join('--' + f for f in missing)} not given")
    return Layer(**vals)


def check_counts(layers) -> None:
    """Refuse (one line) a layer whose MAC or word count would overflow the 64-bit arithmetic of the bounds."""
    for i, L in enumerate(layers):
        for what, v in (("F (MACs)", L.F), ("|X| (input words)", L.X), ("|W| (weight words)", L.W),
                        ("|Y| (output words)", L.Y)):
            if v > MAX_COUNT:
                name = f" {L.name or f'layer{i}'}" if len(layers) > 1 else ""
                raise CLIError(f"layer{name} too large: {what} = {v:.3g} exceeds 2^60 = {MAX_COUNT:.3g}, "
                               "the range of the 64-bit bound computations; use smaller --c/--d/--hw/--b")


def _given_layer_flags(args: argparse.Namespace) -> list[str]:
    return [f"--{f}" for f in _ALL_LAYER_FLAGS if getattr(args, f, None) is not None]


def layers_from_args(args: argparse.Namespace, *, int64: bool = True) -> tuple[str | None, list[Layer]]:
    """(source name, layers): a zoo network, an ONNX model, or the single layer of the flags.

    With ``int64`` (the bounds), a layer whose counts exceed MAX_COUNT is refused (check_counts).
    """
    network = getattr(args, "network", None)
    onnx_path = getattr(args, "onnx", None)
    if network and onnx_path:
        raise CLIError("give either --network or --onnx, not both")
    if network or onnx_path:
        given = _given_layer_flags(args)
        if given:
            src = "--network" if network else "--onnx"
            raise CLIError(f"{given[0]} cannot be combined with {src}, which takes every layer's own sizes "
                           f"(given: {' '.join(given)})")
    if network:
        from complexity.zoo import get_network, network_names
        if network not in network_names():
            raise CLIError(f"unknown network {network!r}; known: {', '.join(network_names())}")
        source, layers = network, list(get_network(network))
    elif onnx_path:
        from complexity.onnx_import import load_onnx
        source, layers = onnx_path, list(load_onnx(onnx_path))
    else:
        source, layers = None, [layer_from_args(args)]
    if int64:
        check_counts(layers)
    return source, layers


def add_machine_arguments(parser: argparse.ArgumentParser, *, require_M: bool = True) -> None:
    """Add --M (Buffer words) and the per-word costs --eD --eB --eM and --bits."""
    g = parser.add_argument_group("machine")
    g.add_argument("--M", type=_size, required=require_M,
                   help="Buffer capacity in words (binary suffixes accepted: 64K = 65536, 1M = 1048576)")
    g.add_argument("--eD", type=_cost, default=EYERISS_COSTS["eD"], help="DRAM cost per word (default %(default)s)")
    g.add_argument("--eB", type=_cost, default=EYERISS_COSTS["eB"],
                   help="Buffer cost per access (default %(default)s)")
    g.add_argument("--eM", type=_cost, default=EYERISS_COSTS["eM"], help="cost per MAC (default %(default)s)")
    g.add_argument("--bits", type=_size, default=REFERENCE_BITS,
                   help="word width; memory costs scale with bits/16, MAC cost with (bits/16)^2 (default %(default)s)")


def machine_from_args(args: argparse.Namespace) -> Machine:
    """The Machine of --M --eD --eB --eM --bits (MachineError names a bad value)."""
    return Machine(M=args.M, eD=args.eD, eB=args.eB, eM=args.eM, bits=args.bits)
