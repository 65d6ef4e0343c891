"""Checkpoint containers: plain, zip-saved, gzip, a Python 3 re-pickle, a directory (newest in natural order),
broken files."""
import gzip
import os
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cc_common as C  # noqa: E402


def graph_bytes(path):
    model, _ = C.load(path)
    return model.graph.SerializeToString()


def weights(path):
    """{initializer name: (dims, raw float bytes)}: the ONNX's weights, byte for byte."""
    import onnx.numpy_helper
    model, _ = C.load(path)
    return {t.name: (tuple(t.dims), onnx.numpy_helper.to_array(t).tobytes()) for t in model.graph.initializer}


@C.needs_shared(C.CKPT, C.CKPT_ZIP)
class Containers(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.plain = os.path.join(cls.tmp.name, "plain.onnx")
        rc, _, err = C.convert(C.CKPT, "-o", cls.plain)
        assert rc == 0, err
        cls.plain_graph = graph_bytes(cls.plain)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def test_zip_saved_twin_gives_identical_graph(self):
        rc, _, err = C.convert(C.CKPT_ZIP, "-o", self.path("zip.onnx"))
        self.assertEqual(rc, 0, err)
        self.assertEqual(graph_bytes(self.path("zip.onnx")), self.plain_graph)
        self.assertEqual(weights(self.path("zip.onnx")), weights(self.plain))
        _, card = C.load(self.path("zip.onnx"))
        self.assertEqual(card["source"]["container"], "zip")

    def test_python3_repickle_gives_identical_graph(self):
        # The same checkpoint as Python 3 would write it: read by the converter's safe loader,
        # dumped again (numpy arrays pickled by Python 3's numpy, Fortran order kept; an option
        # parser from a module that does not exist), with protocols 4 and 2.
        from cuda_convnet import loader
        state, _ = loader.load_checkpoint(C.CKPT)
        want = weights(self.plain)
        learned = {"%s/%s" % (l, k) for l in ("conv1", "conv2", "conv3", "fc10") for k in "Wb"}
        self.assertLessEqual(learned, set(want))                # (+ the rnorm constants)
        for protocol in (4, 2):
            ckpt = self.path("py3_p%d.5" % protocol)
            C.pickle_checkpoint(ckpt, state, protocol=protocol)
            with open(ckpt, "rb") as f:
                self.assertEqual(f.read(2), b"\x80" + bytes([protocol]))
            rc, _, err = C.convert(ckpt, "-o", self.path("py3_p%d.onnx" % protocol))
            self.assertEqual(rc, 0, err)
            self.assertEqual(weights(self.path("py3_p%d.onnx" % protocol)), want, "protocol %d" % protocol)
            self.assertEqual(graph_bytes(self.path("py3_p%d.onnx" % protocol)), self.plain_graph)

    def test_gzip_copy(self):
        gz = self.path("140.5.gz")
        with open(C.CKPT, "rb") as src, gzip.open(gz, "wb") as dst:
            shutil.copyfileobj(src, dst)
        rc, _, err = C.convert(gz, "-o", self.path("gz.onnx"))
        self.assertEqual(rc, 0, err)
        self.assertEqual(graph_bytes(self.path("gz.onnx")), self.plain_graph)

    def test_directory_takes_newest_in_natural_order(self):
        d = self.path("ConvNet__dir")
        os.mkdir(d)
        with open(C.CKPT, "rb") as f:
            head = f.read(5000)
        for older in ("99.5", "140.9", "140.1"):       # broken: choosing one of them would fail
            with open(os.path.join(d, older), "wb") as f:
                f.write(head)
        os.symlink(C.CKPT, os.path.join(d, "140.10"))   # newest: 140.10 > 140.9 (not by string order)
        rc, out, err = C.convert(d, "-o", self.path("dir.onnx"))
        self.assertEqual(rc, 0, err)
        _, card = C.load(self.path("dir.onnx"))
        self.assertTrue(card["source"]["checkpoint"].endswith("140.10"), card["source"]["checkpoint"])
        self.assertEqual(graph_bytes(self.path("dir.onnx")), self.plain_graph)

    def test_the_real_checkpoint_directory(self):
        rc, _, err = C.convert(C.CKPT_DIR, "-o", self.path("realdir.onnx"))
        self.assertEqual(rc, 0, err)
        self.assertEqual(graph_bytes(self.path("realdir.onnx")), self.plain_graph)

    def check_broken(self, path, words):
        out = self.path("broken.onnx")
        p = C.run_tool(path, "-o", out)
        self.assertEqual(p.returncode, 1, p.stderr)
        lines = p.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, p.stderr)             # one clear line, no traceback
        self.assertIn(os.path.basename(path), lines[0])
        self.assertTrue(any(w in lines[0] for w in words), lines[0])
        self.assertEqual(sorted(f for f in os.listdir(self.tmp.name) if f.startswith("broken")), [])
        self.assertEqual([f for f in os.listdir(self.tmp.name) if f.endswith(".tmp")], [])

    def test_truncated_checkpoint(self):
        with open(C.CKPT, "rb") as f:
            data = f.read()
        cut = self.path("truncated.5")
        with open(cut, "wb") as f:
            f.write(data[:len(data) // 2])
        self.check_broken(cut, ["truncated"])

    def test_truncated_zip_and_gzip(self):
        with open(C.CKPT_ZIP, "rb") as f:
            data = f.read()
        cut = self.path("truncated_zip.5")
        with open(cut, "wb") as f:
            f.write(data[:len(data) // 2])
        self.check_broken(cut, ["truncated", "zip"])
        with open(C.CKPT, "rb") as f:
            gz = gzip.compress(f.read())
        cut = self.path("truncated_gz.5")
        with open(cut, "wb") as f:
            f.write(gz[:len(gz) // 2])
        self.check_broken(cut, ["truncated", "gzip"])

    def test_not_a_checkpoint(self):
        junk = self.path("junk.5")
        with open(junk, "wb") as f:
            f.write(b"hello, this is not a pickle\n")
        self.check_broken(junk, ["pickle"])
        self.check_broken(self.path("does_not_exist"), ["no such"])

    def test_pickle_without_model_state(self):
        # a pickled dict that is not a checkpoint (no 'model_state', no 'layers')
        import pickle
        odd = self.path("no_state.5")
        with open(odd, "wb") as f:
            pickle.dump({"op": {"gpu": [0]}, "epoch": 140}, f, protocol=2)
        self.check_broken(odd, ["no 'model_state'"])
        p = C.run_tool(odd, "-o", self.path("broken.onnx"))
        self.assertIn("found: epoch, op", p.stderr)
        empty = self.path("empty_state.5")                  # model_state present but without 'layers'
        with open(empty, "wb") as f:
            pickle.dump({"model_state": {"epoch": 140}, "op": None}, f, protocol=2)
        self.check_broken(empty, ["model_state has no 'layers'"])

    def test_option_parser_loads_as_inert_stub(self):
        from cuda_convnet import loader
        data, kind = loader.read_container(C.CKPT)
        obj = loader.unpickle_bytes(data, C.CKPT)
        self.assertEqual(kind, "plain")
        self.assertIsInstance(obj["op"], loader.Stub)
        self.assertEqual(type(obj["op"]).stub_module, "options")
        self.assertIsInstance(obj["op"].stub_state, dict)   # its __dict__, kept as data
        self.assertNotIn("options", sys.modules)            # nothing was imported
        layers = obj["model_state"]["layers"]
        w = layers[[l["name"] for l in layers].index("fc10")]["weights"][0]
        self.assertTrue(w.flags["F_CONTIGUOUS"] and not w.flags["C_CONTIGUOUS"])   # is_fortran honoured


if __name__ == "__main__":
    unittest.main(verbosity=2)
