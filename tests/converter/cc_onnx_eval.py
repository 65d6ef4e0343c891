"""A small numpy evaluator for the ONNX op subset the deepinside engine reads (opset 13 semantics).

Written from the ONNX operator specification; it refuses any op outside the engine's set, and
MaxPool/AveragePool with ceil_mode=1 (the converter never needs it).
"""
import numpy as np
from onnx import numpy_helper

ENGINE_OPS = {
    "Conv", "Relu", "MaxPool", "AveragePool", "GlobalAveragePool", "LRN", "Gemm", "MatMul", "Add",
    "Sub", "Mul", "Div", "Flatten", "Reshape", "Concat", "Dropout", "BatchNormalization", "Softmax",
    "Identity", "Constant", "Sigmoid", "Tanh", "Abs", "Softplus", "Sqrt", "Exp", "Log", "Neg", "Clip",
    "Pow", "Max", "Sum",
}


def _attrs(node):
    out = {}
    for a in node.attribute:
        if a.type == a.INT:
            out[a.name] = a.i
        elif a.type == a.FLOAT:
            out[a.name] = a.f
        elif a.type == a.INTS:
            out[a.name] = list(a.ints)
        elif a.type == a.TENSOR:
            out[a.name] = numpy_helper.to_array(a.t)
        elif a.type == a.STRING:
            out[a.name] = a.s.decode()
    return out


def _windows(x, kh, kw, strides, pads, fill):
    """-> (padded x, out H, out W); x (N, C, H, W); floor output size."""
    t, l, b, r = pads
    xp = np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)), constant_values=fill)
    oh = (xp.shape[2] - kh) // strides[0] + 1
    ow = (xp.shape[3] - kw) // strides[1] + 1
    return xp, oh, ow


def _tap(xp, ky, kx, oh, ow, strides):
    return xp[:, :, ky:ky + strides[0] * (oh - 1) + 1:strides[0], kx:kx + strides[1] * (ow - 1) + 1:strides[1]]


