#!/usr/bin/python3
"""Train deepinside's own small Fashion-MNIST classifier and export it to ONNX.

Run from the repository root (uses Debian's python3-torch, python3-onnx, python3-numpy):

    /usr/bin/python3 weights/fashion_mnist/train.py

Everything this model ships with is written by this one script, so rerunning it reproduces it:
  fashion_cnn.onnx        the network, ending in Softmax (its input = the unnormalised class scores)
  fashion_cnn.json        the model card (docs/model-card.md): preprocessing, labels, metrics
  samples/*.png           8 correctly classified TEST images, one per class, 28x28 8-bit grey
  samples/expected.json   file name -> class, label and the model's softmax probability

Training is seeded and deterministic on the CPU (2 threads) and takes a few minutes.
"""

import argparse
import datetime
import gzip
import json
import os
import re
import struct
import sys
import time
import zlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))

# Fashion-MNIST class names, index = label value in the idx files (Zalando's README order).
LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
          "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

# The ONNX ops the engine is promised this model uses (DESIGN.md section 6 lists the supported set).
ALLOWED_OPS = {"Conv", "Relu", "MaxPool", "Flatten", "Reshape", "Gemm", "Softmax"}

N_SAMPLES = 8             # sample PNGs, one per class, for 8 different classes
SAMPLE_MIN_PROB = 0.6     # samples must be unambiguous, so a C++ engine's top-1 cannot flip on rounding


# ----------------------------------------------------------------------------------------------
# Data: the idx format (http://yann.lecun.com/exdb/mnist/), big-endian header then raw uint8.
# ----------------------------------------------------------------------------------------------

def read_idx(path):
    """Return the uint8 array stored in an idx(.gz) file: images (N,28,28) or labels (N,)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:  # 0x08 = unsigned byte, the only type Fashion-MNIST uses
        raise ValueError(f"{path}: not a uint8 idx file (magic {data[:4].hex()})")
    shape = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(shape)):
        raise ValueError(f"{path}: expected {shape} = {np.prod(shape)} bytes, found {arr.size}")
    return arr.reshape(shape)


def load_split(data_dir, prefix):
    """prefix 'train' or 't10k' -> (images uint8 (N,28,28), labels int64 (N,))."""
    images = read_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz")).astype(np.int64)
    if images.shape[0] != labels.shape[0] or images.shape[1:] != (28, 28):
        raise ValueError(f"{prefix}: images {images.shape} do not match labels {labels.shape}")
    return images, labels


def to_input(images_u8, mean, std):
    """uint8 (N,28,28) -> float32 tensor (N,1,28,28), exactly as the model card tells the engine:
    pixel_range [0,1] (p / 255), then (x - mean) / std, scale 1."""
    x = torch.from_numpy(images_u8.astype(np.float32) / np.float32(255.0)).unsqueeze(1)
    return (x - mean) / std


# ----------------------------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------------------------

class FashionCNN(nn.Module):
    """Returns the unnormalised class scores S_c (logits), shape (N,10)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)    # (N,1,28,28)  -> (N,32,28,28)
        self.pool1 = nn.MaxPool2d(2)                   #              -> (N,32,14,14)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)   #              -> (N,64,14,14)
        self.pool2 = nn.MaxPool2d(2)                   #              -> (N,64,7,7)
        self.flatten = nn.Flatten(1)                   #              -> (N,3136); exports as ONNX Flatten
        self.fc1 = nn.Linear(64 * 7 * 7, 128)          #              -> (N,128);  exports as Gemm
        self.fc2 = nn.Linear(128, 10)                  #              -> (N,10)    the class scores

    def forward(self, x):
        x = self.pool1(F.relu(self.conv1(x)))
        x = self.pool2(F.relu(self.conv2(x)))
        x = F.relu(self.fc1(self.flatten(x)))
        return self.fc2(x)


