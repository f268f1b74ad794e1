"""Write tiny_cnn.onnx: a small, deterministic CNN for the figures' and CLI's own-network examples.

A MobileNet-like toy on a 1 x 3 x 64 x 64 input: a strided 3x3 stem, a depthwise-separable
block, a residual 3x3 block, a strided 3x3 conv, global average pooling and a classifier
(Gemm).  Weights are zeros (only shapes matter to the bounds), so the file is small and
byte-identical on every run.  Regenerate with ``python tests/data/onnx/make_tiny_cnn.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = Path(__file__).with_name("tiny_cnn.onnx")


def build() -> onnx.ModelProto:
    nodes, inits = [], []

    def conv(name, x, c_in, c_out, k, stride=1, groups=1):
        w = numpy_helper.from_array(np.zeros((c_out, c_in // groups, k, k), np.float32), name=f"{name}.weight")
        inits.append(w)
        p = k // 2
        nodes.append(helper.make_node("Conv", [x, w.name], [f"{name}.out"], name=name, kernel_shape=[k, k],
                                      strides=[stride, stride], pads=[p, p, p, p], group=groups))
        nodes.append(helper.make_node("Relu", [f"{name}.out"], [f"{name}.relu"], name=f"{name}.act"))
        return f"{name}.relu"

    x = conv("stem.conv", "input", 3, 16, 3, stride=2)                 # 32 x 32
    x = conv("block1.dw", x, 16, 16, 3, groups=16)
    x = conv("block1.pw", x, 16, 32, 1)
    y = conv("block2.conv1", x, 32, 32, 3)
    y = conv("block2.conv2", y, 32, 32, 3)
    nodes.append(helper.make_node("Add", [x, y], ["block2.sum"], name="block2.add"))
    x = conv("block3.conv", "block2.sum", 32, 64, 3, stride=2)          # 16 x 16
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["pool"], name="pool"))
    nodes.append(helper.make_node("Flatten", ["pool"], ["flat"], name="flatten", axis=1))
    w = numpy_helper.from_array(np.zeros((10, 64), np.float32), name="head.fc.weight")
    inits.append(w)
    nodes.append(helper.make_node("Gemm", ["flat", w.name], ["logits"], name="head.fc", transB=1))
    graph = helper.make_graph(nodes, "tiny_cnn",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 64, 64])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])],
                              initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="energy-complexity",
                              producer_version="tests")
    onnx.checker.check_model(model)
    return model


if __name__ == "__main__":
    onnx.save(build(), OUT)
    print(f"wrote {OUT}")
