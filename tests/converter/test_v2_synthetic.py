"""A cuda-convnet2 style checkpoint: layers in an unordered dict keyed by name, names as inputs.

Pickled here with protocol 2 (as cuda-convnet2 does; from Python 3, so bytes go through
_codecs.encode) and with protocols 4 and 5, with an option parser of a module that does not exist.
"""
import collections
import os
import sys
import tempfile
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cc_common as C  # noqa: E402
import cc_synth as S  # noqa: E402


def v2_net(rng):
    L = [S.data("data", 3 * 8 * 8), S.data("labels", 1),
         S.conv(rng, "conv1", ["data"], 3, 8, 16, 3, pad=1, neuron="relu"),
         S.neuron("conv1_neuron", "conv1", "relu"),
         S.conv(rng, "conv2", ["data"], 3, 8, 16, 5, pad=2),
         S.layer("concat", "concat", ["conv1_neuron", "conv2"]),
         S.norm("cmrnorm", "cmr", "concat", 32, 8, 5, 4.0, 0.75, min_div=2.0),
         S.pool("pool", "cmr", 32, 8, 3, 2),
         S.conv(rng, "conv3", ["pool"], 32, 4, 16, 3, pad=1, groups=2),
         S.norm("rnorm", "rnorm", "conv3", 16, 4, 3, 2.0, 0.75, min_div=2.0),
         S.layer("drop", "dropout", ["rnorm"], keep=0.5, enable=True),
         S.fc(rng, "fc", ["drop"], [256], 10),
         S.layer("probs", "softmax", ["fc"]),
         S.layer("logprob", "cost.logreg", ["labels", "probs"])]
    return L


class V2Checkpoint(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.rng = np.random.default_rng(11)
        self.x = (2 * self.rng.standard_normal((2, 3, 8, 8))).astype(np.float32)

    def tearDown(self):
        self.tmp.cleanup()

    def test_dict_of_layers_protocol2(self):
        layers = S.as_v2(v2_net(self.rng), seed=3)
        self.assertNotEqual(list(layers)[0], "data")           # really out of order
        model, card, env, ref = C.convert_and_compare(self, layers, self.x, self.tmp.name)
        self.assertEqual(card["source"]["layer_list"], "v2")
        self.assertEqual(card["source"]["format"], "cuda-convnet2")
        self.assertEqual(card["scores"], "fc")
        self.assertEqual(next(n for n in model.graph.node if n.name == "cmr").op_type, "LRN")
        self.assertNotIn("convnet_test_options", sys.modules)
        self.assertLess(np.abs(env["fc"] - ref["fc"].T).max(), 1e-4)

    def test_ordered_dict_and_newer_protocols(self):
        for protocol in (4, 5):
            layers = collections.OrderedDict(S.as_v2(v2_net(np.random.default_rng(1)), seed=protocol).items())
            ckpt = os.path.join(self.tmp.name, "p%d.ckpt" % protocol)
            C.pickle_checkpoint(ckpt, S.state(layers), protocol=protocol)
            rc, _, err = C.convert(ckpt, "-o", os.path.join(self.tmp.name, "p%d.onnx" % protocol))
            self.assertEqual(rc, 0, err)
        a, _ = C.load(os.path.join(self.tmp.name, "p4.onnx"))
        b, _ = C.load(os.path.join(self.tmp.name, "p5.onnx"))
        self.assertEqual(a.graph.SerializeToString(), b.graph.SerializeToString())

    def test_stub_keeps_state_and_runs_nothing(self):
        from cuda_convnet import loader
        ckpt = os.path.join(self.tmp.name, "stub.ckpt")
        C.pickle_checkpoint(ckpt, S.state(S.as_v2(v2_net(self.rng))), module="not_a_module.options")
        data, _ = loader.read_container(ckpt)
        obj = loader.unpickle_bytes(data, ckpt)
        self.assertIsInstance(obj["op"], loader.Stub)
        self.assertEqual(type(obj["op"]).stub_module, "not_a_module.options")
        self.assertEqual(obj["op"].stub_state["options"]["gpu"], [0])
        self.assertNotIn("not_a_module.options", sys.modules)


if __name__ == "__main__":
    unittest.main(verbosity=2)
