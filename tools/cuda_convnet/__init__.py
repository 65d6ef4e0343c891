"""Convert cuda-convnet (v1) and cuda-convnet2 checkpoints to ONNX + a deepinside model card.

Modules:
  loader   read checkpoints and meta files (plain / zip / gzip; Python 2 or 3 pickles) safely
  graph    the layer list (v1 list or v2 dict) -> the layers that matter, in topological order
  onnxgen  a small ONNX graph builder that tracks each value's shape
  layers   one emitter per cuda-convnet layer type, reproducing cuda-convnet's forward pass
  card     the model card: mean (image or per channel), labels, score value
  convert  the command line: checkpoint -> OUT.onnx, OUT.json, OUT_mean.npy, written atomically
"""


class ConversionError(Exception):
    """A problem with the user's input, reported as one clear line (no traceback)."""
