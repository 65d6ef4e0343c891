"""Bad inputs: one clear line on stderr, exit status 1, and no output file left behind or clobbered."""
import os
import sys
import tempfile
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cc_common as C  # noqa: E402
import cc_synth as S  # noqa: E402


def small_net(rng, middle):
    last = middle[-1]
    return [S.data("data", 3 * 6 * 6)] + middle + [S.fc(rng, "fc", [last["name"]], [last.get("outputs", 108)], 4),
                                                   S.layer("probs", "softmax", ["fc"])]


def local_layer(rng):
    d = S.conv(rng, "local3", ["data"], 3, 6, 16, 3, pad=1)
    d["type"] = "local"
    d["weights"] = [np.zeros((36 * 27, 16), np.float32)]
    return d


class Errors(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.rng = np.random.default_rng(2)

    def tearDown(self):
        self.tmp.cleanup()

    def files(self):
        return sorted(os.listdir(self.tmp.name))

    def fails(self, layers, *words, args=()):
        ckpt = os.path.join(self.tmp.name, "bad.ckpt")
        C.pickle_checkpoint(ckpt, S.state(S.as_v1(layers)))
        before = self.files()
        p = C.run_tool(ckpt, "-o", os.path.join(self.tmp.name, "bad.onnx"), *args)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertEqual(p.stdout, "")
        lines = p.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, p.stderr)
        for w in words:
            self.assertIn(w, lines[0])
        self.assertEqual(self.files(), before)         # nothing written, no temp file left
        return lines[0]

    def test_unsupported_local_layer(self):
        msg = self.fails(small_net(self.rng, [local_layer(self.rng)]), "layer 'local3'", "type 'local'",
                         "not supported")
        self.assertIn("unshared", msg)

    def test_unknown_layer_type(self):
        odd = S.layer("warp", "warp", ["data"], outputs=108)
        self.fails(small_net(self.rng, [odd]), "layer 'warp'", "type 'warp'", "unknown layer type")

    def test_unsupported_neuron_and_pool(self):
        self.fails(small_net(self.rng, [S.neuron("n", "data", "dropout")]), "layer 'n'", "neuron type 'dropout'")
        self.fails(small_net(self.rng, [S.pool("p", "data", 3, 6, 2, 2, kind="maxabs")]), "layer 'p'", "maxabs")

    def test_conv_weights_of_the_wrong_size(self):
        conv = S.conv(self.rng, "conv2", ["data"], 3, 6, 16, 3, pad=1)
        conv["weights"] = [conv["weights"][0][:-1]]         # one row (one channel's tap) missing
        self.fails(small_net(self.rng, [conv]), "layer 'conv2'", "type 'conv'", "weights[0] has shape (26, 16)",
                   "expected (27, 16)")
        conv = S.conv(self.rng, "conv2", ["data"], 3, 6, 16, 3, pad=1)
        conv["weights"] = [conv["weights"][0].reshape(-1)]  # flat: the right count, not the right shape
        self.fails(small_net(self.rng, [conv]), "layer 'conv2'", "weights[0] has shape (432,)")

    def test_fc_weights_of_the_wrong_size(self):
        net = small_net(self.rng, [S.conv(self.rng, "conv", ["data"], 3, 6, 16, 3, pad=1)])
        net[-2]["weights"] = [net[-2]["weights"][0][:-1]]
        self.fails(net, "layer 'fc'", "type 'fc'", "weights[0] has shape (575, 4)")

    def test_missing_key(self):
        conv = S.conv(self.rng, "conv", ["data"], 3, 6, 16, 3, pad=1)
        del conv["filterSize"]
        self.fails(small_net(self.rng, [conv]), "layer 'conv'", "filterSize")

    def test_label_count_mismatch(self):
        labels = os.path.join(self.tmp.name, "labels.txt")
        with open(labels, "w") as f:
            f.write("a\nb\nc\n")
        conv = S.conv(self.rng, "conv", ["data"], 3, 6, 16, 3, pad=1)
        self.fails(small_net(self.rng, [conv]), "3 labels for 4 class scores", args=("--labels", labels))

    def test_failure_keeps_previous_outputs(self):
        out = os.path.join(self.tmp.name, "m.onnx")
        good = os.path.join(self.tmp.name, "good.ckpt")
        C.pickle_checkpoint(good, S.state(S.as_v1(small_net(self.rng, [S.conv(self.rng, "conv", ["data"], 3, 6,
                                                                                     16, 3, pad=1)]))))
        self.assertEqual(C.run_tool(good, "-o", out).returncode, 0)
        with open(out, "rb") as f:
            onnx_bytes = f.read()
        bad = os.path.join(self.tmp.name, "bad.ckpt")
        C.pickle_checkpoint(bad, S.state(S.as_v1(small_net(self.rng, [local_layer(self.rng)]))))
        self.assertEqual(C.run_tool(bad, "-o", out).returncode, 1)
        with open(out, "rb") as f:
            self.assertEqual(f.read(), onnx_bytes)
        self.assertEqual(self.files(), ["bad.ckpt", "good.ckpt", "m.json", "m.onnx"])

    def test_atomic_writer_cleans_up(self):
        from cuda_convnet.convert import _write_atomically
        ok = os.path.join(self.tmp.name, "a.json")
        missing = os.path.join(self.tmp.name, "no_such_dir", "a.onnx")
        with self.assertRaises(OSError):
            _write_atomically([(ok, b"{}"), (missing, b"x")])
        self.assertEqual(self.files(), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
