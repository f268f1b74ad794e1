"""Import the convolution and fully-connected layers of an ONNX model as Layers.

Conv (grouped, strided, symmetric padding) becomes a convolution layer; Gemm and
MatMul with a constant weight matrix become fully-connected layers.  Operators that
only reshape, pool, normalize or apply a point-wise function are traversed (their
output shapes come from ONNX shape inference).  Any other operator is skipped and
named in one ``warnings.warn``, never silently.  See docs/estimation.md, "Importing models".
"""

from __future__ import annotations

import warnings
from collections import Counter

from complexity.layer import Layer, LayerError

__all__ = ["load_onnx", "layers_from_onnx", "OnnxImportError", "PASS_THROUGH_OPS"]

#: Operators that are not layers of the model (no weights x activations MACs) and are traversed.
PASS_THROUGH_OPS = frozenset({
    "Relu", "LeakyRelu", "PRelu", "Clip", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Elu", "Selu",
    "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "LpPool",
    "Flatten", "Reshape", "Squeeze", "Unsqueeze", "Transpose", "Identity", "Dropout",
    "BatchNormalization", "InstanceNormalization", "LRN", "Pad",
    "Add", "Sub", "Mul", "Div", "Sum", "Concat", "Split", "Slice",
    "Constant", "Shape", "Gather", "Cast",
})


class OnnxImportError(LayerError):
    """An ONNX model (or one of its nodes) that cannot be turned into layers; names the node."""


def _dims(vi) -> list:
    return [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]


def _attrs(node) -> dict:
    import onnx
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _int_dim(v, what: str, node_name: str, default_batch: int) -> int:
    if v is None or v == 0:
        if what == "batch":
            return default_batch
        raise OnnxImportError(what, f"node {node_name!r}: shape inference left dimension {what} unknown")
    return int(v)


def layers_from_onnx(model, batch: int = 1) -> list[Layer]:
    """Layers of an ``onnx.ModelProto``, in graph order; symbolic batch dimensions become ``batch``."""
    import onnx
    try:
        model = onnx.shape_inference.infer_shapes(model)
    except Exception as exc:  # noqa: BLE001 - onnx raises several types
        raise OnnxImportError("onnx", f"shape inference failed: {exc}") from None
    g = model.graph
    shapes = {}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        shapes[vi.name] = _dims(vi)
    inits = {t.name: list(t.dims) for t in g.initializer}
    for name, dims in inits.items():
        shapes.setdefault(name, dims)
    for node in g.node:  # Constant nodes can hold weights too
        if node.op_type == "Constant":
            t = _attrs(node).get("value")
            if t is not None and hasattr(t, "dims"):
                inits[node.output[0]] = list(t.dims)
                shapes.setdefault(node.output[0], list(t.dims))

    layers: list[Layer] = []
    skipped: Counter = Counter()
    for idx, node in enumerate(g.node):
        name = node.name or (node.output[0] if node.output else f"node{idx}")
        op = node.op_type
        if op == "Conv":
            layers.append(_conv(node, name, shapes, inits, batch))
        elif op in ("Gemm", "MatMul"):
            layer = _fc(node, name, shapes, inits, batch)
            if layer is None:
                skipped[f"{op} (no constant weight)"] += 1
            else:
                layers.append(layer)
        elif op not in PASS_THROUGH_OPS:
            skipped[op] += 1
    if skipped:
        listed = ", ".join(f"{op} x{n}" for op, n in sorted(skipped.items()))
        warnings.warn(f"ONNX import skipped unsupported operators: {listed}", stacklevel=2)
    return layers


def load_onnx(path, batch: int = 1) -> list[Layer]:
    """Layers of the ONNX model in file ``path`` (see ``layers_from_onnx``)."""
    import onnx
    try:
        model = onnx.load(str(path))
    except FileNotFoundError:
        raise OnnxImportError("onnx", f"no such file: {path}") from None
    except Exception as exc:  # noqa: BLE001 - a corrupt file raises protobuf errors
        raise OnnxImportError("onnx", f"cannot read {path}: {exc}") from None
    return layers_from_onnx(model, batch=batch)


def _conv(node, name, shapes, inits, batch) -> Layer:
    a = _attrs(node)
    xs = shapes.get(node.input[0])
    ws = inits.get(node.input[1]) or shapes.get(node.input[1])
    if not xs or len(xs) != 4:
        raise OnnxImportError("shape", f"Conv node {name!r}: only 2-D convolutions with a known NCHW input "
                                       f"shape are supported, got {xs}")
    if not ws or len(ws) != 4:
        raise OnnxImportError("weight", f"Conv node {name!r}: weight shape unknown or not 4-D: {ws}")
    if any(d != 1 for d in a.get("dilations", [1, 1])):
        raise OnnxImportError("dilations", f"Conv node {name!r}: dilated convolution {list(a['dilations'])} "
                                           "is not supported")
    n, c, h, w = (_int_dim(v, k, name, batch) for v, k in zip(xs, ("batch", "c", "h", "w")))
    d, _, kh, kw = (int(v) for v in ws)
    sh, sw = (int(s) for s in a.get("strides", [1, 1]))
    group = int(a.get("group", 1))
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = []
        for size, k, s in ((h, kh, sh), (w, kw, sw)):
            total = max(0, (-(-size // s) - 1) * s + k - size)
            pads.append((total // 2, total - total // 2))
        top, bottom = pads[0]; left, right = pads[1]
        if auto == "SAME_LOWER":
            top, bottom, left, right = bottom, top, right, left
    elif auto == "VALID":
        top = bottom = left = right = 0
    else:
        top, left, bottom, right = (int(p) for p in a.get("pads", [0, 0, 0, 0]))
    if top != bottom or left != right:
        raise OnnxImportError("pads", f"Conv node {name!r}: asymmetric padding (top, left, bottom, right) = "
                                      f"{(top, left, bottom, right)} is not supported (pad the input explicitly "
                                      "or use symmetric pads)")
    return Layer(b=n, c=c, d=d, h=h, w=w, kh=kh, kw=kw, sh=sh, sw=sw, ph=top, pw=left, groups=group, name=name)


def _fc(node, name, shapes, inits, batch) -> Layer | None:
    a = _attrs(node)
    xs = shapes.get(node.input[0])
    if node.input[1] not in inits:
        return None  # a product of two activations (e.g. attention) is not a layer with weights
    ws = inits[node.input[1]]
    if len(ws) != 2:
        return None
    if node.op_type == "Gemm":
        if a.get("transA", 0):
            raise OnnxImportError("transA", f"Gemm node {name!r}: transposed activations are not supported")
        n_in, n_out = (ws[1], ws[0]) if a.get("transB", 0) else (ws[0], ws[1])
    else:
        n_in, n_out = ws
    if not xs:
        raise OnnxImportError("shape", f"{node.op_type} node {name!r}: input shape unknown")
    b = 1
    for i, v in enumerate(xs[:-1]):
        b *= _int_dim(v, "batch" if i == 0 else "rows", name, batch)
    if xs[-1] not in (None, n_in):
        raise OnnxImportError("shape", f"{node.op_type} node {name!r}: input has {xs[-1]} features, "
                                       f"weight expects {n_in}")
    return Layer.fc(n_in=int(n_in), n_out=int(n_out), b=b, name=name)
