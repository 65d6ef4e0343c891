"""The real checkpoint: layers-18pct CIFAR-10 (cuda-convnet v1) against its README and the reference.

Run: /usr/bin/python3 -m unittest discover -s tests/converter -v   (or this file on its own)
"""
import os
import sys
import tempfile
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cc_common as C  # noqa: E402
import cc_onnx_eval  # noqa: E402
import cc_png  # noqa: E402
import cc_ref  # noqa: E402

LABELS = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
# ../shared/cuda-convnet/cifar10-18pct/README.md
EXPECTED = {"cat": ("cat", 0.409), "dog": ("dog", 0.861), "truck": ("truck", 0.990)}
CAT_NEXT = [("deer", 0.336), ("dog", 0.195)]
CAT_LOGITS = [-3.895, -3.585, 1.625, 4.443, 4.248, 3.706, -0.647, 1.910, -4.810, -2.996]
NAMES = ("cat", "dog", "truck")


@C.needs_shared(C.CKPT, C.META, C.IMAGES)
class Cifar18pct(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.onnx = os.path.join(cls.tmp.name, "cifar18.onnx")
        rc, out, err = C.convert(C.CKPT_DIR, "--meta", C.META, "-o", cls.onnx)
        assert rc == 0, err
        cls.model, cls.card = C.load(cls.onnx)
        cls.rgb = {n: cc_png.read_rgb(os.path.join(C.IMAGES, n + "10.png")) for n in NAMES}
        # the reference, straight from the checkpoint dict with cuda-convnet's semantics
        state = cc_ref.read_pickle(C.CKPT)["model_state"]
        mean = np.asarray(cc_ref.read_pickle(C.META)["data_mean"], np.float64)
        data = np.stack([cls.rgb[n].reshape(-1) for n in NAMES], axis=1) - mean    # (3072, cases)
        cls.ref = cc_ref.forward(state["layers"], data)
        cls.onnx_out = {}
        for n in NAMES:
            x = C.preprocess(cls.card, cls.tmp.name, cls.rgb[n])
            cls.onnx_out[n] = cc_onnx_eval.run(cls.model, {cls.card["input"]["name"]: x})

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def check_readme(self, logits, probs, who):
        for k, n in enumerate(NAMES):
            p = probs[k]
            label, prob = EXPECTED[n]
            self.assertEqual(LABELS[int(np.argmax(p))], label, "%s: %s" % (who, n))
            self.assertAlmostEqual(float(p.max()), prob, delta=0.0005, msg="%s: %s" % (who, n))
        order = np.argsort(-probs[0])
        for (label, prob), idx in zip(CAT_NEXT, order[1:3]):
            self.assertEqual(LABELS[idx], label)
            self.assertAlmostEqual(float(probs[0][idx]), prob, delta=0.0005)
        # "to 3 decimals": within half a unit of the third decimal (fc10[ship] is -4.8095, on the edge)
        np.testing.assert_allclose(logits[0], CAT_LOGITS, rtol=0, atol=0.0005 + 2e-6, err_msg="%s: cat10" % who)

    def test_reference_matches_readme(self):
        self.check_readme(self.ref["fc10"].T, self.ref["probs"].T, "reference")

    def test_onnx_matches_readme(self):
        scores = self.card["scores"]
        logits = np.stack([self.onnx_out[n][scores][0] for n in NAMES])
        probs = np.stack([self.onnx_out[n]["probs"][0] for n in NAMES])
        self.check_readme(logits, probs, "onnx")

    def test_onnx_matches_reference_per_layer(self):
        worst = 0.0
        for name in ("conv1", "pool1", "rnorm1", "conv2", "pool2", "rnorm2", "conv3", "pool3", "fc10", "probs"):
            for k, n in enumerate(NAMES):
                got = self.onnx_out[n][name][0].reshape(-1)
                want = self.ref[name][:, k]
                err = np.abs(got - want).max() / max(1.0, np.abs(want).max())
                worst = max(worst, err)
                self.assertLess(err, 1e-5, "%s on %s" % (name, n))
        for n in NAMES:
            k = NAMES.index(n)
            self.assertLess(np.abs(self.onnx_out[n]["fc10"][0] - self.ref["fc10"][:, k]).max(), 1e-4)

    def test_card(self):
        card = self.card
        self.assertEqual(card["model"], "cifar18.onnx")
        inp = card["input"]
        self.assertEqual((inp["channel_order"], inp["height"], inp["width"], inp["layout"]), ("RGB", 32, 32, "NCHW"))
        self.assertEqual(inp["pixel_range"], [0, 255])
        self.assertNotIn("mean", inp)
        mean = np.load(os.path.join(self.tmp.name, inp["mean_image"]))
        self.assertEqual((mean.dtype, mean.shape), (np.float32, (3, 32, 32)))
        meta_mean = np.asarray(cc_ref.read_pickle(C.META)["data_mean"], np.float32).reshape(3, 32, 32)
        np.testing.assert_array_equal(mean, meta_mean)
        self.assertEqual(card["labels"], LABELS)
        softmax = [nd for nd in self.model.graph.node if nd.op_type == "Softmax"]
        self.assertEqual(len(softmax), 1)
        self.assertEqual(card["scores"], softmax[0].input[0])
        self.assertEqual(card["scores"], "fc10")
        self.assertEqual((card["source"]["epoch"], card["source"]["batchnum"]), (140, 5))

    def test_graph_uses_engine_ops_opset13(self):
        import onnx
        onnx.checker.check_model(self.model)
        self.assertEqual([(o.domain, o.version) for o in self.model.opset_import], [("", 13)])
        ops = {nd.op_type for nd in self.model.graph.node}
        self.assertLessEqual(ops, cc_onnx_eval.ENGINE_OPS)
        self.assertEqual([o.name for o in self.model.graph.output], ["probs"])
        dims = self.model.graph.input[0].type.tensor_type.shape.dim
        self.assertEqual([d.dim_value or d.dim_param for d in dims], ["N", 3, 32, 32])
        pools = {nd.name: nd for nd in self.model.graph.node if nd.op_type.endswith("Pool")}
        # ceil sizes 32 -> 16 -> 8 -> 4 with 3/2 windows: pads (0, 1) at the end, never ceil_mode
        for name in ("pool1", "pool2", "pool3"):
            attrs = {a.name: (list(a.ints) or a.i) for a in pools[name].attribute}
            self.assertEqual(attrs["pads"], [0, 0, 1, 1], name)
            self.assertNotIn("ceil_mode", attrs)

    def test_truck_has_tied_maxima_in_pool1(self):
        # The documented backward difference: windows whose maximum is attained more than once.
        # cuda-convnet gives each tied maximum the gradient, the engine the first in scan order.
        conv1 = self.onnx_out["truck"]["conv1"][0]          # (32, 32, 32)
        ties = 0
        for oy in range(16):
            for ox in range(16):
                win = conv1[:, 2 * oy:2 * oy + 3, 2 * ox:2 * ox + 3].reshape(32, -1)
                ties += int(((win == win.max(axis=1, keepdims=True)).sum(axis=1) > 1).sum())
        self.assertGreater(ties, 0)
        print("\n  truck10: %d of %d pool1 windows have a tied maximum" % (ties, 32 * 16 * 16), file=sys.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
