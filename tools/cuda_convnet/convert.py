"""convert_cuda_convnet.py CHECKPOINT [--meta FILE] [--labels FILE] -o OUT.onnx

Writes OUT.onnx, its card OUT.json and, when a per-pixel mean is used, OUT_mean.npy; all three
appear together or not at all (temporary files, then renames).
"""
import argparse
import io
import json
import os
import sys
import tempfile

import numpy as np

from . import ConversionError
from . import card as cards
from .graph import read_layers, select
from .layers import (UNSUPPORTED, Context, emit_concat, emit_dropout, emit_dropout2, emit_eltmax, emit_eltsum,
                     emit_fc, emit_neuron, emit_neuron_ops, emit_pass, emit_softmax, fail, num)
from .layers_spatial import emit_cmrnorm, emit_cnorm, emit_conv, emit_pool, emit_rnorm
from .loader import load_checkpoint, load_meta
from .onnxgen import Builder

EMITTERS = {
    "conv": emit_conv, "fc": emit_fc, "pool": emit_pool, "rnorm": emit_rnorm, "cnorm": emit_cnorm,
    "cmrnorm": emit_cmrnorm, "neuron": emit_neuron, "softmax": emit_softmax, "eltsum": emit_eltsum,
    "eltmax": emit_eltmax, "concat": emit_concat, "dropout": emit_dropout, "dropout2": emit_dropout2,
    "pass": emit_pass,
}
IMAGE_CONSUMERS = ("conv", "pool", "rnorm", "cnorm", "cmrnorm")

NOTES = ("Converted from cuda-convnet by tools/convert_cuda_convnet.py; the graph reproduces cuda-convnet's "
         "forward pass (ceil output sizes, clipped windows, its LRN constants). One difference remains in "
         "backward: at exactly tied maxima, max-pool gradients go to the first maximum in scan order here, "
         "to every tied maximum in cuda-convnet. See docs/cuda-convnet.md.")


def data_shape(chosen, data):
    """(C, H, W) of the data layer, as the layers reading it view it; (dims,) if none does."""
    dims = num(data, "outputs", kind=int)
    for l in chosen:
        for i, ref in enumerate(l.inputs):
            if ref != data.name or l.type not in IMAGE_CONSUMERS:
                continue
            idx = i if l.type == "conv" else None
            c = num(l, "channels", idx, kind=int)
            s = num(l, "imgSize", idx, kind=int)
            if c * s * s == dims:
                return (c, s, s)
    for c in (3, 1):                  # only fc layers read it: a square RGB or grey image if it is one
        s = int(round((dims / c) ** 0.5))
        if c * s * s == dims:
            return (c, s, s)
    return (dims,)


def build(state):
    """model_state -> (the filled Builder, facts for the card: input, shape, outputs, scores, ...)."""
    layers, version = read_layers(state["layers"])
    chosen, data, outputs = select(layers)
    for l in chosen:
        if l.type in UNSUPPORTED:
            fail(l, "%s cannot be expressed with the engine's ONNX ops; not supported" % UNSUPPORTED[l.type])
        if l.type != "data" and l.type not in EMITTERS:
            fail(l, "unknown layer type; supported: data, %s, cost.* (dropped)" % ", ".join(sorted(EMITTERS)))
    b = Builder()
    for l in chosen:
        b.reserve(l.name)
    ctx = Context(b)
    shape = data_shape(chosen, data)
    b.shapes[data.name] = shape
    ctx.value[data.name] = data.name
    softmax_inputs = {}
    for l in chosen:
        if l.type == "data":
            continue
        neuron = l.dic.get("neuron")
        inline = l.type != "neuron" and isinstance(neuron, dict) and neuron.get("type")
        out = b.fresh(l.name + "/pre_neuron") if inline else l.name
        try:
            EMITTERS[l.type](ctx, l, out)
            if inline:      # pre-detach checkpoints: the layer applies its own neuron dict
                emit_neuron_ops(ctx, l, out, neuron, l.name)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as e:
            fail(l, "malformed layer dict: %s: %s" % (type(e).__name__, e))
        ctx.value[l.name] = l.name
        if l.type == "softmax":
            softmax_inputs[l.name] = b.nodes[-1].input[0]
    out_names = [l.name for l in outputs]
    scores = next((softmax_inputs[n] for n in reversed(out_names) if n in softmax_inputs), None)
    if scores is None:
        scores = next(iter(softmax_inputs.values()), out_names[0])
    facts = {"version": version, "input": data.name, "input_shape": shape, "outputs": out_names,
             "scores": scores, "num_scores": int(np.prod(b.shapes[scores])), "layers": len(chosen)}
    return b, facts


def _write_atomically(files):
    """files: [(final path, bytes)]. All go to temp files in their folders first, then are renamed in
    order (the ONNX last); on any failure the temp files are removed and nothing is renamed."""
    mask = os.umask(0)
    os.umask(mask)
    temps = []
    try:
        for final, data in files:
            folder = os.path.dirname(os.path.abspath(final))
            fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(final) + ".", suffix=".tmp", dir=folder)
            temps.append((tmp, final))
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o666 & ~mask)
        for tmp, final in temps:
            os.replace(tmp, final)
    except BaseException:
        for tmp, _ in temps:
            if os.path.exists(tmp):
                os.unlink(tmp)
        raise


