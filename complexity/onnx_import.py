"""Import the convolution and fully-connected layers of an ONNX model as Layers.

Conv (1-D or 2-D, grouped, strided, padded, dilated where exact), ConvTranspose (where
exact) and Gemm / MatMul between an activation and a constant weight become layers.
Operators that only reshape, pool, normalize or apply a point-wise function are
traversed (shapes come from ONNX shape inference).  Import never aborts on one node:
a node that cannot be expressed exactly as a ``Layer`` is skipped and named with its
reason, and every other operator is counted in one summary line.  ``import_onnx``
returns all of this as an ``OnnxImport``; ``load_onnx`` / ``layers_from_onnx`` return
the layers and print those lines on stderr.  See docs/estimation.md, "Importing models".

Exactness (why some nodes are skipped): a ``Layer`` has one symmetric padding per axis
and no dilation.  Unequal pads are still exact when the extra padding on one side is
never read (the window positions are those of the symmetric padding, possibly mirrored,
which changes no size or count).  Dilation r along an axis with stride 1, an input size
and a padding divisible by r splits the input into r independent phases that share the
weights: exactly r batch images of size n/r with padding p/r.  A ConvTranspose with
stride s, kernel k and pads p, where s divides k and p (output_padding 0, no dilation),
is exactly a convolution with s*s times more filters of kernel k/s, stride 1, padding
k/s - 1 - p/s (the sub-pixel form: each output phase is an ordinary convolution of the
input).  Other strides would put zeros between the inputs, which a Layer cannot hold.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass

from complexity.layer import Layer, LayerError, out_size

__all__ = ["load_onnx", "layers_from_onnx", "import_onnx", "OnnxImport", "SkippedNode", "ImportedLayers",
           "OnnxImportError", "conv_layer", "PASS_THROUGH_OPS", "print_notes"]

#: Operators that are not layers of the model (no weights x activations MACs) and are traversed.
PASS_THROUGH_OPS = frozenset({
    "Relu", "LeakyRelu", "PRelu", "Clip", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Elu", "Selu",
    "Gelu", "Erf", "Softplus", "Exp", "Log", "Sqrt", "Pow", "Neg", "Abs", "Reciprocal", "Max", "Min", "Mean",
    "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "LpPool",
    "Flatten", "Reshape", "Squeeze", "Unsqueeze", "Transpose", "Identity", "Dropout", "Expand", "Tile",
    "BatchNormalization", "InstanceNormalization", "LayerNormalization", "LRN", "Pad",
    "Add", "Sub", "Mul", "Div", "Sum", "Concat", "Split", "Slice", "Resize", "Upsample",
    "DepthToSpace", "SpaceToDepth", "ReduceMean",
    "Constant", "ConstantOfShape", "Shape", "Gather", "Cast", "Range",
})

class OnnxImportError(LayerError):
    """An ONNX model that cannot be read at all (missing file, failed shape inference)."""


@dataclass(frozen=True)
class SkippedNode:
    """A node that holds a layer which cannot be expressed exactly as a ``Layer``."""

    name: str
    op: str
    reason: str

    def line(self, source: str = "ONNX") -> str:
        kind = "node" if source == "ONNX" else "module"
        return f"{source} import: skipped {self.op} {kind} {self.name!r}: {self.reason}"


@dataclass(frozen=True)
class OnnxImport:
    """What an import found: the layers, the skipped layer nodes, and the unsupported operators.

    ``unsupported`` is ((operator, count), ...), most frequent first; ``source`` names the
    importer in the notes ("ONNX", or "PyTorch" for complexity.torch_import).
    """

    layers: tuple[Layer, ...]
    skipped: tuple[SkippedNode, ...] = ()
    unsupported: tuple[tuple[str, int], ...] = ()
    source: str = "ONNX"

    def notes(self) -> list[str]:
        """One line per skipped node, then one line listing the unsupported operators (if any)."""
        lines = [s.line(self.source) for s in self.skipped]
        if self.unsupported:
            n = sum(k for _, k in self.unsupported)
            kind = "operator" if self.source == "ONNX" else "module"
            listed = ", ".join(f"{op} ({k})" for op, k in self.unsupported)
            lines.append(f"{self.source} import: skipped {n} unsupported {kind}{'s' if n != 1 else ''}: {listed}")
        return lines


class ImportedLayers(list):
    """A list of Layers that also carries the ``OnnxImport`` report as ``.report``."""

    report: OnnxImport

    def __init__(self, report: OnnxImport):
        super().__init__(report.layers)
        self.report = report

    @property
    def skipped(self) -> tuple[SkippedNode, ...]:
        return self.report.skipped


def print_notes(report: OnnxImport, file=None) -> None:
    """Print the report's notes (skipped nodes, unsupported operators), one line each, on stderr."""
    file = sys.stderr if file is None else file
    for line in report.notes():
        print(line, file=file)


