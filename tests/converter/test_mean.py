"""Mean sources: cuda-convnet2's ImageNet input_meta (3x256x256, Python 2 pickle), crops, per-channel."""
import json
import os
import sys
import tempfile
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cc_common as C  # noqa: E402
import cc_ref  # noqa: E402
import cc_synth as S  # noqa: E402


def net224(rng):
    # 224 -> conv 11/4 -> 55 (1 + ceil(213/4)) -> max 3/2 -> 27 -> fc 10
    return [S.data("data", 3 * 224 * 224), S.conv(rng, "conv1", ["data"], 3, 224, 16, 11, stride=4),
            S.pool("pool1", "conv1", 16, 55, 3, 2), S.fc(rng, "fc", ["pool1"], [16 * 27 * 27], 10),
            S.layer("probs", "softmax", ["fc"])]


class CropFunction(unittest.TestCase):
    def test_crop_offsets(self):
        from cuda_convnet.card import crop_mean
        img = np.arange(3 * 8 * 8, dtype=np.float32)
        np.testing.assert_array_equal(crop_mean(img, 3, 8), img.reshape(3, 8, 8))
        np.testing.assert_array_equal(crop_mean(img, 3, 4), img.reshape(3, 8, 8)[:, 2:6, 2:6])
        np.testing.assert_array_equal(crop_mean(img, 3, 5), img.reshape(3, 8, 8)[:, 1:6, 1:6])   # (8-5)//2
        np.testing.assert_array_equal(crop_mean(np.array([1, 2, 3]), 3, 32), [1, 2, 3])         # per channel


@C.needs_shared(C.IMAGENET_META)
class ImagenetMeta(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        rng = np.random.default_rng(0)
        cls.ckpt = os.path.join(cls.tmp.name, "imagenet.ckpt")
        C.pickle_checkpoint(cls.ckpt, S.state(S.as_v1(net224(rng))))
        cls.mean256 = np.asarray(cc_ref.read_pickle(C.IMAGENET_META)["data_mean"], np.float32).reshape(3, 256, 256)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def out(self, name):
        return os.path.join(self.tmp.name, name)

    def test_loader_reads_python2_meta(self):
        from cuda_convnet.loader import load_meta
        meta = load_meta(C.IMAGENET_META)
        self.assertEqual(meta["data_mean"].shape, (196608, 1))
        self.assertEqual(meta["data_mean"].dtype, np.float32)
        np.testing.assert_array_equal(meta["data_mean"].reshape(3, 256, 256), self.mean256)

    def test_centre_crop_224_into_card(self):
        labels = self.out("labels.txt")
        with open(labels, "w") as f:
            f.write("".join("n%08d class %d\n" % (i, i) for i in range(10)))
        rc, _, err = C.convert(self.ckpt, "--meta", C.IMAGENET_META, "--labels", labels, "-o", self.out("in.onnx"))
        self.assertEqual(rc, 0, err)
        with open(self.out("in.json")) as f:
            card = json.load(f)
        inp = card["input"]
        self.assertEqual((inp["height"], inp["width"], inp["channel_order"]), (224, 224, "RGB"))
        self.assertEqual(inp["resize"], {"shorter_side": 256, "crop": "center"})
        self.assertEqual(inp["mean_image"], "in_mean.npy")
        mean = np.load(self.out("in_mean.npy"))
        self.assertEqual((mean.shape, mean.dtype), ((3, 224, 224), np.float32))
        np.testing.assert_array_equal(mean, self.mean256[:, 16:240, 16:240])
        self.assertEqual(card["labels"][:2], ["class 0", "class 1"])     # WordNet ids dropped

    def test_channel_mean_and_explicit_mean(self):
        rc, _, err = C.convert(self.ckpt, "--meta", C.IMAGENET_META, "--channel-mean", "-o", self.out("cm.onnx"))
        self.assertEqual(rc, 0, err)
        with open(self.out("cm.json")) as f:
            inp = json.load(f)["input"]
        self.assertNotIn("mean_image", inp)
        self.assertFalse(os.path.exists(self.out("cm_mean.npy")))
        np.testing.assert_allclose(inp["mean"], self.mean256[:, 16:240, 16:240].mean(axis=(1, 2)), rtol=1e-6)
        rc, _, err = C.convert(self.ckpt, "--mean", "104,117,123", "-o", self.out("em.onnx"))
        self.assertEqual(rc, 0, err)
        with open(self.out("em.json")) as f:
            self.assertEqual(json.load(f)["input"]["mean"], [104.0, 117.0, 123.0])

    @C.needs_shared(C.META)
    def test_mean_smaller_than_input_is_an_error(self):
        rc, _, err = C.convert(self.ckpt, "--meta", C.META, "-o", self.out("small.onnx"))     # 32x32 mean
        self.assertEqual(rc, 1)
        self.assertIn("smaller than", err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
