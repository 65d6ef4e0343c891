"""A small ONNX (opset 13) graph builder that tracks the shape of every value (without the batch).

Only the ops the deepinside engine reads are ever emitted (see docs/cuda-convnet.md).
"""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 13
IR_VERSION = 7        # the IR version that goes with opset 13

ALLOWED_OPS = {
    "Conv", "Relu", "MaxPool", "AveragePool", "GlobalAveragePool", "LRN", "Gemm", "MatMul", "Add",
    "Sub", "Mul", "Div", "Flatten", "Reshape", "Concat", "Dropout", "BatchNormalization", "Softmax",
    "Identity", "Constant", "Sigmoid", "Tanh", "Abs", "Softplus", "Sqrt", "Exp", "Log", "Neg", "Clip",
    "Pow", "Max", "Sum",
}


class Builder:
    def __init__(self):
        self.nodes = []
        self.initializers = []
        self.shapes = {}          # value name -> shape without the batch dimension
        self._used = set()
        self._consts = {}

    def fresh(self, base):
        """A value name not used yet, derived from `base`."""
        name, i = base, 1
        while name in self._used:
            i += 1
            name = "%s_%d" % (base, i)
        self._used.add(name)
        return name

    def reserve(self, name):
        if name in self._used:
            raise ValueError("value name %r used twice" % name)
        self._used.add(name)
        return name

    def const(self, base, array):
        """An initializer (float32 unless the array is int64); scalars are shared by value."""
        array = np.asarray(array)
        array = array.astype(np.int64 if array.dtype.kind in "iu" else np.float32)
        key = None
        if array.size == 1:
            key = (array.dtype.str, array.shape, array.tobytes())
            if key in self._consts:
                return self._consts[key]
        name = self.fresh(base)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        if key is not None:
            self._consts[key] = name
        return name

    def node(self, op, inputs, shape, out=None, **attrs):
        """Append a node with one output; `shape` is the output's shape without the batch."""
        assert op in ALLOWED_OPS, op
        out = out if out is not None else self.fresh("v")
        self.nodes.append(helper.make_node(op, list(inputs), [out], name=out, **attrs))
        self.shapes[out] = tuple(int(d) for d in shape)
        return out

    def model(self, input_name, input_shape, outputs, doc=""):
        inp = helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["N"] + list(input_shape))
        outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, ["N"] + list(self.shapes[o]))
                for o in outputs]
        graph = helper.make_graph(self.nodes, "cuda_convnet", [inp], outs, self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="deepinside convert_cuda_convnet.py", doc_string=doc)
        model.ir_version = IR_VERSION
        onnx.checker.check_model(model, full_check=True)     # includes strict shape inference
        return model
