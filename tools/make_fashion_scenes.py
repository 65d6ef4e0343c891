#!/usr/bin/python3
"""Fashion scenes: a weakly labelled localisation dataset with ground-truth boxes (docs/localisation.md).

Each image is a cluttered, coloured, textured background with one Fashion-MNIST object on it, coloured,
shaded and scaled, at a random position. The label (one of Fashion-MNIST's 10 classes) is all a classifier
is trained on; the object's box is kept for evaluation only, as ILSVRC's localisation task does.

    /usr/bin/python3 tools/make_fashion_scenes.py --out DIR --count 1000 [--split test] [--seed 0]

writes DIR/NNNNN.png (RGB, --size x --size, default 96) and DIR/ground_truth.json:

    {"dataset": "fashion-scenes", "split": "test", "seed": 0, "count": N, "width": 96, "height": 96,
     "labels": [...10 names...], "box_format": "[x0, y0, x1, y1] in pixels, x1 and y1 exclusive",
     "images": [{"file": "00000.png", "class": 3, "label": "Dress", "box": [x0, y0, x1, y1]}, ...]}

Deterministic: the same --split, --seed, --count and --size give byte-identical files (numpy's PCG64 and
PIL). Objects come from disjoint parts of Fashion-MNIST per split, so no object is seen in two splits:
  train: the 60,000 training images       (what weights/fashion_scenes/train.py trains on)
  val:   test images 0..4999              (for choosing defaults and baseline thresholds)
  test:  test images 5000..9999           (the benchmark)
The scene itself is drawn from --seed; the object index is drawn from the split's range.

Uses Debian's python3-numpy and python3-pil only; about 1 ms per image.
"""

import argparse
import gzip
import json
import os
import struct
import sys

import numpy as np
from PIL import Image

LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
          "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

DEFAULT_DATA_DIR = "/usr/share/datasets/fashion-mnist"

# Object geometry, in pixels of a 96x96 scene (scaled with --size).
MIN_SIDE, MAX_SIDE = 28, 84      # the 28x28 Fashion-MNIST frame is scaled to this side length...
ASPECT_JITTER = 0.25             # ...times exp(U(-j, j)) in width and exp(-U) in height
ALPHA_FULL = 40.0                # a Fashion-MNIST pixel of intensity >= 40 is fully opaque
BOX_ALPHA = 0.5                  # the ground-truth box bounds the pixels with alpha >= 0.5 (intensity >= 20)
MIN_CONTRAST = 0.30              # object colour vs the mean background under it (RGB in [0,1], L2)


def read_idx(path):
    """The uint8 array of an idx(.gz) file: images (N,28,28) or labels (N,)."""
    with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path}: not a uint8 idx file")
    shape = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_objects(data_dir, split):
    """(images uint8 (N,28,28), labels int (N,)) of the split's Fashion-MNIST part."""
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz")).astype(np.int64)
    if split == "val":
        return images[:5000], labels[:5000]
    if split == "test":
        return images[5000:], labels[5000:]
    return images, labels


def smooth_field(rng, size, cells, channels):
    """A smooth random field (size,size,channels) in [0,1]: a cells x cells grid upsampled bicubically."""
    grid = (rng.random((cells, cells, channels)) * 255).astype(np.uint8)
    img = Image.fromarray(grid if channels > 1 else grid[:, :, 0])
    up = np.asarray(img.resize((size, size), Image.BICUBIC), dtype=np.float32) / 255.0
    return up.reshape(size, size, channels)


