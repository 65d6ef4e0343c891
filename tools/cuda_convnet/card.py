"""The model card beside the ONNX: preprocessing (mean image or per-channel mean), labels, scores."""
import math
import re

import numpy as np

from . import ConversionError


def crop_mean(mean, channels, size, what="data_mean"):
    """cuda-convnet's mean for a (channels, size, size) input, from a meta file's data_mean.

    data_mean is RGB planar, (channels*T*T, 1) or any shape with that many values. T == size: as
    is; T > size: the centre crop the data providers subtract (v1 CroppedCIFARDataProvider,
    v2 data_mean_crop), offset (T - size) // 2; `channels` values: a per-channel mean.
    -> float32 (channels, size, size) or (channels,)."""
    flat = np.asarray(mean, dtype=np.float32).reshape(-1)
    if flat.size == channels:
        return flat
    t = math.isqrt(flat.size // channels) if flat.size % channels == 0 else 0
    if t * t * channels != flat.size:
        raise ConversionError("%s has %d values: not %d channels of a square image" % (what, flat.size, channels))
    if t < size:
        raise ConversionError("%s is a %dx%d image, smaller than the network's %dx%d input"
                              % (what, t, t, size, size))
    off = (t - size) // 2
    return np.ascontiguousarray(flat.reshape(channels, t, t)[:, off:off + size, off:off + size])


def read_labels(path):
    """One class per line; a leading WordNet id ("n01440764 ") is dropped, as the engine does."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = [l.strip() for l in f]
    except OSError as e:
        raise ConversionError("cannot read labels %s: %s" % (path, e.strerror or e)) from None
    while lines and not lines[-1]:
        lines.pop()
    return [re.sub(r"^n\d{8}\s+", "", l) for l in lines]


def labels_from_meta(meta):
    names = meta.get("label_names")
    if names is None:
        return None
    return [n.decode("latin-1") if isinstance(n, bytes) else str(n) for n in names]


def short_float(v):
    """A float32 written with as few digits as round-trip (125.3, not 125.30000305175781)."""
    return float(str(np.float32(v)))


def plain(obj, depth=0):
    """JSON-safe copy of simple pickled data (dicts, lists, numbers, strings); others dropped."""
    if depth > 6:
        return None
    if isinstance(obj, (bool, int, str)) or obj is None:
        return obj
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (list, tuple)):
        return [plain(v, depth + 1) for v in obj]
    if isinstance(obj, dict):
        return {str(k): plain(v, depth + 1) for k, v in obj.items()}
    return None


def make_card(name, model_file, input_name, input_shape, mean, mean_file, shorter_side, labels, scores,
              source, notes):
    """The card dict (docs/model-card.md). mean: (C,) values, or None when mean_file holds the image;
    shorter_side: the resize before the centre crop (cuda-convnet's stored image size)."""
    inp = {"name": input_name, "layout": "NCHW"}
    channels = input_shape[0]
    if channels == 3:
        inp["channel_order"] = "RGB"
    elif channels == 1:
        inp["channel_order"] = "GREY"
    if len(input_shape) == 3:
        inp["height"], inp["width"] = int(input_shape[1]), int(input_shape[2])
    inp["pixel_range"] = [0, 255]
    if mean_file is not None:
        inp["mean_image"] = mean_file
    elif mean is not None:
        inp["mean"] = [short_float(v) for v in mean]
    if len(input_shape) == 3:
        inp["resize"] = {"shorter_side": int(shorter_side), "crop": "center"}
    card = {"name": name, "model": model_file, "input": inp, "scores": scores}
    if labels is not None:
        card["labels"] = labels
    card["source"] = source
    card["notes"] = notes
    return card
