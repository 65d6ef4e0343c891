#!/usr/bin/python3
"""Train deepinside's Fashion-scenes classifier on image labels alone and export it to ONNX.

The localisation benchmark (docs/localisation.md) needs a classifier that never saw a box: this one is
trained on scenes from tools/make_fashion_scenes.py (split "train": Fashion-MNIST's training objects on
cluttered backgrounds) with their class labels only. Run from the repository root:

    nice -n 19 /usr/bin/python3 weights/fashion_scenes/train.py

writes, beside this script:
  fashion_scenes_cnn.onnx   the network (opset 13), ending in Softmax; its input = the class scores S_c
  fashion_scenes_cnn.json   the model card (docs/model-card.md) with the test accuracy

The network ends in a global average pool and one fully connected layer, so CAM applies to it as well as
the gradient saliency. Seeded and deterministic on the CPU at a fixed thread count (default 1).
"""

import argparse
import datetime
import json
import os
import re
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import make_fashion_scenes as scenes  # noqa: E402  (the dataset generator, tools/make_fashion_scenes.py)

ALLOWED_OPS = {"Conv", "Relu", "MaxPool", "GlobalAveragePool", "ReduceMean", "Flatten", "Reshape", "Gemm",
               "Softmax"}
SIZE = 96


class ScenesCNN(nn.Module):
    """(N,3,96,96) -> unnormalised class scores (N,10). Four convolutions with batch normalisation (folded
    into the convolutions at export), a global average pool and one linear layer: the CAM architecture of
    Zhou et al. (2016) at a small scale. Its 6x6 feature maps are 16 input pixels apart, as GoogLeNet-GAP's
    14x14 maps are on 224x224 inputs."""

    def __init__(self, width=(16, 32, 64, 128)):
        super().__init__()
        a, b, c, d = width
        self.conv1 = nn.Conv2d(3, a, 5, stride=2, padding=2)   # -> (N,a,48,48)  + ReLU, MaxPool 2 -> 24x24
        self.bn1 = nn.BatchNorm2d(a)
        self.conv2 = nn.Conv2d(a, b, 3, padding=1)             # -> (N,b,24,24)  + ReLU, MaxPool 2 -> 12x12
        self.bn2 = nn.BatchNorm2d(b)
        self.conv3 = nn.Conv2d(b, c, 3, padding=1)             # -> (N,c,12,12)  + ReLU, MaxPool 2 -> 6x6
        self.bn3 = nn.BatchNorm2d(c)
        self.conv4 = nn.Conv2d(c, d, 3, padding=1)             # -> (N,d,6,6)    + ReLU: CAM's feature maps
        self.bn4 = nn.BatchNorm2d(d)
        self.pool = nn.AdaptiveAvgPool2d(1)                    # -> (N,d,1,1)    exports as GlobalAveragePool
        self.flatten = nn.Flatten(1)                           # -> (N,d)
        self.fc = nn.Linear(d, 10)                             # -> (N,10)       the class scores

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        x = F.max_pool2d(F.relu(self.bn3(self.conv3(x))), 2)
        x = F.relu(self.bn4(self.conv4(x)))
        return self.fc(self.flatten(self.pool(x)))


