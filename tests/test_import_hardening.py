"""Model import that skips instead of aborting: every node kind the issue names, with exact counts.

Each convertible node is checked against a brute-force count of the original operator
(outputs, real MACs) so that "exact" means the Layer's X, W, Y and F_real are those of the node.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from complexity.layer import Layer, LayerError
from complexity.onnx_import import OnnxImport, SkippedNode, conv_layer, import_onnx, layers_from_onnx, load_onnx
from energy_complexity.cli import main


def _w(name, shape):
    return numpy_helper.from_array(np.zeros(shape, dtype=np.float32), name)


def _model(nodes, inputs, outputs, inits, opset=17):
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs]
    vo = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs]
    g = helper.make_graph(nodes, "m", vi, vo, initializer=[_w(n, s) for n, s in inits])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def _conv_model(x_shape, w_shape, op="Conv", **attrs):
    node = helper.make_node(op, ["x", "w"], ["y"], name="n1", **attrs)
    return _model([node], [("x", x_shape)], ["y"], [("w", w_shape)])


def _inferred_out(model):
    m = onnx.shape_inference.infer_shapes(model)
    return [d.dim_value for d in m.graph.output[0].type.tensor_type.shape.dim]


def _conv_axis_counts(n, k, s, p0, p1, r):
    """(outputs, real (output, tap) pairs) of one axis of a dilated convolution, by enumeration."""
    m = (n + p0 + p1 - (r * (k - 1) + 1)) // s + 1
    real = sum(1 for o in range(m) for j in range(k) if 0 <= o * s - p0 + r * j < n)
    return m, real


def _convT_axis_counts(n, k, s, p0, p1):
    """(outputs, real MACs) of one axis of a transposed convolution: input i, tap j -> output i*s + j - p0."""
    m = s * (n - 1) + k - p0 - p1
    real = sum(1 for i in range(n) for j in range(k) if 0 <= i * s + j - p0 < m)
    return m, real


# ----- Conv: padding ---------------------------------------------------------------------------

@pytest.mark.parametrize("n,k,s,pads,expect_p", [
    (32, 3, 2, (0, 1), 1),   # TF "SAME" stride 2 on an even size: mirrored, pad 1
    (32, 3, 2, (1, 0), 1),   # the last padding row is never read
    (33, 3, 2, (1, 2), 1),   # the second bottom padding row is never read
    (7, 3, 1, (1, 1), 1),
])
def test_asymmetric_pads_with_a_symmetric_equivalent_are_exact(n, k, s, pads, expect_p):
    model = _conv_model([1, 4, n, n], [6, 4, k, k], kernel_shape=[k, k], strides=[s, s],
                        pads=[pads[0], pads[0], pads[1], pads[1]])
    rep = import_onnx(model)
    assert rep.skipped == () and rep.unsupported == ()
    (L,) = rep.layers
    assert (L.ph, L.pw, L.h, L.sh) == (expect_p, expect_p, n, s)
    m, real = _conv_axis_counts(n, k, s, pads[0], pads[1], 1)
    assert [L.nh, L.nw] == [m, m] == _inferred_out(model)[2:]
    assert L.Y == 6 * m * m and L.F_real == 6 * 4 * real * real and L.X == 4 * n * n


@pytest.mark.parametrize("auto,n,k,s,expect_p", [
    ("SAME_UPPER", 16, 3, 1, 1), ("SAME_LOWER", 16, 3, 1, 1),
    ("SAME_UPPER", 16, 3, 2, 1),   # pads (0, 1): mirrored
    ("SAME_LOWER", 16, 3, 2, 1),   # pads (1, 0)
    ("SAME_UPPER", 15, 5, 2, 2),   # pads (2, 2)
    ("VALID", 16, 3, 2, 0),
])
def test_auto_pad_that_gives_symmetric_windows(auto, n, k, s, expect_p):
    model = _conv_model([2, 3, n, n], [8, 3, k, k], kernel_shape=[k, k], strides=[s, s], auto_pad=auto)
    (L,) = layers_from_onnx(model, quiet=True)
    assert L == Layer.conv(3, 8, n, k, s, expect_p, b=2, name="n1")
    assert _inferred_out(model) == [2, 8, L.nh, L.nw]


def test_auto_pad_with_an_even_kernel_is_skipped_by_name(capsys):
    model = _conv_model([1, 3, 16, 16], [8, 3, 2, 2], kernel_shape=[2, 2], auto_pad="SAME_UPPER")
    assert layers_from_onnx(model) == []
    assert capsys.readouterr().err == (
        "ONNX import: skipped Conv node 'n1': asymmetric height padding (0, 1) reads padding on one side only "
        "(no symmetric padding gives the same 16 windows)\n")


# ----- Conv: dilation --------------------------------------------------------------------------

def test_dilation_with_stride_one_is_phases_in_the_batch():
    # dilation 2, kernel 3, pad 2 on 16 x 12: 4 phases of 8 x 6 with pad 1
    model = _conv_model([1, 4, 16, 12], [8, 4, 3, 3], kernel_shape=[3, 3], dilations=[2, 2], pads=[2, 2, 2, 2])
    (L,) = layers_from_onnx(model, quiet=True)
    assert L == Layer(b=4, c=4, d=8, h=8, w=6, kh=3, kw=3, ph=1, pw=1, name="n1")
    mh, rh = _conv_axis_counts(16, 3, 1, 2, 2, 2)
    mw, rw = _conv_axis_counts(12, 3, 1, 2, 2, 2)
    assert _inferred_out(model) == [1, 8, mh, mw] == [1, 8, 16, 12]
    assert (L.X, L.W, L.Y, L.F_real) == (4 * 16 * 12, 8 * 4 * 9, 8 * mh * mw, 8 * 4 * rh * rw)
    assert L.F == 8 * mh * mw * 4 * 9


def test_dilation_of_a_one_tap_axis_is_ignored():
    model = _conv_model([1, 4, 10, 10], [8, 4, 1, 3], kernel_shape=[1, 3], dilations=[3, 1], pads=[0, 1, 0, 1])
    (L,) = layers_from_onnx(model, quiet=True)
    assert L == Layer(c=4, d=8, h=10, w=10, kh=1, kw=3, pw=1, name="n1")


def test_dilation_that_is_not_exact_is_skipped_naming_the_node(capsys):
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], name="dilated_s2", kernel_shape=[3, 3], dilations=[2, 2],
                         strides=[2, 2], pads=[2, 2, 2, 2]),
        helper.make_node("Conv", ["x", "w1"], ["b"], name="dilated_odd", kernel_shape=[3, 3], dilations=[2, 2],
                         pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["x", "w1"], ["c"], name="plain", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Softmax", ["c"], ["d"], name="sm1"),
        helper.make_node("Softmax", ["d"], ["e"], name="sm2"),
        helper.make_node("TopK", ["e", "kk"], ["f", "g"], name="topk"),
    ]
    kk = numpy_helper.from_array(np.array([2], dtype=np.int64), "kk")
    g = helper.make_graph(nodes, "m", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 16, 16])],
                          [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in "abf"],
                          initializer=[_w("w1", (8, 4, 3, 3)), kk])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    layers = layers_from_onnx(model)
    assert layers == [Layer.conv(4, 8, 16, 3, 1, 1, name="plain")]
    assert layers.report.skipped == (
        SkippedNode("dilated_s2", "Conv", "height dilation 2 is exact only with stride 1 and an input size and "
                                          "padding divisible by it (got size 16, stride 2, padding 2)"),
        SkippedNode("dilated_odd", "Conv", "height dilation 2 is exact only with stride 1 and an input size and "
                                           "padding divisible by it (got size 16, stride 1, padding 1)"))
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("ONNX import: skipped Conv node 'dilated_s2': height dilation 2")
    assert err[2] == "ONNX import: skipped 3 unsupported operators: Softmax (2), TopK (1)"
    assert len(err) == 3 and "Warning" not in "".join(err) and ".py" not in "".join(err)


def test_conv_layer_refuses_what_it_cannot_express():
    assert conv_layer(c=2, d=2, h=8, w=8, kh=3, kw=3, pads=(2, 2, 2, 2), dilations=(2, 2)) == \
        Layer(b=4, c=2, d=2, h=4, w=4, kh=3, kw=3, ph=1, pw=1)
    with pytest.raises(LayerError, match=r"^invalid layer: conv: height dilation 2 is exact only"):
        conv_layer(c=2, d=2, h=8, w=8, kh=3, kw=3, pads=(1, 1, 1, 1), dilations=(2, 2))


def test_conv1d_is_a_height_one_layer():
    model = _conv_model([3, 5, 20], [7, 5, 3], kernel_shape=[3], strides=[2], pads=[1, 1])
    (L,) = layers_from_onnx(model, quiet=True)
    assert L == Layer(b=3, c=5, d=7, h=1, w=20, kh=1, kw=3, sw=2, pw=1, name="n1")
    assert _inferred_out(model) == [3, 7, L.nw]


def test_conv3d_is_skipped_by_name():
    rep = import_onnx(_conv_model([1, 2, 4, 4, 4], [3, 2, 3, 3, 3], kernel_shape=[3, 3, 3]))
    assert rep.layers == ()
    assert rep.notes() == ["ONNX import: skipped Conv node 'n1': only 1-D and 2-D convolutions are layers "
                           "(input rank 5, weight rank 5)"]


# ----- ConvTranspose ---------------------------------------------------------------------------

@pytest.mark.parametrize("k,s,p,expect", [
    (2, 2, 0, dict(d=6 * 4, kh=1, kw=1, ph=0, pw=0)),   # U-Net upsampling: a 1 x 1 conv to 4 phases
    (3, 1, 1, dict(d=6, kh=3, kw=3, ph=1, pw=1)),       # stride 1: the flipped kernel, padding k-1-p
    (3, 1, 0, dict(d=6, kh=3, kw=3, ph=2, pw=2)),       # "full" convolution
    (4, 2, 2, dict(d=6 * 4, kh=2, kw=2, ph=0, pw=0)),   # sub-pixel: kernel 2, crop one phase row
])
def test_conv_transpose_as_its_sub_pixel_convolution(k, s, p, expect):
    n = 5
    model = _conv_model([2, 4, n, n], [4, 6, k, k], op="ConvTranspose", kernel_shape=[k, k], strides=[s, s],
                        pads=[p, p, p, p])
    (L,) = layers_from_onnx(model, quiet=True)
    assert L == Layer(b=2, c=4, h=n, w=n, name="n1", **expect)
    m, real = _convT_axis_counts(n, k, s, p, p)
    assert _inferred_out(model) == [2, 6, m, m]
    assert (L.X, L.W, L.Y, L.F_real) == (2 * 4 * n * n, 4 * 6 * k * k, 2 * 6 * m * m, 2 * 4 * 6 * real * real)


def test_grouped_conv_transpose_keeps_its_groups():
    model = _conv_model([1, 4, 3, 3], [4, 3, 2, 2], op="ConvTranspose", kernel_shape=[2, 2], strides=[2, 2],
                        group=2)
    (L,) = layers_from_onnx(model, quiet=True)
    assert L == Layer(c=4, d=6 * 4, h=3, w=3, groups=2, name="n1")
    assert L.W == 4 * 3 * 2 * 2 and L.Y == 6 * 6 * 6 == int(np.prod(_inferred_out(model)))


@pytest.mark.parametrize("attrs,reason", [
    (dict(kernel_shape=[4, 4], strides=[2, 2], pads=[1, 1, 1, 1]),
     "height stride 2 must divide the kernel 4 and the pads 1 to be a convolution (otherwise zeros sit between "
     "the inputs)"),
    (dict(kernel_shape=[3, 3], strides=[2, 2]),
     "height stride 2 must divide the kernel 3 and the pads 0 to be a convolution (otherwise zeros sit between "
     "the inputs)"),
    (dict(kernel_shape=[2, 2], strides=[2, 2], output_padding=[1, 1]), "output_padding [1, 1] pads one side only"),
    (dict(kernel_shape=[3, 3], pads=[0, 0, 1, 1]), "asymmetric height pads (0, 1) crop the output on one side only"),
])
def test_conv_transpose_that_is_not_a_convolution_is_skipped(attrs, reason):
    k = attrs["kernel_shape"][0]
    rep = import_onnx(_conv_model([1, 4, 5, 5], [4, 6, k, k], op="ConvTranspose", **attrs))
    assert rep.layers == () and rep.skipped == (SkippedNode("n1", "ConvTranspose", reason),)


# ----- MatMul and Gemm ---------------------------------------------------------------------------

def test_matmul_of_a_sequence_and_a_weight_has_batch_rows():
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"], name="proj"),
             helper.make_node("MatMul", ["w2", "x2"], ["z"], name="left"),
             helper.make_node("MatMul", ["x", "v"], ["u"], name="to_scalar")]
    model = _model(nodes, [("x", ["N", 7, 16]), ("x2", [3, 16, 5])], ["y", "z", "u"],
                   [("w", (16, 32)), ("w2", (10, 16)), ("v", (16,))])
    rep = import_onnx(model, batch=2)
    assert rep.layers == (Layer.fc(16, 32, b=2 * 7, name="proj"),      # x [2, 7, 16] @ W [16, 32]
                          Layer.fc(16, 10, b=3 * 5, name="left"),      # W [10, 16] @ x [3, 16, 5]: 15 columns
                          Layer.fc(16, 1, b=2 * 7, name="to_scalar"))  # x @ v: one output per row
    assert rep.skipped == () and rep.unsupported == ()


@pytest.mark.parametrize("transA,transB,a_shape,b_shape,weight,expect", [
    (0, 0, [6, 12], [12, 4], "b", (12, 4, 6)),
    (1, 0, [12, 6], [12, 4], "b", (12, 4, 6)),
    (0, 1, [6, 12], [4, 12], "b", (12, 4, 6)),
    (1, 1, [12, 6], [4, 12], "b", (12, 4, 6)),
    (0, 0, [4, 12], [12, 6], "a", (12, 4, 6)),   # the weight first: Y = W X, 6 columns
    (1, 1, [12, 4], [6, 12], "a", (12, 4, 6)),
])
def test_gemm_honours_transA_and_transB(transA, transB, a_shape, b_shape, weight, expect):
    node = helper.make_node("Gemm", ["A", "B"], ["Y"], name="g", transA=transA, transB=transB)
    act, wt = ("B", "A") if weight == "a" else ("A", "B")
    shapes = {"A": a_shape, "B": b_shape}
    model = _model([node], [(act, shapes[act])], ["Y"], [(wt, tuple(shapes[wt]))])
    (L,) = layers_from_onnx(model, quiet=True)
    c, d, b = expect
    assert L == Layer.fc(c, d, b=b, name="g")
    assert L.Y == int(np.prod(_inferred_out(model)))


def test_products_of_activations_and_unknown_dims_are_reported():
    nodes = [helper.make_node("MatMul", ["q", "k"], ["s"], name="scores"),
             helper.make_node("MatMul", ["q", "w"], ["p"], name="proj")]
    model = _model(nodes, [("q", ["N", "seq", 8]), ("k", ["N", 8, "seq"])], ["s", "p"], [("w", (8, 8))])
    rep = import_onnx(model)
    assert rep.layers == ()
    assert rep.notes() == [
        "ONNX import: skipped MatMul node 'proj': dimension 1 of the activation ('seq') is unknown after shape "
        "inference",
        "ONNX import: skipped 1 unsupported operator: MatMul of two activations (1)"]


def test_weight_through_transpose_is_constant():
    nodes = [helper.make_node("Transpose", ["wt"], ["w"], name="t", perm=[1, 0]),
             helper.make_node("MatMul", ["x", "w"], ["y"], name="fc")]
    model = _model(nodes, [("x", [4, 9])], ["y"], [("wt", (3, 9))])
    assert layers_from_onnx(model, quiet=True) == [Layer.fc(9, 3, b=4, name="fc")]


# ----- the CLI and the file edge ---------------------------------------------------------------

def test_cli_bounds_on_a_model_with_skipped_nodes_prints_one_line_each(tmp_path, capsys):
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"], name="ok", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["a", "w2"], ["b"], name="holey", kernel_shape=[3, 3], dilations=[2, 2],
                              strides=[2, 2]),
             helper.make_node("Softmax", ["b"], ["y"], name="sm")]
    path = tmp_path / "m.onnx"
    onnx.save(_model(nodes, [("x", [1, 4, 16, 16])], ["y"], [("w1", (8, 4, 3, 3)), ("w2", (8, 8, 3, 3))]), path)
    assert main(["estimate", "--onnx", str(path), "--json"]) == 0
    out, err = capsys.readouterr()
    assert [le["name"] for le in json.loads(out)["layers"]] == ["ok"]
    assert err.splitlines() == [
        "ONNX import: skipped Conv node 'holey': height dilation 2 is exact only with stride 1 and an input size "
        "and padding divisible by it (got size 16, stride 2, padding 0)",
        "ONNX import: skipped 1 unsupported operator: Softmax (1)"]


def test_malformed_nodes_are_skipped_not_fatal():
    nodes = [helper.make_node("MatMul", ["x"], ["y"], name="one_input"),
             helper.make_node("Conv", ["x"], ["z"], name="no_weight"),
             helper.make_node("Gemm", ["x", "w"], ["g"], name="ok")]
    rep = import_onnx(_model(nodes, [("x", [2, 4])], ["y"], [("w", (4, 3))]))
    assert rep.layers == (Layer.fc(4, 3, b=2, name="ok"),)
    assert rep.skipped == (SkippedNode("one_input", "MatMul", "needs two inputs, has 1"),
                           SkippedNode("no_weight", "Conv", "the input or weight shape is unknown after shape "
                                                            "inference"))


def test_unreadable_files_are_one_line_errors(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00not a model\xff" * 10)
    from complexity.onnx_import import OnnxImportError
    with pytest.raises(OnnxImportError, match=r"cannot read .*bad.onnx"):
        load_onnx(bad)
    with pytest.raises(OnnxImportError, match=r"is a directory"):
        load_onnx(tmp_path)
    assert isinstance(import_onnx(_conv_model([1, 2, 4, 4], [2, 2, 1, 1])), OnnxImport)