def _mean(args, meta, shape):
    """-> (per-channel mean values or None, mean image or None, stored image size)."""
    channels, size = shape[0], shape[1] if len(shape) == 3 else 0
    if args.mean is not None:
        try:
            vals = [float(v) for v in args.mean.split(",")]
        except ValueError:
            raise ConversionError("--mean expects numbers separated by commas, got '%s'" % args.mean) from None
        if len(vals) == 1:
            vals = vals * channels
        if len(vals) != channels:
            raise ConversionError("--mean has %d values; the network has %d channels" % (len(vals), channels))
        return vals, None, size
    if meta is None or "data_mean" not in meta:
        if meta is not None:
            raise ConversionError("%s has no 'data_mean'" % args.meta)
        if args.channel_mean:
            raise ConversionError("--channel-mean needs --meta (the file holding the mean image)")
        return None, None, size
    flat = np.asarray(meta["data_mean"], np.float32).reshape(-1)
    if len(shape) != 3:
        raise ConversionError("the network's input is not an image; a mean image does not apply")
    mean = cards.crop_mean(flat, channels, size, "data_mean of " + args.meta)
    stored = int(round((flat.size / channels) ** 0.5)) if mean.ndim == 3 else size
    if mean.ndim == 1:
        return mean.tolist(), None, size
    if args.channel_mean:
        return mean.reshape(channels, -1).mean(axis=1).tolist(), None, stored
    return None, mean, stored


def convert(args):
    state, info = load_checkpoint(args.checkpoint)
    b, facts = build(state)
    shape = facts["input_shape"]
    meta = load_meta(args.meta) if args.meta else None
    mean_vals, mean_image, stored = _mean(args, meta, shape)
    labels = cards.read_labels(args.labels) if args.labels else (cards.labels_from_meta(meta) if meta else None)
    if labels is not None and len(labels) != facts["num_scores"]:
        raise ConversionError("%d labels for %d class scores ('%s')"
                              % (len(labels), facts["num_scores"], facts["scores"]))
    out = args.output
    stem = out[:-5] if out.lower().endswith(".onnx") else out
    if not os.path.isdir(os.path.dirname(os.path.abspath(out))):
        raise ConversionError("output folder %s does not exist" % os.path.dirname(os.path.abspath(out)))
    ckpt = os.path.basename(os.path.dirname(os.path.abspath(info["path"])))
    name = args.name or "cuda-convnet %s (%s)" % (ckpt, os.path.basename(info["path"]))
    source = {"converter": "tools/convert_cuda_convnet.py", "format": "cuda-convnet" if facts["version"] == "v1"
              else "cuda-convnet2", "layer_list": facts["version"], "checkpoint": info["path"],
              "container": info["container"], "epoch": cards.plain(state.get("epoch")),
              "batchnum": cards.plain(state.get("batchnum"))}
    tests = cards.plain(state.get("test_outputs"))
    if tests:
        source["last_test_output"] = tests[-1]
    if args.meta:
        source["meta"] = args.meta
    model = b.model(facts["input"], shape, facts["outputs"], doc="converted from %s" % info["path"])
    files = []
    mean_file = None
    if mean_image is not None:
        mean_file = os.path.basename(stem) + "_mean.npy"
        buf = io.BytesIO()
        np.save(buf, mean_image.astype(np.float32))
        files.append((stem + "_mean.npy", buf.getvalue()))
    card = cards.make_card(name, os.path.basename(out), facts["input"], shape, mean_vals, mean_file, stored,
                           labels, facts["scores"], source, NOTES)
    files.append((stem + ".json", (json.dumps(card, indent=2) + "\n").encode()))
    files.append((out, model.SerializeToString()))
    _write_atomically(files)
    return facts, [f for f, _ in files]


def parser():
    p = argparse.ArgumentParser(prog="convert_cuda_convnet.py",
                                description="Convert a cuda-convnet / cuda-convnet2 checkpoint to ONNX + model card.")
    p.add_argument("checkpoint", help="checkpoint file, or checkpoint directory (its newest file is used)")
    p.add_argument("-o", "--output", required=True, help="OUT.onnx; the card is written to OUT.json")
    p.add_argument("--meta", help="batches.meta / input_meta: data_mean (mean image) and label_names")
    p.add_argument("--labels", help="class names, one per line (overrides the meta's label_names)")
    p.add_argument("--mean", help="per-channel mean 'R,G,B' (or one value for all), instead of the meta's")
    p.add_argument("--channel-mean", action="store_true",
                   help="reduce the meta's mean image to a per-channel mean")
    p.add_argument("--name", help="model name for the card")
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        facts, written = convert(args)
    except ConversionError as e:
        print("convert_cuda_convnet.py: error: %s" % e, file=sys.stderr)
        return 1
    print("converted %d layers (%s layer list): input '%s' %s, outputs %s, scores '%s'"
          % (facts["layers"], facts["version"], facts["input"], "x".join(map(str, facts["input_shape"])),
             ", ".join(facts["outputs"]), facts["scores"]))
    if not (args.meta or args.mean):
        print("note: no mean given (--meta or --mean): the card subtracts nothing from the pixels")
    for f in written:
        print("wrote %s" % f)
    return 0
