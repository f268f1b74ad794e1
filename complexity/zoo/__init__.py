"""The zoo: every convolution and fully-connected layer of real CNNs, as Layer objects.

Shapes follow the torchvision definitions at a 224 x 224 input (AlexNet-original:
Caffe's 227 x 227) and batch 1; they are stored in ``complexity/zoo/data/<network>.csv``,
written by ``complexity/zoo/build.py`` from compact architecture definitions.
Published totals (MACs, parameters) and their sources are in ``data/published.json``.
See docs/zoo.md for what is and is not a layer here.
"""

from __future__ import annotations

import csv
import json
from functools import lru_cache
from pathlib import Path

from complexity.layer import Layer

__all__ = ["network_names", "get_network", "network_rows", "network_macs", "network_params",
           "published_totals", "ZooError"]

_DATA = Path(__file__).resolve().parent / "data"
_SHAPE = ("b", "c", "d", "h", "w", "kh", "kw", "sh", "sw", "ph", "pw", "groups")
_NAMES = ("alexnet", "alexnet_original", "vgg16", "resnet50", "mobilenet_v2", "googlenet",
          "squeezenet1_0", "squeezenet1_1")


class ZooError(KeyError):
    """An unknown network name or batch; the message lists what is accepted."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def network_names() -> tuple[str, ...]:
    """Names of the networks in the zoo, in a fixed order."""
    return _NAMES


def _check(name: str) -> str:
    if name not in _NAMES:
        raise ZooError(f"unknown network {name!r}; known networks: {', '.join(_NAMES)}")
    return name


@lru_cache(maxsize=None)
def network_rows(name: str) -> tuple[dict, ...]:
    """The CSV rows of a network (name, kind, the Layer shape fields, bias, bn) with integer values."""
    path = _DATA / f"{_check(name)}.csv"
    with path.open(newline="") as fh:
        rows = []
        for r in csv.DictReader(fh):
            rows.append({k: (v if k in ("name", "kind") else int(v)) for k, v in r.items()})
    return tuple(rows)


def get_network(name: str, batch: int = 1) -> tuple[Layer, ...]:
    """Every conv/fc layer of network ``name`` in forward order, with batch ``batch``."""
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ZooError(f"batch must be a positive integer, got {batch!r}")
    return tuple(Layer(name=r["name"], **{k: (batch if k == "b" else r[k]) for k in _SHAPE})
                 for r in network_rows(name))


def network_macs(name: str, batch: int = 1) -> int:
    """Total multiply-accumulates of the network's conv and fc layers (sum of Layer.F)."""
    return sum(layer.F for layer in get_network(name, batch))


def network_params(name: str) -> int:
    """Learned parameters: weights, plus d biases and 2 d BatchNorm words where the layer has them."""
    total = 0
    for r, layer in zip(network_rows(name), get_network(name)):
        total += layer.W + r["bias"] * layer.d + 2 * r["bn"] * layer.d
    return total


@lru_cache(maxsize=None)
def _published() -> dict:
    return json.loads((_DATA / "published.json").read_text())


def published_totals(name: str) -> dict:
    """Published totals of a network: macs, params (None when unpublished), their tolerances, source.

    ``macs_tol`` / ``params_tol`` are half a unit in the last published digit
    (e.g. 0.0005e9 MACs for "0.714 GFLOPS"), the precision the source gives.
    """
    entry = _published()[_check(name)]
    out = {"macs": entry["macs"], "params": entry["params"], "source": entry["source"]}
    for key in ("macs", "params"):
        unit, digits = entry[f"{key}_unit"], entry[f"{key}_digits"]
        out[f"{key}_tol"] = None if unit is None else 0.5 * unit * 10.0 ** (-digits)
    return out
