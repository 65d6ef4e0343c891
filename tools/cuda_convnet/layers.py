"""Emit ONNX for each cuda-convnet layer type; the context every emitter works in.

Layouts (cuda-convnet's): an activation is a (dims x cases) matrix whose dims are channel-planar,
index c*H*W + y*W + x, i.e. NCHW once the cases become the batch. An emitter gets the layer and
the name its output must carry, and returns nothing: it calls ctx.b.node(..., out=out) last.
The spatial layers (conv, pool, the norms) live in layers_spatial.py.
"""
import re

import numpy as np

from . import ConversionError

# Types cuda-convnet / cuda-convnet2 know that the engine's op set cannot express exactly.
UNSUPPORTED = {
    "local": "unshared (locally-connected) convolution: separate filters at every output position",
    "sfc": "split fully-connected layer",
    "sum": "channel-group sum layer",
    "cmpool": "cross-map pooling",
    "crop": "crop layer (needs Slice)",
    "href": "horizontal reflection layer",
    "nailbed": "bed-of-nails subsampling layer",
    "blur": "Gaussian blur layer",
    "resize": "resize layer",
    "rscale": "random scale layer",
    "rgb2yuv": "colour transform layer",
    "rgb2lab": "colour transform layer",
}


def fail(layer, message):
    raise ConversionError("layer '%s' (type '%s'): %s" % (layer.name, layer.type, message))


def param(layer, key, index=None, default=None):
    """layer.dic[key] (or its entry `index` when it is a per-input list), with clear errors."""
    if key not in layer.dic:
        if default is not None:
            return default
        fail(layer, "the checkpoint lacks the key '%s'" % key)
    value = layer.dic[key]
    if index is not None and isinstance(value, (list, tuple)):
        if index >= len(value):
            fail(layer, "'%s' has %d entries, input %d needs one" % (key, len(value), index))
        value = value[index]
    return value


def num(layer, key, index=None, default=None, kind=float):
    value = param(layer, key, index, default)
    try:
        return kind(np.asarray(value).reshape(()))
    except (TypeError, ValueError):
        fail(layer, "'%s' should be a number, got %r" % (key, value))


def array(layer, key, index=None):
    value = param(layer, key, index)
    if not isinstance(value, np.ndarray):
        fail(layer, "'%s' should be a numpy array, got %s" % (key, type(value).__name__))
    return value.astype(np.float32)


class Context:
    def __init__(self, builder):
        self.b = builder
        self.value = {}          # layer name -> ONNX value holding its output

    def input(self, layer, i):
        if i >= len(layer.inputs):
            fail(layer, "expects an input #%d" % i)
        return self.value[layer.inputs[i]]

    def image(self, layer, i, channels, size):
        """Input i viewed as (channels, size, size) images, as cuda-convnet's layer views it."""
        v = self.input(layer, i)
        shape = self.b.shapes[v]
        want = (channels, size, size)
        if shape == want:
            return v
        if int(np.prod(shape)) != channels * size * size:
            fail(layer, "input '%s' has %d values per case, not %dx%dx%d"
                 % (layer.inputs[i], int(np.prod(shape)), channels, size, size))
        shape_const = self.b.const(layer.name + "/shape", np.array([-1, channels, size, size]))
        return self.b.node("Reshape", [v, shape_const], want, out=self.b.fresh(layer.name + "/image"))

    def flat(self, layer, i):
        """Input i as (N, dims): cuda-convnet's activation matrix, transposed."""
        v = self.input(layer, i)
        shape = self.b.shapes[v]
        if len(shape) == 1:
            return v
        return self.b.node("Flatten", [v], (int(np.prod(shape)),), out=self.b.fresh(layer.name + "/flat"), axis=1)


# ---- fully connected, softmax, elementwise, concat, dropout ----------------------------------