def random_colour(rng):
    """A random RGB colour in [0,1], often saturated (HSV with random hue)."""
    h, s, v = rng.random(), rng.uniform(0.2, 1.0), rng.uniform(0.25, 1.0)
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    return np.array([(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i], dtype=np.float32)


def background(rng, size):
    """Cluttered, coloured, textured background (size,size,3) in [0,1]."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    bg = smooth_field(rng, size, int(rng.integers(2, 6)), 3)               # coarse colour variation
    kind = rng.integers(0, 4)                                              # one texture
    if kind == 0:    # stripes in a second colour
        theta, freq = rng.uniform(0, np.pi), rng.uniform(0.05, 0.35)
        wave = 0.5 + 0.5 * np.sin(2 * np.pi * freq * (xx * np.cos(theta) + yy * np.sin(theta)) + rng.uniform(0, 6.3))
        a = rng.uniform(0.2, 0.6)
        bg = bg * (1 - a * wave[..., None]) + a * wave[..., None] * random_colour(rng)
    elif kind == 1:  # checks
        cell = int(rng.integers(4, 16))
        chk = ((xx // cell + yy // cell) % 2).astype(np.float32)[..., None]
        a = rng.uniform(0.15, 0.5)
        bg = bg * (1 - a * chk) + a * chk * random_colour(rng)
    elif kind == 2:  # fine blotches
        bg = 0.5 * bg + 0.5 * smooth_field(rng, size, int(rng.integers(8, 24)), 3)
    else:            # grain
        bg = bg + rng.uniform(0.04, 0.12) * rng.standard_normal((size, size, 1), dtype=np.float32)
    for _ in range(int(rng.integers(3, 9))):                               # clutter: 3-8 shapes
        colour, a = random_colour(rng), rng.uniform(0.5, 1.0)
        cx, cy = rng.uniform(0, size), rng.uniform(0, size)
        rx, ry = rng.uniform(2, size * 0.22), rng.uniform(2, size * 0.22)
        shape = rng.integers(0, 3)
        reach = 2 * max(rx, ry) + 1 if shape == 2 else max(rx, ry) + 1      # drawn only near the shape
        ys = slice(max(0, int(cy - reach)), min(size, int(cy + reach) + 1))
        xs = slice(max(0, int(cx - reach)), min(size, int(cx + reach) + 1))
        x, y = xx[ys, xs], yy[ys, xs]
        if shape == 0:    # ellipse
            m = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1
        elif shape == 1:  # rectangle
            m = (np.abs(x - cx) <= rx) & (np.abs(y - cy) <= ry)
        else:             # thick line through (cx, cy)
            theta = rng.uniform(0, np.pi)
            d = np.abs((x - cx) * np.sin(theta) - (y - cy) * np.cos(theta))
            along = np.abs((x - cx) * np.cos(theta) + (y - cy) * np.sin(theta))
            m = (d <= rng.uniform(1, 3)) & (along <= rx * 2)
        region = bg[ys, xs]
        region[m] = (1 - a) * region[m] + a * colour
    return np.clip(bg, 0, 1)


def paste_object(rng, bg, obj_u8, size):
    """Scales, colours and shades one 28x28 object and composites it onto bg at a random position.
    Returns the image (size,size,3) in [0,1] and the box [x0, y0, x1, y1] (x1, y1 exclusive)."""
    scale = size / 96.0
    side = rng.uniform(MIN_SIDE, MAX_SIDE) * scale
    j = np.exp(rng.uniform(-ASPECT_JITTER, ASPECT_JITTER))
    w, h = max(8, min(size, int(round(side * j)))), max(8, min(size, int(round(side / j))))
    inten = np.asarray(Image.fromarray(obj_u8).resize((w, h), Image.BILINEAR), dtype=np.float32)
    alpha = np.clip(inten / ALPHA_FULL, 0, 1)
    x0, y0 = int(rng.integers(0, size - w + 1)), int(rng.integers(0, size - h + 1))
    under = bg[y0:y0 + h, x0:x0 + w]
    mean_under = (under * alpha[..., None]).sum((0, 1)) / max(alpha.sum(), 1e-6)
    for _ in range(100):                        # a colour that stands out from the background under it
        colour = random_colour(rng)
        if np.linalg.norm(colour - mean_under) >= MIN_CONTRAST:
            break
    shade = 0.45 + 0.55 * inten / 255.0          # the object's own shading keeps its inner structure
    obj = colour * shade[..., None]
    if rng.random() < 0.3:                       # some objects are two-coloured (stripes)
        theta, freq = rng.uniform(0, np.pi), rng.uniform(0.08, 0.25) / scale
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        band = (np.sin(2 * np.pi * freq * (xx * np.cos(theta) + yy * np.sin(theta))) > 0)[..., None]
        obj = np.where(band, obj, random_colour(rng) * shade[..., None])
    out = bg.copy()
    out[y0:y0 + h, x0:x0 + w] = alpha[..., None] * obj + (1 - alpha[..., None]) * under
    ys, xs = np.nonzero(alpha >= BOX_ALPHA)
    box = [x0 + int(xs.min()), y0 + int(ys.min()), x0 + int(xs.max()) + 1, y0 + int(ys.max()) + 1]
    return out, box


def make_scene(rng, obj_u8, size=96):
    """One scene: uint8 (size,size,3) RGB and the object's box."""
    img, box = paste_object(rng, background(rng, size), obj_u8, size)
    img = img + 0.015 * rng.standard_normal(img.shape, dtype=np.float32)   # sensor noise
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8), box


def generate(objects, labels, count, seed, size=96):
    """Yields (image uint8 (size,size,3), class, box) for scenes 0..count-1; scene i depends only on
    (seed, i), so a prefix of a larger set equals the smaller set."""
    for i in range(count):
        rng = np.random.default_rng([seed, i])
        k = int(rng.integers(0, len(objects)))
        img, box = make_scene(rng, objects[k], size)
        yield img, int(labels[k]), box


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output folder (created; existing scene files are replaced)")
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--split", choices=["train", "val", "test"], default="test")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", type=int, default=96, help="image side in pixels (>= 96)")
    ap.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="folder with the Fashion-MNIST *-ubyte.gz files")
    args = ap.parse_args()
    if args.count < 1:
        sys.exit("make_fashion_scenes: --count must be >= 1")
    if args.size < 96:
        sys.exit("make_fashion_scenes: --size must be >= 96")
    try:
        objects, labels = load_objects(args.data_dir, args.split)
    except OSError as e:
        sys.exit(f"make_fashion_scenes: cannot read Fashion-MNIST ({e}); install dataset-fashion-mnist "
                 f"(scripts/setup.sh) or pass --data-dir")
    os.makedirs(args.out, exist_ok=True)
    entries = []
    for i, (img, cls, box) in enumerate(generate(objects, labels, args.count, args.seed, args.size)):
        name = f"{i:05d}.png"
        Image.fromarray(img, "RGB").save(os.path.join(args.out, name), compress_level=1)
        entries.append({"file": name, "class": cls, "label": LABELS[cls], "box": box})
    truth = {"dataset": "fashion-scenes", "split": args.split, "seed": args.seed, "count": args.count,
             "width": args.size, "height": args.size, "labels": LABELS,
             "box_format": "[x0, y0, x1, y1] in pixels, x1 and y1 exclusive",
             "images": entries}
    tmp = os.path.join(args.out, "ground_truth.json.tmp")
    with open(tmp, "w") as f:
        json.dump(truth, f, indent=1)
        f.write("\n")
    os.replace(tmp, os.path.join(args.out, "ground_truth.json"))
    print(f"make_fashion_scenes: {args.count} {args.split} scenes ({args.size}x{args.size}, seed {args.seed}) "
          f"in {args.out}")


if __name__ == "__main__":
    main()