def conv(x, w, b, a):
    group = a.get("group", 1)
    strides = a.get("strides", [1, 1])
    dil = a.get("dilations", [1, 1])
    pads = a.get("pads", [0, 0, 0, 0])
    m, cg, kh, kw = w.shape
    n, c = x.shape[:2]
    ekh, ekw = (kh - 1) * dil[0] + 1, (kw - 1) * dil[1] + 1
    xp, oh, ow = _windows(x, ekh, ekw, strides, [pads[0], pads[1], pads[2], pads[3]], 0)
    xg = xp.reshape(n, group, cg, xp.shape[2], xp.shape[3])
    wg = w.reshape(group, m // group, cg, kh, kw)
    out = np.zeros((n, group, m // group, oh, ow), x.dtype)
    for ky in range(kh):
        for kx in range(kw):
            y0, x0 = ky * dil[0], kx * dil[1]
            tap = xg[:, :, :, y0:y0 + strides[0] * (oh - 1) + 1:strides[0], x0:x0 + strides[1] * (ow - 1) + 1:strides[1]]
            out += np.einsum("ngchw,gmc->ngmhw", tap, wg[:, :, :, ky, kx])
    out = out.reshape(n, m, oh, ow)
    if b is not None:
        out = out + b.reshape(1, m, 1, 1)
    return out


def pool(x, a, kind):
    if a.get("ceil_mode", 0):
        raise NotImplementedError("ceil_mode=1")
    kh, kw = a["kernel_shape"]
    strides = a.get("strides", [1, 1])
    pads = a.get("pads", [0, 0, 0, 0])
    if kind == "max":
        xp, oh, ow = _windows(x, kh, kw, strides, pads, -np.inf)
        out = np.full(x.shape[:2] + (oh, ow), -np.inf, x.dtype)
        for ky in range(kh):
            for kx in range(kw):
                out = np.maximum(out, _tap(xp, ky, kx, oh, ow, strides))
        return out
    xp, oh, ow = _windows(x, kh, kw, strides, pads, 0)
    ones, _, _ = _windows(np.ones((1, 1) + x.shape[2:], x.dtype), kh, kw, strides, pads, 0)
    total = np.zeros(x.shape[:2] + (oh, ow), x.dtype)
    count = np.zeros((1, 1, oh, ow), x.dtype)
    for ky in range(kh):
        for kx in range(kw):
            total += _tap(xp, ky, kx, oh, ow, strides)
            count += _tap(ones, ky, kx, oh, ow, strides)
    return total / (kh * kw) if a.get("count_include_pad", 0) else total / count


def lrn(x, a):
    size, alpha, beta, bias = a["size"], a.get("alpha", 1e-4), a.get("beta", 0.75), a.get("bias", 1.0)
    c = x.shape[1]
    sq = np.zeros_like(x)
    for ch in range(c):
        lo, hi = max(0, ch - (size - 1) // 2), min(c - 1, ch + int(np.ceil((size - 1) / 2)))
        sq[:, ch] = (x[:, lo:hi + 1] ** 2).sum(axis=1)
    return x / (bias + alpha / size * sq) ** beta


def reshape(x, shape):
    shape = [x.shape[i] if s == 0 else int(s) for i, s in enumerate(shape)]
    return x.reshape(shape)


def run(model, feeds, dtype=np.float32):
    """Evaluate every node; -> {value name: array}."""
    env = {i.name: numpy_helper.to_array(i).astype(dtype if numpy_helper.to_array(i).dtype.kind == "f" else np.int64)
           for i in model.graph.initializer}
    env.update({k: np.asarray(v, dtype) for k, v in feeds.items()})
    for node in model.graph.node:
        op, a = node.op_type, _attrs(node)
        if op not in ENGINE_OPS:
            raise ValueError("op %s is not in the engine's set" % op)
        ins = [env[i] if i else None for i in node.input]
        x = ins[0] if ins else None
        if op == "Conv":
            y = conv(x, ins[1], ins[2] if len(ins) > 2 else None, a)
        elif op in ("MaxPool", "AveragePool"):
            y = pool(x, a, "max" if op == "MaxPool" else "avg")
        elif op == "GlobalAveragePool":
            y = x.mean(axis=(2, 3), keepdims=True)
        elif op == "LRN":
            y = lrn(x, a)
        elif op == "Gemm":
            A = x.T if a.get("transA", 0) else x
            B = ins[1].T if a.get("transB", 0) else ins[1]
            y = a.get("alpha", 1.0) * (A @ B)
            if len(ins) > 2 and ins[2] is not None:
                y = y + a.get("beta", 1.0) * ins[2]
        elif op == "MatMul":
            y = np.matmul(x, ins[1])
        elif op in ("Add", "Sub", "Mul", "Div", "Pow"):
            f = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide, "Pow": np.power}[op]
            y = f(x, ins[1])
        elif op == "Flatten":
            ax = a.get("axis", 1)
            y = x.reshape(int(np.prod(x.shape[:ax])), -1)
        elif op == "Reshape":
            y = reshape(x, ins[1])
        elif op == "Concat":
            y = np.concatenate(ins, axis=a["axis"])
        elif op in ("Dropout", "Identity"):
            y = x
        elif op == "BatchNormalization":
            sc, bi, mean, var = ins[1:5]
            sh = (1, -1) + (1,) * (x.ndim - 2)
            y = (x - mean.reshape(sh)) / np.sqrt(var.reshape(sh) + a.get("epsilon", 1e-5)) * sc.reshape(sh) + bi.reshape(sh)
        elif op == "Softmax":
            ax = a.get("axis", -1)
            e = np.exp(x - x.max(axis=ax, keepdims=True))
            y = e / e.sum(axis=ax, keepdims=True)
        elif op == "Constant":
            y = a["value"]
        elif op == "Clip":
            lo = ins[1] if len(ins) > 1 and ins[1] is not None else -np.inf
            hi = ins[2] if len(ins) > 2 and ins[2] is not None else np.inf
            y = np.minimum(np.maximum(x, lo), hi)
        elif op in ("Max", "Sum"):
            y = (np.maximum if op == "Max" else np.add).reduce(ins)
        else:
            y = {"Relu": lambda v: np.maximum(v, 0), "Sigmoid": lambda v: 1 / (1 + np.exp(-v)), "Tanh": np.tanh,
                 "Abs": np.abs, "Softplus": lambda v: np.logaddexp(0, v), "Sqrt": np.sqrt, "Exp": np.exp,
                 "Log": np.log, "Neg": np.negative}[op](x)
        env[node.output[0]] = np.asarray(y).astype(dtype, copy=False)
    return env
