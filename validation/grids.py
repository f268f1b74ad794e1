"""Named grids of layers for reference sweeps (docs/reference_data.md, "Layer grids").

``standard``: every square convolution with c in {16, 64, 256}, d in {16, 64, 256},
h = w in {7, 14, 28, 56}, k in {1, 3, 5}, stride in {1, 2}, padding k // 2
(216 layers, from 4 K to 5.1 G MACs).  ``zoo``: the distinct layers of every zoo
network.  ``dataset``: standard + zoo (the bundled dataset's layers).
``buffer``: 20 layers of the standard grid, spread over size and shape, for the
Buffer-size sweep.  ``tiny``: 4 small layers for smoke tests.
"""

from __future__ import annotations

from itertools import product

from complexity.layer import Layer
from validation.reference_data import LAYER_COLUMNS

__all__ = ["GRID_NAMES", "grid", "grid_names", "standard_grid", "zoo_layers", "buffer_grid",
           "BUFFER_SIZES", "distinct", "GridError"]

#: Buffer capacities (words) of the Buffer-size sweep: 2 Ki to 2 Mi words, x4 apart.
BUFFER_SIZES = (2048, 8192, 32768, 131072, 524288, 2097152)


class GridError(ValueError):
    """Unknown grid name."""


def _shape(layer: Layer) -> tuple:
    return tuple(getattr(layer, k) for k in LAYER_COLUMNS)


def distinct(layers) -> list[Layer]:
    """The layers with duplicate shapes removed (first name kept), in order."""
    seen, out = set(), []
    for layer in layers:
        s = _shape(layer)
        if s not in seen:
            seen.add(s)
            out.append(layer)
    return out


def standard_grid() -> list[Layer]:
    out = []
    for c, d, hw, k, s in product((16, 64, 256), (16, 64, 256), (7, 14, 28, 56), (1, 3, 5), (1, 2)):
        out.append(Layer.conv(c, d, hw, k, stride=s, pad=k // 2, name=f"grid_c{c}_d{d}_hw{hw}_k{k}_s{s}"))
    return out


def zoo_layers() -> list[tuple[str, Layer]]:
    """(network, layer) for the distinct layer shapes of all zoo networks, first occurrence kept."""
    from complexity.zoo import get_network, network_names
    seen, out = set(), []
    for net in network_names():
        for layer in get_network(net):
            s = _shape(layer)
            if s not in seen:
                seen.add(s)
                out.append((net, layer))
    return out


def buffer_grid() -> list[Layer]:
    """20 layers for the Buffer sweep: 3x3 and 1x1 convolutions, small to large, stride 1 and 2."""
    picks = [(16, 16, 14, 3, 1), (16, 64, 28, 3, 1), (64, 64, 14, 3, 1), (64, 64, 28, 3, 1),
             (64, 64, 56, 3, 1), (64, 256, 56, 1, 1), (256, 64, 56, 1, 1), (64, 256, 28, 3, 2),
             (256, 256, 14, 3, 1), (256, 256, 28, 3, 1), (256, 256, 7, 3, 1), (16, 256, 56, 3, 2),
             (256, 16, 28, 5, 1), (64, 64, 28, 5, 2), (256, 256, 56, 1, 2), (16, 16, 56, 5, 1),
             (256, 64, 14, 5, 1), (64, 16, 56, 1, 1), (256, 256, 28, 1, 1), (64, 256, 7, 5, 1)]
    return [Layer.conv(c, d, hw, k, stride=s, pad=k // 2, name=f"grid_c{c}_d{d}_hw{hw}_k{k}_s{s}")
            for c, d, hw, k, s in picks]


def tiny_grid() -> list[Layer]:
    return [Layer.conv(4, 8, 6, 3, 1, 1, name="tiny_a"), Layer.conv(8, 4, 5, 1, name="tiny_b"),
            Layer.conv(4, 4, 8, 3, 2, 1, name="tiny_c"), Layer.fc(32, 16, name="tiny_fc")]


GRID_NAMES = ("tiny", "standard", "zoo", "dataset", "buffer")


def grid_names() -> tuple[str, ...]:
    return GRID_NAMES


def grid(name: str) -> list[tuple[str, Layer]]:
    """(network or "", layer) pairs of the named grid."""
    if name == "tiny":
        return [("", l) for l in tiny_grid()]
    if name == "standard":
        return [("", l) for l in standard_grid()]
    if name == "buffer":
        return [("", l) for l in buffer_grid()]
    if name == "zoo":
        return zoo_layers()
    if name == "dataset":
        std = [("", l) for l in standard_grid()]
        shapes = {_shape(l) for _, l in std}
        return std + [(n, l) for n, l in zoo_layers() if _shape(l) not in shapes]
    raise GridError(f"grid: unknown grid {name!r}; known: {', '.join(GRID_NAMES)}")
