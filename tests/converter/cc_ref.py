"""An independent numpy reference of cuda-convnet's forward pass, computed from the checkpoint dict.

Written from cuda-convnet's sources (see ../shared/cuda-convnet/FORMAT.md), not from the converter:
activations are cuda-convnet's (dims x cases) matrices, images (channels, rows, cols, cases);
conv modules start at paddingStart + m*stride and read zero outside the image; pool and norm
windows are clipped to the image; everything is computed in float64.
Also a small checkpoint reader of its own (numpy arrays rebuilt from their pickled state by hand).
"""
import io
import pickle
import zipfile

import numpy as np


# ---- reading ---------------------------------------------------------------------------------

class _Inert:
    def __init__(self, *args):
        self.args = args

    def __setstate__(self, state):
        self.state = state


class _ArrayState:
    """numpy's _reconstruct(ndarray, (0,), 'b') + BUILD (1, shape, dtype, is_fortran, raw bytes)."""

    def __init__(self, *args):
        self.array = None

    def __setstate__(self, state):
        _, shape, dtype, fortran, raw = state
        if isinstance(raw, str):
            raw = raw.encode("latin-1")
        self.array = np.frombuffer(raw, dtype=dtype.dtype).reshape(shape, order="F" if fortran else "C")


class _Dtype:
    def __init__(self, code, *args):
        self.code = code

    def __setstate__(self, state):
        self.dtype = np.dtype(self.code).newbyteorder(state[1] if state[1] in "<>" else "=")


class _Reader(pickle.Unpickler):
    def find_class(self, module, name):
        if name == "_reconstruct":
            return _ArrayState
        if name == "dtype":
            return _Dtype
        if (module, name) == ("_codecs", "encode"):
            return lambda s, enc="utf-8": s.encode(enc)
        if name == "OrderedDict":
            return dict
        return type(name, (_Inert,), {})


def _arrays(obj, seen):
    if isinstance(obj, _ArrayState):
        return obj.array
    if id(obj) in seen:
        return seen[id(obj)]
    if isinstance(obj, dict):
        seen[id(obj)] = obj
        for k in list(obj):
            obj[k] = _arrays(obj[k], seen)
    elif isinstance(obj, list):
        seen[id(obj)] = obj
        obj[:] = [_arrays(v, seen) for v in obj]
    elif isinstance(obj, tuple):
        return tuple(_arrays(v, seen) for v in obj)
    return obj


