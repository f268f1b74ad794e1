"""Derive the layer shapes of the zoo networks from compact architecture definitions.

Each network is written below as a few lines of Python that follow the
torchvision model definition (same channel counts, kernels, strides, paddings,
pooling and module names); a small tracer carries the feature-map size through
the convolutions and poolings and records one row per convolution or
fully-connected layer.  ``python -m complexity.zoo.build`` rewrites
``complexity/zoo/data/<network>.csv``; the committed CSVs are its output and
tests/test_zoo.py checks that they still are.  See docs/zoo.md.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Callable

__all__ = ["COLUMNS", "NETWORKS", "build", "build_all", "to_csv_text", "write_all", "DATA_DIR"]

#: CSV columns: the Layer fields, the layer kind, and what else the layer owns
#: (``bias``: d bias words; ``bn``: a BatchNorm after it with 2 d learned words).
COLUMNS = ("name", "kind", "b", "c", "d", "h", "w", "kh", "kw", "sh", "sw", "ph", "pw", "groups",
           "bias", "bn")

DATA_DIR = Path(__file__).resolve().parent / "data"


def _out(n: int, k: int, s: int, p: int, ceil: bool = False) -> int:
    """Output size of a window of k, stride s, padding p over n (PyTorch's rule, ceil_mode included)."""
    span = n + 2 * p - k
    o = (-(-span // s) if ceil else span // s) + 1
    if ceil and (o - 1) * s >= n + p:  # PyTorch: the last window must start inside the input or left padding
        o -= 1
    return o


class _Tracer:
    """Records conv/fc rows while tracking the current feature map (channels, size)."""

    def __init__(self, c: int, hw: int):
        self.c, self.hw = c, hw
        self.rows: list[dict] = []

    def conv(self, name: str, d: int, k: int, s: int = 1, p: int = 0, groups: int = 1, *,
             bias: bool, bn: bool, c: int | None = None, hw: int | None = None,
             kind: str | None = None, advance: bool = True) -> tuple[int, int]:
        """Add a k x k convolution; by default it reads the current map and replaces it."""
        c = self.c if c is None else c
        hw = self.hw if hw is None else hw
        if kind is None:
            kind = "depthwise" if groups == c and groups > 1 else "conv"
        self.rows.append(dict(name=name, kind=kind, b=1, c=c, d=d, h=hw, w=hw, kh=k, kw=k, sh=s,
                              sw=s, ph=p, pw=p, groups=groups, bias=int(bias), bn=int(bn)))
        o = _out(hw, k, s, p)
        if advance:
            self.c, self.hw = d, o
        return d, o

    def fc(self, name: str, n_in: int, d: int, *, bias: bool = True) -> None:
        """Add a fully-connected layer (the feature map is flattened or globally pooled first)."""
        self.rows.append(dict(name=name, kind="fc", b=1, c=n_in, d=d, h=1, w=1, kh=1, kw=1, sh=1,
                              sw=1, ph=0, pw=0, groups=1, bias=int(bias), bn=0))
        self.c, self.hw = d, 1

    def pool(self, k: int, s: int, p: int = 0, ceil: bool = False) -> None:
        """Max or average pooling: changes the size, not the channels; not a layer here."""
        self.hw = _out(self.hw, k, s, p, ceil)


# ----- the networks ------------------------------------------------------------

def _alexnet() -> list[dict]:
    """torchvision AlexNet ("one weird trick" variant, no groups), 224 x 224 input."""
    t = _Tracer(3, 224)
    t.conv("features.0", 64, 11, 4, 2, bias=True, bn=False); t.pool(3, 2)
    t.conv("features.3", 192, 5, 1, 2, bias=True, bn=False); t.pool(3, 2)
    t.conv("features.6", 384, 3, 1, 1, bias=True, bn=False)
    t.conv("features.8", 256, 3, 1, 1, bias=True, bn=False)
    t.conv("features.10", 256, 3, 1, 1, bias=True, bn=False); t.pool(3, 2)
    assert (t.c, t.hw) == (256, 6)  # AdaptiveAvgPool2d((6, 6)) is the identity at 224
    t.fc("classifier.1", 256 * 6 * 6, 4096)
    t.fc("classifier.4", 4096, 4096)
    t.fc("classifier.6", 4096, 1000)
    return t.rows


def _alexnet_original() -> list[dict]:
    """Krizhevsky et al. 2012 AlexNet with its two-GPU groups (Caffe's 227 x 227 input, LRN omitted)."""
    t = _Tracer(3, 227)
    t.conv("conv1", 96, 11, 4, 0, bias=True, bn=False); t.pool(3, 2)
    t.conv("conv2", 256, 5, 1, 2, groups=2, bias=True, bn=False); t.pool(3, 2)
    t.conv("conv3", 384, 3, 1, 1, bias=True, bn=False)
    t.conv("conv4", 384, 3, 1, 1, groups=2, bias=True, bn=False)
    t.conv("conv5", 256, 3, 1, 1, groups=2, bias=True, bn=False); t.pool(3, 2)
    assert (t.c, t.hw) == (256, 6)
    t.fc("fc6", 256 * 6 * 6, 4096)
    t.fc("fc7", 4096, 4096)
    t.fc("fc8", 4096, 1000)
    return t.rows


def _vgg16() -> list[dict]:
    """torchvision VGG-16 (configuration D, no BatchNorm), 224 x 224 input."""
    t = _Tracer(3, 224)
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
    i = 0  # index in torchvision's features Sequential (conv, relu pairs; pools)
    for v in cfg:
        if v == "M":
            t.pool(2, 2); i += 1
        else:
            t.conv(f"features.{i}", v, 3, 1, 1, bias=True, bn=False); i += 2
    assert (t.c, t.hw) == (512, 7)
    t.fc("classifier.0", 512 * 7 * 7, 4096)
    t.fc("classifier.3", 4096, 4096)
    t.fc("classifier.6", 4096, 1000)
    return t.rows


def _resnet50() -> list[dict]:
    """torchvision ResNet-50 (v1.5: stride on the 3x3 conv), BatchNorm after every conv."""
    t = _Tracer(3, 224)
    t.conv("conv1", 64, 7, 2, 3, bias=False, bn=True); t.pool(3, 2, 1)
    for li, (width, blocks, stride) in enumerate([(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)], 1):
        out = 4 * width
        for bi in range(blocks):
            s = stride if bi == 0 else 1
            c_in, hw_in = t.c, t.hw
            pre = f"layer{li}.{bi}"
            t.conv(f"{pre}.conv1", width, 1, bias=False, bn=True)
            t.conv(f"{pre}.conv2", width, 3, s, 1, bias=False, bn=True)
            t.conv(f"{pre}.conv3", out, 1, bias=False, bn=True)
            if bi == 0:  # projection shortcut: reads the block input, not the main path
                t.conv(f"{pre}.downsample.0", out, 1, s, 0, c=c_in, hw=hw_in,
                       bias=False, bn=True, advance=False)
    assert (t.c, t.hw) == (2048, 7)
    t.fc("fc", 2048, 1000)
    return t.rows


def _mobilenet_v2() -> list[dict]:
    """torchvision MobileNetV2 (width 1.0): inverted residuals of expand 1x1, depthwise 3x3, project 1x1."""
    t = _Tracer(3, 224)
    t.conv("features.0.0", 32, 3, 2, 1, bias=False, bn=True)
    i = 1
    for expand, out, n, stride in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                                   (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]:
        for j in range(n):
            s = stride if j == 0 else 1
            hidden = t.c * expand
            pre, k = f"features.{i}.conv", 0
            if expand != 1:
                t.conv(f"{pre}.0.0", hidden, 1, bias=False, bn=True); k = 1
            t.conv(f"{pre}.{k}.0", hidden, 3, s, 1, groups=hidden, bias=False, bn=True)
            t.conv(f"{pre}.{k + 1}", out, 1, bias=False, bn=True, kind="pointwise")
            i += 1
    t.conv(f"features.{i}.0", 1280, 1, bias=False, bn=True)
    assert (t.c, t.hw) == (1280, 7)
    t.fc("classifier.1", 1280, 1000)
    return t.rows


def _googlenet() -> list[dict]:
    """torchvision GoogLeNet (BasicConv2d = conv + BatchNorm; ceil-mode pools; no auxiliary heads).

    As in torchvision (kept for its pretrained weights), the "5x5" branch uses a 3 x 3 kernel.
    """
    t = _Tracer(3, 224)
    t.conv("conv1.conv", 64, 7, 2, 3, bias=False, bn=True); t.pool(3, 2, ceil=True)
    t.conv("conv2.conv", 64, 1, bias=False, bn=True)
    t.conv("conv3.conv", 192, 3, 1, 1, bias=False, bn=True); t.pool(3, 2, ceil=True)

    def inception(name: str, ch1, ch3r, ch3, ch5r, ch5, proj) -> None:
        c, hw = t.c, t.hw
        kw = dict(bias=False, bn=True, advance=False, hw=hw)
        t.conv(f"{name}.branch1.conv", ch1, 1, c=c, **kw)
        t.conv(f"{name}.branch2.0.conv", ch3r, 1, c=c, **kw)
        t.conv(f"{name}.branch2.1.conv", ch3, 3, 1, 1, c=ch3r, **kw)
        t.conv(f"{name}.branch3.0.conv", ch5r, 1, c=c, **kw)
        t.conv(f"{name}.branch3.1.conv", ch5, 3, 1, 1, c=ch5r, **kw)
        t.conv(f"{name}.branch4.1.conv", proj, 1, c=c, **kw)  # after a 3x3 stride-1 max pool
        t.c = ch1 + ch3 + ch5 + proj  # the four branches are concatenated

    inception("inception3a", 64, 96, 128, 16, 32, 32)
    inception("inception3b", 128, 128, 192, 32, 96, 64); t.pool(3, 2, ceil=True)
    inception("inception4a", 192, 96, 208, 16, 48, 64)
    inception("inception4b", 160, 112, 224, 24, 64, 64)
    inception("inception4c", 128, 128, 256, 24, 64, 64)
    inception("inception4d", 112, 144, 288, 32, 64, 64)
    inception("inception4e", 256, 160, 320, 32, 128, 128); t.pool(2, 2, ceil=True)
    inception("inception5a", 256, 160, 320, 32, 128, 128)
    inception("inception5b", 384, 192, 384, 48, 128, 128)
    assert (t.c, t.hw) == (1024, 7)
    t.fc("fc", 1024, 1000)
    return t.rows


def _squeezenet(version: str) -> list[dict]:
    """torchvision SqueezeNet 1.0 / 1.1: fire modules (squeeze 1x1, expand 1x1 || expand 3x3), conv classifier."""
    t = _Tracer(3, 224)

    def fire(i: int, s: int, e1: int, e3: int) -> None:
        pre = f"features.{i}"
        t.conv(f"{pre}.squeeze", s, 1, bias=True, bn=False)
        t.conv(f"{pre}.expand1x1", e1, 1, bias=True, bn=False, advance=False)
        t.conv(f"{pre}.expand3x3", e3, 3, 1, 1, bias=True, bn=False, advance=False)
        t.c = e1 + e3

    if version == "1_0":
        t.conv("features.0", 96, 7, 2, 0, bias=True, bn=False); t.pool(3, 2, ceil=True)
        fire(3, 16, 64, 64); fire(4, 16, 64, 64); fire(5, 32, 128, 128); t.pool(3, 2, ceil=True)
        fire(7, 32, 128, 128); fire(8, 48, 192, 192); fire(9, 48, 192, 192); fire(10, 64, 256, 256)
        t.pool(3, 2, ceil=True)
        fire(12, 64, 256, 256)
    else:
        t.conv("features.0", 64, 3, 2, 0, bias=True, bn=False); t.pool(3, 2, ceil=True)
        fire(3, 16, 64, 64); fire(4, 16, 64, 64); t.pool(3, 2, ceil=True)
        fire(6, 32, 128, 128); fire(7, 32, 128, 128); t.pool(3, 2, ceil=True)
        fire(9, 48, 192, 192); fire(10, 48, 192, 192); fire(11, 64, 256, 256); fire(12, 64, 256, 256)
    assert (t.c, t.hw) == (512, 13)
    t.conv("classifier.1", 1000, 1, bias=True, bn=False)  # the classifier is a 1x1 conv, then global pool
    return t.rows


#: Network name -> builder, in the order network_names() lists them.
NETWORKS: dict[str, Callable[[], list[dict]]] = {
    "alexnet": _alexnet,
    "alexnet_original": _alexnet_original,
    "vgg16": _vgg16,
    "resnet50": _resnet50,
    "mobilenet_v2": _mobilenet_v2,
    "googlenet": _googlenet,
    "squeezenet1_0": lambda: _squeezenet("1_0"),
    "squeezenet1_1": lambda: _squeezenet("1_1"),
}


def build(name: str) -> list[dict]:
    """The rows (one dict per conv/fc layer, keys COLUMNS) of one network."""
    return NETWORKS[name]()


def build_all() -> dict[str, list[dict]]:
    return {name: build(name) for name in NETWORKS}


def to_csv_text(rows: list[dict]) -> str:
    """The exact CSV text committed for these rows (header COLUMNS, '\\n' line ends)."""
    buf = io.StringIO()
    wr = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    wr.writeheader()
    wr.writerows(rows)
    return buf.getvalue()


def write_all(directory: Path = DATA_DIR) -> list[Path]:
    """Rewrite every network's CSV; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, rows in build_all().items():
        p = directory / f"{name}.csv"
        p.write_text(to_csv_text(rows))
        paths.append(p)
    return paths


if __name__ == "__main__":
    for path in write_all():
        print(path)
