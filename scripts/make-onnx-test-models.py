#!/usr/bin/python3
"""Writes two tiny ONNX detectors whose output is a known constant, for the detector
unit tests: yolov5-test.onnx (output [1, 8, 7]: YOLOv5 rows cx, cy, w, h, objectness,
2 class scores) and yolov8-test.onnx (output [1, 6, 8]: YOLOv8 columns cx, cy, w, h,
2 class scores), both taking a 1x3x64x64 input, coordinates in input pixels.

The graph consumes its input so OpenCV cannot fold it away: the input's spatial mean
goes through a 1x1 convolution with zero weights (the input times 0), is reshaped to
the output shape and added to a Constant node holding the rows below.

Usage: make-onnx-test-models.py OUTDIR   (needs only the onnx and numpy packages)
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SIZE = 64

# YOLOv5 rows: cx, cy, w, h, objectness, score class 0, score class 1.
# Expected at threshold 0.5: row 0 (class 0, 0.81), row 2 (class 1, 0.63) and row 4
# (class 0, 0.55, clamped at the right edge); row 1 duplicates row 0 (IoU 0.88) and is
# suppressed; row 3 (0.30) is below the threshold; rows 5-7 are empty.
V5_ROWS = [
    [16, 16, 16, 16, 0.9, 0.9, 0.1],
    [17, 16, 16, 16, 0.9, 0.8, 0.1],
    [16, 16, 16, 16, 0.9, 0.1, 0.7],
    [48, 48, 8, 8, 0.5, 0.6, 0.1],
    [60, 8, 16, 8, 1.0, 0.55, 0.0],
    [0, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0],
]

# YOLOv8 boxes (stored transposed: one column per box): cx, cy, w, h, score class 0,
# score class 1. Expected at threshold 0.5: box 2 (class 1, 0.9) and box 0 (class 0,
# 0.8); box 1 duplicates box 0 (IoU 0.78) and is suppressed; box 3 (0.3) is below the
# threshold; boxes 4-7 are empty.
V8_BOXES = [
    [16, 16, 16, 16, 0.8, 0.1],
    [18, 16, 16, 16, 0.7, 0.05],
    [48, 48, 20, 20, 0.1, 0.9],
    [40, 20, 10, 10, 0.3, 0.2],
    [0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0],
]


def constant_model(values, name):
    values = np.asarray(values, dtype=np.float32)
    count = int(values.size)
    inputs = [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, SIZE, SIZE])]
    outputs = [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(values.shape))]
    inits = [
        numpy_helper.from_array(np.zeros((count, 3, 1, 1), np.float32), "zero_weights"),
        numpy_helper.from_array(np.array(values.shape, np.int64), "out_shape"),
    ]
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean"], axes=[2, 3], keepdims=1),
        helper.make_node("Conv", ["mean", "zero_weights"], ["zeros"], kernel_shape=[1, 1]),
        helper.make_node("Reshape", ["zeros", "out_shape"], ["zeros_shaped"]),
        helper.make_node("Constant", [], ["rows"],
                         value=numpy_helper.from_array(values, "rows_value")),
        helper.make_node("Add", ["zeros_shaped", "rows"], ["output0"]),
    ]
    graph = helper.make_graph(nodes, name, inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)],
                              producer_name="vigil-tests")
    model.ir_version = 7
    onnx.checker.check_model(model)
    return model


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: make-onnx-test-models.py OUTDIR\n")
        return 2
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    v5 = constant_model(np.array(V5_ROWS).reshape(1, 8, 7), "yolov5_test")
    v8 = constant_model(np.array(V8_BOXES).T.reshape(1, 6, 8), "yolov8_test")
    onnx.save(v5, os.path.join(outdir, "yolov5-test.onnx"))
    onnx.save(v8, os.path.join(outdir, "yolov8-test.onnx"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
