"""Shared helpers of the converter tests: paths, skips, running the converter, the card's preprocessing."""
import contextlib
import io
import json
import os
import pickle
import subprocess
import sys
import types
import unittest

import numpy as np
import onnx

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
TOOL = os.path.join(REPO, "tools", "convert_cuda_convnet.py")
SHARED = os.path.normpath(os.path.join(REPO, "..", "shared"))
CC = os.path.join(SHARED, "cuda-convnet")
CIFAR = os.path.join(CC, "cifar10-18pct")
CKPT_DIR = os.path.join(CIFAR, "ConvNet__2014-03-02_11.28.44")
CKPT = os.path.join(CKPT_DIR, "140.5")
CKPT_ZIP = os.path.join(CIFAR, "ConvNet__2014-03-02_11.28.44_zip", "140.5")
META = os.path.join(CIFAR, "cifar-10-py-colmajor", "batches.meta")
IMAGENET_META = os.path.join(CC, "imagenet_input_meta")
IMAGES = os.path.join(SHARED, "images")

sys.path.insert(0, os.path.join(REPO, "tools"))


def needs_shared(*paths):
    """Skip (with the reason printed by unittest) when ../shared or the named files are absent."""
    missing = [os.path.relpath(p, REPO) for p in (paths or (SHARED,)) if not os.path.exists(p)]
    more = " and %d more" % (len(missing) - 1) if len(missing) > 1 else ""
    return unittest.skipIf(bool(missing), "needs the shared test data at ../shared (absent: %s%s)"
                           % (missing[0] if missing else "", more))


def engine_binary():
    """-> (path of the C++ deepinside binary or None, why it is missing). $DEEPINSIDE_BINARY (CTest
    sets it) wins; unset, build/deepinside under the repository root is tried."""
    env = os.environ.get("DEEPINSIDE_BINARY")
    path = env or os.path.join(REPO, "build", "deepinside")
    if os.path.isfile(path) and os.access(path, os.X_OK):
        return path, ""
    if env:
        return None, "DEEPINSIDE_BINARY=%s is not an executable file" % env
    return None, "no engine binary: DEEPINSIDE_BINARY is unset and %s does not exist (build it with " \
                 "`cmake --build build --target deepinside`)" % os.path.relpath(path, REPO)


def needs_engine():
    """Skip (with the reason printed by unittest) when the C++ binary cannot be found."""
    path, why = engine_binary()
    return unittest.skipIf(path is None, why)


def convert(*argv):
    """Run the converter in-process. -> (exit code, stdout, stderr)."""
    from cuda_convnet.convert import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main([str(a) for a in argv])
        except SystemExit as e:           # argparse errors
            rc = e.code
    return rc, out.getvalue(), err.getvalue()


def run_tool(*argv):
    """Run the converter as a user does (a separate process). -> CompletedProcess."""
    return subprocess.run([sys.executable, TOOL] + [str(a) for a in argv], capture_output=True, text=True, timeout=120)


def load(onnx_path):
    model = onnx.load(onnx_path)
    stem = onnx_path[:-5]
    with open(stem + ".json") as f:
        card = json.load(f)
    return model, card


def preprocess(card, card_dir, rgb):
    """The card's recipe (docs/model-card.md) on an RGB (3, H, W) 0..255 image of the input's size."""
    inp = card["input"]
    lo, hi = inp.get("pixel_range", [0, 255])
    x = lo + rgb * (hi - lo) / 255.0
    if "mean_image" in inp:
        x = x - np.load(os.path.join(card_dir, inp["mean_image"]))
    elif "mean" in inp:
        x = x - np.asarray(inp["mean"]).reshape(-1, 1, 1)
    x = x / np.asarray(inp.get("std", [1.0] * x.shape[0])).reshape(-1, 1, 1)
    return (x * inp.get("scale", 1.0))[None].astype(np.float32)


class _OptionsParser:
    """Stands for cuda-convnet's options.OptionsParser: pickled from a module that does not exist."""

    def __init__(self):
        self.options = {"gpu": [0], "layer_def": "layers.cfg"}
        self.parsers = [1, 2, 3]


def pickle_checkpoint(path, state, protocol=2, module="convnet_test_options"):
    """Write {'model_state': state, 'op': <instance of a class the converter cannot import>}."""
    parts = module.split(".")
    names = [".".join(parts[:i + 1]) for i in range(len(parts))]
    mods = [types.ModuleType(n) for n in names]
    for parent, child, part in zip(mods, mods[1:], parts[1:]):
        setattr(parent, part, child)
    cls = type("OptionsParser", (_OptionsParser,), {"__module__": module})
    mods[-1].OptionsParser = cls
    sys.modules.update(zip(names, mods))
    try:
        with open(path, "wb") as f:
            pickle.dump({"model_state": state, "op": cls()}, f, protocol=protocol)
    finally:
        for n in names:
            del sys.modules[n]


def convert_and_compare(test, layers, x, tmpdir, name="net", tol=1e-5, args=()):
    """Pickle `layers` as a checkpoint (protocol 2), convert it, run the ONNX on x (N, C, H, W) and the
    reference on the same data; every layer's value must agree. -> (model, card, onnx values, ref)."""
    import cc_onnx_eval
    import cc_ref
    import cc_synth
    ckpt = os.path.join(tmpdir, name + ".ckpt")
    pickle_checkpoint(ckpt, cc_synth.state(layers))
    out = os.path.join(tmpdir, name + ".onnx")
    rc, _, err = convert(ckpt, "-o", out, *args)
    test.assertEqual(rc, 0, err)
    model, card = load(out)
    env = cc_onnx_eval.run(model, {card["input"]["name"]: x})
    n = x.shape[0]
    # ONNX's own shape inference must agree with what the graph computes
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output):
        dims = [d.dim_value if d.HasField("dim_value") else n for d in vi.type.tensor_type.shape.dim]
        test.assertEqual(tuple(dims), env[vi.name].shape, "inferred shape of %s" % vi.name)
    ref = cc_ref.forward(layers, x.reshape(n, -1).T.astype(np.float64))
    items = layers.values() if isinstance(layers, dict) else layers
    for d in items:
        if d["type"] == "data" or d["type"].startswith("cost."):
            continue
        got = env[d["name"]].reshape(n, -1)
        want = ref[d["name"]].T
        test.assertEqual(got.shape, want.shape, d["name"])
        err = np.abs(got - want).max() / max(1.0, np.abs(want).max())
        test.assertLess(err, tol, "layer %s (%s)" % (d["name"], d["type"]))
    return model, card, env, ref
