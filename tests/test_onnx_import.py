"""ONNX import: a model built here with onnx.helper imports to the expected layers."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from complexity.layer import Layer, LayerError
from complexity.onnx_import import OnnxImportError, layers_from_onnx, load_onnx
from energy_complexity.cli import main


def _w(name, shape):
    return numpy_helper.from_array(np.zeros(shape, dtype=np.float32), name)


def build_model(batch="N", conv1_pads=(1, 1, 1, 1)):
    """x[N,3,32,32] -> Conv(8, 3x3, s2) -> Relu -> Conv(g=2, 16, 3x3) -> BN -> MaxPool 2 -> Flatten
    -> Gemm(transB) 10 -> Softmax; plus a MatMul FC on the flattened features."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 32, 32])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 10])
    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, [batch, 7])
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", kernel_shape=[3, 3], strides=[2, 2],
                         pads=list(conv1_pads)),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2", group=2, pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c2", "s", "bb", "mu", "var"], ["n2"], name="bn2"),
        helper.make_node("MaxPool", ["n2"], ["p2"], name="pool2", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p2"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "w3", "b3"], ["g"], name="fc", transB=1),
        helper.make_node("Softmax", ["g"], ["y"], name="softmax"),
        helper.make_node("MatMul", ["f", "w4"], ["z"], name="fc_mm"),
    ]
    inits = [_w("w1", (8, 3, 3, 3)), _w("b1", (8,)), _w("w2", (16, 4, 3, 3)), _w("s", (16,)), _w("bb", (16,)),
             _w("mu", (16,)), _w("var", (16,)), _w("w3", (10, 16 * 8 * 8)), _w("b3", (10,)),
             _w("w4", (16 * 8 * 8, 7))]
    graph = helper.make_graph(nodes, "tiny", [x], [y, z], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    return model


EXPECTED = [
    Layer(b=1, c=3, d=8, h=32, w=32, kh=3, kw=3, sh=2, sw=2, ph=1, pw=1, name="conv1"),
    Layer(b=1, c=8, d=16, h=16, w=16, kh=3, kw=3, ph=1, pw=1, groups=2, name="conv2"),
    Layer.fc(1024, 10, b=1, name="fc"),
    Layer.fc(1024, 7, b=1, name="fc_mm"),
]


def test_model_imports_to_expected_layers_and_notes_softmax(capsys):
    layers = layers_from_onnx(build_model())
    assert layers == EXPECTED
    assert capsys.readouterr().err == "ONNX import: skipped 1 unsupported operator: Softmax (1)\n"
    assert layers.report.unsupported == (("Softmax", 1),) and layers.skipped == ()


def test_batch_from_model_or_parameter(tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(build_model(batch=4), path)
    layers = load_onnx(path, quiet=True)
    assert [l.b for l in layers] == [4, 4, 4, 4]
    layers = layers_from_onnx(build_model(), batch=3, quiet=True)  # symbolic N -> batch
    assert [l.b for l in layers] == [3, 3, 3, 3]


def test_lstm_is_named_in_the_note(capsys):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [5, 1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [5, 1, 1, 6])
    nodes = [helper.make_node("LSTM", ["x", "W", "R"], ["y"], name="lstm", hidden_size=6)]
    g = helper.make_graph(nodes, "rnn", [x], [y], initializer=[_w("W", (1, 24, 4)), _w("R", (1, 24, 6))])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    assert layers_from_onnx(model) == []
    assert capsys.readouterr().err == "ONNX import: skipped 1 unsupported operator: LSTM (1)\n"


def test_asymmetric_pads_never_read_are_the_symmetric_layer():
    # stride 2 on 32 rows: the windows of pads (0, 1) are those of pads (1, 1) mirrored
    layers = layers_from_onnx(build_model(conv1_pads=(0, 0, 1, 1)), quiet=True)
    assert layers == EXPECTED and layers.skipped == ()


def test_asymmetric_pads_that_are_read_skip_only_that_node(capsys):
    # (2, 0) on the height with stride 1 shifts every window up: conv2 is skipped, the rest imported
    model = build_model()
    conv2 = model.graph.node[2]
    conv2.attribute.remove(next(a for a in conv2.attribute if a.name == "pads"))
    conv2.attribute.append(helper.make_attribute("pads", [2, 1, 0, 1]))
    layers = layers_from_onnx(model)
    assert [l.name for l in layers] == ["conv1", "fc", "fc_mm"]
    assert layers.skipped[0].name == "conv2" and layers.skipped[0].op == "Conv"
    err = capsys.readouterr().err.splitlines()
    assert err == ["ONNX import: skipped Conv node 'conv2': asymmetric height padding (2, 0) reads padding on "
                   "one side only (no symmetric padding gives the same 16 windows)",
                   "ONNX import: skipped 1 unsupported operator: Softmax (1)"]
    assert issubclass(OnnxImportError, LayerError)  # a model that cannot be read: the CLI prints one line


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(OnnxImportError, match="no such file"):
        load_onnx(tmp_path / "nope.onnx")


def test_cli_estimate_onnx(tmp_path, capsys):
    path = tmp_path / "m.onnx"
    onnx.save(build_model(), path)
    assert main(["estimate", "--onnx", str(path), "--json"]) == 0
    out, err = capsys.readouterr()
    d = json.loads(out)
    assert err == "ONNX import: skipped 1 unsupported operator: Softmax (1)\n"
    assert [le["name"] for le in d["layers"]] == ["conv1", "conv2", "fc", "fc_mm"]
    assert main(["estimate", "--onnx", str(tmp_path / "missing.onnx")]) == 2
    assert "no such file" in capsys.readouterr().err
