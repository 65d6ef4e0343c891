"""Every layer type and edge case on synthetic v1 checkpoints: converted ONNX == numpy reference.

Needs no shared data: the checkpoints are built here, in cuda-convnet's layouts.
"""
import os
import sys
import tempfile
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cc_common as C  # noqa: E402
import cc_synth as S  # noqa: E402


def attrs(node):
    return {a.name: (list(a.ints) if a.ints else a.i) for a in node.attribute}


class SyntheticLayers(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.rng = np.random.default_rng(5)

    def tearDown(self):
        self.tmp.cleanup()

    def test_conv_pool_and_norms(self):
        r = self.rng
        L = [S.data("data", 3 * 10 * 10), S.data("labels", 1),
             # 10 -> 5 with k3 s2 pad0: ceil, the last module reads one zero column (pads end 1)
             S.conv(r, "conv_a", ["data"], 3, 10, 16, 3, stride=2, neuron="relu"),
             S.neuron("conv_a_neuron", "conv_a", "relu"),
             S.conv(r, "conv_c", ["data"], 3, 10, 16, 4, stride=2, pad=1),
             # two inputs (summed), groups on the first, unshared biases
             S.conv(r, "conv_b", ["conv_a_neuron", "conv_c"], 16, 5, 16, [3, 1], pad=[1, 0], groups=[2, 1],
                    shared=False),
             S.pool("pool_max", "conv_b", 16, 5, 3, 2, start=-1),            # padding and a ceil size
             S.pool("pool_avg", "conv_b", 16, 5, 2, 2, kind="avg"),           # last window clipped to 1 col
             S.pool("pool_avgpad", "conv_b", 16, 5, 3, 1, start=-1, kind="avg"),
             S.pool("pool_start1", "conv_b", 16, 5, 2, 2, start=1),           # windows start inside
             S.pool("pool_sum", "conv_b", 16, 5, 3, 2, start=-1, kind="avg", total=True),
             S.pool("pool_fewer", "conv_b", 16, 5, 2, 2, outputs_x=2),        # explicit outputsX, covers 4
             S.norm("rnorm", "rnorm3", "pool_max", 16, 3, 3, 2.0, 0.75),
             S.norm("rnorm", "rnorm4", "conv_b", 16, 5, 4, 2.0, 0.75),      # even: window y-2 .. y+1
             S.norm("cnorm", "cnorm3", "conv_b", 16, 5, 3, 2.0, 0.75),
             S.norm("cnorm", "cnorm2", "conv_b", 16, 5, 2, 2.0, 0.5),
             S.norm("cmrnorm", "cmr5", "conv_b", 16, 5, 5, 3.0, 0.75),      # odd: ONNX LRN
             S.norm("cmrnorm", "cmr4", "conv_b", 16, 5, 4, 3.0, 0.75),      # even: not LRN's window
             S.norm("cmrnorm", "cmrb", "conv_b", 16, 5, 4, 3.0, 0.75, blocked=True),
             S.norm("cmrnorm", "cmr_k2", "conv_b", 16, 5, 5, 3.0, 0.75, min_div=2.0)]
        heads = ["pool_max", "pool_avg", "pool_avgpad", "pool_start1", "pool_sum", "pool_fewer", "rnorm3",
                 "rnorm4", "cnorm3", "cnorm2", "cmr5", "cmr4", "cmrb", "cmr_k2"]
        dims = [d["outputs"] for h in heads for d in L if d["name"] == h]
        L += [S.fc(r, "fc", heads, dims, 10), S.layer("probs", "softmax", ["fc"]),
              S.layer("logprob", "cost.logreg", ["labels", "probs"])]
        x = (3 * r.standard_normal((2, 3, 10, 10))).astype(np.float32)
        model, card, env, ref = C.convert_and_compare(self, S.as_v1(L), x, self.tmp.name)
        nodes = {n.name: n for n in model.graph.node}
        self.assertEqual(attrs(nodes["conv_a"])["pads"], [0, 0, 1, 1])
        self.assertEqual(attrs(nodes["pool_max"])["pads"], [1, 1, 1, 1])
        self.assertEqual(attrs(nodes["pool_avg"])["count_include_pad"], 0)
        self.assertEqual(nodes["cmr5"].op_type, "LRN")
        self.assertEqual(nodes["cmr4"].op_type, "Mul")
        self.assertEqual(card["scores"], "fc")
        self.assertEqual(card["input"]["height"], 10)

    def test_neurons_and_elementwise(self):
        r = self.rng
        L = [S.data("data", 3 * 4 * 4),
             S.neuron("ident", "data", "ident"), S.neuron("relu", "data", "relu"),
             S.neuron("logistic", "data", "logistic"), S.neuron("tanh", "data", "tanh", a=1.7159, b=0.6666),
             S.neuron("brelu", "data", "brelu", a=2.0), S.neuron("linear", "data", "linear", a=2.0, b=-1.0),
             S.neuron("abs", "data", "abs"), S.neuron("softrelu", "data", "softrelu"),
             S.neuron("square", "data", "square"), S.neuron("sqrt", "abs", "sqrt"),
             S.neuron("abstanh", "data", "abstanh", a=1.5, b=0.5),
             S.neuron("abstanh_nb", "data", "abstanh", a=1.5, b=-0.5),
             S.layer("eltsum", "eltsum", ["relu", "tanh", "abs"], coeffs=[0.5, -2.0, 1.0]),
             S.layer("eltmax", "eltmax", ["relu", "logistic", "linear"]),
             S.layer("concat", "concat", ["relu", "square"]),                  # images: channel concat
             S.fc(r, "fc1", ["data"], [48], 12,
                  neuron={"type": "tanh", "params": {"a": 1.0, "b": 2.0}}),    # pre-detach: applied inline
             S.layer("concat_flat", "concat", ["fc1", "relu"]),                # mixed: flat concat
             S.layer("drop", "dropout", ["concat_flat"], keep=0.5, enable=True),
             S.layer("drop2", "dropout2", ["fc1"], keep=0.6, enable=True)]
        heads = ["ident", "brelu", "softrelu", "sqrt", "abstanh", "abstanh_nb", "eltsum", "eltmax", "concat",
                 "drop", "drop2"]
        dims = [96 if h == "concat" else (60 if h == "drop" else (12 if h == "drop2" else 48)) for h in heads]
        L += [S.fc(r, "fc", heads, dims, 7), S.layer("probs", "softmax", ["fc"])]
        x = (3 * r.standard_normal((2, 3, 4, 4))).astype(np.float32)
        # softrelu's switch at exactly 4: x > 4 ? x : log(1 + e^x)
        x[0, 0, 0, :] = [4.0, np.nextafter(np.float32(4), np.float32(5)), np.nextafter(np.float32(4), np.float32(0)), 30]
        C.convert_and_compare(self, S.as_v1(L), x, self.tmp.name)

    def test_flat_input_fc_only(self):
        r = self.rng
        L = [S.data("data", 20), S.fc(r, "fc1", ["data"], [20], 8), S.neuron("fc1_neuron", "fc1", "relu"),
             S.fc(r, "fc2", ["fc1_neuron", "data"], [8, 20], 5)]     # no softmax: scores = the output
        x = r.standard_normal((3, 20)).astype(np.float32)
        model, card, _, _ = C.convert_and_compare(self, S.as_v1(L), x, self.tmp.name)
        self.assertEqual(card["scores"], "fc2")
        self.assertNotIn("height", card["input"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