def emit_fc(ctx, layer, out):
    b = ctx.b
    outputs = num(layer, "outputs", kind=int)
    bias = array(layer, "biases").reshape(-1)
    if bias.size != outputs:
        fail(layer, "has %d biases for %d outputs" % (bias.size, outputs))
    n = len(layer.inputs)
    terms = []
    for i in range(n):
        x = ctx.flat(layer, i)
        w = array(layer, "weights", i)       # (numInputs_i, outputs); Fortran order in the file
        if w.shape != (b.shapes[x][0], outputs):
            fail(layer, "weights[%d] has shape %s; the input gives %d values and the layer %d outputs"
                 % (i, w.shape, b.shapes[x][0], outputs))
        # Gemm(x, W^T, transB=1): acts = inputs . W (+ biases once, with the first input)
        ins = [x, b.const(layer.name + "/W%s" % (i or ""), np.ascontiguousarray(w.T))]
        if i == 0:
            ins.append(b.const(layer.name + "/b", bias))
        terms.append(b.node("Gemm", ins, (outputs,), out=out if n == 1 else b.fresh("%s/gemm%d" % (layer.name, i)),
                            transB=1))
    if n > 1:
        b.node("Sum", terms, (outputs,), out=out)


def emit_softmax(ctx, layer, out):
    x = ctx.flat(layer, 0)       # cuda-convnet's softmax runs over all dims of a case
    ctx.b.node("Softmax", [x], ctx.b.shapes[x], out=out, axis=1)


def _same_shape_inputs(ctx, layer):
    vals = [ctx.input(layer, i) for i in range(len(layer.inputs))]
    shape = ctx.b.shapes[vals[0]]
    fixed = []
    for i, v in enumerate(vals):
        if ctx.b.shapes[v] != shape:
            if len(shape) == 3:
                v = ctx.image(layer, i, *shape[:2])
            elif int(np.prod(ctx.b.shapes[v])) == shape[0]:
                v = ctx.flat(layer, i)
            else:
                fail(layer, "inputs have different sizes")
        fixed.append(v)
    return fixed, shape


def emit_eltsum(ctx, layer, out):
    b = ctx.b
    vals, shape = _same_shape_inputs(ctx, layer)
    coeffs = param(layer, "coeffs", default=[1.0] * len(vals))
    if len(coeffs) != len(vals):
        fail(layer, "has %d coeffs for %d inputs" % (len(coeffs), len(vals)))
    terms = []
    for i, (v, c) in enumerate(zip(vals, coeffs)):
        c = float(c)
        if c != 1.0:
            only = len(vals) == 1
            v = b.node("Mul", [v, b.const("coeff", np.float32(c))], shape,
                       out=out if only else b.fresh(layer.name + "/scaled%d" % i))
            if only:
                return
        terms.append(v)
    b.node("Identity" if len(terms) == 1 else "Sum", terms, shape, out=out)


def emit_eltmax(ctx, layer, out):
    vals, shape = _same_shape_inputs(ctx, layer)
    ctx.b.node("Identity" if len(vals) == 1 else "Max", vals, shape, out=out)


def emit_concat(ctx, layer, out):
    # cuda-convnet2 stacks the inputs' dims (rows): channel concatenation for images of one size.
    b = ctx.b
    vals = [ctx.input(layer, i) for i in range(len(layer.inputs))]
    shapes = [b.shapes[v] for v in vals]
    if all(len(s) == 3 and s[1:] == shapes[0][1:] for s in shapes):
        b.node("Concat", vals, (sum(s[0] for s in shapes),) + shapes[0][1:], out=out, axis=1)
    else:
        flats = [ctx.flat(layer, i) for i in range(len(vals))]
        b.node("Concat", flats, (sum(b.shapes[f][0] for f in flats),), out=out, axis=1)


def emit_dropout(ctx, layer, out):
    # cuda-convnet2 'dropout' scales the kept units by 1/keep while training: identity at test.
    x = ctx.input(layer, 0)
    ctx.b.node("Dropout", [x], ctx.b.shapes[x], out=out)


def emit_dropout2(ctx, layer, out):
    # 'dropout2' keeps units unscaled while training and multiplies by keep at test time.
    x = ctx.input(layer, 0)
    keep = num(layer, "keep", default=0.5)
    ctx.b.node("Mul", [x, ctx.b.const("keep", np.float32(keep))], ctx.b.shapes[x], out=out)


def emit_pass(ctx, layer, out):
    if len(layer.inputs) == 1:
        x = ctx.input(layer, 0)
        ctx.b.node("Identity", [x], ctx.b.shapes[x], out=out)
    else:
        emit_concat(ctx, layer, out)


# ---- neurons --------------------------------------------------------------------------------

