"""The layer graph of a checkpoint, in both of cuda-convnet's forms.

v1 (cuda-convnet): model_state['layers'] is a list in definition order; a layer's `inputs` are
integer indices into that list. v2 (cuda-convnet2): a dict keyed by layer name, unordered; `inputs`
are names. In both, `inputLayers` can be stale (detach_neuron_layers inserts *_neuron layers after
it was filled), so the graph is built from `inputs` only, as cuda-convnet's C++ side does.
"""
import heapq
import numbers
import sys

from . import ConversionError


class Layer:
    """One cuda-convnet layer: its dict, and its inputs resolved to layer names."""

    def __init__(self, name, dic, inputs, order):
        self.name = name
        self.dic = dic
        self.type = str(dic.get("type", ""))
        self.inputs = inputs
        self.order = order          # tie-break for a deterministic topological order

    @property
    def is_cost(self):
        return self.type.startswith("cost.")

    def __repr__(self):
        return "Layer(%r, %r)" % (self.name, self.type)


def _names(inputs):
    if isinstance(inputs, str):
        return [s.strip() for s in inputs.split(",") if s.strip()]
    return list(inputs)


def read_layers(layers):
    """-> (list of Layer in topological order, 'v1' or 'v2')."""
    result = []
    if isinstance(layers, (list, tuple)):
        version = "v1"
        names = []
        for i, d in enumerate(layers):
            if not isinstance(d, dict) or "name" not in d or "type" not in d:
                raise ConversionError("layer #%d of the checkpoint is not a layer dict with a name and a type" % i)
            names.append(str(d["name"]))
        for i, d in enumerate(layers):
            ins = []
            for ref in _names(d.get("inputs", [])):
                if isinstance(ref, numbers.Integral) and not isinstance(ref, bool):
                    if not 0 <= ref < len(layers):
                        raise ConversionError("layer '%s': input index %d is outside the layer list (%d layers)"
                                              % (names[i], ref, len(layers)))
                    ins.append(names[int(ref)])
                else:
                    ins.append(str(ref))
            result.append(Layer(names[i], d, ins, (i, names[i])))
    elif isinstance(layers, dict):
        version = "v2"
        for key, d in layers.items():
            if not isinstance(d, dict) or "type" not in d:
                raise ConversionError("layer '%s' of the checkpoint is not a layer dict with a type" % key)
            name = str(d.get("name", key))
            if name != str(key):
                raise ConversionError("layer dict key '%s' differs from its name '%s'" % (key, name))
            # cuda-convnet2 numbers layers in definition order ('id'); without it, order by name,
            # never by the dict's (arbitrary, hash-dependent in Python 2) order
            order = d.get("id")
            order = order if isinstance(order, int) and not isinstance(order, bool) else sys.maxsize
            result.append(Layer(name, d, [str(r) for r in _names(d.get("inputs", []))], (order, name)))
    else:
        raise ConversionError("model_state['layers'] is a %s; expected a list (cuda-convnet) or a dict "
                              "(cuda-convnet2)" % type(layers).__name__)
    by_name = {}
    for l in result:
        if l.name in by_name:
            raise ConversionError("two layers are named '%s'" % l.name)
        by_name[l.name] = l
    for l in result:
        for ref in l.inputs:
            if ref not in by_name:
                raise ConversionError("layer '%s': input '%s' is not a layer of the checkpoint" % (l.name, ref))
    return _toposort(result, by_name), version


def _toposort(layers, by_name):
    pending = {l.name: len(set(l.inputs)) for l in layers}
    users = {l.name: [] for l in layers}
    for l in layers:
        for ref in set(l.inputs):
            users[ref].append(l)
    heap = [(l.order, l.name) for l in layers if pending[l.name] == 0]
    heapq.heapify(heap)
    out = []
    while heap:
        _, name = heapq.heappop(heap)
        out.append(by_name[name])
        for u in users[name]:
            pending[u.name] -= 1
            if pending[u.name] == 0:
                heapq.heappush(heap, (u.order, u.name))
    if len(out) != len(layers):
        stuck = sorted(n for n, c in pending.items() if c > 0)
        raise ConversionError("the layer graph has a cycle through: %s" % ", ".join(stuck))
    return out


def select(layers):
    """Drop cost layers and what only they use. -> (layers needed, in order; the data layer; outputs)."""
    live = [l for l in layers if not l.is_cost]
    consumed = {ref for l in live for ref in l.inputs}
    outputs = [l for l in live if l.name not in consumed and l.type != "data"]
    if not outputs:
        raise ConversionError("the checkpoint has no layer that produces an output (only data and cost layers)")
    by_name = {l.name: l for l in layers}
    needed, stack = set(), [l.name for l in outputs]
    while stack:
        name = stack.pop()
        if name not in needed:
            needed.add(name)
            stack.extend(by_name[name].inputs)
    chosen = [l for l in layers if l.name in needed]
    data = [l for l in chosen if l.type == "data"]
    if len(data) != 1:
        raise ConversionError("the network must read exactly one data layer; it reads %d (%s)"
                              % (len(data), ", ".join(l.name for l in data) or "none"))
    return chosen, data[0], outputs