class WithSoftmax(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return torch.softmax(self.net(x), dim=1)


def make_set(split, count, seed, data_dir):
    """count scenes of a split -> (uint8 (count,96,96,3), labels int64 (count,)); boxes are dropped."""
    objects, labels = scenes.load_objects(data_dir, split)
    xs = np.empty((count, SIZE, SIZE, 3), np.uint8)
    ys = np.empty(count, np.int64)
    for i, (img, cls, _box) in enumerate(scenes.generate(objects, labels, count, seed, SIZE)):
        xs[i], ys[i] = img, cls
    return xs, ys


def to_input(x_u8, mean, std):
    """uint8 (N,H,W,3) -> float32 (N,3,H,W): p/255, then (x - mean) / std per channel (the card)."""
    x = torch.from_numpy(x_u8).permute(0, 3, 1, 2).float() / 255.0
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


@torch.no_grad()
def predict(model, x_u8, mean, std, batch=500):
    model.eval()
    return torch.cat([model(to_input(x_u8[i:i + batch], mean, std)) for i in range(0, len(x_u8), batch)])


def dump_json(obj, path):
    text = json.dumps(obj, indent=2)
    text = re.sub(r"\[\s*([-+0-9.eE,\s]+?)\s*\]",
                  lambda m: "[" + ", ".join(v.strip() for v in m.group(1).split(",")) + "]", text)
    with open(path, "w") as f:
        f.write(text + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=scenes.DEFAULT_DATA_DIR)
    ap.add_argument("--out-dir", default=HERE)
    ap.add_argument("--train-count", type=int, default=24000, help="training scenes (generated in memory)")
    ap.add_argument("--test-count", type=int, default=1000, help="test scenes (the benchmark's, split test seed 0)")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=4e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    t_start, cpu_start = time.time(), time.process_time()

    train_x, train_y = make_set("train", args.train_count, 1000 + args.seed, args.data_dir)
    test_x, test_y = make_set("test", args.test_count, 0, args.data_dir)
    t_data = time.time() - t_start
    print(f"data: {len(train_x)} training scenes, {len(test_x)} test scenes in {t_data:.0f}s", flush=True)

    px = train_x.reshape(-1, 3).astype(np.float64) / 255.0
    mean = [round(float(v), 4) for v in px.mean(0)]
    std = [round(float(v), 4) for v in px.std(0)]
    print(f"pixel mean {mean}, std {std} (RGB, pixel_range [0,1])")

    net = ScenesCNN()
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    steps = args.epochs * ((len(train_x) + args.batch_size - 1) // args.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps, pct_start=0.15)
    gen = torch.Generator().manual_seed(args.seed)
    train_t = torch.from_numpy(train_y)
    t_train = time.time()
    for epoch in range(1, args.epochs + 1):
        net.train()
        perm = torch.randperm(len(train_x), generator=gen)
        total, t0 = 0.0, time.time()
        for i in range(0, len(train_x), args.batch_size):
            idx = perm[i:i + args.batch_size]
            x = to_input(train_x[idx.numpy()], mean, std)
            flip = torch.rand(len(idx), generator=gen) < 0.5           # horizontal flips
            x[flip] = x[flip].flip(3)
            loss = F.cross_entropy(net(x), train_t[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        acc = (predict(net, test_x, mean, std).argmax(1).numpy() == test_y).mean()
        print(f"epoch {epoch}/{args.epochs}: train loss {total / len(train_x):.4f}, test acc {acc:.4f}, "
              f"{time.time() - t0:.0f}s", flush=True)
    train_seconds = time.time() - t_train

    export_model = WithSoftmax(net).eval()
    prob = predict(export_model, test_x, mean, std).numpy()
    top1 = float((prob.argmax(1) == test_y).mean())
    top5 = float((np.argsort(-prob, 1)[:, :5] == test_y[:, None]).any(1).mean())
    print(f"test accuracy top-1 {top1:.4f}, top-5 {top5:.4f} on {len(test_y)} scenes; training {train_seconds:.0f}s")

    import onnx
    os.makedirs(args.out_dir, exist_ok=True)
    onnx_path = os.path.join(args.out_dir, "fashion_scenes_cnn.onnx")
    torch.onnx.export(export_model, torch.zeros(1, 3, SIZE, SIZE), onnx_path, opset_version=13,
                      do_constant_folding=True, input_names=["input"], output_names=["prob"],
                      dynamic_axes={"input": {0: "N"}, "prob": {0: "N"}})
    proto = onnx.load(onnx_path)
    onnx.checker.check_model(proto, full_check=True)
    ops = [n.op_type for n in proto.graph.node]
    print("onnx ops:", " -> ".join(ops))
    if not set(ops) <= ALLOWED_OPS or ops[-1] != "Softmax":
        sys.exit(f"unexpected ops in the exported graph: {ops}")
    size = os.path.getsize(onnx_path)
    if size >= 2 * 1024 * 1024:
        sys.exit("model file is not < 2 MB")
    print(f"{onnx_path}: {size} bytes")

    card = {
        "name": "deepinside Fashion-scenes CNN (4 conv + global average pool + fc), 10 classes, 96x96 RGB",
        "model": "fashion_scenes_cnn.onnx",
        "input": {"name": "input", "layout": "NCHW", "channel_order": "RGB", "height": SIZE, "width": SIZE,
                  "pixel_range": [0, 1], "mean": mean, "std": std, "scale": 1.0,
                  "resize": {"shorter_side": 0, "crop": "center"}},
        "scores": proto.graph.node[-1].input[0],
        "labels": scenes.LABELS,
        "metrics": {"test_accuracy": round(top1, 4), "test_top5_accuracy": round(top5, 4),
                    "test_images": int(len(test_y)),
                    "test_set": "tools/make_fashion_scenes.py --split test --seed 0 (the benchmark's images)"},
        "training": {
            "script": "weights/fashion_scenes/train.py",
            "command": "nice -n 19 /usr/bin/python3 weights/fashion_scenes/train.py",
            "data": f"{args.train_count} scenes, tools/make_fashion_scenes.py split train, seed "
                    f"{1000 + args.seed}; image labels only, no boxes",
            "epochs": args.epochs, "batch_size": args.batch_size, "seed": args.seed,
            "optimizer": f"Adam, one-cycle lr up to {args.lr}, cross-entropy, horizontal flips",
            "threads": args.threads, "torch": torch.__version__,
            "seconds": round(time.time() - t_start), "cpu_seconds": round(time.process_time() - cpu_start),
            "date": datetime.date.today().isoformat(),
        },
        "dataset": "Fashion scenes (tools/make_fashion_scenes.py) from Fashion-MNIST (Debian dataset-fashion-mnist)",
        "license": "weights: trained by the deepinside project; data: Fashion-MNIST, MIT licence, Zalando Research",
    }
    dump_json(card, os.path.join(args.out_dir, "fashion_scenes_cnn.json"))
    print(f"done in {time.time() - t_start:.0f}s ({time.process_time() - cpu_start:.0f}s of CPU time)")


if __name__ == "__main__":
    main()
