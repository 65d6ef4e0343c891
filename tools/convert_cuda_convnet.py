#!/usr/bin/env python3
"""Convert a cuda-convnet / cuda-convnet2 checkpoint to ONNX + a deepinside model card.

    convert_cuda_convnet.py CHECKPOINT [--meta FILE] [--labels FILE] -o OUT.onnx

writes OUT.onnx, OUT.json (the card) and OUT_mean.npy (when a per-pixel mean is used).
Needs Python 3 with numpy and onnx (Debian: python3-numpy python3-onnx). See docs/cuda-convnet.md.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from cuda_convnet.convert import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
