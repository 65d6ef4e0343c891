"""Synthetic cuda-convnet layer dicts, shaped as cuda-convnet's layer parsers leave them.

Each maker returns a dict whose 'inputs' are layer names; as_v1() turns a list of them into a v1
layer list (inputs as indices, stale inputLayers), as_v2() into a v2 dict keyed by name.
Weights are float32 in cuda-convnet's layouts: conv (filterChannels*k*k, filters) C order, fc
(inputs, outputs) Fortran order; padding stored negated; norm scales stored divided.
"""
import math
import random

import numpy as np


def data(name, dims):
    return {"name": name, "type": "data", "outputs": dims, "dataIdx": 0}


def conv(rng, name, inputs, channels, size, filters, k, stride=1, pad=0, groups=1, shared=True, neuron=""):
    n = len(inputs)
    as_list = lambda v: v if isinstance(v, list) else [v] * n   # noqa: E731
    channels, size, k, stride, pad, groups = map(as_list, (channels, size, k, stride, pad, groups))
    m = 1 + int(math.ceil((2 * pad[0] + size[0] - k[0]) / float(stride[0])))
    fch = [c // g for c, g in zip(channels, groups)]
    weights = [(rng.standard_normal((f * kk * kk, filters)) / math.sqrt(f * kk * kk)).astype(np.float32)
               for f, kk in zip(fch, k)]
    nb = filters if shared else filters * m * m
    return {"name": name, "type": "conv", "inputs": inputs, "channels": channels, "imgSize": size,
            "filterSize": k, "filterPixels": [kk * kk for kk in k], "stride": stride,
            "padding": [-p for p in pad], "groups": groups, "filterChannels": fch, "filters": filters,
            "modulesX": m, "modules": m * m, "outputs": filters * m * m, "sharedBiases": shared,
            "randSparse": [False] * n, "filterConns": [[]] * n, "weights": weights,
            "weightsInc": [np.zeros_like(w) for w in weights],
            "biases": (0.1 * rng.standard_normal((nb, 1))).astype(np.float32), "neuron": neuron,
            "partialSum": 0, "epsW": [0.001] * n}


def fc(rng, name, inputs, num_inputs, outputs, neuron=""):
    weights = [np.asfortranarray((rng.standard_normal((d, outputs)) / math.sqrt(d)).astype(np.float32))
               for d in num_inputs]
    return {"name": name, "type": "fc", "inputs": inputs, "numInputs": num_inputs, "outputs": outputs,
            "weights": weights, "biases": (0.1 * rng.standard_normal((1, outputs))).astype(np.float32),
            "neuron": neuron}


def pool(name, inp, channels, size, k, stride, start=0, kind="max", outputs_x=0, total=False):
    m = outputs_x or int(math.ceil((size - start - k) / float(stride))) + 1
    d = {"name": name, "type": "pool", "inputs": [inp], "channels": channels, "imgSize": size, "sizeX": k,
         "stride": stride, "start": start, "pool": kind, "outputsX": m, "outputs": channels * m * m, "neuron": ""}
    if total:
        d["sum"] = 1
    return d


def norm(kind, name, inp, channels, size, wsize, scale_cfg, power, blocked=False, min_div=None):
    scale = scale_cfg / wsize if kind == "cmrnorm" else scale_cfg / wsize ** 2
    d = {"name": name, "type": kind, "inputs": [inp], "channels": channels, "imgSize": size, "size": wsize,
         "scale": scale, "pow": power, "blocked": blocked, "outputs": channels * size * size, "neuron": ""}
    if min_div is not None:
        d["minDiv"] = min_div
    return d


def neuron(name, inp, kind, **params):
    return {"name": name, "type": "neuron", "inputs": [inp],
            "neuron": {"type": kind, "params": params, "usesActs": True, "usesInputs": False}}


def layer(name, kind, inputs, **extra):
    d = {"name": name, "type": kind, "inputs": list(inputs)}
    d.update(extra)
    return d


def as_v1(layers):
    index = {d["name"]: i for i, d in enumerate(layers)}
    out = []
    for d in layers:
        d = dict(d)
        if "inputs" in d:
            d["inputs"] = [index[n] for n in d["inputs"]]
            d["inputLayers"] = [layers[0]] * len(d["inputs"])     # stale, as after detach_neuron_layers
        out.append(d)
    return out


def as_v2(layers, seed=0):
    items = [dict(d) for d in layers]
    random.Random(seed).shuffle(items)                            # unordered: sorting is the reader's job
    for d in items:
        d["gpu"] = [0]
    return {d["name"]: d for d in items}


def state(layers):
    return {"layers": layers, "epoch": 3, "batchnum": 1, "train_outputs": [], "test_outputs": []}