def read_pickle(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"PK":
        data = zipfile.ZipFile(io.BytesIO(data)).read("data")
    return _arrays(_Reader(io.BytesIO(data), encoding="latin1").load(), {})


# ---- the forward pass ------------------------------------------------------------------------

def _layer_table(layers):
    if isinstance(layers, dict):
        return {name: (d, list(d.get("inputs", []))) for name, d in layers.items()}
    return {d["name"]: (d, [layers[i]["name"] for i in d.get("inputs", [])]) for d in layers}


def _conv(d, ins):
    filters, m = d["filters"], d["modulesX"]
    n = ins[0].shape[1]
    out = np.zeros((filters, m, m, n))
    for i, a in enumerate(ins):
        c, s, k = d["channels"][i], d["imgSize"][i], d["filterSize"][i]
        stride, start, groups = d["stride"][i], d["padding"][i], d["groups"][i]
        fch, fpg = c // groups, filters // groups
        w = np.asarray(d["weights"][i], np.float64)          # (fch*k*k, filters)
        img = a.reshape(c, s, s, n)
        for my in range(m):
            for mx in range(m):
                y0, x0 = start + my * stride, start + mx * stride
                patch = np.zeros((c, k, k, n))
                for ky in range(k):
                    for kx in range(k):
                        if 0 <= y0 + ky < s and 0 <= x0 + kx < s:
                            patch[:, ky, kx, :] = img[:, y0 + ky, x0 + kx, :]
                for g in range(groups):
                    p = patch[g * fch:(g + 1) * fch].reshape(fch * k * k, n)
                    out[g * fpg:(g + 1) * fpg, my, mx, :] += w[:, g * fpg:(g + 1) * fpg].T @ p
    b = np.asarray(d["biases"], np.float64).reshape(-1)
    if d.get("sharedBiases", True):
        out += b.reshape(filters, 1, 1, 1)
    else:
        out += b.reshape(filters, m, m, 1)
    return out.reshape(-1, n)


def _pool(d, a):
    c, s, k, stride = d["channels"], d["imgSize"], d["sizeX"], d["stride"]
    start = d.get("start", 0)
    m = d["outputsX"] or int(np.ceil((s - start - k) / float(stride))) + 1
    n = a.shape[1]
    img = a.reshape(c, s, s, n)
    out = np.zeros((c, m, m, n))
    for oy in range(m):
        for ox in range(m):
            y0, x0 = start + oy * stride, start + ox * stride
            win = img[:, max(0, y0):min(s, y0 + k), max(0, x0):min(s, x0 + k), :]
            if d["pool"] == "max":
                out[:, oy, ox] = win.max(axis=(1, 2))
            elif d.get("sum"):
                out[:, oy, ox] = win.sum(axis=(1, 2))
            else:
                out[:, oy, ox] = win.sum(axis=(1, 2)) / (win.shape[1] * win.shape[2])
    return out.reshape(-1, n)


def _norm(d, a, kind):
    c, s, size = d["channels"], d["imgSize"], d["size"]
    scale, power, k_const = d["scale"], d["pow"], d.get("minDiv", 1.0)
    n = a.shape[1]
    img = a.reshape(c, s, s, n)
    sums = np.zeros_like(img)
    if kind == "cmrnorm":
        for f in range(c):
            lo = (f // size) * size if d.get("blocked") else f - size // 2
            sums[f] = (img[max(0, lo):min(c, lo + size)] ** 2).sum(axis=0)
    else:
        diffs = img
        if kind == "cnorm":           # x minus the mean over the clipped window
            means = np.zeros_like(img)
            for y in range(s):
                for x in range(s):
                    win = img[:, max(0, y - size // 2):min(s, y - size // 2 + size),
                              max(0, x - size // 2):min(s, x - size // 2 + size)]
                    means[:, y, x] = win.mean(axis=(1, 2))
            diffs = img - means
        for y in range(s):
            for x in range(s):
                win = diffs[:, max(0, y - size // 2):min(s, y - size // 2 + size),
                            max(0, x - size // 2):min(s, x - size // 2 + size)]
                sums[:, y, x] = (win ** 2).sum(axis=(1, 2))
    return (img * (k_const + scale * sums) ** (-power)).reshape(-1, n)


def neuron(nd, x):
    t, p = nd["type"], nd.get("params", {})
    if t == "ident":
        return x
    if t == "relu":
        return np.maximum(x, 0)
    if t == "logistic":
        return 1 / (1 + np.exp(-x))
    if t == "tanh":
        return p["a"] * np.tanh(p["b"] * x)
    if t == "brelu":
        return np.minimum(np.maximum(x, 0), p["a"])
    if t == "linear":
        return p["a"] * x + p["b"]
    if t == "abs":
        return np.abs(x)
    if t == "softrelu":
        return np.where(x > 4, x, np.log1p(np.exp(np.minimum(x, 4))))
    if t == "square":
        return x * x
    if t == "sqrt":
        return np.sqrt(x)
    if t == "abstanh":
        return p["a"] * np.tanh(p["b"] * x) * np.where(x > 0, 1, -1)
    raise ValueError("neuron %s" % t)


def forward(layers, data):
    """layers: a v1 list or v2 dict; data: (dims, cases). -> {layer name: (dims, cases) float64}."""
    table = _layer_table(layers)
    acts = {}

    def act(name):
        if name in acts:
            return acts[name]
        d, inputs = table[name]
        ins = [act(i) for i in inputs]
        t = d["type"]
        if t == "data":
            r = np.asarray(data, np.float64)
        elif t == "conv":
            r = _conv(d, ins)
        elif t == "fc":
            r = sum(np.asarray(w, np.float64).T @ a for w, a in zip(d["weights"], ins))
            r = r + np.asarray(d["biases"], np.float64).reshape(-1, 1)
        elif t == "pool":
            r = _pool(d, ins[0])
        elif t in ("rnorm", "cnorm", "cmrnorm"):
            r = _norm(d, ins[0], t)
        elif t == "neuron":
            r = neuron(d["neuron"], ins[0])
        elif t == "softmax":
            e = np.exp(ins[0] - ins[0].max(axis=0, keepdims=True))
            r = e / e.sum(axis=0, keepdims=True)
        elif t == "eltsum":
            r = sum(c * a for c, a in zip(d.get("coeffs", [1.0] * len(ins)), ins))
        elif t == "eltmax":
            r = np.maximum.reduce(ins)
        elif t in ("concat", "pass"):
            r = np.vstack(ins)
        elif t == "dropout":
            r = ins[0]
        elif t == "dropout2":
            r = d["keep"] * ins[0]
        else:
            raise ValueError("reference: layer type %s" % t)
        if t not in ("neuron", "data") and isinstance(d.get("neuron"), dict):
            r = neuron(d["neuron"], r)
        acts[name] = r
        return r

    for name, (d, _) in table.items():
        if not d["type"].startswith("cost."):
            act(name)
    return acts