def _neuron_dict(layer, neuron):
    if isinstance(neuron, dict):
        return str(neuron.get("type", "")), dict(neuron.get("params", {}) or {})
    m = re.match(r"^\s*(\w+)\s*(?:\[([^\]]*)\])?\s*$", str(neuron))
    if not m:
        fail(layer, "cannot parse neuron '%s'" % neuron)
    names = {"tanh": "ab", "abstanh": "ab", "linear": "ab", "brelu": "a"}.get(m.group(1), "")
    vals = [float(v) for v in m.group(2).split(",")] if m.group(2) else []
    return m.group(1), dict(zip(names, vals))


def emit_neuron_ops(ctx, layer, x, neuron, out):
    """cuda-convnet's neuron functions (neuron.cuh), applied to value x."""
    b = ctx.b
    shape = b.shapes[x]
    kind, p = _neuron_dict(layer, neuron)

    def tmp(tag):
        return b.fresh("%s/%s" % (layer.name, tag))

    def c(v):
        return b.const("c", np.float32(v))

    def get(key):
        if key not in p:
            fail(layer, "neuron '%s' lacks its parameter '%s'" % (kind, key))
        return float(p[key])

    if kind in ("ident", ""):
        b.node("Identity", [x], shape, out=out)
    elif kind == "relu":
        b.node("Relu", [x], shape, out=out)
    elif kind == "logistic":
        b.node("Sigmoid", [x], shape, out=out)
    elif kind == "abs":
        b.node("Abs", [x], shape, out=out)
    elif kind == "sqrt":
        b.node("Sqrt", [x], shape, out=out)
    elif kind == "square":
        b.node("Mul", [x, x], shape, out=out)
    elif kind == "brelu":
        b.node("Clip", [x, c(0.0), c(get("a"))], shape, out=out)
    elif kind == "linear":
        a, bb = get("a"), get("b")
        if bb == 0.0:
            b.node("Identity" if a == 1.0 else "Mul", [x] if a == 1.0 else [x, c(a)], shape, out=out)
        else:
            y = x if a == 1.0 else b.node("Mul", [x, c(a)], shape, out=tmp("ax"))
            b.node("Add", [y, c(bb)], shape, out=out)
    elif kind in ("tanh", "abstanh"):
        a, bb = get("a"), get("b")
        if kind == "abstanh" and bb < 0:       # a*tanh(b*x)*sign(x) = a*sign(b)*|tanh(|b|*x)|
            a, bb = -a, -bb
        y = x if bb == 1.0 else b.node("Mul", [x, c(bb)], shape, out=tmp("bx"))
        final = a == 1.0 and kind == "tanh"
        y = b.node("Tanh", [y], shape, out=out if final else tmp("tanh"))
        if kind == "abstanh":
            y = b.node("Abs", [y], shape, out=out if a == 1.0 else tmp("abs"))
        if a != 1.0:
            b.node("Mul", [y, c(a)], shape, out=out)
    elif kind == "softrelu":
        # cuda-convnet: x > 4 ? x : log(1 + e^x). step = [x > 4] exactly in float32: the smallest
        # x - 4 > 0 is 4.8e-7, times 1e30 is far above 1; x <= 4 gives <= 0.
        sp = b.node("Softplus", [x], shape, out=tmp("softplus"))
        d = b.node("Sub", [x, c(4.0)], shape, out=tmp("xm4"))
        big = b.node("Mul", [d, c(1e30)], shape, out=tmp("big"))
        step = b.node("Clip", [big, c(0.0), c(1.0)], shape, out=tmp("step"))
        keep = b.node("Sub", [c(1.0), step], shape, out=tmp("notstep"))
        lo = b.node("Mul", [sp, keep], shape, out=tmp("low"))
        hi = b.node("Mul", [x, step], shape, out=tmp("high"))
        b.node("Add", [lo, hi], shape, out=out)
    else:
        fail(layer, "neuron type '%s' is not supported (supported: ident, relu, logistic, tanh[a,b], "
                    "brelu[a], linear[a,b], abs, softrelu, square, sqrt, abstanh[a,b])" % kind)


def emit_neuron(ctx, layer, out):
    emit_neuron_ops(ctx, layer, ctx.input(layer, 0), param(layer, "neuron"), out)


def ceil_div(a, b):
    """ceil(a / b) for integers, b > 0 (cuda-convnet's int(ceil(a / float(b))))."""
    return -((-a) // b)