class _Skip(Exception):
    """Internal: this node cannot be expressed exactly; the message is the reason."""


# ----- model access ------------------------------------------------------------------------

def _dims(vi) -> list:
    """Dimensions of a value_info: ints, or the dim_param name (str), or None."""
    out = []
    for d in vi.type.tensor_type.shape.dim:
        if d.HasField("dim_value"):
            out.append(int(d.dim_value))
        else:
            out.append(d.dim_param or None)
    return out


def _attrs(node) -> dict:
    import onnx
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _text(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _known(dims, what: str, batch: int, batch_axis: int | None = 0) -> list[int]:
    """Dimensions as ints; an unknown ``batch_axis`` becomes ``batch``, any other unknown one skips."""
    out = []
    for i, v in enumerate(dims):
        if isinstance(v, int) and v > 0:
            out.append(v)
        elif i == batch_axis:
            out.append(batch)
        else:
            label = f" ({v!r})" if isinstance(v, str) else ""
            raise _Skip(f"dimension {i} of the {what}{label} is unknown after shape inference")
    return out


# ----- conversion of one axis ---------------------------------------------------------------

def _same_pads(n: int, k_eff: int, s: int, upper: bool) -> tuple[int, int]:
    total = max(0, (-(-n // s) - 1) * s + k_eff - n)
    small, big = total // 2, total - total // 2
    return (small, big) if upper else (big, small)


def _conv_axis(axis: str, n: int, k: int, s: int, p0: int, p1: int, r: int) -> tuple[int, int, int, int]:
    """(n', k, s, p', phases) of one axis of a convolution as a Layer, or _Skip with the reason.

    Unequal pads (p0, p1) are kept when the windows are exactly those of a symmetric padding
    (p0 on both sides, or p1 on both sides after mirroring the axis); dilation r becomes r phases.
    """
    if k == 1:
        r = 1  # a one-tap kernel reads the same inputs at any dilation
    k_eff = r * (k - 1) + 1
    if n + p0 + p1 < k_eff:
        raise _Skip(f"the {axis} kernel {k_eff} is larger than the padded input {n}+{p0}+{p1}")
    m = (n + p0 + p1 - k_eff) // s + 1
    if p0 == p1:
        p = p0
    elif out_size(n, k_eff, s, p0) == m:
        p = p0  # the last p1 - p0 padding rows are never read
    elif out_size(n, k_eff, s, p1) == m:
        p = p1  # the mirror image: the first p0 - p1 ... never read
    else:
        raise _Skip(f"asymmetric {axis} padding ({p0}, {p1}) reads padding on one side only "
                    f"(no symmetric padding gives the same {m} windows)")
    if r == 1:
        return n, k, s, p, 1
    if s != 1 or n % r or p % r:
        raise _Skip(f"{axis} dilation {r} is exact only with stride 1 and an input size and padding "
                    f"divisible by it (got size {n}, stride {s}, padding {p})")
    return n // r, k, 1, p // r, r


def _conv_2d(*, b, c, d, h, w, kh, kw, sh, sw, pads, dilations, groups, name) -> Layer:
    top, left, bottom, right = pads
    h2, kh2, sh2, ph, rh = _conv_axis("height", h, kh, sh, top, bottom, dilations[0])
    w2, kw2, sw2, pw, rw = _conv_axis("width", w, kw, sw, left, right, dilations[1])
    try:
        return Layer(b=b * rh * rw, c=c, d=d, h=h2, w=w2, kh=kh2, kw=kw2, sh=sh2, sw=sw2, ph=ph, pw=pw,
                     groups=groups, name=name)
    except LayerError as exc:
        raise _Skip(str(exc).removeprefix("invalid layer: ")) from None


def conv_layer(*, c: int, d: int, b: int = 1, h: int, w: int, kh: int, kw: int, sh: int = 1, sw: int = 1,
               pads: tuple[int, int, int, int] = (0, 0, 0, 0), dilations: tuple[int, int] = (1, 1),
               groups: int = 1, name: str = "") -> Layer:
    """The Layer of a 2-D convolution with ONNX-style pads (top, left, bottom, right) and dilations.

    Raises ``LayerError`` (parameter "conv") naming the reason when it is not exactly one Layer.
    """
    try:
        return _conv_2d(b=b, c=c, d=d, h=h, w=w, kh=kh, kw=kw, sh=sh, sw=sw, pads=tuple(pads),
                        dilations=tuple(dilations), groups=groups, name=name)
    except _Skip as exc:
        raise LayerError("conv", str(exc)) from None


# ----- nodes ---------------------------------------------------------------------------------

def _spatial(node, a: dict, xs, ws, batch: int):
    """Common part of Conv / ConvTranspose: (b, c, [h, w], [k], strides, dilations) as 2-D."""
    if xs is None or ws is None:
        raise _Skip("the input or weight shape is unknown after shape inference")
    if len(xs) not in (3, 4) or len(ws) != len(xs):
        raise _Skip(f"only 1-D and 2-D convolutions are layers (input rank {len(xs)}, weight rank {len(ws)})")
    x = _known(xs, "input", batch)
    wt = _known(ws, "weight", batch, batch_axis=None)
    nsp = len(xs) - 2
    strides = [int(v) for v in a.get("strides", [1] * nsp)]
    dil = [int(v) for v in a.get("dilations", [1] * nsp)]
    if nsp == 1:  # a 1-D convolution is the 2-D one on a height-1 input
        x, wt = x[:2] + [1] + x[2:], wt[:2] + [1] + wt[2:]
        strides, dil = [1] + strides, [1] + dil
    return x, wt, strides, dil, nsp


def _pads(a: dict, nsp: int, n, k_eff, strides, node_op: str) -> list[int]:
    """(top, left, bottom, right) from pads / auto_pad, for 2-D (a 1-D model gets a zero height pad)."""
    auto = _text(a.get("auto_pad", "NOTSET"))
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        if node_op != "Conv":
            raise _Skip(f"auto_pad={auto} is not supported for {node_op}")
        pairs = [_same_pads(n[i], k_eff[i], strides[i], auto == "SAME_UPPER") for i in range(2)]
        return [pairs[0][0], pairs[1][0], pairs[0][1], pairs[1][1]]
    if auto == "VALID":
        return [0, 0, 0, 0]
    if auto != "NOTSET":
        raise _Skip(f"unknown auto_pad {auto!r}")
    p = [int(v) for v in a.get("pads", [0] * (2 * nsp))]
    if nsp == 1:
        p = [0, p[0], 0, p[1]]
    return p


def _conv(node, a, shapes, batch, name) -> Layer:
    xs, ws = shapes.get(node.input[0]), shapes.get(node.input[1]) if len(node.input) > 1 else None
    x, wt, strides, dil, nsp = _spatial(node, a, xs, ws, batch)
    n, c, h, w = x
    d, _, kh, kw = wt
    k_eff = [dil[0] * (kh - 1) + 1, dil[1] * (kw - 1) + 1]
    pads = _pads(a, nsp, (h, w), k_eff, strides, "Conv")
    return _conv_2d(b=n, c=c, d=d, h=h, w=w, kh=kh, kw=kw, sh=strides[0], sw=strides[1], pads=tuple(pads),
                    dilations=(dil[0], dil[1]), groups=int(a.get("group", 1)), name=name)


def _conv_transpose(node, a, shapes, batch, name) -> Layer:
    xs, ws = shapes.get(node.input[0]), shapes.get(node.input[1]) if len(node.input) > 1 else None
    x, wt, strides, dil, nsp = _spatial(node, a, xs, ws, batch)
    n, c, h, w = x
    _, dg, kh, kw = wt
    groups = int(a.get("group", 1))
    if any(int(v) for v in a.get("output_padding", [])):
        raise _Skip(f"output_padding {list(a['output_padding'])} pads one side only")
    if "output_shape" in a:
        raise _Skip("an explicit output_shape is not supported (give pads instead)")
    pads = _pads(a, nsp, (h, w), (kh, kw), strides, "ConvTranspose")
    return _conv_transpose_2d(b=n, c=c, d=dg * groups, h=h, w=w, kh=kh, kw=kw, strides=strides, pads=pads,
                              dilations=dil, groups=groups, name=name)


def _conv_transpose_2d(*, b, c, d, h, w, kh, kw, strides, pads, dilations, groups, name) -> Layer:
    """A transposed convolution (``d`` output channels, pads (top, left, bottom, right)) in its sub-pixel form."""
    layer_k, layer_p, phases = [], [], 1
    for axis, k, s, p0, p1, r in (("height", kh, strides[0], pads[0], pads[2], dilations[0]),
                                  ("width", kw, strides[1], pads[1], pads[3], dilations[1])):
        if r != 1 and k != 1:
            raise _Skip(f"{axis} dilation {r} of a transposed convolution is not supported")
        if p0 != p1:
            raise _Skip(f"asymmetric {axis} pads ({p0}, {p1}) crop the output on one side only")
        if k % s or p0 % s:
            raise _Skip(f"{axis} stride {s} must divide the kernel {k} and the pads {p0} to be a convolution "
                        "(otherwise zeros sit between the inputs)")
        kk, pp = k // s, p0 // s
        if pp > kk - 1:
            raise _Skip(f"{axis} pads {p0} crop more than the kernel overlaps")
        layer_k.append(kk); layer_p.append(kk - 1 - pp); phases *= s
    try:
        return Layer(b=b, c=c, d=d * phases, h=h, w=w, kh=layer_k[0], kw=layer_k[1],
                     ph=layer_p[0], pw=layer_p[1], groups=groups, name=name)
    except LayerError as exc:
        raise _Skip(str(exc).removeprefix("invalid layer: ")) from None


def _prod(v) -> int:
    out = 1
    for x in v:
        out *= x
    return out


def _fc(node, a, shapes, consts, batch, name) -> Layer | None:
    """A Gemm / MatMul with one constant operand as a fully-connected layer; None if no operand is constant."""
    op = node.op_type
    if len(node.input) < 2:
        raise _Skip(f"needs two inputs, has {len(node.input)}")
    A, B = node.input[0], node.input[1]
    if A in consts and B in consts:
        raise _Skip("both operands are constants (no activations)")
    if A not in consts and B not in consts:
        return None
    weight_first = A in consts
    xs, ws = shapes.get(B if weight_first else A), shapes.get(A if weight_first else B)
    if xs is None or ws is None:
        raise _Skip("the activation or weight shape is unknown after shape inference")
    wt = _known(ws, "weight", batch, batch_axis=None)
    if op == "Gemm":
        if len(xs) != 2 or len(wt) != 2:
            raise _Skip(f"Gemm operands must be matrices, got ranks {len(xs)} and {len(wt)}")
        ta, tb = int(a.get("transA", 0)), int(a.get("transB", 0))
        rows_axis = (0 if tb else 1) if weight_first else (1 if ta else 0)
        x = _known(xs, "activation", batch, batch_axis=rows_axis)
        if weight_first:  # Y = W' X': W' is (N x K), each of the M columns of X' (K x M) is a vector
            n_out, k = (wt[1], wt[0]) if ta else (wt[0], wt[1])
            kx, rows = (x[1], x[0]) if tb else (x[0], x[1])
        else:  # Y = X' W': X' is (rows x K), W' is (K x N)
            rows, kx = (x[1], x[0]) if ta else (x[0], x[1])
            k, n_out = (wt[1], wt[0]) if tb else (wt[0], wt[1])
    else:
        if len(wt) > 2:
            raise _Skip(f"a stacked weight of shape {wt} is one matrix per slice, not one layer")
        if weight_first:  # Y = W X: W (N x K), X (..., K, cols)
            n_out, k = (1, wt[0]) if len(wt) == 1 else (wt[0], wt[1])
            if len(xs) == 1:
                x = _known(xs, "activation", batch, batch_axis=None)
                kx, rows = x[0], 1
            else:
                x = _known(xs, "activation", batch, batch_axis=0 if len(xs) > 2 else 1)
                kx, rows = x[-2], _prod(x[:-2]) * x[-1]
        else:  # Y = X W: X (..., rows, K), W (K x N)
            k, n_out = (wt[0], 1) if len(wt) == 1 else (wt[0], wt[1])
            x = _known(xs, "activation", batch, batch_axis=0 if len(xs) > 1 else None)
            kx, rows = x[-1], _prod(x[:-1])
    if kx != k:
        raise _Skip(f"the activation has {kx} features, the weight expects {k}")
    return Layer.fc(n_in=k, n_out=n_out, b=rows, name=name)


# ----- the model -----------------------------------------------------------------------------

def import_onnx(model, batch: int = 1) -> OnnxImport:
    """Layers, skipped nodes and unsupported operators of an ``onnx.ModelProto`` (or a file path).

    Symbolic batch dimensions become ``batch``.  Prints nothing; raises ``OnnxImportError``
    only when the model itself cannot be read or shape-inferred.
    """
    import onnx
    if not isinstance(model, onnx.ModelProto):
        model = _read(model)
    try:
        model = _infer_shapes(model)
    except Exception as exc:  # noqa: BLE001 - onnx raises several types
        raise OnnxImportError("onnx", f"shape inference failed: {str(exc).splitlines()[0] if str(exc) else exc}") \
            from None
    g = model.graph
    shapes: dict[str, list] = {}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        shapes[vi.name] = _dims(vi)
    consts = set()
    for t in g.initializer:
        shapes[t.name] = [int(v) for v in t.dims]
        consts.add(t.name)
    for node in g.node:  # constants: Constant nodes and anything computed from constants only
        if node.op_type == "Constant":
            t = _attrs(node).get("value")
            if t is not None and hasattr(t, "dims"):
                shapes.setdefault(node.output[0], [int(v) for v in t.dims])
            consts.update(node.output)
        elif node.input and all(i in consts or i == "" for i in node.input):
            consts.update(node.output)

    layers: list[Layer] = []
    skipped: list[SkippedNode] = []
    unsupported: Counter = Counter()
    for idx, node in enumerate(g.node):
        name = node.name or (node.output[0] if node.output else f"node{idx}")
        op = node.op_type
        try:
            if op == "Conv":
                layers.append(_conv(node, _attrs(node), shapes, batch, name))
            elif op == "ConvTranspose":
                layers.append(_conv_transpose(node, _attrs(node), shapes, batch, name))
            elif op in ("Gemm", "MatMul"):
                layer = _fc(node, _attrs(node), shapes, consts, batch, name)
                if layer is None:
                    unsupported[f"{op} of two activations"] += 1
                else:
                    layers.append(layer)
            elif op not in PASS_THROUGH_OPS and not (node.input and all(i in consts or i == "" for i in node.input)):
                unsupported[op] += 1  # (a node of constants only is constant folding, not a layer)
        except _Skip as exc:
            skipped.append(SkippedNode(name, op, str(exc)))
        except (IndexError, KeyError, TypeError, ValueError, AttributeError) as exc:  # a malformed node
            first = str(exc).splitlines()[0] if str(exc) else ""
            skipped.append(SkippedNode(name, op, f"malformed node ({type(exc).__name__}{': ' + first if first else ''})"))
    order = sorted(unsupported.items(), key=lambda kv: (-kv[1], kv[0]))
    return OnnxImport(tuple(layers), tuple(skipped), tuple(order))


def _infer_shapes(model):
    """ONNX shape inference, with data propagation (shapes through Shape/Slice/Reshape) when it succeeds."""
    import onnx
    try:
        return onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception:  # noqa: BLE001 - retry without data propagation, which fails on fewer models
        return onnx.shape_inference.infer_shapes(model)


def _read(path):
    import onnx
    try:
        return onnx.load(str(path))
    except FileNotFoundError:
        raise OnnxImportError("onnx", f"no such file: {path}") from None
    except IsADirectoryError:
        raise OnnxImportError("onnx", f"{path} is a directory, not an ONNX file") from None
    except Exception as exc:  # noqa: BLE001 - a corrupt file raises protobuf errors
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise OnnxImportError("onnx", f"cannot read {path}: {first}") from None


def layers_from_onnx(model, batch: int = 1, *, quiet: bool = False) -> ImportedLayers:
    """Layers of an ``onnx.ModelProto`` in graph order (a list with ``.report``, see ``import_onnx``).

    Unless ``quiet``, the report's notes (skipped nodes, unsupported operators) are printed
    on stderr, one line each.
    """
    report = import_onnx(model, batch=batch)
    if not quiet:
        print_notes(report)
    return ImportedLayers(report)


def load_onnx(path, batch: int = 1, *, quiet: bool = False) -> ImportedLayers:
    """Layers of the ONNX model in file ``path`` (see ``layers_from_onnx``)."""
    return layers_from_onnx(_read(path), batch=batch, quiet=quiet)