class WithSoftmax(nn.Module):
    """What gets exported: the scores followed by a Softmax over classes (N,10), so the engine
    finds the scores by its default rule, 'the input of the last Softmax node'."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return torch.softmax(self.net(x), dim=1)


@torch.no_grad()
def predict(model, x, batch=1000):
    """Run model (eval mode) over x in batches; returns the concatenated outputs."""
    model.eval()
    return torch.cat([model(x[i:i + batch]) for i in range(0, x.shape[0], batch)])


# ----------------------------------------------------------------------------------------------
# Independent check of the exported file: a numpy interpreter for exactly the ops we allow.
# (onnxruntime is not a Debian package; this proves the .onnx, not the torch module, is right.)
# ----------------------------------------------------------------------------------------------

def run_onnx_numpy(model_proto, x):
    from onnx import numpy_helper
    g = model_proto.graph
    vals = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in g.initializer}
    vals[g.input[0].name] = x.astype(np.float64)
    for node in g.node:
        a = {at.name: at for at in node.attribute}
        ins = [vals[n] for n in node.input if n]
        if node.op_type == "Conv":
            xin, w = ins[0], ins[1]
            p = list(a["pads"].ints) if "pads" in a else [0, 0, 0, 0]
            assert list(a["strides"].ints) == [1, 1] and p[0] == p[2] and p[1] == p[3]
            xp = np.pad(xin, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])))
            kh, kw = w.shape[2:]
            oh, ow = xp.shape[2] - kh + 1, xp.shape[3] - kw + 1
            out = np.zeros((xin.shape[0], w.shape[0], oh, ow))
            for i in range(kh):
                for j in range(kw):
                    out += np.einsum("nchw,oc->nohw", xp[:, :, i:i + oh, j:j + ow], w[:, :, i, j])
            if len(ins) > 2:
                out += ins[2][None, :, None, None]
        elif node.op_type == "Relu":
            out = np.maximum(ins[0], 0)
        elif node.op_type == "MaxPool":
            k, s = list(a["kernel_shape"].ints), list(a["strides"].ints)
            assert k == [2, 2] and s == [2, 2]
            n, c, h, w_ = ins[0].shape
            out = ins[0][:, :, :h // 2 * 2, :w_ // 2 * 2].reshape(n, c, h // 2, 2, w_ // 2, 2).max(axis=(3, 5))
        elif node.op_type == "Flatten":
            out = ins[0].reshape(ins[0].shape[0], -1)
        elif node.op_type == "Reshape":
            out = ins[0].reshape([int(d) if d != 0 else ins[0].shape[i] for i, d in enumerate(ins[1])])
        elif node.op_type == "Gemm":
            A, B = ins[0], ins[1]
            A = A.T if a.get("transA") and a["transA"].i else A
            B = B.T if a.get("transB") and a["transB"].i else B
            alpha = a["alpha"].f if "alpha" in a else 1.0
            beta = a["beta"].f if "beta" in a else 1.0
            out = alpha * A @ B + (beta * ins[2] if len(ins) > 2 else 0)
        elif node.op_type == "Softmax":
            axis = a["axis"].i if "axis" in a else -1
            e = np.exp(ins[0] - ins[0].max(axis=axis, keepdims=True))
            out = e / e.sum(axis=axis, keepdims=True)
        else:
            raise ValueError(f"op {node.op_type} not in the allowed set")
        vals[node.output[0]] = out
    return vals[g.output[0].name]


# ----------------------------------------------------------------------------------------------
# PNG: minimal writer for 8-bit greyscale, so the samples need no imaging library.
# ----------------------------------------------------------------------------------------------

def write_png_grey(path, img_u8):
    h, w = img_u8.shape

    def chunk(kind, payload):
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)  # 8-bit, colour type 0 (grey), no interlace
    raw = b"".join(b"\x00" + img_u8[y].tobytes() for y in range(h))  # filter type 0 per row
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9))
                + chunk(b"IEND", b""))


def read_png_grey(path):
    """Inverse of write_png_grey (only what it writes): used to check the samples round-trip."""
    with open(path, "rb") as f:
        data = f.read()
    pos, idat, w, h = 8, b"", 0, 0
    while pos < len(data):
        (n,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        payload = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h = struct.unpack(">II", payload[:8])
        elif kind == b"IDAT":
            idat += payload
        pos += 12 + n
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(h, w + 1)
    assert (raw[:, 0] == 0).all()
    return raw[:, 1:].copy()


def dump_json(obj, path):
    """Write indented JSON, but keep short lists of numbers on one line ("mean": [0.286])."""
    text = json.dumps(obj, indent=2)
    numbers = r"\[\s*([-+0-9.eE,\s]+?)\s*\]"   # a list holding only numbers, spread over lines
    text = re.sub(numbers, lambda m: "[" + ", ".join(v.strip() for v in m.group(1).split(",")) + "]", text)
    with open(path, "w") as f:
        f.write(text + "\n")


def slug(label):
    """'T-shirt/top' -> 't_shirt_top', 'Ankle boot' -> 'ankle_boot'."""
    return "".join(ch if ch.isalnum() else "_" for ch in label.lower())


# ----------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist",
                    help="folder with the four Fashion-MNIST *-ubyte.gz files")
    ap.add_argument("--out-dir", default=HERE, help="where the .onnx, card and samples/ go")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    # Determinism: one seed for everything, deterministic kernels, a fixed thread count
    # (float summation order in the CPU kernels depends on it).
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)

    t_start = time.time()
    train_x_u8, train_y = load_split(args.data_dir, "train")   # (60000,28,28), (60000,)
    test_x_u8, test_y = load_split(args.data_dir, "t10k")      # (10000,28,28), (10000,)
    print(f"data: train {train_x_u8.shape}, test {test_x_u8.shape} from {args.data_dir}")

    # Normalisation constants from the training pixels in [0,1] units. Rounded to 4 decimals
    # first, so training uses exactly the numbers the card gives the engine.
    px = train_x_u8.astype(np.float64) / 255.0
    mean, std = round(float(px.mean()), 4), round(float(px.std()), 4)
    print(f"train pixel mean {mean}, std {std}  (pixel_range [0,1])")

    train_x = to_input(train_x_u8, mean, std)
    test_x = to_input(test_x_u8, mean, std)
    train_t, test_t = torch.from_numpy(train_y), torch.from_numpy(test_y)

    net = FashionCNN()
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    shuffle_gen = torch.Generator().manual_seed(args.seed)
    n = train_x.shape[0]

    t_train = time.time()
    for epoch in range(1, args.epochs + 1):
        net.train()
        perm = torch.randperm(n, generator=shuffle_gen)
        total, t0 = 0.0, time.time()
        for i in range(0, n, args.batch_size):
            idx = perm[i:i + args.batch_size]
            loss = F.cross_entropy(net(train_x[idx]), train_t[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * idx.numel()
        acc = (predict(net, test_x).argmax(1) == test_t).double().mean().item()
        print(f"epoch {epoch}/{args.epochs}: train loss {total / n:.4f}, test acc {acc:.4f}, "
              f"{time.time() - t0:.1f}s", flush=True)
    train_seconds = time.time() - t_train

    # Final evaluation on the full 10k test set, through the same module that gets exported.
    export_model = WithSoftmax(net).eval()
    test_prob = predict(export_model, test_x)                 # (10000,10)
    test_pred = test_prob.argmax(1)
    test_acc = (test_pred == test_t).double().mean().item()
    print(f"test accuracy {test_acc:.4f} on {len(test_t)} images; training took {train_seconds:.0f}s")

    # ---- ONNX export -------------------------------------------------------------------------
    import onnx
    os.makedirs(args.out_dir, exist_ok=True)
    onnx_path = os.path.join(args.out_dir, "fashion_cnn.onnx")
    torch.onnx.export(export_model, torch.zeros(1, 1, 28, 28), onnx_path,
                      opset_version=13, do_constant_folding=True,
                      input_names=["input"], output_names=["prob"],
                      dynamic_axes={"input": {0: "N"}, "prob": {0: "N"}})
    proto = onnx.load(onnx_path)
    onnx.checker.check_model(proto, full_check=True)
    ops = [node.op_type for node in proto.graph.node]
    print("onnx ops:", " -> ".join(ops))
    if not set(ops) <= ALLOWED_OPS:
        sys.exit(f"exported graph uses ops outside {sorted(ALLOWED_OPS)}: {sorted(set(ops) - ALLOWED_OPS)}")
    if ops[-1] != "Softmax":
        sys.exit("the exported graph must end in Softmax")
    scores_value = proto.graph.node[-1].input[0]   # unnormalised class scores: the Softmax's input
    size = os.path.getsize(onnx_path)
    print(f"{onnx_path}: {size} bytes")
    if size >= 2 * 1024 * 1024:
        sys.exit("model file is not < 2 MB")

    # ---- samples: first correctly and confidently classified test image of each class, in test
    # order, until 8 classes are covered.
    sample_dir = os.path.join(args.out_dir, "samples")
    os.makedirs(sample_dir, exist_ok=True)
    for old in os.listdir(sample_dir):             # a rerun must not leave stale samples behind
        if old.endswith(".png"):
            os.remove(os.path.join(sample_dir, old))
    chosen = {}
    for i in range(len(test_t)):
        c = int(test_t[i])
        if c not in chosen and int(test_pred[i]) == c and float(test_prob[i, c]) >= SAMPLE_MIN_PROB:
            chosen[c] = i
            if len(chosen) == N_SAMPLES:
                break
    if len(chosen) < N_SAMPLES:
        sys.exit(f"only {len(chosen)} classes have a test image classified correctly with p >= "
                 f"{SAMPLE_MIN_PROB}; train longer")
    expected, sample_imgs = {}, []
    for c, i in sorted(chosen.items(), key=lambda kv: kv[1]):
        fname = f"test{i:04d}_{slug(LABELS[c])}.png"
        path = os.path.join(sample_dir, fname)
        write_png_grey(path, test_x_u8[i])
        img = read_png_grey(path)                  # probabilities are computed from the PNG as written
        assert np.array_equal(img, test_x_u8[i])
        sample_imgs.append(img)
        prob = predict(export_model, to_input(img[None], mean, std))[0]
        assert int(prob.argmax()) == c
        expected[fname] = {"class": c, "label": LABELS[c], "prob": round(float(prob[c]), 6)}
    dump_json(expected, os.path.join(sample_dir, "expected.json"))
    print(f"samples: {list(expected)}")

    # Cross-check the .onnx file itself (numpy, float64) against torch on the samples.
    ref = run_onnx_numpy(proto, to_input(np.stack(sample_imgs), mean, std).numpy())
    torch_prob = predict(export_model, to_input(np.stack(sample_imgs), mean, std)).numpy()
    err = float(np.abs(ref - torch_prob).max())
    print(f"numpy run of the .onnx vs torch on the samples: max |diff| = {err:.2e}")
    if err > 1e-4:
        sys.exit("exported ONNX disagrees with the torch model")

    # ---- model card (docs/model-card.md) --------------------------------------------------------
    card = {
        "name": "deepinside Fashion-MNIST CNN (2 conv + 2 fc), 10 classes",
        "model": "fashion_cnn.onnx",
        "input": {
            "name": "input",
            "layout": "NCHW",
            "channel_order": "GREY",
            "height": 28,
            "width": 28,
            "pixel_range": [0, 1],
            "mean": [mean],
            "std": [std],
            "scale": 1.0,
            "resize": {"shorter_side": 0, "crop": "center"},
        },
        "scores": scores_value,
        "labels": LABELS,
        "metrics": {"test_accuracy": round(test_acc, 4), "test_images": int(len(test_t))},
        "training": {
            "script": "weights/fashion_mnist/train.py",
            "command": "/usr/bin/python3 weights/fashion_mnist/train.py",
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "seed": args.seed,
            "optimizer": f"Adam, lr {args.lr}, cross-entropy loss, no augmentation",
            "threads": args.threads,
            "torch": torch.__version__,
            "seconds": round(train_seconds),
            "date": datetime.date.today().isoformat(),
        },
        "dataset": "Fashion-MNIST (Debian package dataset-fashion-mnist)",
        "license": "weights: trained by the deepinside project; data: Fashion-MNIST, MIT licence, Zalando Research",
    }
    dump_json(card, os.path.join(args.out_dir, "fashion_cnn.json"))
    print(f"done in {time.time() - t_start:.0f}s total")


if __name__ == "__main__":
    main()
